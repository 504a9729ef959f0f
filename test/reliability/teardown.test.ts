// Ends that come from outside: a worker terminated while its children run, a
// process.exit() with children running, and a Subprocess dropped while its child
// runs. No crash, no abort, no hang, and a dropped child is still reaped.
import { describe, expect, it } from 'vitest';
import { reliabilityFixture } from '../fixtures/reliability/support.js';
import { identify, type ProcessId, runNode, stillThere, waitFor } from '../helpers/proc.js';

/** A crash, an abort or a failed assertion in native code says so on stderr. */
function expectNoCrash(stderr: string) {
  expect(stderr).not.toMatch(/Abort|FATAL|Assertion|Segmentation|core dumped/i);
}

/** Ends what a script left running (orphans now), checking each is still the same process. */
async function endLeftovers(ids: ProcessId[]) {
  for (const id of ids) {
    if (stillThere(id)) {
      try {
        process.kill(id.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  await waitFor(() => ids.every((id) => !stillThere(id)), 'the leftover processes to go');
}

function leftovers(stdout: string): ProcessId[] {
  const firstLine = stdout.split('\n')[0];
  const { long } = JSON.parse(firstLine) as { long: Array<number | { pid: number }> };
  return long.map((entry) => identify(typeof entry === 'number' ? entry : entry.pid));
}

describe('worker.terminate() while the worker’s children run', () => {
  it('resolves, and the process ends cleanly', async () => {
    const result = await runNode([reliabilityFixture('teardown-worker.mjs'), '1', 'idle']);
    expectNoCrash(result.stderr);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { main: string };
    expect(report.main).toBe('main\n');
    await endLeftovers(leftovers(result.stdout));
  });

  for (const style of ['await', 'mixed'] as const) {
    it(`resolves while spawns and exits are in flight (${style})`, async () => {
      const result = await runNode([reliabilityFixture('teardown-worker.mjs'), '6', style]);
      expectNoCrash(result.stderr);
      expect(result.code).toBe(0);
      expect((JSON.parse(result.stdout) as { main: string }).main).toBe('main\n');
      await endLeftovers(leftovers(result.stdout));
    });
  }
});

describe('workers terminated while their children run', () => {
  it('leave no zombie and no fd once the children end (20 workers)', async () => {
    const result = await runNode([reliabilityFixture('teardown-reap.mjs'), '20'], {
      timeout: 60_000,
    });
    expectNoCrash(result.stderr);
    expect(result).toMatchObject({ code: 0, signal: null });
    const report = JSON.parse(result.stdout) as {
      children: number;
      zombies: number[];
      running: number[];
      leftFds: string[];
    };
    expect(report.children).toBeGreaterThanOrEqual(40);
    expect(report).toMatchObject({ zombies: [], running: [], leftFds: [] });
  });
});

describe('process.exit() with children running', () => {
  for (const where of ['top', 'callback', 'data'] as const) {
    it(`exits with the code asked for, no abort (called from ${where})`, async () => {
      const result = await runNode([reliabilityFixture('teardown-exit.mjs'), '3', where]);
      expectNoCrash(result.stderr);
      expect(result.signal).toBeNull();
      expect(result.code).toBe(3);
      await endLeftovers(leftovers(result.stdout));
    });
  }
});

describe('a Subprocess dropped while its child runs', () => {
  for (const stdio of ['ignore', 'pipe'] as const) {
    it(`is still reaped after garbage collection (stdio ${stdio})`, async () => {
      const result = await runNode(['--expose-gc', reliabilityFixture('teardown-gc.mjs'), stdio]);
      expectNoCrash(result.stderr);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as {
        reaped: boolean;
        state: string | null;
        collected: boolean;
      };
      // Gone from /proc: exited and reaped, never left a zombie.
      expect(report).toMatchObject({ reaped: true, state: null });
      // And once reaped, nothing holds on to the dropped object.
      expect(report.collected).toBe(true);
    });
  }
});
