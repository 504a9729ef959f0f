import { spawn as spawnChild } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../src/cli/args.js';
import { invocation, splitWords } from '../src/cli/run/direct.js';
import { HaltTracker, parseHalt } from '../src/cli/run/halt.js';
import { formatRow } from '../src/cli/run/joblog.js';
import { parseRunArgs, unescapePrintf } from '../src/cli/run/options.js';
import { tagLines } from '../src/cli/run/output.js';
import { perlRegExp } from '../src/cli/run/perl-regexp.js';
import { escapeName, resultDir } from '../src/cli/run/results.js';
import { ResultsTable, tableFormat } from '../src/cli/run/results-table.js';
import { jobSlots } from '../src/cli/run/slots.js';
import { CommandTemplate, expandTag, shellQuote } from '../src/cli/run/template.js';
import { parseDuration } from '../src/cli/run/time.js';
import { capabilities } from '../src/index.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/runner/${name}`, import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-cli-run-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let scratchCount = 0;
const scratchFile = (name: string) => join(scratch, `${scratchCount++}-${name}`);

beforeAll(() => {
  if (!existsSync(main)) throw new Error('dist/cli/main.js is missing: run `npm run build:ts`');
});

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli/main.js ...args`; `started` gets the child to signal it. */
function cli(
  args: string[],
  { input = '', started }: { input?: string; started?: (pid: number) => void } = {},
): Promise<Outcome> {
  return runFile(process.execPath, [main, ...args], input, started);
}

/** Runs `file` with `args` in the scratch directory, `input` on its stdin. */
function runFile(
  file: string,
  args: string[],
  input = '',
  started?: (pid: number) => void,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(file, args, { cwd: scratch });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(input);
    started?.(child.pid!);
  });
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

/** The lines of `file` once it has `n` of them (for waitFor: undefined until then). */
function linesOnceThere(file: string, n: number): string[] | undefined {
  const found = existsSync(file) ? lines(readFileSync(file, 'utf8')) : [];
  return found.length === n ? found : undefined;
}
const alive = (pid: number) => existsSync(`/proc/${pid}`);

async function waitFor<T>(probe: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs the CLI with `args` and, once `ready` gives a value, sends it `signal`. Resolves
 * with the CLI's outcome and that value.
 */
async function signalledCli<T>(
  args: string[],
  signal: NodeJS.Signals,
  ready: () => T | undefined,
  what: string,
): Promise<{ outcome: Outcome; value: T }> {
  let cliPid = 0;
  const run = cli(args, {
    started: (pid) => {
      cliPid = pid;
    },
  });
  const value = await waitFor(ready, what);
  process.kill(cliPid, signal);
  return { outcome: await run, value };
}

describe('command lines', () => {
  it('expands the replacement strings of GNU parallel, shell-quoted', () => {
    const template = new CommandTemplate([
      'cp',
      '{}',
      'out/{/.}.bak',
      '{//}',
      '{/}',
      '{.}',
      '#{#}-{%}',
    ]);
    expect(template.expand({ args: ['src/a.b/file.tar.gz'], seq: 7, slot: 2 })).toBe(
      'cp src/a.b/file.tar.gz out/file.tar.bak src/a.b file.tar.gz src/a.b/file.tar #7-2',
    );
    const echo = new CommandTemplate(['echo {}']);
    expect(echo.expand({ args: ["it's $x"], seq: 1, slot: 1 })).toBe(`echo 'it'"'"'s $x'`);
    expect(new CommandTemplate(['echo', '-n']).expand({ args: ['x y', ''], seq: 1, slot: 1 })).toBe(
      "echo -n 'x y' ''",
    );
    const positional = new CommandTemplate(['echo {2} {1.} {-1/} {3}']);
    expect(positional.expand({ args: ['a.b', 'c/d'], seq: 1, slot: 1 })).toBe('echo c/d a d ');
    // With no command, each input is a command line of its own.
    expect(new CommandTemplate([]).expand({ args: ['echo a; echo b'], seq: 1, slot: 1 })).toBe(
      'echo a; echo b',
    );
    expect(expandTag('<{}:{#}>', { args: ['a b'], seq: 3, slot: 1 })).toBe('<a b:3>');
  });

  it('quotes as GNU parallel does', () => {
    expect(['abc', 'a/b-c_d.e+f', '', 'a b', "'", "a'b", 'ü', '$x'].map(shellQuote)).toEqual([
      'abc',
      'a/b-c_d.e+f',
      "''",
      "'a b'",
      `"'"`,
      `'a'"'"'b'`,
      "'ü'",
      "'$x'",
    ]);
  });

  it('leaves a command to sh when the first executable file on PATH is a script without #!', () => {
    // sh runs such a file itself (execve refuses it with ENOEXEC); a later one is not reached
    const dirs = ['first', 'second'].map((name) => scratchFile(name));
    for (const dir of dirs) mkdirSync(dir);
    writeFileSync(join(dirs[0], 'pw-tool'), 'echo first\n', { mode: 0o755 });
    writeFileSync(join(dirs[1], 'pw-tool'), '#!/bin/sh\necho second\n', { mode: 0o755 });
    writeFileSync(join(dirs[1], 'pw-other'), '#!/bin/sh\necho other\n', { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dirs.join(':')}:${path}`;
    try {
      expect(invocation('pw-tool x', '/bin/sh')).toEqual({
        file: '/bin/sh',
        args: ['-c', 'pw-tool x'],
      });
      expect(invocation('pw-other x', '/bin/sh')).toEqual({
        file: join(dirs[1], 'pw-other'),
        args: ['x'],
        argv0: 'pw-other',
      });
    } finally {
      process.env.PATH = path;
    }
  });

  it('runs a line without shell syntax directly, anything else through sh', () => {
    expect(splitWords(`cp 'a b' "c d" e'f'g`)).toEqual(['cp', 'a b', 'c d', 'efg']);
    for (const line of [
      'a | b',
      'a; b',
      'a > f',
      'echo $x',
      'echo "$x"',
      'a && b',
      'ls *',
      '~/x',
      'a\\ b',
      'a\nb',
    ]) {
      expect(splitWords(line), line).toBeNull();
    }
    expect(invocation("cat 'a b'", '/bin/sh')).toMatchObject({ args: ['a b'], argv0: 'cat' });
    expect(invocation('true', '/bin/sh').file).toMatch(/\/true$/);
    expect(invocation('false --help x', '/bin/sh').file).toMatch(/\/false$/);
    expect(invocation('echo a b', '/bin/sh')).toMatchObject({ args: ['a', 'b'], argv0: 'echo' });
    for (const line of [
      'echo -e x',
      "echo 'a\\nb'",
      'cd /',
      'X=1 env',
      'exit 3',
      'no-such-command-here x',
      'for',
      // dash's true and false ignore these; the programs would print help or a version
      'true --help',
      'false --version',
    ]) {
      expect(invocation(line, '/bin/sh'), line).toEqual({ file: '/bin/sh', args: ['-c', line] });
    }
  });

  it('reads --colsep regexps as Perl does', () => {
    const split = (re: string, text: string) => text.split(perlRegExp(re));
    expect(split('[[:space:]]+', 'a \t b\u00a0c')).toEqual(['a', 'b\u00a0c']);
    expect(split('\\s', 'a\u00a0b c')).toEqual(['a\u00a0b', 'c']);
    expect(split('[^[:alnum:]]+', 'ab--cd..e')).toEqual(['ab', 'cd', 'e']);
    expect(split('\\h', 'a b\tc\nd')).toEqual(['a', 'b', 'c\nd']);
    expect(split('(?i)x', 'aXbxc')).toEqual(['a', 'b', 'c']);
    expect(split('[]x]', 'a]bxc')).toEqual(['a', 'b', 'c']);
    expect(split('[^]x]+', 'a]bxc')).toEqual(['', ']', 'x', '']);
    expect(() => perlRegExp('a(?i)b')).toThrow(SyntaxError);
  });

  it('takes a long option by the start of its name, when that names one option (Getopt::Long)', () => {
    expect(
      parseRunArgs(['--keep-ord', '--Tagst', 'x', '--j', '3', '--max-p', '4', '--line', 'echo']),
    ).toMatchObject({ keepOrder: true, tagstring: 'x', jobs: '4', output: 'line' });
    expect(parseRunArgs(['--res', 'out', '--u', 'echo'])).toMatchObject({
      results: 'out',
      output: 'ungroup',
    });
    // The start of several options' names: refused, naming them, as GNU parallel does.
    expect(() => parseRunArgs(['--jo', '2', 'echo'])).toThrow(
      'option jo is ambiguous (joblog, jobs)',
    );
    expect(() => parseRunArgs(['--tre', 'echo'])).toThrow('ambiguous (tree, tree-cpu)');
    expect(() => parseRunArgs(['--resu', 'echo'])).toThrow(
      'ambiguous (result, results, resume, resume-failed, resumefailed)',
    );
    // An option of GNU parallel's that pidwatch run does not have: unknown, even abbreviated.
    expect(() => parseRunArgs(['--xarg', 'echo'])).toThrow('unknown option: xarg');
    expect(() => parseRunArgs(['--=1', 'echo'])).toThrow('unknown option: ');
  });

  it('reads options the way GNU parallel does', () => {
    const config = parseRunArgs([
      '-kj4',
      '--tag',
      '--halt=now,fail=1',
      'echo',
      '-n',
      '--tag',
      ':::',
      'a',
      ':::+',
      'b',
    ]);
    expect(config).toMatchObject({
      command: ['echo', '-n', '--tag'],
      jobs: '4',
      keepOrder: true,
      tagstring: '{}',
      halt: { when: 'now', on: 'fail', count: 1 },
      sources: [
        { kind: 'args', values: ['a'], linked: false },
        { kind: 'args', values: ['b'], linked: true },
      ],
    });
    expect(parseRunArgs(['echo'])).toMatchObject({ sources: [{ kind: 'file', path: '-' }] });
    expect(() => parseRunArgs(['--nope'])).toThrow(UsageError);
    expect(() => parseRunArgs(['-j'])).toThrow(UsageError);
    expect([
      jobSlots('3', 8),
      jobSlots('50%', 8),
      jobSlots('+1', 8),
      jobSlots('-2', 8),
      jobSlots('10%', 2),
      // a percentage is rounded up, as GNU parallel rounds it
      jobSlots('51%', 2),
      jobSlots('150.5%', 2),
    ]).toEqual([3, 4, 9, 6, 1, 2, 4]);
    // GNU parallel's forms only, as written: no sign on a percentage, no blanks
    for (const bad of ['-8', '1.5', '+50%', '-50%', ' 2', '2 ', '+1.5', '0%']) {
      expect(() => jobSlots(bad, 8), bad).toThrow(UsageError);
    }
    expect([
      parseDuration('t', '1.5'),
      parseDuration('t', '1h30m'),
      parseDuration('t', '2d'),
    ]).toEqual([1.5, 5400, 172800]);
    expect(() => parseDuration('t', '1x')).toThrow(UsageError);
    expect(['\\t', '\\0', '\\101', '\\189', '\\x41', '\\\\', ','].map(unescapePrintf)).toEqual([
      '\t',
      '\0',
      'A',
      '\x0189',
      '\\x41',
      '\\\\',
      ',',
    ]);
  });

  it('reads a -j value that is none of the forms as a file holding one (GNU parallel)', () => {
    const file = (content: string) => {
      const path = scratchFile('procs');
      writeFileSync(path, content);
      return path;
    };
    expect([
      jobSlots(file('2\n'), 8),
      jobSlots(file('3'), 8),
      jobSlots(file('50%\n'), 8),
      jobSlots(file('-2\n'), 8),
      jobSlots(file('0\n'), 8),
      // one final newline, as a file's line ends: on the command line too, as Perl's $ allows
      jobSlots('4\n', 8),
    ]).toEqual([2, 3, 4, 6, 250, 4]);
    // a file naming another file is not followed
    const named = file('2\n');
    const bad = ['', '3\n\n', ' 3\n', '3\r\n', '0%\n', '-8\n', named, 'three\n'].map(file);
    for (const path of [...bad, scratch, join(scratch, 'no-such-procs')]) {
      expect(() => jobSlots(path, 8), path).toThrow(UsageError);
    }
  });

  it('computes --halt and its exit status as GNU parallel does', () => {
    const failOne = new HaltTracker(parseHalt('now,fail=1'), () => 3);
    expect(failOne.finish({ exitval: 0, signal: 0 })).toBeNull();
    expect(failOne.finish({ exitval: 0, signal: 9 })).toBe('now');
    expect(failOne.exitStatus(2)).toBe(137);
    const timedOut = new HaltTracker(parseHalt('2'), () => 1);
    timedOut.finish({ exitval: -1, signal: 15 });
    expect(timedOut.exitStatus(1)).toBe(255);
    const percent = new HaltTracker(parseHalt('soon,fail=30%'), () => 10);
    for (const exitval of [0, 0, 2, 0]) expect(percent.finish({ exitval, signal: 0 })).toBeNull();
    expect(percent.finish({ exitval: 4, signal: 0 })).toBeNull();
    expect(percent.finish({ exitval: 1, signal: 0 })).toBe('soon');
    expect(percent.exitStatus(6)).toBe(30);
    const success = new HaltTracker(parseHalt('now,success=1'), () => 3);
    expect(success.finish({ exitval: 3, signal: 0 })).toBeNull();
    expect(success.finish({ exitval: 0, signal: 0 })).toBe('now');
    expect(success.exitStatus(2)).toBe(0);
    expect(parseHalt('never')).toBeNull();
    expect(() => parseHalt('later,fail=1')).toThrow(UsageError);
    expect(() => parseHalt('now,oops=1')).toThrow(UsageError);
  });

  it('writes joblog rows and --results paths in GNU parallel format', () => {
    const row = {
      seq: 3,
      startTime: 1_700_000_000_123,
      runtime: 1500,
      receive: 4,
      exitval: -1,
      signal: 15,
      command: 'echo a\nb',
    };
    expect(formatRow(row)).toBe('3\t:\t1700000000.123\t     1.500\t0\t4\t-1\t15\techo a\0b\n');
    expect(escapeName('a/b\\c\td')).toBe('a\\_b\\\\c\\td');
    expect(resultDir('out', ['x', ''])).toBe(join('out', '1', 'x', '2'));
  });

  it('writes --results tables (.csv, .tsv, .json) in GNU parallel format', () => {
    const row = {
      seq: 2,
      startTime: 1_700_000_000_123,
      runtime: 1500,
      receive: 6,
      exitval: 1,
      signal: 0,
      command: "echo 'a b'",
      values: ['a b', 'x"y', 'plain'],
      stdout: Buffer.from('a b\n\u0001\n'),
      stderr: Buffer.from('\\é'),
    };
    const written = (format: 'csv' | 'tsv' | 'json') => {
      const path = scratchFile(`table.${format}`);
      const table = new ResultsTable(path, tableFormat(path)!);
      table.write(row);
      table.write({ ...row, seq: 3, values: ['p', 'q', 'r'] });
      table.close();
      return readFileSync(path, 'utf8');
    };
    const header = 'Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,V1,V2,V3';
    // In quotes (a quote doubled): a field with a blank, the separator, a quote or a NUL.
    expect(written('csv')).toBe(
      `${header},Stdout,Stderr\n` +
        '2,:,1700000000.123,1.500,0,6,1,0,"echo \'a b\'","a b","x""y",plain,"a b\n\u0001\n",\\é\n' +
        '3,:,1700000000.123,1.500,0,6,1,0,"echo \'a b\'",p,q,r,"a b\n\u0001\n",\\é\n',
    );
    expect(written('tsv').split('\n')[0]).toBe(`${header.replaceAll(',', '\t')}\tStdout\tStderr`);
    expect(written('json').split('\n')[0]).toBe(
      '{ "Seq": 2, "Host": ":", "Starttime": 1700000000.123, "JobRuntime": 1.500, "Send": 0, ' +
        '"Receive": 6, "Exitval": 1, "Signal": 0, "Command": "echo \'a b\'", ' +
        '"V": [ "a b","x\\"y","plain" ], "Stdout": "a b\\u000a\\u0001\\u000a", "Stderr": "\\\\é" }',
    );
    expect(tableFormat('out.CSV')).toBe('csv');
    expect(tableFormat('out.csv/')).toBe(null);
  });

  it('tags every line, including a last one without a newline', () => {
    expect(tagLines(Buffer.from('a\nb\n\nc'), 'in\t').toString()).toBe('in\ta\nin\tb\nin\t\nin\tc');
  });

  it('parses option clusters for pidwatch wait', () => {
    const spec = { timeout: { short: 't', value: true }, exited: { short: 'e' } };
    const parsed = parseArgs(['-et5', '1'], spec);
    expect(Object.fromEntries(parsed.options)).toEqual({ exited: true, timeout: '5' });
    expect(() => parseArgs(['-x'], spec)).toThrow('unknown option -x');
  });
});

