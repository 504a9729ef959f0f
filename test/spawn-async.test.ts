// spawnAsync: spawn with the clone and the wait for execve off the event loop.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SpawnError, spawn, spawnAsync } from '../src/index.js';
import {
  describeFds,
  fdCount,
  fixture,
  procStat,
  runNode,
  trackChildren,
  waitFor,
} from './helpers/proc.js';

const track = trackChildren();
const distIndex = new URL('../dist/index.js', import.meta.url).href;

async function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  let out = '';
  for await (const chunk of stream ?? []) out += chunk;
  return out;
}

describe('spawnAsync', () => {
  it('resolves with a Subprocess whose program is already running', async () => {
    const proc = track(await spawnAsync('sh', ['-c', 'echo "$0 $1"; read x; exit 4', 'a', 'b']));
    // execve is done by the time it resolves: the process runs sh, not a copy of Node.
    expect(procStat(proc.pid)?.comm).toBe('sh');
    expect(proc.pidfd === null || proc.pidfd >= 0).toBe(true);
    proc.stdin!.end('\n');
    expect(await text(proc.stdout)).toBe('a b\n');
    expect(await proc.exited).toMatchObject({ pid: proc.pid, code: 4, signal: null });
  });

  it('takes the same arguments as spawn: options without args, env, cwd, stdio', async () => {
    const proc = track(
      await spawnAsync('/bin/sh', {
        cwd: '/tmp',
        env: { PATH: '/usr/bin:/bin', GREETING: 'hi' },
        stdio: ['ignore', 'pipe', 'ignore'],
        argv0: 'sh',
      }),
    );
    expect(proc.stdin).toBeNull();
    const other = track(
      await spawnAsync('sh', ['-c', 'echo "$GREETING $(pwd)"'], {
        cwd: '/tmp',
        env: { PATH: '/usr/bin:/bin', GREETING: 'hi' },
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    expect(await text(other.stdout)).toBe('hi /tmp\n');
    expect((await proc.exited).code).toBe(0);
    expect((await other.exited).code).toBe(0);
  });

  it('rejects with the SpawnError spawn() throws, leaving no fd and no child', async () => {
    const before = fdCount();
    const missing = spawnAsync('pidwatch-no-such-program', ['x']);
    await expect(missing).rejects.toBeInstanceOf(SpawnError);
    await expect(missing).rejects.toMatchObject({
      code: 'ENOENT',
      errno: -2,
      syscall: 'execve',
      path: 'pidwatch-no-such-program',
      spawnargs: ['pidwatch-no-such-program', 'x'],
    });
    let thrown: unknown;
    try {
      spawn('/bin/true', [], { cwd: '/pidwatch/no/such/dir' });
    } catch (error) {
      thrown = error;
    }
    await expect(spawnAsync('/bin/true', [], { cwd: '/pidwatch/no/such/dir' })).rejects.toEqual(
      thrown,
    );
    await expect(spawnAsync('/etc/passwd')).rejects.toMatchObject({ code: 'EACCES' });
    // (fds of earlier tests may still be closing: no more than before is what counts)
    expect(fdCount(), JSON.stringify(describeFds())).toBeLessThanOrEqual(before);
  });

  it('rejects, and spawns nothing, for bad arguments', async () => {
    await expect(spawnAsync(5 as unknown as string)).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await expect(spawnAsync('true', ['a\0b'])).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(spawnAsync('true', [], { stdio: 'bogus' as 'pipe' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });

  it('gives each of many spawns at once its own process and status', async () => {
    const procs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        spawnAsync('sh', ['-c', `exit ${i}`], { stdio: 'ignore' }).then(track),
      ),
    );
    expect(new Set(procs.map((p) => p.pid)).size).toBe(50);
    const codes = await Promise.all(procs.map(async (p) => (await p.exited).code));
    expect(codes).toEqual(procs.map((_, i) => i));
  });

  it('sees the exit of a child that is gone before its promise settles', async () => {
    for (let i = 0; i < 20; i++) {
      const proc = track(await spawnAsync('/bin/true', [], { stdio: 'ignore' }));
      expect(await proc.exited).toMatchObject({ code: 0, signal: null });
    }
  });

  it('starts the child with the scheduling policy of the calling thread', async () => {
    // /proc/PID/stat field 41: 0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE
    const policyIn = (stat: string) => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
    const policyOf = (pid: number) => policyIn(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const proc = track(await spawnAsync('sleep', ['30'], { stdio: 'ignore' }));
    expect(policyOf(proc.pid)).toBe(policyOf(process.pid));
    proc.kill();
    await proc.exited;
    const script = `
      const { spawnAsync } = await import(${JSON.stringify(distIndex)});
      const proc = await spawnAsync('cat', ['/proc/self/stat'], { stdio: ['ignore', 'inherit', 'inherit'] });
      await proc.exited;`;
    for (const [flag, policy] of [
      ['--batch', 3],
      ['--idle', 5],
    ] as const) {
      const stat = execFileSync('chrt', [
        flag,
        '0',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
      ]);
      expect(policyIn(stat.toString())).toBe(policy);
    }
  });

  it('applies timeout and killSignal as spawn does', async () => {
    const proc = track(
      await spawnAsync('sleep', ['30'], { stdio: 'ignore', timeout: 50, killSignal: 'SIGINT' }),
    );
    expect(await proc.exited).toMatchObject({ signal: 'SIGINT', timedOut: true });
  });
});

describe('spawnAsync and killOnParentExit', () => {
  it("kills a worker's child when that worker ends, and only then", async () => {
    const result = await runNode([fixture('worker-async.mjs')], { timeout: 20_000 });
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as {
      pids: number[];
      whileRunning: string[];
      afterEnd: string[];
    };
    try {
      // All alive while the worker runs (the spawner threads outlive each spawn) ...
      expect(report.pids.length).toBe(10);
      expect(report.whileRunning.every((s) => s === 'S' || s === 'R')).toBe(true);
      // ... and once it has ended, every killOnParentExit child is dead, whichever of
      // the worker's spawner threads started it, and the other is not.
      report.afterEnd.forEach((state, i) => {
        if (i === 1) expect(['S', 'R']).toContain(state);
        else expect(['Z', 'gone']).toContain(state);
      });
    } finally {
      await waitFor(
        () => report.pids.every((pid) => ['Z', undefined].includes(procStat(pid)?.state)),
        'the children to be gone',
      );
    }
  });

  it('kills the children when the process exits', async () => {
    const result = await runNode([
      fixture('exit-with-children.mjs'),
      'kill-on-parent-exit',
      'async',
    ]);
    const pids = result.stdout.trim().split(' ').map(Number);
    expect(result).toMatchObject({ code: 5, signal: null, stderr: '' });
    expect(pids.length).toBe(3);
    await waitFor(
      () => pids.every((pid) => ['Z', undefined].includes(procStat(pid)?.state)),
      'the children to be killed',
    );
  });
});
