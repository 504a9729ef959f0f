// Subprocess.lines(): line iteration over piped stdout / stderr.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawn } from '../src/index.js';
import { testMode } from './helpers/mode.js';
import { trackChildren, waitFor } from './helpers/proc.js';

const track = trackChildren();

async function linesOf(script: string, stream: 'stdout' | 'stderr' = 'stdout') {
  const proc = track(spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const lines: string[] = [];
  for await (const line of proc.lines(stream)) lines.push(line);
  const status = await proc.exited;
  return { lines, status };
}

function wchan(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
}

describe('Subprocess.lines()', () => {
  it('yields each line without its \\n', async () => {
    const { lines, status } = await linesOf("printf 'one\\ntwo\\n\\nfour\\n'");
    expect(lines).toEqual(['one', 'two', '', 'four']);
    expect(status.code).toBe(0);
  });

  it('strips \\r\\n and keeps a lone \\r inside a line', async () => {
    const { lines } = await linesOf("printf 'a\\r\\nb\\r\\n\\r\\nc\\rd\\r\\n'");
    expect(lines).toEqual(['a', 'b', '', 'c\rd']);
  });

  it('yields a final line that has no newline', async () => {
    expect((await linesOf("printf 'a\\nlast'")).lines).toEqual(['a', 'last']);
    expect((await linesOf("printf 'only'")).lines).toEqual(['only']);
  });

  it('yields nothing for empty output, one empty line for a lone newline', async () => {
    expect((await linesOf('true')).lines).toEqual([]);
    expect((await linesOf('echo')).lines).toEqual(['']);
  });

  it('reads stderr when asked', async () => {
    const { lines } = await linesOf("printf 'out\\n'; printf 'e1\\ne2\\n' >&2", 'stderr');
    expect(lines).toEqual(['e1', 'e2']);
  });

  it('joins lines of 1 MiB that arrive in many chunks', async () => {
    const mib = 1024 * 1024;
    const script = ['x', 'y', 'z']
      .map((c) => `head -c ${mib} /dev/zero | tr '\\0' ${c}; echo`)
      .join('; ');
    const { lines } = await linesOf(script);
    expect(lines.map((line) => line.length)).toEqual([mib, mib, mib]);
    expect(lines.map((line) => line[0] + line[mib - 1])).toEqual(['xx', 'yy', 'zz']);
    expect(lines.map((line) => new Set(line).size)).toEqual([1, 1, 1]);
  });

  it('decodes a UTF-8 character split across two reads', async () => {
    // The child writes the first two bytes of U+2603, then waits for a line on
    // stdin, sent only once the loop has seen the line before: two separate reads.
    const script = "printf 'ready\\na\\342\\230'; read go; printf '\\203b\\n'";
    const proc = track(spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const lines: string[] = [];
    for await (const line of proc.lines()) {
      lines.push(line);
      if (line === 'ready') proc.stdin!.write('go\n');
    }
    proc.stdin!.end();
    expect(lines).toEqual(['ready', 'a\u2603b']);
    expect((await proc.exited).code).toBe(0);
  });

  it('keeps output that arrived before the loop started, even after the exit', async () => {
    const proc = track(spawn('/bin/sh', ['-c', "printf 'early\\nlate'"]));
    const lines = proc.lines();
    await proc.exited;
    await new Promise((resolve) => setImmediate(resolve)); // past the drain of unread output
    const seen: string[] = [];
    for await (const line of lines) seen.push(line);
    expect(seen).toEqual(['early', 'late']);
  });

  it('stops reading on break without killing the process', async () => {
    // Prints two lines, then waits for its stdin to close and exits 0.
    const proc = track(
      spawn('/bin/sh', ['-c', "printf 'first\\nsecond\\n'; cat >/dev/null; exit 0"]),
    );
    for await (const line of proc.lines()) {
      expect(line).toBe('first');
      break;
    }
    expect(proc.stdout!.destroyed).toBe(true);
    expect(proc.kill(0)).toBe(true); // still running
    proc.stdin!.end();
    const status = await proc.exited;
    expect(status).toMatchObject({ code: 0, signal: null });
  });

  it('after a break, a writer that goes on dies of SIGPIPE, as in `yes | head -1`', async () => {
    const proc = track(spawn('yes', [], { stdio: ['ignore', 'pipe', 'inherit'] }));
    for await (const line of proc.lines()) {
      expect(line).toBe('y');
      break;
    }
    const status = await proc.exited;
    expect(status).toMatchObject({ code: null, signal: 'SIGPIPE' });
  });

  it('reads no faster than the loop consumes: the writer blocks, little is buffered', async () => {
    const proc = track(spawn('yes', [], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const iterator = proc.lines()[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe('y');
    // The loop holds: the pipe fills and `yes` sleeps in the kernel's pipe_write.
    await waitFor(() => wchan(proc.pid).includes('pipe_write'), 'yes to block on the pipe');
    expect(proc.stdout!.readableLength).toBeLessThanOrEqual(1024 * 1024);
    await iterator.return!(undefined);
    expect((await proc.exited).signal).toBe('SIGPIPE');
  });

  it.skipIf(testMode !== 'pidfd')(
    'iterates 1 GiB of lines with bounded memory growth',
    async () => {
      const total = 100 * 10_737_418; // 1 GiB less 24 bytes, in lines of 100
      const line = 'x'.repeat(99);
      const proc = track(
        spawn('/bin/sh', ['-c', `yes ${line} | head -c ${total}`], {
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      );
      const before = process.memoryUsage().rss;
      let peak = before;
      let count = 0;
      let bytes = 0;
      for await (const text of proc.lines()) {
        bytes += text.length + 1;
        if (++count % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
      }
      expect(bytes).toBe(total);
      expect(count).toBe(total / 100);
      // Buffering the output would need 1 GiB and more; iteration needs a few chunks.
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
      expect((await proc.exited).code).toBe(0);
    },
  );

  it('rejects a stream that is not piped or not an output', () => {
    const proc = track(spawn('true', [], { stdio: ['ignore', 'ignore', 'pipe'] }));
    expect(() => proc.lines('stdout')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => proc.lines('stdin' as 'stdout')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    return proc.exited;
  });
});
