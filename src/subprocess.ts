import type { Readable, Writable } from 'node:stream';
import { invalidValue } from './errors.js';
import { publishExit } from './exits-hub.js';
import { readLines } from './lines.js';
import { ExitSlot, type NativeProcess, native } from './native.js';
import { toSignalNumber } from './signals.js';
import { nativeExitStatus } from './status.js';
import type { StdioStream } from './stdio.js';
import { deadline } from './timers.js';
import type { OwnedTree } from './tree.js';
import type { ExitStatus, ProcessTree } from './types.js';

const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);

export interface TerminationPolicy {
  killSignal: number;
  forceKillAfter: number | false;
}

type Reason = 'timeout' | 'abort' | 'dispose';

/** A child process started by `spawn()`. */
export class Subprocess implements AsyncDisposable {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** One entry per child fd: the parent's stream, or null where not piped. */
  readonly stdio: ReadonlyArray<Readable | Writable | null>;
  /**
   * Resolves once, after the exit has been reaped (and, with `tree: true`, once
   * the tree is empty: what was left of it is killed). Never rejects.
   */
  readonly exited: Promise<ExitStatus>;
  /** The child's whole tree with `tree: true`, else null. */
  readonly tree: ProcessTree | null;

  #handle: NativeProcess;
  #tree: OwnedTree | null;
  // The two numbers of the policy, not the request they came in: a running child
  // keeps no copy of its arguments alive.
  #killSignal: number;
  #forceKillAfter: number | false;
  #status: ExitStatus | null = null;
  #resolve!: (status: ExitStatus) => void;
  #timedOut = false;
  #aborted = false;
  #cancelForceKill: (() => void) | undefined;
  #cleanups: Array<() => void> | null = null;
  /** Some fd is piped to a Readable: unread output is drained after the exit. */
  #hasReadable: boolean;

  /** @internal Use `spawn()`. */
  constructor(
    handle: NativeProcess,
    streams: StdioStream[],
    policy: TerminationPolicy,
    tree: OwnedTree | null = null,
  ) {
    this.pid = handle.pid;
    this.#handle = handle;
    this.#tree = tree;
    this.tree = tree;
    this.#killSignal = policy.killSignal;
    this.#forceKillAfter = policy.forceKillAfter;
    this.stdio = streams as Array<Readable | Writable | null>;
    this.#hasReadable = streams.some((stream) => stream !== null && isReadable(stream));
    this.stdin = (streams[0] as Writable | null) ?? null;
    this.stdout = (streams[1] as Readable | null) ?? null;
    this.stderr = (streams[2] as Readable | null) ?? null;
    this.exited = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** The pidfd pidwatch holds while the process is unreaped; null in sigchld mode. */
  get pidfd(): number | null {
    return this.#status ? null : this.#handle.pidfd;
  }

  get exitCode(): number | null {
    return this.#status?.code ?? null;
  }

  get signalCode(): NodeJS.Signals | null {
    return this.#status?.signal ?? null;
  }

  /** Sends a signal through the pidfd. False, and nothing sent, once reaped. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const number = toSignalNumber(signal);
    if (this.#status) return false;
    return this.#handle.kill(number) === 0;
  }

  /**
   * The lines of piped stdout or stderr, without their terminators (`\n`, `\r\n`),
   * ending with the stream; a last line without a newline is yielded too. The pipe
   * is read only as fast as the loop consumes (memory bounded by the longest line).
   * Leaving the loop early closes pidwatch's end of the pipe and discards what is
   * unread, without signalling the process: a process that writes again gets EPIPE
   * or SIGPIPE, as in `cmd | head -1`.
   */
  lines(stream: 'stdout' | 'stderr' = 'stdout'): AsyncIterable<string> {
    if (stream !== 'stdout' && stream !== 'stderr')
      throw invalidValue('stream', "must be 'stdout' or 'stderr'", stream);
    const readable = this[stream];
    if (!readable) throw invalidValue('stream', 'must be piped (stdio: "pipe")', stream);
    // Claimed now, not when the loop starts: unread output is then kept for it.
    readable.pause();
    return readLines(readable);
  }

  ref(): void {
    this.#handle.setRef(true);
  }

  unref(): void {
    this.#handle.setRef(false);
  }

  async [asyncDispose](): Promise<void> {
    if (!this.#status) this.terminate('dispose');
    await this.exited;
  }

  /** @internal Runs when the process exits: undoes what terminate() set up. */
  onCleanup(cleanup: () => void): void {
    if (this.#cleanups === null) this.#cleanups = [cleanup];
    else this.#cleanups.push(cleanup);
  }

  /**
   * @internal Sends killSignal, then SIGKILL after forceKillAfter: to the whole
   * tree with `tree: true`.
   */
  terminate(reason: Reason): void {
    if (this.#status) return;
    if (reason === 'timeout') this.#timedOut = true;
    if (reason === 'abort') this.#aborted = true;
    const target = this.#tree ?? this.#handle;
    target.kill(this.#killSignal);
    const delay = this.#forceKillAfter;
    if (delay !== false && this.#cancelForceKill === undefined && this.#killSignal !== 9) {
      this.#cancelForceKill = deadline(delay, () => target.kill(9));
    }
  }

  /**
   * @internal Called by the exit queue, once, with the offset of the exit's row.
   * Kept lean: it runs between the exit and the code awaiting `exited`, so nothing
   * here is done needlessly.
   */
  onExit(at: number): void {
    const status = nativeExitStatus(this.pid, at, this.#timedOut, this.#aborted);
    this.#status = status;
    this.#cancelForceKill?.();
    if (this.#cleanups !== null) {
      for (const cleanup of this.#cleanups) cleanup();
      this.#cleanups = null;
    }
    this.stdin?.destroy();
    if (this.#tree) {
      // The leader is gone: what is left of its tree is killed, and `exited`
      // waits until the tree is empty.
      const finish = (tree: ExitStatus['tree']) => {
        status.tree = tree;
        this.#finish(status);
      };
      const now = this.#tree.settle(finish, native.exitRows[at + ExitSlot.leftovers]);
      if (now) finish(now);
      return;
    }
    this.#finish(status);
  }

  #finish(status: ExitStatus): void {
    publishExit(status);
    this.#resolve(status);
    // Output nobody has started to read is drained, as child_process does, so
    // its fd closes; code right after `await exited` can still attach a reader.
    if (this.#hasReadable) setImmediate(() => drainUnread(this.stdio));
  }
}

function isReadable(stream: Readable | Writable): stream is Readable {
  return 'readableFlowing' in stream && (stream as Readable).readable;
}

function drainUnread(streams: ReadonlyArray<Readable | Writable | null>): void {
  for (const stream of streams) {
    if (!stream || !isReadable(stream)) continue;
    if (stream.readableFlowing !== null) continue;
    if (stream.listenerCount('data') > 0 || stream.listenerCount('readable') > 0) continue;
    stream.resume();
  }
}
