// Runs one scenario for one competitor in this fresh process and prints the result
// as JSON on stdout. Started by bench/index.mjs (under bench/.build/floor-reaper,
// which reaps anything left behind); not meant to be run by hand, but it can be:
//
//   node --expose-gc bench/runner.mjs COMPETITOR KIND '{"n":100,"rounds":3,...}'
import { loadCompetitor } from './lib/competitors.mjs';
import { scenarios } from './lib/scenarios.mjs';

const [name, kind, params] = process.argv.slice(2);
const scenario = scenarios[kind];
if (name === undefined || scenario === undefined) {
  process.stderr.write(`usage: runner.mjs COMPETITOR (${Object.keys(scenarios)}) PARAMS_JSON\n`);
  process.exit(2);
}

try {
  const { adapter, info } = await loadCompetitor(name);
  const result = await scenario(adapter, JSON.parse(params ?? '{}'));
  process.stdout.write(`${JSON.stringify({ ...result, info })}\n`);
} catch (error) {
  process.stderr.write(`${name} ${kind}: ${error?.stack ?? error}\n`);
  process.exitCode = 1;
}
