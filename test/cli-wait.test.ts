// `pidwatch wait`: the built CLI (dist/cli/main.js, from `npm run build:ts`) waiting for
// processes that are not its children, as util-linux waitpid(1): silent unless -v, exit
// statuses 0 done, 1 error (bad usage too), 3 timeout.
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { capabilities, type Subprocess, spawn } from '../src/index.js';
import { procStat, trackChildren, waitFor, waitForLine } from './helpers/proc.js';
import { parseStrace, straceWorks, type TracedCall } from './helpers/strace.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const caps = capabilities();
const pidfdMode = caps.mode === 'pidfd';
/** Whether the CLI (same environment, same mode) learns a reaped non-child's status. */
const statusOfNonChild = pidfdMode && caps.pidfdInfoExit;

const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-cli-wait-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(main)) throw new Error('dist/cli/main.js is missing: run `npm run build:ts`');
});

const track = trackChildren();
/** Sleepers and shells a test starts; whatever still runs is killed after the test. */
const started: Subprocess[] = [];
afterEach(async () => {
  const left = started.splice(0);
  for (const proc of left) proc.kill('SIGKILL');
  await Promise.all(left.map((proc) => proc.exited));
});

function sleeper(): Subprocess {
  const proc = track(spawn('sleep', ['600'], { stdio: 'ignore' }));
  started.push(proc);
  return proc;
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Cli {
  child: ChildProcess;
  done: Promise<Outcome>;
}

/** Starts `[prefix...] node dist/cli/main.js wait ...args` through node:child_process. */
function startCli(args: string[], prefix: string[] = []): Cli {
  const command = [...prefix, process.execPath, main, 'wait', ...args];
  const child = spawnChild(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<Outcome>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

const cli = (args: string[]) => startCli(args).done;
const lines = (text: string) => text.split('\n').filter((line) => line !== '');

function pidfdCount(pid: number): number {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  return fds.filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[pidfd]';
    } catch {
      return false;
    }
  }).length;
}

/**
 * Whether the CLI process `pid` has set up its watches of `count` PIDs, so that the test
 * may end them. With pidfds: it holds that many. Without (sigchld mode) it polls /proc on
 * a timer, which leaves no trace to look for; but it opens every watch in one synchronous
 * run that starts once the addon is loaded: so once the addon is mapped and the process
 * blocks in its event loop's epoll wait, the watches are set up. (A timeout of the wait
 * tells nothing: V8 keeps timers of its own while the CLI still loads.)
 */
function isWatching(pid: number, count: number): boolean {
  if (pidfdMode) return pidfdCount(pid) >= count;
  let fields: string[];
  try {
    if (!readFileSync(`/proc/${pid}/maps`, 'utf8').includes('/pidwatch.node')) return false;
    fields = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' ');
  } catch {
    return false;
  }
  // x86_64 epoll_wait = 232, epoll_pwait = 281 (a process not in a system call reads "running").
  return fields[0] === '232' || fields[0] === '281';
}

/** The node process under `strace` (its only child). */
function tracee(stracePid: number): number | null {
  try {
    const text = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim();
    return text === '' ? null : Number(text.split(' ')[0]);
  } catch {
    return null;
  }
}

