import { toSpawnError } from './errors.js';
import { dropExitId, handleKey, ProcessRef, reserveExitId, setExitTarget } from './exit-queue.js';
import { guardTree } from './guardian.js';
import {
  joinNul,
  type NativeBinding,
  type NativeLeaf,
  native,
  nativeInt32Array,
  SpawnFlag,
} from './native.js';
import { normalizeSpawn, retryWithFreshEnv } from './options.js';
import { openStreams } from './stdio.js';
import { Subprocess } from './subprocess.js';
import { deadline } from './timers.js';
import { acquireLeaf, ownTree } from './tree.js';
import type { SpawnOptions } from './types.js';

/**
 * Starts `file` with `args`. Throws TypeError (bad arguments) or SpawnError (the
 * kernel refused) synchronously; then nothing is running and no fd is open.
 */
export function spawn(file: string, options?: SpawnOptions): Subprocess;
export function spawn(file: string, args?: readonly string[], options?: SpawnOptions): Subprocess;
export function spawn(file: unknown, args?: unknown, options?: unknown): Subprocess {
  if (options === undefined && args !== null && typeof args === 'object' && !Array.isArray(args)) {
    options = args;
    args = undefined;
  }
  return launch(normalizeSpawn(file, args, options), null);
}

/**
 * As `spawn()`, but the clone and the wait for `execve` happen on a thread of
 * pidwatch's own, off the event loop; resolves once the child runs. Rejects with
 * the TypeError or SpawnError `spawn()` would throw.
 */
