// watch(pid): any process, child or not, watched without being reaped. Runs in every
// watcher mode; without pidfds (sigchld mode) watch() polls /proc/<pid>/stat, and what it
// can learn of a non-child's status is said next to each test that depends on it.
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { onAnyExit } from '../src/exits-hub.js';
import {
  capabilities,
  type ExitStatus,
  ProcessGoneError,
  spawn,
  type WatchedProcess,
  watch,
} from '../src/index.js';
import {
  distEntry,
  identify,
  isZombie,
  procStat,
  readAll,
  readableByOthers,
  runNode,
  stillThere,
  trackChildren,
  waitFor,
  waitForLine,
} from './helpers/proc.js';

const caps = capabilities();
const pidfdMode = caps.mode === 'pidfd';
/**
 * Whether watch() learns the status of a non-child that its parent reaps promptly. With
 * pidfds the kernel publishes it (PIDFD_INFO_EXIT, Linux >= 6.15). Without, watch() polls
 * /proc and sees the status only if it happens to look while the process is a zombie:
 * after the reap nothing in the system tells it any more, so code and signal are null.
 */
const statusOfNonChild = pidfdMode && caps.pidfdInfoExit;
const NO_STATUS_REASON = statusOfNonChild
  ? ''
  : 'no PIDFD_INFO_EXIT here (sigchld mode or an old kernel): a reaped non-child leaves no status';

const holdScript = fileURLToPath(new URL('./fixtures/watch/hold.mjs', import.meta.url));
const track = trackChildren();

/** Every child_process child a test starts is killed, and reaped, after the test. */
const started: ChildProcess[] = [];
afterEach(async () => {
  const running = started.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    running.map(
      (c) =>
        new Promise((resolve) => {
          c.once('exit', resolve);
          c.kill('SIGKILL');
        }),
    ),
  );
});

/** Starts a process through node:child_process (not pidwatch): Node is its parent and reaper. */
function startChild(file: string, args: string[]): ChildProcess {
  const child = spawnChild(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  track(child as { pid: number });
  return child;
}

/** Resolves with the code and signal of a child_process child's 'exit' event. */
function childExit(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The fds of this process that are pidfds. */
function pidfds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]';
      } catch {
        return false;
      }
    });
}

/**
 * A grandchild: `sh` (our child) starts a background subshell that waits for a line on
 * sh's stdin, then exits with `code`; sh reaps it. Resolves with sh and the subshell's PID.
 */
async function startGrandchild(code: number): Promise<{ sh: ChildProcess; pid: number }> {
  const sh = startChild('sh', ['-c', `exec 3<&0; (read line <&3; exit ${code}) & echo $!; wait`]);
  const pid = Number(await waitForLine(sh.stdout!));
  expect(procStat(pid)?.ppid).toBe(sh.pid);
  return { sh, pid };
}

/** A PID that names no process: a child that has exited and been reaped. */
async function missingPid(): Promise<number> {
  const child = startChild('true', []);
  await childExit(child);
  await waitFor(() => procStat(child.pid!) === null, 'the reaped child to leave /proc');
  return child.pid!;
}

