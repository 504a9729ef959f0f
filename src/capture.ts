// Output capture through pipes, the way pidwatch collects a child's output (exec,
// spawn$, the runner): the parent's pipe ends are read natively on the event loop
// (native/capture.cc) and the bytes reach JS once, when the output has ended: for a
// process whose output has ended by its exit (the usual case), in the same turn as the
// exit (`untilExit`, `Capture.exited()`). No Node stream per pipe.
//
// Why pipes and not a memory file per stream: with a pipe, maxBuffer stops a child that
// writes forever while it runs, stdout and stderr interleave in arrival order for `all`,
// a descendant still holding the output is waited for as child_process does, and
// `echo b >/dev/stdout` appends (a file is reopened and truncated). Bounded waits (below)
// keep that wait from outliving `timeout` or an abort. `pidwatch run` alone uses memory
// files, because GNU parallel's jobs write to files (runner/attempt.ts, native/pump.h).
import {
  CaptureEvent,
  CaptureFlag,
  capturedBytes,
  deliver,
  type NativeBytes,
  native,
} from './native.js';
import { spawnRawAsync } from './spawn.js';
import type { Subprocess } from './subprocess.js';
import { deadline } from './timers.js';
import type { ExitStatus, SpawnOptions } from './types.js';

const EMPTY = Buffer.alloc(0);

export interface CaptureOptions {
  /** Written to the child's stdin when fd 0 is a pipe; the pipe is closed after it. */
  input?: Uint8Array | null;
  /** Bytes kept per stream; past it that stream is closed and `onOverflow` runs. */
  maxBuffer?: number;
  /** Also keep stdout and stderr interleaved, in the order they were read. */
  all?: boolean;
  /** Read the output to its end but keep none of it. */
  discard?: boolean;
  /** Once, when a stream went past maxBuffer. */
  onOverflow?: () => void;
  /**
   * @internal The output of a child that ends is taken by `exited()`, in the turn that
   * handles its exit, rather than reported through `done` (which then never settles).
   */
  untilExit?: boolean;
}

/** What the output pipes carried. */
export interface Captured {
  stdout: Buffer;
  stderr: Buffer;
  /** With `all: true`: both streams interleaved. */
  all: Buffer | undefined;
  /** Some stream went past maxBuffer and was cut there. */
  isMaxBuffer: boolean;
}

/** The captures of this thread that have not reported done, by native id. */
const running = new Map<number, Capture>();

native.captureInit((id, event, stdout, stderr, all) => {
  const capture = running.get(id);
  if (capture === undefined) return;
  if (event === CaptureEvent.overflow) {
    capture.onOverflow();
    return;
  }
  capture.onDone(event, stdout, stderr, all);
});

/** The parent's ends of a child's stdin, stdout and stderr, handled natively. */
export class Capture {
  /** Resolves once every output pipe has ended (EOF, maxBuffer or `close()`). Never rejects. */
  readonly done: Promise<Captured>;
  #id = 0;
  #all: boolean;
  #onOverflow: (() => void) | undefined;
  #resolve!: (result: Captured) => void;

