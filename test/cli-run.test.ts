import { spawn as spawnChild } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../src/cli/args.js';
import { tagLines } from '../src/cli/run/output.js';
import { CommandTemplate, shellQuote } from '../src/cli/run/template.js';

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
  return new Promise((resolve, reject) => {
    const child = spawnChild(process.execPath, [main, ...args], { cwd: scratch });
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

describe('command lines', () => {
  it('expands the replacement strings of GNU parallel', () => {
    const template = new CommandTemplate([
      'cp',
      '{}',
      'out/{/.}.bak',
      '{//}',
      '{/}',
      '{.}',
      '#{#}',
    ]);
    expect(template.expand('src/a.b/file.tar.gz', 7)).toEqual([
      'cp',
      'src/a.b/file.tar.gz',
      'out/file.tar.bak',
      'src/a.b',
      'file.tar.gz',
      'src/a.b/file.tar',
      '#7',
    ]);
    expect(new CommandTemplate(['echo', '-n']).expand('x y', 1)).toEqual(['echo', '-n', 'x y']);
    expect(new CommandTemplate(['echo', '{.}']).expand('.hidden', 1)).toEqual(['echo', '.hidden']);
  });

  it('quotes a command for the joblog as a shell would read it back', () => {
    expect(shellQuote(['sh', '-c', "echo 'hi' $x", 'a/b.c'])).toBe(
      `sh -c 'echo '\\''hi'\\'' $x' a/b.c`,
    );
  });

  it('tags every line, including a last one without a newline', () => {
    expect(tagLines(Buffer.from('a\nb\n\nc'), 'in\t').toString()).toBe('in\ta\nin\tb\nin\t\nin\tc');
  });

  it('parses option clusters, inline values and stops at the command', () => {
    const spec = { jobs: { short: 'j', value: true }, 'keep-order': { short: 'k' }, tag: {} };
    const parsed = parseArgs(['-kj4', '--tag', 'echo', '-n', '--tag'], spec, {
      stopAtPositional: true,
    });
    expect(Object.fromEntries(parsed.options)).toEqual({
      'keep-order': true,
      jobs: '4',
      tag: true,
    });
    expect(parsed.positionals).toEqual(['echo', '-n', '--tag']);
    expect(parseArgs(['--jobs=2', '--', '-x'], spec).positionals).toEqual(['-x']);
    expect(() => parseArgs(['--tag=1'], spec)).toThrow(UsageError);
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
    [['run'], 'no command given'],
    [['run', '-j', '0', 'true'], '--jobs'],
    [['run', '-j'], 'needs a value'],
    [['run', '--timeout', 'soon', 'true'], '--timeout'],
    [['run', '--halt', 'later', 'true'], '--halt'],
    [['run', '--retries', '-1', 'true'], '--retries'],
    [['run', '--nope', 'true'], 'unknown option --nope'],
    [['run', 'echo', ':::', 'a', ':::', 'b'], ':::'],
    [['run', '--joblog', '/nonexistent-dir/log', 'true', ':::', 'a'], 'joblog'],
  ])('bad usage %j exits 2 with a one-line reason', async (args, reason) => {
    const outcome = await cli(args);
    expect(outcome.code).toBe(2);
    expect(lines(outcome.stderr)).toHaveLength(1);
    expect(outcome.stderr).toContain(reason);
  });

  it('runs one job per stdin line, replacing {} in the arguments', async () => {
    const outcome = await cli(['run', '-k', '--', 'echo', 'pre-{}-post', '{.}'], {
      input: 'a.txt\nb\n',
    });
    expect(outcome).toMatchObject({ code: 0, stdout: 'pre-a.txt-post a\npre-b-post b\n' });
  });

  it('appends the input when no replacement string appears, and takes ::: arguments', async () => {
    const outcome = await cli(['run', '-k', 'echo', 'hi', ':::', 'a', 'b', 'c']);
    expect(outcome).toMatchObject({ code: 0, stdout: 'hi a\nhi b\nhi c\n' });
  });

  it('--keep-order prints in input order, otherwise outputs come as jobs finish', async () => {
    const args = ['-j', '3', '--', 'sh', '-c', 'sleep {}; echo {}', ':::', '0.4', '0', '0.2'];
    const kept = await cli(['run', '-k', ...args]);
    expect(kept.stdout).toBe('0.4\n0\n0.2\n');
    const loose = await cli(['run', ...args]);
    expect(lines(loose.stdout).sort()).toEqual(['0', '0.2', '0.4']);
  });

  it('--tag prefixes every output line with the input and a tab', async () => {
    const outcome = await cli([
      'run',
      '-k',
      '--tag',
      '--',
      'sh',
      '-c',
      'echo 1; echo 2 >&2',
      ':::',
      'x',
    ]);
    expect(outcome.stdout).toBe('x\t1\n');
    expect(outcome.stderr).toBe('x\t2\n');
  });

  it('never interleaves the outputs of parallel jobs', async () => {
    const script = 'i=0; while [ $i -lt 3000 ]; do echo {}-$i; i=$((i+1)); done';
    const outcome = await cli([
      'run',
      '-j',
      '4',
      '--',
      'sh',
      '-c',
      script,
      ':::',
      'a',
      'b',
      'c',
      'd',
    ]);
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

  it('exits with the number of failed jobs', async () => {
    const outcome = await cli(['run', '--', 'sh', '-c', 'exit {}', ':::', '0', '1', '2', '3', '0']);
    expect(outcome.code).toBe(3);
  });

  it('caps the exit status at 101', async () => {
    const inputs = Array.from({ length: 105 }, (_, i) => String(i));
    const outcome = await cli(['run', '-j', '16', '--', 'false', ':::', ...inputs]);
    expect(outcome.code).toBe(101);
  });

  it('reports a command that cannot be run as a failed job', async () => {
    const outcome = await cli(['run', '--', 'pidwatch-no-such-command-here', ':::', 'a']);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('ENOENT');
  });

  it('writes a joblog with GNU parallel columns', async () => {
    const log = scratchFile('joblog');
    const outcome = await cli([
      'run',
      '-j',
      '2',
      '--joblog',
      log,
      '--',
      'sh',
      '-c',
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
      expect(runtime).toMatch(/^\d+\.\d{3}$/);
      expect(send).toBe('0');
      expect(receive).toBe('1');
      expect(exitval).toBe(input);
      expect(signal).toBe('0');
      expect(command).toBe(`sh -c 'printf %s ${input}; exit ${input}'`);
    }
  });

  it('logs a timed-out job with its signal', async () => {
    const log = scratchFile('joblog');
    const outcome = await cli(['run', '--timeout', '0.2', '--joblog', log, 'sleep', ':::', '30']);
    expect(outcome.code).toBe(1);
    const fields = lines(readFileSync(log, 'utf8'))[1].split('\t');
    expect(fields.slice(6)).toEqual(['-1', '15', 'sleep 30']);
  });

  it('--retries runs a failed job again', async () => {
    const counter = scratchFile('counter');
    const outcome = await cli([
      'run',
      '--retries',
      '2',
      'sh',
      fixture('flaky.sh'),
      counter,
      ':::',
      '3',
    ]);
    expect(outcome).toMatchObject({ code: 0, stdout: 'attempt 3\n' });
  });

  it('--halt now,fail=1 kills the running jobs and starts no more', async () => {
    const log = scratchFile('joblog');
    const script = 'if [ {} = 1 ]; then exit 1; fi; exec sleep 30';
    const inputs = ['1', '2', '3', '4', '5', '6'];
    const outcome = await cli([
      'run',
      '-j',
      '2',
      '--halt',
      'now,fail=1',
      '--joblog',
      log,
      '--',
      'sh',
      '-c',
      script,
      ':::',
      ...inputs,
    ]);
    const rows = lines(readFileSync(log, 'utf8')).slice(1);
    expect(rows.length).toBeLessThan(inputs.length);
    expect(outcome.code).toBe(rows.length);
  });

  it('--bar draws counts on stderr and clears the line at the end', async () => {
    const outcome = await cli(['run', '--bar', 'sleep', ':::', '0.3']);
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toContain('/1 done');
    expect(outcome.stderr.endsWith('\r\x1b[K')).toBe(true);
  });

  it('SIGINT stops the run, kills every job (SIGKILL after the grace), and exits 130', async () => {
    const pidLog = scratchFile('pids');
    let cliPid = 0;
    const run = cli(
      [
        'run',
        '-j',
        '3',
        '--',
        'sh',
        fixture('pid-then-sleep.sh'),
        pidLog,
        '{}',
        ':::',
        '',
        '',
        'stubborn',
        '',
        '',
      ],
      {
        started: (pid) => {
          cliPid = pid;
        },
      },
    );
    const pids = await waitFor(() => {
      const found = existsSync(pidLog) ? lines(readFileSync(pidLog, 'utf8')).map(Number) : [];
      return found.length === 3 ? found : undefined;
    }, 'three jobs to start');
    process.kill(cliPid, 'SIGINT');
    const outcome = await run;
    expect(outcome.code).toBe(130);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(lines(readFileSync(pidLog, 'utf8'))).toHaveLength(3);
  });
});
