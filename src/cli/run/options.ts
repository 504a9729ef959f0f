// The command line of `pidwatch run`: GNU parallel's options, read the way GNU parallel reads
// them (Getopt::Long with bundling and require_order: options first, the command from the
// first word that is not one), then the input sources after the command.
import { parseQueueUrl } from '../../bullmq/url.js';
import { UsageError } from '../args.js';
import { GNU_LONG_OPTIONS } from './gnu-options.js';
import { type HaltRule, parseHalt } from './halt.js';
import type { SourceSpec } from './input.js';
import { perlRegExp } from './perl-regexp.js';
import { hasReplacement } from './template.js';
import { parseDuration } from './time.js';

export interface RunConfig {
  /** The command words, joined by spaces into one shell command line; empty: inputs are commands. */
  command: string[];
  /** `-I STR`: the string that stands for `{}`, which is then plain text; null: `{}`. */
  replaceString: string | null;
  sources: SourceSpec[];
  /** `-j` as given: a count or a file holding one, read by `jobSlots` (slots.ts). */
  jobs: string;
  halt: HaltRule | null;
  /** Total tries of a failing job (GNU's --retries: 1 is one try, 0 tries until it succeeds). */
  retries: number;
  /** `--timeout`: seconds, or a percentage of the median runtime of successful jobs. */
  timeout: { seconds: number } | { percent: number } | null;
  delaySeconds: number;
  joblog: { path: string; append: boolean } | null;
  resume: 'no' | 'all' | 'failed';
  results: string | null;
  keepOrder: boolean;
  /** `--tag` is `--tagstring {}`. */
  tagstring: string | null;
  output: 'group' | 'line' | 'ungroup';
  dryRun: boolean;
  /** The input record separator; null: newline (a final newline ends the last record). */
  delimiter: string | null;
  colsep: RegExp | null;
  bar: boolean;
  tree: boolean;
  /** --tree-cpu (pidwatch's own): --results also holds each job's tree CPU time. */
  treeCpu: boolean;
  /** `--queue URL`: the jobs run on `pidwatch worker` processes (BullMQ), not here. */
  queue: string | null;
  /** --link: link every input source to the first. */
  link: boolean;
  /** -r: skip blank inputs. */
  skipEmpty: boolean;
  /** -v: print each job's command line before its output. */
  verbose: boolean;
}

interface OptionSpec {
  key: string;
  value: boolean;
}

// Long names (and GNU's aliases) and short letters, as GNU parallel spells them. Long names
// are matched in any case, as Getopt::Long matches them there.
const LONG: Record<string, OptionSpec> = {};
const SHORT: Record<string, OptionSpec> = {};
function option(key: string, value: boolean, names: string[], shorts = ''): void {
  for (const name of names) LONG[name] = { key, value };
  for (const letter of shorts) SHORT[letter] = { key, value };
}
option('jobs', true, ['jobs', 'max-procs', 'maxprocs'], 'jP');
option('keep-order', false, ['keep-order', 'keeporder'], 'k');
option('halt', true, ['halt', 'halt-on-error', 'haltonerror']);
option('retries', true, ['retries']);
option('timeout', true, ['timeout']);
option('delay', true, ['delay']);
option('joblog', true, ['joblog', 'jl']);
option('resume', false, ['resume']);
option('resume-failed', false, ['resume-failed', 'resumefailed']);
option('results', true, ['results', 'result', 'res']);
option('tag', false, ['tag']);
option('tagstring', true, ['tagstring', 'tag-string']);
option('line-buffer', false, ['line-buffer', 'line-buffered', 'linebuffer', 'linebuffered', 'lb']);
option('ungroup', false, ['ungroup'], 'u');
option('group', false, ['group'], 'g');
option('dry-run', false, ['dry-run', 'dryrun', 'dr']);
option('null', false, ['null'], '0');
option('delimiter', true, ['delimiter'], 'd');
option('arg-file', true, ['arg-file', 'argfile'], 'a');
option('colsep', true, ['colsep', 'col-sep'], 'C');
option('bar', false, ['bar']);
option('link', false, ['link', 'xapply']);
option('no-run-if-empty', false, ['no-run-if-empty', 'norunifempty'], 'r');
option('verbose', false, ['verbose'], 'v');
option('replace', true, ['replace'], 'I');
option('help', false, ['help'], 'h');
option('tree', false, ['tree']);
option('no-tree', false, ['no-tree']);
option('tree-cpu', false, ['tree-cpu']);
option('queue', true, ['queue']);
// Accepted and ignored, so that command lines written for GNU parallel run unchanged.
option('ignored', false, [
  'will-cite',
  'willcite',
  'no-notice',
  'nonotice',
  'nn',
  'silent',
  'eta',
  'progress',
]);

