#!/usr/bin/env node
// Runs the native addon under AddressSanitizer and UndefinedBehaviorSanitizer.
//
// Builds a private copy of the addon with -fsanitize=address,undefined into a
// temporary directory (next to a copy of dist/, so the copy loads it), then runs
// test/fixtures/reliability/memcheck-exercise.mjs with libasan preloaded, once
// per watcher mode. The exercise goes through spawn, exec failures, pipes, kill,
// timeout, abort, watch of children and non-children, close, unref and a burst
// of short processes. Exits 0 when both runs are clean, 1 otherwise.
//
// Why ASan and not valgrind: valgrind 3.19 knows neither clone3 nor pidfd_open
// (so only the SIGCHLD fallback would run), and it turns a CLONE_VM|CLONE_VFORK
// clone into a fork, so a failed exec is no longer reported to the parent: the
// very paths worth checking would not run as they do in production. Leak
// detection is off: Node itself does not free everything at exit.
//
//   node test/native-memcheck.mjs [--keep]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeGyp, runNodeGyp } from '../scripts/node-gyp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');

function fail(message) {
  process.stderr.write(`native-memcheck: ${message}\n`);
  process.exit(1);
}

function sanitizerRuntime() {
  try {
    const path = execFileSync('cc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

if (!existsSync(join(root, 'dist', 'index.js')))
  fail('dist/ is missing: run `npm run build` first');
if (!findNodeGyp()) fail("cannot find npm's node-gyp");
const libasan = sanitizerRuntime();
if (!libasan) fail("cc has no libasan.so (install the compiler's sanitizer runtime)");

const work = mkdtempSync(join(tmpdir(), 'pidwatch-memcheck-'));
let failed = false;
try {
  cpSync(join(root, 'binding.gyp'), join(work, 'binding.gyp'));
  cpSync(join(root, 'native'), join(work, 'native'), { recursive: true });
  cpSync(join(root, 'dist'), join(work, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(work, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));

  const flags =
    '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1';
  process.stdout.write('native-memcheck: building the addon with ASan and UBSan...\n');
  const build = runNodeGyp(['rebuild', '--loglevel=error'], {
    cwd: work,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      CFLAGS: flags,
      CXXFLAGS: flags,
      LDFLAGS: '-fsanitize=address,undefined',
    },
  });
  if (build.status !== 0) fail('the sanitizer build failed');

  const exercise = join(root, 'test', 'fixtures', 'reliability', 'memcheck-exercise.mjs');
  for (const mode of ['pidfd', 'sigchld']) {
    const env = {
      ...process.env,
      LD_PRELOAD: libasan,
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:exitcode=99:halt_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=99',
      PIDWATCH_MEMCHECK_ENTRY: join(work, 'dist', 'index.js'),
    };
    delete env.PIDWATCH_PIDFD;
    if (mode === 'sigchld') env.PIDWATCH_PIDFD = '0';
    const run = spawnSync(process.execPath, [exercise], {
      env,
      encoding: 'utf8',
      timeout: 300_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const report = `${run.stdout}${run.stderr}`;
    const sanitizer =
      /ERROR: AddressSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer/.test(report);
    // The sanitized copy must be the one loaded, with the runtime in place.
    const loaded =
      run.stdout.includes(`addon ${join(work, 'build', 'Release', 'pidwatch.node')}\n`) &&
      run.stdout.includes('asan true\n');
    const clean = run.status === 0 && loaded && !sanitizer && /^memcheck ok/m.test(run.stdout);
    process.stdout.write(`native-memcheck: ${mode} mode: ${clean ? 'clean' : 'FAILED'}\n`);
    if (!clean) {
      failed = true;
      process.stdout.write(report);
      if (run.signal) process.stdout.write(`(killed by ${run.signal})\n`);
    }
  }
} finally {
  if (keep) process.stdout.write(`native-memcheck: kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
