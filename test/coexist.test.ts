// pidwatch shares the process with Node's child_process: neither may reap, lose or
// misreport the other's children, and a user's SIGCHLD handler keeps running.
// This holds in every mode; in sigchld mode it is the whole point of waiting
// with waitid(P_PID) for pidwatch's own children only.
import { type ChildProcess, spawn as cpSpawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { onAnyExit } from '../src/exits-hub.js';
import { spawn } from '../src/index.js';
import type { ExitStatus } from '../src/types.js';
import { testMode } from './helpers/mode.js';

interface Outcome {
  code: number | null;
  signal: string | null;
}

const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGUSR1', 'SIGHUP'] as const;

/** The i-th job: most exit with a code, every fifth kills itself with a signal. */
function job(i: number): { args: string[]; expected: Outcome } {
  if (i % 5 === 4) {
    const signal = SIGNALS[Math.floor(i / 5) % SIGNALS.length];
    return {
      args: ['-c', 'kill -s "$1" $$', 'sh', signal.slice(3)],
      expected: { code: null, signal },
    };
  }
  const code = (i * 37) % 256;
  return { args: ['-c', 'exit "$1"', 'sh', String(code)], expected: { code, signal: null } };
}

/** Resolves on a child_process child's exit; counts 'exit' events in `events`. */
function childProcessExit(child: ChildProcess, events: Map<number, number>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('exit', (code, signal) => {
      events.set(child.pid!, (events.get(child.pid!) ?? 0) + 1);
      resolve({ code, signal });
    });
  });
}

/** [state, ppid] of a process, or null once it is gone. */
function procState(pid: number): [string, number] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [state, Number(ppid)];
}

/** Zombie children of this process, of any origin: none may be left. */
function ourZombies(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      const state = procState(pid);
      return state !== null && state[0] === 'Z' && state[1] === process.pid;
    });
}

interface Launched {
  kind: 'child_process' | 'pidwatch';
  pid: number;
  expected: Outcome;
  outcome: Promise<Outcome>;
}

function launch(i: number, cpEvents: Map<number, number>): Launched {
  const { args, expected } = job(i);
  if (i % 2 === 0) {
    const child = cpSpawn('sh', args, { stdio: 'ignore' });
    return {
      kind: 'child_process',
      pid: child.pid!,
      expected,
      outcome: childProcessExit(child, cpEvents),
    };
  }
  const p = spawn('sh', args, { stdio: 'ignore' });
  const outcome = p.exited.then(({ code, signal }: ExitStatus) => ({ code, signal }));
  return { kind: 'pidwatch', pid: p.pid, expected, outcome };
}

/** Runs `total` jobs alternating between the two spawners, at most `limit` alive. */
async function runInterleaved(total: number, limit: number) {
  const cpEvents = new Map<number, number>();
  const hubEvents = new Map<number, number>();
  const stop = onAnyExit((status) =>
    hubEvents.set(status.pid, (hubEvents.get(status.pid) ?? 0) + 1),
  );
  const launched: Launched[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const one = launch(next++, cpEvents);
        launched.push(one);
        await one.outcome;
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, total) }, worker));
  } finally {
    stop();
  }
  return { launched, cpEvents, hubEvents };
}

describe(`child_process and pidwatch together in mode ${testMode}`, () => {
  it('50 + 50 interleaved children all report their own exits', async () => {
    const { launched, cpEvents, hubEvents } = await runInterleaved(100, 100);
    expect(launched).toHaveLength(100);
    for (const one of launched) {
      expect(await one.outcome, `${one.kind} pid ${one.pid}`).toEqual(one.expected);
    }
    const ours = launched.filter((one) => one.kind === 'pidwatch').map((one) => one.pid);
    const theirs = launched.filter((one) => one.kind === 'child_process').map((one) => one.pid);
    expect([...hubEvents.keys()].sort()).toEqual([...ours].sort());
    for (const pid of theirs) expect(cpEvents.get(pid)).toBe(1);
  });

  it("a user's process.on('SIGCHLD') handler still runs", async () => {
    let calls = 0;
    let seen!: () => void;
    const called = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const handler = () => {
      calls++;
      seen();
    };
    process.on('SIGCHLD', handler);
    try {
      const cpEvents = new Map<number, number>();
      const a = launch(0, cpEvents);
      const b = launch(1, cpEvents);
      expect(await a.outcome).toEqual(a.expected);
      expect(await b.outcome).toEqual(b.expected);
      // A child_process child always raises SIGCHLD; wait for the handler to see it.
      await called;
      expect(calls).toBeGreaterThanOrEqual(1);
    } finally {
      process.off('SIGCHLD', handler);
    }
    // child_process still works once the user's handler is gone.
    const cpEvents = new Map<number, number>();
    const c = launch(2, cpEvents);
    expect(await c.outcome).toEqual(c.expected);
  });

  it('spawnSync while pidwatch children run leaves both exits intact', async () => {
    const p = spawn('sh', ['-c', 'read line; exit 5'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const sync = spawnSync('sh', ['-c', 'exit 9']);
    expect(sync.status).toBe(9);
    const other = spawn('sh', ['-c', 'exit 6'], { stdio: 'ignore' });
    expect((await other.exited).code).toBe(6);
    p.stdin!.end('go\n');
    expect((await p.exited).code).toBe(5);
  });

  it('a stress of 500 mixed processes: every exit reported once, no zombie', async () => {
    const { launched, cpEvents, hubEvents } = await runInterleaved(500, 64);
    expect(launched).toHaveLength(500);

    const wrong: string[] = [];
    for (const one of launched) {
      const outcome = await one.outcome;
      if (outcome.code !== one.expected.code || outcome.signal !== one.expected.signal) {
        wrong.push(`${one.kind} ${one.pid}: ${JSON.stringify(outcome)}`);
      }
    }
    expect(wrong).toEqual([]);

    const ours = launched.filter((one) => one.kind === 'pidwatch');
    const theirs = launched.filter((one) => one.kind === 'child_process');
    expect(ours).toHaveLength(250);
    expect(theirs).toHaveLength(250);
    expect(ours.filter((one) => hubEvents.get(one.pid) !== 1).map((one) => one.pid)).toEqual([]);
    expect(theirs.filter((one) => cpEvents.get(one.pid) !== 1).map((one) => one.pid)).toEqual([]);
    // pidwatch reported nothing but its own children.
    expect(hubEvents.size).toBe(250);

    const left = launched.filter((one) => {
      const state = procState(one.pid);
      return state !== null && state[1] === process.pid;
    });
    expect(left.map((one) => `${one.kind} ${one.pid}`)).toEqual([]);
    expect(ourZombies()).toEqual([]);
  });
});