// What `--NAME` may abbreviate: GNU parallel's long options and pidwatch's own, each
// option's names together.
const NAME_GROUPS: readonly string[][] = [
  ...GNU_LONG_OPTIONS,
  'tree',
  'no-tree',
  'tree-cpu',
  'queue',
].map((names) => names.split('|'));

/**
 * The option `--name` stands for, as Getopt::Long's auto_abbrev finds it: a name in any
 * case, or the start of the names of one option only (`--keep-ord`, `--jo` is refused as
 * joblog or jobs). An option of GNU parallel's that pidwatch does not have is unknown.
 */
function longOption(name: string): OptionSpec {
  const key = name.toLowerCase();
  if (Object.hasOwn(LONG, key)) return LONG[key];
  let group = NAME_GROUPS.find((names) => names.includes(key));
  if (group === undefined && key !== '') {
    const hits = NAME_GROUPS.filter((names) => names.some((n) => n.startsWith(key)));
    if (hits.length > 1) {
      const names = hits.flatMap((names) => names.filter((n) => n.startsWith(key))).sort();
      throw new UsageError(`option ${name} is ambiguous (${names.join(', ')})`);
    }
    group = hits[0];
  }
  const known = group?.find((n) => Object.hasOwn(LONG, n));
  if (known === undefined) throw new UsageError(`unknown option: ${name}`);
  return LONG[known];
}

const SEPARATORS = new Set([':::', ':::+', '::::', '::::+']);

/**
 * The escapes GNU parallel reads in -d and --tagstring, replaced one kind after another over
 * the whole text as it does: \t, \n, \r, then \ then three digits, then \ and one digit, each
 * digit run read as a Perl string escape (octal; \8 and \9 are the digits themselves). No
 * other escape is read: `\x41`, `\a` and `\\` stay as written.
 */
export function unescapePrintf(text: string): string {
  return text
    .replaceAll('\\t', '\t')
    .replaceAll('\\n', '\n')
    .replaceAll('\\r', '\r')
    .replace(/\\(\d{3})/g, (_, digits: string) => perlDigitEscape(digits))
    .replace(/\\(\d)/g, (_, digit: string) => perlDigitEscape(digit));
}

/** Perl's "\<digits>": up to three leading octal digits make one character, the rest is text. */
function perlDigitEscape(digits: string): string {
  const octal = /^[0-7]{1,3}/.exec(digits)?.[0];
  if (octal === undefined) return digits;
  return String.fromCodePoint(Number.parseInt(octal, 8)) + digits.slice(octal.length);
}

/** An option's value as GNU parallel tests it: Perl takes '' and '0' as false (not given). */
const perlTrue = (value: string | undefined) => (value === '' || value === '0' ? undefined : value);

