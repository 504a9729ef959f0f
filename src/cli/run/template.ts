// Replacement strings and quoting: the command words form one shell command line in which
// each replacement string becomes its value shell-quoted, as GNU parallel quotes it.

/**
 * `{}` `{.}` `{/}` `{//}` `{/.}` `{#}` `{%}`, and positional `{n}` `{n.}` `{n/}` `{n//}`
 * `{n/.}` (n from 1, or negative from the end).
 */
const TOKEN = /\{(?:(-?\d+)?(\.|\/|\/\/|\/\.)?|#|%)\}/g;

/** GNU parallel's shell_quote_scalar for Bourne shells. */
export function shellQuote(value: string): string {
  if (value === '') return "''";
  if (!/[^-_.+a-z0-9/]/i.test(value)) return value;
  let quoted = `'${value.replace(/'/g, `'"'"'`)}'`;
  if (quoted.startsWith("''")) quoted = quoted.slice(2);
  if (quoted.endsWith("''")) quoted = quoted.slice(0, -2);
  return quoted;
}

// The transformations, as GNU parallel's Perl expressions apply them (`.` not crossing a newline).
const withoutExtension = (v: string) => v.replace(/\.[^/.]*$/, '');
const basename = (v: string) => v.replace(/.*\//, '');
function dirname(v: string): string {
  // Perl's File::Basename::dirname: trailing slashes do not count; no slash gives '.'.
  const trimmed = v.replace(/(.)\/+$/s, '$1');
  const slash = trimmed.lastIndexOf('/');
  if (slash === -1) return '.';
  const dir = trimmed.slice(0, slash).replace(/\/+$/, '');
  return dir === '' ? '/' : dir;
}

function transform(value: string, how: string | undefined): string {
  switch (how) {
    case '.':
      return withoutExtension(value);
    case '/':
      return basename(value);
    case '//':
      return dirname(value);
    case '/.':
      return withoutExtension(basename(value));
    default:
      return value;
  }
}

/** What a job's replacement strings stand for. */
export interface JobValues {
  args: readonly string[];
  seq: number;
  slot: number;
  /** The inputs as read, where `args` holds them trimmed (--colsep): --results names its directories by them. */
  orig?: readonly string[];
}

/** Blanks at either end of a value: Perl's `\s` on GNU parallel's bytes (ASCII only). */
const ENDS = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;

/**
 * A job's values; with `trim` (--colsep, which sets GNU parallel's `--trim lr`), each
 * stands in the command, the tag and --results' template with the blanks at its ends
 * removed, as GNU parallel's replacement does.
 */
export function jobValues(
  args: readonly string[],
  seq: number,
  slot: number,
  trim: boolean,
): JobValues {
  if (!trim) return { args, seq, slot };
  return { args: args.map((value) => value.replace(ENDS, '')), seq, slot, orig: args };
}

type Quote = (value: string) => string;

/** The replacement-string patterns of the -I strings seen, by string. */
const withReplaceString = new Map<string, RegExp>();

/**
 * The replacement strings `-I` leaves: `{}` and the plain positional `{n}` are text (GNU
 * parallel makes `{n}` from `{}`, which STR replaces), while `{.}`, `{/}`, `{#}`, `{%}`
 * and their positional forms (`{1.}`, `{-1/}`) keep their meaning. Groups as TOKEN's.
 */
const WITH_I = /\{(?:(-?\d+)?(\.|\/|\/\/|\/\.)|#|%)\}/g;

/** The replacement strings; with `-I STR`, STR stands where `{}` would (see WITH_I). */
function tokens(replaceString: string | null): RegExp {
  if (replaceString === null || replaceString === '{}') return TOKEN;
  // Compiled once per string: this is asked for every job.
  let pattern = withReplaceString.get(replaceString);
  if (pattern === undefined) {
    const escaped = replaceString.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    pattern = new RegExp(`${escaped}|${WITH_I.source}`, 'g');
    withReplaceString.set(replaceString, pattern);
  }
  return pattern;
}

/** Replaces every replacement string of `text`; each value goes through `quote`. */
function replace(
  text: string,
  values: JobValues,
  quote: Quote,
  replaceString: string | null,
): string {
  const pattern = tokens(replaceString);
  return text.replace(pattern, (token, position: string | undefined, how: string | undefined) => {
    if (isPlainText(token, replaceString)) return token;
    if (token === '{#}') return String(values.seq);
    if (token === '{%}') return String(values.slot);
    const { args } = values;
    // {0} is every input, as {} (GNU parallel's behaviour, though not in its manual).
    const n = Number(position ?? 0);
    if (n === 0) return args.map((arg) => quote(transform(arg, how))).join(' ');
    // GNU parallel indexes a Perl array: {n} is $arg[n-1], {-n} $arg[$#arg+1-n], and an
    // index below 0 counts from the end once more ({-3} of two inputs is the last).
    const index = n > 0 ? n - 1 : args.length + n;
    const arg = args.at(index);
    return arg === undefined ? '' : quote(transform(arg, how));
  });
}

/** Where the first replacement string of `text` starts (with `-I STR`, STR for `{}`), or -1. */
function firstReplacement(text: string, replaceString: string | null): number {
  for (const match of text.matchAll(tokens(replaceString))) {
    if (!isPlainText(match[0], replaceString)) return match.index;
  }
  return -1;
}

/** `text` holds a replacement string (with `-I STR`, STR for `{}`). */
export function hasReplacement(text: string, replaceString: string | null): boolean {
  return firstReplacement(text, replaceString) !== -1;
}

/** `{}` is plain text once `-I` has given another string its meaning. */
const isPlainText = (token: string, replaceString: string | null) =>
  replaceString !== null && token === '{}' && token !== replaceString;

/** A command template: the command words joined into one line, as GNU parallel reads them. */
export class CommandTemplate {
  private readonly line: string;
  /** No command words: each input is the command line. (An empty word is a command.) */
  private readonly inputsAreCommands: boolean;
  private readonly appendArgs: boolean;
  private readonly quote: Quote;

  /**
   * With no command words, each input is itself the command line (not quoted).
   * `replaceString`: `-I`'s string for `{}`.
   */
  constructor(
    words: readonly string[],
    private readonly replaceString: string | null = null,
  ) {
    this.line = words.join(' ');
    this.inputsAreCommands = words.length === 0;
    const first = firstReplacement(this.line, replaceString);
    this.appendArgs = words.length > 0 && first === -1;
    // GNU parallel's rule: when a replacement string is (part of) the command name, before
    // any blank or `=` (`{}`, `my_{}`, `{2} {1}`, but not `V={} cmd`), no value in the line is
    // quoted, so that an input can be a whole command.
    const inCommandName = first !== -1 && !/[ \t\n=]/.test(this.line.slice(0, first));
    this.quote = inCommandName ? (value) => value : shellQuote;
  }

  /** The shell command line of one job. */
  expand(values: JobValues): string {
    if (this.inputsAreCommands) return values.args.join(' ');
    const line = replace(this.line, values, this.quote, this.replaceString);
    return this.appendArgs ? `${line} ${values.args.map(shellQuote).join(' ')}` : line;
  }
}

/** --tagstring: replacement strings give their values as they are, unquoted. */
export function expandTag(
  tagstring: string,
  values: JobValues,
  replaceString: string | null = null,
): string {
  return replace(tagstring, values, (value) => value, replaceString);
}
