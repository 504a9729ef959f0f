// What a queued job may be, checked once: on enqueue and again in the worker,
// since the data comes back from Redis as plain JSON.
import { invalidType, invalidValue } from '../errors.js';
import { commandText } from '../shell.js';
import type { SpawnOptions } from '../types.js';

/**
 * Spawn options that survive JSON: no streams, signals or fds. `env` is added to
 * the worker's environment (the producer's is not the worker's to replace).
 */
export type QueuedSpawnOptions = Pick<
  SpawnOptions,
  'cwd' | 'env' | 'argv0' | 'timeout' | 'killSignal' | 'forceKillAfter'
> & { cwd?: string };

/**
 * `job.data` of a pidwatch job: an argv array, `{ file, args?, options? }`, or
 * `{ command, options? }`, a line run by `/bin/sh -c`.
 */
export type QueuedJob =
  | readonly string[]
  | { file: string; args?: readonly string[]; options?: QueuedSpawnOptions }
  | { command: string; options?: QueuedSpawnOptions };

/** A queued job as `spawn()` takes it. */
export interface Command {
  file: string;
  args: string[];
  options: QueuedSpawnOptions;
  /** `file` is a command line for /bin/sh (`{ command }`). */
  shell: boolean;
  /** The command as one line, for messages. */
  line: string;
}

const OPTION_NAMES = new Set(['cwd', 'env', 'argv0', 'timeout', 'killSignal', 'forceKillAfter']);

function checkStrings(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw invalidType(name, 'an array of strings', value);
  }
  return value as string[];
}

function checkOptions(value: unknown, name: string): QueuedSpawnOptions {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidType(name, 'of type object', value);
  }
  for (const key of Object.keys(value)) {
    if (!OPTION_NAMES.has(key)) {
      throw invalidValue(name, `holds '${key}', which a queued job cannot carry`, value);
    }
  }
  return value as QueuedSpawnOptions;
}

/** Checks a job's data and turns it into what `spawn()` takes. */
export function toCommand(data: unknown, name = 'job'): Command {
  if (Array.isArray(data)) {
    const argv = checkStrings(data, name);
    if (argv.length === 0) throw invalidValue(name, 'must not be empty', data);
    const [file, ...args] = argv as [string, ...string[]];
    return { file, args, options: {}, shell: false, line: commandText(file, args, false) };
  }
  if (data === null || typeof data !== 'object') {
    throw invalidType(name, 'an argv array or an object with file or command', data);
  }
  const record = data as Record<string, unknown>;
  const options = checkOptions(record.options, `${name}.options`);
  if (typeof record.command === 'string') {
    return { file: record.command, args: [], options, shell: true, line: record.command };
  }
  if (typeof record.file === 'string') {
    const args = record.args === undefined ? [] : checkStrings(record.args, `${name}.args`);
    const line = commandText(record.file, args, false);
    return { file: record.file, args, options, shell: false, line };
  }
  throw invalidType(name, 'an argv array or an object with file or command', data);
}
