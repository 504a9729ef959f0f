// The benchmark suite: every scenario of issue 6 for every competitor, each
// competitor in a fresh process of its own per scenario, the rounds interleaved;
// then one table on stdout and the results in bench/results/ (latest.json,
// latest.md, latest.svg; quick mode writes quick.*).
//
//   npm run bench [-- --quick] [-- --only 1,5a] [-- --render]
//
// Bun.spawn rows run when `bun` is on PATH or BUN=/path/to/bun is set.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './lib/machine.mjs';
import { COMPETITORS, scenarios } from './lib/plan.mjs';
import { renderMarkdown, renderSvg, renderText } from './lib/report.mjs';
import { Session, stopAll } from './lib/session.mjs';
import { summarize } from './lib/stats.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, '.build');
const resultsDir = join(here, 'results');
const reaper = join(buildDir, 'floor-reaper');

function parseArgs(argv) {
  const opts = { quick: false, only: null, render: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') opts.quick = true;
    else if (argv[i] === '--only' && argv[i + 1]) opts.only = new Set(argv[++i].split(','));
    else if (argv[i] === '--render') opts.render = true;
    else {
      process.stderr.write(
        'usage: node bench/index.mjs [--quick] [--only ID[,ID...]] [--render]\n' +
          '  --only    run some scenarios (1 2 3 4 5a 5b 6 loop exec jobs run-true-2 run-true-8\n' +
          '            run-echo-2 run-echo-8 tree-spawn tree-kill 7 8; queue, which needs redis-server,\n' +
          '            runs only when named); writes results/partial.*\n' +
          '  --render  rewrite the .md, .svg and the table from the .json, running nothing\n',
      );
      process.exit(2);
    }
  }
  return opts;
}

/** Compiles the C programs with `cc -O2` into bench/.build/. */
function buildFloor() {
  mkdirSync(buildDir, { recursive: true });
  for (const name of ['spawn', 'latency', 'reaper']) {
    const source = join(here, 'floor', `${name}.c`);
    execFileSync('cc', ['-O2', '-Wall', '-o', join(buildDir, `floor-${name}`), source], {
      stdio: 'inherit',
    });
  }
}

