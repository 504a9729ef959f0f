// The raw native surface, typed once. Nothing else loads the .node file.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Called once when the process has exited. The exit is in `exitInfo` for the
 * length of the call (read it first): no JS values are made for it per exit.
 */
export type NativeExitCallback = () => void;

/** Indices into `exitInfo`, as in native/addon.h. */
export const ExitSlot = {
  /** The exit code, or -1 when there is none (killed by a signal, or unknown). */
  code: 0,
  /** The signal number, 0 when none. */
  signal: 1,
  coreDumped: 2,
  /** From the start of the process (spawn) or of the watch, in milliseconds. */
  durationMs: 3,
  /** 1 when the 7 resource usage values follow. */
  hasUsage: 4,
  usage: 5,
} as const;

export interface NativeProcess {
  readonly pid: number;
  /** The pidfd while watching, else null. */
  readonly pidfd: number | null;
  /** 0 when sent, or -errno (-ESRCH once reaped or closed: nothing was signalled). */
  kill(signal: number): number;
  setRef(ref: boolean): void;
  /** Stops watching and releases the pidfd; the exit callback never runs. */
  close(): void;
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

export const SpawnFlag = { setsid: 1, pdeathsig: 2, uid: 4, gid: 8 } as const;

/** Errors thrown by the native layer carry the positive errno and the failed step. */
export interface NativeError extends Error {
  errno: number;
  syscall: string;
  path?: string;
}

export interface NativeBinding {
  /** The exit being reported by the current NativeExitCallback call (see ExitSlot). */
  readonly exitInfo: Float64Array;
  capabilities(): NativeCapabilities;
  /**
   * `argv` and `env` are their strings each ended by a NUL, joined (`joinNul`). The
   * parent's end of each child fd is written to `fds` (-1 where none).
   */
  spawn(
    file: string,
    argv: string,
    env: string,
    path: string | null,
    cwd: string | null,
    stdio: Int32Array,
    flags: number,
    uid: number,
    gid: number,
    fds: Int32Array,
    onExit: NativeExitCallback,
  ): NativeProcess;
  watch(pid: number, onExit: NativeExitCallback): NativeProcess;
}

/** Where a built file may be: the local build, else the prebuilds shipped in the package. */
function builtCandidates(name: string): string[] {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  return [
    join(root, 'build', 'Release', name),
    join(root, 'build', 'Debug', name),
    join(root, 'prebuilds', `linux-${process.arch}`, name),
  ];
}

/** The path of a program built beside the addon (the guardian), or null when none is. */
export function builtProgram(name: string): string | null {
  return builtCandidates(name).find((file) => existsSync(file)) ?? null;
}

function load(): NativeBinding {
  const candidates = builtCandidates('pidwatch.node');
  const found = candidates.find((file) => existsSync(file));
  if (!found) {
    throw new Error(
      `pidwatch: native addon not found (looked in ${candidates.join(', ')}); run \`npm run build\``,
    );
  }
  return createRequire(import.meta.url)(found) as NativeBinding;
}

export const native: NativeBinding = load();

/** Joins strings that hold no NUL, each ended by one, for `spawn`. */
export function joinNul(strings: readonly string[]): string {
  return strings.length === 0 ? '' : `${strings.join('\0')}\0`;
}

/**
 * Runs an exit callback from the native layer. An error thrown by user code (an
 * exit listener) is rethrown on the next tick, as an uncaught exception of its
 * own, so the native caller never sees a JS exception.
 */
export function deliver(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}
