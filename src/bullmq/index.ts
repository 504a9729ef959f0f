// pidwatch/bullmq: every BullMQ job a pidwatch process tree.
export { type EnqueueOptions, enqueue, jobIdOf } from './enqueue.js';
export type { Command, QueuedJob, QueuedSpawnOptions } from './job.js';
export {
  type JobOutcome,
  type ProcessorOptions,
  type ProgressMapper,
  processor,
} from './processor.js';
export { parseQueueUrl, type QueueAddress } from './url.js';