  /**
   * Takes over `fds` (the parent's ends of the child's fds 0, 1 and 2; -1 where none):
   * it closes them.
   */
  constructor(fds: Int32Array, options: CaptureOptions = {}) {
    const { input = null, maxBuffer = Number.POSITIVE_INFINITY } = options;
    this.#all = options.all === true;
    this.#onOverflow = options.onOverflow;
    const flags =
      (this.#all ? CaptureFlag.all : 0) |
      (options.discard ? CaptureFlag.discard : 0) |
      (options.untilExit ? CaptureFlag.hold : 0);
    if (fds[1] < 0 && fds[2] < 0) {
      // Nothing to read: the child's stdin, if piped, gets EOF at once.
      if (fds[0] >= 0) native.captureClose(native.captureStart(fds[0], -1, -1, null, 0, 0));
      this.done = Promise.resolve(captured(undefined, undefined, this.#all ? EMPTY : undefined));
      return;
    }
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    this.#id = native.captureStart(fds[0], fds[1], fds[2], input, maxBuffer, flags);
    running.set(this.#id, this);
  }

  /**
   * Stops waiting for the output: what the pipes hold now is read, then pidwatch's ends
   * are closed and `done` resolves with what was read. A writer still holding a pipe
   * then gets EPIPE (or SIGPIPE).
   */
  close(): void {
    if (this.#id !== 0) native.captureClose(this.#id);
  }

  /** Stops writing input and closes the child's stdin. */
  endInput(): void {
    if (this.#id !== 0) native.captureEndInput(this.#id);
  }

  /**
   * The child has exited: closes its stdin, and returns the output if it has ended
   * (with `untilExit`; `done` then never settles); else undefined, and `done` settles
   * once it ends.
   */
  exited(): Captured | undefined {
    if (this.#id === 0) return undefined;
    const held = native.captureExited(this.#id);
    return held === undefined ? undefined : this.#ended(...held);
  }

  /** @internal */
  onOverflow(): void {
    if (this.#onOverflow) deliver(this.#onOverflow);
  }

  /** @internal The done event: the output through `done`. */
  onDone(event: number, stdout: NativeBytes, stderr: NativeBytes, all: NativeBytes): void {
    this.#resolve(this.#ended(event, stdout, stderr, all));
  }

  /** The capture has ended, with what the done event (or `exited()`) carries. */
  #ended(event: number, stdout: NativeBytes, stderr: NativeBytes, all: NativeBytes): Captured {
    running.delete(this.#id);
    this.#id = 0;
    return captured(
      capturedBytes(stdout),
      capturedBytes(stderr),
      this.#all ? (capturedBytes(all) ?? EMPTY) : undefined,
      event === CaptureEvent.doneOverflowed,
    );
  }
}

function captured(
  stdout: Buffer | undefined,
  stderr: Buffer | undefined,
  all: Buffer | undefined,
  overflowed = false,
): Captured {
  return { stdout: stdout ?? EMPTY, stderr: stderr ?? EMPTY, all, isMaxBuffer: overflowed };
}

/** A finished process with its output. */
export interface CaptureResult extends Captured {
  status: ExitStatus;
}

export interface CapturedProcess {
  proc: Subprocess;
  /** Settles once the process is reaped and its output has ended (see `spawnCapturedAsync`). */
  result: Promise<CaptureResult>;
  /**
   * The process is being killed on purpose (a halted run): stop waiting for output once
   * it has exited, now if it already has.
   */
  stop(): void;
}

/**
 * `spawnAsync()` with stdout and stderr (where piped) collected by a Capture. Rejects as
 * spawnAsync does. Waits are bounded: once `timeout` has fired, `signal` aborted,
 * maxBuffer been passed or `stop()` been called, the result does not wait for the output
 * past the exit of the process (a descendant may still hold a pipe); when `timeout` fires
 * or `signal` aborts after the exit, the wait for the output ends then, with `timedOut`
 * or `aborted` set in the status.
 */
export function spawnCapturedAsync(
  file: string,
  args: readonly string[] | undefined,
  options: SpawnOptions,
  captureOptions: CaptureOptions = {},
): Promise<CapturedProcess> {
  const fds = new Int32Array(3);
  return spawnRawAsync(file, args, options, fds, (proc) =>
    captureOutput(proc, fds, options, captureOptions),
  );
}

function captureOutput(
  proc: Subprocess,
  fds: Int32Array,
  options: SpawnOptions,
  captureOptions: CaptureOptions,
): CapturedProcess {
  if (fds[0] < 0 && fds[1] < 0 && fds[2] < 0) {
    // No pipe (output 'ignore' or 'inherit'): only the exit to wait for.
    const nothing = captured(undefined, undefined, captureOptions.all ? EMPTY : undefined);
    const result = proc.exited.then((status) => ({ status, ...nothing }));
    return { proc, result, stop: () => {} };
  }
  let exited = false;
  let bounded = false;
  let lateTimeout = false;
  let lateAbort = false;
  const { onOverflow } = captureOptions;
  const capture = new Capture(fds, {
    input: captureOptions.input,
    maxBuffer: captureOptions.maxBuffer,
    all: captureOptions.all,
    discard: captureOptions.discard,
    untilExit: true,
    onOverflow: () => {
      bound();
      proc.terminate('dispose');
      onOverflow?.();
    },
  });
  /** No more waiting for output after the exit. */
  function bound(): void {
    bounded = true;
    if (exited) capture.close();
  }

  let cancelTimeout: (() => void) | undefined;
  const { timeout, signal } = options;
  if (timeout !== undefined && timeout > 0) {
    cancelTimeout = deadline(timeout, () => {
      if (exited) lateTimeout = true;
      bound();
    });
  }
  const onAbort = signal
    ? () => {
        if (exited) lateAbort = true;
        bound();
      }
    : undefined;
  if (onAbort) signal!.addEventListener('abort', onAbort, { once: true });

  // Settles once both the exit and the end of the output are in.
  let status: ExitStatus | undefined;
  let output: Captured | undefined;
  let settle!: (result: CaptureResult) => void;
  const result = new Promise<CaptureResult>((resolve) => {
    settle = resolve;
  });
  const finish = () => {
    cancelTimeout?.();
    if (onAbort) signal!.removeEventListener('abort', onAbort);
    let final = status!;
    if (lateTimeout) final = { ...final, timedOut: true };
    if (lateAbort) final = { ...final, aborted: true };
    const { stdout, stderr, all, isMaxBuffer } = output!;
    settle({ status: final, stdout, stderr, all, isMaxBuffer });
  };
  proc.exited.then((exit) => {
    exited = true;
    status = exit;
    // Usually the output has ended by now (the pipes close before the exit is
    // reported) and comes with this call; a descendant may still hold a pipe.
    const taken = capture.exited();
    if (taken !== undefined) output = taken;
    if (output !== undefined) {
      finish();
      return;
    }
    if (bounded || exit.timedOut || exit.aborted) capture.close();
  });
  capture.done.then((captured) => {
    output = captured;
    if (status !== undefined) finish();
  });
  return { proc, result, stop: bound };
}
