// Process trees (`tree: true`): kill, leader exit, accounting and cleanup, in the
// 'cgroup' mechanism where this machine has a writable cgroup v2 directory and in
// the 'pgroup' one (PIDWATCH_CGROUP=0, read at each spawn). Every check looks at
// /proc and /sys/fs/cgroup directly, not through pidwatch.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { capabilities, exec, runJobs, type Subprocess, spawn } from '../src/index.js';
import { haveCompiler, PidReuser, retryingPidRace } from './fixtures/reliability/support.js';
import { testMode } from './helpers/mode.js';
import { distEntry, hasExited, procStat, runNode, waitFor } from './helpers/proc.js';

const cgroupRoot = capabilities().cgroup;
const mechanisms = cgroupRoot === null ? (['pgroup'] as const) : (['cgroup', 'pgroup'] as const);

/** The cgroup v2 path of a process, relative to the mount ("0::" line), or null. */
function cgroupOf(pid: number): string | null {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

/** Live processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      const stat = procStat(pid);
      return stat !== null && stat.state !== 'Z' && stat.pgrp === pgid;
    });
}

/** The lines a child prints, one at a time, none lost between calls. */
function lineReader(proc: Subprocess): () => Promise<string> {
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  return async () => {
    const next = await lines.next();
    if (next.done) throw new Error('stdout ended before the expected line');
    return next.value;
  };
}

/** Reads `count` lines of PIDs the child prints. */
async function reportedPids(next: () => Promise<string>, count: number): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < count; i++) {
    const pid = Number(await next());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`not a PID: ${pid}`);
    pids.push(pid);
  }
  return pids;
}

// The PIDs of a background sleeper, a setsid one and a double-forked one; then
// the leader itself becomes a sleeper.
const THREE_SLEEPERS =
  'sleep 60 & echo $!; setsid sleep 60 & echo $!; (sleep 60 & echo $!); exec sleep 60';

