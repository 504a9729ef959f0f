// What a user looks at to see whether processes and fds were cleaned up: /proc.
// Nothing here goes through pidwatch, so these checks are independent of it.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/** Absolute path of a file under test/fixtures/core. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/core/${name}`, import.meta.url));
}

/** The built entry point, for node scripts and workers that cannot load TypeScript. */
export const distEntry = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

/** The fds this process has open right now (numbers). */
export function openFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .sort((a, b) => a - b);
}

/** How many entries `/proc/self/fd` has. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** `fd -> link target` for every open fd, to show what leaked when a count differs. */
export function describeFds(): Record<number, string> {
  const out: Record<number, string> = {};
  for (const fd of openFds()) {
    try {
      out[fd] = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // closed between readdir and readlink (the readdir's own fd, for one)
    }
  }
  return out;
}

export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z, T, ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** clock ticks after boot: with the pid, names one process even across pid reuse */
  startTime: number;
  /** the kernel's PF_* flags (field 9) */
  flags: number;
}

/** `/proc/<pid>/stat`, or null when there is no such process. */
export function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  // fields after the comm, starting with field 3 (state)
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  return {
    pid,
    comm,
    state: rest[0],
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    startTime: Number(rest[19]),
    flags: Number(rest[6]),
  };
}

/** PF_EXITING: set when a process starts to exit, before it leaves its cgroup. */
const PF_EXITING = 0x4;

/**
 * True when the process has exited: gone, a zombie, or inside exit() already.
 * The kernel takes a process out of its cgroup (and a cgroup reads "populated 0")
 * a moment before it turns into a zombie; on a loaded machine that moment can
 * outlast the wait of whoever was told the cgroup is empty.
 */
export function hasExited(pid: number): boolean {
  const stat = procStat(pid);
  return (
    stat === null || stat.state === 'Z' || stat.state === 'X' || (stat.flags & PF_EXITING) !== 0
  );
}

/** True when the process is a zombie: exited but not reaped. */
export function isZombie(pid: number): boolean {
  return procStat(pid)?.state === 'Z';
}

/** The pids whose parent is `parent` (this process by default), zombies included. */
export function childrenOf(parent: number = process.pid): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat && stat.ppid === parent) out.push(stat.pid);
  }
  return out;
}

/** Waits for a condition that something else makes true (a /proc entry vanishing, a file
 * filling up) by checking it after each short pause; throws after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 1;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 50);
  }
}

/** Waits until `pid` (a `sleep`) sleeps. Only then does it hold just the fds it keeps:
 * the kernel closes the close-on-exec fds a moment after execve lets spawn() return (as
 * for posix_spawn and child_process), and the program's loader opens and closes its
 * libraries after that. */
export function sleeping(pid: number): Promise<void> {
  const inNanosleep = () => {
    try {
      return readFileSync(`/proc/${pid}/wchan`, 'utf8').includes('nanosleep');
    } catch {
      return false;
    }
  };
  return waitFor(inNanosleep, `${pid} to sleep`);
}

/** Resolves with the first line of `stream` that satisfies `match` (a string: equal to it);
 * rejects if the stream ends first. It leaves the stream flowing, so lines after the match
 * are not kept: call it again before they can arrive, or use it on a stream that the test
 * does not read otherwise. */
export function waitForLine(
  stream: Readable,
  match: string | ((line: string) => boolean) = () => true,
): Promise<string> {
  const test = typeof match === 'string' ? (line: string) => line === match : match;
  return new Promise((resolve, reject) => {
    let pending = '';
    const onData = (chunk: Buffer | string) => {
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (test(line)) {
          cleanup();
          resolve(line);
          return;
        }
        newline = pending.indexOf('\n');
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`stream ended before the expected line (rest: ${JSON.stringify(pending)})`));
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', reject);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', reject);
  });
}

/** Reads a stream to its end. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Runs a node script through node:child_process (not pidwatch): the outer harness for
 * tests of what happens to a whole Node process. */
export function runNode(
  args: string[],
  options: { timeout?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{
  pid: number | undefined;
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      args,
      { timeout: options.timeout ?? 20_000, env: options.env ?? process.env, cwd: options.cwd },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: unknown; signal?: string | null }) | null;
        resolve({
          pid: child.pid,
          code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
          signal: failure?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** One process, named so that a reused pid is not mistaken for it. */
export interface ProcessId {
  pid: number;
  startTime: number | null;
}

export function identify(pid: number): ProcessId {
  return { pid, startTime: procStat(pid)?.startTime ?? null };
}

/** True while that very process still has a /proc entry (running or a zombie). */
export function stillThere(id: ProcessId): boolean {
  const stat = procStat(id.pid);
  return stat !== null && stat.startTime === id.startTime;
}

/**
 * Records every child a test spawns and, after each test, checks that each one is gone
 * from /proc: exited and reaped, so neither running nor a zombie. Also checks that this
 * process has no child at all left, whatever started it (exec(), a worker thread).
 */
export function trackChildren(): <T extends { pid: number }>(proc: T) => T {
  const tracked: ProcessId[] = [];
  afterEach(() => {
    const left = tracked.filter(stillThere).map((id) => id.pid);
    tracked.length = 0;
    for (const pid of childrenOf()) if (!left.includes(pid)) left.push(pid);
    if (left.length > 0) {
      const described = left.map((pid) => `${pid} (${procStat(pid)?.state ?? 'gone'})`);
      throw new Error(`children left behind: ${described.join(', ')}`);
    }
  });
  return (proc) => {
    if (proc.pid > 0) tracked.push(identify(proc.pid));
    return proc;
  };
}

/**
 * Whether another user (not the owner, no group in common) may read `file`: it is
 * readable by others and every directory above it searchable by others. A checkout in a
 * private directory (mode 0700, as mktemp -d makes) is not, and a test that runs project
 * files as another user cannot run there.
 */
export function readableByOthers(file: string): boolean {
  try {
    const path = resolve(file);
    if ((statSync(path).mode & 0o004) === 0) return false;
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dir === dirname(dir)) return true;
    }
  } catch {
    return false;
  }
}
