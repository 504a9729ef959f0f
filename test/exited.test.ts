// proc.exited and the state around it: one status for everyone, its shape, exitCode and
// signalCode, pidfd, and whether a running child keeps Node's event loop alive.
import { readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { capabilities, spawn } from '../src/index.js';
import { fixture, procStat, runNode, stillThere, trackChildren, waitFor } from './helpers/proc.js';

const track = trackChildren();
const pidfdMode = capabilities().mode === 'pidfd';

const STATUS_KEYS = [
  'aborted',
  'code',
  'coreDumped',
  'durationMs',
  'pid',
  'resourceUsage',
  'signal',
  'timedOut',
  'tree',
];
const USAGE_KEYS = [
  'involuntaryContextSwitches',
  'majorPageFault',
  'maxRSS',
  'minorPageFault',
  'systemCPUTime',
  'userCPUTime',
  'voluntaryContextSwitches',
];

describe('exited', () => {
  it('gives 10 concurrent awaits the same status', async () => {
    const proc = track(spawn('/bin/sh', ['-c', 'exit 42'], { stdio: 'ignore' }));
    const all = await Promise.all(Array.from({ length: 10 }, () => proc.exited));
    for (const status of all) {
      expect(status).toEqual(all[0]);
      expect(status.code).toBe(42);
    }
    // and a late await sees it too
    expect(await proc.exited).toEqual(all[0]);
  });

  it('holds the status of a process that exited before anyone awaited', async () => {
    const proc = track(spawn('/bin/sh', ['-c', 'exit 3'], { stdio: 'ignore' }));
    await waitFor(() => procStat(proc.pid)?.state === 'Z' || procStat(proc.pid) === null, 'exit');
    expect((await proc.exited).code).toBe(3);
  });

  it('resolves, never rejects, for a failing code or a signal', async () => {
    const failing = track(spawn('/bin/sh', ['-c', 'exit 1'], { stdio: 'ignore' }));
    const killed = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    killed.kill('SIGKILL');
    await expect(failing.exited).resolves.toMatchObject({ code: 1 });
    await expect(killed.exited).resolves.toMatchObject({ signal: 'SIGKILL' });
  });

  it('resolves with a plain ExitStatus holding every field', async () => {
    const proc = track(spawn('/bin/true', [], { stdio: 'ignore' }));
    const status = await proc.exited;
    expect(Object.keys(status).sort()).toEqual(STATUS_KEYS);
    expect(status).toMatchObject({
      pid: proc.pid,
      code: 0,
      signal: null,
      coreDumped: false,
      timedOut: false,
      aborted: false,
      tree: null,
    });
    expect(typeof status.durationMs).toBe('number');
    expect(status.durationMs).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(status.durationMs)).toBe(true);
    expect(status.resourceUsage).not.toBeNull();
    expect(Object.keys(status.resourceUsage!).sort()).toEqual(USAGE_KEYS);
    for (const key of USAGE_KEYS) {
      const value = status.resourceUsage![key as keyof typeof status.resourceUsage];
      expect(Number.isInteger(value) && value >= 0, key).toBe(true);
    }
    // survives a JSON round trip unchanged: nothing but plain data
    expect(JSON.parse(JSON.stringify(status))).toEqual(status);
  });

  it("measures the child's own resource usage, in Node's units", async () => {
    // some user CPU in a shell loop; about 30 MB held by the shell in a variable
    const script =
      'x=$(head -c 30000000 /dev/zero | tr "\\0" a); i=0; while [ $i -lt 50000 ]; do i=$((i + 1)); done';
    const proc = track(spawn('/bin/sh', ['-c', script], { stdio: 'ignore' }));
    const status = await proc.exited;
    expect(status.code).toBe(0);
    const usage = status.resourceUsage!;
    expect(usage.userCPUTime).toBeGreaterThan(0);
    // maxRSS in KiB: 30 MB is about 29,000 KiB (bytes would be millions, pages thousands)
    expect(usage.maxRSS).toBeGreaterThan(25_000);
    expect(usage.maxRSS).toBeLessThan(1_000_000);
    // CPU time in microseconds: the loop takes tens of ms of CPU, so thousands of us; and
    // the shell and its pipeline use at most the wall time on each CPU
    expect(usage.userCPUTime).toBeGreaterThan(5000);
    expect(usage.userCPUTime + usage.systemCPUTime).toBeLessThanOrEqual(
      (status.durationMs + 50) * 1000 * availableParallelism(),
    );
    expect(usage.minorPageFault).toBeGreaterThan(0);
  });

  it('times durationMs from the spawn to the exit', async () => {
    const before = performance.now();
    const proc = track(spawn('sleep', ['0.2'], { stdio: 'ignore' }));
    const status = await proc.exited;
    const wall = performance.now() - before;
    expect(status.code).toBe(0);
    expect(status.durationMs).toBeGreaterThanOrEqual(200);
    expect(status.durationMs).toBeLessThanOrEqual(wall);
  });

  it('gives each of many exits seen together its own status', async () => {
    // Killed in one synchronous loop, the children die at once and their exits
    // reach JS in one turn of the event loop, one after the other.
    const signals = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGALRM'];
    const procs = signals.map(() => track(spawn('sleep', ['60'], { stdio: 'ignore' })));
    for (const [i, p] of procs.entries()) expect(p.kill(signals[i] as NodeJS.Signals)).toBe(true);
    const statuses = await Promise.all(procs.map((p) => p.exited));
    statuses.forEach((status, i) => {
      expect(status).toMatchObject({ pid: procs[i].pid, code: null, signal: signals[i] });
    });
  });

  it('delivers exits seen together in one batch: every status is set before any reaction runs', async () => {
    const procs = Array.from({ length: 8 }, () =>
      track(spawn('sleep', ['60'], { stdio: 'ignore' })),
    );
    const seen: Array<Array<string | null>> = [];
    const reactions = procs.map((p) =>
      p.exited.then(() => seen.push(procs.map((q) => q.signalCode))),
    );
    for (const p of procs) p.kill('SIGKILL');
    // Hold the event loop until every child is a zombie, so the next turn sees all exits.
    const deadline = Date.now() + 20_000;
    while (!procs.every((p) => procStat(p.pid)?.state === 'Z') && Date.now() < deadline) {}
    await Promise.all(reactions);
    expect(seen).toHaveLength(8);
    for (const codes of seen) expect(codes).toEqual(procs.map(() => 'SIGKILL'));
  });

  it('keeps exitCode and signalCode null while running, then sets them', async () => {
    const proc = track(spawn('/bin/cat', [], { stdio: ['pipe', 'ignore', 'ignore'] }));
    expect(proc.exitCode).toBeNull();
    expect(proc.signalCode).toBeNull();
    proc.stdin!.end();
    await proc.exited;
    expect(proc.exitCode).toBe(0);
    expect(proc.signalCode).toBeNull();

    const killed = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(killed.signalCode).toBeNull();
    killed.kill('SIGTERM');
    await killed.exited;
    expect(killed.exitCode).toBeNull();
    expect(killed.signalCode).toBe('SIGTERM');
  });

  it('takes ref() and unref() after the exit as no-ops', async () => {
    const proc = track(spawn('/bin/true', [], { stdio: 'ignore' }));
    await proc.exited;
    proc.unref();
    proc.ref();
    expect(proc.exitCode).toBe(0);
  });

  it('publishes the status only once the child is reaped', async () => {
    const proc = track(spawn('/bin/true', [], { stdio: 'ignore' }));
    const id = { pid: proc.pid, startTime: procStat(proc.pid)?.startTime ?? null };
    await proc.exited;
    expect(stillThere(id)).toBe(false);
  });
});

