import { closeSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import type { JobResult } from '../../runner/types.js';
import { shellQuote } from './template.js';

const HEADER = 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n';

/** The Exitval column: the exit code; -1 when killed by a signal; 127/126 like a shell when not spawned. */
function exitValue(result: JobResult<Buffer>): number {
  const { status, error } = result;
  if (status.code !== null) return status.code;
  if (error !== undefined) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 127 : code === 'EACCES' ? 126 : 255;
  }
  return -1;
}

/** A joblog in GNU parallel's format: one line per finished job, in completion order. */
export class JobLog {
  private readonly fd: number;

  /** Throws the fs error when the file cannot be created. */
  constructor(path: string) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, HEADER);
  }

  write(result: JobResult<Buffer>): void {
    const { status, job } = result;
    const signal = status.signal === null ? 0 : (constants.signals[status.signal] ?? 0);
    const fields = [
      result.index + 1,
      ':',
      (result.startTime / 1000).toFixed(3),
      (status.durationMs / 1000).toFixed(3),
      0,
      result.stdout.length + result.stderr.length,
      exitValue(result),
      signal,
      shellQuote([job.file, ...(job.args ?? [])]).replace(/[\t\n]/g, ' '),
    ];
    writeSync(this.fd, `${fields.join('\t')}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}
