import { getSystemErrorName } from 'node:util';
import type { ExitStatus, ResourceUsage, TreeStatus } from './types.js';

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
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value)})`;
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

/** The kernel refused to start the process. */
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
    const code = getSystemErrorName(-Math.abs(errno));
    super(`spawn ${path} ${code} (${syscall} failed)`);
    this.name = 'SpawnError';
    this.code = code;
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
    this.path = path;
    this.spawnargs = spawnargs;
  }
}

/** `exec()` rejects with this when the command failed: non-zero code, signal or maxBuffer. */
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
  readonly command: string;
  readonly isMaxBuffer: boolean;

  constructor(
    command: string,
    status: ExitStatus,
    output: { stdout: string | Buffer; stderr: string | Buffer },
    isMaxBuffer = false,
  ) {
    let why: string;
    if (isMaxBuffer) why = 'exceeded maxBuffer';
    else if (status.timedOut) why = `timed out (${status.signal ?? `exit code ${status.code}`})`;
    else if (status.aborted) why = `was aborted (${status.signal ?? `exit code ${status.code}`})`;
    else if (status.signal) why = `was killed with ${status.signal}`;
    else if (status.code === null) why = 'ended with an unknown status';
    else why = `failed with exit code ${status.code}`;
    super(`Command ${why}: ${command}`);
    this.name = 'ExitError';
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
