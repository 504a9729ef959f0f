// pidwatch/bullmq against a real redis-server (unix socket only, started and
// stopped here), and `pidwatch worker` / `pidwatch run --queue` processes.
// These do not depend on the watcher implementation beyond pidfd vs sigchld, so
// they run in those two modes only (the CLI comparison in pidfd mode only).
import { type ChildProcess, spawn as spawnChild, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  enqueue,
  type JobOutcome,
  jobIdOf,
  parseQueueUrl,
  processor,
} from '../src/bullmq/index.js';
import { testMode } from './helpers/mode.js';
import { hasExited } from './helpers/proc.js';
import { startRedis, type TestRedis } from './helpers/redis.mjs';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/queue/${name}`, import.meta.url));
const runs = testMode === 'pidfd' || testMode === 'sigchld';

/** Checks `condition` every 20 ms until it holds; throws after `ms`. */
async function waitFor(condition: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The cgroup directories pidwatch made for `pid` that are still there. */
function cgroupDirsOf(pid: number): string[] {
  const roots = new Set<string>(['/sys/fs/cgroup/unified', '/sys/fs/cgroup']);
  if (process.env.PIDWATCH_CGROUP_ROOT) roots.add(process.env.PIDWATCH_CGROUP_ROOT);
  return [...roots].map((root) => join(root, `pidwatch-${pid}`)).filter((dir) => existsSync(dir));
}

interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function startCli(args: string[]): { child: ChildProcess; done: Promise<Exited> } {
  const child = spawnChild(process.execPath, [main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<Exited>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

let redis: TestRedis;
// Made in beforeAll, not at load: vitest runs neither hook in a file whose tests all skip.
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'pidwatch-queue-'));
  if (!runs) return;
  if (!existsSync(main)) throw new Error('dist/cli/main.js is missing: run `npm run build:ts`');
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

let queueCount = 0;
/** A fresh queue on the test server, with its connection options. */
function freshQueue() {
  const name = `q${++queueCount}`;
  const connection = { path: redis.socket, maxRetriesPerRequest: null };
  return { name, connection, url: redis.url(name), queue: new Queue(name, { connection }) };
}

describe.runIf(runs)('pidwatch/bullmq', () => {
  it('parses queue URLs, TCP and unix socket', () => {
    expect(parseQueueUrl('redis://example.org:6380/builds')).toEqual({
      connection: { host: 'example.org', port: 6380 },
      name: 'builds',
    });
    expect(parseQueueUrl('redis://h/q?db=2').connection).toEqual({ host: 'h', port: 6379, db: 2 });
    expect(parseQueueUrl('redis+unix:///run/redis.sock?queue=jobs')).toEqual({
      connection: { path: '/run/redis.sock' },
      name: 'jobs',
    });
    expect(() => parseQueueUrl('redis://host')).toThrow(/queue name/);
    expect(() => parseQueueUrl('http://host/q')).toThrow(/redis:\/\//);
  });

  it('processor() checks its options when called, with the codes spawn uses', () => {
    expect(() => processor({ timeout: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => processor({ killSignal: 'SIGNOPE' as never })).toThrow(TypeError);
    expect(() => processor({ forceKillAfter: 'soon' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => processor({ maxBuffer: Number.NaN })).toThrow(TypeError);
    expect(() => processor({ progress: 'yes' as never })).toThrow(TypeError);
    expect(processor().length).toBe(3); // BullMQ passes its cancellation signal only then
  });

  it('enqueue gives deterministic ids: the same jobs twice are added once', async () => {
    const { queue } = freshQueue();
    try {
      const jobs = [['echo', 'a'], { file: 'echo', args: ['b'] }, { command: 'echo c' }];
      const first = await enqueue(queue, jobs);
      const again = await enqueue(
        queue,
        (async function* () {
          yield* jobs;
        })(),
      );
      expect(again).toEqual(first);
      expect(new Set(first).size).toBe(3);
      expect(first[0]).toBe(jobIdOf(['echo', 'a']));
      // Key order does not matter; a prefix makes another batch.
      expect(jobIdOf({ args: ['b'], file: 'echo' })).toBe(first[1]);
      const other = await enqueue(queue, jobs, { prefix: 'nightly-' });
      expect(other.every((id, i) => id === `nightly-${first[i]}`)).toBe(true);
      expect(await queue.getWaitingCount()).toBe(6);
      await expect(enqueue(queue, [{ nope: 1 } as never])).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_TYPE',
      });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('runs jobs as trees: outcome, failures retried, SpawnError unrecoverable, progress', async () => {
    const { name, connection, queue } = freshQueue();
    const worker = new Worker(name, processor({ maxBuffer: 8 }), { connection, concurrency: 4 });
    const events = new QueueEvents(name, { connection });
    try {
      await events.waitUntilReady();
      const [ok, failing, missing] = await enqueue(
        queue,
        [
          { command: 'printf "0123456789\\nabc\\n"; echo warn >&2' },
          ['sh', '-c', 'exit 3'],
          ['/nonexistent/program'],
        ],
        { jobOptions: { attempts: 2 } },
      );
      const okJob = (await queue.getJob(ok!))!;
      const outcome = (await okJob.waitUntilFinished(events)) as JobOutcome;
      expect(outcome).toMatchObject({
        code: 0,
        signal: null,
        stdout: '789\nabc\n',
        stderr: 'warn\n',
      });
      expect(outcome.durationMs).toBeGreaterThan(0);
      expect((await queue.getJob(ok!))!.progress).toEqual({ stdoutLines: 2, stderrLines: 1 });

      const failingJob = (await queue.getJob(failing!))!;
      await expect(failingJob.waitUntilFinished(events)).rejects.toThrow(/exit code 3/);
      expect((await queue.getJob(failing!))!.attemptsMade).toBe(2);

      const missingJob = (await queue.getJob(missing!))!;
      await expect(missingJob.waitUntilFinished(events)).rejects.toThrow(/ENOENT/);
      // UnrecoverableError: one attempt only, although two were allowed.
      expect((await queue.getJob(missing!))!.attemptsMade).toBe(1);
      expect(UnrecoverableError).toBeDefined();
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('a timeout fails the attempt on time, though the job exits 0 on SIGTERM and a grandchild holds stdout; the retry succeeds', async () => {
    const { name, connection, queue } = freshQueue();
    const mark = join(scratch, 'timeout-mark');
    const timeout = 1000;
    const forceKillAfter = 500;
    const worker = new Worker(name, processor({ timeout, forceKillAfter }), { connection });
    const events = new QueueEvents(name, { connection });
    const failures: number[] = [];
    worker.on('failed', (job) => failures.push(Date.now() - job!.processedOn!));
    try {
      await events.waitUntilReady();
      const script = `if [ -e ${mark} ]; then echo second; else touch ${mark}; trap 'exit 0' TERM; sleep 60 & echo first; wait; fi`;
      const [id] = await enqueue(queue, [{ command: script }], { jobOptions: { attempts: 2 } });
      const outcome = (await (await queue.getJob(id!))!.waitUntilFinished(events)) as JobOutcome;
      expect(outcome.stdout).toBe('second\n');
      expect(failures).toHaveLength(1);
      // The bound of a timed-out attempt: timeout + forceKillAfter + 100 ms, plus scheduling.
      expect(failures[0]).toBeLessThan(timeout + forceKillAfter + 1000);
      const job = (await queue.getJob(id!))!;
      expect(job.attemptsMade).toBe(2);
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it("honours BullMQ's cancellation: the tree is killed and the job is not retried", async () => {
    const { name, connection, queue } = freshQueue();
    const worker = new Worker(name, processor(), { connection });
    const events = new QueueEvents(name, { connection });
    try {
      await events.waitUntilReady();
      const [id] = await enqueue(queue, [{ command: 'echo started; exec sleep 60' }], {
        jobOptions: { attempts: 3 },
      });
      const job = (await queue.getJob(id!))!;
      await waitFor(
        async () => (await queue.getJob(id!))!.progress !== 0,
        10_000,
        'the job to start',
      );
      expect(worker.cancelJob(id!)).toBe(true);
      await expect(job.waitUntilFinished(events)).rejects.toThrow(/aborted/);
      expect((await queue.getJob(id!))!.attemptsMade).toBe(1);
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});

describe.runIf(runs)('a Redis that cannot be reached', () => {
  const nowhere = () => `redis+unix://${join(scratch, 'no-redis.sock')}?queue=q`;

  it('pidwatch run --queue says so and exits 1 at once, running nothing', async () => {
    const outcome = await startCli(['run', '--queue', nowhere(), 'echo', ':::', 'a']).done;
    expect(outcome).toMatchObject({ code: 1, stdout: '' });
    expect(outcome.stderr).toMatch(/^pidwatch: cannot reach the queue's Redis: .*ENOENT/);
  });

  it('an idle pidwatch worker still exits on SIGTERM (143)', async () => {
    const worker = startCli(['worker', '--queue', nowhere()]);
    // It has tried to connect (and said it failed) once its first line is out.
    await new Promise<void>((resolve) => worker.child.stderr!.once('data', () => resolve()));
    worker.child.kill('SIGTERM');
    expect(await worker.done).toMatchObject({ code: 143 });
  });
});

