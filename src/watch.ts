import { readdirSync, readFileSync } from 'node:fs';
import { capabilities } from './capabilities.js';
import { liveChild } from './children.js';
import { abortError, errnoName, invalidType, invalidValue, ProcessGoneError } from './errors.js';
import { dropExitId, handleKey, ProcessRef, reserveExitId, setExitTarget } from './exit-queue.js';
import { publishExit } from './exits-hub.js';
import { type NativeError, native } from './native.js';
import { toSignalNumber } from './signals.js';
import { nativeExitStatus, toExitStatus } from './status.js';
import type { Subprocess } from './subprocess.js';
import type { ExitStatus } from './types.js';

/** Without pidfds, /proc/<pid>/stat is polled: first after this many ms... */
export const POLL_FIRST_MS = 5;
/** ...then at twice the interval each time, up to this ceiling. */
export const POLL_CEILING_MS = 250;

/** A process watched by `watch()`: any process, never reaped by pidwatch. */
export interface WatchedProcess {
  readonly pid: number;
  /** The pidfd while watching (pidfd mode), else null. */
  readonly pidfd: number | null;
  readonly exited: Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals | number): boolean;
  ref(): void;
  unref(): void;
  /** Stops watching; a pending `exited` rejects with an AbortError. */
  close(): void;
}

/** A native failure as Node reports system errors: code, negative errno, syscall. */
function systemError(e: NativeError): Error {
  const code = errnoName(e.errno);
  return Object.assign(new Error(`${e.syscall} ${code}: ${e.message}`), {
    code,
    errno: -e.errno,
    syscall: e.syscall,
  });
}

function checkPid(pid: unknown): number {
  if (typeof pid !== 'number') throw invalidType('pid', 'of type number', pid);
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff)
    throw invalidValue('pid', 'must be a positive integer', pid);
  return pid;
}

/** Watches a process by PID. Throws ProcessGoneError when there is none. */
export function watch(pid: number, options?: Record<string, never>): WatchedProcess {
  checkPid(pid);
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw invalidType('options', 'of type object', options);
  const child = liveChild(pid);
  if (child) return new Watch(pid, new ChildSource(child));
  if (capabilities().mode === 'pidfd') return new Watch(pid, new PidfdSource(pid));
  return new Watch(pid, new ProcSource(pid));
}

/** Where a watch learns of the exit. */
interface Source {
  readonly pidfd: number | null;
  start(onExit: (status: ExitStatus) => void): void;
  kill(signal: number): boolean;
  setRef(ref: boolean): void;
  close(): void;
}

