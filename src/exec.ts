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
  // The arguments as called with: the message of an ExitError names them, and is only
  // written when the call fails.
  const argv = Array.isArray(args) ? (args.slice() as readonly string[]) : (args as undefined);
  const { result } = await spawnCapturedAsync(file, argv, spawnOptions, {
    input: settings.input,
    maxBuffer: settings.maxBuffer,
    all: settings.all,
  });
  const captured = await result;
  const { status } = captured;
  const output = toOutput(status, captured, settings);
  if (settings.reject && hasFailed(output)) {
    const command = commandText(file, argv ?? [], spawnOptions.shell);
    throw new ExitError(command, status, output, output.isMaxBuffer);
  }
  return output;
}
