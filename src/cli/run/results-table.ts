// --results NAME.csv, NAME.tsv or NAME.json: one file with a row per job (GNU parallel's
// columns, its quoting) in place of a directory tree; `-.csv`, `-.tsv`, `-.json` write the
// rows to stdout.
import { UsageError } from '../args.js';
import type { JoblogRow } from './joblog.js';
import { RunFile } from './output.js';

type Format = 'csv' | 'tsv' | 'json';

/** The table a --results path names (its ending, in any case), or null: a directory tree. */
export function tableFormat(path: string): Format | null {
  const ending = /\.(csv|tsv|json)$/i.exec(path);
  return ending === null ? null : (ending[1].toLowerCase() as Format);
}

// Rows are built as byte strings (latin1: one character per byte) and written as such, as
// GNU parallel's Perl writes bytes: a job's output need not be UTF-8.
const bytes = (text: string) => Buffer.from(text).toString('latin1');

/** Perl's `\s` on bytes, and the NUL GNU parallel also quotes for. */
const NEEDS_QUOTES = /[\t\n\v\f\r "\0]/;

/** A CSV or TSV field: in quotes (a quote doubled) when it holds a blank, the separator, a quote or a NUL. */
function field(value: string, separator: string): string {
  return NEEDS_QUOTES.test(value) || value.includes(separator)
    ? `"${value.replaceAll('"', '""')}"`
    : value;
}

/** A JSON string's content as GNU parallel writes it: \ and " escaped, bytes below 32 as \u00XX, the rest as is. */
function jsonText(value: string): string {
  let text = '';
  for (const c of value) {
    const code = c.charCodeAt(0);
    if (c === '\\' || c === '"') text += `\\${c}`;
    else if (code < 32) text += `\\u${code.toString(16).padStart(4, '0')}`;
    else text += c;
  }
  return text;
}

/** One job's row: what its joblog row says, its input values, its output (tagged as printed). */
export interface TableRow extends JoblogRow {
  values: readonly string[];
  stdout: Buffer;
  stderr: Buffer;
}

/** An open results table: rows are written as jobs are printed (completion order; -k: input order). */
export class ResultsTable {
  private readonly file: RunFile;
  private headed = false;
  /**
   * The table is written to stdout: GNU parallel then sends the jobs' own output (stdout
   * and stderr) to /dev/null.
   */
  readonly onStdout: boolean;

  constructor(
    path: string,
    private readonly format: Format,
  ) {
    // Only these exact names mean stdout, as in GNU parallel.
    this.onStdout = path === '-.csv' || path === '-.tsv' || path === '-.json';
    try {
      this.file = new RunFile(this.onStdout ? null : path, 'w');
    } catch (error) {
      throw new UsageError(`cannot open results file '${path}': ${(error as Error).message}`);
    }
  }

  write(row: TableRow): void {
    const start = (row.startTime / 1000).toFixed(3);
    const runtime = (row.runtime / 1000).toFixed(3);
    const values = row.values.map(bytes);
    const stdout = row.stdout.toString('latin1');
    const stderr = row.stderr.toString('latin1');
    const command = bytes(row.command);
    let text: string;
    if (this.format === 'json') {
      const quoted = values.map((value) => `"${jsonText(value)}"`).join(',');
      text =
        `{ "Seq": ${row.seq}, "Host": ":", "Starttime": ${start}, "JobRuntime": ${runtime}, ` +
        `"Send": 0, "Receive": ${row.receive}, "Exitval": ${row.exitval}, "Signal": ${row.signal}, ` +
        `"Command": "${jsonText(command)}", "V": [ ${quoted} ], ` +
        `"Stdout": "${jsonText(stdout)}", "Stderr": "${jsonText(stderr)}" }\n`;
    } else {
      const separator = this.format === 'csv' ? ',' : '\t';
      const line = (fields: readonly (string | number)[]) =>
        `${fields.map((f) => field(String(f), separator)).join(separator)}\n`;
      text = '';
      // The header names a column per input value of the first row written (V1, V2...).
      if (!this.headed) {
        const names = values.map((_, i) => `V${i + 1}`);
        text += line(
          ['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval'].concat(
            ['Signal', 'Command'],
            names,
            ['Stdout', 'Stderr'],
          ),
        );
      }
      text += line([
        row.seq,
        ':',
        start,
        runtime,
        0,
        row.receive,
        row.exitval,
        row.signal,
        command,
        ...values,
        stdout,
        stderr,
      ]);
    }
    this.headed = true;
    this.file.write(Buffer.from(text, 'latin1'));
  }

  close(): void {
    this.file.close();
  }
}
