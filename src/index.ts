export { capabilities } from './capabilities.js';
export { ExitError, ProcessGoneError, SpawnError } from './errors.js';
export { exec } from './exec.js';
export {
  type ExecPipelineOptions,
  execPipeline,
  Pipeline,
  type PipelineCommand,
  type PipelineOptions,
  type PipelineOutput,
  pipeline,
} from './pipeline.js';
export {
  type HaltPolicy,
  type Job,
  type JobInput,
  type JobResult,
  type Progress,
  type RunAbortError,
  type RunOptions,
  type RunSummary,
  runJobs,
} from './runner/index.js';
export { type ShTag, sh } from './sh.js';
export { spawn, spawnAsync } from './spawn.js';
export { Subprocess } from './subprocess.js';
export { execSync, spawnSync } from './sync.js';
export type {
  Capabilities,
  ExecOptions,
  ExitSource,
  ExitStatus,
  Output,
  ProcessTree,
  ResourceUsage,
  SpawnOptions,
  StdioEntry,
  StdioKind,
  TreeStatus,
} from './types.js';
export { POLL_CEILING_MS, POLL_FIRST_MS, type WatchedProcess, watch } from './watch.js';
