// pidwatch in worker threads, and a Node process that exits with children running.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { spawn } from '../src/index.js';
import { fixture, procStat, runNode, trackChildren, waitFor } from './helpers/proc.js';

const track = trackChildren();

interface Report {
  pid: number;
  code: number | null;
  signal: string | null;
  out: string;
}

/** Runs test/fixtures/core/worker.mjs in a worker thread: spawn, read, await, report. */
async function inWorker(code: number): Promise<{ report: Report; exitCode: number }> {
  const worker = new Worker(fixture('worker.mjs'), { workerData: { code } });
  const reports: Report[] = [];
  worker.on('message', (report: Report) => reports.push(report));
  const errors: unknown[] = [];
  worker.on('error', (error) => errors.push(error));
  const [exitCode] = (await once(worker, 'exit')) as [number];
  expect(errors).toEqual([]);
  expect(reports.length).toBe(1);
  track(reports[0]);
  return { report: reports[0], exitCode };
}

/** Kills leftovers of a script by pid; their new parent is not this process. */
async function killOrphans(pids: number[]): Promise<void> {
  for (const pid of pids) {
    if (procStat(pid)?.comm === 'sleep') process.kill(pid, 'SIGKILL');
  }
  await waitFor(
    () => pids.every((pid) => ['Z', undefined].includes(procStat(pid)?.state)),
    'the leftovers to die',
  );
}

describe('worker threads', () => {
  it('a worker spawns, awaits the exit and ends', async () => {
    const { report, exitCode } = await inWorker(9);
    expect(exitCode).toBe(0);
    expect(report).toMatchObject({ code: 9, signal: null, out: 'from-worker\n' });
  });

  it('several workers and the main thread at once, each on its own loop', async () => {
    const main = track(spawn('/bin/sh', ['-c', 'exit 1'], { stdio: 'ignore' }));
    const results = await Promise.all([inWorker(2), inWorker(3), inWorker(4), main.exited]);
    const [a, b, c, mainStatus] = results;
    expect([a.report.code, b.report.code, c.report.code]).toEqual([2, 3, 4]);
    expect([a.exitCode, b.exitCode, c.exitCode]).toEqual([0, 0, 0]);
    expect(mainStatus.code).toBe(1);
    // and the main thread still works after the workers' environments are gone
    const after = track(spawn('/bin/sh', ['-c', 'exit 11'], { stdio: 'ignore' }));
    expect((await after.exited).code).toBe(11);
  });

  it('workers come and go many times', async () => {
    for (let i = 0; i < 5; i++) {
      const { report, exitCode } = await inWorker(i);
      expect([report.code, exitCode]).toEqual([i, 0]);
    }
  });
});

/** Runs a script that prints the PID of the `sleep` it leaves running: it ends cleanly. */
async function leavesOneSleep(script: string): Promise<void> {
  const result = await runNode([fixture(script)], { timeout: 10_000 });
  const pid = Number(result.stdout.trim());
  try {
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
    expect(procStat(pid)?.comm).toBe('sleep');
  } finally {
    await killOrphans(pid > 0 ? [pid] : []);
  }
}

describe('a worker that ends with its child still running', () => {
  it('ends, and so does Node, when the child was unref’d', async () => {
    await leavesOneSleep('worker-unref.mjs');
  });
});

describe('workers that alone loaded pidwatch', () => {
  it('are terminated with children running, and Node does not crash', async () => {
    const result = await runNode([fixture('worker-only.mjs')]);
    const pids = result.stdout.trim().split(' ').map(Number);
    try {
      expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
      expect(pids.length).toBe(5);
    } finally {
      await killOrphans(pids.filter((pid) => pid > 0));
    }
  });
});

describe('a worker terminated during exec()', () => {
  it('closes the pipes it had not watched yet, and Node does not crash', async () => {
    await leavesOneSleep('worker-exec.mjs');
  });
});

describe('process exit with children running', () => {
  it('process.exit() neither crashes nor aborts, and keeps its exit code', async () => {
    const result = await runNode([fixture('exit-with-children.mjs')]);
    const pids = result.stdout.trim().split(' ').map(Number);
    try {
      expect(result.stderr).toBe('');
      expect(result).toMatchObject({ code: 5, signal: null });
      expect(pids.length).toBe(3);
      // the children were left running, as child_process leaves them
      for (const pid of pids) expect(procStat(pid)?.state).not.toBe('Z');
    } finally {
      await killOrphans(pids.filter((pid) => pid > 0));
    }
  });

  it('killOnParentExit: the kernel kills the children when the script exits', async () => {
    const result = await runNode([fixture('exit-with-children.mjs'), 'kill-on-parent-exit']);
    const pids = result.stdout.trim().split(' ').map(Number);
    try {
      expect(result).toMatchObject({ code: 5, signal: null, stderr: '' });
      await waitFor(
        () => pids.every((pid) => ['Z', undefined].includes(procStat(pid)?.state)),
        'the children to be killed',
      );
    } finally {
      await killOrphans(pids.filter((pid) => pid > 0));
    }
  });
});