/** Sleepers a test started that may outlive it (a setsid one in 'pgroup'). */
const strays: number[] = [];
afterEach(() => {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function withMechanism(mechanism: 'cgroup' | 'pgroup', body: () => void) {
  describe(`mechanism ${mechanism}`, () => {
    const saved = process.env.PIDWATCH_CGROUP;
    // PIDWATCH_CGROUP=0 forces 'pgroup'; pidwatch reads it at each spawn.
    beforeAll(() => {
      if (mechanism === 'pgroup') process.env.PIDWATCH_CGROUP = '0';
    });
    afterAll(() => {
      if (saved === undefined) delete process.env.PIDWATCH_CGROUP;
      else process.env.PIDWATCH_CGROUP = saved;
    });
    body();
  });
}

for (const mechanism of mechanisms) {
  withMechanism(mechanism, () => {
    it('tree is null without tree: true, and names the mechanism with it', async () => {
      const plain = spawn('/bin/true', [], { stdio: 'ignore' });
      expect(plain.tree).toBeNull();
      expect((await plain.exited).tree).toBeNull();
      const proc = spawn('/bin/true', [], { stdio: 'ignore', tree: true });
      expect(proc.tree?.mechanism).toBe(mechanism);
      const status = await proc.exited;
      expect(status.tree).toMatchObject({ mechanism, leftovers: 0 });
      expect(proc.tree!.kill()).toBe(false);
      expect(proc.tree!.pids()).toEqual([]);
    });

    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`tree.kill('${signal}') ends the background, setsid and double-forked sleepers`, async () => {
        const proc = spawn('sh', ['-c', THREE_SLEEPERS], {
          stdio: ['ignore', 'pipe', 'inherit'],
          tree: true,
        });
        const [background, setsid, doubleForked] = await reportedPids(lineReader(proc), 3);
        strays.push(background, setsid, doubleForked);
        await waitFor(() => procStat(proc.pid)?.comm === 'sleep', 'the leader to exec sleep');
        await waitFor(() => procStat(setsid)?.session === setsid, 'the setsid sleeper to be one');
        const members = proc.tree!.pids();
        expect(members).toContain(proc.pid);
        expect(members).toContain(background);
        expect(members).toContain(doubleForked);
        if (mechanism === 'cgroup') expect(members).toContain(setsid);
        else expect(members).not.toContain(setsid);

        expect(proc.tree!.kill(signal)).toBe(true);
        const status = await proc.exited;
        expect(status.signal).toBe(signal);
        expect(hasExited(background)).toBe(true);
        expect(hasExited(doubleForked)).toBe(true);
        // A descendant that calls setsid() leaves a process group, never a cgroup.
        expect(hasExited(setsid)).toBe(mechanism === 'cgroup');
        expect(proc.tree!.kill(signal)).toBe(false);
      });

      it(`a fork storm of 300 ms, then tree.kill('${signal}'): nothing of it survives`, async () => {
        const proc = spawn('sh', ['-c', 'echo go; while :; do sleep 10 & done'], {
          stdio: ['ignore', 'pipe', 'inherit'],
          tree: true,
        });
        expect(await lineReader(proc)()).toBe('go');
        await new Promise((resolve) => setTimeout(resolve, 300));
        const during = proc.tree!.pids().length;
        expect(proc.tree!.kill(signal)).toBe(true);
        const status = await proc.exited;
        expect(status.signal).toBe(signal);
        expect(during).toBeGreaterThan(1);
        if (mechanism === 'cgroup') {
          const leaf = proc.tree!.cgroup!.slice(cgroupMount().length);
          const inLeaf = readdirSync('/proc')
            .filter((name) => /^\d+$/.test(name))
            .filter((name) => cgroupOf(Number(name)) === leaf && !hasExited(Number(name)));
          expect(inLeaf).toEqual([]);
        } else {
          expect(groupMembers(proc.pid)).toEqual([]);
        }
      });
    }

    it('when the leader exits, what is left is killed before exited resolves', async () => {
      const proc = spawn('sh', ['-c', 'sleep 60 & echo $!; (sleep 60 & echo $!)'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        tree: true,
      });
      const [background, doubleForked] = await reportedPids(lineReader(proc), 2);
      strays.push(background, doubleForked);
      const status = await proc.exited;
      expect(status.code).toBe(0);
      expect(status.tree?.leftovers).toBe(2);
      expect(hasExited(background)).toBe(true);
      expect(hasExited(doubleForked)).toBe(true);
    });

    it('kill() of the leader ends the whole tree', async () => {
      const proc = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        tree: true,
      });
      const [sleeper] = await reportedPids(lineReader(proc), 1);
      strays.push(sleeper);
      expect(proc.kill()).toBe(true);
      const status = await proc.exited;
      expect(status.signal).toBe('SIGTERM');
      expect(status.tree?.leftovers).toBe(1);
      expect(hasExited(sleeper)).toBe(true);
    });

    it('timeout, abort and dispose reach the whole tree, SIGKILL after forceKillAfter', async () => {
      // The leader and its child ignore SIGTERM: only the SIGKILL that follows ends them.
      const script = "trap '' TERM; sh -c \"trap '' TERM; echo \\$\\$; sleep 60 & wait\" & wait";
      const timedOut = spawn('sh', ['-c', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
        tree: true,
        timeout: 200,
        forceKillAfter: 300,
      });
      const [inner] = await reportedPids(lineReader(timedOut), 1);
      strays.push(inner);
      const status = await timedOut.exited;
      expect(status).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
      expect(hasExited(inner)).toBe(true);

      const controller = new AbortController();
      const aborted = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        tree: true,
        signal: controller.signal,
      });
      const [sleeper] = await reportedPids(lineReader(aborted), 1);
      strays.push(sleeper);
      controller.abort();
      expect(await aborted.exited).toMatchObject({ aborted: true, signal: 'SIGTERM' });
      expect(hasExited(sleeper)).toBe(true);

      let disposedSleeper = 0;
      {
        await using disposed = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], {
          stdio: ['ignore', 'pipe', 'inherit'],
          tree: true,
        });
        [disposedSleeper] = await reportedPids(lineReader(disposed), 1);
        strays.push(disposedSleeper);
      }
      expect(hasExited(disposedSleeper)).toBe(true);
    });

    it('exec with a timeout of `sh -c "sleep 30 & echo started"` settles at once', async () => {
      const started = performance.now();
      const output = await exec('sh', ['-c', 'sleep 30 & echo $!; echo started'], {
        timeout: 500,
        forceKillAfter: 500,
        tree: true,
      });
      const [sleeper, word] = (output.stdout as string).trim().split('\n');
      expect(word).toBe('started');
      expect(output.tree?.leftovers).toBe(1);
      expect(hasExited(Number(sleeper))).toBe(true);
      expect(performance.now() - started).toBeLessThan(500 + 500 + 1000);
    });

    it('runJobs with a job that starts a daemon finishes, and leaves nothing', async () => {
      const summary = await runJobs(
        [
          ['sh', '-c', 'sleep 33 & echo $!'],
          ['sh', '-c', 'echo plain'],
        ],
        { timeout: 500, forceKillAfter: 500 },
      );
      expect(summary.failed).toBe(0);
      const daemon = Number(summary.results[0].stdout.trim());
      expect(summary.results[0].status.tree?.leftovers).toBe(1);
      expect(summary.results[1].stdout).toBe('plain\n');
      expect(hasExited(daemon)).toBe(true);
    });

    it('every PID a child that forks at once reports is in its tree', async () => {
      const proc = spawn(
        'sh',
        ['-c', 'sleep 60 & echo $!; sleep 60 & echo $!; echo $$; exec sleep 60'],
        { stdio: ['ignore', 'pipe', 'inherit'], tree: true },
      );
      const pids = await reportedPids(lineReader(proc), 3);
      strays.push(...pids);
      expect(pids[2]).toBe(proc.pid);
      if (mechanism === 'cgroup') {
        const procs = readFileSync(`${proc.tree!.cgroup}/cgroup.procs`, 'utf8')
          .trim()
          .split('\n')
          .map(Number);
        for (const pid of pids) expect(procs).toContain(pid);
      } else {
        for (const pid of pids) expect(procStat(pid)?.pgrp).toBe(proc.pid);
      }
      expect(proc.tree!.kill('SIGKILL')).toBe(true);
      await proc.exited;
    });

    describe.skipIf(!haveCompiler())('PID reuse', () => {
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        it(`a member's PID reused after it exits is never signalled by tree.kill('${signal}')`, () =>
          retryingPidRace(async () => {
            const reuser = new PidReuser();
            try {
              // The leader reaps the member itself, so its PID is free at once.
              const proc = spawn(
                'sh',
                ['-c', 'sleep 60 & echo $!; wait $!; echo reaped; exec sleep 60'],
                { stdio: ['ignore', 'pipe', 'inherit'], tree: true },
              );
              const next = lineReader(proc);
              const [member] = await reportedPids(next, 1);
              expect(proc.tree!.pids()).toContain(member);
              process.kill(member, 'SIGKILL');
              expect(await next()).toBe('reaped');
              reuser.reuse(member);
              expect(proc.tree!.pids()).not.toContain(member);
              expect(proc.tree!.kill(signal)).toBe(true);
              expect((await proc.exited).signal).toBe(signal);
              expect(reuser.alive(member)).toBe(true);
            } finally {
              expect(await reuser.close()).toBe(0);
            }
          }));
      }
    });
  });
}

