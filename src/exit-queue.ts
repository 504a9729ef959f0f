// The JS half of native/exits.cc: every exit the native layer sees in one loop
// iteration arrives in one call, as rows of `exitRows`, each naming the id its
// process was given here. Each id leads to the callback that turns the row into
// that process's ExitStatus.
import { ExitSlot, native, rethrowLater } from './native.js';

/** What an exit is handed to: `at` is the offset of its row in `exitRows`. */
export interface ExitTarget {
  onExit(at: number): void;
}

const targets: Array<ExitTarget | undefined> = [];
const freeIds: number[] = [];

/** An id for `spawn`/`watch`; `setExitTarget` names who gets the exit. */
export function reserveExitId(): number {
  return freeIds.length > 0 ? freeIds.pop()! : targets.push(undefined) - 1;
}

export function setExitTarget(id: number, target: ExitTarget): void {
  targets[id] = target;
}

/**
 * For an id whose spawn failed (watching: true), or a handle closed before its exit
 * was delivered. `watching` is what the native
 * close() answered: true, no row will come and the id is free again; false, a row
 * is on its way (in the batch being delivered) and frees the id when it comes.
 */
export function dropExitId(id: number, watching: boolean): void {
  targets[id] = undefined;
  if (watching) freeIds.push(id);
}

const rows = native.exitRows;

// Runs between an exit and the code awaiting it: no closure or object per exit.
function onExits(count: number): void {
  for (let i = 0, at = 0; i < count; i++, at += ExitSlot.size) {
    const id = rows[at + ExitSlot.id];
    const target = targets[id];
    targets[id] = undefined;
    freeIds.push(id);
    if (target === undefined) continue;
    try {
      target.onExit(at);
    } catch (error) {
      // An error thrown by user code (an exit listener) does not stop the others.
      rethrowLater(error);
    }
  }
}

native.onExits(onExits);
