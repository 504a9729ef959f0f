// The tier pidwatch picks from its probe, and the probe's lack of side effects.
// test/run-modes.mjs runs this file under each seccomp filter; the first test is
// what proves that each filter really moved pidwatch to the expected tier.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { capabilities, spawn } from '../src/index.js';
import { expected, isSigchldMode, testMode } from './helpers/mode.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const distEntry = join(root, 'dist', 'index.js');

/** The newest modification time of any file under dir. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Runs an ES module in a fresh Node process that imports the built package (a
 * fresh process cannot load the TypeScript sources) and prints one JSON line.
 */
function runChild(source: string, env: NodeJS.ProcessEnv = process.env): Promise<any> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', source, pathToFileURL(distEntry).href],
      { env, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`child exited ${error.code ?? error.signal}:\n${stderr}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`child printed no JSON: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** True if pid is a zombie child of this process (exited, never reaped). */
function isOurZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return state === 'Z' && Number(ppid) === process.pid;
}

function pidfdTarget(pidfd: number): string {
  return readlinkSync(`/proc/self/fd/${pidfd}`);
}

function pidOfPidfd(pidfd: number): number | null {
  const match = /^Pid:\s*(-?\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'));
  return match ? Number(match[1]) : null;
}

describe(`capabilities() in mode ${testMode}`, () => {
  it('reports the tier this mode selects', () => {
    expect(capabilities()).toMatchObject(expected);
  });

  it('has exactly the documented fields, all of the right type', () => {
    const caps = capabilities();
    expect(Object.keys(caps).sort()).toEqual(
      [
        'cgroup',
        'clone3Pidfd',
        'mode',
        'pidfdInfoExit',
        'pidfdOpen',
        'pidfdSendSignal',
        'waitidPidfd',
      ].sort(),
    );
    expect(['pidfd', 'sigchld']).toContain(caps.mode);
    expect(caps.cgroup === null || typeof caps.cgroup === 'string').toBe(true);
    for (const [key, value] of Object.entries(caps)) {
      if (key !== 'mode' && key !== 'cgroup') expect(typeof value, key).toBe('boolean');
    }
  });

  it('is probed once: the same answer every time', () => {
    const first = capabilities();
    const second = capabilities();
    expect(second).toEqual(first);
    expect(capabilities()).toEqual(first);
  });

  it('pidfd mode needs a way to get a pidfd', () => {
    const caps = capabilities();
    if (caps.mode === 'pidfd') expect(caps.clone3Pidfd || caps.pidfdOpen).toBe(true);
  });
});

describe(`spawned processes in mode ${testMode}`, () => {
  it.skipIf(isSigchldMode())('hold a pidfd that refers to the child until the reap', async () => {
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      expect(p.pidfd).toEqual(expect.any(Number));
      const pidfd = p.pidfd!;
      expect(pidfdTarget(pidfd)).toBe('anon_inode:[pidfd]');
      expect(pidOfPidfd(pidfd)).toBe(p.pid);
    } finally {
      p.kill('SIGKILL');
    }
    const status = await p.exited;
    expect(status.signal).toBe('SIGKILL');
    expect(p.pidfd).toBeNull();
  });

  it.skipIf(!isSigchldMode())('have no pidfd in sigchld mode', async () => {
    const p = spawn('sh', ['-c', 'exit 3'], { stdio: 'ignore' });
    expect(p.pidfd).toBeNull();
    const status = await p.exited;
    expect(status.code).toBe(3);
    expect(p.pidfd).toBeNull();
  });

  it('are killed while running, and kill() is refused after the reap', async () => {
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    expect(p.kill(0)).toBe(true);
    expect(p.kill('SIGTERM')).toBe(true);
    const status = await p.exited;
    expect(status).toMatchObject({ pid: p.pid, code: null, signal: 'SIGTERM' });
    expect(p.kill('SIGKILL')).toBe(false);
    expect(p.kill(0)).toBe(false);
    expect(isOurZombie(p.pid)).toBe(false);
  });
});

