import { spawnCapturedAsync } from './capture.js';
import { ExitError } from './errors.js';
import { hasFailed, splitExecOptions, toOutput } from './output.js';
import { commandText } from './shell.js';
import type { ExecOptions, Output } from './types.js';

/**
 * Runs a command to completion with stdout and stderr collected. Rejects with
 * ExitError on a non-zero code, a signal, a timeout, an abort or maxBuffer (unless
 * `reject: false`), and with SpawnError or TypeError when it could not start.
 */
export function exec(file: string, options?: ExecOptions): Promise<Output>;
export function exec(
  file: string,
  args?: readonly string[],
  options?: ExecOptions,
): Promise<Output>;
export async function exec(file: string, args?: unknown, options?: unknown): Promise<Output> {
  if (options === undefined && args !== null && typeof args === 'object' && !Array.isArray(args)) {
    options = args;
    args = undefined;
  }
  const { spawnOptions, settings } = splitExecOptions(options);
  const argv = args as readonly string[] | undefined;
  const { result } = await spawnCapturedAsync(file, argv, spawnOptions, {
    input: settings.input,
    maxBuffer: settings.maxBuffer,
    all: settings.all,
  });
  const command = commandText(file, argv ?? [], spawnOptions.shell);
  const { status, ...collected } = await result;
  const output = toOutput(status, collected, settings);
  if (settings.reject && hasFailed(output)) {
    throw new ExitError(command, status, output, output.isMaxBuffer);
  }
  return output;
}
