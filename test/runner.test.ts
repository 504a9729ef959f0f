import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type JobResult, type Progress, runJobs, SpawnError } from '../src/index.js';
import { startRun } from '../src/runner/run.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/runner/${name}`, import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-runner-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let scratchCount = 0;
const scratchFile = (name: string) => join(scratch, `${scratchCount++}-${name}`);

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** The most intervals open at once, from the "S <ns> <pid>" / "E <ns> <pid>" lines of stamp.sh. */
function maxOverlap(log: string): { max: number; started: number; ended: number } {
  const events = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [kind, ns] = line.split(' ');
      return { t: BigInt(ns), delta: kind === 'S' ? 1 : -1 };
    })
    // Ends before starts at the same instant: touching intervals do not overlap.
    .sort((a, b) => (a.t === b.t ? a.delta - b.delta : a.t < b.t ? -1 : 1));
  let open = 0;
  let max = 0;
  for (const { delta } of events) {
    open += delta;
    max = Math.max(max, open);
  }
  return {
    max,
    started: events.filter((e) => e.delta === 1).length,
    ended: events.filter((e) => e.delta === -1).length,
  };
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('runJobs', () => {
  it('runs argv arrays and job objects and returns results in input order', async () => {
    const summary = await runJobs(
      [
        ['sh', '-c', 'sleep 0.3; echo slow'],
        { file: 'echo', args: ['fast'] },
        { file: 'sh', args: ['-c', 'echo oops >&2'] },
      ],
      { concurrency: 3 },
    );
    expect(summary.results.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(summary.results.map((r) => r.stdout)).toEqual(['slow\n', 'fast\n', '']);
    expect(summary.results[2].stderr).toBe('oops\n');
    expect(summary.results[1].job).toEqual({ file: 'echo', args: ['fast'] });
    expect(summary.results.every((r) => r.status.code === 0 && r.attempts === 1)).toBe(true);
    expect(summary).toMatchObject({ succeeded: 3, failed: 0, halted: false });
  });

  it('takes an async iterable source', async () => {
    async function* source() {
      for (let i = 0; i < 5; i++) yield ['echo', String(i)];
    }
    const summary = await runJobs(source(), { concurrency: 2 });
    expect(summary.results.map((r) => r.stdout)).toEqual(['0\n', '1\n', '2\n', '3\n', '4\n']);
  });

  it('reports failing jobs as results: exit code, signal, spawn error', async () => {
    const summary = await runJobs([
      ['sh', '-c', 'exit 3'],
      ['sh', '-c', 'kill -KILL $$'],
      ['pidwatch-no-such-command-here'],
      ['true'],
    ]);
    const [code, signal, missing, ok] = summary.results;
    expect(code.status.code).toBe(3);
    expect(signal.status).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(missing.status).toMatchObject({ code: null, signal: null, resourceUsage: null });
    expect(missing.error).toBeInstanceOf(SpawnError);
    expect(missing.error).toMatchObject({ code: 'ENOENT' });
    expect(ok.error).toBeUndefined();
    expect(summary).toMatchObject({ succeeded: 1, failed: 3, halted: false });
  });

  it('never has more than `concurrency` jobs alive, by the jobs own clocks', async () => {
    const log = scratchFile('stamps');
    const jobs = Array.from({ length: 24 }, () => ['sh', fixture('stamp.sh'), log, '0.1']);
    const summary = await runJobs(jobs, { concurrency: 3 });
    expect(summary.failed).toBe(0);
    const { max, started, ended } = maxOverlap(log);
    expect(started).toBe(24);
    expect(ended).toBe(24);
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBeGreaterThanOrEqual(1);
  });

  it('takes a new concurrency mid-run: more starts jobs at once, less starts none until fewer run', async () => {
    const go = scratchFile('go');
    // Each job waits (up to 10 s) for `go` to be there.
    const job = [
      'sh',
      '-c',
      'i=0; until [ -e "$0" ]; do [ $i -lt 500 ] || exit 1; sleep 0.02; i=$((i+1)); done',
      go,
    ];
    const seen: Progress[] = [];
    let threeStarted!: () => void;
    const three = new Promise<void>((resolve) => {
      threeStarted = resolve;
    });
    const onProgress = (progress: Progress) => {
      seen.push(progress);
      if (progress.started === 3) threeStarted();
    };
    // (`pidwatch run -j FILE` sets it so; runJobs takes a number.)
    const run = startRun(
      [job, job, job, job],
      { concurrency: 1, onProgress },
      { retainResults: true },
    );
    run.setConcurrency!(3);
    await three;
    run.setConcurrency!(1);
    writeFileSync(go, '');
    const summary = await run.done;
    expect(summary.failed).toBe(0);
    const launches = seen.filter((p, i) => i === 0 || p.started > seen[i - 1].started);
    // Three at once, none of them ended; the fourth alone, once all three had.
    expect(launches.map((p) => [p.started, p.running])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 1],
    ]);
  });

  it('runs 2,000 jobs at concurrency 500', async () => {
    let peak = 0;
    const jobs = function* () {
      for (let i = 0; i < 2000; i++) yield ['sleep', '0.05'];
    };
    const summary = await runJobs(jobs(), {
      concurrency: 500,
      output: 'ignore',
      onProgress: (p) => {
        peak = Math.max(peak, p.running);
      },
    });
    expect(summary.results).toHaveLength(2000);
    expect(summary.failed).toBe(0);
    expect(summary.results.every((r, i) => r.index === i && r.status.code === 0)).toBe(true);
    expect(peak).toBeLessThanOrEqual(500);
  });

  it('halt now: stops starting and kills the running jobs after the first failure', async () => {
    const jobs = [['sh', '-c', 'exit 1'], ...Array.from({ length: 20 }, () => ['sleep', '30'])];
    const summary = await runJobs(jobs, {
      concurrency: 4,
      halt: { when: 'now', fail: 1 },
      forceKillAfter: 1000,
    });
    expect(summary.halted).toBe(true);
    expect(summary.results.length).toBeLessThan(jobs.length);
    const killed = summary.results.slice(1);
    expect(killed.length).toBeGreaterThan(0);
    for (const r of killed) {
      expect(r.status).toMatchObject({ signal: 'SIGTERM', aborted: true });
      expect(alive(r.status.pid)).toBe(false);
    }
    expect(summary.failed).toBe(summary.results.length);
  });

  it('halt soon: stops starting jobs but lets the running ones finish', async () => {
    const jobs = [
      ['sh', '-c', 'exit 1'],
      ...Array.from({ length: 20 }, () => ['sh', '-c', 'sleep 0.3; echo done']),
    ];
    const summary = await runJobs(jobs, { concurrency: 4, halt: { when: 'soon', fail: 1 } });
    expect(summary.halted).toBe(true);
    expect(summary.results.length).toBeLessThan(jobs.length);
    expect(summary.failed).toBe(1);
    for (const r of summary.results.slice(1)) {
      expect(r.status.code).toBe(0);
      expect(r.stdout).toBe('done\n');
    }
  });

  it('retries a failed job and counts its attempts', async () => {
    const once = scratchFile('counter');
    const never = scratchFile('counter');
    const summary = await runJobs(
      [
        ['sh', fixture('flaky.sh'), once, '3'],
        ['sh', fixture('flaky.sh'), never, '10'],
      ],
      { retries: 2 },
    );
    const [recovered, failed] = summary.results;
    expect(recovered).toMatchObject({ attempts: 3, stdout: 'attempt 3\n' });
    expect(recovered.status.code).toBe(0);
    expect(failed).toMatchObject({ attempts: 3, stdout: 'attempt 3\n' });
    expect(failed.status.code).toBe(1);
    expect(summary).toMatchObject({ succeeded: 1, failed: 1 });
  });

  it('retries: Infinity tries a failed job until it succeeds', async () => {
    const counter = scratchFile('counter');
    const summary = await runJobs([['sh', fixture('flaky.sh'), counter, '7']], {
      retries: Number.POSITIVE_INFINITY,
    });
    expect(summary.results[0]).toMatchObject({ attempts: 7, stdout: 'attempt 7\n' });
    expect(summary).toMatchObject({ succeeded: 1, failed: 0 });
  });

  it('times out a job with its killSignal and marks it timedOut', async () => {
    const summary = await runJobs([['sleep', '30'], ['true']], { timeout: 200 });
    const [slow, quick] = summary.results;
    expect(slow.status).toMatchObject({ timedOut: true, signal: 'SIGTERM', code: null });
    expect(quick.status).toMatchObject({ timedOut: false, code: 0 });
    expect(summary.failed).toBe(1);
  });

  it('pulls a lazy source of 1,000,000 jobs no further than the running window', async () => {
    const concurrency = 8;
    let produced = 0;
    let closed = false;
    function* million() {
      try {
        for (let i = 0; i < 1_000_000; i++) {
          produced++;
          yield ['true'];
        }
      } finally {
        closed = true;
      }
    }
    const controller = new AbortController();
    let results = 0;
    const error = await rejection(
      runJobs(million(), {
        concurrency,
        output: 'ignore',
        signal: controller.signal,
        onResult: () => {
          if (++results === 100) controller.abort();
        },
      }),
    );
    expect(error).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(error.summary.results.length).toBeGreaterThanOrEqual(100);
    expect(produced).toBeLessThanOrEqual(100 + concurrency + 2);
    expect(closed).toBe(true);
  });

  it('abort kills the running jobs, reaps them, then rejects with the partial summary', async () => {
    const controller = new AbortController();
    const started = new Set<number>();
    const jobs = Array.from({ length: 10 }, () => ['sleep', '30']);
    const error = await rejection(
      runJobs(jobs, {
        concurrency: 4,
        signal: controller.signal,
        forceKillAfter: 1000,
        onProgress: (p: Progress) => {
          if (p.running === 4) controller.abort(new Error('enough'));
        },
        onResult: (r: JobResult) => started.add(r.status.pid),
      }),
    );
    expect(error.name).toBe('AbortError');
    expect(error.cause).toEqual(new Error('enough'));
    expect(error.summary.results).toHaveLength(4);
    for (const r of error.summary.results as JobResult[]) {
      expect(r.status).toMatchObject({ signal: 'SIGTERM', aborted: true });
      expect(alive(r.status.pid)).toBe(false);
    }
    expect(started.size).toBe(4);
  });

  it('rejects at once, starting nothing, when the signal is already aborted', async () => {
    let pulled = 0;
    function* jobs() {
      pulled++;
      yield ['true'];
    }
    const error = await rejection(runJobs(jobs(), { signal: AbortSignal.abort() }));
    expect(error.name).toBe('AbortError');
    expect(error.summary.results).toEqual([]);
    expect(pulled).toBe(0);
  });

  it('output modes: ignore gives empty strings, encoding buffer gives Buffers', async () => {
    const ignored = await runJobs([['echo', 'hi']], { output: 'ignore' });
    expect(ignored.results[0]).toMatchObject({ stdout: '', stderr: '' });
    const buffered = await runJobs([['echo', 'hi']], { encoding: 'buffer' });
    expect(Buffer.isBuffer(buffered.results[0].stdout)).toBe(true);
    expect(buffered.results[0].stdout.toString()).toBe('hi\n');
  });

  it("gives each job only its own output, also after a longer one's", async () => {
    // One slot: every job after the first writes into the output a job before it had.
    const jobs = ['x'.repeat(100_000), 'ab', '', 'cde'].map((text) => [
      'sh',
      '-c',
      `printf %s "$1"; printf %s "$1" >&2`,
      'sh',
      text,
    ]);
    for (const tree of [true, false]) {
      const summary = await runJobs(jobs, { concurrency: 1, tree });
      expect(summary.results.map((r) => r.stdout.length)).toEqual([100_000, 2, 0, 3]);
      expect(summary.results.map((r) => r.stdout)).toEqual(jobs.map((job) => job[4]));
      expect(summary.results.map((r) => r.stderr)).toEqual(jobs.map((job) => job[4]));
    }
  });

  it('buffers more output than a pipe holds, from every member of the tree', async () => {
    // 1 MiB from the leader, 1 MiB from a grandchild, on both streams; the leader waits for it.
    const script =
      'head -c 1048576 /dev/zero; sh -c "head -c 1048576 /dev/zero; head -c 5 /dev/zero >&2"; wait';
    for (const tree of [true, false]) {
      const { results } = await runJobs([['sh', '-c', script]], { tree, encoding: 'buffer' });
      expect(results[0].status.code).toBe(0);
      expect(results[0].stdout.length).toBe(2 * 1048576);
      expect(results[0].stderr.length).toBe(5);
    }
  });

  it('gives jobs pipes for output: reopening /dev/stdout appends, truncating nothing', async () => {
    for (const tree of [true, false]) {
      const { results } = await runJobs([['sh', '-c', 'echo a; echo b >/dev/stdout']], { tree });
      expect(results[0].stdout).toBe('a\nb\n');
    }
  });

  it('reports progress and results through the callbacks', async () => {
    const seen: Progress[] = [];
    const order: number[] = [];
    await runJobs(
      Array.from({ length: 6 }, (_, i) => ['sh', '-c', `exit ${i % 2}`]),
      {
        concurrency: 2,
        onProgress: (p) => seen.push(p),
        onResult: (r) => order.push(r.index),
      },
    );
    expect(order.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(seen.at(-1)).toEqual({ started: 6, finished: 6, failed: 3, running: 0 });
    expect(seen.every((p) => p.running <= 2 && p.finished <= p.started)).toBe(true);
  });

  it('leaves no fd open and no process behind, whatever the jobs did', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const jobs = Array.from(
      { length: 60 },
      (_, i) =>
        [
          ['sh', '-c', 'echo out; echo err >&2'],
          ['pidwatch-no-such-command-here'],
          ['sleep', '30'],
          ['sh', '-c', 'exit 9'],
        ][i % 4],
    );
    const summary = await runJobs(jobs, { concurrency: 16, timeout: 100, forceKillAfter: 500 });
    expect(summary.failed).toBe(45);
    for (const r of summary.results) if (r.status.pid > 0) expect(alive(r.status.pid)).toBe(false);
    expect(fds()).toBe(before);
  });

  it('adds no listener per process to a shared emitter', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const summary = await runJobs(
        Array.from({ length: 40 }, () => ['sleep', '0.05']),
        { concurrency: 40, signal: new AbortController().signal, timeout: 10_000 },
      );
      expect(summary.failed).toBe(0);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('rejects bad options and bad jobs with TypeErrors', async () => {
    await expect(runJobs([], { concurrency: 0 })).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(runJobs(42 as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(runJobs([], { halt: { when: 'later', fail: 1 } as any })).rejects.toThrow(
      TypeError,
    );
    await expect(runJobs([['true'], [42 as any]])).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('rejects with the error of a failing source once its running jobs are reaped', async () => {
    const pids: number[] = [];
    function* jobs() {
      yield ['sleep', '30'];
      throw new Error('source broke');
    }
    await expect(
      runJobs(jobs(), {
        concurrency: 2,
        forceKillAfter: 1000,
        onResult: (r) => pids.push(r.status.pid),
      }),
    ).rejects.toThrow('source broke');
    expect(pids).toHaveLength(1);
    expect(alive(pids[0])).toBe(false);
  });
});
