import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import type { ExitStatus, ResourceUsage, TreeStatus } from './types.js';

/** errno -> name from the platform's table (first name wins: EAGAIN before EWOULDBLOCK). */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, number] of Object.entries(constants.errno)) {
  if (!ERRNO_NAMES.has(number)) ERRNO_NAMES.set(number, name);
}

/**
 * The name of an errno (either sign), as Node gives it. Node names only the errors
 * libuv maps (Node 20 has no ENOEXEC, ESTALE or EDQUOT): the rest come from the table.
 */
export function errnoName(errno: number): string {
  const name = getSystemErrorName(-Math.abs(errno));
  return name.startsWith('Unknown') ? (ERRNO_NAMES.get(Math.abs(errno)) ?? name) : name;
}

/** A TypeError with Node's `code`, for bad arguments. */
export function invalidArg(
  code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE',
  message: string,
): TypeError & { code: string } {
  const error = new TypeError(message) as TypeError & { code: string };
  error.code = code;
  return error;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `type string (${JSON.stringify(value)})`;
  try {
    if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
    return `type ${typeof value} (${String(value)})`;
  } catch {
    // a getter or a toString that throws: the error about the argument is still made
    return `type ${typeof value}`;
  }
}

export function invalidType(name: string, expected: string, value: unknown): TypeError {
  return invalidArg(
    'ERR_INVALID_ARG_TYPE',
    `The "${name}" argument must be ${expected}. Received ${describe(value)}`,
  );
}

export function invalidValue(name: string, reason: string, value: unknown): TypeError {
  return invalidArg(
    'ERR_INVALID_ARG_VALUE',
    `The "${name}" argument ${reason}. Received ${describe(value)}`,
  );
}

/** The steps whose failure is about a path (the program, the cwd): the message names it. */
const STEPS_ON_A_PATH = new Set(['execve', 'chdir']);

/**
 * The kernel refused to start the process. The message names the command, the
 * step and what it was about: `spawn ls: chdir '/nope' failed: ENOENT`.
 */
export class SpawnError extends Error {
  /** The errno name, e.g. 'ENOENT'. */
  readonly code: string;
  /** The negative errno, as Node reports it. */
  readonly errno: number;
  /** The step that failed: 'execve', 'chdir', 'setuid', 'clone3', 'pipe2', ... */
  readonly syscall: string;
  readonly path: string;
  readonly spawnargs: string[];

  constructor(errno: number, syscall: string, path: string, spawnargs: string[]) {
    const code = errnoName(errno);
    const about = STEPS_ON_A_PATH.has(syscall) ? ` '${path}'` : '';
    super(`spawn ${spawnargs[0] ?? path}: ${syscall}${about} failed: ${code}`);
    this.name = 'SpawnError';
    this.code = code;
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
    this.path = path;
    this.spawnargs = spawnargs;
  }
}

/**
 * A failure thrown by a native spawn, as the SpawnError it stands for; anything
 * else is returned as it is. `path` is what the failed step was about: the
 * directory for chdir, else the program.
 */
export function toSpawnError(
  error: unknown,
  request: { file: string; args: readonly string[]; cwd: string | null },
): unknown {
  const e = error as { errno?: unknown; syscall: string; path?: string };
  if (typeof e?.errno !== 'number') return error;
  const path =
    e.syscall === 'chdir' && request.cwd !== null ? request.cwd : (e.path ?? request.file);
  return new SpawnError(e.errno, e.syscall, path, [request.file, ...request.args]);
}

/** At most this many bytes of stderr end an ExitError's message. */
export const STDERR_TAIL_BYTES = 1024;

/**
 * The last lines of `stderr` that fit in `limit` bytes, without the final
 * newline. A last line longer than that is cut to its end, at a character
 * boundary. Empty when stderr holds nothing but whitespace.
 */
export function stderrTail(stderr: string | Uint8Array, limit = STDERR_TAIL_BYTES): string {
  let bytes = typeof stderr === 'string' ? Buffer.from(stderr) : Buffer.from(stderr);
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  bytes = bytes.subarray(0, end);
  if (bytes.length > limit) {
    let start = bytes.length - limit;
    const newline = bytes.indexOf(0x0a, start - 1);
    if (newline !== -1 && newline < bytes.length - 1) start = newline + 1;
    // Not inside a UTF-8 sequence: skip continuation bytes (10xxxxxx).
    while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
    bytes = bytes.subarray(start);
  }
  const text = bytes.toString('utf8');
  return text.trim() === '' ? '' : text;
}

/** Why a command failed, in the words of an ExitError's message. */
function failure(status: ExitStatus, isMaxBuffer: boolean): string {
  const how = status.signal ?? `exit code ${status.code}`;
  if (isMaxBuffer) return `exceeded maxBuffer (${how})`;
  if (status.timedOut) return `timed out (${how})`;
  if (status.aborted) return `was aborted (${how})`;
  if (status.signal) return `was killed with ${status.signal}`;
  if (status.code === null) return 'ended with an unknown status';
  return `failed with exit code ${status.code}`;
}

/**
 * `exec()` rejects with this, and `execSync()` throws it, when the command failed:
 * non-zero code, signal or maxBuffer. The message names the command and the code
 * or signal, then (after a blank line) the last lines of stderr, at most 1 KiB;
 * `shortMessage` is the message without them.
 */
export class ExitError extends Error implements ExitStatus {
  readonly pid: number;
  /** The exit code, as in ExitStatus (null when killed by a signal). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly coreDumped: boolean;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly durationMs: number;
  readonly resourceUsage: ResourceUsage | null;
  readonly tree: TreeStatus | null;
  readonly stdout: string | Buffer;
  readonly stderr: string | Buffer;
  /**
   * With `all: true`: stdout and stderr interleaved. Declared only, so that without
   * `all` the error has no such key, as the Output it stands for has none.
   */
  declare readonly all?: string | Buffer;
  readonly command: string;
  readonly isMaxBuffer: boolean;
  /** The message without the stderr tail: `Command failed with exit code 1: cmd`. */
  readonly shortMessage: string;

  constructor(
    command: string,
    status: ExitStatus,
    output: { stdout: string | Buffer; stderr: string | Buffer; all?: string | Buffer },
    isMaxBuffer = false,
  ) {
    const shortMessage = `Command ${failure(status, isMaxBuffer)}: ${command}`;
    const tail = stderrTail(output.stderr);
    super(tail === '' ? shortMessage : `${shortMessage}\n\n${tail}`);
    this.name = 'ExitError';
    this.shortMessage = shortMessage;
    this.pid = status.pid;
    this.code = status.code;
    this.signal = status.signal;
    this.coreDumped = status.coreDumped;
    this.timedOut = status.timedOut;
    this.aborted = status.aborted;
    this.durationMs = status.durationMs;
    this.resourceUsage = status.resourceUsage;
    this.tree = status.tree;
    this.stdout = output.stdout;
    this.stderr = output.stderr;
    if (output.all !== undefined) this.all = output.all;
    this.command = command;
    this.isMaxBuffer = isMaxBuffer;
  }
}

/** `watch()` of a PID with no process behind it. */
export class ProcessGoneError extends Error {
  readonly code = 'ESRCH';
  readonly errno = -3;
  readonly pid: number;

  constructor(pid: number) {
    super(`No process with PID ${pid}`);
    this.name = 'ProcessGoneError';
    this.pid = pid;
  }
}

/** What a closed watch rejects its pending `exited` with. */
export function abortError(message: string): Error {
  return new DOMException(message, 'AbortError');
}
