// exec(): collected output, input, encoding, maxBuffer, reject and ExitError.
import { describe, expect, it } from 'vitest';
import { ExitError, exec, SpawnError } from '../src/index.js';
import { childrenOf, trackChildren } from './helpers/proc.js';

const track = trackChildren();

/** exec() and record its child for the zombie check. */
async function run(...args: Parameters<typeof exec>) {
  try {
    return track(await exec(...args));
  } catch (error) {
    if (error instanceof ExitError) track(error);
    throw error;
  }
}

/** The rejection of a promise (the test fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('exec()', () => {
  it('collects stdout and stderr as strings, with the exit status', async () => {
    const output = await run('/bin/sh', ['-c', 'printf out; printf err >&2']);
    expect(output.stdout).toBe('out');
    expect(output.stderr).toBe('err');
    expect(output).toMatchObject({
      code: 0,
      signal: null,
      coreDumped: false,
      timedOut: false,
      aborted: false,
    });
    expect(output.pid).toBeGreaterThan(0);
    expect(output.durationMs).toBeGreaterThanOrEqual(0);
    expect(output.resourceUsage?.maxRSS).toBeGreaterThan(0);
  });

  it('decodes UTF-8, also split across chunks', async () => {
    const text = '☃é漢字'.repeat(20_000);
    const output = await run('/bin/cat', [], { input: text });
    expect(output.stdout).toBe(text);
  });

  it("returns Buffers with encoding: 'buffer'", async () => {
    const output = await run('/bin/sh', ['-c', "printf '\\377\\000\\001'; printf '\\376' >&2"], {
      encoding: 'buffer',
    });
    expect(Buffer.isBuffer(output.stdout)).toBe(true);
    expect(Buffer.isBuffer(output.stderr)).toBe(true);
    expect([...(output.stdout as Buffer)]).toEqual([0xff, 0x00, 0x01]);
    expect([...(output.stderr as Buffer)]).toEqual([0xfe]);
  });

  it('returns every byte value as written, in output of any size around 4 KiB', async () => {
    // Short output and longer output reach JS by different paths (see native/capture.cc).
    for (const size of [1, 256, 4095, 4096, 4097, 70000]) {
      const script = `const b = Buffer.alloc(${size}); for (let i = 0; i < b.length; i++) b[i] = 255 - (i % 256); process.stdout.write(b); process.stderr.write(b.subarray(0, 3))`;
      const output = await run(process.execPath, ['-e', script], { encoding: 'buffer', all: true });
      const expected = Buffer.alloc(size);
      for (let i = 0; i < size; i++) expected[i] = 255 - (i % 256);
      expect(Buffer.compare(output.stdout as Buffer, expected)).toBe(0);
      expect(output.stderr).toEqual(expected.subarray(0, 3));
      expect((output.all as Buffer).length).toBe(size + Math.min(size, 3));
    }
  });

  it('writes input to stdin, a string or bytes', async () => {
    expect((await run('cat', [], { input: 'hello' })).stdout).toBe('hello');
    const bytes = new Uint8Array([0, 1, 2, 250]);
    const output = await run('cat', [], { input: bytes, encoding: 'buffer' });
    expect([...(output.stdout as Buffer)]).toEqual([0, 1, 2, 250]);
  });

  it('gives stdin EOF at once when there is no input', async () => {
    const output = await run('cat');
    expect(output).toMatchObject({ code: 0, stdout: '' });
  });

  it('takes input larger than a pipe holds', async () => {
    const input = 'x'.repeat(1024 * 1024);
    const output = await run('/usr/bin/wc', ['-c'], { input });
    expect(output.stdout.toString().trim()).toBe(String(input.length));
  });

  it('passes spawn options through: cwd, env', async () => {
    const output = await run('/bin/sh', ['-c', 'printf "%s %s" "$PWD" "$ONLY"'], {
      cwd: '/',
      env: { ONLY: 'this' },
    });
    expect(output.stdout).toBe('/ this');
  });

  it('kills the process past maxBuffer and rejects with isMaxBuffer', async () => {
    // yes never ends by itself: only the kill stops it
    const error = await rejection(run('yes', [], { maxBuffer: 1000 }));
    expect(error).toBeInstanceOf(ExitError);
    expect(error.isMaxBuffer).toBe(true);
    expect(error.signal).not.toBeNull();
    expect(error.stdout.length).toBeLessThanOrEqual(1000);
    expect(childrenOf()).not.toContain(error.pid);
  });

  it('applies maxBuffer to stderr too', async () => {
    const error = await rejection(run('/bin/sh', ['-c', 'exec yes >&2'], { maxBuffer: 500 }));
    expect(error.isMaxBuffer).toBe(true);
    expect(error.stderr.length).toBeLessThanOrEqual(500);
  });

  it('cuts text at maxBuffer on a whole character, never leaving half of one', async () => {
    // '€' is 3 bytes: a cut at 100 bytes falls inside the 34th.
    const euros = ['-c', "while :; do printf '\\342\\202\\254'; done"];
    const text = await run('/bin/sh', euros, { maxBuffer: 100, reject: false });
    expect(text.isMaxBuffer).toBe(true);
    expect(text.stdout).toBe('€'.repeat(33));
    const bytes = await run('/bin/sh', euros, {
      maxBuffer: 100,
      reject: false,
      encoding: 'buffer',
    });
    expect(bytes.stdout).toEqual(Buffer.from('€'.repeat(34)).subarray(0, 100));
  });

  it('cuts output past maxBuffer that the child wrote all at once before exiting', async () => {
    // One write and the exit: the overflow is found as the exit is handled, not while
    // the child runs; the call still fails with the output cut, nothing else waited for.
    for (const maxBuffer of [0, 1, 4095, 4096]) {
      const error = await rejection(run('head', ['-c', '4097', '/dev/zero'], { maxBuffer }));
      expect(error).toBeInstanceOf(ExitError);
      expect(error.isMaxBuffer).toBe(true);
      expect(error.stdout.length).toBe(maxBuffer);
    }
  });

  it('accepts output of exactly maxBuffer bytes', async () => {
    const output = await run('head', ['-c', '1000', '/dev/zero'], { maxBuffer: 1000 });
    expect(output.stdout.length).toBe(1000);
  });

  it('resolves with the status for a failure when reject is false', async () => {
    const output = await run('/bin/sh', ['-c', 'printf partial; exit 3'], { reject: false });
    expect(output).toMatchObject({ code: 3, signal: null, stdout: 'partial' });

    const killed = await run('/bin/sh', ['-c', 'kill -s KILL $$'], { reject: false });
    expect(killed).toMatchObject({ code: null, signal: 'SIGKILL' });
  });
});

describe('ExitError', () => {
  it('rejects a non-zero code, naming the command and the code', async () => {
    const error = await rejection(run('/bin/sh', ['-c', 'printf so-far; printf why >&2; exit 3']));
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('/bin/sh');
    expect(error.message).toMatch(/\b3\b/);
    expect(error).toMatchObject({
      code: 3,
      signal: null,
      coreDumped: false,
      timedOut: false,
      aborted: false,
      stdout: 'so-far',
      stderr: 'why',
    });
    expect(error.pid).toBeGreaterThan(0);
    expect(typeof error.durationMs).toBe('number');
    expect(error.resourceUsage).not.toBeNull();
    expect(error.isMaxBuffer).toBeFalsy();
  });

  it('rejects a signal, naming it', async () => {
    const error = await rejection(run('/bin/sh', ['-c', 'kill -s TERM $$']));
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(error.message).toContain('SIGTERM');
  });

  it('reports a timeout', async () => {
    const error = await rejection(run('sleep', ['60'], { timeout: 50 }));
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
  });

  it('reports an abort', async () => {
    const controller = new AbortController();
    const pending = rejection(run('sleep', ['60'], { signal: controller.signal }));
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toMatchObject({ aborted: true, signal: 'SIGTERM' });
  });

  it('carries Buffers with encoding: buffer', async () => {
    const error = await rejection(
      run('/bin/sh', ['-c', 'printf x; exit 1'], { encoding: 'buffer' }),
    );
    expect(Buffer.isBuffer(error.stdout)).toBe(true);
    expect(error.stdout.toString()).toBe('x');
  });
});

describe('a command that cannot start', () => {
  it('fails with the SpawnError', async () => {
    const error = await rejection(Promise.resolve().then(() => exec('/nonexistent/pidwatch')));
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', syscall: 'execve' });
  });
});
