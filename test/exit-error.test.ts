// ExitError: the message names the command and the code or signal, and ends with
// the tail of stderr (at most 1 KiB); shortMessage is the message without it.
import { describe, expect, it } from 'vitest';
import { ExitError, exec, SpawnError } from '../src/index.js';
import { trackChildren } from './helpers/proc.js';

const track = trackChildren();

async function failure(script: string, options = {}): Promise<ExitError> {
  try {
    track(await exec('/bin/sh', ['-c', script], options));
  } catch (error) {
    if (error instanceof ExitError) return track(error);
    throw error;
  }
  throw new Error('expected an ExitError');
}

describe('ExitError message', () => {
  it('ends with stderr after the command and the code', async () => {
    const error = await failure("echo out; printf 'first\\nsecond\\n' >&2; exit 2");
    expect(error.shortMessage).toBe(
      "Command failed with exit code 2: /bin/sh -c 'echo out; printf '\\''first\\nsecond\\n'\\'' >&2; exit 2'",
    );
    expect(error.message).toBe(`${error.shortMessage}\n\nfirst\nsecond`);
    expect(error.message).not.toContain('out\n');
  });

  it('has the output keys exec was asked for: all only with all: true', async () => {
    const plain = await failure('echo out; echo err >&2; exit 1');
    expect(Object.keys(plain)).not.toContain('all');
    const both = await failure('echo out; exit 1', { all: true });
    expect(both.all).toBe('out\n');
  });

  it('names the signal', async () => {
    const error = await failure('echo dying >&2; kill -s KILL $$');
    expect(error.shortMessage).toMatch(/^Command was killed with SIGKILL: \/bin\/sh/);
    expect(error.message).toBe(`${error.shortMessage}\n\ndying`);
  });

  it('is the short message alone when stderr is empty or blank', async () => {
    expect((await failure('exit 1')).message).toBe((await failure('exit 1')).shortMessage);
    const blank = await failure("printf '  \\n\\n' >&2; exit 1");
    expect(blank.message).toBe(blank.shortMessage);
  });

  it('keeps only the last lines of stderr, at most 1 KiB', async () => {
    // 200 numbered lines of 13 bytes with their newline: 2,600 bytes of stderr.
    const error = await failure(
      'i=100; while [ $i -lt 300 ]; do echo "line-$i-xxx" >&2; i=$((i+1)); done; exit 1',
    );
    const tail = error.message.slice(error.shortMessage.length + 2);
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(tail)).toBeGreaterThan(1024 - 13);
    const lines = tail.split('\n');
    expect(lines.at(-1)).toBe('line-299-xxx');
    expect(lines.every((line) => /^line-\d{3}-xxx$/.test(line))).toBe(true); // whole lines only
    expect(lines.length).toBe(78); // 78 * 13 - 1 = 1,013 bytes; one more would not fit
    expect((error.stderr as string).length).toBe(200 * 13);
  });

  it('cuts one very long line to its last KiB, at a character boundary', async () => {
    const error = await failure(
      "head -c 3000 /dev/zero | tr '\\0' x >&2; printf '\\342\\230\\203end' >&2; exit 1",
    );
    const tail = error.message.slice(error.shortMessage.length + 2);
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(1024);
    expect(tail.endsWith('x\u2603end')).toBe(true);
    expect(tail).not.toContain('\ufffd');
  });

  it('decodes stderr for the message under encoding: buffer', async () => {
    const error = await failure("echo 'bad thing' >&2; exit 4", { encoding: 'buffer' });
    expect(Buffer.isBuffer(error.stderr)).toBe(true);
    expect(error.message).toBe(`${error.shortMessage}\n\nbad thing`);
  });

  it('says timed out, with the signal', async () => {
    const error = await failure('echo waiting >&2; exec sleep 60', { timeout: 50 });
    expect(error.shortMessage).toMatch(/^Command timed out \(SIGTERM\): /);
    expect(error.message).toBe(`${error.shortMessage}\n\nwaiting`);
  });

  it('says maxBuffer was exceeded, with the code the command then exited with', async () => {
    // SIGTERM ignored: past maxBuffer the pipe is closed, head dies of SIGPIPE and the
    // script goes on to exit 3.
    const error = await failure("trap '' TERM; head -c 5000 /dev/zero; exit 3", {
      maxBuffer: 1000,
    });
    expect(error.isMaxBuffer).toBe(true);
    expect(error.code).toBe(3);
    expect(error.shortMessage).toMatch(
      /^Command exceeded maxBuffer \(exit code 3\): \/bin\/sh -c /,
    );
  });

  it('says maxBuffer was exceeded, with the signal that ended the command', async () => {
    const error = await failure('exec yes', { maxBuffer: 1000 });
    expect(error.signal).not.toBeNull();
    expect(error.shortMessage).toBe(
      `Command exceeded maxBuffer (${error.signal}): /bin/sh -c 'exec yes'`,
    );
  });
});

describe('a spawn failure', () => {
  it('rejects with SpawnError even under reject: false', async () => {
    const error = await exec('/nonexistent/pidwatch', [], { reject: false }).then(
      () => null,
      (e) => e,
    );
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', syscall: 'execve' });
  });
});

describe('the stdio option', () => {
  it('is refused by exec with a TypeError, before anything is spawned', async () => {
    for (const stdio of ['inherit', 'pipe', ['ignore', 'inherit', 'pipe']]) {
      const error = await exec('/bin/true', [], { stdio } as never).then(
        () => null,
        (e) => e,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      expect(error.message).toMatch(/options\.stdio/);
    }
  });
});
