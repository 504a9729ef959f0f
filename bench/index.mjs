// The benchmark suite: every scenario of issue 6 for every competitor, each in a
// fresh process of its own, then one table on stdout and the results in
// bench/results/ (latest.json, latest.md, latest.svg; quick mode writes quick.*).
//
//   npm run bench [-- --quick] [-- --only 1,5a]
//
// Bun.spawn rows run when `bun` is on PATH or BUN=/path/to/bun is set.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './lib/machine.mjs';
import { COMPETITORS, scenarios } from './lib/plan.mjs';
import { renderMarkdown, renderSvg, renderText } from './lib/report.mjs';
import { summarize } from './lib/stats.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, '.build');
const resultsDir = join(here, 'results');
const reaper = join(buildDir, 'floor-reaper');

function parseArgs(argv) {
  const opts = { quick: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') opts.quick = true;
    else if (argv[i] === '--only') opts.only = new Set(argv[++i]?.split(','));
    else {
      process.stderr.write('usage: node bench/index.mjs [--quick] [--only ID[,ID...]]\n');
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

let current = null;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping\n`);
    current?.kill('SIGTERM');
    process.exitCode = 130;
    setTimeout(() => process.exit(130), 5000).unref();
    if (current === null) process.exit(130);
  });
}

/**
 * Runs argv under the reaper (which kills and reaps everything the program leaves
 * behind) and parses the JSON the program prints.
 */
function runJob(argv, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(reaper, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      stderr += `timed out after ${timeoutMs / 1000} s\n`;
      child.kill('SIGTERM');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      try {
        if (code !== 0) throw new Error(`exit ${code ?? signal}`);
        resolve({ ok: true, result: JSON.parse(stdout.trim().split('\n').pop()) });
      } catch (error) {
        const detail = stderr.trim().split('\n').slice(-3).join(' / ');
        resolve({ ok: false, reason: `${error.message}${detail ? `: ${detail}` : ''}` });
      }
    });
  });
}

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

function addRatios(rows) {
  const byId = Object.fromEntries(rows.filter((r) => r.status === 'ok').map((r) => [r.id, r]));
  for (const row of rows) {
    if (row.status !== 'ok') continue;
    if (byId.floor) row.xFloor = row.median / byId.floor.median;
    if (byId.child_process) row.xChildProcess = row.median / byId.child_process.median;
    if (row.id === 'pidwatch-sigchld' && byId.pidwatch)
      row.xPidfd = row.median / byId.pidwatch.median;
  }
}

async function runScenario(scenario, ctx) {
  const rows = [];
  for (const competitor of COMPETITORS) {
    const reason = skipReason(competitor, scenario, ctx);
    if (reason === 'not run') continue;
    const row = { id: competitor.id, label: competitor.label };
    rows.push(row);
    if (reason) {
      Object.assign(row, { status: 'skipped', reason });
      continue;
    }
    process.stderr.write(`  ${scenario.id.padEnd(3)} ${competitor.label.padEnd(19)} `);
    const started = process.hrtime.bigint();
    const argv = commandFor(competitor, scenario, ctx.bun);
    const job = await runJob(argv, envFor(competitor), ctx.timeoutMs);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (job.ok) {
      const { rounds, info } = job.result;
      const medians = Object.fromEntries(
        Object.keys(rounds[0]).map((k) => [k, summarize(rounds, k).median]),
      );
      Object.assign(row, { status: 'ok', ...summarize(rounds, scenario.metric), medians });
      Object.assign(row, { rounds, info, seconds });
      process.stderr.write(`${row.median.toFixed(1)} ${scenario.unit} (${seconds.toFixed(1)} s)\n`);
    } else {
      Object.assign(row, { status: 'failed', reason: job.reason, seconds });
      process.stderr.write(`FAILED ${job.reason}\n`);
    }
  }
  addRatios(rows);
  return { ...scenario, rows };
}

function versions(ctx) {
  const manifest = new URL('package.json', import.meta.resolve('execa'));
  const execa = JSON.parse(readFileSync(manifest, 'utf8')).version;
  let bun = 'not present';
  if (ctx.bun) bun = execFileSync(ctx.bun, ['--version'], { encoding: 'utf8' }).trim();
  return `pidwatch (this tree), child_process (Node ${process.version}), execa ${execa}, Bun ${bun}`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  buildFloor();
  const ctx = {
    bun: findBun(),
    pidwatchBuilt: existsSync(join(here, '..', 'dist', 'index.js')),
    timeoutMs: (opts.quick ? 60 : 300) * 1000,
  };
  const notes = [];
  if (!ctx.bun) notes.push('Bun.spawn: skipped: no bun (put bun on PATH or set BUN=/path/to/bun)');
  if (!ctx.pidwatchBuilt) notes.push('pidwatch: skipped: dist/index.js missing (npm run build)');
  for (const n of notes) process.stderr.write(`${n}\n`);

  const plan = scenarios(opts).filter((s) => !opts.only || opts.only.has(s.id));
  const started = Date.now();
  const results = [];
  for (const scenario of plan) {
    results.push(await runScenario(scenario, ctx));
    if (process.exitCode === 130) return;
  }
  const failed = results.flatMap((s) => s.rows).filter((r) => r.status === 'failed');
  const result = {
    mode: opts.quick ? 'quick' : 'full',
    rounds: opts.quick ? 3 : 5,
    machine: machine(),
    versions: versions(ctx),
    seconds: (Date.now() - started) / 1000,
    notes,
    scenarios: results,
  };
  process.stdout.write(renderText(result));
  process.stderr.write(`\nbench took ${result.seconds.toFixed(0)} s\n`);

  const base = join(resultsDir, opts.quick ? 'quick' : 'latest');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(result));
  writeFileSync(`${base}.svg`, renderSvg(result));
  process.stderr.write(`wrote ${base}.{json,md,svg}\n`);
  if (failed.length > 0) process.exitCode = 1;
}

await main();
