// Output modes: grouped (each job's output whole, once it ends: GNU parallel's default),
// in input order with -k, lines as they come with --line-buffer; --tag/--tagstring prefixes.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

const NEWLINE = 0x0a;
const RETURN = 0x0d;

/**
 * Where the line from `start` ends: past its \n or, as GNU parallel's --tag takes it, its
 * \r (a progress line redrawn with \r gets the tag each time); else the end of `data`.
 */
function lineEnd(data: Buffer, start: number): number {
  for (let i = start; i < data.length; i++) {
    if (data[i] === NEWLINE || data[i] === RETURN) return i + 1;
  }
  return data.length;
}

/** Prefixes every line of `data`, including a last one without a newline. */
export function tagLines(data: Buffer, prefix: string): Buffer {
  if (prefix === '' || data.length === 0) return data;
  const tag = Buffer.from(prefix);
  const parts: Buffer[] = [];
  for (let start = 0; start < data.length; ) {
    const end = lineEnd(data, start);
    parts.push(tag, data.subarray(start, end));
    start = end;
  }
  return Buffer.concat(parts);
}

/** What a finished job gives to print. */
export interface JobOutput {
  index: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Printed before each line (with its tab), or ''. */
  tag: string;
}

export interface Streams {
  stdout: Writable;
  stderr: Writable;
  /** Called before anything is written (the progress bar clears itself). */
  beforeWrite: () => void;
}

/**
 * Writes each job's output whole, stdout then stderr, once the job has finished: in
 * completion order, or in input order with `keepOrder`. `add(null, index)` stands for a job
 * that prints nothing (killed by --halt now, or its output in --results), so that later ones
 * are not held back. A job's `logged` runs when its output is written: with -k, GNU parallel
 * writes a job's joblog row then, in input order too.
 */
export class GroupedOutput {
  private next = 0;
  private readonly pending = new Map<
    number,
    { output: JobOutput | null; logged: (() => void) | undefined }
  >();
  private dropped = false;

  /**
   * The run was interrupted (SIGINT, SIGTERM) or halted now: with -k, what waits behind an
   * unfinished job is never printed nor logged, and neither is what finishes from now on,
   * as in GNU parallel.
   */
  dropHeld(): void {
    this.dropped = true;
    this.pending.clear();
  }

  constructor(
    private readonly streams: Streams,
    private readonly keepOrder: boolean,
  ) {}

  add(output: JobOutput | null, index: number, logged?: () => void): void {
    if (!this.keepOrder) {
      if (output !== null) this.emit(output);
      logged?.();
      return;
    }
    if (this.dropped) return;
    this.pending.set(index, { output, logged });
    while (this.pending.has(this.next)) {
      const ready = this.pending.get(this.next)!;
      this.pending.delete(this.next++);
      if (ready.output !== null) this.emit(ready.output);
      ready.logged?.();
    }
  }

  private emit({ stdout, stderr, tag }: JobOutput): void {
    if (stdout.length === 0 && stderr.length === 0) return;
    this.streams.beforeWrite();
    if (stdout.length > 0) this.streams.stdout.write(tagLines(stdout, tag));
    if (stderr.length > 0) this.streams.stderr.write(tagLines(stderr, tag));
  }
}

/**
 * -k with --line-buffer: the lines of the oldest unfinished job go out as they come; a later
 * job's wait until every job before it has finished, as GNU parallel holds them.
 */
export class LineOrder {
  private next = 0;
  private readonly held = new Map<number, { writes: (() => void)[]; finished: boolean }>();

  /** Runs `write` now when job `index` is the oldest unfinished one, else once it is. */
  write(index: number, write: () => void): void {
    if (index === this.next) write();
    else this.entry(index).writes.push(write);
  }

  /** Job `index` has written all it will (its result is in, or it never ran). */
  finish(index: number): void {
    this.entry(index).finished = true;
    while (this.held.get(this.next)?.finished) {
      this.held.delete(this.next++);
      const following = this.held.get(this.next);
      if (following === undefined) continue;
      for (const write of following.writes) write();
      following.writes = [];
    }
  }

  private entry(index: number) {
    let entry = this.held.get(index);
    if (entry === undefined) {
      entry = { writes: [], finished: false };
      this.held.set(index, entry);
    }
    return entry;
  }
}

/** How forwardLines passes a stream on. */
export interface LineForward {
  /** null: nowhere (the lines are still counted, and kept if asked). */
  to: Writable | null;
  /** Printed before each line (with its tab), or ''. */
  tag: string;
  beforeWrite: () => void;
  /** Passes each write on, now or later (-k holds a later job's); absent: now. */
  gate?: (write: () => void) => void;
  /** Taken as the first bytes of the stream (-v's command line, which GNU parallel's job writes). */
  head?: Buffer;
  /** Keep what was read, untagged, for a --results table. */
  keep?: boolean;
}

/**
 * --line-buffer: whole lines of a running job as soon as they are complete (never half a
 * line mixed with another job's), the rest when it ends. Resolves, once done, with the bytes
 * read and, with `keep`, the bytes themselves.
 */
export function forwardLines(
  stream: Readable | null,
  { to, tag, beforeWrite, gate = (write) => write(), head, keep = false }: LineForward,
): Promise<{ bytes: number; kept: Buffer }> {
  return new Promise((resolve) => {
    let carry: Buffer = Buffer.alloc(0);
    let bytes = 0;
    const kept: Buffer[] = [];
    const write = (data: Buffer) => {
      if (data.length === 0 || to === null) return;
      gate(() => {
        beforeWrite();
        to.write(tagLines(data, tag));
      });
    };
    const read = (chunk: Buffer) => {
      bytes += chunk.length;
      if (keep) kept.push(chunk);
      const data = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      const end = data.lastIndexOf(NEWLINE) + 1;
      write(data.subarray(0, end));
      carry = Buffer.from(data.subarray(end));
    };
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      write(carry);
      resolve({ bytes, kept: Buffer.concat(kept) });
    };
    if (head !== undefined && head.length > 0) read(head);
    if (stream === null) return end();
    stream.on('data', read);
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', () => {});
  });
}

/**
 * A file the run writes as jobs end (the joblog, a --results table), or stdout. Stdout is
 * written through process.stdout, as the jobs' output is: in order with it, and a pipe that
 * is full (a slow reader) holds the rest in memory rather than failing the write with
 * EAGAIN (Node makes a pipe on stdout non-blocking).
 */
export class RunFile {
  /** -1: stdout. */
  private readonly fd: number;

  /** `path` null: stdout. Throws what opening the file throws. */
  constructor(path: string | null, flags: 'a' | 'w') {
    this.fd = path === null ? -1 : openSync(path, flags);
  }

  write(data: Buffer): void {
    if (this.fd < 0) process.stdout.write(data);
    else writeSync(this.fd, data);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
  }
}
