import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { filter, firstValueFrom, lastValueFrom, type Observable, take, tap, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { publishExit } from '../src/exits-hub.js';
import { type ExitStatus, SpawnError, spawn } from '../src/index.js';
import type { ProcessEvent } from '../src/rx/index.js';
import { exit$, exits$, run$, spawn$ } from '../src/rx/index.js';
import { waitFor } from './helpers/proc.js';

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** Waits for the exit of `pid` as pidwatch reports it. Subscribe before causing the exit. */
function exitOf(pid: number): Promise<ExitStatus> {
  return firstValueFrom(exits$.pipe(filter((status) => status.pid === pid)));
}

function events(source: Observable<ProcessEvent>): Promise<ProcessEvent[]> {
  return lastValueFrom(source.pipe(toArray()));
}

describe('exit$', () => {
  it('emits the exit once and completes, also for a late subscriber', async () => {
    const proc = spawn('sh', ['-c', 'exit 4'], { stdio: 'ignore' });
    const early = lastValueFrom(exit$(proc).pipe(toArray()));
    await proc.exited;
    const late = await lastValueFrom(exit$(proc).pipe(toArray()));
    expect(await early).toEqual(late);
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ pid: proc.pid, code: 4, signal: null });
  });

  it('rejects something that is not a process', () => {
    expect(() => exit$({} as any)).toThrow(TypeError);
  });
});

