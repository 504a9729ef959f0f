// pipeline(): stages wired by kernel pipes made in the parent.
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExitError, execPipeline, pipeline, SpawnError } from '../src/index.js';
import { isSigchldMode } from './helpers/mode.js';
import { childrenOf, openFds, readAll, trackChildren, waitFor } from './helpers/proc.js';

const track = trackChildren();

function tracked<T extends { procs: readonly { pid: number }[] }>(p: T): T {
  for (const proc of p.procs) track(proc);
  return p;
}

/** The pipes (`pipe:[inode]`) among the fds of a process. */
function pipesOf(pid: number | 'self'): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('pipe:')) out.add(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

function fdTarget(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

describe('pipeline()', () => {
  it('runs printf | sort | uniq -c', async () => {
    const p = tracked(
      pipeline([['printf', 'b\\na\\nb\\nc\\nb\\n'], ['sort'], ['uniq', '-c']], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const output = (await readAll(p.stdout!)).toString();
    expect(output.split('\n').map((line) => line.trim())).toEqual(['1 a', '3 b', '1 c', '']);
    const statuses = await p.exited;
    expect(statuses.map((s) => s.code)).toEqual([0, 0, 0]);
    expect(statuses.map((s) => s.pid)).toEqual(p.procs.map((proc) => proc.pid));
  });

  it('ends yes | head -1 with yes killed by SIGPIPE', async () => {
    const p = tracked(
      pipeline([['yes'], ['head', '-1']], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    expect((await readAll(p.stdout!)).toString()).toBe('y\n');
    const [yes, head] = await p.exited;
    expect(yes).toMatchObject({ code: null, signal: 'SIGPIPE' });
    expect(head).toMatchObject({ code: 0, signal: null });
  });

  it('leaves no inner pipe fd in the parent, and no stream for it', async () => {
    const before = new Set(openFds());
    const p = tracked(
      pipeline([['cat'], ['cat'], ['cat']], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    // The inner pipes: the write end of stage 0's stdout and stage 1's, read by the next.
    const inner = [fdTarget(p.procs[0].pid, 1), fdTarget(p.procs[1].pid, 1)];
    expect(fdTarget(p.procs[1].pid, 0)).toBe(inner[0]);
    expect(fdTarget(p.procs[2].pid, 0)).toBe(inner[1]);
    const mine = pipesOf('self');
    for (const pipe of inner) expect(mine.has(pipe), `${pipe} held by the parent`).toBe(false);
    expect(p.procs[0].stdout).toBeNull();
    expect(p.procs[1].stdin).toBeNull();
    expect(p.procs[1].stdout).toBeNull();
    expect(p.procs[2].stdin).toBeNull();

    p.stdin!.end('through three cats\n');
    expect((await readAll(p.stdout!)).toString()).toBe('through three cats\n');
    expect((await p.exited).map((s) => s.code)).toEqual([0, 0, 0]);
    // Every fd the pipeline used is closed again (one of an earlier test may close too).
    await waitFor(() => openFds().every((fd) => before.has(fd)), 'the fds to close');
  });

  it('lets a stage write almost 1 MiB ahead of a stage that does not read yet', async () => {
    // A kernel pipe's default buffer is 64 KiB: head would wait for sleep forever.
    const p = tracked(
      pipeline(
        [
          ['head', '-c', String(1000 * 1024), '/dev/zero'],
          ['sleep', '30'],
        ],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      ),
    );
    expect(await p.procs[0].exited).toMatchObject({ code: 0, signal: null });
    p.procs[1].kill('SIGKILL');
    const statuses = await p.exited;
    expect(statuses[1]).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('shows a failing middle stage in the statuses', async () => {
    const p = tracked(
      pipeline([['printf', 'x\\n'], ['sh', '-c', 'cat; exit 3'], ['cat']], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    expect((await readAll(p.stdout!)).toString()).toBe('x\n');
    const statuses = await p.exited;
    expect(statuses.map((s) => s.code)).toEqual([0, 3, 0]);
  });

  it('watches every stage like any spawned process', async () => {
    const p = tracked(
      pipeline([['sleep', '60'], ['cat']], { stdio: ['ignore', 'ignore', 'ignore'] }),
    );
    for (const proc of p.procs) {
      if (isSigchldMode()) expect(proc.pidfd).toBeNull();
      else expect(proc.pidfd).toBeGreaterThanOrEqual(0);
    }
    expect(p.kill('SIGTERM')).toBe(true);
    const [sleep, cat] = await p.exited;
    expect(sleep.signal).toBe('SIGTERM');
    expect(cat.code === 0 || cat.signal === 'SIGTERM').toBe(true);
    expect(p.kill()).toBe(false);
  });

  it('takes { file, args, options } stages whose options add to the common ones', async () => {
    const p = tracked(
      pipeline(
        [
          { file: 'sh', args: ['-c', 'printf "%s" "$WHO"'], options: { env: { WHO: 'stage' } } },
          { file: 'tr', args: ['a-z', 'A-Z'] },
        ],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { WHO: 'common' } },
      ),
    );
    expect((await readAll(p.stdout!)).toString()).toBe('STAGE');
    await p.exited;
  });

  it('pipes each stderr by default', async () => {
    const p = tracked(
      pipeline([
        ['sh', '-c', 'echo one >&2'],
        ['sh', '-c', 'cat; echo two >&2'],
      ]),
    );
    const [one, two] = await Promise.all(p.procs.map((proc) => readAll(proc.stderr!)));
    expect([one.toString(), two.toString()]).toEqual(['one\n', 'two\n']);
    await p.exited;
  });

  it('throws SpawnError for a stage that cannot start, leaving nothing behind', async () => {
    const before = new Set(openFds());
    let error: unknown;
    try {
      pipeline([['sleep', '60'], ['/nonexistent/stage'], ['cat']]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', path: '/nonexistent/stage' });
    // sleep was started and is killed; it is reaped once its exit is seen.
    await waitFor(() => childrenOf().length === 0, 'the started stage to be reaped');
    // (A stream of an earlier test may close meanwhile: no fd beyond those open before.)
    await waitFor(() => openFds().every((fd) => before.has(fd)), 'the started stage to close');
  });

  it('rejects bad commands', () => {
    for (const commands of [[], 'ls', [[]], [null], [['ls'], 42]]) {
      expect(() => pipeline(commands as never)).toThrow(
        expect.objectContaining({ name: 'TypeError' }),
      );
    }
  });
});

describe('execPipeline()', () => {
  async function run(...args: Parameters<typeof execPipeline>) {
    try {
      const output = await execPipeline(...args);
      for (const status of output.statuses) track(status);
      return output;
    } catch (error) {
      for (const status of (error as { statuses?: { pid: number }[] }).statuses ?? [])
        track(status);
      throw error;
    }
  }

  it('collects the last stdout, with every status', async () => {
    const output = await run([['printf', 'b\\na\\nb\\n'], ['sort'], ['uniq', '-c']]);
    expect(output.stdout.toString().replace(/ +/g, ' ')).toBe(' 1 a\n 2 b\n');
    expect(output.statuses.map((s) => s.code)).toEqual([0, 0, 0]);
    expect(output).toMatchObject({ code: 0, signal: null, stderr: '', isMaxBuffer: false });
    expect(output.pid).toBe(output.statuses[2].pid);
  });

  it('resolves yes | head -1: a stage ended by SIGPIPE before the last did not fail', async () => {
    const output = await run([['yes'], ['head', '-1']]);
    expect(output.stdout).toBe('y\n');
    expect(output.statuses[0]).toMatchObject({ code: null, signal: 'SIGPIPE' });
    expect(output.code).toBe(0);
  });

  it('reports a failing middle stage as the pipeline status (pipefail)', async () => {
    const commands = [['printf', 'x'], ['sh', '-c', 'cat; echo broken >&2; exit 3'], ['cat']];
    const error = await run(commands).catch((e) => e);
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toMatchObject({ code: 3, stdout: 'x', stderr: 'broken\n' });
    expect(error.statuses.map((s: { code: number }) => s.code)).toEqual([0, 3, 0]);
    expect(error.shortMessage).toBe(
      "Command failed with exit code 3: printf x | sh -c 'cat; echo broken >&2; exit 3' | cat",
    );
    expect(error.message.endsWith('\n\nbroken')).toBe(true);

    const kept = await run(commands, { reject: false });
    expect(kept.code).toBe(3);
    const plain = await run(commands, { pipefail: false });
    expect(plain).toMatchObject({ code: 0, stdout: 'x' });
    expect(plain.statuses[1].code).toBe(3);
  });

  it('collects the stderr of every stage, in the order written', async () => {
    const output = await run([
      ['sh', '-c', 'echo first >&2; echo data'],
      ['sh', '-c', 'cat >/dev/null; echo second >&2'],
    ]);
    expect(output.stderr).toBe('first\nsecond\n');
  });

  it('feeds input to the first stage', async () => {
    const output = await run([['cat'], ['tr', 'a-z', 'A-Z']], { input: 'shout' });
    expect(output.stdout).toBe('SHOUT');
  });

  it('stops every stage past maxBuffer', async () => {
    const error = await run([['yes'], ['cat']], { maxBuffer: 1000 }).catch((e) => e);
    expect(error).toBeInstanceOf(ExitError);
    expect(error.isMaxBuffer).toBe(true);
    expect(error.stdout.length).toBe(1000);
  });

  it('rejects with the SpawnError of a stage that cannot start, leaving no fd', async () => {
    const before = new Set(openFds());
    const error = await run([['sleep', '60'], ['/nonexistent/stage']], { input: 'x' }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', path: '/nonexistent/stage' });
    // The sleep that had started is killed, and reaped once its exit is seen.
    await waitFor(() => childrenOf().length === 0, 'the started stage to be reaped');
    await waitFor(() => openFds().every((fd) => before.has(fd)), 'the fds to close');
  });

  it('refuses stdio, for the pipeline or a stage, starting nothing and leaving no fd', async () => {
    const before = new Set(openFds());
    const stage = {
      file: 'sh',
      args: ['-c', 'echo lost >&2'],
      options: { stdio: 'pipe' as const },
    };
    for (const attempt of [
      () => run([['echo', 'hi'], stage]),
      () => run([stage, ['cat']]),
      () => run([['echo', 'hi'], ['cat']], { stdio: 'inherit' } as never),
    ]) {
      const error = await attempt().catch((e) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
    }
    expect(childrenOf()).toEqual([]);
    expect(openFds().filter((fd) => !before.has(fd))).toEqual([]);
  });

  it('leaves no fd behind', async () => {
    const before = new Set(openFds());
    await run([['echo', 'hi'], ['cat'], ['cat']]);
    await waitFor(() => openFds().every((fd) => before.has(fd)), 'the fds to close');
  });
});
