// The guardian: trees started with killOnParentExit die with their parent, even
// when the parent is SIGKILLed, and no cgroup directory is left behind.
import { spawn as spawnChild } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { testMode } from './helpers/mode.js';
import { distEntry } from './helpers/proc.js';

const parentScript = fileURLToPath(new URL('./fixtures/queue/guarded-parent.mjs', import.meta.url));
const syncParentScript = fileURLToPath(
  new URL('./fixtures/queue/guarded-sync-parent.mjs', import.meta.url),
);
const asyncParentScript = fileURLToPath(
  new URL('./fixtures/queue/guarded-async-parent.mjs', import.meta.url),
);
const runs = testMode === 'pidfd' || testMode === 'sigchld';

/** Live (not zombie) processes among `pids`. */
function living(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(' ').map(Number));
  }
  return pids;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

interface Started {
  pid: number;
  reused?: boolean;
  guardian: number;
  pids: number[];
  cgroups: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const parents: Started[] = [];

/** Starts the parent with `trees` trees and waits for its report. */
async function startParent(
  trees: number,
  kind: 'setsid' | 'group' | 'reuse',
  env: NodeJS.ProcessEnv,
  then?: 'exit',
): Promise<Started> {
  const child = spawnChild(
    process.execPath,
    [parentScript, distEntry, String(trees), kind, ...(then ? [then] : [])],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    child.once('exit', () => reject(new Error(`the parent exited before reporting: ${text}`)));
  });
  const report = JSON.parse(line) as { pids: number[]; cgroups: string[]; reused?: boolean };
  const started: Started = { pid: child.pid!, guardian: 0, ...report, exited };
  parents.push(started);
  if (!then) {
    started.guardian = childrenOf(child.pid!).find((pid) => comm(pid) === 'pidwatch-guardi') ?? 0;
  }
  return started;
}

/** After a failed check: what the guardian should have ended, ended here. */
function cleanUp(parent: Started): void {
  if (living([parent.pid]).length > 0) process.kill(parent.pid, 'SIGKILL');
  for (const pid of living(parent.pids)) process.kill(pid, 'SIGKILL');
  for (const dir of parent.cgroups) {
    try {
      rmdirSync(dir);
      rmdirSync(dirname(dir));
    } catch {
      // gone already, or still emptying
    }
  }
}

describe.runIf(runs)('guardian', () => {
  afterEach(() => {
    for (const parent of parents.splice(0)) cleanUp(parent);
  });

  it('a SIGKILLed parent: 5 trees with setsid and double-forked members gone within 1 s, no cgroup left', async () => {
    const parent = await startParent(5, 'setsid', {});
    expect(parent.pids).toHaveLength(20);
    expect(parent.guardian).toBeGreaterThan(0);
    // The guardian is in a session of its own, so a terminal's signals to the parent's miss it.
    const stat = readFileSync(`/proc/${parent.guardian}/stat`, 'utf8');
    const [, , , sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(Number(sid)).toBe(parent.guardian);
    const parentDirs = [...new Set(parent.cgroups.map((dir) => dirname(dir)))];

    process.kill(parent.pid, 'SIGKILL');
    const killedAt = Date.now();
    const gone = await until(() => living(parent.pids).length === 0, 5000);
    const took = Date.now() - killedAt;
    expect(gone).toBe(true);
    expect(took).toBeLessThan(1000);
    expect((await parent.exited).signal).toBe('SIGKILL');
    // The guardian removes the leaves and their parent directory, then exits.
    expect(
      await until(() => parent.cgroups.concat(parentDirs).every((dir) => !existsSync(dir)), 5000),
    ).toBe(true);
    expect(await until(() => living([parent.guardian]).length === 0, 5000)).toBe(true);
  });

  it('pgroup trees die with a SIGKILLed parent too', async () => {
    const parent = await startParent(2, 'group', { PIDWATCH_CGROUP: '0' });
    expect(parent.cgroups).toEqual([]);
    expect(parent.pids).toHaveLength(4);
    process.kill(parent.pid, 'SIGKILL');
    expect(await until(() => living(parent.pids).length === 0, 5000)).toBe(true);
  });

  /** Runs a fixture that starts one guarded tree, SIGKILLs itself, and checks the tree dies. */
  async function killedWithTree(script: string): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'pidwatch-guard-'));
    const file = join(dir, 'pids');
    const child = spawnChild(process.execPath, [script, distEntry, file], {
      stdio: 'inherit',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    const pidsWritten = () => existsSync(file) && readFileSync(file, 'utf8').split('\n').length > 2;
    const started: Started = {
      pid: child.pid!,
      guardian: 0,
      pids: [],
      cgroups: [],
      exited: exited.then((signal) => ({ code: null, signal })),
    };
    parents.push(started);
    let ended = false;
    void exited.then(() => {
      ended = true;
    });
    try {
      // A fixture that fails (its error is on this test's stderr) ends the wait at once.
      await until(() => pidsWritten() || ended, 10_000);
      expect(pidsWritten(), 'the fixture wrote its pids before it ended').toBe(true);
      started.pids = readFileSync(file, 'utf8').trim().split('\n').map(Number);
      const [orphan] = started.pids;
      let cgroupLine: string | undefined;
      try {
        cgroupLine = readFileSync(`/proc/${orphan}/cgroup`, 'utf8')
          .split('\n')
          .find((line) => line.startsWith('0::'));
      } catch {
        // ended already (the parent that kills itself may have, and the guardian then)
      }
      const mount = existsSync('/sys/fs/cgroup/unified/cgroup.procs')
        ? '/sys/fs/cgroup/unified'
        : '/sys/fs/cgroup';
      const leafDir = cgroupLine && cgroupLine !== '0::/' ? mount + cgroupLine.slice(3) : null;
      if (leafDir) started.cgroups.push(leafDir);
      if (script === syncParentScript) process.kill(child.pid!, 'SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // The leader goes by PR_SET_PDEATHSIG; the orphan only by the guardian.
      expect(await until(() => living(started.pids).length === 0, 5000)).toBe(true);
      if (leafDir) expect(await until(() => !existsSync(leafDir), 5000)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('a tree run by execSync dies with its SIGKILLed parent, leaving no cgroup', () =>
    killedWithTree(syncParentScript));

  // The guardian must hold the leaf before the tree can fork: here the parent dies before
  // its event loop adopts the spawn at all.
  it('a spawnAsync tree dies with a parent SIGKILLed before the spawn was adopted', () =>
    killedWithTree(asyncParentScript));

  it('a parent that exits normally takes its trees and its guardian with it', async () => {
    const parent = await startParent(2, 'setsid', {}, 'exit');
    expect((await parent.exited).code).toBe(0);
    expect(await until(() => living(parent.pids).length === 0, 5000)).toBe(true);
    expect(await until(() => parent.cgroups.every((dir) => !existsSync(dir)), 5000)).toBe(true);
  });

  it('a tree without killOnParentExit, in a pooled leaf a guarded tree held before, outlives a SIGKILLed parent', async () => {
    const parent = await startParent(1, 'reuse', {});
    expect(parent.reused).toBe(true);
    expect(parent.guardian).toBeGreaterThan(0);
    process.kill(parent.pid, 'SIGKILL');
    // The guardian has done its work once it has exited.
    expect(await until(() => living([parent.guardian]).length === 0, 5000)).toBe(true);
    expect(living(parent.pids)).toEqual(parent.pids);
    for (const pid of parent.pids) process.kill(pid, 'SIGKILL');
    expect(await until(() => living(parent.pids).length === 0, 5000)).toBe(true);
  });
});