describe('spawn$', () => {
  it('emits spawn, the output, then exit after the output has ended, then completes', async () => {
    const seen = await events(spawn$('sh', ['-c', 'echo out; echo err >&2; exit 2']));
    expect(seen[0]).toEqual({ type: 'spawn', pid: expect.any(Number) });
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ type: 'exit', status: { code: 2 } });
    const text = (type: string) =>
      Buffer.concat(
        seen.filter((e) => e.type === type).map((e) => (e as { data: Buffer }).data),
      ).toString();
    expect(text('stdout')).toBe('out\n');
    expect(text('stderr')).toBe('err\n');
    expect(seen.filter((e) => e.type === 'exit')).toHaveLength(1);
  });

  it('is cold: two subscriptions spawn two processes', async () => {
    const source = spawn$('sh', ['-c', 'echo $$']);
    const [a, b] = await Promise.all([events(source), events(source)]);
    const pidOf = (list: ProcessEvent[]) => (list[0] as { pid: number }).pid;
    expect(pidOf(a)).not.toBe(pidOf(b));
    for (const list of [a, b]) {
      const out = list.find((e) => e.type === 'stdout') as { data: Buffer };
      expect(out.data.toString()).toBe(`${pidOf(list)}\n`);
      expect(list.at(-1)).toMatchObject({ type: 'exit', status: { pid: pidOf(list), code: 0 } });
    }
  });

  it('spawns nothing until subscribed', async () => {
    const seen: ExitStatus[] = [];
    const subscription = exits$.subscribe((status) => seen.push(status));
    spawn$('true');
    await lastValueFrom(spawn$('true'));
    subscription.unsubscribe();
    expect(seen).toHaveLength(1);
  });

  /** Subscribes, unsubscribes at the first event that `ready` accepts, and waits for the exit. */
  function unsubscribeWhen(
    source: Observable<ProcessEvent>,
    ready: (event: ProcessEvent) => boolean,
  ): Promise<ExitStatus> {
    return new Promise((resolve) => {
      let pid = 0;
      const subscription = source.subscribe((event) => {
        if (event.type === 'spawn') pid = event.pid;
        if (!ready(event)) return;
        const exited = exitOf(pid);
        queueMicrotask(() => subscription.unsubscribe());
        exited.then(resolve);
      });
    });
  }

  it('unsubscribing before the exit kills the process and still reaps it', async () => {
    const status = await unsubscribeWhen(spawn$('sleep', ['30']), (e) => e.type === 'spawn');
    expect(status.signal).toBe('SIGTERM');
    expect(alive(status.pid)).toBe(false);
  });

  it('unsubscribing escalates to SIGKILL after forceKillAfter', async () => {
    const source = spawn$('sh', ['-c', `trap '' TERM; echo ready; exec sleep 30`], {
      forceKillAfter: 200,
    });
    const status = await unsubscribeWhen(source, (e) => e.type === 'stdout');
    expect(status.signal).toBe('SIGKILL');
    expect(alive(status.pid)).toBe(false);
  });

  it('once unsubscribed and exited, its pipe ends close though a descendant holds the pipes', async () => {
    const source = spawn$('sh', ['-c', 'sleep 30 & echo $!; wait']);
    let sleeper = 0;
    const status = await unsubscribeWhen(source, (event) => {
      if (event.type !== 'stdout') return false;
      sleeper = Number(event.data.toString());
      return true;
    });
    try {
      expect(status.signal).toBe('SIGTERM');
      const held = readlinkSync(`/proc/${sleeper}/fd/1`); // pipe:[inode]
      const ours = () =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`) === held;
          } catch {
            return false;
          }
        });
      await waitFor(() => ours().length === 0, 'our end of the pipe to be closed');
      expect(alive(sleeper)).toBe(true); // outside the process pidwatch was asked to run
    } finally {
      process.kill(sleeper, 'SIGKILL');
    }
  });

  it('a spawn failure is an error notification carrying the SpawnError', async () => {
    const error = await lastValueFrom(spawn$('pidwatch-no-such-command-here')).catch((e) => e);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT' });
  });
});

describe('exits$', () => {
  it('sees every exit of a 200-process burst exactly once', async () => {
    const seen = new Map<number, number>();
    const subscription = exits$.subscribe((status) => {
      seen.set(status.pid, (seen.get(status.pid) ?? 0) + 1);
    });
    const procs = Array.from({ length: 200 }, () => spawn('true', [], { stdio: 'ignore' }));
    await Promise.all(procs.map((proc) => proc.exited));
    subscription.unsubscribe();
    for (const proc of procs) expect(seen.get(proc.pid)).toBe(1);
    expect(seen.size).toBe(200);
  });

  it('is hot: a subscriber sees the exits published while it is subscribed, no earlier', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    const status = (pid: number) => ({ pid }) as ExitStatus;
    scheduler.run(({ cold, expectObservable }) => {
      const values = { a: status(1), b: status(2), c: status(3) };
      cold('-a-b-c|', values).subscribe(publishExit);
      expectObservable(exits$, '--^-!').toBe('---b-', values);
      expectObservable(exits$, '^-----').toBe('-a-b-c', values);
    });
  });
});

describe('run$', () => {
  it('emits results in completion order, then completes', async () => {
    const results = await lastValueFrom(
      run$(
        [
          ['sh', '-c', 'sleep 0.3; echo slow'],
          ['echo', 'fast'],
        ],
        { concurrency: 2 },
      ).pipe(toArray()),
    );
    expect(results.map((r) => [r.index, r.stdout])).toEqual([
      [1, 'fast\n'],
      [0, 'slow\n'],
    ]);
  });

  it('unsubscribing stops the run and kills its processes', async () => {
    const exits: ExitStatus[] = [];
    const watcher = exits$.subscribe((status) => exits.push(status));
    const killed = firstValueFrom(exits$.pipe(take(3), toArray()));
    let emitted = 0;
    await new Promise<void>((resolve) => {
      const subscription = run$(
        Array.from({ length: 10 }, () => ['sleep', '30']),
        {
          concurrency: 3,
          onProgress: (p) => {
            if (p.running !== 3) return;
            setImmediate(() => {
              subscription.unsubscribe();
              resolve();
            });
          },
        },
      ).subscribe(() => emitted++);
    });
    const statuses = await killed;
    watcher.unsubscribe();
    expect(emitted).toBe(0);
    expect(statuses.map((s) => s.signal)).toEqual(['SIGTERM', 'SIGTERM', 'SIGTERM']);
    for (const status of statuses) expect(alive(status.pid)).toBe(false);
    expect(exits).toHaveLength(3);
  });

  it('a bad option is an error notification', async () => {
    const error = await lastValueFrom(run$([], { retries: -1 }).pipe(tap(() => {}))).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });
});
