// Input sources: `:::` arguments, `::::`/`-a` files, stdin; combined as GNU parallel does
// (every combination, the first source varying slowest; a `:::+`/`::::+` source is linked
// to the one before it, value by value).
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export type SourceSpec =
  | { kind: 'args'; values: string[]; linked: boolean }
  | { kind: 'file'; path: string; linked: boolean };

export interface InputSettings {
  /** --link: every source is linked to the first, the shorter ones wrapping around. */
  link: boolean;
  /** -r: skip records that hold only blanks. */
  skipEmpty: boolean;
  /** Record separator; null: newline. */
  delimiter: string | null;
  /** Splits each record into columns ({1}, {2}, ...). */
  colsep: RegExp | null;
  stdin: Readable;
  /** Reports a warning (one line each) on the way. */
  warn: (lines: string[]) => void;
}

/** Counts the inputs read so far; `total` is known once every source has ended. */
export interface InputCount {
  read: number;
  total: number | null;
}

/**
 * The records of a stream split at `delimiter`; a last record without one counts. An empty
 * delimiter (`-d ''`) reads paragraphs.
 */
export async function* readRecords(stream: Readable, delimiter: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  for await (const chunk of stream) {
    const text = carry + decoder.write(chunk as Buffer);
    const records = delimiter === '' ? paragraphs(text) : text.split(delimiter);
    carry = records.pop()!;
    yield* records;
  }
  carry += decoder.end();
  if (delimiter === '') yield* allParagraphs(carry);
  else if (carry !== '') yield carry;
}

/**
 * Perl's paragraph mode, as GNU parallel reads with `-d ''`: records end at a blank line
 * (two newlines or more) and newlines before a record are skipped. The last element is what
 * follows the last blank line, which more text may continue.
 */
function paragraphs(text: string): string[] {
  return text.replace(/^\n+/, '').split(/\n\n+/);
}

/** The paragraphs of a whole text; the last one's trailing newlines dropped, as Perl's chomp. */
function allParagraphs(text: string): string[] {
  const records = paragraphs(text);
  records.push(records.pop()!.replace(/\n+$/, ''));
  return records.filter((record) => record !== '');
}

/** -r's test: a value with something other than blanks. */
const notBlank = (value: string) => /\S/.test(value);

async function* nonBlank(records: AsyncIterable<string>): AsyncGenerator<string> {
  for await (const record of records) if (notBlank(record)) yield record;
}

/** GNU parallel splits with Perl's `split /colsep/, $line, -1`: trailing empty fields stay. */
const splitColumns = (record: string, colsep: RegExp): string[] => record.split(colsep);

/**
 * GNU parallel's hint for input from Windows: reading lines (no -d, no -0), when the first
 * three values it reads, from any source, all end in CR, it suggests -d "\r\n" (once).
 */
function crlfHint(settings: InputSettings): (value: string) => void {
  if (settings.delimiter !== null) return () => {};
  let cr = 0;
  let other = 0;
  return (value) => {
    if (cr >= 3 || other > 0) return;
    if (value.endsWith('\r')) cr++;
    else other++;
    if (cr === 3)
      settings.warn(['The first three values end in CR-NL. Consider using -d "\\r\\n"']);
  };
}

async function* watched(
  records: AsyncIterable<string>,
  seen: (value: string) => void,
): AsyncGenerator<string> {
  for await (const record of records) {
    seen(record);
    yield record;
  }
}

/**
 * The records of stdin for every source that names it (`::::` or `-a` with `-`): one reader
 * they all take from, as GNU parallel's sources share the one handle, so that each record
 * goes to the source that asks first.
 */
function sharedStdin(settings: InputSettings): () => AsyncIterable<string> {
  let records: AsyncIterator<string> | undefined;
  return () => ({
    [Symbol.asyncIterator]: () => {
      records ??= readRecords(settings.stdin, settings.delimiter ?? '\n');
      const shared = records;
      return { next: () => shared.next() };
    },
  });
}

function openSource(
  spec: SourceSpec,
  settings: InputSettings,
  seen: (value: string) => void,
  stdin: () => AsyncIterable<string>,
): AsyncIterable<string> | string[] {
  // GNU parallel reads `:::` values as records too: a value holding the delimiter is several.
  // In paragraph mode (`-d ''`) they run together, as GNU parallel writes them to a file,
  // each followed by the (empty) delimiter, and reads that back.
  if (spec.kind === 'args') {
    if (settings.delimiter === '') return allParagraphs(spec.values.join(''));
    const values = spec.values.flatMap((v) => v.split(settings.delimiter ?? '\n'));
    values.forEach(seen);
    // -r drops blank values from every source, `:::` lists as much as files.
    return settings.skipEmpty ? values.filter(notBlank) : values;
  }
  // A directory reads as no values (Perl opens it, and reading it gives nothing).
  if (spec.path !== '-' && statSync(spec.path, { throwIfNoEntry: false })?.isDirectory()) return [];
  const records = watched(
    spec.path === '-'
      ? stdin()
      : readRecords(createReadStream(spec.path), settings.delimiter ?? '\n'),
    seen,
  );
  return settings.skipEmpty ? nonBlank(records) : records;
}

