// Wake-ups that are not exits: a child traced by strace (its tracer sees the exit
// first) and a child stopped and continued. Each reports exactly one exit, with
// the right status, and only once it has really ended.
import { execFileSync, spawn as spawnChild } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ExitStatus, type Subprocess, spawn, watch } from '../../src/index.js';
import { recordExits } from '../helpers/exits.js';
import { procStat, trackChildren, waitFor } from '../helpers/proc.js';

const track = trackChildren();
const seen = recordExits();

function haveStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function tracerOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^TracerPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
}

/** A shell that reads one line from its stdin, runs a command, and exits `code`. */
function waitingShell(code: number): Subprocess {
  return track(
    spawn('/bin/sh', ['-c', `read line; /bin/true; exit ${code}`], {
      stdio: ['pipe', 'ignore', 'inherit'],
    }),
  );
}

/** Lets every exit that is already on its way arrive: another child's full round trip. */
async function settle(): Promise<void> {
  await track(spawn('/bin/true', [], { stdio: 'ignore' })).exited;
  await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Tracks whether a promise has settled yet. */
function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  return () => settled;
}

function exitsOf(pid: number): ExitStatus[] {
  return seen.filter((status) => status.pid === pid);
}

describe.skipIf(!haveStrace())('a child traced by strace -f', () => {
  it('reports one exit with its code, after the tracer let go of it', async () => {
    const proc = waitingShell(3);
    const strace = spawnChild('strace', ['-f', '-o', '/dev/null', '-p', String(proc.pid)], {
      stdio: 'ignore',
    });
    const straceDone = new Promise((resolve) => strace.once('exit', resolve));
    await waitFor(() => tracerOf(proc.pid) === strace.pid, 'strace to attach');
    const exited = settledFlag(proc.exited);
    await settle();
    expect(exited()).toBe(false);

    proc.stdin!.end('go\n');
    const status = await proc.exited;
    expect(status).toMatchObject({ code: 3, signal: null });
    await straceDone;
    await settle();
    expect(exitsOf(proc.pid)).toEqual([status]);
  });

  it('reports one exit to a watch() of the traced child, too', async () => {
    const proc = waitingShell(4);
    const watched = watch(proc.pid);
    const strace = spawnChild('strace', ['-f', '-o', '/dev/null', '-p', String(proc.pid)], {
      stdio: 'ignore',
    });
    const straceDone = new Promise((resolve) => strace.once('exit', resolve));
    await waitFor(() => tracerOf(proc.pid) === strace.pid, 'strace to attach');
    proc.stdin!.end('go\n');
    expect(await watched.exited).toMatchObject({ code: 4, signal: null });
    expect((await proc.exited).code).toBe(4);
    await straceDone;
  });

  it('reports SIGKILL once when killed while traced', async () => {
    const proc = waitingShell(0);
    const strace = spawnChild('strace', ['-f', '-o', '/dev/null', '-p', String(proc.pid)], {
      stdio: 'ignore',
    });
    const straceDone = new Promise((resolve) => strace.once('exit', resolve));
    await waitFor(() => tracerOf(proc.pid) === strace.pid, 'strace to attach');
    expect(proc.kill('SIGKILL')).toBe(true);
    const status = await proc.exited;
    expect(status).toMatchObject({ code: null, signal: 'SIGKILL' });
    await straceDone;
    await settle();
    expect(exitsOf(proc.pid)).toEqual([status]);
  });
});

describe('a child stopped with SIGSTOP and continued with SIGCONT', () => {
  it('reports no exit while stopped, then one exit with its code', async () => {
    const proc = waitingShell(5);
    const exited = settledFlag(proc.exited);
    for (let round = 0; round < 10; round++) {
      expect(proc.kill('SIGSTOP')).toBe(true);
      await waitFor(() => procStat(proc.pid)?.state === 'T', 'the child to stop');
      await settle();
      expect(exited()).toBe(false);
      expect(proc.exitCode).toBeNull();
      expect(proc.kill('SIGCONT')).toBe(true);
      await waitFor(() => procStat(proc.pid)?.state !== 'T', 'the child to continue');
    }
    proc.stdin!.end('go\n');
    const status = await proc.exited;
    expect(status).toMatchObject({ code: 5, signal: null });
    await settle();
    expect(exitsOf(proc.pid)).toEqual([status]);
  });

  it('reports SIGKILL once when killed while stopped', async () => {
    const proc = waitingShell(0);
    const watched = watch(proc.pid);
    proc.kill('SIGSTOP');
    await waitFor(() => procStat(proc.pid)?.state === 'T', 'the child to stop');
    proc.kill('SIGKILL');
    const status = await proc.exited;
    expect(status).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect((await watched.exited).signal).toBe('SIGKILL');
    await settle();
    expect(exitsOf(proc.pid)).toEqual([status]);
  });
});
