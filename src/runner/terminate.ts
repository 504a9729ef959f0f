import { deadline } from '../timers.js';
import type { ExitStatus } from '../types.js';

/** What terminating needs of a process: a Subprocess fits. */
export interface Killable {
  readonly exited: Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals | number): boolean;
  /** With `tree: true`, the signals go to the whole tree. */
  readonly tree?: { kill(signal?: NodeJS.Signals | number): boolean } | null;
}

/**
 * Sends `killSignal`, then SIGKILL after `forceKillAfter` ms unless the process is gone by
 * then: to its whole tree when it has one. Returns at once; the caller waits on `exited`.
 * Signals nothing once reaped (or the tree is empty).
 */
export function terminate(
  proc: Killable,
  killSignal: NodeJS.Signals | number,
  forceKillAfter: number | false,
): void {
  const target = proc.tree ?? proc;
  if (!target.kill(killSignal) || forceKillAfter === false) return;
  const cancel = deadline(forceKillAfter, () => target.kill('SIGKILL'), true);
  void proc.exited.then(cancel);
}
