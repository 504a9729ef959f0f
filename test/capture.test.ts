// Output capture (exec and the runner): `all` in arrival order, stripFinalNewline,
// isMaxBuffer on the Output, input the child never reads, large output byte for byte,
// and bounded waits: a timeout or an abort ends the wait for output that a descendant
// keeps open, while a normal exit waits for the end of the output as child_process does.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitError, exec, runJobs } from '../src/index.js';
import { describeFds, fdCount, hasExited, procStat, trackChildren } from './helpers/proc.js';
import { rejection } from './helpers/settle.js';

const track = trackChildren();

/** PIDs of background sleepers a test started; killed after it, by PID. */
const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The PIDs a shell printed (one `echo $!` per line), remembered for the cleanup. */
function reportedPids(text: string | Buffer): number[] {
  const pids = String(text)
    .split('\n')
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
  leftovers.push(...pids);
  return pids;
}

// A child that writes each of its arguments (o:TEXT to stdout, e:TEXT to stderr) and waits
// until the parent has read it (FIONREAD on the pipe is 0) before the next write: the
// order in which the parent reads is then the order of the writes.
const LOCKSTEP = `
for my $arg (@ARGV) {
  my ($to, $text) = split /:/, $arg, 2;
  my $fh = $to eq 'o' ? \\*STDOUT : \\*STDERR;
  syswrite($fh, $text);
  while (1) {
    my $n = pack('i', 0);
    ioctl($fh, 0x541B, $n) or die "FIONREAD: $!";
    last if unpack('i', $n) == 0;
    select(undef, undef, undef, 0.001);
  }
}`;

describe('all', () => {
  it('interleaves stdout and stderr in the order they were written', async () => {
    const writes = ['o:1\n', 'e:2\n', 'o:3\n', 'e:4\n', 'e:5\n', 'o:6'];
    const output = track(await exec('perl', ['-e', LOCKSTEP, ...writes], { all: true }));
    expect(output.all).toBe('1\n2\n3\n4\n5\n6');
    expect(output.stdout).toBe('1\n3\n6');
    expect(output.stderr).toBe('2\n4\n5\n');
  });

  it('is a Buffer with encoding buffer, and is absent unless asked for', async () => {
    const both = track(
      await exec('perl', ['-e', LOCKSTEP, 'o:a', 'e:b'], { all: true, encoding: 'buffer' }),
    );
    expect(Buffer.isBuffer(both.all)).toBe(true);
    expect(both.all?.toString()).toBe('ab');
    const plain = track(await exec('/bin/sh', ['-c', 'echo x; echo y >&2']));
    expect(plain).not.toHaveProperty('all');
  });

  it('is an empty string when nothing was written, and on an ExitError', async () => {
    expect(track(await exec('true', { all: true })).all).toBe('');
    const error = await rejection(
      exec('/bin/sh', ['-c', 'echo out; echo err >&2; exit 4'], { all: true }),
    );
    track(error);
    expect(error).toBeInstanceOf(ExitError);
    expect(error.all.split('\n').sort()).toEqual(['', 'err', 'out']);
  });
});