/** Reads `--name=value`, `--name value`, `-kj4`, `-j 4` up to the command. */
function readOptions(argv: readonly string[]): {
  values: Map<string, string[]>;
  rest: string[];
} {
  const values = new Map<string, string[]>();
  const set = (key: string, value: string) => {
    const list = values.get(key) ?? [];
    list.push(value);
    values.set(key, list);
  };
  let i = 0;
  const next = (name: string): string => {
    if (i + 1 >= argv.length) throw new UsageError(`option ${name} requires an argument`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (SEPARATORS.has(arg) || !arg.startsWith('-') || arg === '-') break;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const spec = longOption(name);
      // `--name=` gives no value: Getopt::Long refuses it as a missing argument.
      if (spec.value && eq === arg.length - 1) {
        throw new UsageError(`option --${name} requires an argument`);
      }
      if (spec.value) set(spec.key, eq === -1 ? next(`--${name}`) : arg.slice(eq + 1));
      else if (eq !== -1) throw new UsageError(`option ${name} does not take an argument`);
      else set(spec.key, '');
      continue;
    }
    for (let k = 1; k < arg.length; k++) {
      const spec = Object.hasOwn(SHORT, arg[k]) ? SHORT[arg[k]] : undefined;
      if (spec === undefined) throw new UsageError(`unknown option: ${arg[k]}`);
      if (!spec.value) {
        set(spec.key, '');
        continue;
      }
      set(spec.key, k + 1 < arg.length ? arg.slice(k + 1) : next(`-${arg[k]}`));
      break;
    }
  }
  return { values, rest: argv.slice(i) };
}

/** The command, then the input sources each separator opens. */
function readSources(
  rest: readonly string[],
  argFiles: readonly string[],
): {
  command: string[];
  sources: SourceSpec[];
} {
  let at = rest.findIndex((word) => SEPARATORS.has(word));
  if (at === -1) at = rest.length;
  const command = rest.slice(0, at);
  const sources: SourceSpec[] = argFiles.map((path) => ({ kind: 'file', path, linked: false }));
  for (let i = at; i < rest.length; ) {
    const separator = rest[i++];
    const words: string[] = [];
    while (i < rest.length && !SEPARATORS.has(rest[i])) words.push(rest[i++]);
    const linked = separator.endsWith('+');
    if (separator.startsWith('::::')) {
      // Every file after `::::+` is linked, not only the first (GNU parallel's reading).
      for (const path of words) sources.push({ kind: 'file', path, linked });
    } else {
      sources.push({ kind: 'args', values: words, linked });
    }
  }
  if (sources.length === 0) sources.push({ kind: 'file', path: '-', linked: false });
  return { command, sources };
}

/**
 * --retries N: N tries in all. GNU parallel compares the count of tries with N as a Perl
 * number: text reads as its leading number (else 0), and 0, or what no count reaches
 * (-1, 2.5), is no limit. It would also expand replacement strings in N per job.
 */
function tries(text: string): number {
  if (hasReplacement(text, null)) {
    throw new UsageError(`--retries with replacement strings is not supported: '${text}'`);
  }
  const number = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?/i.exec(text);
  const n = number === null ? 0 : Number(number[0]);
  return Number.isInteger(n) && n > 0 ? n : Number.POSITIVE_INFINITY;
}

