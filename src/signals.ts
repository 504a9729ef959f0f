import { constants } from 'node:os';
import { invalidType, invalidValue } from './errors.js';

const numbers = constants.signals as Record<string, number>;
const names = new Map<number, NodeJS.Signals>();
for (const [name, number] of Object.entries(numbers)) {
  if (!names.has(number)) names.set(number, name as NodeJS.Signals);
}
// By number, 0 to 64 (a plain array: read at every exit).
const byNumber: Array<NodeJS.Signals | null> = Array.from({ length: 65 }, (_, number) =>
  number === 0 ? null : (names.get(number) ?? (`SIGRT${number}` as NodeJS.Signals)),
);

/** Validates a signal name or number and returns the number (0 probes). */
export function toSignalNumber(signal: unknown, name = 'signal'): number {
  if (typeof signal === 'string') {
    const number = numbers[signal];
    if (number === undefined) throw invalidValue(name, 'must be a known signal name', signal);
    return number;
  }
  if (typeof signal === 'number') {
    if (
      signal === 0 ||
      names.has(signal) ||
      (Number.isInteger(signal) && signal >= 34 && signal <= 64)
    )
      return signal;
    throw invalidValue(name, 'must be a known signal number', signal);
  }
  throw invalidType(name, 'of type string or number', signal);
}

export function signalName(number: number): NodeJS.Signals | null {
  return byNumber[number] ?? (number === 0 ? null : (`SIGRT${number}` as NodeJS.Signals));
}
