// stdio: the user's description -> per-fd codes for the native spawn, and the
// parent's pipe ends -> Node streams on the event loop.
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { invalidValue } from './errors.js';
import { nativeInt32Array, StdioCode } from './native.js';
import type { StdioEntry } from './types.js';

function fdOfStream(entry: object): number | undefined {
  const candidate = entry as { fd?: unknown; _handle?: { fd?: unknown } };
  if (typeof candidate.fd === 'number') return candidate.fd;
  if (typeof candidate._handle?.fd === 'number') return candidate._handle.fd;
  return undefined;
}

/**
 * No fd is ever this high: the kernel caps fs.nr_open (and so every fd number) at
 * INT_MAX rounded down to a multiple of 64.
 */
export const FD_CEILING = 0x7fffffc0;

function isFdNumber(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < FD_CEILING;
}

function codeFor(entry: unknown, fd: number): number {
  if (entry === null || entry === undefined) entry = fd < 3 ? 'pipe' : 'ignore';
  switch (entry) {
    case 'pipe':
      return fd === 0 ? StdioCode.pipeIn : fd < 3 ? StdioCode.pipeOut : StdioCode.socketPair;
    case 'ignore':
      return fd < 3 ? StdioCode.null : StdioCode.none;
    case 'inherit':
      return fd;
  }
  if (typeof entry === 'number') {
    if (isFdNumber(entry)) return entry;
  } else if (typeof entry === 'object' && entry !== null) {
    const streamFd = fdOfStream(entry);
    if (isFdNumber(streamFd)) return streamFd;
  }
  throw invalidValue(
    `options.stdio[${fd}]`,
    "must be 'pipe', 'inherit', 'ignore', an open fd, a stream with an fd, null or undefined",
    entry,
  );
}

function codesOf(entries: readonly StdioEntry[]): Int32Array {
  const codes = nativeInt32Array(Math.max(3, entries.length));
  for (let fd = 0; fd < codes.length; fd++) codes[fd] = codeFor(entries[fd], fd);
  return codes;
}

/** The codes of the three string forms, made once: nothing writes to a request's codes. */
const STRING_CODES: Record<string, Int32Array> = {
  pipe: codesOf(['pipe', 'pipe', 'pipe']),
  inherit: codesOf(['inherit', 'inherit', 'inherit']),
  ignore: codesOf(['ignore', 'ignore', 'ignore']),
};

/** Normalises `options.stdio` to one code per child fd (at least 0, 1 and 2). */
export function stdioCodes(stdio: unknown): Int32Array {
  if (stdio === undefined || stdio === null) return STRING_CODES.pipe;
  if (typeof stdio === 'string') {
    if (stdio !== 'pipe' && stdio !== 'inherit' && stdio !== 'ignore') {
      throw invalidValue('options.stdio', "must be 'pipe', 'inherit', 'ignore' or an array", stdio);
    }
    return STRING_CODES[stdio];
  }
  if (!Array.isArray(stdio)) {
    throw invalidValue('options.stdio', "must be 'pipe', 'inherit', 'ignore' or an array", stdio);
  }
  return codesOf(stdio as readonly StdioEntry[]);
}

export type StdioStream = Readable | Writable | Socket | null;

/** Wraps each parent pipe end in a Node stream; null where the child fd is not piped. */
export function openStreams(codes: Int32Array, fds: ArrayLike<number>): StdioStream[] {
  const streams: StdioStream[] = [];
  for (let fd = 0; fd < codes.length; fd++) {
    const parentFd = fds[fd];
    if (parentFd === undefined || parentFd < 0) {
      streams.push(null);
      continue;
    }
    const code = codes[fd];
    const socket = new Socket({
      fd: parentFd,
      readable: code !== StdioCode.pipeIn,
      writable: code !== StdioCode.pipeOut,
    });
    streams.push(socket);
  }
  return streams;
}
