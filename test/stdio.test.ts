// stdio: pipes as Node streams, inherit, ignore, fd numbers, streams with an fd, extra
// fds, large outputs and back-pressure.
import { spawn as cpSpawn, execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { exec, execSync, spawn } from '../src/index.js';
import { haveCompiler } from './fixtures/reliability/support.js';
import { testMode } from './helpers/mode.js';
import {
  fixture,
  readAll,
  runNode,
  sleeping,
  trackChildren,
  waitFor,
  waitForLine,
} from './helpers/proc.js';
import { parseStrace, straceWorks } from './helpers/strace.js';

const launcher = fileURLToPath(new URL('../build/Release/seccomp-launch', import.meta.url));

/** The hard RLIMIT_NOFILE of this process. */
function hardNofile(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/^Max open files\s+\d+\s+(\d+)/m.exec(limits)?.[1] ?? 0);
}

/** The close_range fallback test needs the launcher, strace and prlimit; one mode. */
const closeFallbackRuns =
  testMode === 'pidfd' &&
  existsSync(launcher) &&
  straceWorks &&
  spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).status === 0;

function runCommand(
  file: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const track = trackChildren();
const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-stdio-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What the child's fd n points at, read from /proc while it runs. */
function childFd(pid: number, fd: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
}

describe("'pipe'", () => {
  it('is the default: stdin Writable, stdout and stderr Readable, also as stdio[0..2]', async () => {
    const proc = track(spawn('/bin/sh', ['-c', 'cat; echo to-stderr >&2']));
    expect(proc.stdin).toBeInstanceOf(Writable);
    expect(proc.stdout).toBeInstanceOf(Readable);
    expect(proc.stderr).toBeInstanceOf(Readable);
    expect(proc.stdio[0]).toBe(proc.stdin);
    expect(proc.stdio[1]).toBe(proc.stdout);
    expect(proc.stdio[2]).toBe(proc.stderr);
    proc.stdin!.end('to-stdout\n');
    const [out, err, status] = await Promise.all([
      readAll(proc.stdout!),
      readAll(proc.stderr!),
      proc.exited,
    ]);
    expect(out.toString()).toBe('to-stdout\n');
    expect(err.toString()).toBe('to-stderr\n');
    expect(status.code).toBe(0);
  });

  it('delivers EOF on stdin.end(): cat exits 0', async () => {
    const proc = track(spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] }));
    proc.stdin!.write('one ');
    proc.stdin!.end('two');
    const [out, status] = await Promise.all([readAll(proc.stdout!), proc.exited]);
    expect(out.toString()).toBe('one two');
    expect(status).toMatchObject({ code: 0, signal: null });
  });

  it('round-trips binary data, every byte value', async () => {
    const bytes = Buffer.alloc(256 * 64);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
    const proc = track(spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] }));
    proc.stdin!.end(bytes);
    const [out] = await Promise.all([readAll(proc.stdout!), proc.exited]);
    expect(out.equals(bytes)).toBe(true);
  });

  it('reports EPIPE on stdin as an error event when the child closed its end', async () => {
    const proc = track(
      spawn('/bin/sh', ['-c', 'exec 0<&-; echo closed; exec sleep 60'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      }),
    );
    await waitForLine(proc.stdout!, 'closed');
    const failed = once(proc.stdin!, 'error');
    proc.stdin!.write(Buffer.alloc(1024 * 1024));
    const [error] = await failed;
    expect((error as NodeJS.ErrnoException).code).toBe('EPIPE');
    proc.kill('SIGKILL');
    expect((await proc.exited).signal).toBe('SIGKILL');
  });

  it('resolves exited when the child exits, though a grandchild still holds stdout', async () => {
    // the background subshell keeps the stdout pipe open until the test writes a line
    // (through fd 3: a background job's own stdin is /dev/null)
    const proc = track(
      spawn('/bin/sh', ['-c', 'exec 3<&0; (read line <&3; echo late) & echo early'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      }),
    );
    const events: string[] = [];
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => events.push(chunk.trim()));
    const ended = once(proc.stdout!, 'end').then(() => events.push('end'));
    const status = await proc.exited;
    events.push('exited');
    expect(status.code).toBe(0);
    proc.stdin!.end('go\n');
    await ended;
    // 'early' may be read before or after the exit is seen; 'late' only after it
    const text = events.filter((e) => e !== 'exited' && e !== 'end').join('\n');
    expect(text.split('\n').filter((line) => line !== '')).toEqual(['early', 'late']);
    const lateAt = events.findIndex((e) => e.includes('late'));
    expect(events.indexOf('exited')).toBeLessThan(lateAt);
    expect(events.at(-1)).toBe('end');
  });

  it('gives an extra fd as stdio[3]', async () => {
    const proc = track(
      spawn('/bin/sh', ['-c', 'echo three >&3; echo one'], {
        stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
      }),
    );
    expect(proc.stdio.length).toBe(4);
    expect(proc.stdio[3]).not.toBeNull();
    expect(proc.stdin).toBeNull();
    expect(proc.stderr).toBeNull();
    const [three, one, status] = await Promise.all([
      readAll(proc.stdio[3] as Readable),
      readAll(proc.stdout!),
      proc.exited,
    ]);
    expect(three.toString()).toBe('three\n');
    expect(one.toString()).toBe('one\n');
    expect(status.code).toBe(0);
  });

  it('gives the child blocking pipe ends, as child_process does, from spawn, exec and execSync', async () => {
    // A program expects a blocking stdout; the parent's ends are non-blocking. A line per
    // fd: whether O_NONBLOCK (04000 in /proc's octal flags) is set on it.
    const report = (fds: string) =>
      `for fd in ${fds}; do f=$(sed -n "s/^flags:[[:space:]]*//p" /proc/$$/fdinfo/$fd); ` +
      'echo "$fd $(( (0$f & 04000) != 0 ))"; done';
    const proc = track(
      spawn('/bin/sh', ['-c', `${report('0 1 2 3')} >&3`], {
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      }),
    );
    proc.stdout!.resume();
    proc.stderr!.resume();
    const [lines, status] = await Promise.all([readAll(proc.stdio[3] as Readable), proc.exited]);
    expect(status.code).toBe(0);
    expect(lines.toString()).toBe('0 0\n1 0\n2 0\n3 0\n');
    const args = ['-c', report('0 1 2')];
    expect((await exec('/bin/sh', args, { input: '' })).stdout).toBe('0 0\n1 0\n2 0\n');
    expect(execSync('/bin/sh', args, { input: '' }).stdout).toBe('0 0\n1 0\n2 0\n');
  });

  it('carries 100 MiB intact', async () => {
    const size = 100 * 1024 * 1024;
    // the child hashes what it writes (tee to the stdout pipe through fd 3) and reports
    // the hash on stderr; the test hashes what it receives
    const proc = track(
      spawn(
        '/bin/sh',
        ['-c', `{ head -c ${size} /dev/urandom | tee /dev/fd/3 | sha256sum >&2; } 3>&1`],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    const hash = createHash('sha256');
    let received = 0;
    proc.stdout!.on('data', (chunk: Buffer) => {
      received += chunk.length;
      hash.update(chunk);
    });
    const [err, status] = await Promise.all([
      readAll(proc.stderr!),
      proc.exited,
      once(proc.stdout!, 'end'),
    ]);
    expect(status.code).toBe(0);
    expect(received).toBe(size);
    expect(err.toString().split(' ')[0]).toBe(hash.digest('hex'));
  });

  it('lets a child blocked on a full pipe go on as soon as the parent reads', async () => {
    const size = 4 * 1024 * 1024; // far more than a pipe and a stream buffer hold
    const proc = track(
      spawn('head', ['-c', String(size), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] }),
    );
    // nobody reads yet: the child ends up blocked in write(1, ...)
    await waitFor(() => {
      try {
        return /^1 0x1 /.test(readFileSync(`/proc/${proc.pid}/syscall`, 'utf8'));
      } catch {
        return false;
      }
    }, 'the child to block writing to its stdout');
    expect(proc.exitCode).toBeNull();
    expect(proc.kill(0)).toBe(true);
    const [out, status] = await Promise.all([readAll(proc.stdout!), proc.exited]);
    expect(out.length).toBe(size);
    expect(status.code).toBe(0);
  });

  it('drains output nobody reads once the child has exited, so its pipe closes', async () => {
    const proc = track(
      spawn('/bin/sh', ['-c', 'echo unread'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    await proc.exited;
    // A paused stream holding data never ends by itself; drained, it ends and closes.
    // (stderr, empty, may have closed already: hence not once('close').)
    for (const stream of [proc.stdout!, proc.stderr!]) {
      await finished(stream);
      if (!stream.destroyed) await once(stream, 'close');
    }
    expect(proc.stdout!.readableEnded).toBe(true);
  });

  it('keeps the output for a reader attached right after `await exited`', async () => {
    const proc = track(
      spawn('/bin/sh', ['-c', 'echo late'], { stdio: ['ignore', 'pipe', 'ignore'] }),
    );
    await proc.exited;
    expect((await readAll(proc.stdout!)).toString()).toBe('late\n');
  });
});

describe("'inherit' and 'ignore'", () => {
  it("'inherit' hands the child this process's own fds 0, 1, 2", async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'inherit' }));
    expect(proc.stdin).toBeNull();
    expect(proc.stdout).toBeNull();
    expect(proc.stderr).toBeNull();
    for (const fd of [0, 1, 2]) {
      expect(childFd(proc.pid, fd)).toBe(readlinkSync(`/proc/self/fd/${fd}`));
    }
    proc.kill('SIGKILL');
    await proc.exited;
  });

  it("'inherit' output appears in the parent's own stdout and stderr", async () => {
    const result = await runNode([fixture('inherit.mjs')]);
    expect(result).toMatchObject({ code: 0, signal: null });
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('to-stdout');
    expect(JSON.parse(lines[1])).toEqual({ stdin: null, stdout: null, stderr: null });
    expect(lines.length).toBe(3);
    expect(result.stderr).toBe('to-stderr\n');
  });

  it("'ignore' connects fds 0, 1, 2 to /dev/null", async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.stdin).toBeNull();
    expect(proc.stdout).toBeNull();
    expect(proc.stderr).toBeNull();
    expect(proc.stdio.slice(0, 3)).toEqual([null, null, null]);
    for (const fd of [0, 1, 2]) expect(childFd(proc.pid, fd)).toBe('/dev/null');
    proc.kill('SIGKILL');
    await proc.exited;
  });

  it("'ignore': reads see EOF and writes succeed", async () => {
    const proc = track(
      spawn('/bin/sh', ['-c', 'echo out && echo err >&2 && exec cat'], { stdio: 'ignore' }),
    );
    expect((await proc.exited).code).toBe(0);
  });
});

