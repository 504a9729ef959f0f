// The raw native surface, typed once. Only ./binary.ts loads the .node file.
import { loadBinary } from './binary.js';

/**
 * Receives the exits seen in one loop iteration: rows 0..count-1 of `exitRows`,
 * valid for the length of the call. No JS values are made per exit.
 */
export type NativeExitsHandler = (count: number) => void;

/**
 * A zeroed Int32Array of `length` for native code to read or fill (a spawn's stdio codes
 * and the parent's fds), cut from a shared ArrayBuffer as Node's Buffer pool cuts small
 * Buffers. Not `new Int32Array(3)`: V8 keeps a typed array that small on its own heap, and
 * N-API copies one out to an ArrayBuffer of its own the first time native code reads it
 * (measured: about a fifth of spawnAsync's time in the call, for these two). A slab lives
 * as long as any view of it.
 */
export function nativeInt32Array(length: number): Int32Array {
  const bytes = length * 4;
  if (bytes > SLAB_BYTES) return new Int32Array(length); // off V8's heap already
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const view = new Int32Array(slab, slabUsed, length);
  slabUsed += bytes;
  return view;
}

const SLAB_BYTES = 2048;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** Offsets within one row of `exitRows`, as in native/exits.h. */
export const ExitSlot = {
  /** The id given to `spawn` or `watch`. */
  id: 0,
  /** The exit code, or -1 when there is none (killed by a signal, or unknown). */
  code: 1,
  /** The signal number, 0 when none. */
  signal: 2,
  coreDumped: 3,
  /** From the start of the process (spawn) or of the watch, in milliseconds. */
  durationMs: 4,
  /** 1 when the 7 resource usage values follow. */
  hasUsage: 5,
  usage: 6,
  /** Members of a process-group leader's group killed at its exit (tree 'pgroup'), else 0. */
  leftovers: 13,
  /** The length of a row. */
  size: 14,
} as const;

export interface NativeProcess {
  readonly pid: number;
  /** The pidfd while watching, else null. */
  readonly pidfd: number | null;
  /** 0 when sent, or -errno (-ESRCH once reaped or closed: nothing was signalled). */
  kill(signal: number): number;
  setRef(ref: boolean): void;
  /** The parent's pipe ends (spawn's fds) are in streams now: the handle no longer closes them. */
  claimFds(): void;
  /**
   * Stops watching and releases the pidfd. True when it was still watched (no exit
   * will be reported); false when its exit has already been recorded.
   */
  close(): boolean;
}

/** A child spawned with a `leaf` (or SpawnFlag.processGroup) leads a tree. */
export interface NativeTreeProcess extends NativeProcess {
  /** Signals the process group the child leads: 0, or -errno (-ESRCH once reaped). */
  killGroup(signal: number): number;
}

/**
 * A cgroup leaf holding one tree. `settle` is called once the leader has been
 * reaped: it kills what is left and gives back `[leftovers, userUs, systemUs,
 * memoryPeakBytes]` (-1: unknown), at once when the leaf is empty, else through
 * `onEmpty` once it is. After that (or `release`) the leaf is no longer this tree's.
 */
export interface NativeLeaf {
  readonly path: string;
  /** 0 when sent, -ESRCH when the tree is empty (nothing sent), or -errno. */
  kill(signal: number): number;
  pids(): number[];
  settle(onEmpty: (figures: number[]) => void): number[] | undefined;
  /** Gives the leaf back after a spawn that failed. */
  release(): void;
}

export interface NativeCapabilities {
  forcedSigchld: boolean;
  clone3Pidfd: boolean;
  pidfdOpen: boolean;
  waitidPidfd: boolean;
  pidfdSendSignal: boolean;
  pidfdInfoExit: boolean;
}

/** Child fd codes for `spawn`'s stdio array; a value >= 0 is a parent fd to pass. */
export const StdioCode = { null: -1, none: -2, pipeIn: -3, pipeOut: -4, socketPair: -5 } as const;

export const SpawnFlag = { setsid: 1, pdeathsig: 2, uid: 4, gid: 8, processGroup: 16 } as const;

/**
 * What a capture reports through the callback given to `captureInit`: an overflow
 * (once, while the pipes are still read), then done, once every output pipe has ended.
 */
