import type { Writable } from 'node:stream';
import type { JobResult } from '../../runner/types.js';

const NEWLINE = 0x0a;

/** Prefixes every line of `data`, including a last one without a newline. */
export function tagLines(data: Buffer, prefix: string): Buffer {
  const tag = Buffer.from(prefix);
  const parts: Buffer[] = [];
  for (let start = 0; start < data.length; ) {
    const newline = data.indexOf(NEWLINE, start);
    const end = newline === -1 ? data.length : newline + 1;
    parts.push(tag, data.subarray(start, end));
    start = end;
  }
  return Buffer.concat(parts);
}

export interface OutputSettings {
  keepOrder: boolean;
  /** With `--tag`: the input of a job, put before each of its lines with a tab. */
  tag: ((index: number) => string) | null;
  /** Called before anything is written (the progress bar clears itself). */
  beforeWrite: () => void;
  stdout: Writable;
  stderr: Writable;
}

/**
 * Writes each job's output whole, in one write per stream, once the job has finished: in
 * completion order, or in input order with `keepOrder`.
 */
export class OutputWriter {
  private next = 0;
  private readonly pending = new Map<number, JobResult<Buffer>>();

  constructor(private readonly settings: OutputSettings) {}

  add(result: JobResult<Buffer>): void {
    if (!this.settings.keepOrder) {
      this.emit(result);
      return;
    }
    this.pending.set(result.index, result);
    for (let ready = this.pending.get(this.next); ready !== undefined; ) {
      this.pending.delete(this.next++);
      this.emit(ready);
      ready = this.pending.get(this.next);
    }
  }

  private emit(result: JobResult<Buffer>): void {
    const { tag, stdout, stderr } = this.settings;
    let out = result.stdout;
    let err = result.stderr;
    if (result.error !== undefined) {
      err = Buffer.concat([err, Buffer.from(`pidwatch run: ${result.error.message}\n`)]);
    }
    if (out.length === 0 && err.length === 0) return;
    this.settings.beforeWrite();
    if (tag !== null) {
      const prefix = `${tag(result.index)}\t`;
      out = tagLines(out, prefix);
      err = tagLines(err, prefix);
    }
    if (out.length > 0) stdout.write(out);
    if (err.length > 0) stderr.write(err);
  }
}