export function spawnAsync(file: string, options?: SpawnOptions): Promise<Subprocess>;
export function spawnAsync(
  file: string,
  args?: readonly string[],
  options?: SpawnOptions,
): Promise<Subprocess>;
export function spawnAsync(file: unknown, args?: unknown, options?: unknown): Promise<Subprocess> {
  if (options === undefined && args !== null && typeof args === 'object' && !Array.isArray(args)) {
    options = args;
    args = undefined;
  }
  try {
    return launchAsync(normalizeSpawn(file, args, options), null, itself);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * @internal `spawn()` for a Capture: the parent's ends of fds 0-2 are not wrapped in
 * streams but written to `raw` (-1 where not piped); other piped fds get streams.
 */
export function spawnRaw(
  file: string,
  args: readonly string[] | undefined,
  options: SpawnOptions | undefined,
  raw: Int32Array,
): Subprocess {
  return launch(normalizeSpawn(file, args, options), raw);
}

/** What `spawnAsync` resolves with: the Subprocess as adopted (one function, not one a call). */
const itself = (proc: Subprocess) => proc;

/**
 * @internal `spawnAsync()` for a Capture, as `spawnRaw`; `started` runs as the child is
 * adopted, in the same reaction (no promise in between).
 */
export function spawnRawAsync<T>(
  file: string,
  args: readonly string[] | undefined,
  options: SpawnOptions | undefined,
  raw: Int32Array,
  started: (proc: Subprocess) => T,
): Promise<T> {
  try {
    return launchAsync(normalizeSpawn(file, args, options), raw, started);
  } catch (error) {
    return Promise.reject(error);
  }
}

type Request = ReturnType<typeof normalizeSpawn>;

/** One spawn on its way: what the native call is given, and what undoes it. */
class Launch {
  readonly fds: Int32Array;
  readonly id = reserveExitId();
  readonly key = handleKey(this.id);
  readonly leaf: NativeLeaf | null;
  readonly #flags: number;
  /** Ends the guardian's watch of a killOnParentExit leaf (see the constructor). */
  readonly #unguard: (() => void) | null;

  constructor(
    readonly request: Request,
    readonly raw: Int32Array | null,
  ) {
    this.fds = nativeInt32Array(request.stdio.length);
    const guarded = (request.flags & SpawnFlag.pdeathsig) !== 0;
    this.leaf = request.tree ? acquireLeaf(guarded) : null;
    // The guardian watches the leaf from before the spawn, not from its adoption: by
    // then (later still with spawnAsync) the tree may have forked, and a SIGKILL of this
    // process in between would leave the forks running.
    this.#unguard =
      this.leaf && guarded ? guardTree(0, { mechanism: 'cgroup', cgroup: this.leaf.path }) : null;
    this.#flags =
      request.tree && !this.leaf ? request.flags | SpawnFlag.processGroup : request.flags;
  }

  /** Calls the native `spawn` or `spawnAsync` (the arguments of `nativeRequest`, no array). */
  start<R>(call: (...args: Parameters<NativeBinding['spawn']>) => R): R {
    const r = this.request;
    return call(
      r.file,
      joinNul(r.argv),
      r.env,
      r.path,
      r.cwd,
      r.stdio,
      this.#flags,
      r.uid,
      r.gid,
      this.fds,
      this.key,
      this.leaf ?? undefined,
    );
  }

  /**
   * The spawn failed: gives back what it held; returns the error to throw, or
   * the request to try again with (the parent's environment went stale).
   */
  failed(error: unknown): { retry: Request } | { error: unknown } {
    this.release();
    const retry = retryWithFreshEnv(this.request, error);
    return retry ? { retry } : { error: toSpawnError(error, this.request) };
  }

  /** The child runs: wraps its handle and fds in a Subprocess. */
  adopt(pid: number | undefined): Subprocess {
    // No pid: the environment (a terminating worker) can no longer run JS.
    if (pid === undefined) {
      this.release();
      throw new Error('pidwatch: spawn() while the environment is shutting down');
    }
    const handle = new ProcessRef(this.key, pid);
    const { request, raw, fds } = this;
    let holdsFds = false;
    for (let fd = 0; fd < fds.length; fd++) if (fds[fd] >= 0) holdsFds = true;
    // (fds holds at least 0, 1 and 2: stdioCodes gives three codes or more)
    if (raw !== null) {
      for (let fd = 0; fd < 3; fd++) {
        raw[fd] = fds[fd];
        fds[fd] = -1;
      }
    }
    const tree = request.tree ? ownTree(handle, this.leaf) : null;
    const proc = new Subprocess(handle, openStreams(request.stdio, fds), request, tree);
    setExitTarget(this.id, proc);
    // Until here, the native handle closes the pipe ends if this JS stops (a Worker
    // terminated in between); from here on the streams (and raw's taker) own them.
    if (holdsFds) handle.claimFds();
    // PR_SET_PDEATHSIG reaches the leader only: the guardian kills the rest of the tree.
    if (tree && request.flags & SpawnFlag.pdeathsig)
      void proc.exited.then(this.#unguard ?? guardTree(proc.pid, tree));
    watchDeadlines(proc, request.timeout, request.signal);
    return proc;
  }

  private release(): void {
    dropExitId(this.id, true);
    this.#unguard?.();
    this.leaf?.release();
  }
}

function launch(request: Request, raw: Int32Array | null): Subprocess {
  const launching = new Launch(request, raw);
  let pid: number;
  try {
    pid = launching.start(native.spawn);
  } catch (error) {
    const failure = launching.failed(error);
    if ('retry' in failure) return launch(failure.retry, raw);
    throw failure.error;
  }
  return launching.adopt(pid);
}

function launchAsync<T>(
  request: Request,
  raw: Int32Array | null,
  started: (proc: Subprocess) => T,
): Promise<T> {
  const launching = new Launch(request, raw);
  // The exit of the child is delivered to the Subprocess that adopt() names for
  // it, so adopt() is the first reaction to the native promise: it runs before
  // any exit can be.
  return launching.start(native.spawnAsync).then(
    (pid) => started(launching.adopt(pid)),
    (error) => {
      const failure = launching.failed(error);
      if ('retry' in failure) return launchAsync(failure.retry, raw, started);
      throw failure.error;
    },
  );
}

function watchDeadlines(proc: Subprocess, timeout: number, signal: AbortSignal | undefined): void {
  if (timeout > 0) {
    proc.onCleanup(deadline(timeout, () => proc.terminate('timeout')));
  }
  if (signal) {
    if (signal.aborted) {
      proc.terminate('abort');
      return;
    }
    const onAbort = () => proc.terminate('abort');
    signal.addEventListener('abort', onAbort, { once: true });
    proc.onCleanup(() => signal.removeEventListener('abort', onAbort));
  }
}
