import { ExitError, invalidType, invalidValue } from './errors.js';
import { commandText } from './shell.js';
import { spawn } from './spawn.js';
import type { ExecOptions, Output, SpawnOptions } from './types.js';

const DEFAULT_MAX_BUFFER = 100 * 1024 * 1024;

function checkExecOptions(options: ExecOptions) {
  const { input, encoding = 'utf8', maxBuffer = DEFAULT_MAX_BUFFER, reject = true } = options;
  if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array))
    throw invalidType('options.input', 'a string or Uint8Array', input);
  if (encoding !== 'utf8' && encoding !== 'buffer')
    throw invalidValue('options.encoding', "must be 'utf8' or 'buffer'", encoding);
  if (typeof maxBuffer !== 'number')
    throw invalidType('options.maxBuffer', 'of type number', maxBuffer);
  if (!(maxBuffer >= 0))
    throw invalidValue('options.maxBuffer', 'must be a number >= 0', maxBuffer);
  if (typeof reject !== 'boolean') throw invalidType('options.reject', 'of type boolean', reject);
  return { input, encoding, maxBuffer, reject };
}

/** Collects a stream up to maxBuffer bytes; calls onOverflow once past it. */
function collect(stream: NodeJS.ReadableStream, maxBuffer: number, onOverflow: () => void) {
  const chunks: Buffer[] = [];
  let size = 0;
  let overflowed = false;
  const done = new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      if (overflowed) return;
      if (size + chunk.length > maxBuffer) {
        chunks.push(chunk.subarray(0, maxBuffer - size));
        size = maxBuffer;
        overflowed = true;
        onOverflow();
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    stream.on('error', () => resolve());
    stream.on('close', () => resolve());
  });
  return { done, bytes: () => Buffer.concat(chunks, size) };
}

/**
 * Runs a command to completion with stdout and stderr collected. Rejects with
 * ExitError on a non-zero code or a signal (unless `reject: false`), and with
 * SpawnError or TypeError when it could not start.
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
  const o = (options ?? {}) as ExecOptions;
  if (typeof o !== 'object') throw invalidType('options', 'of type object', o);
  const { input, encoding, maxBuffer, reject } = checkExecOptions(o);
  const { input: _i, encoding: _e, maxBuffer: _m, reject: _r, ...rest } = o;
  const spawnOptions: SpawnOptions = {
    ...rest,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  };
  const proc = spawn(file, args as readonly string[] | undefined, spawnOptions);
  const command = commandText(file, (args as string[] | undefined) ?? [], o.shell);

  let isMaxBuffer = false;
  const onOverflow = () => {
    if (isMaxBuffer) return;
    isMaxBuffer = true;
    proc.terminate('dispose');
  };
  const stdout = collect(proc.stdout!, maxBuffer, onOverflow);
  const stderr = collect(proc.stderr!, maxBuffer, onOverflow);
  if (proc.stdin) {
    proc.stdin.on('error', () => {}); // the child may exit without reading its input
    proc.stdin.end(input);
  }
  const status = await proc.exited;
  await Promise.all([stdout.done, stderr.done]);
  const decode = (bytes: Buffer) => (encoding === 'buffer' ? bytes : bytes.toString('utf8'));
  const output = { ...status, stdout: decode(stdout.bytes()), stderr: decode(stderr.bytes()) };
  if (reject && (isMaxBuffer || status.code !== 0)) {
    throw new ExitError(command, status, output, isMaxBuffer);
  }
  return output;
}
