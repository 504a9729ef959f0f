// Out of fds (a low RLIMIT_NOFILE) and out of processes (a pids cgroup): spawn()
// throws SpawnError EMFILE / EAGAIN at once, the event loop keeps running, no fd
// leaks, and spawning works again once resources are back. Each case runs in a
// child Node process (node:child_process) so the limits bind only there.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { reliabilityFixture } from '../fixtures/reliability/support.js';

interface Step {
  what: string;
  ok: boolean;
  name?: string;
  code?: string | null;
  errno?: number | null;
  syscall?: string;
  leaked: number;
  value?: { code: number | null; out?: string } | null;
}

interface Report {
  start: number;
  end: number;
  steps: Step[];
  failuresAtLimit: number;
  ticksWhileFailing: number;
  earlyExit?: number | null;
  parentWatchSettledAtLimit?: boolean;
  after: { code: number; stdout: string };
}

/** Runs a fixture script with node through `sh -c` (for ulimit); resolves with its report. */
function runScript(shellPrefix: string, script: string, args: string[] = []): Promise<Report> {
  const command = `${shellPrefix} exec "$0" "$@"`;
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/sh',
      ['-c', command, process.execPath, reliabilityFixture(script), ...args],
      { timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${script} failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Report);
      },
    );
  });
}

function step(report: Report, what: string): Step {
  const found = report.steps.find((s) => s.what === what);
  if (!found) throw new Error(`no step '${what}' in ${JSON.stringify(report.steps)}`);
  return found;
}

function expectCleanEverywhere(report: Report) {
  for (const s of report.steps) expect(s.leaked, s.what).toBe(0);
  expect(report.after).toEqual({ code: 0, stdout: 'again\n' });
  expect(report.end).toBe(report.start);
}

describe('at the fd limit (RLIMIT_NOFILE)', () => {
  let report: Report;
  beforeAll(async () => {
    report = await runScript('ulimit -n 64 &&', 'emfile.mjs');
  });

  it('spawn() throws SpawnError EMFILE at once, leaks nothing and works again after', () => {
    for (const s of report.steps) expect(s.leaked, s.what).toBe(0);
    expect(report.after).toEqual({ code: 0, stdout: 'again\n' });
    expect(report.end).toBe(report.start);

    expect(step(report, 'spawn stdio=pipe at the limit')).toMatchObject({
      ok: false,
      name: 'SpawnError',
      code: 'EMFILE',
    });
    // Without pipes a spawn may still need an fd (the pidfd, or /dev/null in the
    // child); where it needs none it simply works.
    for (const what of ['spawn stdio=ignore at the limit', 'spawn stdio=inherit at the limit']) {
      const s = step(report, what);
      if (s.ok) expect(s.value, what).toEqual({ code: 0 });
      else expect(s, what).toMatchObject({ name: 'SpawnError', code: 'EMFILE' });
    }
  });

  it('a failing spawn in a loop blocks neither the event loop nor the other children', () => {
    expect(report.failuresAtLimit).toBe(200);
    expect(report.ticksWhileFailing).toBeGreaterThan(0);
    expect(report.earlyExit).toBe(6);
  });

  it('a spawn with only a few fds free either works or fails cleanly', () => {
    const partial = report.steps.filter((s) => / fds free$/.test(s.what));
    expect(partial).toHaveLength(8);
    let worked = false;
    for (const s of partial) {
      expect(s.leaked, s.what).toBe(0);
      if (s.ok) {
        worked = true;
        expect(s.value, s.what).toEqual({ code: 0, out: 'hi\n' });
      } else {
        // Once there were enough fds, more never makes it fail again.
        expect(worked, s.what).toBe(false);
        expect(s, s.what).toMatchObject({ name: 'SpawnError', code: 'EMFILE' });
      }
    }
    expect(worked).toBe(true);
  });

  it('watch() of a child works at the limit', () => {
    expect(step(report, 'watch a child at the limit')).toMatchObject({ ok: true, leaked: 0 });
  });

  it('watch() of a non-child at the limit fails with EMFILE', () => {
    const s = step(report, 'watch a non-child at the limit');
    expect(s.leaked).toBe(0);
    if (!s.ok) {
      expect(s.name).not.toBe('ProcessGoneError');
      // The reason is EMFILE; say so by code (or at least by errno).
      expect(s.code === 'EMFILE' || Math.abs(s.errno ?? 0) === 24).toBe(true);
    }
  });

  it('a running watch() of a live non-child reports no exit at the limit', () => {
    expect(report.parentWatchSettledAtLimit).toBe(false);
  });
});

/** A pids cgroup this test may create children in: v1's pids hierarchy, or v2. */
function pidsCgroupRoot(): string | null {
  const candidates = ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
  for (const root of candidates) {
    if (!existsSync(root)) continue;
    const probe = join(root, `pidwatch-probe-${process.pid}`);
    try {
      mkdirSync(probe);
    } catch {
      continue;
    }
    const usable = existsSync(join(probe, 'pids.max'));
    rmdirSync(probe);
    if (usable) return root;
  }
  return null;
}

function ownCgroupHasPids(root: string): boolean {
  // cgroup v2 at the root: the controller must be enabled for the children.
  const control = join(root, 'cgroup.subtree_control');
  if (!existsSync(control)) return true;
  return readFileSync(control, 'utf8').split(/\s+/).includes('pids');
}

const cgroupRoot = pidsCgroupRoot();

describe('at the process limit (a pids cgroup)', () => {
  it.skipIf(cgroupRoot === null || !ownCgroupHasPids(cgroupRoot))(
    'spawn() throws SpawnError EAGAIN at once and works again once the limit is raised',
    async () => {
      const dir = join(cgroupRoot!, `pidwatch-test-${process.pid}-${Date.now()}`);
      mkdirSync(dir);
      try {
        const report = await runScript('', 'nproc.mjs', [dir]);
        expectCleanEverywhere(report);
        for (const s of report.steps) {
          expect(s, s.what).toMatchObject({ ok: false, name: 'SpawnError', code: 'EAGAIN' });
        }
        expect(report.failuresAtLimit).toBe(100);
        expect(report.ticksWhileFailing).toBeGreaterThan(0);
      } finally {
        rmdirSync(dir);
      }
    },
  );
});
