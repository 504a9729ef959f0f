// `pidwatch run --queue URL`: the hook that sends a run's jobs to BullMQ workers
// instead of running them here. bullmq is an optional peer dependency, loaded
// only when --queue is given.
import type { JobSource, RunHandle, RunHooks } from '../runner/run.js';
import type { RunOptions } from '../runner/types.js';
import { UsageError } from './args.js';

/** Loads bullmq (and ioredis through it), or says how to get them. */
export async function loadQueueModule<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new UsageError(
        '--queue needs the bullmq and ioredis packages: npm install bullmq ioredis',
      );
    }
    throw error;
  }
}

/** Parses the URL (a UsageError when bad) and starts the run on that queue. */
export async function startQueueRun(
  url: string,
  jobs: JobSource,
  options: RunOptions<Buffer>,
  hooks: RunHooks<Buffer>,
): Promise<RunHandle<Buffer>> {
  const { parseQueueUrl } = await import('../bullmq/url.js');
  let address: ReturnType<typeof parseQueueUrl>;
  try {
    address = parseQueueUrl(url);
  } catch (error) {
    throw new UsageError(`--queue: ${(error as Error).message}`);
  }
  const run = await loadQueueModule(() => import('../bullmq/run.js'));
  return run.startQueueRun(address.connection, address.name, jobs, options, hooks);
}