describe('watch() of a process that is not our child', () => {
  it.skipIf(!statusOfNonChild)(
    `reports a grandchild's exit code, and its parent still reaps it ${NO_STATUS_REASON}`,
    async () => {
      const { sh, pid } = await startGrandchild(5);
      const watched = watch(pid);
      expect(watched.pid).toBe(pid);
      expect(typeof watched.pidfd).toBe('number');
      sh.stdin!.write('go\n');
      const status = await watched.exited;
      expect(status).toMatchObject({ pid, code: 5, signal: null, coreDumped: false });
      expect(status.resourceUsage).toBeNull();
      // sh's `wait` got it: sh ends normally, its child gone from /proc.
      expect(await childExit(sh)).toEqual({ code: 0, signal: null });
      expect(procStat(pid)).toBeNull();
      expect(watched.pidfd).toBeNull();
    },
  );

  it('resolves once a grandchild exits, in every mode (code 5, or null where it cannot be known)', async () => {
    const { sh, pid } = await startGrandchild(5);
    const watched = watch(pid);
    sh.stdin!.write('go\n');
    const status = await watched.exited;
    expect(status.pid).toBe(pid);
    expect(status.signal).toBeNull();
    if (statusOfNonChild) expect(status.code).toBe(5);
    else expect([5, null]).toContain(status.code);
    expect(await childExit(sh)).toEqual({ code: 0, signal: null });
  });

  it('leaves a child_process child to Node: its exit event fires with the right code', async () => {
    const child = startChild('sh', ['-c', 'read line; exit 7']);
    const watched = watch(child.pid!);
    const exit = childExit(child);
    child.stdin!.write('go\n');
    const [event, status] = await Promise.all([exit, watched.exited]);
    expect(event).toEqual({ code: 7, signal: null });
    expect(status.pid).toBe(child.pid);
    if (statusOfNonChild) expect(status).toMatchObject({ code: 7, signal: null });
    else expect([7, null]).toContain(status.code);
  });

  it('sees a zombie: resolves with its exit code and leaves it to its parent', async () => {
    // perl forks a child that exits 3 and never waits for it: the child stays a zombie.
    const parent = startChild('perl', [
      '-e',
      '$| = 1; my $pid = fork; exit 3 unless $pid; print "$pid\\n"; sleep 60',
    ]);
    const pid = Number(await waitForLine(parent.stdout!));
    await waitFor(() => isZombie(pid), 'the forked child to become a zombie');
    const zombie = identify(pid);

    const status = await watch(pid).exited;
    expect(status).toMatchObject({ pid, code: 3, signal: null, coreDumped: false });
    // Not reaped by pidwatch: still its parent's zombie.
    expect(isZombie(pid)).toBe(true);
    expect(stillThere(zombie)).toBe(true);
    parent.kill('SIGKILL');
    await childExit(parent);
    await waitFor(() => !stillThere(zombie), 'init to reap the orphaned zombie');
  });

  it('sees a zombie killed by a signal', async () => {
    const parent = startChild('perl', [
      '-e',
      '$| = 1; my $pid = fork; if (!$pid) { kill "KILL", $$; } print "$pid\\n"; sleep 60',
    ]);
    const pid = Number(await waitForLine(parent.stdout!));
    await waitFor(() => isZombie(pid), 'the forked child to become a zombie');
    expect(await watch(pid).exited).toMatchObject({ pid, code: null, signal: 'SIGKILL' });
  });
});

/**
 * A zombie that crashed (SIGSEGV, no core file), forked by a perl started as `uid`
 * (this process's own by default) that never reaps it.
 */
async function startCrashedZombie(uid?: number): Promise<{ parent: ChildProcess; pid: number }> {
  const ids = uid === undefined ? {} : { uid, gid: uid };
  const parent = spawnChild(
    'sh',
    [
      '-c',
      'ulimit -c 0; exec perl -e \'$| = 1; my $pid = fork; if (!$pid) { kill "SEGV", $$; } print "$pid\\n"; sleep 60\'',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], ...ids },
  );
  started.push(parent);
  track(parent as { pid: number });
  const pid = Number(await waitForLine(parent.stdout!));
  await waitFor(() => isZombie(pid), 'the forked child to become a zombie');
  return { parent, pid };
}

