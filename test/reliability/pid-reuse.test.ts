// A reaped child's PID handed to a new process: kill() on the old Subprocess or
// on an old watch() returns false and the new process lives on.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { onAnyExit } from '../../src/exits-hub.js';
import { type ExitStatus, spawn, watch } from '../../src/index.js';
import { haveCompiler, PidReuser, retryingPidRace } from '../fixtures/reliability/support.js';
import { isSigchldMode } from '../helpers/mode.js';
import { isZombie, procStat, trackChildren } from '../helpers/proc.js';

const track = trackChildren();
let reuser: PidReuser;

beforeEach(() => {
  reuser = new PidReuser();
});

afterEach(async () => {
  // The helper exits with the number of its processes that something killed.
  expect(await reuser.close()).toBe(0);
});

/** The holder of `pid` is running, a child of the helper, started after `before`. */
function expectHolder(pid: number, before: number | null) {
  const stat = procStat(pid);
  expect(stat?.ppid).toBe(reuser.helper.pid);
  expect(stat?.state).not.toBe('Z');
  if (before !== null) expect(stat!.startTime).toBeGreaterThanOrEqual(before);
  expect(reuser.alive(pid)).toBe(true);
}

/** Waits until a clock tick after `pid` started (its /proc start time resolution). */
async function pastStartTick(pid: number): Promise<number> {
  const started = procStat(pid)!.startTime;
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  await new Promise((resolve) => setTimeout(resolve, 3 * tick));
  return started;
}

function everySignal(target: { kill(signal?: NodeJS.Signals | number): boolean }) {
  return [target.kill(), target.kill('SIGKILL'), target.kill('SIGSTOP'), target.kill(0)];
}

describe.skipIf(!haveCompiler())('a reused PID is never signalled', () => {
  it('through the Subprocess of a reaped child', () =>
    retryingPidRace(async () => {
      const proc = track(spawn('/bin/true', [], { stdio: 'ignore' }));
      const started = procStat(proc.pid)?.startTime ?? null;
      await proc.exited;
      reuser.reuse(proc.pid);
      expect(everySignal(proc)).toEqual([false, false, false, false]);
      expectHolder(proc.pid, started);
    }));

  it('through a watch() of a reaped child of pidwatch', () =>
    retryingPidRace(async () => {
      const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
      const watched = watch(proc.pid);
      proc.kill('SIGKILL');
      expect((await watched.exited).signal).toBe('SIGKILL');
      reuser.reuse(proc.pid);
      expect(everySignal(watched)).toEqual([false, false, false, false]);
      expect(everySignal(proc)).toEqual([false, false, false, false]);
      expectHolder(proc.pid, null);
    }));

  it('through a watch() of a non-child, after the watch saw the exit', () =>
    retryingPidRace(async () => {
      const pid = reuser.spawn();
      const watched = watch(pid);
      expect(watched.kill(0)).toBe(true);
      await pastStartTick(pid);
      reuser.reuse(pid); // kills and reaps the first process, then takes its PID
      expect((await watched.exited).pid).toBe(pid);
      reuser.reuse(pid); // a second holder, started after the watch settled
      expect(everySignal(watched)).toEqual([false, false, false, false]);
      expectHolder(pid, null);
    }));

  it('through a watch() of a non-child, before the event loop saw the exit', () =>
    retryingPidRace(async () => {
      const pid = reuser.spawn();
      const watched = watch(pid);
      const started = await pastStartTick(pid);
      // No await from here on: the watch has had no chance to learn of the exit.
      reuser.reuse(pid);
      expect(everySignal(watched)).toEqual([false, false, false, false]);
      expectHolder(pid, started);
      expect((await watched.exited).pid).toBe(pid);
    }));

  // Without pidfds a watch tells processes apart by their /proc start time, which
  // counts clock ticks (10 ms): a PID reused within the tick its first holder
  // started in cannot be told apart. With a pidfd the kernel itself knows.
  it.skipIf(isSigchldMode())(
    'through a watch() of a non-child whose PID is reused in the tick it started',
    async () => {
      for (let round = 0; round < 20; round++) {
        await retryingPidRace(async () => {
          const pid = reuser.spawn();
          const watched = watch(pid);
          reuser.reuse(pid);
          expect(everySignal(watched)).toEqual([false, false, false, false]);
          expectHolder(pid, null);
          expect((await watched.exited).pid).toBe(pid);
        });
      }
    },
  );

  it('reports one exit per process, not one for the holder', () =>
    retryingPidRace(async () => {
      const seen: ExitStatus[] = [];
      const stop = onAnyExit((status) => seen.push(status));
      try {
        const proc = track(spawn('/bin/sh', ['-c', 'exit 4'], { stdio: 'ignore' }));
        const status = await proc.exited;
        reuser.reuse(proc.pid);
        // A later spawn's exit lets any stray notification for the PID arrive first.
        await track(spawn('/bin/true', [], { stdio: 'ignore' })).exited;
        expect(seen.filter((s) => s.pid === proc.pid)).toEqual([status]);
        expect(proc.kill()).toBe(false);
        expectHolder(proc.pid, null);
      } finally {
        stop();
      }
    }));

  // In sigchld mode one SIGCHLD reaps every child that has exited, then reports each
  // exit to JS in turn: the ones later in that batch are reaped before the callbacks of
  // the earlier ones run, and must already count as gone there.
  it.skipIf(!isSigchldMode())(
    'through the Subprocess of a child reaped in the same SIGCHLD batch as the one being reported',
    () =>
      retryingPidRace(async () => {
        const procs = [0, 1].map(() => track(spawn('sleep', ['60'], { stdio: 'ignore' })));
        let tried: { pid: number; sent: boolean } | null = null;
        let failure: unknown = null;
        procs.forEach((proc, i) => {
          const other = procs[1 - i];
          proc.exited.then(() => {
            if (tried || failure) return;
            try {
              // the other child is reaped already; its PID goes to a new process
              reuser.reuse(other.pid);
              tried = { pid: other.pid, sent: other.kill('SIGTERM') };
            } catch (error) {
              failure = error;
            }
          });
        });
        for (const proc of procs) process.kill(proc.pid, 'SIGKILL');
        // Both are zombies before the loop gets a turn, so one SIGCHLD reaps both.
        while (!procs.every((proc) => isZombie(proc.pid))) {}
        await Promise.all(procs.map((proc) => proc.exited));
        if (failure) throw failure;
        expect(tried).not.toBeNull();
        expect(tried!.sent).toBe(false);
        expectHolder(tried!.pid, null);
      }),
  );
});
