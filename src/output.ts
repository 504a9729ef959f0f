// From collected bytes to an Output, shared by exec() and execSync(): the output options
// and their checks, decoding, the final newline, and when the call has failed.
import { invalidType, invalidValue } from './errors.js';
import type { ExecOptions, ExitStatus, Output, SpawnOptions } from './types.js';

export const DEFAULT_MAX_BUFFER = 100 * 1024 * 1024;

/** The output options of exec/execSync, checked, with defaults filled in. */
export interface OutputSettings {
  input: Uint8Array | undefined;
  encoding: 'utf8' | 'buffer';
  maxBuffer: number;
  all: boolean;
  stripFinalNewline: boolean;
  reject: boolean;
}

function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidType(`options.${name}`, 'of type boolean', value);
  return value;
}

/**
 * Splits exec/execSync options into the spawn options and the output settings. The child's
 * stdin is a pipe when there is input, else /dev/null; stdout and stderr are pipes.
 */
export function splitExecOptions(options: unknown): {
  spawnOptions: SpawnOptions;
  settings: OutputSettings;
} {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw invalidType('options', 'of type object', options);
  const {
    input,
    encoding = 'utf8',
    maxBuffer = DEFAULT_MAX_BUFFER,
    all,
    stripFinalNewline,
    reject,
    ...rest
  } = options as ExecOptions & { stdio?: unknown };
  // exec decides stdio (stdout and stderr piped, stdin for input): an stdio option
  // would be dropped, and `stdio: 'inherit'` silently captured, so it is refused.
  if (rest.stdio !== undefined)
    throw invalidValue(
      'options.stdio',
      'is not an option here: stdout and stderr are piped and collected (use spawn for other stdio)',
      rest.stdio,
    );
  if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array))
    throw invalidType('options.input', 'a string or Uint8Array', input);
  if (encoding !== 'utf8' && encoding !== 'buffer')
    throw invalidValue('options.encoding', "must be 'utf8' or 'buffer'", encoding);
  if (typeof maxBuffer !== 'number')
    throw invalidType('options.maxBuffer', 'of type number', maxBuffer);
  if (!(maxBuffer >= 0))
    throw invalidValue('options.maxBuffer', 'must be a number >= 0', maxBuffer);
  const settings: OutputSettings = {
    input: typeof input === 'string' ? Buffer.from(input, 'utf8') : input,
    encoding,
    maxBuffer,
    all: checkBoolean('all', all, false),
    stripFinalNewline: checkBoolean('stripFinalNewline', stripFinalNewline, false),
    reject: checkBoolean('reject', reject, true),
  };
  // (rest.stdio, undefined if there, is replaced: no `delete`, which would turn `rest`
  // into a slow dictionary object for the copy below.)
  const spawnOptions: SpawnOptions = {
    ...rest,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  };
  return { spawnOptions, settings };
}

/** The bytes a call collected. */
export interface CollectedOutput {
  stdout: Buffer;
  stderr: Buffer;
  all?: Buffer | undefined;
  isMaxBuffer: boolean;
}

function stripNewline(bytes: Buffer): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && end < bytes.length && bytes[end - 1] === 0x0d) end--;
  return end === bytes.length ? bytes : bytes.subarray(0, end);
}

/** The Output of a finished call: the status, the decoded streams, `all` when asked for. */
export function toOutput(
  status: ExitStatus,
  collected: CollectedOutput,
  settings: OutputSettings,
): Output {
  // Written out rather than spread from status: this runs once per call.
  const output: Output = {
    pid: status.pid,
    code: status.code,
    signal: status.signal,
    coreDumped: status.coreDumped,
    timedOut: status.timedOut,
    aborted: status.aborted,
    durationMs: status.durationMs,
    resourceUsage: status.resourceUsage,
    tree: status.tree,
    stdout: decode(cutWhole(collected.stdout, collected, settings), settings),
    stderr: decode(cutWhole(collected.stderr, collected, settings), settings),
    isMaxBuffer: collected.isMaxBuffer,
  };
  if (settings.all) output.all = decode(collected.all ?? Buffer.alloc(0), settings);
  return output;
}

/**
 * A stream cut at maxBuffer, decoded as text, ends at the last whole character: a
 * character the cut split in two is left out rather than decoded as U+FFFD (Node's
 * exec, which counts characters, never splits one either).
 */
function cutWhole(bytes: Buffer, collected: CollectedOutput, settings: OutputSettings): Buffer {
  if (!collected.isMaxBuffer || settings.encoding !== 'utf8' || bytes.length < settings.maxBuffer)
    return bytes;
  // The last lead byte among the final four, and whether its sequence is complete.
  for (let i = bytes.length - 1; i >= 0 && i >= bytes.length - 4; i--) {
    const byte = bytes[i] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return i + length > bytes.length ? bytes.subarray(0, i) : bytes;
  }
  return bytes;
}

function decode(bytes: Buffer, settings: OutputSettings): string | Buffer {
  if (settings.stripFinalNewline) bytes = stripNewline(bytes);
  return settings.encoding === 'buffer' ? bytes : bytes.toString('utf8');
}

/** A call fails (rejects, or throws with execSync) on these, unless `reject: false`. */
export function hasFailed(output: Output): boolean {
  return output.code !== 0 || output.timedOut || output.aborted || output.isMaxBuffer;
}