describe.runIf(runs)('pidwatch worker', () => {
  it('a SIGKILLed worker: its trees die at once, its jobs run again elsewhere, nothing is left', async () => {
    const { url, queue } = freshQueue();
    const log = join(scratch, 'kill.log');
    writeFileSync(log, '');
    // Short enough that the killed worker's jobs run again soon; long enough (locks are
    // renewed every 2 s) that a loaded machine's pauses do not make a live worker's stall.
    const workerArgs = [
      'worker',
      '--queue',
      url,
      '-j',
      '2',
      '--lock-duration',
      '4',
      '--stalled-interval',
      '1',
    ];
    const a = startCli(workerArgs);
    const b = startCli(workerArgs);
    const lines = () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' '));
    try {
      await enqueue(
        queue,
        Array.from({ length: 20 }, (_, i) => ({
          file: fixture('record.sh'),
          args: [String(i + 1), log],
        })),
      );
      // Worker A is busy with two jobs, neither finished.
      const inFlight = () => {
        const all = lines();
        const finished = new Set(
          all.filter((l) => l[0] === 'finish').map((l) => `${l[1]} ${l[2]}`),
        );
        return all.filter(
          (l) =>
            l[0] === 'start' && Number(l[2]) === a.child.pid && !finished.has(`${l[1]} ${l[2]}`),
        );
      };
      await waitFor(() => inFlight().length === 2, 30_000, 'worker A to run two jobs');
      const victims = inFlight();
      a.child.kill('SIGKILL');
      const killedAt = Date.now();
      const pids = victims.flatMap((l) => [Number(l[3]), Number(l[4])]);
      await waitFor(() => pids.every(hasExited), 5000, "the killed worker's trees to die");
      // A tree of a SIGKILLed worker is gone within 1 s (the guardian's doing).
      expect(Date.now() - killedAt).toBeLessThan(1000);
      expect((await a.done).signal).toBe('SIGKILL');

      await waitFor(
        async () => (await queue.getJobCounts('completed')).completed === 20,
        60_000,
        'the queue to drain',
      );
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait');
      expect(counts).toEqual({ completed: 20, failed: 0, active: 0, wait: 0 });

      const all = lines();
      const starts = new Map<string, number>();
      const finishes = new Set<string>();
      for (const l of all) {
        if (l[0] === 'start') starts.set(l[1]!, (starts.get(l[1]!) ?? 0) + 1);
        else finishes.add(l[1]!);
      }
      expect(finishes.size).toBe(20);
      const twice = [...starts]
        .filter(([, n]) => n > 1)
        .map(([job]) => job)
        .sort();
      expect(twice).toEqual(victims.map((l) => l[1]).sort());
      expect([...starts.values()].every((n) => n <= 2)).toBe(true);

      b.child.kill('SIGTERM');
      expect((await b.done).code).toBe(143);
      const everyPid = all
        .filter((l) => l[0] === 'start')
        .flatMap((l) => [Number(l[3]), Number(l[4])]);
      await waitFor(() => everyPid.every(hasExited), 5000, 'every job process to be gone');
      await waitFor(
        () => cgroupDirsOf(a.child.pid!).length + cgroupDirsOf(b.child.pid!).length === 0,
        5000,
        'no cgroup directory left',
      );
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
      await Promise.all([a.done, b.done]);
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it.runIf(testMode === 'pidfd')(
    'pidwatch run --queue prints, logs and exits as the local run does (-k)',
    async () => {
      const { url, queue } = freshQueue();
      const worker = startCli(['worker', '--queue', url, '-j', '3']);
      try {
        const args = ['-k', fixture('job.sh'), ':::', '1', '2', '3', '4', '5'];
        const [remote, local] = await Promise.all([
          startCli(['run', '--queue', url, '--joblog', join(scratch, 'remote.log'), ...args]).done,
          startCli(['run', '--joblog', join(scratch, 'local.log'), ...args]).done,
        ]);
        expect(remote.stdout).toBe('out 1\nout 2\nout 3\nout 4\nout 5\n');
        expect(remote).toMatchObject({
          code: local.code,
          stdout: local.stdout,
          stderr: local.stderr,
        });
        expect(remote.code).toBe(1);
        const columns = (file: string) =>
          readFileSync(join(scratch, file), 'utf8')
            .trim()
            .split('\n')
            .map((line) => line.split('\t'))
            .map((f) => [f[0], f[1], f[4], f[5], f[6], f[7], f[8]].join('\t'))
            .sort();
        expect(columns('remote.log')).toEqual(columns('local.log'));
        // The run's jobs are removed from Redis once their results are read.
        expect(await queue.count()).toBe(0);

        // Bytes that are not UTF-8 come back as written (the worker sends them in base64).
        const bytes = spawnSync(
          process.execPath,
          [main, 'run', '--queue', url, '-k', 'printf "\\377\\376{}\\n"', ':::', 'x'],
          { encoding: 'buffer' },
        );
        expect(bytes.status).toBe(0);
        expect(bytes.stdout).toEqual(Buffer.from([0xff, 0xfe, 0x78, 0x0a]));

        // --retries: BullMQ attempts; the output and status are those of the last try.
        const flaky = fileURLToPath(new URL('./fixtures/runner/flaky.sh', import.meta.url));
        const retried = (counters: string) => [
          '--retries',
          '3',
          'sh',
          flaky,
          `${join(scratch, counters)}{}`,
          '2',
          ':::',
          'a',
          'b',
        ];
        const [remoteRetry, localRetry] = await Promise.all([
          startCli(['run', '--queue', url, '-k', ...retried('remote-')]).done,
          startCli(['run', '-k', ...retried('local-')]).done,
        ]);
        expect(remoteRetry).toMatchObject({ code: 0, stdout: 'attempt 2\nattempt 2\n' });
        expect(remoteRetry).toMatchObject({ code: localRetry.code, stdout: localRetry.stdout });
      } finally {
        worker.child.kill('SIGTERM');
        await worker.done;
        await queue.obliterate({ force: true });
        await queue.close();
      }
    },
  );

  it.runIf(testMode === 'pidfd')(
    'bad usage: worker exits 2, run 255 (as GNU parallel), with a reason',
    async () => {
      const missing = await startCli(['worker']).done;
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/--queue URL is required/);
      const bad = await startCli(['run', '--queue', 'http://x/q', 'echo', ':::', 'a']).done;
      expect(bad.code).toBe(255);
      expect(bad.stderr).toMatch(/--queue: .*redis:\/\//);
    },
  );
});
