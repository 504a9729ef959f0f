// spawn(): what runs, with which arguments, environment, directory and identity, and
// how a refusal by the kernel comes back.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { SpawnError, spawn, spawnAsync, spawnSync } from '../src/index.js';
import { isSigchldMode } from './helpers/mode.js';
import { fixture, procStat, readAll, runNode, trackChildren, waitForLine } from './helpers/proc.js';

const track = trackChildren();
const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-spawn-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs to the end: the exit status with all of stdout and stderr. */
async function run(file: string, args: string[] = [], options: Parameters<typeof spawn>[2] = {}) {
  const proc = track(spawn(file, args, options));
  const [stdout, stderr, status] = await Promise.all([
    proc.stdout ? readAll(proc.stdout) : Buffer.alloc(0),
    proc.stderr ? readAll(proc.stderr) : Buffer.alloc(0),
    proc.exited,
  ]);
  return { proc, status, stdout: stdout.toString(), stderr: stderr.toString() };
}

/** The error spawn() throws synchronously (the test fails if it returns instead). */
function spawnFailure(...args: Parameters<typeof spawn>): SpawnError {
  let proc: ReturnType<typeof spawn> | undefined;
  try {
    proc = spawn(...args);
  } catch (error) {
    return error as SpawnError;
  }
  track(proc);
  proc.kill('SIGKILL');
  throw new Error(`spawn(${JSON.stringify(args[0])}) did not throw; it started pid ${proc.pid}`);
}

describe('exit codes and signals', () => {
  it.each([0, 7, 255])('reports exit code %i', async (code) => {
    const { proc, status } = await run('/bin/sh', ['-c', `exit ${code}`]);
    expect(status.code).toBe(code);
    expect(status.signal).toBeNull();
    expect(status.coreDumped).toBe(false);
    expect(status.pid).toBe(proc.pid);
    expect(proc.exitCode).toBe(code);
    expect(proc.signalCode).toBeNull();
  });

  it('reports a kill by SIGKILL as signal with a null code', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.kill('SIGKILL')).toBe(true);
    const status = await proc.exited;
    expect(status).toMatchObject({ code: null, signal: 'SIGKILL', coreDumped: false });
    expect(proc.exitCode).toBeNull();
    expect(proc.signalCode).toBe('SIGKILL');
  });

  it('reports a signal the child sends itself', async () => {
    const { status } = await run('/bin/sh', ['-c', 'kill -s USR1 $$']);
    expect(status).toMatchObject({ code: null, signal: 'SIGUSR1' });
  });

  it('reports a core dump as the kernel does', async () => {
    // The oracle: perl's wait status of the same dump (WCOREDUMP), which depends on
    // core_pattern (a file, or a pipe to a handler) and on the handler accepting it.
    const script = 'ulimit -c unlimited; kill -s ABRT $$';
    const oracleDir = mkdtempSync(join(scratch, 'oracle-'));
    const kernelSays =
      execFileSync(
        'perl',
        ['-e', 'if (!fork) { exec @ARGV } wait; print(($? & 128) ? 1 : 0)', 'sh', '-c', script],
        { cwd: oracleDir, encoding: 'utf8' },
      ) === '1';

    const dir = mkdtempSync(join(scratch, 'core-'));
    const proc = track(
      spawn('/bin/sh', ['-c', 'ulimit -c unlimited && echo ready && exec sleep 60'], { cwd: dir }),
    );
    await waitForLine(proc.stdout!, 'ready');
    proc.kill('SIGABRT');
    const status = await proc.exited;
    expect(status).toMatchObject({ code: null, signal: 'SIGABRT' });
    expect(status.coreDumped).toBe(kernelSays);

    const pattern = execFileSync('cat', ['/proc/sys/kernel/core_pattern'], { encoding: 'utf8' });
    if (!pattern.startsWith('|') && !pattern.includes('/')) {
      // a plain file name: the core lands in the dumping process's cwd
      expect(readdirSync(dir).length).toBeGreaterThan(0);
      expect(status.coreDumped).toBe(true);
    }
  });

  it('reports coreDumped false for a signal that does not dump', async () => {
    const { status } = await run('/bin/sh', ['-c', 'ulimit -c unlimited; kill -s TERM $$']);
    expect(status).toMatchObject({ code: null, signal: 'SIGTERM', coreDumped: false });
  });
});

