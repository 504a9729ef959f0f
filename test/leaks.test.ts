// Nothing accumulates: the fds of this process are the same before and after thousands of
// spawns, failed spawns and kills, and no child is left running or as a zombie.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, SpawnError, spawn } from '../src/index.js';
import {
  childrenOf,
  describeFds,
  fdCount,
  identify,
  type ProcessId,
  stillThere,
  waitFor,
} from './helpers/proc.js';

const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-leaks-'));
const everyChild: ProcessId[] = [];
let baseline: number;
let baselineFds: Record<number, string>;

/** Runs `count` tasks, `width` at a time. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Waits until the fd count is back at the baseline: closes finish on the event loop. */
async function expectFdsAtBaseline(): Promise<void> {
  try {
    await waitFor(() => fdCount() === baseline, 'the fd count to return to its baseline', 5000);
  } catch {
    // fall through to a comparison that shows which fds differ
  }
  expect({ count: fdCount(), fds: describeFds() }).toEqual({ count: baseline, fds: baselineFds });
}

beforeAll(async () => {
  // warm up: the addon, the first pipes and whatever Node opens lazily
  await exec('/bin/true');
  const warm = spawn('sleep', ['60'], { stdio: 'ignore' });
  warm.kill('SIGKILL');
  await warm.exited;
  try {
    spawn('/nonexistent/pidwatch');
  } catch {}
  await new Promise((resolve) => setImmediate(resolve));
  baseline = fdCount();
  baselineFds = describeFds();
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('fds', () => {
  it('1,000 spawns leave the fd count unchanged', async () => {
    await pool(1000, 4, async (i) => {
      if (i % 2 === 0) {
        const proc = spawn('/bin/true', [], { stdio: 'ignore' });
        everyChild.push(identify(proc.pid));
        expect((await proc.exited).code).toBe(0);
      } else {
        // piped: the streams end and close once the child is gone and read to the end
        const proc = spawn('/bin/true');
        everyChild.push(identify(proc.pid));
        proc.stdin!.end();
        proc.stdout!.resume();
        proc.stderr!.resume();
        await Promise.all([proc.exited, once(proc.stdout!, 'close'), once(proc.stderr!, 'close')]);
      }
    });
    await expectFdsAtBaseline();
  });

  it('100 failed spawns leave the fd count unchanged', async () => {
    const reasons = [
      () => spawn('/nonexistent/pidwatch'),
      () => spawn(scratch),
      () => spawn('pidwatch-not-in-path', [], { env: { PATH: scratch } }),
      () => spawn('/bin/true', [], { cwd: join(scratch, 'missing') }),
    ];
    for (let i = 0; i < 100; i++) {
      let error: unknown;
      try {
        const proc = reasons[i % reasons.length]();
        everyChild.push(identify(proc.pid));
        await proc.exited;
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(SpawnError);
    }
    await expectFdsAtBaseline();
    // a failed spawn leaves no child behind, not even a zombie
    expect(childrenOf()).toEqual([]);
  });

  it('100 kills leave the fd count unchanged', async () => {
    await pool(100, 10, async (i) => {
      const proc = spawn('sleep', ['60'], { stdio: i % 2 ? 'ignore' : 'pipe' });
      everyChild.push(identify(proc.pid));
      proc.stdout?.resume();
      proc.stderr?.resume();
      expect(proc.kill('SIGKILL')).toBe(true);
      const closed = proc.stdout ? [once(proc.stdout, 'close'), once(proc.stderr!, 'close')] : [];
      proc.stdin?.end();
      expect((await proc.exited).signal).toBe('SIGKILL');
      await Promise.all(closed);
    });
    await expectFdsAtBaseline();
  });

  it('100 exec() calls with output leave the fd count unchanged', async () => {
    await pool(100, 4, async (i) => {
      const output = await exec(
        '/bin/sh',
        ['-c', 'echo out; echo err >&2; exit $1', 'sh', String(i % 3)],
        {
          reject: false,
          input: 'in',
        },
      );
      everyChild.push(identify(output.pid));
      expect(output).toMatchObject({ stdout: 'out\n', stderr: 'err\n', code: i % 3 });
    });
    await expectFdsAtBaseline();
  });
});

describe('zombies', () => {
  it('every child of this file is gone from /proc', () => {
    expect(everyChild.length).toBeGreaterThan(1000);
    const left = everyChild.filter(stillThere).map((id) => id.pid);
    expect(left).toEqual([]);
    expect(childrenOf()).toEqual([]);
  });
});
