import type { Readable } from 'node:stream';
import { finished } from 'node:stream';
import { Observable } from 'rxjs';
import { terminate } from '../runner/terminate.js';
import { spawnAsync } from '../spawn.js';
import type { Subprocess } from '../subprocess.js';
import type { ExitStatus, SpawnOptions } from '../types.js';

export type ProcessEvent =
  | { type: 'spawn'; pid: number }
  | { type: 'stdout' | 'stderr'; data: Buffer }
  | { type: 'exit'; status: ExitStatus };

function ended(stream: Readable | null): Promise<void> {
  if (stream === null) return Promise.resolve();
  return new Promise((resolve) => finished(stream, () => resolve()));
}

/**
 * Cold: each subscription spawns its own process (off the event loop, as `spawnAsync`) and
 * emits `spawn`, its output chunks, and `exit` once the process has exited and its piped
 * output has ended, then completes. A piped stdin is closed at once. Unsubscribing before
 * the exit sends `killSignal` (SIGKILL after `forceKillAfter`), at once or as soon as the
 * spawn completes; pidwatch still reaps the process, then closes its ends of the pipes.
 */
export function spawn$(
  file: string,
  args?: readonly string[],
  options?: SpawnOptions,
): Observable<ProcessEvent> {
  return new Observable<ProcessEvent>((subscriber) => {
    let proc: Subprocess | null = null;
    let exited = false;
    let unsubscribed = false;
    const stop = (running: Subprocess) => {
      // Keep draining, so a child that writes while it shuts down is not blocked on a full pipe;
      // once it has exited, close our ends: a descendant may hold the pipes for long after.
      const streams = [running.stdout, running.stderr];
      for (const stream of streams) {
        stream?.removeAllListeners('data');
        stream?.resume();
      }
      void running.exited.then(() => {
        for (const stream of streams) stream?.destroy();
      });
      terminate(running, options?.killSignal ?? 'SIGTERM', options?.forceKillAfter ?? 5000);
    };
    spawnAsync(file, args ?? [], options).then(
      (spawned) => {
        proc = spawned;
        if (spawned.stdin !== null) {
          spawned.stdin.on('error', () => {});
          spawned.stdin.end();
        }
        if (unsubscribed) {
          stop(spawned);
          return;
        }
        subscriber.next({ type: 'spawn', pid: spawned.pid });
        const forward = (type: 'stdout' | 'stderr') => (data: Buffer) =>
          subscriber.next({ type, data });
        spawned.stdout?.on('data', forward('stdout'));
        spawned.stderr?.on('data', forward('stderr'));
        Promise.all([spawned.exited, ended(spawned.stdout), ended(spawned.stderr)]).then(
          ([status]) => {
            exited = true;
            subscriber.next({ type: 'exit', status });
            subscriber.complete();
          },
        );
      },
      (error) => subscriber.error(error),
    );
    return () => {
      unsubscribed = true;
      if (proc !== null && !exited) stop(proc);
    };
  });
}