describe('refusals come back as a synchronous SpawnError', () => {
  const notExecutable = join(scratch, 'plain.txt');
  writeFileSync(notExecutable, 'echo never\n', { mode: 0o644 });

  it('exec of a missing file: ENOENT from execve', () => {
    const error = spawnFailure('/nonexistent/pidwatch-missing', ['a', 'b']);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      code: 'ENOENT',
      errno: -constants.errno.ENOENT,
      syscall: 'execve',
      path: '/nonexistent/pidwatch-missing',
    });
    expect(error.errno).toBe(-2);
    expect(error.spawnargs.slice(-2)).toEqual(['a', 'b']);
    expect(error.message).toBe(
      "spawn /nonexistent/pidwatch-missing: execve '/nonexistent/pidwatch-missing' failed: ENOENT",
    );
  });

  it('exec of a directory: EACCES', () => {
    const error = spawnFailure(scratch);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({
      code: 'EACCES',
      errno: -constants.errno.EACCES,
      syscall: 'execve',
      path: scratch,
    });
  });

  it('exec of a file without the execute bit: EACCES', () => {
    const error = spawnFailure(notExecutable, ['x']);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'EACCES', errno: -13, syscall: 'execve' });
    expect(error.path).toBe(notExecutable);
    expect(error.spawnargs.slice(-1)).toEqual(['x']);
  });

  it('names errnos that Node leaves unnamed (ENOEXEC, ESTALE): SpawnError.code', () => {
    const error = new SpawnError(constants.errno.ENOEXEC, 'execve', '/x', ['/x']);
    expect(error).toMatchObject({ code: 'ENOEXEC', errno: -constants.errno.ENOEXEC });
    expect(error.message).toBe("spawn /x: execve '/x' failed: ENOEXEC");
    expect(new SpawnError(-constants.errno.ESTALE, 'execve', '/x', ['/x']).code).toBe('ESTALE');
  });

  it('a path through a regular file: ENOTDIR', () => {
    const error = spawnFailure(join(notExecutable, 'sub'));
    expect(error).toMatchObject({ code: 'ENOTDIR', errno: -constants.errno.ENOTDIR });
  });

  it('a script whose interpreter is missing: ENOENT from execve', () => {
    const script = join(scratch, 'bad-interpreter');
    writeFileSync(script, '#!/nonexistent/interpreter\n', { mode: 0o755 });
    const error = spawnFailure(script);
    expect(error).toMatchObject({ code: 'ENOENT', syscall: 'execve', path: script });
  });

  it('an argument longer than the kernel takes: E2BIG', () => {
    // MAX_ARG_STRLEN is 32 pages: 128 KiB
    const error = spawnFailure('/bin/true', ['x'.repeat(256 * 1024)]);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({
      code: 'E2BIG',
      errno: -constants.errno.E2BIG,
      syscall: 'execve',
    });
  });

  it('a missing cwd: ENOENT from chdir, and the message names command and directory', () => {
    const cwd = join(scratch, 'no-such-dir');
    const error = spawnFailure('ls', ['-l'], { cwd });
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'chdir', path: cwd });
    expect(error.message).toBe(`spawn ls: chdir '${cwd}' failed: ENOENT`);
  });

  it('a cwd that is a file: ENOTDIR from chdir', () => {
    const error = spawnFailure('/bin/true', [], { cwd: notExecutable });
    expect(error).toMatchObject({ code: 'ENOTDIR', syscall: 'chdir' });
  });

  it('a name found nowhere in PATH: ENOENT', () => {
    const error = spawnFailure('pidwatch-no-such-command', [], { env: { PATH: scratch } });
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', errno: -2 });
    expect(error.message).toBe(
      "spawn pidwatch-no-such-command: execve 'pidwatch-no-such-command' failed: ENOENT",
    );
  });
});