/** Parses the argv of `pidwatch run`; 'help' for --help. Throws UsageError. */
export function parseRunArgs(argv: readonly string[]): RunConfig | 'help' {
  const { values, rest } = readOptions(argv);
  if (values.has('help')) return 'help';
  const last = (key: string): string | undefined => values.get(key)?.at(-1);
  const has = (key: string) => values.has(key);
  const { command: words, sources } = readSources(rest, values.get('arg-file') ?? []);
  // GNU parallel would evaluate these as Perl; taken as text they would run another command.
  const perl = words.find((word) => /\{=.*=\}/s.test(word));
  if (perl !== undefined) {
    throw new UsageError(`{= perl expression =} replacement strings are not supported: '${perl}'`);
  }
  // -I STR: STR stands for {} in the command (and {} is then text).
  const replace = last('replace');

  const timeoutText = last('timeout');
  let timeout: RunConfig['timeout'] = null;
  if (timeoutText !== undefined) {
    // GNU parallel's check: digits with an optional fraction (a percentage with %), or
    // such numbers each with a unit; `.5`, `1.` or `1m30` are refused.
    if (!/^\d+(\.\d+)?%?$|^(\d+(\.\d+)?[dhms])+$/i.test(timeoutText)) {
      throw new UsageError(`--timeout must be seconds or percentage, got '${timeoutText}'`);
    }
    const percent = /^(\d+(?:\.\d*)?)%$/.exec(timeoutText);
    timeout = percent
      ? { percent: Number(percent[1]) }
      : { seconds: parseDuration('--timeout', timeoutText) };
    // GNU parallel: --timeout 0 is no timeout.
    if ('seconds' in timeout && timeout.seconds === 0) timeout = null;
  }
  // A --joblog or --results that Perl takes as false ('' or '0') is none, as in GNU parallel.
  const joblogText = perlTrue(last('joblog'));
  const resultsText = perlTrue(last('results'));
  const resume = has('resume-failed') ? 'failed' : has('resume') ? 'all' : 'no';
  if (resume !== 'no' && joblogText === undefined && resultsText === undefined) {
    throw new UsageError(
      `--resume${resume === 'failed' ? '-failed' : ''} requires --joblog or --results`,
    );
  }
  // -d wins over -0, whichever comes first (GNU parallel sets $/ from -0, then from -d).
  const delimiterText = last('delimiter') ?? (has('null') ? '\0' : undefined);
  const colsep = last('colsep');
  let colsepPattern: RegExp | null = null;
  if (colsep !== undefined) {
    try {
      colsepPattern = perlRegExp(colsep);
    } catch {
      throw new UsageError(`--colsep: not a regular expression: '${colsep}'`);
    }
  }
  const replaceString = replace === undefined || replace === '' ? null : replace;
  // A --tagstring that Perl takes as false ('' or '0') is dropped, as GNU parallel drops it;
  // --tag then tags with {}. The string's escapes are read as -d's are.
  const tagText = perlTrue(last('tagstring'));
  const tagstring =
    tagText !== undefined ? unescapePrintf(tagText) : has('tag') ? (replaceString ?? '{}') : null;
  const delay = last('delay');
  return {
    command: words,
    replaceString,
    sources,
    jobs: last('jobs') ?? '100%',
    halt: has('halt') ? parseHalt(last('halt')!) : null,
    retries: has('retries') ? tries(last('retries')!) : 1,
    timeout,
    delaySeconds: delay === undefined ? 0 : delaySeconds(delay),
    joblog:
      joblogText === undefined
        ? null
        : joblogText.startsWith('+')
          ? { path: joblogText.slice(1), append: true }
          : { path: joblogText, append: false },
    resume,
    results: resultsText ?? null,
    keepOrder: has('keep-order'),
    tagstring,
    // Jobs on a queue come back whole: their output is printed as with --group.
    output: has('queue')
      ? 'group'
      : has('ungroup')
        ? 'ungroup'
        : has('line-buffer')
          ? 'line'
          : 'group',
    dryRun: has('dry-run'),
    delimiter: delimiterText === undefined ? null : unescapePrintf(delimiterText),
    colsep: colsepPattern,
    bar: has('bar'),
    tree: !has('no-tree'),
    treeCpu: has('tree-cpu'),
    queue: has('queue') ? checkQueueUrl(last('queue')!) : null,
    link: has('link'),
    skipEmpty: has('no-run-if-empty'),
    verbose: has('verbose'),
  };
}

/** --delay: GNU parallel evaluates what is not a duration as 0 and runs without delay. */
function delaySeconds(text: string): number {
  try {
    return parseDuration('--delay', text);
  } catch {
    return 0;
  }
}

function checkQueueUrl(url: string): string {
  try {
    parseQueueUrl(url);
  } catch (error) {
    throw new UsageError(`--queue: ${(error as Error).message}`);
  }
  return url;
}
