import { toSpawnError } from './errors.js';
import { guardTree } from './guardian.js';
import { deliver, native, SpawnFlag } from './native.js';
import { nativeRequest, normalizeSpawn } from './options.js';
import { openStreams } from './stdio.js';
import { Subprocess } from './subprocess.js';
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

function launch(request: ReturnType<typeof normalizeSpawn>, raw: Int32Array | null): Subprocess {
  let proc: Subprocess | undefined;
  const fds = new Int32Array(request.stdio.length);
  let handle: ReturnType<typeof native.spawn> | undefined;
  const leaf = request.tree ? acquireLeaf() : null;
  const flags = request.tree && !leaf ? request.flags | SpawnFlag.processGroup : request.flags;
  try {
    handle = native.spawn(
      ...nativeRequest({ ...request, flags }),
      fds,
      () => deliver(() => proc!.onExit()),
      leaf ?? undefined,
    );
  } catch (error) {
    leaf?.release();
    throw toSpawnError(error, request);
  }
  // No handle: the environment (a terminating worker) can no longer run JS.
  if (!handle) {
    leaf?.release();
    throw new Error('pidwatch: spawn() while the environment is shutting down');
  }
  const parentFds = Array.from(fds);
  if (raw !== null) {
    for (let fd = 0; fd < 3; fd++) {
      raw[fd] = parentFds[fd] ?? -1;
      parentFds[fd] = -1;
    }
  }
  const tree = request.tree ? ownTree(handle, leaf) : null;
  proc = new Subprocess(handle, openStreams(request.stdio, parentFds), request, tree);
  // Until here, the native handle closes the pipe ends if this JS stops (a Worker
  // terminated in between); from here on the streams (and raw's taker) own them.
  handle.claimFds();
  // PR_SET_PDEATHSIG reaches the leader only: the guardian kills the rest of the tree.
  if (tree && request.flags & SpawnFlag.pdeathsig) void proc.exited.then(guardTree(proc.pid, tree));
  watchDeadlines(proc, request.timeout, request.signal);
  return proc;
}

function watchDeadlines(proc: Subprocess, timeout: number, signal: AbortSignal | undefined): void {
  if (timeout > 0) {
    const timer = setTimeout(() => proc.terminate('timeout'), timeout);
    timer.unref();
    proc.onCleanup(() => clearTimeout(timer));
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
