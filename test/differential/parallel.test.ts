// Each case of cases.ts runs through GNU parallel and through `pidwatch run`; stdout (as a
// multiset of lines unless the order is fixed), exit status, joblog rows (without the two
// timing columns), --results trees and tables (.csv, .tsv, .json: the timing columns
// masked) must agree, and stderr where a case asks. Runs in one watcher mode only: what it
// checks does not depend on the mode.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { testMode } from '../helpers/mode.js';
import { type Case, cases } from './cases.js';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const haveParallel = spawnSync('parallel', ['--version'], { stdio: 'ignore' }).status === 0;
// Made on first use: vitest runs no afterAll for a file whose tests are all skipped (every
// mode but one), which left an empty directory behind for each of them.
let scratch: string | undefined;
function scratchDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'pidwatch-differential-'));
  return scratch;
}
afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

type Tool = 'parallel' | 'pidwatch';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  joblog: string[] | null;
  results: Record<string, string> | null;
  /** The --results tables $R.csv, $R.tsv, $R.json, those that were written. */
  tables: Record<string, string>;
}

function argvOf(tool: Tool, args: readonly string[]): [string, string[]] {
  return tool === 'parallel'
    ? ['parallel', ['--will-cite', ...args]]
    : [process.execPath, [main, 'run', ...args]];
}

function exec(
  tool: Tool,
  args: readonly string[],
  dir: string,
  stdin: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const [file, argv] = argvOf(tool, args);
  return new Promise((resolve, reject) => {
    // The same shell and no home state for both: GNU parallel would otherwise run jobs with
    // the invoking shell and read ~/.parallel.
    const env = { ...process.env, PARALLEL_SHELL: '/bin/sh', HOME: dir, LC_ALL: 'C.UTF-8' };
    const child = spawn(file, argv, { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
  });
}

/**
 * Joblog rows without Starttime and JobRuntime, header first, then by Seq; with -k, as the
 * file has them (GNU parallel then writes each row as it prints the job, in input order).
 */
function readJoblog(path: string, inFileOrder: boolean): string[] | null {
  if (!existsSync(path)) return null;
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  const trimmed = rows.map((row) =>
    row
      .split('\t')
      .filter((_, i) => i !== 2 && i !== 3)
      .join('\t'),
  );
  if (inFileOrder) return trimmed;
  const [header, ...rest] = trimmed;
  const seq = (row: string) => Number(row.split('\t')[0]);
  return [header, ...rest.sort((a, b) => seq(a) - seq(b) || a.localeCompare(b))];
}

/** Starttime and JobRuntime masked in the rows of a --results table (CSV, TSV or JSON). */
function maskTimes(text: string): string {
  return text
    .replace(/^(\d+)([,\t]):\2[\d.]+\2[\d.]+\2/gm, '$1$2:$2<start>$2<runtime>$2')
    .replace(
      /"Starttime": [\d.]+, "JobRuntime": [\d.]+/g,
      '"Starttime": <start>, "JobRuntime": <runtime>',
    );
}

/** Every file under `root` with its content. */
function readTree(root: string): Record<string, string> | null {
  if (!existsSync(root)) return null;
  const tree: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else tree[relative(root, path)] = readFileSync(path, 'utf8');
    }
  };
  walk(root);
  return tree;
}

const keepsOrder = (args: readonly string[]) => args.some((arg) => /^-(k|j1$|kj)/.test(arg));
const ordered = (kase: Case) => keepsOrder(kase.args);
/** The joblog's rows are in input order: every run that wrote some kept order. */
const loggedInOrder = (kase: Case) =>
  ordered(kase) && (kase.before === undefined || keepsOrder(kase.before));

let runs = 0;
async function runCase(tool: Tool, kase: Case): Promise<Run> {
  const dir = join(scratchDir(), `${runs++}-${tool}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(kase.files ?? {}))
    writeFileSync(join(dir, name), content);
  const joblog = join(dir, 'joblog');
  const results = join(dir, 'results');
  const fill = (args: readonly string[]) =>
    args.map((arg) => arg.replace('$J', joblog).replace('$R', results));
  if (kase.before !== undefined) await exec(tool, fill(kase.before), dir, '');
  const { status, stdout, stderr } = await exec(tool, fill(kase.args), dir, kase.stdin ?? '');
  // Each tool runs in a directory of its own: its path in the output reads the same.
  const own = (text: string) => text.replaceAll(dir, '<dir>');
  return {
    status,
    stdout: maskTimes(own(stdout)),
    stderr: own(stderr),
    joblog: readJoblog(joblog, loggedInOrder(kase)),
    results: readTree(results),
    tables: Object.fromEntries(
      ['csv', 'tsv', 'json']
        .filter((format) => existsSync(`${results}.${format}`))
        .map((format) => [format, maskTimes(readFileSync(`${results}.${format}`, 'utf8'))]),
    ),
  };
}

/** Stderr with each tool's name at the start of a line put alike. */
const sameName = (stderr: string) => stderr.replace(/^(parallel|pidwatch run): /gm, 'NAME: ');

function lines(kase: Case, stdout: string): string[] {
  const all = stdout.split('\n');
  return ordered(kase) ? all : all.sort();
}

// Once per CI run: in pidfd mode, and not again in .ci/run's second pass on another Node.
const skip =
  testMode !== 'pidfd' ||
  process.env.PIDWATCH_SECOND_PASS === '1' ||
  (!haveParallel && process.env.CI !== 'true');

describe.skipIf(skip)('pidwatch run agrees with GNU parallel', () => {
  it('has GNU parallel to compare with', () => {
    expect(haveParallel).toBe(true);
  });
  for (const kase of cases) {
    it.concurrent(kase.name, async () => {
      const [gnu, ours] = await Promise.all([runCase('parallel', kase), runCase('pidwatch', kase)]);
      if (kase.usage) {
        expect(ours.status).toBe(gnu.status);
        expect(ours.stderr).toMatch(/^pidwatch run: [^\n]+\n$/);
        return;
      }
      const context = `args: ${JSON.stringify(kase.args)}\nparallel stderr: ${gnu.stderr}\npidwatch stderr: ${ours.stderr}`;
      expect({ status: ours.status, stdout: lines(kase, ours.stdout) }, context).toEqual({
        status: gnu.status,
        stdout: lines(kase, gnu.stdout),
      });
      expect(ours.joblog, context).toEqual(gnu.joblog);
      expect(ours.results, context).toEqual(gnu.results);
      expect(ours.tables, context).toEqual(gnu.tables);
      if (kase.stderr) expect(sameName(ours.stderr)).toEqual(sameName(gnu.stderr));
    });
  }
});
