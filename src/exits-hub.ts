import type { ExitStatus } from './types.js';

type Listener = (status: ExitStatus) => void;

const listeners = new Set<Listener>();

/** Subscribes to every exit pidwatch observes in this thread; returns the unsubscribe. */
export function onAnyExit(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Called once per observed exit, before `exited` resolves. */
export function publishExit(status: ExitStatus): void {
  if (listeners.size === 0) return;
  for (const listener of listeners) listener(status);
}