/** A shell (our child) whose background subshell (our grandchild) exits with `code` once sh reads a line. */
async function grandchild(code: number): Promise<{ sh: Subprocess; pid: number }> {
  const sh = track(
    spawn('sh', ['-c', `exec 3<&0; (read line <&3; exit ${code}) & echo $!; wait`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  started.push(sh);
  const pid = Number(await waitForLine(sh.stdout!));
  expect(procStat(pid)?.ppid).toBe(sh.pid);
  return { sh, pid };
}

/** A PID with no process: a child that exited and was reaped. */
async function missingPid(): Promise<number> {
  const proc = spawn('true', [], { stdio: 'ignore' });
  await proc.exited;
  return proc.pid;
}

describe('pidwatch wait: exits', () => {
  it('is silent by default and exits 0 once every PID has exited', async () => {
    const a = sleeper();
    const b = sleeper();
    const run = startCli([String(a.pid), String(b.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 2), 'the CLI to watch both PIDs');
    a.kill('SIGKILL');
    await a.exited;
    expect(run.child.exitCode).toBeNull();
    b.kill('SIGTERM');
    expect(await run.done).toEqual({ code: 0, signal: null, stdout: '', stderr: '' });
  });

  it("-v prints one line per exit with the code or signal (a grandchild's code too)", async () => {
    const { sh, pid: child } = await grandchild(5);
    const victim = sleeper();
    const run = startCli(['-v', String(child), String(victim.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 2), 'the CLI to watch both PIDs');
    sh.stdin!.end('go\n');
    await sh.exited;
    victim.kill('SIGKILL');
    const out = await run.done;
    expect(out).toMatchObject({ code: 0, signal: null, stderr: '' });
    const got = lines(out.stdout).sort();
    if (statusOfNonChild) {
      expect(got).toEqual(
        [
          `PID ${child} finished (exit code 5)`,
          `PID ${victim.pid} finished (killed by SIGKILL)`,
        ].sort(),
      );
    } else {
      // Without PIDFD_INFO_EXIT the status is known only if the poll saw the zombie.
      expect(got).toHaveLength(2);
      expect(got.find((l) => l.startsWith(`PID ${child} `))).toMatch(
        /finished( \(exit code 5\))?$/,
      );
      expect(got.find((l) => l.startsWith(`PID ${victim.pid} `))).toMatch(
        /finished( \(killed by SIGKILL\))?$/,
      );
    }
  });

  it('--json prints one JSON object per exit', async () => {
    const a = sleeper();
    const b = sleeper();
    const run = startCli(['--json', String(a.pid), String(b.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 2), 'the CLI to watch both PIDs');
    a.kill('SIGTERM');
    b.kill('SIGINT');
    const out = await run.done;
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const objects = lines(out.stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(objects).toHaveLength(2);
    const byPid = new Map(objects.map((o) => [o.pid, o]));
    for (const [proc, signal] of [
      [a, 'SIGTERM'],
      [b, 'SIGINT'],
    ] as const) {
      const object = byPid.get(proc.pid);
      expect(object).toMatchObject({ pid: proc.pid, code: null });
      if (statusOfNonChild) expect(object?.signal).toBe(signal);
      else expect([signal, null]).toContain(object?.signal);
    }
  });

  it('--count 1 of two PIDs returns after the first exit', async () => {
    const first = sleeper();
    const second = sleeper();
    const run = startCli(['-v', '--count', '1', String(first.pid), String(second.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 2), 'the CLI to watch both PIDs');
    second.kill('SIGTERM');
    const out = await run.done;
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(lines(out.stdout)).toHaveLength(1);
    expect(lines(out.stdout)[0]).toMatch(new RegExp(`^PID ${second.pid} finished`));
    // The other one is untouched.
    expect(first.kill(0)).toBe(true);
  });

  it('--timeout 0.2 on a long sleeper exits 3 and leaves it running', async () => {
    const proc = sleeper();
    const out = await cli(['--timeout', '0.2', String(proc.pid)]);
    expect(out).toMatchObject({ code: 3, signal: null, stdout: '' });
    expect(proc.kill(0)).toBe(true);
    expect(await cli(['-v', '-t', '0.1', String(proc.pid)])).toMatchObject({
      code: 3,
      stdout: 'Timeout expired\n',
    });
    // strtod's forms, as waitpid reads them
    expect(await cli(['-t', '1e-1', String(proc.pid)])).toMatchObject({ code: 3 });
  });

  it('a timeout past 2^31 ms, the longest timer Node keeps, is waited out, not refused', async () => {
    const proc = sleeper();
    const run = startCli(['-t', '3000000', String(proc.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 1), 'the CLI to watch the PID');
    proc.kill('SIGTERM');
    expect(await run.done).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('a missing PID exits 1 with a one-line reason', async () => {
    const pid = await missingPid();
    const proc = sleeper();
    const out = await cli([String(proc.pid), String(pid)]);
    expect(out).toMatchObject({ code: 1, signal: null, stdout: '' });
    expect(lines(out.stderr)).toHaveLength(1);
    expect(out.stderr).toContain(String(pid));
  });

  it('--exited accepts a missing PID (exit 0) and still waits for the others', async () => {
    const pid = await missingPid();
    expect(await cli(['--exited', String(pid)])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const verbose = await cli(['-ve', String(pid)]);
    expect(verbose).toMatchObject({ code: 0, stdout: '' });
    expect(verbose.stderr).toContain(`PID ${pid} has exited, skipping`);

    const proc = sleeper();
    const run = startCli(['--exited', '--json', String(pid), String(proc.pid)]);
    await waitFor(() => isWatching(run.child.pid!, 1), 'the CLI to watch the live PID');
    expect(run.child.exitCode).toBeNull();
    proc.kill('SIGTERM');
    const out = await run.done;
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const objects = lines(out.stdout).map((line) => JSON.parse(line) as { pid: number });
    expect(objects.map((o) => o.pid).sort()).toEqual([pid, proc.pid].sort());
  });
});

describe('pidwatch wait: usage', () => {
  it('--help exits 0 and prints the usage', async () => {
    const out = await cli(['--help']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toContain('pidwatch wait');
    expect(out.stdout).toContain('--timeout');
  });

  it('-V and --version print the version and exit 0', async () => {
    for (const flag of ['-V', '--version']) {
      const out = await cli([flag]);
      expect(out).toMatchObject({ code: 0, stderr: '' });
      expect(out.stdout).toMatch(/^pidwatch wait \d+\.\d+\.\d+\n$/);
    }
  });

  it.each([
    [[]],
    [['--bogus', '1']],
    [['abc']],
    [['0']],
    [['-5']],
    [['1.5']],
    [['--timeout']],
    [['--timeout', 'x', '1']],
    [['--timeout', '-1', '1']],
    [['--count', '0', '1']],
    [['--count', '3', '1', '2']],
    [['--count', '1', '--exited', '1']],
    [['-j', '1']],
  ])('bad usage %j exits 1 (as waitpid) with a one-line reason', async (args) => {
    const out = await cli(args);
    expect(out).toMatchObject({ code: 1, signal: null, stdout: '' });
    expect(lines(out.stderr)).toHaveLength(1);
  });
});

describe('pidwatch wait: many PIDs', () => {
  it('waits for 1,000 PIDs at once and reports all of them', async () => {
    const procs = Array.from({ length: 1000 }, () => sleeper());
    const run = startCli(['--verbose', ...procs.map((p) => String(p.pid))]);
    await waitFor(() => isWatching(run.child.pid!, 1000), 'the CLI to watch 1,000 PIDs', 30_000);
    for (const proc of procs) proc.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    const out = await run.done;
    expect(out).toMatchObject({ code: 0, signal: null, stderr: '' });
    const got = lines(out.stdout);
    expect(got).toHaveLength(1000);
    const pids = got.map((line) => Number(line.split(' ')[1])).sort((x, y) => x - y);
    expect(pids).toEqual(procs.map((p) => p.pid).sort((x, y) => x - y));
    const pattern = statusOfNonChild
      ? /^PID \d+ finished \(killed by SIGTERM\)$/
      : /^PID \d+ finished( \(killed by SIGTERM\))?$/;
    expect(got.filter((line) => !pattern.test(line))).toEqual([]);
  });

  it.skipIf(!pidfdMode || !caps.pidfdOpen || !straceWorks)(
    'strace on 100 PIDs: pidfd_open each, an epoll wait, no periodic wake-ups (pidfd mode, strace usable)',
    async () => {
      const log = join(scratch, 'wait-trace.txt');
      const procs = Array.from({ length: 100 }, () => sleeper());
      const run = startCli(
        ['-v', ...procs.map((p) => String(p.pid))],
        [
          'strace',
          '-f',
          '-e',
          'trace=pidfd_open,epoll_wait,epoll_pwait,nanosleep,clock_nanosleep',
          '-o',
          log,
        ],
      );
      await waitFor(() => {
        const node = tracee(run.child.pid!);
        return node !== null && pidfdCount(node) >= 100;
      }, 'the traced CLI to watch 100 PIDs');
      // The idle stretch that the trace is about: the CLI must sleep through it. Its
      // start-up (Node loading modules wakes the loop once per file read, more often on a
      // loaded machine) is traced before it and does not count.
      const beforeIdle = parseStrace(readFileSync(log, 'utf8')).length;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // What the CLI did in the idle second: the exits below may each wake it once.
      const idleCalls = parseStrace(readFileSync(log, 'utf8')).slice(beforeIdle);
      for (const proc of procs) proc.kill('SIGTERM');
      const out = await run.done;
      expect(out.code).toBe(0);
      expect(lines(out.stdout)).toHaveLength(100);

      const text = readFileSync(log, 'utf8');
      const calls = parseStrace(text);
      const opened = calls.filter((c) => c.call === 'pidfd_open');
      const watched = new Set(procs.map((p) => p.pid));
      expect(opened.filter((c) => watched.has(Number(c.args[0]))).length).toBe(100);
      // A blocking wait: a non-zero timeout (-1: forever). A wait that timed out returned 0.
      const isBlockingWait = (c: (typeof calls)[number]) =>
        (c.call === 'epoll_wait' || c.call === 'epoll_pwait') && c.args[3] !== '0';
      const blocking = calls.filter(isBlockingWait);
      expect(blocking.length).toBeGreaterThan(0);
      expect(blocking.some((c) => c.args[3] === '-1')).toBe(true);
      const timedOut = blocking.filter((c) => c.result === '0');
      expect(timedOut.length, describeCalls(timedOut)).toBeLessThanOrEqual(2);
      // A 10 ms poll would be ~100 wake-ups in the idle second; a sleeper none. The
      // exits, signalled one by one, may wake it once each (how many share a wake-up
      // is up to the scheduler).
      const idleWaits = idleCalls.filter(isBlockingWait);
      expect(idleWaits.length, describeCalls(idleWaits)).toBeLessThan(30);
      const afterStartUp = calls.slice(beforeIdle).filter(isBlockingWait);
      expect(afterStartUp.length, describeCalls(afterStartUp)).toBeLessThan(30 + procs.length);
      const sleeps = calls.filter((c) => c.call === 'nanosleep' || c.call === 'clock_nanosleep');
      expect(sleeps.length, describeCalls(sleeps)).toBeLessThanOrEqual(2);
    },
  );
});

function describeCalls(calls: TracedCall[]): string {
  return calls
    .slice(0, 20)
    .map((c) => `${c.pid} ${c.line}`)
    .join('\n');
}