export const CaptureEvent = { overflow: 1, done: 2, doneOverflowed: 3 } as const;

/**
 * A stream's bytes as native code hands them over: a Buffer, or below 4 KiB a string of
 * one character a byte (Latin-1: see `capturedBytes`); undefined when empty.
 */
export type NativeBytes = Buffer | string | undefined;

/** The Buffer of NativeBytes (Buffer.from takes a short one from Node's pool). */
export function capturedBytes(bytes: NativeBytes): Buffer | undefined {
  return typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
}

export type NativeCaptureCallback = (
  id: number,
  event: number,
  stdout: NativeBytes,
  stderr: NativeBytes,
  all: NativeBytes,
) => void;

export const CaptureFlag = { all: 1, discard: 2, hold: 4 } as const;

/** Errors thrown by the native layer carry the positive errno and the failed step. */
export interface NativeError extends Error {
  errno: number;
  syscall: string;
  path?: string;
}

export interface NativeBinding {
  /** The exits being reported by the current NativeExitsHandler call (see ExitSlot). */
  readonly exitRows: Float64Array;
  /** Sets the function every batch of exits is handed to (once per thread). */
  onExits(handler: NativeExitsHandler): void;
  capabilities(): NativeCapabilities;
  /**
   * `argv` and `env` are their strings each ended by a NUL, joined (`joinNul`). The
   * parent's end of each child fd is written to `fds` (-1 where none). `key` names
   * the handle to the `handle*` functions, and its slot is what the exit's row
   * carries (see exit-queue.ts). Returns the pid.
   */
  spawn(
    ...args: [...request: NativeSpawnRequest, fds: Int32Array, key: number, leaf?: NativeLeaf]
  ): number;
  /**
   * `spawn` with the clone and the wait for execve on a thread of the addon's own.
   * Rejects as `spawn` throws; undefined when the environment is shutting down.
   */
  spawnAsync(...args: Parameters<NativeBinding['spawn']>): Promise<number | undefined>;
  /**
   * Whether the process environment holds exactly these strings now (`joinNul`ed,
   * in order). If so, a spawn request may name them with env null, until the next
   * call: each such spawn checks right before its clone that the environment
   * still holds them, else fails with syscall 'environ' (errno ESTALE).
   */
  environMatches(joined: string): boolean;
  /** Watches any process through a pidfd (never reaped here); returns its pid. */
  watch(pid: number, key: number): number;
  /** What NativeProcess asks of the handle `key` names (see ProcessRef). */
  handleKill(key: number, signal: number): number;
  handleKillGroup(key: number, signal: number): number;
  handleSetRef(key: number, ref: boolean): void;
  handleClose(key: number): boolean;
  handleClaimFds(key: number): void;
  /** The pidfd while watching, else -1. */
  handlePidfd(key: number): number;
  /**
   * `[code, signal, coreDumped]` of the zombie `pid` from /proc (code -1 when a signal
   * ended it), or null when it is no zombie or this process may not see its status.
   */
  zombieStatus(pid: number): [code: number, signal: number, coreDumped: boolean] | null;
  /** A leaf for a new tree, or -errno when none can be made; undefined while shutting down. */
  /** wantCpu false: cpu.stat is not read for this tree (its CPU times are -1). */
  treeLeaf(wantCpu: boolean): NativeLeaf | number | undefined;
  /** [root, this process's directory under it] where trees live, or null (no writable cgroup2). */
  cgroupDirs(): [string, string] | null;
  /** Live members of a process group, from a walk of /proc. */
  pgroupMembers(pgid: number): number[];
  /** Sets the one callback of this environment's captures. */
  captureInit(callback: NativeCaptureCallback): void;
  /**
   * Starts reading the parent's ends of a child's fds 0, 1 and 2 (-1: none; it takes them
   * over and closes them) and writing `input` to fd 0. Returns the capture's id.
   */
  captureStart(
    stdin: number,
    stdout: number,
    stderr: number,
    input: Uint8Array | null,
    maxBuffer: number,
    flags: number,
  ): number;
  /** Reads what the pipes hold now, closes them, and reports done if it has not yet. */
  captureClose(id: number): void;
  /** A memory file (memfd, close-on-exec) for a child's output: its fd, or -errno. */
  memoryFile(name: string): number;
  /** The bytes of a memory file from its start (undefined when empty); closes the fd. */
  takeMemoryFile(fd: number): Buffer | undefined;
  /** Stops writing the input and closes the child's stdin. */
  captureEndInput(id: number): void;
  /**
   * The child has exited: as captureEndInput; then, for a capture started with
   * CaptureFlag.hold whose output has ended, its done event's arguments (the event,
   * stdout, stderr, all), returned instead of reported; else undefined.
   */
  captureExited(
    id: number,
  ): [event: number, stdout: NativeBytes, stderr: NativeBytes, all: NativeBytes] | undefined;
  /**
   * Runs a child to its end on this thread, no event loop (native/sync.cc). It begins
   * with spawn's request; `forceKillAfterMs` -1 never; throws as spawn does.
   */
  spawnSync(
    ...args: [
      ...request: NativeSpawnRequest,
      leaf: NativeLeaf | null,
      input: Uint8Array | null,
      timeoutMs: number,
      killSignal: number,
      forceKillAfterMs: number,
      maxBuffer: number,
      all: boolean,
    ]
  ): NativeSyncResult;
  /**
   * Starts `pidwatch run`'s job pump (native/pump.cc): a thread per slot. `env` is NUL-ended
   * strings. Returns its id, or -errno when it cannot run. `onRows` gets the rows of the jobs
   * that ended, the failed spawns as [index, syscall, path], and `last` on its final call; it
   * is called once fewer than `refillBelow` jobs are queued, for a failure, at the end, and
   * with `eachRow` for every job.
   */
  pumpStart(
    concurrency: number,
    tree: boolean,
    env: string,
    onRows: (
      rows: Float64Array,
      count: number,
      failures: [number, string, string][] | null,
      last: boolean,
    ) => void,
    refillBelow: number,
    eachRow: boolean,
  ): number;
  /** Queues a job: `argv[0]` is its argv0. */
  pumpPush(id: number, index: number, seq: number, file: string, argv: string[]): void;
  /** No more jobs: `stop` drops the queued ones, `abort` also leaves unprinted the jobs that end. */
  pumpClose(id: number, stop: boolean, abort: boolean): void;
  /** Sends a signal to every running job's tree; returns how many it reached. */
  pumpSignal(id: number, signal: number): number;
  /**
   * A blocking kernel pipe, both ends close-on-exec: [read end, write end]; with
   * `size`, its buffer grown to that many bytes where the kernel allows.
   */
  pipe(size?: number): [number, number];
}

