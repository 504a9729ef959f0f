// --joblog in GNU parallel's format, and reading one back for --resume / --resume-failed.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { UsageError } from '../args.js';

const HEADER = 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n';

/** One finished job, in the joblog's terms. */
export interface JoblogRow {
  seq: number;
  /** ms since the epoch */
  startTime: number;
  /** ms */
  runtime: number;
  /** Bytes the job wrote to stdout. */
  receive: number;
  /** Exit code; -1 when killed on timeout; 0 when killed by a signal otherwise. */
  exitval: number;
  signal: number;
  command: string;
}

/** A row as GNU parallel prints it; newlines in the command become NULs. */
export function formatRow(row: JoblogRow): string {
  return `${[
    row.seq,
    ':',
    (row.startTime / 1000).toFixed(3),
    (row.runtime / 1000).toFixed(3).padStart(10),
    0,
    row.receive,
    row.exitval,
    row.signal,
    row.command.replaceAll('\n', '\0'),
  ].join('\t')}\n`;
}

/** The job numbers a previous run logged: all of them, or (for --resume-failed) those that succeeded. */
export function readDoneSeqs(
  path: string,
  onlySucceeded: boolean,
): { done: Set<number>; hasHeader: boolean } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { done: new Set(), hasHeader: false };
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const done = new Set<number>();
  // The first line is taken as the header, as GNU parallel does.
  for (const line of lines.slice(1)) {
    const fields = line.split('\t');
    if (fields.length < 9 || !/^\d+$/.test(fields[0])) {
      throw new UsageError(`format of '${path}' is wrong: ${line}`);
    }
    if (!onlySucceeded || (fields[6] === '0' && fields[7] === '0')) done.add(Number(fields[0]));
  }
  return { done, hasHeader: lines.length > 0 };
}

/** An open joblog: rows are written as jobs finish, in completion order. */
export class JobLog {
  private readonly fd: number;

  /** Appends without a header (`+FILE`, or resuming a log that has one); else starts afresh. */
  constructor(path: string, append: boolean) {
    try {
      this.fd = openSync(path, append ? 'a' : 'w');
    } catch (error) {
      throw new UsageError(`cannot write to --joblog ${path}: ${(error as Error).message}`);
    }
    if (!append) writeSync(this.fd, HEADER);
  }

  write(row: JoblogRow): void {
    writeSync(this.fd, formatRow(row));
  }

  close(): void {
    closeSync(this.fd);
  }
}