describe('pidfd', () => {
  it.skipIf(!pidfdMode)(
    'is an open pidfd while running, null after the reap (pidfd mode only)',
    async () => {
      const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
      expect(typeof proc.pidfd).toBe('number');
      expect(proc.pidfd).toBeGreaterThanOrEqual(0);
      expect(readlinkSync(`/proc/self/fd/${proc.pidfd}`)).toBe('anon_inode:[pidfd]');
      proc.kill('SIGKILL');
      await proc.exited;
      expect(proc.pidfd).toBeNull();
    },
  );

  it.skipIf(pidfdMode)('is always null (sigchld mode only)', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.pidfd).toBeNull();
    proc.kill('SIGKILL');
    await proc.exited;
    expect(proc.pidfd).toBeNull();
  });
});

describe('the event loop', () => {
  it('lets Node exit while an unref’d child still runs', async () => {
    const result = await runNode([fixture('unref.mjs')], { timeout: 10_000 });
    const pid = Number(result.stdout.trim());
    try {
      expect(result.stderr).toBe('');
      expect(result).toMatchObject({ code: 0, signal: null });
      expect(pid).toBeGreaterThan(0);
      // the sleep outlived the script that spawned it and was not killed by its exit
      const stat = procStat(pid);
      expect(stat?.comm).toBe('sleep');
      expect(stat?.state).not.toBe('Z');
    } finally {
      if (pid > 0 && procStat(pid)?.comm === 'sleep') process.kill(pid, 'SIGKILL');
    }
    // orphaned: its new parent reaps it, or (an init that does not reap) it stays a
    // zombie that is not this test's
    await waitFor(() => !['S', 'R'].includes(procStat(pid)?.state ?? ''), 'the kill');
  });

  it('keeps Node alive for a child that was unref’d and ref’d again', async () => {
    const result = await runNode([fixture('ref.mjs')]);
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
    expect(result.stdout).toBe('exited 4\n');
  });
});