/** watch(pid) in a node process running as `uid`: the status it resolves with. */
async function watchAs(uid: number, pid: number): Promise<{ code: unknown; signal: unknown }> {
  const watcher = spawnChild(process.execPath, [holdScript, String(pid), 'ref', distEntry], {
    uid,
    gid: uid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(watcher);
  const [out, err] = await Promise.all([
    readAll(watcher.stdout!),
    readAll(watcher.stderr!),
    childExit(watcher),
  ]);
  expect(err.toString(), `the watcher running as uid ${uid} failed`).toBe('');
  return JSON.parse(out.toString().split('\n')[1]);
}

// The kernel shows a zombie's wait status in /proc/<pid>/stat only to a reader with
// ptrace access to it (same uid, euid and suid, or CAP_SYS_PTRACE); to anyone else
// it shows 0, which reads as "exit code 0". Such a status is unknown: null, null.
// (It runs the fixture and the built package as uid 65534, so they must be readable by it.)
describe.skipIf(
  process.getuid?.() !== 0 || !readableByOthers(holdScript) || !readableByOthers(distEntry),
)('watch() of a zombie run by another user', () => {
  const nobody = 65534;

  it('a crashed root zombie is unknown to a watcher running as uid 65534: code and signal null, never code 0', async () => {
    const { pid } = await startCrashedZombie();
    expect(await watchAs(nobody, pid)).toEqual({ code: null, signal: null });
    // The same zombie watched with the right to see its status (root): the crash.
    expect(await watch(pid).exited).toMatchObject({ pid, code: null, signal: 'SIGSEGV' });
  });

  it('a crashed zombie of uid 65534 is seen by a watcher of that uid: SIGSEGV', async () => {
    const { pid } = await startCrashedZombie(nobody);
    expect(await watchAs(nobody, pid)).toEqual({ code: null, signal: 'SIGSEGV' });
  });
});

describe('watch() of a missing PID, and bad arguments', () => {
  it('throws ProcessGoneError with code ESRCH for a PID that names no process', async () => {
    const pid = await missingPid();
    let caught: unknown;
    try {
      watch(pid);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProcessGoneError);
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toMatchObject({ code: 'ESRCH' });
    expect(String((caught as Error).message)).toContain(String(pid));
  });

  it('throws ProcessGoneError for a PID above pid_max', () => {
    expect(() => watch(0x3fffffff)).toThrow(ProcessGoneError);
  });

  it('throws ProcessGoneError for the ID of a thread, which names no process', () => {
    const tid = Number(readdirSync('/proc/self/task').find((t) => Number(t) !== process.pid));
    expect(procStat(tid)).not.toBeNull();
    let caught: unknown;
    let watched: WatchedProcess | undefined;
    try {
      watched = watch(tid);
    } catch (error) {
      caught = error;
    }
    watched?.close();
    expect(caught).toBeInstanceOf(ProcessGoneError);
    expect(caught).toMatchObject({ code: 'ESRCH' });
  });

  it('leaks no fd when the PID is missing', async () => {
    const pid = await missingPid();
    const before = pidfds().length;
    for (let i = 0; i < 20; i++) expect(() => watch(pid)).toThrow(ProcessGoneError);
    expect(pidfds().length).toBe(before);
  });

  it.each([
    [0, 'ERR_INVALID_ARG_VALUE'],
    [-1, 'ERR_INVALID_ARG_VALUE'],
    [1.5, 'ERR_INVALID_ARG_VALUE'],
    [Number.NaN, 'ERR_INVALID_ARG_VALUE'],
    [Number.POSITIVE_INFINITY, 'ERR_INVALID_ARG_VALUE'],
    ['x', 'ERR_INVALID_ARG_TYPE'],
    ['123', 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
    [undefined, 'ERR_INVALID_ARG_TYPE'],
  ])('throws a TypeError for pid %s (%s)', (pid, code) => {
    let caught: unknown;
    try {
      watch(pid as number);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TypeError);
    expect(caught).toMatchObject({ code });
  });

  it('throws a TypeError for an unknown signal name, and sends nothing', async () => {
    const child = startChild('sleep', ['60']);
    const watched = watch(child.pid!);
    expect(() => watched.kill('SIGNOPE' as NodeJS.Signals)).toThrow(TypeError);
    expect(procStat(child.pid!)?.state).not.toBe('Z');
    watched.close();
  });
});

describe('close()', () => {
  it('rejects a pending exited with an AbortError, never reported as unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const child = startChild('sleep', ['60']);
      const before = pidfds().length;
      const watched = watch(child.pid!);
      if (pidfdMode) expect(pidfds().length).toBe(before + 1);
      watched.close();
      // Node reports unhandled rejections once the microtask queue drains: give it
      // two turns of the event loop with nobody handling `exited`.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(unhandled).toEqual([]);

      const error = await watched.exited.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('AbortError');
      expect(watched.pidfd).toBeNull();
      expect(pidfds().length).toBe(before);
      expect(watched.kill()).toBe(false);
      expect(watched.kill(0)).toBe(false);
      // Closing stops watching; it does not touch the process.
      expect(procStat(child.pid!)?.state).toMatch(/^[RSD]$/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('is a no-op after the exit, and a second close() too', async () => {
    const child = startChild('true', []);
    const watched = watch(child.pid!);
    const status = await watched.exited;
    watched.close();
    watched.close();
    expect(await watched.exited).toBe(status);
    expect(watched.kill()).toBe(false);
  });

  it('closes many watches without leaking pidfds', async () => {
    const child = startChild('sleep', ['60']);
    const before = pidfds().length;
    const watches: WatchedProcess[] = [];
    for (let i = 0; i < 50; i++) watches.push(watch(child.pid!));
    for (const w of watches) w.close();
    expect(pidfds().length).toBe(before);
    const results = await Promise.allSettled(watches.map((w) => w.exited));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
  });
});

describe('kill() through watch()', () => {
  it('ends a child_process child with SIGTERM; Node still reaps it', async () => {
    const child = startChild('sleep', ['60']);
    const watched = watch(child.pid!);
    const exit = childExit(child);
    expect(watched.kill(0)).toBe(true);
    expect(watched.kill('SIGTERM')).toBe(true);
    const [event, status] = await Promise.all([exit, watched.exited]);
    expect(event).toEqual({ code: null, signal: 'SIGTERM' });
    if (statusOfNonChild) expect(status).toMatchObject({ code: null, signal: 'SIGTERM' });
    else expect(['SIGTERM', null]).toContain(status.signal);
    expect(watched.kill('SIGKILL')).toBe(false);
  });

  it('defaults to SIGTERM and takes signal numbers', async () => {
    const a = startChild('sleep', ['60']);
    const b = startChild('sleep', ['60']);
    const exits = Promise.all([childExit(a), childExit(b)]);
    expect(watch(a.pid!).kill()).toBe(true);
    expect(watch(b.pid!).kill(9)).toBe(true);
    expect(await exits).toEqual([
      { code: null, signal: 'SIGTERM' },
      { code: null, signal: 'SIGKILL' },
    ]);
  });

  it.skipIf(!statusOfNonChild)(
    `kills a grandchild and reports the signal ${NO_STATUS_REASON}`,
    async () => {
      const { sh, pid } = await startGrandchild(0);
      const watched = watch(pid);
      expect(watched.kill('SIGUSR1')).toBe(true);
      expect(await watched.exited).toMatchObject({ pid, code: null, signal: 'SIGUSR1' });
      expect(await childExit(sh)).toEqual({ code: 0, signal: null });
    },
  );
});

describe('watch() of a pidwatch spawn() child', () => {
  it('shares its status: same code, reaped exactly once', async () => {
    const exits: ExitStatus[] = [];
    const stop = onAnyExit((status) => exits.push(status));
    try {
      const proc = track(
        spawn('sh', ['-c', 'read line; exit 9'], { stdio: ['pipe', 'ignore', 'inherit'] }),
      );
      const watched = watch(proc.pid);
      expect(watched.pid).toBe(proc.pid);
      expect(watched.pidfd).toBe(proc.pidfd);
      proc.stdin!.end('go\n');
      const [own, seen] = await Promise.all([proc.exited, watched.exited]);
      expect(own).toMatchObject({ code: 9, signal: null });
      expect(seen).toMatchObject({ pid: proc.pid, code: 9, signal: null });
      expect(seen.resourceUsage).toEqual(own.resourceUsage);
      expect(exits.filter((s) => s.pid === proc.pid)).toHaveLength(1);
      expect(procStat(proc.pid)).toBeNull();
      expect(watched.pidfd).toBeNull();
    } finally {
      stop();
    }
  });

  it('kills it through the watch: the spawn() side sees the signal', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    const watched = watch(proc.pid);
    expect(watched.kill('SIGINT')).toBe(true);
    expect(await proc.exited).toMatchObject({ code: null, signal: 'SIGINT' });
    expect(await watched.exited).toMatchObject({ code: null, signal: 'SIGINT' });
    expect(watched.kill()).toBe(false);
  });

  it('close() of the watch leaves the child running and its exited intact', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    const watched = watch(proc.pid);
    watched.close();
    await expect(watched.exited).rejects.toMatchObject({ name: 'AbortError' });
    expect(proc.kill()).toBe(true);
    expect(await proc.exited).toMatchObject({ signal: 'SIGTERM' });
  });
});

describe('ref() and unref()', () => {
  it('a script that unref()s its watch of a long sleep exits at once', async () => {
    const sleeper = startChild('sleep', ['60']);
    const result = await runNode([holdScript, String(sleeper.pid), 'unref', distEntry], {
      timeout: 15_000,
    });
    expect(result, result.stderr).toMatchObject({ code: 0, signal: null, stdout: 'watching\n' });
    expect(procStat(sleeper.pid!)?.state).toMatch(/^[RSD]$/);
  });

  for (const how of ['ref', 'unref-ref']) {
    it(`a ${how === 'ref' ? "ref'd" : 're-ref()d'} watch keeps the script alive until the exit`, async () => {
      const sleeper = startChild('sleep', ['60']);
      const script = spawnChild(process.execPath, [
        holdScript,
        String(sleeper.pid),
        how,
        distEntry,
      ]);
      started.push(script);
      const scriptExit = childExit(script);
      let output = '';
      script.stdout!.setEncoding('utf8').on('data', (d: string) => {
        output += d;
      });
      await waitFor(() => output.startsWith('watching\n'), 'the script to start watching');
      sleeper.kill('SIGTERM');
      expect(await scriptExit).toEqual({ code: 0, signal: null });
      const line = JSON.parse(output.split('\n')[1]) as {
        code: number | null;
        signal: string | null;
      };
      if (statusOfNonChild) expect(line).toEqual({ code: null, signal: 'SIGTERM' });
      else expect(['SIGTERM', null]).toContain(line.signal);
    });
  }
});

describe.skipIf(pidfdMode)('sigchld mode: polling /proc', () => {
  it('has no pidfd, and sees a process end that its parent reaps', async () => {
    const child = startChild('sh', ['-c', 'read line; exit 2']);
    const watched = watch(child.pid!);
    expect(watched.pidfd).toBeNull();
    child.stdin!.write('go\n');
    const status = await watched.exited;
    expect(status.pid).toBe(child.pid);
    expect([2, null]).toContain(status.code);
  });
});