describe('the tree option', () => {
  it('must be a boolean', async () => {
    expect(() => spawn('/bin/true', [], { tree: 1 as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    await expect(runJobs([['/bin/true']], { tree: 'yes' as never })).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('a spawn that fails leaves no tree behind, and the next one works', async () => {
    expect(() => spawn('/nonexistent/program', [], { tree: true })).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    const parent = `${cgroupRoot}/pidwatch-${process.pid}`;
    if (cgroupRoot !== null && existsSync(parent)) {
      for (const leaf of readdirSync(parent).filter((name) => name.startsWith('t'))) {
        expect(readFileSync(`${parent}/${leaf}/cgroup.procs`, 'utf8')).toBe('');
      }
    }
    const proc = spawn('sleep', ['60'], { stdio: 'ignore', tree: true });
    expect(proc.tree!.pids()).toEqual([proc.pid]);
    expect(proc.tree!.kill('SIGKILL')).toBe(true);
    expect((await proc.exited).signal).toBe('SIGKILL');
  });

  it('capabilities().cgroup names the parent of every leaf', async () => {
    const proc = spawn('/bin/true', [], { stdio: 'ignore', tree: true });
    if (cgroupRoot === null) expect(proc.tree!.cgroup).toBeNull();
    else expect(proc.tree!.cgroup!.startsWith(`${cgroupRoot}/pidwatch-${process.pid}/`)).toBe(true);
    await proc.exited;
  });
});

/** Where the cgroup2 file system is mounted (the part of a leaf path before its cgroup path). */
function cgroupMount(): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.includes(' - cgroup2 '));
  return line!.split(' ')[4];
}

describe.skipIf(cgroupRoot === null)('cgroup accounting and cleanup', () => {
  it("a grandchild's CPU time counts in status.tree, not in the leader's usage", async () => {
    const burn =
      'const t = process.cpuUsage(); while (process.cpuUsage(t).user < 300000); console.log("burnt")';
    const proc = spawn('sh', ['-c', `"${process.execPath}" -e '${burn}' & exec sleep 60`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      tree: true,
    });
    expect(await lineReader(proc)()).toBe('burnt');
    proc.kill('SIGKILL');
    const status = await proc.exited;
    const tree = status.tree!;
    expect(tree.mechanism).toBe('cgroup');
    expect(tree.userCPUTime! + tree.systemCPUTime!).toBeGreaterThanOrEqual(250_000);
    expect(status.resourceUsage!.userCPUTime + status.resourceUsage!.systemCPUTime).toBeLessThan(
      100_000,
    );
    expect(tree.memoryPeakBytes).toBe(
      existsSync(`${cgroupRoot}/memory.peak`) ? expect.any(Number) : null,
    );
  });

  it('a reused leaf reports only its new tree', async () => {
    for (let i = 0; i < 3; i++) {
      const status = await spawn('/bin/true', [], { stdio: 'ignore', tree: true }).exited;
      expect(status.tree!.userCPUTime! + status.tree!.systemCPUTime!).toBeLessThan(100_000);
    }
  });

  it('leaves no cgroup directory behind when the process exits', async () => {
    const script = `
      import { spawn } from ${JSON.stringify(distEntry)};
      import { Worker } from 'node:worker_threads';
      for (let i = 0; i < 5; i++) await spawn('/bin/true', [], { stdio: 'ignore', tree: true }).exited;
      await spawn('sh', ['-c', 'sleep 60 & true'], { stdio: 'ignore', tree: true }).exited;
      // A worker's trees end with it.
      const worker = new Worker(\`
        const { spawn } = await import(${JSON.stringify(distEntry)});
        const { parentPort } = await import('node:worker_threads');
        const p = spawn('sh', ['-c', 'echo $$; sleep 60 & wait'], { stdio: ['ignore', 'pipe', 'ignore'], tree: true });
        p.stdout.once('data', (d) => parentPort.postMessage(String(d).trim()));
      \`, { eval: true });
      const pid = await new Promise((resolve) => worker.once('message', resolve));
      await worker.terminate();
      console.log(JSON.stringify({ pid, dead: !(() => { try { process.kill(Number(pid), 0); return true; } catch { return false; } })() }));
      // Still running at exit: killed, and its leaf removed.
      const last = spawn('sh', ['-c', 'sleep 60 & wait'], { stdio: 'ignore', tree: true });
      console.log(last.pid);
      process.exit(0);
    `;
    const result = await runNode(['--input-type=module', '-e', script]);
    expect(result.stderr).toBe('');
    const [workerLine, lastPid] = result.stdout.trim().split('\n');
    const worker = JSON.parse(workerLine) as { pid: string; dead: boolean };
    const leader = procStat(Number(worker.pid));
    expect(leader === null || leader.state === 'Z').toBe(true);
    await waitFor(() => hasExited(Number(lastPid)), 'the last tree to be killed', 5000);
    const left = readdirSync(cgroupRoot!).filter((name) => name.startsWith('pidwatch-'));
    expect(left.filter((name) => !existsSync(`/proc/${name.slice('pidwatch-'.length)}`))).toEqual(
      [],
    );
  });
});

/** Kills a process this test left running on purpose (without tree: true). */
function end(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

describe('without tree: true the same scenarios are bounded by the timeout', () => {
  it('exec of `sh -c "sleep 30 & echo started"` settles by timeout + forceKillAfter', async () => {
    const started = performance.now();
    const output = await exec('sh', ['-c', 'sleep 30 & echo $!; echo started'], {
      timeout: 300,
      forceKillAfter: 300,
      reject: false,
    });
    const [sleeper, word] = (output.stdout as string).trim().split('\n');
    end(Number(sleeper));
    expect(word).toBe('started');
    expect(output.tree).toBeNull();
    expect(performance.now() - started).toBeLessThan(300 + 300 + 1000);
  });

  it('runJobs with tree: false and a daemon job still finishes', async () => {
    const started = performance.now();
    const summary = await runJobs([['sh', '-c', 'sleep 33 & echo $!']], {
      timeout: 300,
      forceKillAfter: 300,
      tree: false,
    });
    const daemon = Number(summary.results[0].stdout.trim());
    end(daemon);
    expect(daemon).toBeGreaterThan(1);
    expect(summary.results[0].status.tree).toBeNull();
    expect(performance.now() - started).toBeLessThan(300 + 300 + 1000);
  });

  it('kill() of a leader: exited resolves at its exit', async () => {
    const proc = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [sleeper] = await reportedPids(lineReader(proc), 1);
    expect(proc.kill()).toBe(true);
    expect((await proc.exited).signal).toBe('SIGTERM');
    // Without a tree, the child's own child lives on, as with child_process.
    expect(hasExited(sleeper)).toBe(false);
    end(sleeper);
  });
});

describe.skipIf(testMode !== 'pidfd')('pidwatch run', () => {
  const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

  it('runs jobs as trees: a daemon a job starts ends with it; --no-tree opts out', async () => {
    const tree = await runNode([
      cli,
      'run',
      '--timeout',
      '10',
      'sleep 30 & echo $! {}',
      ':::',
      '1',
    ]);
    expect(tree.code).toBe(0);
    const daemon = Number(tree.stdout.split(' ')[0]);
    strays.push(daemon);
    expect(hasExited(daemon)).toBe(true);

    const plain = await runNode([
      cli,
      'run',
      '--no-tree',
      '--timeout',
      '0.3',
      'sleep 30 & echo $! {}',
      ':::',
      '1',
    ]);
    const survivor = Number(plain.stdout.split(' ')[0]);
    strays.push(survivor);
    // The job ended with its shell (well before its timeout): the daemon holding its
    // output file is not waited for, as GNU parallel does not wait for it.
    expect(plain.code).toBe(0);
    expect(hasExited(survivor)).toBe(false);
  });
});

describe.skipIf(testMode !== 'pidfd')('10,000 trees', () => {
  it('leave no cgroup directory, idle or after the exit', async () => {
    const script = fileURLToPath(new URL('stress/trees.mjs', import.meta.url));
    const result = await runNode([script, '--count', '10000'], { timeout: 120_000 });
    const report = JSON.parse(result.stdout) as { pid: number; problems: unknown[] };
    expect(report.problems).toEqual([]);
    expect(result.code).toBe(0);
    if (cgroupRoot !== null) expect(existsSync(`${cgroupRoot}/pidwatch-${report.pid}`)).toBe(false);
  }, 180_000);
});
