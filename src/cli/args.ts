/** A small argument parser shared by the `pidwatch` subcommands. */
import { createRequire } from 'node:module';

/** Bad usage: the command prints `message` on one line and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  /** Single-letter alias, without the dash. */
  short?: string;
  /** True when the option takes a value (`--name VALUE`, `--name=VALUE`, `-xVALUE`). */
  value?: boolean;
}

export interface ParsedArgs {
  /** Option values by long name: the string given, or `true` for a flag. Last one wins. */
  options: Map<string, string | true>;
  positionals: string[];
}

export interface ParseSettings {
  /** Treat everything from the first positional on as positional (a command and its args). */
  stopAtPositional?: boolean;
}

/**
 * Parses `argv` against `spec`. `--` ends the options. Throws `UsageError` for an unknown
 * option, a missing value, or a value given to a flag.
 */
export function parseArgs(
  argv: readonly string[],
  spec: Readonly<Record<string, OptionSpec>>,
  settings: ParseSettings = {},
): ParsedArgs {
  const byShort = new Map<string, string>();
  for (const [name, option] of Object.entries(spec)) {
    if (option.short !== undefined) byShort.set(option.short, name);
  }
  const options = new Map<string, string | true>();
  const positionals: string[] = [];
  let i = 0;
  const takeValue = (name: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      const option = Object.hasOwn(spec, name) ? spec[name] : undefined;
      if (option === undefined) throw new UsageError(`unknown option --${name}`);
      if (option.value) options.set(name, takeValue(name, inline));
      else if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      else options.set(name, true);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      // A cluster of short flags, the last of which may take a value: -kj4, -j 4.
      for (let k = 1; k < arg.length; k++) {
        const name = byShort.get(arg[k]);
        if (name === undefined) throw new UsageError(`unknown option -${arg[k]}`);
        if (!spec[name].value) {
          options.set(name, true);
          continue;
        }
        const rest = arg.slice(k + 1);
        options.set(name, takeValue(name, rest === '' ? undefined : rest));
        break;
      }
      continue;
    }
    if (settings.stopAtPositional) {
      positionals.push(...argv.slice(i));
      break;
    }
    positionals.push(arg);
  }
  return { options, positionals };
}

/** An integer option value >= `min`. */
export function parseCount(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} expects an integer >= ${min}, got '${text}'`);
  }
  return value;
}

/** A duration option value in seconds (> 0, fractions allowed), returned in ms. */
export function parseSeconds(name: string, text: string): number {
  const value = Number(text);
  if (!/^\s*(\d+\.?\d*|\.\d+)\s*$/.test(text) || !(value > 0) || value * 1000 >= 2 ** 31) {
    throw new UsageError(`--${name} expects a number of seconds > 0, got '${text}'`);
  }
  return Math.max(1, Math.round(value * 1000));
}

/** pidwatch's version, from its package.json. */
export function version(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}