describe('stripFinalNewline', () => {
  it('removes one final newline (LF or CRLF) from stdout, stderr and all', async () => {
    const output = track(
      await exec('perl', ['-e', LOCKSTEP, 'o:a\n\n', 'e:b\r\n'], {
        stripFinalNewline: true,
        all: true,
      }),
    );
    expect(output.stdout).toBe('a\n');
    expect(output.stderr).toBe('b');
    expect(output.all).toBe('a\n\nb');
  });

  it('keeps the newline by default, and applies to Buffers too', async () => {
    expect(track(await exec('echo', ['hi'])).stdout).toBe('hi\n');
    const bytes = track(
      await exec('echo', ['hi'], { stripFinalNewline: true, encoding: 'buffer' }),
    );
    expect(bytes.stdout).toEqual(Buffer.from('hi'));
  });

  it('rejects a non-boolean', async () => {
    await expect(exec('true', { stripFinalNewline: 1 as any })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await expect(exec('true', { all: 'yes' as any })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });
});

describe('isMaxBuffer on the Output', () => {
  it('is true, with the output cut at maxBuffer, when reject is false', async () => {
    const output = track(await exec('yes', { maxBuffer: 4096, reject: false }));
    expect(output.isMaxBuffer).toBe(true);
    expect(output.stdout).toBe('y\n'.repeat(2048));
    expect(output.signal).toBe('SIGTERM');
  });

  it('is false otherwise', async () => {
    const output = track(await exec('echo', ['hi']));
    expect(output.isMaxBuffer).toBe(false);
  });

  it('stops a child that ignores SIGTERM and keeps writing', async () => {
    const output = track(
      await exec('/bin/sh', ['-c', 'trap "" TERM; while :; do echo spam; done'], {
        maxBuffer: 10_000,
        forceKillAfter: 100,
        reject: false,
      }),
    );
    expect(output.isMaxBuffer).toBe(true);
    expect(output.stdout.length).toBe(10_000);
    expect(output.signal).not.toBeNull(); // SIGPIPE on its next write, or the SIGKILL
  });
});

describe('collecting', () => {
  it('returns large output byte for byte', async () => {
    const script =
      'const b = Buffer.alloc(3e6); for (let i = 0; i < b.length; i++) b[i] = (i * 7) % 251; process.stdout.write(b)';
    const output = track(await exec(process.execPath, ['-e', script], { encoding: 'buffer' }));
    const expected = Buffer.alloc(3e6);
    for (let i = 0; i < expected.length; i++) expected[i] = (i * 7) % 251;
    expect(Buffer.compare(output.stdout as Buffer, expected)).toBe(0);
  });

  it('settles when the child exits without reading a large input', async () => {
    const output = track(await exec('true', { input: 'x'.repeat(4 * 1024 * 1024) }));
    expect(output.code).toBe(0);
  });

  it('leaves no fd open after many calls, in every outcome', async () => {
    const before = fdCount();
    const described = describeFds();
    for (let i = 0; i < 50; i++) {
      await exec('echo', [String(i)]).then(track);
      await exec('cat', { input: 'abc' }).then(track);
      await exec('yes', { maxBuffer: 100, reject: false }).then(track);
      await rejection(exec('false')).then(track);
    }
    if (fdCount() !== before) expect(describeFds()).toEqual(described);
  });
});

describe('bounded waits', () => {
  it('exec: a timeout ends the wait for a pipe a background child holds', async () => {
    const started = Date.now();
    const error = await rejection(
      exec('/bin/sh', ['-c', 'sleep 30 & echo $!; echo started'], { timeout: 500 }),
    );
    track(error);
    const elapsed = Date.now() - started;
    const [sleeper] = reportedPids(error.stdout);
    expect(error).toBeInstanceOf(ExitError);
    expect(error.stdout).toBe(`${sleeper}\nstarted\n`);
    expect(error).toMatchObject({ timedOut: true, code: 0 });
    expect(elapsed).toBeLessThan(500 + 5000 + 1000);
    expect(procStat(sleeper)).not.toBeNull(); // outside the tree: left running, pipe closed
  });

  it('exec: a leader that ignores SIGTERM is SIGKILLed; its child does not delay the result', async () => {
    const before = fdCount();
    const started = Date.now();
    const output = track(
      await exec('/bin/sh', ['-c', 'trap "" TERM; sleep 30 & echo $!; wait'], {
        timeout: 200,
        forceKillAfter: 300,
        reject: false,
      }),
    );
    reportedPids(output.stdout);
    expect(output).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeLessThan(200 + 300 + 1000);
    expect(fdCount()).toBe(before);
  });

  it('exec: an abort after the leader exited ends the wait', async () => {
    const controller = new AbortController();
    const pending = exec('/bin/sh', ['-c', 'sleep 30 & echo $!'], {
      signal: controller.signal,
      reject: false,
    });
    // the leader exits at once; the sleeper holds stdout until the abort
    setTimeout(() => controller.abort(), 200);
    const output = track(await pending);
    reportedPids(output.stdout);
    expect(output).toMatchObject({ aborted: true, code: 0 });
  });

  it('exec: without a timeout, waits for the end of output a descendant writes late', async () => {
    const output = track(
      await exec('/bin/sh', [
        '-c',
        '(while kill -0 $$ 2>/dev/null; do sleep 0.01; done; echo late) & echo early',
      ]),
    );
    expect(output.stdout).toBe('early\nlate\n');
  });

  it('runJobs: a job that leaves a daemon holding its output still finishes', async () => {
    const before = fdCount();
    const started = Date.now();
    const summary = await runJobs([['/bin/sh', '-c', 'sleep 33 & echo $!; echo x']], {
      timeout: 500,
      tree: false,
    } as Parameters<typeof runJobs>[1]);
    const [result] = summary.results;
    track(result.status);
    const [sleeper] = reportedPids(result.stdout);
    expect(result.stdout).toBe(`${sleeper}\nx\n`);
    // the leader's own exit decides success, as in GNU parallel; timedOut says the wait was cut
    expect(result.status).toMatchObject({ code: 0, timedOut: true });
    expect(Date.now() - started).toBeLessThan(500 + 5000 + 1000);
    expect(fdCount()).toBe(before);
  });

  it('exec with tree: true: leftovers are killed when the leader exits, so nothing waits', async () => {
    const output = track(
      await exec('/bin/sh', ['-c', 'sleep 30 & echo $!; echo started'], {
        tree: true,
        timeout: 20_000,
      }),
    );
    const [sleeper] = reportedPids(output.stdout);
    expect(output.stdout).toBe(`${sleeper}\nstarted\n`);
    expect(output.timedOut).toBe(false);
    expect(output.tree?.leftovers).toBe(1);
    expect(hasExited(sleeper)).toBe(true);
  });

  it('runJobs (trees by default): a job that leaves a daemon finishes at its exit', async () => {
    const summary = await runJobs([['/bin/sh', '-c', 'sleep 33 & echo $!; echo x']], {
      timeout: 20_000,
    });
    const [result] = summary.results;
    track(result.status);
    const [sleeper] = reportedPids(result.stdout);
    expect(result.stdout).toBe(`${sleeper}\nx\n`);
    expect(result.status).toMatchObject({ code: 0, timedOut: false });
    expect(summary.failed).toBe(0);
  });

  it('runJobs: halt now ends the wait for a killed job whose child holds the pipe', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pidwatch-capture-'));
    const file = join(dir, 'pid');
    try {
      const summary = await runJobs(
        [
          [
            '/bin/sh',
            '-c',
            `sleep 30 & echo $! > ${file}.tmp; mv ${file}.tmp ${file}; exec sleep 30`,
          ],
          // fails once the first job's sleeper is up
          ['/bin/sh', '-c', `while [ ! -e ${file} ]; do sleep 0.01; done; exit 1`],
        ],
        { concurrency: 2, halt: { when: 'now', fail: 1 }, tree: false } as Parameters<
          typeof runJobs
        >[1],
      );
      for (const result of summary.results) if (result) track(result.status);
      reportedPids(readFileSync(file, 'utf8'));
      expect(summary.halted).toBe(true);
      expect(summary.results[0].status.signal).toBe('SIGTERM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
