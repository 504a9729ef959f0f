// The `shell` option and the `sh` tagged template.
import { describe, expect, it } from 'vitest';
import { ExitError, exec, SpawnError, sh, spawn } from '../src/index.js';
import { readAll, trackChildren } from './helpers/proc.js';

const track = trackChildren();

/** Splits `printf '%s\0' ...` output into the words the shell passed. */
function words(stdout: string | Buffer): string[] {
  const text = stdout.toString();
  expect(text.endsWith('\0') || text === '').toBe(true);
  return text === '' ? [] : text.slice(0, -1).split('\0');
}

const hostile: string[] = [
  '',
  ' ',
  '  two  spaces  ',
  'a b',
  "it's",
  "'",
  "''",
  "'\\''",
  '"',
  '"$HOME"',
  '$HOME',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, on purpose
  '${HOME}',
  '$(echo pwned)',
  '`echo pwned`',
  '\\',
  '\\n',
  'back\\slash\\',
  'line\nbreak',
  '\n',
  'tab\there',
  'cr\r\nlf',
  '*',
  '/*',
  '?',
  '[a-z]',
  '{a,b}',
  '~',
  '~root',
  '-n',
  '-e',
  '--',
  '--help',
  ';',
  'a; echo pwned',
  '&&',
  '|',
  '>',
  '<',
  '>/dev/null',
  '#',
  '# comment',
  '!',
  '!!',
  '%',
  '=',
  'a=b',
  'é☃漢字',
  '\u00a0',
  '\x01\x7f',
  '\xff',
  'x'.repeat(10_000),
];

describe('sh`...`', () => {
  it('passes every hostile string as one word, byte for byte', async () => {
    for (const value of hostile) {
      const output = track(await sh`printf '%s\\0' ${value}`);
      expect(words(output.stdout), JSON.stringify(value)).toEqual([value]);
    }
  });

  it('passes the whole table in one command line, in order', async () => {
    const output = track(await sh`printf '%s\\0' ${hostile} end`);
    expect(words(output.stdout)).toEqual([...hostile, 'end']);
  });

  it('makes an array several words, and an empty array none', async () => {
    const output = track(await sh`printf '%s\\0' ${['a b', '', 'c']} ${[]} ${'d'}`);
    expect(words(output.stdout)).toEqual(['a b', '', 'c', 'd']);
  });

  it('passes numbers as their decimal text', async () => {
    const output = track(await sh`printf '%s\\0' ${42} ${-1} ${1.5} ${10n} ${[7, 8]}`);
    expect(words(output.stdout)).toEqual(['42', '-1', '1.5', '10', '7', '8']);
  });

  it('keeps the shell syntax of the literal text', async () => {
    const output = track(await sh`echo ${'a'} | tr a b; echo $((1 + 2))`);
    expect(output.stdout).toBe('b\n3\n');
  });

  it('rejects a NUL or a value that is not a string, number or array', async () => {
    await expect(sh`echo ${'a\0b'}`).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
    for (const value of [undefined, null, true, {}, ['ok', {}]]) {
      await expect(sh`echo ${value}`).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    }
  });

  it('takes exec options through sh(options), which can be chained', async () => {
    const inRoot = sh({ cwd: '/' });
    expect(track(await inRoot`pwd`).stdout).toBe('/\n');
    const withEnv = inRoot({ env: { ...process.env, GREETING: 'hi' } });
    expect(track(await withEnv`printf '%s %s' "$GREETING" "$(pwd)"`).stdout).toBe('hi /');
    const input = track(await sh({ input: 'x y' })`cat`);
    expect(input.stdout).toBe('x y');
  });

  it('rejects a failure with ExitError naming the command line', async () => {
    const error = await sh`echo ${'bad input'} >&2; exit 5`.catch((e) => e);
    track(error);
    expect(error).toBeInstanceOf(ExitError);
    expect(error.shortMessage).toBe(
      "Command failed with exit code 5: echo 'bad input' >&2; exit 5",
    );
    expect(error.message.endsWith('\n\nbad input')).toBe(true);
    const output = track(await sh({ reject: false })`exit 3`);
    expect(output.code).toBe(3);
  });

  it('runs another shell through sh({ shell })', async () => {
    const output = track(await sh({ shell: '/bin/bash' })`echo "$BASH_VERSION"`);
    expect(output.stdout.toString().trim()).not.toBe('');
  });
});

describe('the shell option', () => {
  it('runs file as a command line with args as $1...', async () => {
    const proc = track(
      spawn('printf "%s|%s|%s" "$0" "$1" "$2" | tr a-z A-Z', ['ab', 'c d'], { shell: true }),
    );
    expect((await readAll(proc.stdout!)).toString()).toBe('/BIN/SH|AB|C D');
    expect((await proc.exited).code).toBe(0);
  });

  it('works with exec, and names the command line in errors', async () => {
    const output = track(await exec('echo "$#:$*"', ['x', 'y z'], { shell: true }));
    expect(output.stdout).toBe('2:x y z\n');
    const error = await exec('exit 4', ['a b'], { shell: true }).catch((e) => e);
    track(error);
    expect(error.shortMessage).toBe("Command failed with exit code 4: exit 4 'a b'");
  });

  it('takes the path of another shell', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, on purpose
    const output = track(await exec('echo "${BASH_VERSION:+bash}"', { shell: '/bin/bash' }));
    expect(output.stdout).toBe('bash\n');
  });

  it('is off for false, and then the command line is a file name', async () => {
    const error = await exec('echo hi', [], { shell: false }).catch((e) => e);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error.code).toBe('ENOENT');
  });

  it('reports a missing shell as a SpawnError for that shell', () => {
    let error: unknown;
    try {
      spawn('echo hi', { shell: '/nonexistent/shell' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({
      code: 'ENOENT',
      path: '/nonexistent/shell',
      spawnargs: ['/nonexistent/shell', '-c', 'echo hi', '/nonexistent/shell'],
    });
  });

  it('rejects a bad value', () => {
    for (const shell of [1, {}, '', 'a\0b']) {
      expect(() => spawn('true', { shell } as never)).toThrow(
        expect.objectContaining({ name: 'TypeError' }),
      );
    }
  });
});
