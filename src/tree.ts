// Process trees (`tree: true`): the ProcessTree a Subprocess owns beside its
// pidfd. 'cgroup': the child starts in a cgroup v2 leaf of its own (native
// tree.cc, cgroup.cc); 'pgroup': the child leads a new process group.
import { unguardLeaf } from './guardian.js';
import { type NativeLeaf, type NativeTreeProcess, native } from './native.js';
import { toSignalNumber } from './signals.js';
import type { ProcessTree, TreeStatus } from './types.js';

/** What a Subprocess needs of its tree once the leader has been reaped. */
export interface OwnedTree extends ProcessTree {
  /**
   * Kills what is left of the tree and gives its status: returned at once when
   * the tree is empty already, else passed to `done` once it is. `leftovers`: what
   * the exit's row counted (a process group's members killed at the leader's exit).
   */
  settle(done: (status: TreeStatus) => void, leftovers: number): TreeStatus | undefined;
}

/**
 * The cgroup leaf for a new tree, or null when the tree is to be a process group:
 * no writable cgroup v2 directory, or `PIDWATCH_CGROUP=0` (read at each spawn).
 * `guarded`: the tree dies with this process (the guardian registers it).
 */
export function acquireLeaf(guarded = false): NativeLeaf | null {
  if (process.env.PIDWATCH_CGROUP === '0' || cgroupDirs() === null) return null;
  const leaf = native.treeLeaf(cpuWanted);
  // No leaf could be made (cgroup.max.descendants, a directory turned read-only):
  // this tree falls back to a process group.
  if (typeof leaf !== 'object') return null;
  // A pooled leaf may still be registered from a guarded tree before.
  if (!guarded) unguardLeaf(leaf.path);
  return leaf;
}

let cpuWanted = true;

/**
 * @internal For a program that never reads its trees' CPU times (`pidwatch run` without
 * --tree-cpu): cpu.stat is then not read per tree, and `userCPUTime` and `systemCPUTime`
 * are null.
 */
export function skipTreeCpu(): void {
  cpuWanted = false;
}

/**
 * @internal The directory holding every tree of this process (`cgroup.kill`
 * there kills them all), or null when trees are process groups.
 */
export function cgroupParentDir(): string | null {
  return cgroupDirs()?.[1] ?? null;
}

let dirs: [string, string] | null | undefined;

/** [root, this process's directory], probed once (as the native side does). */
export function cgroupDirs(): [string, string] | null {
  if (dirs === undefined) dirs = native.cgroupDirs();
  return dirs;
}

/** The longest a 'pgroup' tree's `exited` waits for its killed leftovers to end. */
const GROUP_WAIT_MS = 1000;

const orNull = (value: number) => (value < 0 ? null : value);

class CgroupTree implements OwnedTree {
  readonly mechanism = 'cgroup' as const;
  readonly cgroup: string;
  #leaf: NativeLeaf | null;

  constructor(leaf: NativeLeaf) {
    this.cgroup = leaf.path;
    this.#leaf = leaf;
  }

  pids(): number[] {
    return this.#leaf?.pids() ?? [];
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const number = toSignalNumber(signal);
    return this.#leaf !== null && this.#leaf.kill(number) === 0;
  }

  settle(done: (status: TreeStatus) => void): TreeStatus | undefined {
    const leaf = this.#leaf;
    if (leaf === null) return undefined;
    const toStatus = ([leftovers, user, system, peak]: number[]): TreeStatus => {
      this.#leaf = null;
      return {
        mechanism: 'cgroup',
        leftovers,
        userCPUTime: orNull(user),
        systemCPUTime: orNull(system),
        memoryPeakBytes: orNull(peak),
      };
    };
    const now = leaf.settle((figures) => done(toStatus(figures)));
    return now && toStatus(now);
  }
}

class PgroupTree implements OwnedTree {
  readonly mechanism = 'pgroup' as const;
  readonly cgroup = null;
  readonly #leader: NativeTreeProcess;
  #ended = false;

  constructor(leader: NativeTreeProcess) {
    this.#leader = leader;
  }

  pids(): number[] {
    return this.#ended ? [] : native.pgroupMembers(this.#leader.pid);
  }

  /** kill(-pgid) while the leader is unreaped, so the group ID is still its own. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const number = toSignalNumber(signal);
    return !this.#ended && this.#leader.killGroup(number) === 0;
  }

  /**
   * The leftovers were sent SIGKILL just before the leader was reaped. A process
   * group gives no event when it empties, so their end is checked in /proc with
   * a backoff from 1 ms, for at most GROUP_WAIT_MS (SIGKILL takes a millisecond
   * or so, longer only for a process stuck in uninterruptible sleep).
   */
  settle(done: (status: TreeStatus) => void, leftovers: number): TreeStatus | undefined {
    this.#ended = true;
    const status: TreeStatus = {
      mechanism: 'pgroup',
      leftovers,
      userCPUTime: null,
      systemCPUTime: null,
      memoryPeakBytes: null,
    };
    if (status.leftovers === 0) return status;
    const pgid = this.#leader.pid;
    const deadline = performance.now() + GROUP_WAIT_MS;
    let delay = 1;
    const check = () => {
      if (native.pgroupMembers(pgid).length === 0 || performance.now() > deadline) {
        done(status);
        return;
      }
      setTimeout(check, delay);
      delay = Math.min(delay * 2, 50);
    };
    setTimeout(check, 0);
    return undefined;
  }
}

/** The tree of a child just spawned with `leaf` (null: a process group). */
export function ownTree(leader: NativeTreeProcess, leaf: NativeLeaf | null): OwnedTree {
  return leaf ? new CgroupTree(leaf) : new PgroupTree(leader);
}
