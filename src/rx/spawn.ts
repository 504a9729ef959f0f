import type { Readable } from 'node:stream';
import { finished } from 'node:stream';
import { Observable } from 'rxjs';
import { terminate } from '../runner/terminate.js';
import { spawn } from '../spawn.js';
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
 * Cold: each subscription spawns its own process and emits `spawn`, its output chunks, and
 * `exit` once the process has exited and its piped output has ended, then completes. A piped
 * stdin is closed at once. Unsubscribing before the exit sends `killSignal` (SIGKILL after
 * `forceKillAfter`); pidwatch still reaps the process.
 */
export function spawn$(
  file: string,
  args?: readonly string[],
  options?: SpawnOptions,
): Observable<ProcessEvent> {
  return new Observable<ProcessEvent>((subscriber) => {
    let proc: Subprocess;
    try {
      proc = spawn(file, args ?? [], options);
    } catch (error) {
      subscriber.error(error);
      return;
    }
    let exited = false;
    subscriber.next({ type: 'spawn', pid: proc.pid });
    if (proc.stdin !== null) {
      proc.stdin.on('error', () => {});
      proc.stdin.end();
    }
    const forward = (type: 'stdout' | 'stderr') => (data: Buffer) =>
      subscriber.next({ type, data });
    proc.stdout?.on('data', forward('stdout'));
    proc.stderr?.on('data', forward('stderr'));
    Promise.all([proc.exited, ended(proc.stdout), ended(proc.stderr)]).then(([status]) => {
      exited = true;
      subscriber.next({ type: 'exit', status });
      subscriber.complete();
    });
    return () => {
      if (exited) return;
      // Keep draining, so a child that writes while it shuts down is not blocked on a full pipe.
      for (const stream of [proc.stdout, proc.stderr]) {
        stream?.removeAllListeners('data');
        stream?.resume();
      }
      terminate(proc, options?.killSignal ?? 'SIGTERM', options?.forceKillAfter ?? 5000);
    };
  });
}