describe('fds and streams', () => {
  it('takes an fd number, here a file opened by the test', async () => {
    const file = join(scratch, 'fd-out.txt');
    const fd = openSync(file, 'w');
    try {
      const proc = track(
        spawn('/bin/sh', ['-c', 'echo into-the-file'], { stdio: ['ignore', fd, 'ignore'] }),
      );
      expect(proc.stdout).toBeNull();
      expect((await proc.exited).code).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('into-the-file\n');
  });

  it('takes an fd number for stdin', async () => {
    const file = join(scratch, 'fd-in.txt');
    writeFileSync(file, 'from-a-file');
    const fd = openSync(file, 'r');
    try {
      const proc = track(spawn('cat', [], { stdio: [fd, 'pipe', 'ignore'] }));
      const [out, status] = await Promise.all([readAll(proc.stdout!), proc.exited]);
      expect(out.toString()).toBe('from-a-file');
      expect(status.code).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('takes a stream that has an fd', async () => {
    const input = join(scratch, 'stream-in.txt');
    const output = join(scratch, 'stream-out.txt');
    writeFileSync(input, 'through-streams');
    const reader = createReadStream(input);
    const writer = createWriteStream(output);
    await Promise.all([once(reader, 'open'), once(writer, 'open')]);
    // @types/node does not declare the fd that an opened fs stream has
    const withFd = (stream: unknown) => stream as { fd: number };
    expect(typeof withFd(reader).fd).toBe('number');
    try {
      const proc = track(spawn('cat', [], { stdio: [withFd(reader), withFd(writer), 'ignore'] }));
      expect((await proc.exited).code).toBe(0);
    } finally {
      reader.destroy();
      writer.destroy();
    }
    expect(readFileSync(output, 'utf8')).toBe('through-streams');
  });

  it('treats null and undefined as the default: a pipe for 0..2, nothing above', async () => {
    const proc = track(
      spawn(
        '/bin/sh',
        ['-c', 'cat; if [ -e /proc/$$/fd/3 ]; then echo fd3-open; else echo fd3-closed; fi'],
        { stdio: [null, undefined, 'ignore', null] },
      ),
    );
    expect(proc.stdin).not.toBeNull();
    expect(proc.stdout).not.toBeNull();
    expect(proc.stdio[3] ?? null).toBeNull();
    proc.stdin!.end('in\n');
    const [out, status] = await Promise.all([readAll(proc.stdout!), proc.exited]);
    expect(out.toString()).toBe('in\nfd3-closed\n');
    expect(status.code).toBe(0);
  });

  it('leaves the child only its stdio fds: no pidfd, no pipe of another child', async () => {
    // two children at once, the first holding pipes, so the second could inherit them
    const first = track(spawn('sleep', ['60']));
    const second = track(spawn('sleep', ['60'], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] }));
    try {
      // look once both have started up: their own fd use is over by then
      await Promise.all([sleeping(first.pid), sleeping(second.pid)]);
      for (const [proc, count] of [
        [first, 3],
        [second, 4],
      ] as const) {
        const fds = readdirSync(`/proc/${proc.pid}/fd`)
          .map(Number)
          .sort((a, b) => a - b);
        const described = fds.map((fd) => `${fd} -> ${childFd(proc.pid, fd)}`);
        expect(described).toEqual(
          Array.from({ length: count }, (_, fd) => `${fd} -> ${childFd(proc.pid, fd)}`),
        );
      }
    } finally {
      first.kill('SIGKILL');
      second.kill('SIGKILL');
      await Promise.all([first.exited, second.exited]);
    }
  });

  it.skipIf(!haveCompiler())('closes an fd without FD_CLOEXEC unless stdio lists it', async () => {
    // node gets a pipe on fd 3, and native code takes FD_CLOEXEC off it
    const library = join(scratch, 'clear-cloexec.so');
    execFileSync('cc', ['-shared', '-fPIC', '-o', library, fixture('clear-cloexec.c')]);
    const child = cpSpawn(process.execPath, [fixture('inherited-fd.mjs'), library], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    const [out] = await Promise.all([readAll(child.stdout!), once(child, 'exit')]);
    const report = JSON.parse(out.toString()) as Record<string, Record<string, string>> & {
      own: string;
      ownCloexec: boolean;
      asNobody: boolean;
    };
    const { own } = report;
    expect(own).toMatch(/^(pipe|socket):/);
    expect(report.ownCloexec).toBe(false);
    expect(report.plain).toEqual({ 0: '/dev/null', 1: '/dev/null', 2: '/dev/null' });
    expect(Object.keys(report.piped)).toEqual(['0', '1', '2']);
    expect(Object.values(report.piped)).not.toContain(own);
    expect(report.passed).toEqual({ 0: '/dev/null', 1: '/dev/null', 2: '/dev/null', 3: own });
    expect(report.passedAbove).toEqual({
      0: '/dev/null',
      1: '/dev/null',
      2: '/dev/null',
      4: own,
    });
    // A slot with nothing in it ('ignore', null, undefined) below a piped fd: the
    // child has no fd of that number, under another uid and gid too.
    for (const name of ['ignoreSlot', 'nullSlot', 'undefinedSlot', 'ignoreSlotAsNobody']) {
      const fds = report[name];
      expect({ name, fds: Object.keys(fds) }).toEqual({ name, fds: ['0', '1', '2', '4'] });
      expect({ name, own: Object.values(fds).includes(own) }).toEqual({ name, own: false });
      expect(fds[4]).toMatch(/^socket:/);
    }
    expect(report.asNobody).toBe(process.getuid?.() === 0);
  });

  // Before Linux 5.9 there is no close_range: the child used to close every fd up to
  // RLIMIT_NOFILE, which Node raises to the hard limit (524288 under systemd, 1048576 in
  // Docker; this machine's hard limit stops at 20000). It now closes what /proc/self/fd
  // lists. Counted with strace: one close per open fd, not one per possible fd.
  it.skipIf(!closeFallbackRuns)(
    'without close_range, the child closes only the fds that are open, and keeps its stdio',
    async () => {
      const log = join(scratch, 'close-fallback.strace');
      const nofile = Math.min(20_000, hardNofile());
      const result = await runCommand('prlimit', [
        `--nofile=${nofile}:${nofile}`,
        launcher,
        'close_range=ENOSYS',
        '--',
        'strace',
        '-f',
        '-qq',
        '-e',
        'trace=close,execve',
        '-o',
        log,
        process.execPath,
        fixture('close-fallback.mjs'),
      ]);
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as { pid: number; fds: number[]; nofile: number };
      expect(report.nofile).toBe(nofile);
      expect(report.fds.sort((a, b) => a - b)).toEqual([0, 1, 2]);
      const calls = parseStrace(readFileSync(log, 'utf8')).filter((c) => c.pid === report.pid);
      const exec = calls.findIndex((c) => c.call === 'execve');
      expect(exec).toBeGreaterThan(0);
      const closes = calls.slice(0, exec).filter((c) => c.call === 'close').length;
      // as many as this node had open (a few dozen), never one per possible fd
      expect(closes).toBeGreaterThan(3);
      expect(closes).toBeLessThan(300);
    },
  );
});