describe('pidwatch (main)', () => {
  it('--help and --version exit 0; no or an unknown command exits 2', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pidwatch <command>/);
    const version = await cli(['--version']);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect((await cli([])).code).toBe(2);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(lines(unknown.stderr)).toHaveLength(1);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe('pidwatch run', () => {
  it('--help exits 0', async () => {
    const help = await cli(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pidwatch run/);
  });

  it.each([
    [['run', '-j', 'x', 'true'], '-j'],
    [['run', '-j'], 'requires an argument'],
    [['run', '--timeout', 'soon', 'true'], '--timeout'],
    [['run', '--halt', 'later', 'true'], '--halt'],
    [['run', '--retries', '{}', 'true'], '--retries'],
    [['run', '--nope', 'true'], 'unknown option: nope'],
    [['run', '--resume', 'true'], '--joblog'],
    [['run', '--joblog', '/nonexistent-dir/log', 'true', ':::', 'a'], 'joblog'],
    [['run', 'echo', '{= s/a/b/ =}', ':::', 'aaa'], 'perl expression'],
    [
      ['run', '-a', '/nonexistent-dir/input', 'echo'],
      "cannot open input file '/nonexistent-dir/input'",
    ],
  ])('bad usage %j exits 255 (as GNU parallel) with a one-line reason', async (args, reason) => {
    const outcome = await cli(args);
    expect(outcome.code).toBe(255);
    expect(lines(outcome.stderr)).toHaveLength(1);
    expect(outcome.stderr).toContain(reason);
  });

  it("a --results path through a file exits with mkdir's errno, 17, as GNU parallel", async () => {
    const file = scratchFile('a-file');
    writeFileSync(file, '');
    // The job would leave a mark: it is not run, its directory being made first.
    const mark = scratchFile('ran');
    const job = `echo {} >> ${mark}`;
    for (const results of [`${file}/x`, `${file}/{}`]) {
      const outcome = await cli(['run', '--results', results, job, ':::', '1']);
      expect(outcome).toMatchObject({ code: 17, stdout: '' });
      expect(outcome.stderr).toBe(`pidwatch run: mkdir ${file}: file already exists\n`);
    }
    // A path with replacement strings ending in / is a directory GNU parallel checks itself.
    const dir = await cli(['run', '--results', `${file}/{}/`, job, ':::', '1']);
    expect(dir).toMatchObject({
      code: 255,
      stderr: `pidwatch run: Cannot make dir '${file}/1/'.\n`,
    });
    expect(existsSync(mark)).toBe(false);
  });

  it('runs one job per stdin line as one shell command line, the input quoted in it', async () => {
    const outcome = await cli(['run', '-k', 'echo pre-{}-post {.}; echo ok'], {
      input: 'a.txt\nb c; echo INJECTED\n',
    });
    expect(outcome).toMatchObject({
      code: 0,
      stdout: 'pre-a.txt-post a\nok\npre-b c; echo INJECTED-post b c; echo INJECTED\nok\n',
    });
  });

  it('appends the input when no replacement string appears, and takes ::: arguments', async () => {
    const outcome = await cli(['run', '-k', 'echo', 'hi', ':::', 'a', 'b c', '$HOME']);
    expect(outcome).toMatchObject({ code: 0, stdout: 'hi a\nhi b c\nhi $HOME\n' });
  });

  it('--keep-order prints in input order, otherwise outputs come as jobs finish', async () => {
    const args = ['-j', '3', 'sleep {}; echo {}', ':::', '0.4', '0', '0.2'];
    const kept = await cli(['run', '-k', ...args]);
    expect(kept.stdout).toBe('0.4\n0\n0.2\n');
    const loose = await cli(['run', ...args]);
    expect(lines(loose.stdout).sort()).toEqual(['0', '0.2', '0.4']);
  });

  it('--tag prefixes every output line with the input and a tab', async () => {
    const outcome = await cli(['run', '-k', '--tag', 'echo 1; echo {} >&2', ':::', 'x']);
    expect(outcome.stdout).toBe('x\t1\n');
    expect(outcome.stderr).toBe('x\tx\n');
  });

  it('never interleaves the outputs of parallel jobs', async () => {
    const script = 'i=0; while [ $i -lt 3000 ]; do echo {}-$i; i=$((i+1)); done';
    const outcome = await cli(['run', '-j', '4', script, ':::', 'a', 'b', 'c', 'd']);
    expect(outcome.code).toBe(0);
    const prefixes = lines(outcome.stdout).map((line) => line.split('-')[0]);
    expect(prefixes).toHaveLength(12_000);
    const changes = prefixes.filter((p, i) => i > 0 && p !== prefixes[i - 1]).length;
    expect(changes).toBe(3);
    for (const job of ['a', 'b', 'c', 'd']) {
      const own = lines(outcome.stdout).filter((line) => line.startsWith(`${job}-`));
      expect(own.map((line) => Number(line.split('-')[1]))).toEqual(
        Array.from({ length: 3000 }, (_, i) => i),
      );
    }
  });

  it('--line-buffer never splits a line between jobs', async () => {
    const script = 'i=0; while [ $i -lt 2000 ]; do echo {}-$i; i=$((i+1)); done';
    const outcome = await cli(['run', '--line-buffer', '-j', '3', script, ':::', 'a', 'b', 'c']);
    expect(outcome.code).toBe(0);
    const all = lines(outcome.stdout);
    expect(all).toHaveLength(6000);
    for (const line of all) expect(line).toMatch(/^[abc]-\d+$/);
  });

  it('exits with the number of failed jobs, at most 101', async () => {
    expect((await cli(['run', 'exit {}', ':::', '0', '1', '2', '3', '0'])).code).toBe(3);
    const inputs = Array.from({ length: 105 }, (_, i) => String(i));
    expect((await cli(['run', '-j', '16', 'false', ':::', ...inputs])).code).toBe(101);
  });

  it('-j FILE: as many jobs at once as the file says', async () => {
    const procs = scratchFile('procs');
    writeFileSync(procs, '3\n');
    const log = scratchFile('overlap');
    // Each job waits (up to 10 s) until three have started: three run together, never more.
    const job = `echo start {} >> ${log}; i=0; while [ $(grep -c start ${log}) -lt 3 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo end {} >> ${log}`;
    const outcome = await cli(['run', '-j', procs, job, ':::', '1', '2', '3', '4', '5', '6']);
    expect(outcome.code).toBe(0);
    let running = 0;
    let most = 0;
    for (const line of lines(readFileSync(log, 'utf8'))) {
      running += line.startsWith('start') ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(most).toBe(3);
  });

  it('-j FILE: a larger count written to the file while jobs run starts more at once', async () => {
    const dir = scratchFile('procs-grow');
    mkdirSync(dir);
    const procs = join(dir, 'procs');
    writeFileSync(procs, '1\n');
    // The first job, alone as the file says 1, makes it 3, then waits (up to 10 s) for the
    // other two to start beside it; they only leave a file saying they did.
    const wait = `i=0; while ! [ -e ${dir}/b ] || ! [ -e ${dir}/c ]; do [ $i -lt 100 ] || exit 1; sleep 0.1; i=$((i+1)); done`;
    const job = `if [ {} = a ]; then echo 3 > ${procs}; ${wait}; echo saw b and c; else touch ${dir}/{}; fi`;
    const outcome = await cli(['run', '-j', procs, job, ':::', 'a', 'b', 'c']);
    expect(outcome).toMatchObject({ code: 0, stdout: 'saw b and c\n' });
  });

  it('-j FILE that is not there, holds no count or leaves no slot exits 255 with a reason', async () => {
    const procs = (content: string) => {
      const path = scratchFile('procs');
      writeFileSync(path, content);
      return path;
    };
    const noCount = procs('3\n\n');
    for (const [path, reason] of [
      [join(scratch, 'no-such-procs'), '-j expects N, N%, +N, -N, 0 or a file'],
      [noCount, `-j: '${noCount}' holds no line of`],
      [procs('0%\n'), 'cannot run any jobs'],
    ]) {
      const outcome = await cli(['run', '-j', path, 'echo', ':::', 'a']);
      expect(outcome.code).toBe(255);
      expect(lines(outcome.stderr)).toHaveLength(1);
      expect(outcome.stderr).toContain(reason);
    }
  });

  it('reports a command that cannot be found as the shell does', async () => {
    const outcome = await cli(['run', 'pidwatch-no-such-command-here', ':::', 'a']);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('pidwatch-no-such-command-here: not found');
  });

  it('--joblog - writes the header first, then each row after its job output, on stdout', async () => {
    const outcome = await cli(['run', '-j1', '--joblog', '-', 'echo {}; exit {}', ':::', '0', '3']);
    expect(outcome.code).toBe(1);
    const out = lines(outcome.stdout).map((line) => line.split('\t'));
    expect(out.map((fields) => fields.length)).toEqual([9, 1, 9, 1, 9]);
    expect(out[0][0]).toBe('Seq');
    expect([out[1], out[3]]).toEqual([['0'], ['3']]);
    // Seq, Exitval and Command of the two rows
    expect([out[2], out[4]].map((row) => [row[0], row[6], row[8]])).toEqual([
      ['1', '0', 'echo 0; exit 0'],
      ['2', '3', 'echo 3; exit 3'],
    ]);
    expect(existsSync(join(scratch, '-'))).toBe(false);
  });

  it.each([
    ['--joblog', '-'],
    ['--results', '-.tsv'],
  ])(
    '%s %s on stdout loses nothing when the reader falls behind (a full pipe)',
    async (...option) => {
      // Three jobs of 1 MB each without a newline, then the joblog or the table on stdout,
      // read by a reader that starts late: stdout is a full pipe when the rows are written.
      const job = `head -c 1000000 /dev/zero | tr '\\0' x; : {}`;
      const pipeline = `set -o pipefail; "$0" "$1" run -k ${option.join(' ')} "$2" ::: 1 2 3 | (sleep 0.5; tr -d x | wc -l)`;
      const result = await runFile('bash', ['-c', pipeline, process.execPath, main, job]);
      // The header and a row per job, each on a line of its own; no EAGAIN.
      expect(result).toMatchObject({ code: 0, stdout: '4\n', stderr: '' });
    },
  );

  it("-u: jobs writing to a pipe whose reader falls behind wait for it, as a pipe's writers do", async () => {
    // The jobs write to the pipe themselves; Node's own end of it is non-blocking, theirs not.
    const job = `head -c 1000000 /dev/zero | tr '\\0' x; : {}`;
    const pipeline = `set -o pipefail; "$0" "$1" run -u "$2" ::: 1 2 3 | (sleep 0.5; wc -c)`;
    const result = await runFile('bash', ['-c', pipeline, process.execPath, main, job]);
    expect(result).toMatchObject({ code: 0, stdout: '3000000\n', stderr: '' });
  });

  it("-u with a --results table prints the jobs' output; the rows hold none of it (GNU parallel)", async () => {
    const table = scratchFile('ungrouped.csv');
    const job = 'echo out{}; echo err{} >&2';
    const outcome = await cli(['run', '-j1', '-u', '--results', table, job, ':::', '1', '2']);
    expect(outcome).toMatchObject({ code: 0, stdout: 'out1\nout2\n', stderr: 'err1\nerr2\n' });
    const [header, ...rows] = lines(readFileSync(table, 'utf8')).map((line) => line.split(','));
    expect(header).toEqual([
      ...['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval', 'Signal'],
      ...['Command', 'V1', 'Stdout', 'Stderr'],
    ]);
    // Seq, Receive, Exitval, Command, V1, Stdout, Stderr
    expect(rows.map((row) => [0, 5, 6, 8, 9, 10, 11].map((i) => row[i]))).toEqual([
      ['1', '0', '0', '"echo out1; echo err1 >&2"', '1', '', ''],
      ['2', '0', '0', '"echo out2; echo err2 >&2"', '2', '', ''],
    ]);
  });

  it("--line-buffer with a --results table prints the jobs' output and keeps it in the rows (GNU parallel)", async () => {
    const table = scratchFile('line-buffered.json');
    const job = 'echo out{}; echo err{} >&2';
    const args = ['run', '-j1', '--lb', '--tag', '--results', table, job, ':::', '1', '2'];
    const outcome = await cli(args);
    expect(outcome).toMatchObject({
      code: 0,
      stdout: '1\tout1\n2\tout2\n',
      stderr: '1\terr1\n2\terr2\n',
    });
    const rows = lines(readFileSync(table, 'utf8')).map((line) => JSON.parse(line));
    expect(Object.keys(rows[0])).toEqual([
      ...['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval', 'Signal'],
      ...['Command', 'V', 'Stdout', 'Stderr'],
    ]);
    // Receive: the bytes read from stdout and stderr both, as GNU parallel's --line-buffer counts.
    expect(rows.map((row) => [row.Seq, row.Receive, row.V, row.Stdout, row.Stderr])).toEqual([
      [1, 10, ['1'], '1\tout1\n', '1\terr1\n'],
      [2, 10, ['2'], '2\tout2\n', '2\terr2\n'],
    ]);
  });

  it.each(['-u', '--line-buffer'])(
    "%s with a --results table on stdout: the table alone, the jobs' output nowhere (GNU parallel)",
    async (mode) => {
      const job = 'echo out{}; echo err{} >&2';
      const outcome = await cli(['run', '-j1', mode, '--results', '-.tsv', job, ':::', '1']);
      expect(outcome).toMatchObject({ code: 0, stderr: '' });
      const [header, row] = outcome.stdout.split('\n');
      expect(header.split('\t').slice(-2)).toEqual(['Stdout', 'Stderr']);
      expect(row.split('\t')[0]).toBe('1');
      expect(outcome.stdout).not.toMatch(/^out1$/m);
    },
  );

  it.each(['-u', '--line-buffer'])(
    '%s: the --results table has its rows as jobs end, with -k in input order',
    async (mode) => {
      // The first job ends only once the second has been reaped (its PID is gone).
      const run = async (keepOrder: boolean) => {
        const pid = scratchFile('second-pid');
        const table = scratchFile('order.json');
        const job =
          `if [ {} = first ]; then until [ -s ${pid} ] && ! kill -0 $(cat ${pid}) 2>/dev/null; ` +
          `do sleep 0.01; done; else echo $$ > ${pid}; fi; echo {}`;
        const order = keepOrder ? ['-k'] : [];
        const args = [
          'run',
          '-j2',
          ...order,
          mode,
          '--results',
          table,
          job,
          ':::',
          'first',
          'second',
        ];
        const outcome = await cli(args);
        expect(outcome.code).toBe(0);
        const values = lines(readFileSync(table, 'utf8')).map((row) => JSON.parse(row).V[0]);
        return { stdout: outcome.stdout, values };
      };
      expect(await run(false)).toEqual({ stdout: 'second\nfirst\n', values: ['second', 'first'] });
      // -k holds --line-buffer's output in input order too; -u's goes out as it comes.
      const kept = mode === '-u' ? 'second\nfirst\n' : 'first\nsecond\n';
      expect(await run(true)).toEqual({ stdout: kept, values: ['first', 'second'] });
    },
  );

  it('writes a joblog with GNU parallel columns', async () => {
    const log = scratchFile('joblog');
    const outcome = await cli([
      'run',
      '-j',
      '2',
      '--joblog',
      log,
      'printf %s {}; exit {}',
      ':::',
      '0',
      '1',
      '2',
      '0',
    ]);
    expect(outcome).toMatchObject({ code: 2, stdout: expect.any(String) });
    const [header, ...rows] = lines(readFileSync(log, 'utf8'));
    expect(header).toBe(
      'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand',
    );
    expect(rows).toHaveLength(4);
    const inputs = ['0', '1', '2', '0'];
    const bySeq = new Map(rows.map((row) => [Number(row.split('\t')[0]), row.split('\t')]));
    expect([...bySeq.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const [seq, fields] of bySeq) {
      const input = inputs[seq - 1];
      const [, host, start, runtime, send, receive, exitval, signal, command] = fields;
      expect(host).toBe(':');
      expect(start).toMatch(/^\d{10}\.\d{3}$/);
      expect(Math.abs(Number(start) - Date.now() / 1000)).toBeLessThan(600);
      expect(runtime).toMatch(/^ *\d+\.\d{3}$/);
      expect(runtime).toHaveLength(10);
      expect(send).toBe('0');
      expect(receive).toBe('1');
      expect(exitval).toBe(input);
      expect(signal).toBe('0');
      expect(command).toBe(`printf %s ${input}; exit ${input}`);
    }
  });

  it('logs a timed-out job with exit value -1 and its signal', async () => {
    const log = scratchFile('joblog');
    const outcome = await cli(['run', '--timeout', '0.2', '--joblog', log, 'sleep', ':::', '30']);
    expect(outcome.code).toBe(1);
    const fields = lines(readFileSync(log, 'utf8'))[1].split('\t');
    expect(fields.slice(6)).toEqual(['-1', '15', 'sleep 30']);
  });

  it('--retries N tries a failing job N times in all', async () => {
    const counter = scratchFile('counter');
    const outcome = await cli([
      'run',
      '--retries',
      '3',
      `sh ${fixture('flaky.sh')} ${counter}`,
      ':::',
      '3',
    ]);
    expect(outcome).toMatchObject({ code: 0, stdout: 'attempt 3\n' });
  });

  it('--halt now,fail=1 kills the running jobs, starts no more, exits with the job status', async () => {
    const log = scratchFile('joblog');
    const script = 'if [ {} = 1 ]; then exit 7; fi; exec sleep 30';
    const inputs = ['1', '2', '3', '4', '5', '6'];
    const outcome = await cli([
      'run',
      '-j',
      '2',
      '--halt',
      'now,fail=1',
      '--joblog',
      log,
      script,
      ':::',
      ...inputs,
    ]);
    const rows = lines(readFileSync(log, 'utf8')).slice(1);
    expect(rows).toHaveLength(1);
    expect(outcome.code).toBe(7);
  });

  it("--results writes GNU parallel's files; --tree-cpu adds the CPU time of the whole tree", async () => {
    const plain = scratchFile('results');
    expect((await cli(['run', '--results', plain, 'echo', ':::', 'a'])).code).toBe(0);
    expect(readdirSync(join(plain, '1', 'a')).sort()).toEqual(['seq', 'stderr', 'stdout']);
    const dir = scratchFile('results');
    // The CPU is burnt by a grandchild: only the tree's accounting sees it.
    const burn = 'sh -c "i=0; while [ \\$i -lt 30000 ]; do i=\\$((i+1)); done" & wait; echo {}';
    const outcome = await cli(['run', '--results', dir, '--tree-cpu', burn, ':::', 'a']);
    expect(outcome).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(dir, '1', 'a', 'stdout'), 'utf8')).toBe('a\n');
    const cpu = readFileSync(join(dir, '1', 'a', 'cpu'), 'utf8');
    expect(cpu).toMatch(/^(tree|process) user \d+\.\d{6}\n\1 system \d+\.\d{6}\n$/);
    if (capabilities().cgroup !== null) {
      expect(cpu.startsWith('tree ')).toBe(true);
      const [user, system] = cpu
        .split('\n')
        .slice(0, 2)
        .map((line) => Number(line.split(' ')[2]));
      expect(user + system).toBeGreaterThan(0.005);
    }
  });

  it('--bar draws counts on stderr and clears the line at the end; no bar unless asked', async () => {
    const outcome = await cli(['run', '--bar', 'sleep', ':::', '0.3']);
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toContain('/1 done');
    expect(outcome.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect((await cli(['run', 'sleep', ':::', '0.1'])).stderr).toBe('');
  });

  it('SIGINT stops the run, kills every job (SIGKILL after the grace), and exits 255 as GNU parallel', async () => {
    const pidLog = scratchFile('pids');
    const { outcome, value: pids } = await signalledCli(
      [
        'run',
        '-j',
        '3',
        `sh ${fixture('pid-then-sleep.sh')} ${pidLog} {}`,
        ':::',
        '',
        '',
        'stubborn',
        '',
        '',
      ],
      'SIGINT',
      () => linesOnceThere(pidLog, 3)?.map(Number),
      'three jobs to start',
    );
    expect(outcome.code).toBe(255);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(lines(readFileSync(pidLog, 'utf8'))).toHaveLength(3);
  });

  it('-k and SIGINT: outputs held behind a killed job are never printed, as in GNU parallel', async () => {
    const doneLog = scratchFile('done');
    const { outcome } = await signalledCli(
      [
        'run',
        '-k',
        '-j2',
        `echo o{}; if [ {} = slow ]; then exec sleep 30; fi; echo {} >> ${doneLog}`,
        ':::',
        'slow',
        'fast1',
        'fast2',
      ],
      'SIGINT',
      () => linesOnceThere(doneLog, 2),
      'the two fast jobs to finish',
    );
    expect(outcome.code).toBe(255);
    expect(outcome.stdout).toBe('');
  });

  it('SIGHUP: no job starts after it, the running ones finish and print, exit 0 (GNU parallel)', async () => {
    const startLog = scratchFile('hup-started');
    const { outcome } = await signalledCli(
      ['run', '-j2', `echo {} >> ${startLog}; sleep 0.5; echo {}`, ':::', '1', '2', '3', '4'],
      'SIGHUP',
      () => linesOnceThere(startLog, 2),
      'two jobs to start',
    );
    expect(outcome.code).toBe(0);
    expect(lines(outcome.stdout).sort()).toEqual(['1', '2']);
    expect(lines(readFileSync(startLog, 'utf8')).sort()).toEqual(['1', '2']);
  });

  it('SIGINT: a killed job still gets its --results files, with what it wrote, as in GNU parallel', async () => {
    const results = scratchFile('interrupted-results');
    const started = scratchFile('slow-started');
    const { outcome } = await signalledCli(
      ['run', '--results', results, `echo o{}; echo x > ${started}; exec sleep 30`, ':::', 'slow'],
      'SIGINT',
      () => linesOnceThere(started, 1),
      'the job to start',
    );
    expect(outcome.code).toBe(255);
    expect(readFileSync(join(results, '1', 'slow', 'stdout'), 'utf8')).toBe('oslow\n');
    expect(readFileSync(join(results, '1', 'slow', 'seq'), 'utf8')).toBe('1');
  });
});