async function readAll(source: AsyncIterable<string> | string[]): Promise<string[]> {
  if (Array.isArray(source)) return source;
  const values: string[] = [];
  for await (const value of source) values.push(value);
  return values;
}

/** A source read as jobs are asked for, its first value read ahead to know if it has any. */
async function peek(
  source: AsyncIterable<string> | string[],
): Promise<AsyncIterable<string> | string[] | null> {
  if (Array.isArray(source)) return source.length > 0 ? source : null;
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return null;
  return (async function* () {
    yield first.value;
    yield* { [Symbol.asyncIterator]: () => iterator };
  })();
}

/** Groups linked sources with the one they follow (all of them with --link). */
function groupSources(specs: readonly SourceSpec[], link: boolean): SourceSpec[][] {
  if (link) return [[...specs]];
  const groups: SourceSpec[][] = [];
  for (const spec of specs) {
    if (spec.linked && groups.length > 0) groups.at(-1)!.push(spec);
    else groups.push([spec]);
  }
  return groups;
}

/**
 * A linked group's values, one row per index: as long as its shortest source after `:::+`,
 * as its longest with --link (the shorter ones wrap around), as GNU parallel does.
 */
function linkGroup(lists: readonly string[][], link: boolean): string[][] {
  const lengths = lists.map((list) => list.length);
  const length = link && !lengths.includes(0) ? Math.max(...lengths) : Math.min(...lengths);
  return Array.from({ length }, (_, i) => lists.map((list) => list[i % list.length]));
}

/**
 * Every job's arguments, in GNU parallel's order. The first source is read as jobs are asked
 * for (a huge stdin is not read ahead); the others are read whole first.
 */
export async function* jobArguments(
  specs: readonly SourceSpec[],
  settings: InputSettings,
  count: InputCount,
): AsyncGenerator<string[]> {
  const groups = groupSources(specs, settings.link);
  const seen = crlfHint(settings);
  const stdin = sharedStdin(settings);
  const streamed = groups[0].length === 1;
  // GNU parallel reads one value of each source, in order, before it reads on, and then the
  // last source to its end first (it varies fastest). Sources that are different files get
  // the same values in any order; sources that share stdin get them as GNU parallel gives
  // them: one record to each but the last, the rest to the last
  // (`:::: - :::: -` runs `1 2`, `1 3`, ...).
  const peeked: Array<Array<AsyncIterable<string> | string[] | null>> = [];
  for (const group of groups) {
    const row: Array<AsyncIterable<string> | string[] | null> = [];
    for (const spec of group) row.push(await peek(openSource(spec, settings, seen, stdin)));
    peeked.push(row);
  }
  const lists: string[][][] = groups.map(() => []);
  for (let g = groups.length - 1; g >= (streamed ? 1 : 0); g--) {
    const group: string[][] = [];
    for (let s = groups[g].length - 1; s >= 0; s--) group[s] = await readAll(peeked[g][s] ?? []);
    lists[g] = group;
  }
  const head = streamed ? peeked[0][0] : null;
  // GNU parallel: a source with no values, beside one with some, stands for one empty value;
  // when none has any, there is no job.
  if (head === null && lists.every((group) => group.every((list) => list.length === 0))) {
    count.total = 0;
    return;
  }
  const filled = lists.map((group) => group.map((list) => (list.length === 0 ? [''] : list)));
  const rest = filled.slice(1).map((group) => linkGroup(group, settings.link));
  const first: AsyncIterable<string[]> | string[][] = streamed
    ? rowsOf(head ?? [''])
    : linkGroup(filled[0], settings.link);
  const restCount = rest.reduce((n, rows) => n * rows.length, 1);
  if (Array.isArray(first)) count.total = first.length * restCount;
  const expand = (row: string[]): string[] =>
    settings.colsep === null ? row : row.flatMap((value) => splitColumns(value, settings.colsep!));
  for await (const head of first) {
    for (const tail of product(rest)) {
      count.read++;
      yield withoutNul(expand([...head, ...tail]), settings.warn);
    }
  }
  count.total = count.read;
}

/**
 * No argument list can hold a NUL: as GNU parallel, a job's values that hold one after their
 * first character have each NUL replaced with the two characters `\0`, with a warning. (A
 * value that starts with NUL is GNU parallel's own mark of "no value" and is left alone.)
 */
function withoutNul(values: string[], warn: InputSettings['warn']): string[] {
  const hasNul = (value: string) => value.indexOf('\0') > 0;
  if (!values.some(hasNul)) return values;
  warn([
    'A NUL character in the input was replaced with \\0.',
    'NUL cannot be passed through in the argument list.',
    'Did you mean to use the --null option?',
  ]);
  return values.map((value) => (hasNul(value) ? value.replaceAll('\0', '\\0') : value));
}

async function* rowsOf(source: AsyncIterable<string> | string[]): AsyncGenerator<string[]> {
  for await (const value of source) yield [value];
}

/** Every combination of one row per group, the first group varying slowest. */
function* product(groups: readonly string[][][]): Generator<string[]> {
  if (groups.length === 0) {
    yield [];
    return;
  }
  const [head, ...tail] = groups;
  for (const row of head) for (const rest of product(tail)) yield [...row, ...rest];
}
