#!/usr/bin/env node
// Runs the whole vitest suite once per watcher mode, one after another, as CPython
// runs its subprocess suite once per child watcher. The seccomp modes run vitest
// under build/Release/seccomp-launch, so every worker and every child it spawns
// inherits the filter; test/fallback.test.ts then checks that capabilities()
// reports the tier each filter should select.
//
//   node test/run-modes.mjs [--mode NAME[,NAME...]] [-- VITEST_ARG...]
//
// Prints one line per mode, then `N passed, N failed, N skipped` summed over all
// modes. Exits 1 if any mode failed or crashed, 2 on bad usage.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const launcher = join(root, 'build', 'Release', 'seccomp-launch');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');

/** Each mode: the seccomp rules to run under (none: plain) and extra environment. */
const MODES = [
  { name: 'pidfd', rules: [], env: {} },
  // Docker's old default profile: clone3 refused, pidfd_open still works.
  { name: 'clone3-eperm', rules: ['clone3:v0=EPERM'], env: {} },
  // Linux 5.2 and 5.3: pidfds exist but waitid(P_PIDFD) does not.
  { name: 'waitid-einval', rules: ['waitid:P_PIDFD=EINVAL'], env: {} },
  // Kernels before 5.2, gVisor, QEMU user mode: no pidfd at all.
  { name: 'nopidfd', rules: ['pidfd_open,pidfd_send_signal,clone3=ENOSYS'], env: {} },
  { name: 'sigchld', rules: [], env: { PIDWATCH_PIDFD: '0' } },
];

function usage(stream) {
  stream.write(
    'usage: node test/run-modes.mjs [--mode NAME[,NAME...]] [-- VITEST_ARG...]\n' +
      `modes: ${MODES.map((m) => m.name).join(', ')}\n`,
  );
}

function badUsage(reason) {
  process.stderr.write(`run-modes: ${reason}\n`);
  usage(process.stderr);
  process.exit(2);
}

function parseArgs(argv) {
  let selected = MODES;
  let vitestArgs = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      vitestArgs = argv.slice(i + 1);
      break;
    }
    if (arg === '--help' || arg === '-h') {
      usage(process.stdout);
      process.exit(0);
    }
    let list;
    if (arg === '--mode') {
      list = argv[++i];
      if (list === undefined) badUsage('--mode needs a value');
    } else if (arg.startsWith('--mode=')) {
      list = arg.slice('--mode='.length);
    } else {
      badUsage(`unknown argument '${arg}'`);
    }
    const names = list.split(',').filter((name) => name !== '');
    if (names.length === 0) badUsage('--mode needs at least one mode name');
    for (const name of names) {
      if (!MODES.some((m) => m.name === name)) badUsage(`unknown mode '${name}'`);
    }
    selected = MODES.filter((m) => names.includes(m.name));
  }
  return { selected, vitestArgs };
}

/** Runs the command with inherited output; resolves with its exit code or signal. */
function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal, error: null }));
  });
}

function readCounts(file) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  if (typeof report?.numTotalTests !== 'number') return null;
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + (report.numTodoTests ?? 0),
    failedSuites: report.numFailedTestSuites ?? 0,
    failures: failuresOf(report),
  };
}

/** Each failed test or suite as `file > name: first line of the message`. */
function failuresOf(report) {
  const lines = [];
  for (const suite of report.testResults ?? []) {
    const file = relative(root, suite.name ?? '');
    const failedTests = (suite.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failedTests) {
      lines.push(`${file} > ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`);
    }
    if (failedTests.length === 0 && suite.status === 'failed') {
      lines.push(`${file}: ${firstLine(suite.message)}`);
    }
  }
  return lines;
}

function firstLine(text) {
  return String(text ?? '')
    .split('\n')[0]
    .slice(0, 300);
}

async function runMode(mode, vitestArgs, outDir) {
  const reportFile = join(outDir, `${mode.name}.json`);
  const env = { ...process.env, PIDWATCH_TEST_MODE: mode.name, ...mode.env };
  if (!('PIDWATCH_PIDFD' in mode.env)) delete env.PIDWATCH_PIDFD;

  const vitestCommand = [
    vitest,
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${reportFile}`,
    ...vitestArgs,
  ];
  const banner = mode.rules.length > 0 ? `seccomp ${mode.rules.join(' ')}` : envText(mode.env);
  process.stdout.write(`\n=== mode ${mode.name}${banner ? ` (${banner})` : ''} ===\n`);

  let command = process.execPath;
  let args = vitestCommand;
  if (mode.rules.length > 0) {
    if (!existsSync(launcher)) {
      const problem = `${launcher} is missing: build it with npm run build:native`;
      process.stderr.write(`run-modes: mode ${mode.name} cannot run: ${problem}\n`);
      return { counts: null, problem };
    }
    command = launcher;
    args = [...mode.rules, '--', process.execPath, ...vitestCommand];
  }
  const result = await run(command, args, env);
  const counts = readCounts(reportFile);

  let problem = null;
  if (result.error) problem = `could not run: ${result.error.message}`;
  else if (result.signal) problem = `killed by ${result.signal}`;
  else if (counts === null) problem = `exited ${result.code} without a report`;
  else if (result.code !== 0 && counts.failed === 0)
    problem = `exited ${result.code}${counts.failedSuites ? `, ${counts.failedSuites} suites failed` : ''}`;
  else if (result.code !== 0) problem = `exited ${result.code}`;
  return { counts, problem };
}

function envText(env) {
  return Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}

const { selected, vitestArgs } = parseArgs(process.argv.slice(2));
const outDir = mkdtempSync(join(tmpdir(), 'pidwatch-modes-'));
const results = [];
try {
  for (const mode of selected) {
    results.push({ mode, ...(await runMode(mode, vitestArgs, outDir)) });
  }
} finally {
  rmSync(outDir, { recursive: true, force: true });
}

const total = { passed: 0, failed: 0, skipped: 0 };
let ok = true;
process.stdout.write('\n');
for (const { mode, counts, problem } of results) {
  const c = counts ?? { passed: 0, failed: 0, skipped: 0 };
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
  const failed = problem !== null || c.failed > 0;
  if (failed) ok = false;
  const line = `${mode.name.padEnd(14)} ${failed ? 'FAIL' : 'ok  '}  ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
  process.stdout.write(`${line}${problem ? `  (${problem})` : ''}\n`);
}
process.stdout.write(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
// Named again at the end, where a reader of only the tail of a long log finds them.
for (const { mode, counts } of results) {
  for (const failure of counts?.failures ?? [])
    process.stdout.write(`failed in ${mode.name}: ${failure}\n`);
}
process.exitCode = ok ? 0 : 1;
