// Runs one scenario for one competitor in this fresh process, one round at a time
// on request, so the orchestrator can interleave the rounds of all competitors.
// Started by bench/index.mjs under bench/.build/floor-reaper (which reaps anything
// left behind). The protocol, the same for the C floor programs, one line each:
//
//   out: {"ready":true}      setup done (memory touched, idle children up, warm-up)
//   in:  round               out: {...figures of one round...}
//   in:  end (or EOF)        out: {"done":true,"info":{...}}, after the teardown
//
//   node --expose-gc bench/runner.mjs COMPETITOR KIND '{"n":100,...}'
import { createInterface } from 'node:readline';
import { loadCompetitor } from './lib/competitors.mjs';
import { everydayScenarios } from './lib/everyday.mjs';
import { loopScenarios } from './lib/loop.mjs';
import { outputScenarios } from './lib/output.mjs';
import { queueScenarios } from './lib/queue.mjs';
import { scenarios } from './lib/scenarios.mjs';
import { treeScenarios } from './lib/trees.mjs';

// Scenarios whose rows are ways to do a job, not spawn adapters: setup(row, params).
const rowScenarios = {
  ...loopScenarios,
  ...outputScenarios,
  ...treeScenarios,
  ...queueScenarios,
  ...everydayScenarios,
};

const [name, kind, params] = process.argv.slice(2);
const setup = scenarios[kind] ?? rowScenarios[kind];
if (name === undefined || setup === undefined) {
  process.stderr.write(`usage: runner.mjs COMPETITOR (${Object.keys(scenarios)}) PARAMS_JSON\n`);
  process.exit(2);
}

const send = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

try {
  let info = {};
  let scenario;
  if (kind in rowScenarios) {
    scenario = await setup(name, JSON.parse(params ?? '{}'));
  } else {
    const loaded = await loadCompetitor(name);
    info = loaded.info;
    scenario = await setup(loaded.adapter, JSON.parse(params ?? '{}'));
  }
  send({ ready: true });
  try {
    for await (const line of createInterface({ input: process.stdin })) {
      if (line === 'end') break;
      if (line === 'round') send(await scenario.round());
    }
  } finally {
    await scenario.teardown();
  }
  send({ done: true, info });
  process.stdin.destroy();
} catch (error) {
  process.stderr.write(`${name} ${kind}: ${error?.stack ?? error}\n`);
  process.exit(1);
}
