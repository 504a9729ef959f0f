// `pidwatch worker --queue URL [-j N]`: a BullMQ worker running each job as a
// pidwatch process tree, until SIGINT or SIGTERM.
import { availableParallelism, constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, parseCount, parseSeconds, UsageError } from './args.js';
import { loadQueueModule } from './queue.js';

const USAGE = `Usage: pidwatch worker --queue URL [options]

Runs the jobs of a BullMQ queue (those that 'pidwatch run --queue URL' or the
pidwatch/bullmq enqueue() add) as process trees, N at a time, until stopped.
A job's tree is killed whole on its timeout, and when this worker dies, even by
SIGKILL; BullMQ then gives the job to another worker.

Queue URL:
  redis://[USER:PASSWORD@]HOST[:PORT]/NAME[?db=N]
  redis+unix:///PATH/TO/redis.sock?queue=NAME[&db=N]

Options:
      --queue URL              the queue to take jobs from (required)
  -j, --jobs N                 run N jobs at once (default: ${availableParallelism()}, the CPU count)
      --timeout SEC            kill a job's tree after SEC seconds (a job's own timeout wins)
      --lock-duration SEC      BullMQ lockDuration: how long a job's lock lasts without
                               renewal (default 30)
      --stalled-interval SEC   BullMQ stalledInterval: how often stalled jobs are looked
                               for (default 30)
      --max-stalled-count N    BullMQ maxStalledCount: how often a job may stall before it
                               fails (default 1)
  -h, --help                   show this help

SIGINT or SIGTERM stops taking jobs and waits for the running ones; a second one
exits at once (their trees are killed, and the jobs run again elsewhere).
`;

/** How long an idle worker's close() may take on SIGINT or SIGTERM. */
const IDLE_CLOSE_MS = 1000;

const OPTIONS = {
  queue: { value: true },
  jobs: { short: 'j', value: true },
  timeout: { value: true },
  'lock-duration': { value: true },
  'stalled-interval': { value: true },
  'max-stalled-count': { value: true },
  help: { short: 'h' },
} as const;

/** Bytes kept of each job's stdout and stderr: what `pidwatch run --queue` prints. */
const OUTPUT_LIMIT = 64 * 1024 * 1024;

interface WorkerCommand {
  url: string;
  concurrency: number;
  timeout: number | undefined;
  lockDuration: number | undefined;
  stalledInterval: number | undefined;
  maxStalledCount: number | undefined;
}

function parseCommand(argv: readonly string[]): WorkerCommand | 'help' {
  const { options, positionals } = parseArgs(argv, OPTIONS);
  if (options.has('help')) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const text = (name: keyof typeof OPTIONS) => {
    const value = options.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const url = text('queue');
  if (url === undefined) throw new UsageError('--queue URL is required');
  const seconds = (name: keyof typeof OPTIONS) => {
    const value = text(name);
    return value === undefined ? undefined : parseSeconds(name, value);
  };
  const jobs = text('jobs');
  const stalled = text('max-stalled-count');
  return {
    url,
    concurrency: jobs === undefined ? availableParallelism() : parseCount('jobs', jobs, 1),
    timeout: seconds('timeout'),
    lockDuration: seconds('lock-duration'),
    stalledInterval: seconds('stalled-interval'),
    maxStalledCount:
      stalled === undefined ? undefined : parseCount('max-stalled-count', stalled, 0),
  };
}

export async function runWorker(argv: string[]): Promise<number> {
  let config: WorkerCommand | 'help';
  let address: { connection: object; name: string };
  let bullmq: typeof import('bullmq');
  try {
    config = parseCommand(argv);
    if (config === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    const { parseQueueUrl } = await import('../bullmq/url.js');
    try {
      address = parseQueueUrl(config.url);
    } catch (error) {
      throw new UsageError(`--queue: ${(error as Error).message}`);
    }
    bullmq = await loadQueueModule(() => import('bullmq'));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch worker: ${error.message}\n`);
    return 2;
  }
  const { processor } = await import('../bullmq/processor.js');
  const run = processor({
    timeout: config.timeout,
    maxBuffer: OUTPUT_LIMIT,
    progress: false,
    reject: 'untilLastAttempt',
    encoding: 'base64', // a `run --queue` prints the bytes the job wrote
  });
  let running = 0;
  const worker = new bullmq.Worker(
    address.name,
    async (...args: Parameters<typeof run>) => {
      running++;
      try {
        return await run(...args);
      } finally {
        running--;
      }
    },
    {
      connection: { ...address.connection, maxRetriesPerRequest: null },
      concurrency: config.concurrency,
      ...(config.lockDuration === undefined ? {} : { lockDuration: config.lockDuration }),
      ...(config.stalledInterval === undefined ? {} : { stalledInterval: config.stalledInterval }),
      ...(config.maxStalledCount === undefined ? {} : { maxStalledCount: config.maxStalledCount }),
    },
  );
  let lastError = '';
  worker.on('error', (error) => {
    // ioredis retries a lost connection on its own; say so once per distinct error.
    if (error.message === lastError) return;
    lastError = error.message;
    process.stderr.write(`pidwatch worker: ${error.message}\n`);
  });

  const stoppedBy = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const again = (signal: NodeJS.Signals) => process.exit(128 + constants.signals[signal]);
  process.once('SIGINT', again);
  process.once('SIGTERM', again);
  const closing = worker.close();
  // With no job to wait for, close() only tidies the connection, and it never settles
  // while Redis cannot be reached: waited for a moment only.
  if (running === 0) await Promise.race([closing, sleep(IDLE_CLOSE_MS)]);
  else await closing;
  return 128 + constants.signals[stoppedBy];
}
