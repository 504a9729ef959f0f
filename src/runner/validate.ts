import { availableParallelism } from 'node:os';
import type { SpawnOptions } from '../types.js';
import type { HaltPolicy, Job, RunOptions } from './types.js';

type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';

export function invalid(code: Code, message: string): TypeError {
  return Object.assign(new TypeError(message), { code });
}

/** Run options after validation, with defaults filled in. */
export interface RunSettings {
  concurrency: number;
  timeout: number | undefined;
  retries: number;
  halt: { now: boolean; fail: number } | null;
  output: 'buffer' | 'ignore' | 'inherit';
  encoding: 'utf8' | 'buffer';
  killSignal: NodeJS.Signals | number;
  forceKillAfter: number | false;
  tree: boolean;
}

function isCount(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min;
}

function checkHalt(halt: HaltPolicy | undefined): RunSettings['halt'] {
  if (halt === undefined || halt === 'never') return null;
  if (typeof halt !== 'object' || halt === null) {
    throw invalid('ERR_INVALID_ARG_TYPE', `options.halt must be 'never' or { when, fail }`);
  }
  if (halt.when !== 'now' && halt.when !== 'soon') {
    throw invalid('ERR_INVALID_ARG_VALUE', `options.halt.when must be 'now' or 'soon'`);
  }
  if (!isCount(halt.fail, 1)) {
    throw invalid('ERR_INVALID_ARG_VALUE', 'options.halt.fail must be an integer >= 1');
  }
  return { now: halt.when === 'now', fail: halt.fail };
}

export function checkRunOptions(options: RunOptions<any> | undefined): RunSettings {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) {
    throw invalid('ERR_INVALID_ARG_TYPE', 'options must be an object');
  }
  const {
    concurrency = availableParallelism(),
    timeout,
    retries = 0,
    output = 'buffer',
    encoding = 'utf8',
    killSignal = 'SIGTERM',
    forceKillAfter = 5000,
    tree = true,
    signal,
    onResult,
    onProgress,
  } = options;
  if (!(isCount(concurrency, 1) || concurrency === Number.POSITIVE_INFINITY)) {
    throw invalid('ERR_INVALID_ARG_VALUE', 'options.concurrency must be an integer >= 1');
  }
  if (
    timeout !== undefined &&
    !(typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0)
  ) {
    throw invalid('ERR_INVALID_ARG_VALUE', 'options.timeout must be a number of ms > 0');
  }
  if (!(isCount(retries, 0) || retries === Number.POSITIVE_INFINITY)) {
    throw invalid('ERR_INVALID_ARG_VALUE', 'options.retries must be an integer >= 0 or Infinity');
  }
  if (output !== 'buffer' && output !== 'ignore' && output !== 'inherit') {
    throw invalid(
      'ERR_INVALID_ARG_VALUE',
      `options.output must be 'buffer', 'ignore' or 'inherit'`,
    );
  }
  if (encoding !== 'utf8' && encoding !== 'buffer') {
    throw invalid('ERR_INVALID_ARG_VALUE', `options.encoding must be 'utf8' or 'buffer'`);
  }
  if (typeof killSignal !== 'string' && !isCount(killSignal, 1)) {
    throw invalid('ERR_INVALID_ARG_TYPE', 'options.killSignal must be a signal name or number');
  }
  if (forceKillAfter !== false && !(typeof forceKillAfter === 'number' && forceKillAfter >= 0)) {
    throw invalid('ERR_INVALID_ARG_VALUE', 'options.forceKillAfter must be ms >= 0 or false');
  }
  if (typeof tree !== 'boolean') {
    throw invalid('ERR_INVALID_ARG_TYPE', 'options.tree must be a boolean');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid('ERR_INVALID_ARG_TYPE', 'options.signal must be an AbortSignal');
  }
  for (const [name, fn] of [
    ['onResult', onResult],
    ['onProgress', onProgress],
  ] as const) {
    if (fn !== undefined && typeof fn !== 'function') {
      throw invalid('ERR_INVALID_ARG_TYPE', `options.${name} must be a function`);
    }
  }
  return {
    concurrency,
    timeout,
    retries,
    halt: checkHalt(options.halt),
    output,
    encoding,
    killSignal,
    forceKillAfter,
    tree,
  };
}

/** Turns what a job source yields into a `Job`; anything else is a TypeError naming its index. */
export function toJob(input: unknown, index: number): Job {
  if (Array.isArray(input)) {
    const [file, ...args] = input as unknown[];
    if (typeof file !== 'string' || !args.every((arg) => typeof arg === 'string')) {
      throw invalid('ERR_INVALID_ARG_TYPE', `job ${index}: an argv array must hold only strings`);
    }
    return { file, args: args as string[] };
  }
  if (typeof input !== 'object' || input === null || typeof (input as Job).file !== 'string') {
    throw invalid(
      'ERR_INVALID_ARG_TYPE',
      `job ${index}: expected { file, args?, options? } or [file, ...args]`,
    );
  }
  const job = input as Job;
  if (job.options !== undefined && (typeof job.options !== 'object' || job.options === null)) {
    throw invalid('ERR_INVALID_ARG_TYPE', `job ${index}: options must be an object`);
  }
  return job;
}

/** The spawn options of one attempt: the job's own, over the run's defaults. */
export function attemptOptions(job: Job, settings: RunSettings): SpawnOptions {
  const own = job.options ?? {};
  const stdio =
    own.stdio ??
    (settings.output === 'buffer'
      ? (['ignore', 'pipe', 'pipe'] as const)
      : settings.output === 'inherit'
        ? (['ignore', 'inherit', 'inherit'] as const)
        : 'ignore');
  return {
    ...own,
    stdio,
    timeout: own.timeout ?? settings.timeout,
    killSignal: own.killSignal ?? settings.killSignal,
    forceKillAfter: own.forceKillAfter ?? settings.forceKillAfter,
    tree: own.tree ?? settings.tree,
  };
}
