// --joblog in GNU parallel's format, and reading one back for --resume / --resume-failed.
import { readFileSync } from 'node:fs';
import { UsageError } from '../args.js';
import { RunFile } from './output.js';

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

/**
 * How GNU parallel reads a joblog back, line by line after the header: a line that starts
 * with a job number counts as that job done (for --resume-failed, only with the exit value
 * and signal columns both 0); another line is skipped if it still looks like a row, else
 * the joblog is refused.
 */
const LOGGED = /^(\d+)/;
const SUCCEEDED = /^(\d+)(?:\t[^\t]+){5}\t0\t0\t/;
const ROW_LIKE = /\d+\s+\S+\s+(?:[-0-9.]+\s+){6}/;

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
  // Each line keeps its newline, as Perl reads it (ROW_LIKE may end on it).
  const lines = text.split(/(?<=\n)/);
  const done = new Set<number>();
  // The first line is taken as the header, as GNU parallel does.
  for (const line of lines.slice(1)) {
    const logged = (onlySucceeded ? SUCCEEDED : LOGGED).exec(line);
    if (logged !== null) done.add(Number(logged[1]));
    else if (!ROW_LIKE.test(line)) {
      throw new UsageError(`format of '${path}' is wrong: ${line.replace(/\n$/, '')}`);
    }
  }
  return { done, hasHeader: text !== '' };
}

/** An open joblog: rows are written as jobs finish, in completion order. */
export class JobLog {
  private readonly file: RunFile;

  /**
   * Appends without a header (`+FILE`, or resuming a log that has one); else starts afresh.
   * `-` is stdout, between the jobs' output, as in GNU parallel.
   */
  constructor(path: string, append: boolean) {
    try {
      this.file = new RunFile(path === '-' ? null : path, append ? 'a' : 'w');
    } catch (error) {
      throw new UsageError(`cannot write to --joblog ${path}: ${(error as Error).message}`);
    }
    if (!append) this.file.write(Buffer.from(HEADER));
  }

  write(row: JoblogRow): void {
    this.file.write(Buffer.from(formatRow(row)));
  }

  close(): void {
    this.file.close();
  }
}
