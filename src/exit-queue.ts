// The JS half of native/exits.cc: every exit the native layer sees in one loop
// iteration arrives in one call, as rows of `exitRows`, each naming the id its
// process was given here. Each id leads to the callback that turns the row into
// that process's ExitStatus.
import { ExitSlot, type NativeTreeProcess, native, rethrowLater } from './native.js';

/** What an exit is handed to: `at` is the offset of its row in `exitRows`. */
export interface ExitTarget {
  onExit(at: number): void;
}

const targets: Array<ExitTarget | undefined> = [];
const freeIds: number[] = [];

/** A handle's key: its id in the low bits, a serial number above (native ProcessHandle). */
const SLOT_SPAN = 2 ** 24;
const SERIALS = 2 ** 29;
let serial = 0;

/** An id for `spawn`/`watch`; `setExitTarget` names who gets the exit. */
export function reserveExitId(): number {
  if (freeIds.length > 0) return freeIds.pop()!;
  if (targets.length === SLOT_SPAN) throw new RangeError('pidwatch: too many processes watched');
  return targets.push(undefined) - 1;
}

/**
 * The key of the native handle for `id`: a new one each time, so a key that
 * outlives its process (an old Subprocess's) never names the next one given the id.
 */
export function handleKey(id: number): number {
  serial = serial === SERIALS - 1 ? 0 : serial + 1;
  return id + serial * SLOT_SPAN;
}

/**
 * A native process handle as JS holds it: its key and pid. The native half is
 * not a JS object, so a spawn creates no wrapper and the collector no weak
 * reference; once the process is done, each call answers as for a process gone.
 */
export class ProcessRef implements NativeTreeProcess {
  constructor(
    readonly key: number,
    readonly pid: number,
  ) {}

  get pidfd(): number | null {
    const fd = native.handlePidfd(this.key);
    return fd < 0 ? null : fd;
  }

  kill(signal: number): number {
    return native.handleKill(this.key, signal);
  }

  killGroup(signal: number): number {
    return native.handleKillGroup(this.key, signal);
  }

  setRef(ref: boolean): void {
    native.handleSetRef(this.key, ref);
  }

  claimFds(): void {
    native.handleClaimFds(this.key);
  }

  close(): boolean {
    return native.handleClose(this.key);
  }
}

/** Who gets each pending exit, by id (undefined where none). */
export function exitTargets(): ReadonlyArray<ExitTarget | undefined> {
  return targets;
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
