import { basename, dirname } from 'node:path';

/**
 * GNU parallel's replacement strings: `{}` the input, `{.}` without its extension, `{/}` its
 * basename, `{//}` its dirname, `{/.}` the basename without extension, `{#}` the job number.
 */
const TOKEN = /\{(?:|\.|\/|\/\/|\/\.|#)\}/g;

function stripExtension(path: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash + 1 ? path.slice(0, dot) : path;
}

function replacement(token: string, input: string, seq: number): string {
  switch (token) {
    case '{}':
      return input;
    case '{.}':
      return stripExtension(input);
    case '{/}':
      return basename(input);
    case '{//}':
      return dirname(input);
    case '{/.}':
      return stripExtension(basename(input));
    default:
      return String(seq);
  }
}

/** A command line with replacement strings, ready to expand per input. */
export class CommandTemplate {
  private readonly appendInput: boolean;

  constructor(readonly argv: readonly string[]) {
    this.appendInput = !argv.some((arg) => new RegExp(TOKEN.source).test(arg));
  }

  /** The argv of job `seq` (from 1): tokens replaced, or the input appended when none appear. */
  expand(input: string, seq: number): string[] {
    const argv = this.argv.map((arg) =>
      arg.replace(TOKEN, (token) => replacement(token, input, seq)),
    );
    if (this.appendInput) argv.push(input);
    return argv;
  }
}

/** Quotes an argv for display the way a POSIX shell would read it back. */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
