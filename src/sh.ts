// The `sh` tagged template: a shell command line with every interpolation quoted.
import { invalidType } from './errors.js';
import { exec } from './exec.js';
import { quote } from './shell.js';
import type { ExecOptions, Output } from './types.js';

export type ShTag = {
  (strings: TemplateStringsArray, ...values: unknown[]): Promise<Output>;
  /** A tag with these options added to the current ones. */
  (options: ExecOptions): ShTag;
};

/** One interpolation as shell words: one word, or one per element of an array. */
function words(value: unknown, index: number): string {
  if (Array.isArray(value)) return value.map((item, i) => word(item, `${index}[${i}]`)).join(' ');
  return word(value, String(index));
}

function word(value: unknown, at: string): string {
  const name = `sh\`...\` value \${${at}}`;
  if (typeof value === 'number' || typeof value === 'bigint') return quote(String(value));
  if (typeof value !== 'string')
    throw invalidType(name, 'a string, a number or an array of them', value);
  return quote(value, name);
}

/**
 * The command line of a template: the literal text as JavaScript reads it (the
 * raw text where an escape is not valid JavaScript), each value quoted.
 */
export function templateLine(strings: TemplateStringsArray, values: readonly unknown[]): string {
  let line = strings[0] ?? strings.raw[0];
  for (let i = 0; i < values.length; i++) {
    line += words(values[i], i) + (strings[i + 1] ?? strings.raw[i + 1]);
  }
  return line;
}

function isTemplate(value: unknown): value is TemplateStringsArray {
  return Array.isArray(value) && Array.isArray((value as { raw?: unknown }).raw);
}

function tag(options: ExecOptions): ShTag {
  return ((first: unknown, ...values: unknown[]) => {
    if (isTemplate(first)) {
      // exec() validates the options and reports any failure as a rejection.
      return Promise.resolve().then(() =>
        exec(templateLine(first, values), [], { ...options, shell: options.shell ?? true }),
      );
    }
    if (first === null || typeof first !== 'object')
      throw invalidType('options', 'of type object', first);
    return tag({ ...options, ...(first as ExecOptions) });
  }) as ShTag;
}

/**
 * Runs a command line through `/bin/sh -c` with each interpolation quoted as one
 * shell word (an array: one word per element), and resolves like `exec()`:
 * `` await sh`grep -c ${pattern} ${files}` ``. `sh(options)` returns a tag with
 * those exec options: `` sh({ cwd: '/tmp' })`ls` ``.
 */
export const sh: ShTag = tag({});
