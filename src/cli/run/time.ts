import { UsageError } from '../args.js';

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A duration as GNU parallel writes one: seconds, or numbers each followed by a unit
 * (`90`, `1.5`, `2m`, `1h30m`, `1d2h3m4s`). Returns seconds.
 */
export function parseDuration(name: string, text: string): number {
  const trimmed = text.trim().toLowerCase();
  if (/^(\d+(\.\d*)?|\.\d+)$/.test(trimmed)) return Number(trimmed);
  const part = /(\d+(?:\.\d*)?|\.\d+)([smhd])/g;
  let seconds = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(part)) {
    if (match.index !== consumed) break;
    seconds += Number(match[1]) * UNIT[match[2]];
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new UsageError(`${name} expects seconds or a duration such as 1h30m, got '${text}'`);
  }
  return seconds;
}
