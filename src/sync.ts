// execSync / spawnSync: a child run to its end on the calling thread, natively
// (native/sync.cc), without running the event loop.
import { ExitError, invalidValue, toSpawnError } from './errors.js';
import { guardTree } from './guardian.js';
import { type NativeLeaf, native, SpawnFlag } from './native.js';
import { nativeRequest, normalizeSpawn, spawnWithFreshEnv } from './options.js';
import { hasFailed, splitExecOptions, toOutput } from './output.js';
import { commandText } from './shell.js';
import { signalName } from './signals.js';
import { resourceUsageAt } from './status.js';
import { acquireLeaf } from './tree.js';
import type { ExecOptions, ExitStatus, Output, TreeStatus } from './types.js';

const orNull = (value: number | undefined) => (value === undefined || value < 0 ? null : value);

/** The tree's status once the child has exited and its leftovers were killed. */
function treeStatus(leaf: NativeLeaf | null, leftovers: number): TreeStatus {
  if (leaf === null) {
    return {
      mechanism: 'pgroup',
      leftovers,
      userCPUTime: null,
      systemCPUTime: null,
      memoryPeakBytes: null,
    };
  }
  // The leaf is empty by now: settle() answers at once, and gives the leaf back.
  const figures = leaf.settle(() => {}) ?? [];
  return {
    mechanism: 'cgroup',
    leftovers,
    userCPUTime: orNull(figures[1]),
    systemCPUTime: orNull(figures[2]),
    memoryPeakBytes: orNull(figures[3]),
  };
}

function run(file: unknown, args: unknown, options: unknown, throwOnFailure: boolean): Output {
  if (options === undefined && args !== null && typeof args === 'object' && !Array.isArray(args)) {
    options = args;
    args = undefined;
  }
  const { spawnOptions, settings } = splitExecOptions(options);
  if (spawnOptions.signal !== undefined)
    throw invalidValue(
      'options.signal',
      'cannot be used with a sync call: nothing runs to abort it while the thread waits',
      spawnOptions.signal,
    );
  const request = normalizeSpawn(file, args, spawnOptions);
  // tree: true: a cgroup leaf of its own, else the process group it leads.
  const leaf = request.tree ? acquireLeaf((request.flags & SpawnFlag.pdeathsig) !== 0) : null;
  const flags = request.tree && !leaf ? request.flags | SpawnFlag.processGroup : request.flags;
  // PR_SET_PDEATHSIG reaches the leader only: the guardian kills the rest of a
  // cgroup tree (its leaf is known before the spawn; a process group's id is not,
  // and no JS runs until the child has exited).
  const unguard =
    leaf && flags & SpawnFlag.pdeathsig
      ? guardTree(0, { mechanism: 'cgroup', cgroup: leaf.path })
      : () => {};
  let result: ReturnType<typeof native.spawnSync>;
  try {
    result = spawnWithFreshEnv(request, (attempt) =>
      native.spawnSync(
        ...nativeRequest({ ...attempt, flags }),
        leaf,
        settings.input ?? null,
        request.timeout,
        request.killSignal,
        request.forceKillAfter === false ? -1 : request.forceKillAfter,
        settings.maxBuffer,
        settings.all,
      ),
    );
  } catch (error) {
    unguard();
    leaf?.release();
    throw toSpawnError(error, request);
  }
  const status: ExitStatus = {
    pid: result.pid,
    code: result.code < 0 ? null : result.code,
    signal: signalName(result.signal),
    coreDumped: result.coreDumped,
    timedOut: result.timedOut,
    aborted: false,
    durationMs: result.durationMs,
    resourceUsage: result.usage ? resourceUsageAt(result.usage, 0) : null,
    tree: request.tree ? treeStatus(leaf, result.leftovers) : null,
  };
  unguard();
  const output = toOutput(
    status,
    {
      stdout: result.stdout,
      stderr: result.stderr,
      all: result.all ?? undefined,
      isMaxBuffer: result.overflowed,
    },
    settings,
  );
  if (throwOnFailure && settings.reject && hasFailed(output)) {
    const argv = (args as readonly string[] | undefined) ?? [];
    throw new ExitError(
      commandText(file as string, argv, spawnOptions.shell),
      status,
      output,
      output.isMaxBuffer,
    );
  }
  return output;
}

/**
 * Runs a command to its end, blocking the calling thread (no event loop runs:
 * usable in a worker and in a `process.on('exit')` handler), and returns its
 * Output as `exec()` resolves. Throws ExitError as `exec()` rejects (a non-zero
 * code, a signal, a timeout or maxBuffer, unless `reject: false`), SpawnError or
 * TypeError when it could not start.
 */
export function execSync(file: string, options?: ExecOptions): Output;
export function execSync(file: string, args?: readonly string[], options?: ExecOptions): Output;
export function execSync(file: string, args?: unknown, options?: unknown): Output {
  return run(file, args, options, true);
}

/**
 * As `execSync()`, but a command that ran is never an exception, whatever its
 * code, signal, timeout or maxBuffer: they are in the Output. A command that could
 * not start still throws SpawnError (there is no status to return).
 */
export function spawnSync(file: string, options?: ExecOptions): Output;
export function spawnSync(file: string, args?: readonly string[], options?: ExecOptions): Output;
export function spawnSync(file: string, args?: unknown, options?: unknown): Output {
  return run(file, args, options, false);
}
