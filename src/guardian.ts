// The guardian: one small process (native/guardian.c) per pidwatch process that
// kills the trees started with `killOnParentExit` when this process ends, even by
// SIGKILL, which no code of ours survives to handle. It is started on first use,
// in a session of its own, and told over a pipe which trees to kill.
import type { Socket } from 'node:net';
import { builtProgram } from './binary.js';
import { spawn } from './spawn.js';

/** What the guardian needs to know of a tree. */
export interface GuardedTree {
  mechanism: 'cgroup' | 'pgroup';
  /** The leaf's path, for a cgroup tree. */
  cgroup: string | null;
}

/** Lines of the live registrations, counted (a pooled leaf may be reused). */
const registered = new Map<string, number>();
/**
 * Leaves whose trees have ended but which the guardian still holds: a leaf goes back
 * to a pool and most often serves the next guarded tree, so its `k` line and the next
 * `K` line are saved (two writes and two wake-ups of the guardian per job). Killing
 * an empty leaf at the parent's end does nothing; a leaf taken by a tree that is not
 * to be killed is released first (`unguardLeaf`).
 */
const idle = new Set<string>();
/** At most this many idle leaves stay registered: the oldest is released past it. */
const IDLE_MAX = 32;
let channel: Socket | null = null;
let missingWarned = false;

function warnNoGuardian(why: string): null {
  if (!missingWarned) {
    missingWarned = true;
    process.emitWarning(
      `pidwatch-guardian ${why}: trees with killOnParentExit survive a SIGKILLed parent`,
      { code: 'PIDWATCH_NO_GUARDIAN' },
    );
  }
  return null;
}

function start(): Socket | null {
  const program = builtProgram('pidwatch-guardian');
  if (program === null) return warnNoGuardian('is missing');
  let proc: ReturnType<typeof spawn>;
  try {
    proc = spawn(program, [String(process.pid)], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch (error) {
    // Out of fds or processes, or a binary this machine cannot run (the arm64
    // one under QEMU user mode without binfmt_misc): the spawn it guards goes on.
    return warnNoGuardian(`cannot start (${(error as Error).message})`);
  }
  proc.unref();
  const pipe = proc.stdin as Socket;
  pipe.unref();
  // A guardian that died (killed by hand) is replaced at the next registration.
  pipe.on('error', () => {});
  void proc.exited.then(() => {
    if (channel === pipe) channel = null;
  });
  channel = pipe;
  idle.clear();
  // A replacement learns what its predecessor was guarding.
  for (const line of registered.keys()) pipe.write(line);
  return pipe;
}

function send(line: string): void {
  (channel ?? start())?.write(line);
}

function lineOf(pid: number, tree: GuardedTree): string | null {
  if (tree.mechanism === 'cgroup') {
    // One line per message: a path holding a newline cannot be told apart.
    return tree.cgroup && !tree.cgroup.includes('\n') ? ` ${tree.cgroup}\n` : null;
  }
  return ` ${pid}\n`;
}

/**
 * Has the guardian kill the tree led by `pid` if this process ends first. Returns
 * the release to call once the tree is empty.
 */
export function guardTree(pid: number, tree: GuardedTree): () => void {
  const body = lineOf(pid, tree);
  if (body === null) return () => {};
  const [add, remove] = tree.mechanism === 'cgroup' ? ['K', 'k'] : ['G', 'g'];
  const line = add + body;
  const count = registered.get(line) ?? 0;
  registered.set(line, count + 1);
  if (count === 0 && !idle.delete(line)) send(line);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (registered.get(line) ?? 1) - 1;
    if (left > 0) {
      registered.set(line, left);
      return;
    }
    registered.delete(line);
    if (add === 'G' || channel === null) {
      // A process group ID may soon name someone else's group: forgotten at once.
      channel?.write(remove + body);
      return;
    }
    idle.add(line);
    if (idle.size > IDLE_MAX) {
      const [oldest] = idle;
      idle.delete(oldest);
      channel.write(`k${oldest.slice(1)}`);
    }
  };
}

/** A leaf about to hold a tree that must outlive this process: the guardian forgets it. */
export function unguardLeaf(cgroup: string): void {
  const line = `K ${cgroup}\n`;
  if (idle.delete(line)) channel?.write(`k ${cgroup}\n`);
}