function findBun() {
  if (process.env.BUN) return process.env.BUN;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'bun');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping\n`);
    stopAll();
    process.exitCode = 130;
    interrupted = true;
    setTimeout(() => process.exit(130), 5000).unref();
  });
}
let interrupted = false;

function commandFor(competitor, scenario, bun) {
  if (competitor.id === 'floor') {
    const args = Object.entries(scenario.params).map(([k, v]) => `${k}=${v}`);
    return [join(buildDir, `floor-${scenario.floor}`), ...args];
  }
  const runtime = competitor.id === 'bun' ? [bun] : [process.execPath, '--expose-gc'];
  const params = JSON.stringify(scenario.params);
  return [...runtime, join(here, 'runner.mjs'), competitor.id, scenario.kind, params];
}

function envFor(competitor) {
  const env = { ...process.env, ...competitor.env };
  if (!competitor.env?.PIDWATCH_PIDFD) delete env.PIDWATCH_PIDFD;
  return env;
}

/** Why a row does not run here, or null. */
function skipReason(competitor, scenario, ctx) {
  if (competitor.id === 'pidwatch-sigchld' && !scenario.sigchld) return 'not run';
  if (competitor.id === 'bun' && !ctx.bun) return 'no bun';
  if (competitor.id.startsWith('pidwatch') && !ctx.pidwatchBuilt) return 'not built';
  return null;
}

function addRatios(rows, scenario) {
  const byId = Object.fromEntries(rows.filter((r) => r.status === 'ok').map((r) => [r.id, r]));
  for (const row of rows) {
    if (row.status !== 'ok') continue;
    const baseline = scenario.baseline && byId[scenario.baseline];
    if (baseline && row !== baseline) row.xBaseline = row.median / baseline.median;
    const also = scenario.also && byId[scenario.also];
    if (also && baseline && row !== also && row !== baseline && row.id.startsWith('pidwatch'))
      row.xAlso = row.median / also.median;
    if (byId.floor) row.xFloor = row.median / byId.floor.median;
    if (byId.child_process) row.xChildProcess = row.median / byId.child_process.median;
    if (row.id === 'pidwatch-sigchld' && byId.pidwatch)
      row.xPidfd = row.median / byId.pidwatch.median;
  }
}

/**
 * Starts one process per competitor (set up one after another), then runs the
 * rounds interleaved, rotating the order each round, so that a change in the load
 * of the machine falls on every row alike.
 */
async function runScenario(scenario, ctx) {
  const started = process.hrtime.bigint();
  const rows = [];
  for (const competitor of scenario.rows ?? COMPETITORS) {
    if (interrupted) break;
    const reason = skipReason(competitor, scenario, ctx);
    if (reason === 'not run') continue;
    const row = { id: competitor.id, label: competitor.label, rounds: [] };
    rows.push(row);
    if (reason) {
      Object.assign(row, { status: 'skipped', reason });
      continue;
    }
    const argv = commandFor(competitor, scenario, ctx.bun);
    row.session = new Session(reaper, argv, envFor(competitor));
    try {
      await row.session.next(ctx.timeoutMs);
      row.status = 'ok';
    } catch (error) {
      fail(row, error);
    }
  }
  process.stderr.write(`${scenario.id}. ${scenario.title}\n`);
  const running = () => rows.filter((r) => r.status === 'ok');
  for (let r = 0; r < scenario.params.rounds && !interrupted; r++) {
    const order = running();
    for (let i = 0; i < order.length && !interrupted; i++) {
      const row = order[(i + r) % order.length];
      try {
        row.rounds.push(await row.session.round(ctx.timeoutMs));
      } catch (error) {
        fail(row, error);
      }
    }
    process.stderr.write(`  round ${r + 1}/${scenario.params.rounds}\n`);
  }
  for (const row of running()) {
    try {
      row.info = await row.session.end(ctx.timeoutMs);
      const { rounds } = row;
      const medians = Object.fromEntries(
        Object.keys(rounds[0]).map((k) => [k, summarize(rounds, k).median]),
      );
      Object.assign(row, summarize(rounds, scenario.metric), { medians });
      process.stderr.write(`  ${row.label.padEnd(19)} ${num(row.median)} ${scenario.unit}\n`);
    } catch (error) {
      fail(row, error);
    }
  }
  for (const row of rows) delete row.session;
  addRatios(rows, scenario);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`  (${seconds.toFixed(0)} s)\n`);
  return { ...scenario, rows, seconds };
}

function fail(row, error) {
  Object.assign(row, { status: 'failed', reason: error.message });
  process.stderr.write(`  ${row.label}: FAILED ${error.message}\n`);
  row.session?.stop();
}

const num = (v) => (v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(1));

function versions(ctx) {
  const manifest = new URL('package.json', import.meta.resolve('execa'));
  const execa = JSON.parse(readFileSync(manifest, 'utf8')).version;
  let bun = 'not present';
  if (ctx.bun) bun = execFileSync(ctx.bun, ['--version'], { encoding: 'utf8' }).trim();
  return `pidwatch (this tree), child_process (Node ${process.version}), execa ${execa}, Bun ${bun}`;
}

function outputBase(opts) {
  if (opts.only) return join(resultsDir, 'partial');
  return join(resultsDir, opts.quick ? 'quick' : 'latest');
}

function write(base, result) {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(result));
  writeFileSync(`${base}.svg`, renderSvg(result));
  process.stderr.write(`wrote ${base}.{json,md,svg}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const base = outputBase(opts);
  if (opts.render) {
    const result = JSON.parse(readFileSync(`${base}.json`, 'utf8'));
    process.stdout.write(renderText(result));
    write(base, result);
    return;
  }
  buildFloor();
  const ctx = {
    bun: findBun(),
    pidwatchBuilt: existsSync(join(here, '..', 'dist', 'index.js')),
    timeoutMs: (opts.quick ? 60 : 180) * 1000,
  };
  const notes = [];
  if (!ctx.bun) notes.push('Bun.spawn: skipped: no bun (put bun on PATH or set BUN=/path/to/bun)');
  if (!ctx.pidwatchBuilt) notes.push('pidwatch: skipped: dist/index.js missing (npm run build)');
  for (const n of notes) process.stderr.write(`${n}\n`);

  const plan = scenarios(opts).filter((s) => !opts.only || opts.only.has(s.id));
  const started = Date.now();
  const loadBefore = machine().loadAverage;
  const results = [];
  for (const scenario of plan) {
    results.push(await runScenario(scenario, ctx));
    if (interrupted) return;
  }
  const failed = results.flatMap((s) => s.rows).filter((r) => r.status === 'failed');
  const result = {
    mode: opts.quick ? 'quick' : 'full',
    machine: { ...machine(), loadBefore },
    versions: versions(ctx),
    seconds: (Date.now() - started) / 1000,
    notes,
    scenarios: results,
  };
  process.stdout.write(renderText(result));
  process.stderr.write(`\nbench took ${result.seconds.toFixed(0)} s\n`);

  write(base, result);
  if (failed.length > 0) process.exitCode = 1;
}

await main();
