import type { ExitStatus } from '../types.js';

/** What terminating needs of a process: a Subprocess fits. */
export interface Killable {
  readonly exited: Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals | number): boolean;
}

/**
 * Sends `killSignal`, then SIGKILL after `forceKillAfter` ms unless the process is gone by
 * then. Returns at once; the caller waits on `exited`. Signals nothing once reaped.
 */
export function terminate(
  proc: Killable,
  killSignal: NodeJS.Signals | number,
  forceKillAfter: number | false,
): void {
  if (!proc.kill(killSignal) || forceKillAfter === false) return;
  const timer = setTimeout(() => proc.kill('SIGKILL'), forceKillAfter);
  void proc.exited.then(() => clearTimeout(timer));
}