/**
 * What spawn and spawnSync begin with: `argv` and `env` are their strings each
 * ended by a NUL, joined (`joinNul`); env null is the environment `environMatches`
 * last matched, with its PATH (path is then not read).
 */
export type NativeSpawnRequest = [
  file: string,
  argv: string,
  env: string | null,
  path: string | null,
  cwd: string | null,
  stdio: Int32Array,
  flags: number,
  uid: number,
  gid: number,
];

/** What spawnSync reports. `code` -1 and `signal` 0 mean none. */
export interface NativeSyncResult {
  pid: number;
  code: number;
  signal: number;
  coreDumped: boolean;
  durationMs: number;
  /** The 7 values of ExitStatus.resourceUsage in order, or null. */
  usage: Float64Array | null;
  timedOut: boolean;
  overflowed: boolean;
  /** With a tree: members still alive when the child exited, killed then. */
  leftovers: number;
  stdout: Buffer;
  stderr: Buffer;
  all: Buffer | null;
}

export const native: NativeBinding = loadBinary<NativeBinding>();

/** Joins strings that hold no NUL, each ended by one, for `spawn`. */
export function joinNul(strings: readonly string[]): string {
  return strings.length === 0 ? '' : `${strings.join('\0')}\0`;
}

/**
 * Runs a callback from the native layer. An error thrown by user code (an exit
 * listener) is rethrown on the next tick, as an uncaught exception of its own,
 * so the native caller never sees a JS exception.
 */
export function deliver(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    rethrowLater(error);
  }
}

/** Throws `error` on the next tick, as an uncaught exception of its own. */
export function rethrowLater(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}