describe('a pidfd that cannot be put on the event loop', () => {
  // Someone closed a running child's pidfd behind pidwatch's back: its number is
  // still held by that child's handle, and the next spawn's pidfd gets that number,
  // which pidwatch refuses (EEXIST): two handles on one number could signal the
  // wrong process. Unchecked, that spawn crashed the process.
  it.skipIf(isSigchldMode())(
    'fails the spawn with the errno; the child is killed and reaped, no fd is left',
    async () => {
      const result = await runNode([fixture('stale-pidfd.mjs')]);
      expect(result.stderr).toBe('');
      expect(result).toMatchObject({ code: 0, signal: null });
      const report = JSON.parse(result.stdout);
      expect(report).toMatchObject({
        pidfd: true,
        error: { name: 'SpawnError', code: 'EEXIST', syscall: 'epoll_ctl' },
        others: [],
        gained: [],
      });
    },
  );

  it('an fd number below the ceiling that is not open: EBADF', () => {
    const error = spawnFailure('/bin/true', [], {
      stdio: ['ignore', 'ignore', 'ignore', 0x7fffffbf],
    });
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'EBADF' });
  });
});

describe('what runs', () => {
  const bin1 = join(scratch, 'bin1');
  const bin2 = join(scratch, 'bin2');
  mkdirSync(bin1);
  mkdirSync(bin2);
  writeFileSync(join(bin1, 'pw-tool'), '#!/bin/sh\necho bin1 "$@"\n', { mode: 0o644 });
  writeFileSync(join(bin2, 'pw-tool'), '#!/bin/sh\necho bin2 "$@"\n');
  chmodSync(join(bin2, 'pw-tool'), 0o755);

  it('looks a name without a slash up in the PATH of options.env', async () => {
    // bin1 holds a non-executable pw-tool: skipped, as execvp does
    const { status, stdout } = await run('pw-tool', ['x', 'y'], {
      env: { PATH: `${join(scratch, 'nothing')}:${bin1}:${bin2}` },
    });
    expect(status.code).toBe(0);
    expect(stdout).toBe('bin2 x y\n');
  });

  it('searches the default path, as execvp does, when the env has no PATH', async () => {
    const { status, stdout } = await run('echo', ['no-path'], { env: {} });
    expect(status.code).toBe(0);
    expect(stdout).toBe('no-path\n');
  });

  it('resolves a relative PATH entry, and the empty one, against options.cwd', async () => {
    const project = join(scratch, 'project');
    mkdirSync(join(project, 'tools'), { recursive: true });
    writeFileSync(join(project, 'tools', 'pw-rel'), '#!/bin/sh\necho tools "$@"\n', {
      mode: 0o755,
    });
    writeFileSync(join(project, 'pw-here'), '#!/bin/sh\necho here\n', { mode: 0o755 });
    // relative to the child's cwd, as execvp in the child sees them; not this process's
    const relative = await run('pw-rel', ['x'], { cwd: project, env: { PATH: 'nothing:tools' } });
    expect(relative).toMatchObject({ stdout: 'tools x\n', status: { code: 0 } });
    const empty = await run('pw-here', [], { cwd: project, env: { PATH: `${bin1}::/usr/bin` } });
    expect(empty).toMatchObject({ stdout: 'here\n', status: { code: 0 } });
    const missing = spawnFailure('pw-rel', [], { env: { PATH: 'tools' } });
    expect(missing).toMatchObject({ code: 'ENOENT', syscall: 'execve', path: 'pw-rel' });
  });

  // With uid/gid the new credentials decide what may run: a file only root may run
  // is skipped (EACCES), as execvp under that uid would; the next entry runs.
  describe.skipIf(process.getuid?.() !== 0)('under another uid', () => {
    const open = mkdtempSync(join(tmpdir(), 'pidwatch-path-'));
    afterAll(() => rmSync(open, { recursive: true, force: true }));
    chmodSync(open, 0o755);
    for (const name of ['root-only', 'anyone']) mkdirSync(join(open, name), { mode: 0o755 });
    writeFileSync(join(open, 'root-only', 'pw-who'), '#!/bin/sh\necho root-only\n', {
      mode: 0o700,
    });
    writeFileSync(join(open, 'anyone', 'pw-who'), '#!/bin/sh\necho anyone\n', { mode: 0o755 });
    const nobody = { uid: 65534, gid: 65534 };

    it('skips a file the new uid may not run and runs the next one', async () => {
      const PATH = `${join(open, 'root-only')}:${join(open, 'anyone')}`;
      const result = await run('pw-who', [], { ...nobody, env: { PATH } });
      expect(result).toMatchObject({ stdout: 'anyone\n', status: { code: 0 } });
    });

    it('reports EACCES when a file was found but the new uid may run none', () => {
      const error = spawnFailure('pw-who', [], {
        ...nobody,
        env: { PATH: join(open, 'root-only') },
      });
      expect(error).toMatchObject({ code: 'EACCES', syscall: 'execve' });
    });
  });

  it('runs an executable without a #! line or an ELF header as a /bin/sh script, as execvp does', async () => {
    const script = join(scratch, 'no-shebang');
    writeFileSync(script, 'echo "ran $0 $*"\n', { mode: 0o755 });
    const proc = spawn(script, ['a', 'b c'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [output, status] = await Promise.all([readAll(proc.stdout!), proc.exited]);
    expect(status.code).toBe(0);
    expect(output.toString()).toBe(`ran ${script} a b c\n`);
    expect(execFileSync(script, ['a', 'b c'], { encoding: 'utf8' })).toBe(output.toString());
  });

  it('does not look up a name that holds a slash', () => {
    const error = spawnFailure('./pw-tool', [], { env: { PATH: bin2 } });
    expect(error.code).toBe('ENOENT');
  });

  it('starts the child with no signal blocked, ignored or caught, whatever the parent set', async () => {
    const signalMasks = (status: string) =>
      Object.fromEntries(
        status
          .split('\n')
          .filter((line) => /^Sig(Blk|Ign|Cgt):/.test(line))
          .map((line) => line.split(':\t') as [string, string]),
      );
    const handler = () => {};
    process.on('SIGUSR2', handler);
    try {
      const parent = signalMasks(readFileSync('/proc/self/status', 'utf8'));
      // Node ignores SIGPIPE (13) and now catches SIGUSR2 (12): both bits set in the parent.
      expect(BigInt(`0x${parent.SigIgn}`) & (1n << 12n)).not.toBe(0n);
      expect(BigInt(`0x${parent.SigCgt}`) & (1n << 11n)).not.toBe(0n);
      const { status, stdout } = await run('cat', ['/proc/self/status']);
      expect(status.code).toBe(0);
      expect(signalMasks(stdout)).toEqual({
        SigBlk: '0000000000000000',
        SigIgn: '0000000000000000',
        SigCgt: '0000000000000000',
      });
    } finally {
      process.off('SIGUSR2', handler);
    }
  });

  it('passes arguments verbatim: spaces, quotes, empty strings, non-ASCII', async () => {
    const args = ['a b', '', '"q"', "'s'", '$HOME', 'é ☃', '*'];
    const { stdout } = await run('/bin/sh', ['-c', 'printf "%s\\n" "$@"', 'sh', ...args]);
    expect(stdout).toBe(`${args.join('\n')}\n`);
  });

  it('replaces the environment: only the given variables, undefined dropped', async () => {
    const { stdout } = await run('/usr/bin/env', [], {
      env: { FOO: 'bar', EMPTY: '', DROPPED: undefined },
    });
    expect(stdout.trim().split('\n').sort()).toEqual(['EMPTY=', 'FOO=bar']);
  });

  it('passes process.env as it is at spawn time by default', async () => {
    process.env.PIDWATCH_TEST_DEFAULT_ENV = 'seen';
    try {
      const { stdout } = await run('/bin/sh', ['-c', 'echo "$PIDWATCH_TEST_DEFAULT_ENV"']);
      expect(stdout).toBe('seen\n');
    } finally {
      delete process.env.PIDWATCH_TEST_DEFAULT_ENV;
    }
  });

  // pidwatch keeps a copy of process.env while the environment holds exactly it
  const envPrinters = {
    spawn: async () => (await run('/usr/bin/env')).stdout,
    spawnAsync: async () => {
      const proc = track(
        await spawnAsync('/usr/bin/env', [], { stdio: ['ignore', 'pipe', 'ignore'] }),
      );
      const [stdout] = await Promise.all([readAll(proc.stdout!), proc.exited]);
      return stdout.toString();
    },
    spawnSync: async () => String(spawnSync('/usr/bin/env').stdout),
  };
  it.each(Object.keys(envPrinters) as Array<keyof typeof envPrinters>)(
    '%s passes each change to the environment, made by this thread or another',
    async (way) => {
      const printed = async () =>
        (await envPrinters[way]())
          .split('\n')
          .filter((line) => line.startsWith('PW_ENV_'))
          .sort()
          .join(' ');
      const setInWorker = (source: string) =>
        new Promise((resolve, reject) => {
          new Worker(source, { eval: true, env: SHARE_ENV })
            .once('exit', resolve)
            .once('error', reject);
        });
      const saved = process.env;
      try {
        expect(await printed()).toBe('');
        expect(await printed()).toBe('');
        process.env.PW_ENV_A = 'one';
        expect(await printed()).toBe('PW_ENV_A=one');
        process.env.PW_ENV_A = 'two';
        expect(await printed()).toBe('PW_ENV_A=two');
        await setInWorker("process.env.PW_ENV_B = 'worker'");
        expect(await printed()).toBe('PW_ENV_A=two PW_ENV_B=worker');
        await setInWorker("process.env.PW_ENV_B = 'again'");
        expect(await printed()).toBe('PW_ENV_A=two PW_ENV_B=again');
        delete process.env.PW_ENV_A;
        expect(await printed()).toBe('PW_ENV_B=again');
        process.env = { ...saved, PW_ENV_A: 'own object' };
        expect(await printed()).toBe('PW_ENV_A=own object PW_ENV_B=again');
        process.env = saved;
        expect(await printed()).toBe('PW_ENV_B=again');
      } finally {
        process.env = saved;
        delete process.env.PW_ENV_A;
        delete process.env.PW_ENV_B;
      }
    },
  );

  it('sets argv[0] from argv0, and to the file by default', async () => {
    const custom = await run('/bin/cat', ['/proc/self/cmdline'], { argv0: 'my-cat' });
    expect(custom.stdout).toBe('my-cat\0/proc/self/cmdline\0');
    const plain = await run('/bin/cat', ['/proc/self/cmdline']);
    expect(plain.stdout).toBe('/bin/cat\0/proc/self/cmdline\0');
  });

  it('runs in cwd, given as a string or a file URL', async () => {
    const dir = mkdtempSync(join(scratch, 'cwd-'));
    expect((await run('/bin/pwd', ['-P'], { cwd: dir })).stdout).toBe(`${dir}\n`);
    expect((await run('/bin/pwd', ['-P'], { cwd: pathToFileURL(dir) })).stdout).toBe(`${dir}\n`);
  });

  it('gives pid as the pid of the process that runs', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(Number.isInteger(proc.pid) && proc.pid > 0).toBe(true);
    const stat = procStat(proc.pid);
    expect(stat?.ppid).toBe(process.pid);
    proc.kill('SIGKILL');
    await proc.exited;
  });

  it('starts a new session and process group when detached', async () => {
    const detached = await run('/bin/cat', ['/proc/self/stat'], { detached: true });
    const fields = detached.stdout.slice(detached.stdout.lastIndexOf(')') + 2).split(' ');
    expect(Number(fields[2])).toBe(detached.proc.pid); // pgrp
    expect(Number(fields[3])).toBe(detached.proc.pid); // session

    const attached = await run('/bin/cat', ['/proc/self/stat']);
    const own = procStat(process.pid)!;
    const attachedFields = attached.stdout.slice(attached.stdout.lastIndexOf(')') + 2).split(' ');
    expect(Number(attachedFields[3])).toBe(own.session);
  });

  it.skipIf(process.getuid?.() !== 0)('runs as uid and gid (needs root)', async () => {
    const { status, stdout } = await run('/usr/bin/id', [], { uid: 65534, gid: 65534 });
    expect(status.code).toBe(0);
    expect(stdout).toMatch(/^uid=65534\b.* gid=65534\b/);
    // as child_process does: no supplementary group of the parent is kept
    expect(stdout).not.toMatch(/groups=.*\b0\(/);
  });
});
