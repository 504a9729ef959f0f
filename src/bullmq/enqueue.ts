// Adds jobs to a BullMQ queue under ids derived from their content, so that
// adding the same jobs again (a restarted producer) adds nothing twice.
import { createHash } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import { invalidType, invalidValue } from '../errors.js';
import { type QueuedJob, toCommand } from './job.js';

export interface EnqueueOptions {
  /** Job name in BullMQ; default `'pidwatch'`. */
  name?: string;
  /** Put before each job id (no `:`), e.g. a batch name: the same job in two batches runs twice. */
  prefix?: string;
  /** Job id of each job instead of the content hash (the prefix still comes first). */
  jobId?: (job: QueuedJob, index: number) => string;
  /** BullMQ options for every job (attempts, backoff, removeOnComplete, ...); `jobId` is ours. */
  jobOptions?: Omit<JobsOptions, 'jobId'>;
}

/** Jobs given to BullMQ per round trip. */
const BATCH = 500;

/** JSON with object keys sorted, so that equal content gives equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The id `enqueue` gives a job by default: a hash of its content. */
export function jobIdOf(job: QueuedJob, prefix = ''): string {
  return prefix + createHash('sha256').update(canonical(job)).digest('hex').slice(0, 32);
}

/**
 * Adds `jobs` (an iterable or async iterable of argv arrays, `{ file, args,
 * options }` or `{ command }`) to `queue`. Resolves with their job ids, in order.
 */
export async function enqueue(
  queue: Queue,
  jobs: Iterable<QueuedJob> | AsyncIterable<QueuedJob>,
  options: EnqueueOptions = {},
): Promise<string[]> {
  if (queue === null || typeof queue !== 'object' || typeof queue.addBulk !== 'function') {
    throw invalidType('queue', 'a BullMQ Queue', queue);
  }
  if (
    jobs === null ||
    typeof jobs !== 'object' ||
    !(Symbol.iterator in jobs || Symbol.asyncIterator in jobs)
  ) {
    throw invalidType('jobs', 'an iterable or async iterable', jobs);
  }
  const { name = 'pidwatch', prefix = '', jobId, jobOptions = {} } = options;
  if (typeof prefix !== 'string' || prefix.includes(':')) {
    throw invalidValue('options.prefix', 'must be a string without ":"', prefix);
  }
  const ids: string[] = [];
  let batch: Parameters<Queue['addBulk']>[0] = [];
  const flush = async () => {
    if (batch.length > 0) await queue.addBulk(batch);
    batch = [];
  };
  let index = 0;
  for await (const job of jobs as AsyncIterable<QueuedJob>) {
    toCommand(job, `jobs[${index}]`);
    const id = jobId ? prefix + jobId(job, index) : jobIdOf(job, prefix);
    if (typeof id !== 'string' || id.includes(':') || /^\d+$/.test(id)) {
      throw invalidValue(
        'options.jobId',
        'must give strings without ":" that are not integers',
        id,
      );
    }
    ids.push(id);
    batch.push({ name, data: job, opts: { ...jobOptions, jobId: id } });
    index++;
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return ids;
}
