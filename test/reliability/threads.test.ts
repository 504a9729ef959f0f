// Multi-threaded children: the leader thread exits while another runs on, or a
// non-leader thread calls execve. The exit is reported once the process really
// ends, never at the leader thread's own end.
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { capabilities, spawn, watch } from '../../src/index.js';
import {
  compileFixture,
  haveCompiler,
  reliabilityFixture,
} from '../fixtures/reliability/support.js';
import { recordExits } from '../helpers/exits.js';
import { isSigchldMode } from '../helpers/mode.js';
import { procStat, runNode, trackChildren, waitFor, waitForLine } from '../helpers/proc.js';

const track = trackChildren();
const seen = recordExits();

async function settle(): Promise<void> {
  await track(spawn('/bin/true', [], { stdio: 'ignore' })).exited;
  await new Promise((resolve) => setTimeout(resolve, 30));
}

function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  const mark = () => {
    settled = true;
  };
  promise.then(mark, mark);
  return () => settled;
}

/** What a watch() of a non-child can learn of its code: the kernel tells it only
 * with PIDFD_INFO_EXIT; without pidfds the status is gone with the reap. */
/**
 * The codes a watch() of a non-child may report: the kernel's exact one in pidfd mode;
 * without pidfds, the one a poll read from the zombie in /proc, or null when the parent
 * reaped it between two polls.
 */
function watchCodes(code: number): Array<number | null> {
  return !isSigchldMode() && capabilities().pidfdInfoExit ? [code] : [code, null];
}

/** The leader's own /proc entry shows it dead while the process lives on. */
function leaderGone(pid: number): boolean {
  const state = procStat(pid)?.state;
  return state === 'Z' || state === 'X';
}

function startNonChild(file: string, args: string[]): { child: ChildProcess; done: Promise<void> } {
  const child = spawnChild(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, done };
}

describe.skipIf(!haveCompiler())('the leader thread exits first (pthread_exit in main)', () => {
  it('a Subprocess reports the exit when the last thread ends', async () => {
    const proc = track(
      spawn(compileFixture('leader-exit'), [], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    const exited = settledFlag(proc.exited);
    await waitForLine(proc.stdout!, 'ready');
    expect(leaderGone(proc.pid)).toBe(true);
    await settle();
    expect(exited()).toBe(false);
    expect(proc.kill(0)).toBe(true);

    proc.stdin!.end();
    const status = await proc.exited;
    expect(status).toMatchObject({ code: 7, signal: null });
    await settle();
    expect(seen.filter((s) => s.pid === proc.pid)).toEqual([status]);
  });

  it('a watch() of a non-child reports the exit when the last thread ends', async () => {
    const { child, done } = startNonChild(compileFixture('leader-exit'), []);
    const pid = child.pid!;
    const watched = watch(pid);
    const exited = settledFlag(watched.exited);
    await waitForLine(child.stdout as Readable, 'ready');
    await waitFor(() => leaderGone(pid), 'the leader thread to end');
    await settle();
    expect(exited()).toBe(false);
    expect(watched.kill(0)).toBe(true);

    child.stdin!.end();
    const status = await watched.exited;
    expect(watchCodes(7)).toContain(status.code);
    await done;
    expect(child.exitCode).toBe(7);
  });
});

describe.skipIf(!haveCompiler())('a non-leader thread calls execve', () => {
  const script = 'echo ready; read line; exit 9';

  it('a Subprocess reports the exec’d program’s exit, not the old leader’s', async () => {
    const proc = track(
      spawn(compileFixture('thread-exec'), ['/bin/sh', '-c', script], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const exited = settledFlag(proc.exited);
    await waitForLine(proc.stdout!, 'ready');
    expect(procStat(proc.pid)?.comm).toBe('sh');
    await settle();
    expect(exited()).toBe(false);
    expect(proc.kill(0)).toBe(true);

    proc.stdin!.end('go\n');
    const status = await proc.exited;
    expect(status).toMatchObject({ code: 9, signal: null });
    await settle();
    expect(seen.filter((s) => s.pid === proc.pid)).toEqual([status]);
  });

  it('a watch() of a non-child reports the exec’d program’s exit', async () => {
    const { child, done } = startNonChild(compileFixture('thread-exec'), ['/bin/sh', '-c', script]);
    const pid = child.pid!;
    const watched = watch(pid);
    const exited = settledFlag(watched.exited);
    await waitForLine(child.stdout as Readable, 'ready');
    await settle();
    expect(exited()).toBe(false);
    expect(watched.kill(0)).toBe(true);

    child.stdin!.end('go\n');
    expect(watchCodes(9)).toContain((await watched.exited).code);
    await done;
    expect(child.exitCode).toBe(9);
  });

  it('a Subprocess killed during the exec reports one exit', async () => {
    for (let round = 0; round < 10; round++) {
      const proc = track(
        spawn(compileFixture('thread-exec'), ['/bin/sleep', '60'], { stdio: 'ignore' }),
      );
      proc.kill('SIGKILL');
      const status = await proc.exited;
      expect(status).toMatchObject({ code: null, signal: 'SIGKILL' });
    }
    await settle();
    expect(new Set(seen.map((s) => s.pid)).size).toBe(seen.length);
  });
});

describe('another thread changes the environment while children are spawned', () => {
  it('each child gets an intact copy of the environment (Worker with SHARE_ENV)', async () => {
    // Handed the live environ, about half of these spawns failed with EFAULT from
    // execve or crashed the parent: setenv in the worker freed the array under them.
    const result = await runNode([reliabilityFixture('env-race.mjs'), '300'], {
      timeout: 60_000,
    });
    expect(result.stderr).toBe('');
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(JSON.parse(result.stdout)).toEqual({ spawns: 300, bad: 0, first: null });
  });
});