describe('in a fresh process', () => {
  beforeAll(() => {
    if (!existsSync(distEntry)) throw new Error('dist/index.js is missing: run npm run build:ts');
    // npm test builds dist/ first; a bare vitest run may meet an old build.
    if (statSync(distEntry).mtimeMs < newestMtime(join(root, 'src'))) {
      console.warn('fallback.test.ts: dist/ is older than src/; npm run build:ts to refresh it');
    }
  });

  it('the probe sends no SIGCHLD and leaves no fd, child or zombie behind', async () => {
    const source = `
      import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
      let sigchld = 0;
      process.on('SIGCHLD', () => { sigchld++; });
      const fds = () => Object.fromEntries(readdirSync('/proc/self/fd').map((fd) => {
        try { return [fd, readlinkSync('/proc/self/fd/' + fd)]; } catch { return [fd, '?']; }
      }));
      const children = () => readdirSync('/proc').filter((name) => /^\\d+$/.test(name)).flatMap((pid) => {
        try {
          const stat = readFileSync('/proc/' + pid + '/stat', 'utf8');
          const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return Number(ppid) === process.pid ? [pid + ':' + state] : [];
        } catch { return []; }
      });
      // libuv reserves one /dev/null fd per loop at its first stream (an EMFILE
      // escape hatch); open stdout's stream first so that reservation is not counted.
      process.stdout;
      const before = fds();
      const { capabilities } = await import(process.argv[1]);
      const caps = capabilities();
      // Signals reach JS in the order they arrived: once this SIGUSR2 has been
      // handled, any SIGCHLD the probe caused has been handled too.
      // Signal handles do not keep the loop alive; the interval does, meanwhile.
      const alive = setInterval(() => {}, 60_000);
      await new Promise((resolve) => {
        process.once('SIGUSR2', resolve);
        process.kill(process.pid, 'SIGUSR2');
      });
      clearInterval(alive);
      // pidwatch's own epoll set, where its pidfds wait, opens with the addon: not the probe's.
      const after = Object.fromEntries(Object.entries(fds()).filter(([fd, target]) =>
        before[fd] === target || target !== 'anon_inode:[eventpoll]'));
      const added = Object.entries(after).filter(([fd, target]) => before[fd] !== target && target !== '?');
      console.log(JSON.stringify({ caps, sigchld, added, children: children(),
        countBefore: Object.keys(before).length, countAfter: Object.keys(after).length }));
    `;
    const result = await runChild(source);
    expect(result.caps).toMatchObject(expected);
    expect(result.sigchld).toBe(0);
    expect(result.added).toEqual([]);
    expect(result.countAfter).toBe(result.countBefore);
    expect(result.children).toEqual([]);
  });

  it('PIDWATCH_PIDFD=0 forces sigchld mode and spawns without a pidfd', async () => {
    const source = `
      const { capabilities, spawn } = await import(process.argv[1]);
      const caps = capabilities();
      const p = spawn('sh', ['-c', 'exit 7'], { stdio: 'ignore' });
      const pidfd = p.pidfd;
      const status = await p.exited;
      console.log(JSON.stringify({ mode: caps.mode, pidfd, code: status.code, after: p.pidfd }));
    `;
    const result = await runChild(source, { ...process.env, PIDWATCH_PIDFD: '0' });
    expect(result).toEqual({ mode: 'sigchld', pidfd: null, code: 7, after: null });
  });

  it('without PIDWATCH_PIDFD the mode is the one this run expects', async () => {
    const env = { ...process.env };
    delete env.PIDWATCH_PIDFD;
    const source = `
      const { capabilities } = await import(process.argv[1]);
      console.log(JSON.stringify(capabilities()));
    `;
    const caps = await runChild(source, env);
    expect(caps.mode).toBe(testMode === 'sigchld' ? 'pidfd' : expected.mode);
  });
});