class Watch implements WatchedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  #source: Source;
  #settled = false;
  #reject!: (error: Error) => void;

  constructor(pid: number, source: Source) {
    this.pid = pid;
    this.#source = source;
    this.exited = new Promise<ExitStatus>((resolve, reject) => {
      this.#reject = reject;
      source.start((status) => {
        if (this.#settled) return;
        this.#settled = true;
        resolve(status);
      });
    });
    // A closed watch rejects; that rejection is never reported as unhandled.
    this.exited.catch(() => {});
  }

  get pidfd(): number | null {
    return this.#settled ? null : this.#source.pidfd;
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const number = toSignalNumber(signal);
    if (this.#settled) return false;
    return this.#source.kill(number);
  }

  ref(): void {
    if (!this.#settled) this.#source.setRef(true);
  }

  unref(): void {
    if (!this.#settled) this.#source.setRef(false);
  }

  close(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#source.close();
    this.#reject(abortError(`watch of PID ${this.pid} was closed`));
  }
}

/** One of pidwatch's own children: shares its status. */
class ChildSource implements Source {
  #child;
  #keepAlive: NodeJS.Timeout | undefined;
  constructor(child: Subprocess) {
    this.#child = child;
  }
  get pidfd() {
    return this.#child.pidfd;
  }
  start(onExit: (status: ExitStatus) => void) {
    this.#child.exited.then(onExit);
  }
  kill(signal: number) {
    return this.#child.kill(signal);
  }
  setRef(ref: boolean) {
    // The child keeps the loop alive unless it was unref'd; a ref'd watch of an
    // unref'd child does too.
    if (ref && !this.#keepAlive) {
      this.#keepAlive = setInterval(() => {}, 2 ** 30);
      this.#child.exited.then(() => clearInterval(this.#keepAlive));
    } else if (!ref && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }
  close() {
    clearInterval(this.#keepAlive);
  }
}

/** A pidfd from pidfd_open, polled on the event loop. */
class PidfdSource implements Source {
  #handle;
  #id = reserveExitId();
  #exited = false;
  #onExit: ((status: ExitStatus) => void) | undefined;
  constructor(pid: number) {
    try {
      const key = handleKey(this.#id);
      this.#handle = new ProcessRef(key, native.watch(pid, key));
      setExitTarget(this.#id, this);
    } catch (error) {
      dropExitId(this.#id, true);
      const e = error as NativeError;
      if (e.errno === 3) throw new ProcessGoneError(pid);
      if (typeof e.errno === 'number') throw systemError(e);
      throw error;
    }
  }
  get pidfd() {
    return this.#handle.pidfd;
  }
  start(onExit: (status: ExitStatus) => void) {
    this.#onExit = onExit;
  }
  kill(signal: number) {
    return this.#handle.kill(signal) === 0;
  }
  setRef(ref: boolean) {
    this.#handle.setRef(ref);
  }
  close() {
    if (!this.#exited) dropExitId(this.#id, this.#handle.close());
  }
  /** @internal Called by the exit queue. */
  onExit(at: number) {
    this.#exited = true;
    const status = nativeExitStatus(this.#handle.pid, at);
    publishExit(status);
    this.#onExit?.(status);
  }
}

interface ProcStat {
  state: string;
  startTime: string;
}

/** The process's stat, or null when it is gone; other errors (EMFILE, ...) are thrown. */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw error;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); starttime is field 22.
  return { state: fields[0], startTime: fields[19] };
}

/** A zombie leader may still have live threads: the process ends with its last thread. */
function everyThreadDead(pid: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true;
  }
  return tids.every((tid) => {
    try {
      const state = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      return /^[ZX]/.test(state.slice(state.lastIndexOf(')') + 2));
    } catch {
      return true;
    }
  });
}

function isProcessLeader(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    return new RegExp(`^Tgid:\\s+${pid}$`, 'm').test(status);
  } catch {
    return false;
  }
}

/**
 * Without pidfds: polls /proc/<pid>/stat with exponential backoff from
 * POLL_FIRST_MS to POLL_CEILING_MS. The start time tells a reused PID apart.
 */
class ProcSource implements Source {
  #pid: number;
  #startTime: string;
  #timer: NodeJS.Timeout | undefined;
  #delay = POLL_FIRST_MS;
  #ref = true;
  #startedAt = performance.now();
  constructor(pid: number) {
    this.#pid = pid;
    const stat = readStat(pid);
    // /proc/<tid> exists for threads too; only a thread-group leader is a process.
    if (!stat || !isProcessLeader(pid)) throw new ProcessGoneError(pid);
    this.#startTime = stat.startTime;
  }
  get pidfd() {
    return null;
  }
  /** The stat of the watched process, null once it is gone, undefined if /proc did not answer. */
  #read(): ProcStat | null | undefined {
    try {
      const stat = readStat(this.#pid);
      return stat && stat.startTime === this.#startTime ? stat : null;
    } catch {
      return undefined; // e.g. EMFILE: no news, ask again later
    }
  }
  start(onExit: (status: ExitStatus) => void) {
    const check = () => {
      const stat = this.#read();
      const running =
        stat === undefined ||
        (stat !== null && (stat.state !== 'Z' || !everyThreadDead(this.#pid)));
      if (running) {
        this.#delay = Math.min(this.#delay * 2, POLL_CEILING_MS);
        this.#schedule(check);
        return;
      }
      // A zombie: its wait status is in /proc until its parent reaps it, for a
      // reader allowed to see it (null otherwise: unknown, never a made-up 0). Read
      // natively, as the pidfd watcher does; the stat read again afterwards tells
      // that the PID was not reaped and reused in between.
      const zombie = stat ? native.zombieStatus(this.#pid) : null;
      const known = zombie !== null && this.#read() !== null;
      const exit = toExitStatus({
        pid: this.#pid,
        code: known && zombie[0] >= 0 ? zombie[0] : null,
        signal: known ? zombie[1] : 0,
        coreDumped: known && zombie[2],
        startedAt: this.#startedAt,
      });
      publishExit(exit);
      onExit(exit);
    };
    this.#schedule(check);
  }
  #schedule(check: () => void) {
    this.#timer = setTimeout(check, this.#delay);
    if (!this.#ref) this.#timer.unref();
  }
  kill(signal: number) {
    const stat = this.#read();
    if (!stat || (stat.state === 'Z' && everyThreadDead(this.#pid))) return false;
    try {
      process.kill(this.#pid, signal);
      return true;
    } catch {
      return false;
    }
  }
  setRef(ref: boolean) {
    this.#ref = ref;
    if (ref) this.#timer?.ref();
    else this.#timer?.unref();
  }
  close() {
    clearTimeout(this.#timer);
  }
}
