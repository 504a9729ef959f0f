// Shell command lines: POSIX quoting, and the `shell` option's argv.
import { invalidType, invalidValue } from './errors.js';

/** The shell of `shell: true`. */
export const DEFAULT_SHELL = '/bin/sh';

/** Words that no POSIX shell splits, expands or treats as syntax. */
const PLAIN_WORD = /^[\w@%+=:,./-]+$/;

/**
 * One shell word holding exactly `word`: single quotes, in which every byte is
 * literal, with each `'` written as `'\''`. The empty string is `''`; a word of
 * plain characters stays as it is. A NUL cannot pass through argv: TypeError.
 */
export function quote(word: string, name = 'word'): string {
  if (word.includes('\0')) throw invalidValue(name, 'must be a string without null bytes', word);
  if (PLAIN_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `shell` option -> the shell's path, or null for no shell. */
export function checkShell(shell: unknown): string | null {
  if (shell === undefined || shell === false) return null;
  if (shell === true) return DEFAULT_SHELL;
  if (typeof shell !== 'string') throw invalidType('options.shell', 'a boolean or a string', shell);
  if (shell === '' || shell.includes('\0'))
    throw invalidValue('options.shell', 'must be a path without null bytes', shell);
  return shell;
}

/**
 * `file args` run through `shell`: `shell -c file shell args...`, so the command
 * line sees `args` as `$1`... and the shell's name as `$0`, as `sh -c` is meant.
 */
export function shellArgs(shell: string, line: string, args: readonly string[]): string[] {
  return ['-c', line, shell, ...args];
}

/** The command as an error message shows it: the line as given for a shell. */
export function commandText(file: string, args: readonly string[], shell: unknown): string {
  const quoted = args.map((arg) => quote(arg));
  if (shell !== undefined && shell !== false) return [file, ...quoted].join(' ');
  return [quote(file), ...quoted].join(' ');
}
