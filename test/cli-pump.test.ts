// `pidwatch run`'s common case goes to the native job pump (src/cli/run/pump.ts) where the
// kernel allows (pidfd mode); -k at -j1 prints the same and always takes the general
// runner. Both paths must give the same output, joblog and exit status, and the pump's jobs
// must still be trees: what a job leaves behind is killed when it ends.
import { spawn as spawnChild } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { capabilities } from '../src/index.js';
import { hasExited, runNode } from './helpers/proc.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'pidwatch-cli-pump-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let count = 0;

/** Runs `pidwatch ...args` to its end. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runNode([main, ...args], { cwd: scratch, env: { ...process.env, ...env } });
}

/** Joblog rows without the timing columns (start time, runtime), header first. */
function joblogRows(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const cols = line.split('\t');
      return [cols[0], cols[1], ...cols.slice(4)].join('\t');
    });
}

/** Runs `args` at -j1 on both paths: the default (pump) and with -k (general runner). */
async function bothPaths(args: string[], env: NodeJS.ProcessEnv = {}) {
  const logs = [join(scratch, `${count}-pump.log`), join(scratch, `${count++}-general.log`)];
  const pump = await cli(['run', '-j1', '--joblog', logs[0], ...args], env);
  const general = await cli(['run', '-j1', '-k', '--joblog', logs[1], ...args], env);
  return { pump, general, logs: logs.map(joblogRows) };
}

describe('the job pump and the general runner agree', () => {
  const cases: [string, string[], NodeJS.ProcessEnv?][] = [
    ['quoted inputs', ['echo', '{}', ':::', 'a b', "c'd", '$HOME', 'ü ∂', '*']],
    ['stdout then stderr, per job', ['echo out {}; echo err {} >&2', ':::', '1', '2', '3']],
    ['exit values and the count of failures', ['exit {}', ':::', '0', '3', '0', '1']],
    ['a job killed by a signal', ['sh -c "kill -{} \\$\\$"; echo after', ':::', '9', '15']],
    ['sequence and slot variables', ['echo $PARALLEL_SEQ $PARALLEL_JOBSLOT {#}', ':::', 'x', 'y']],
    ['a program run without the shell', ['/bin/echo', '-n', '{}', ':::', 'p', 'q']],
    [
      'a shell that cannot be run',
      ['echo {}', ':::', 'a', 'b'],
      { PARALLEL_SHELL: '/nonexistent/sh' },
    ],
    ['an empty input', ['echo', '{}', ':::', '']],
    // A job's stdout is a file, as under GNU parallel: reopening it truncates it.
    ['a job that reopens /dev/stdout', ['echo a; echo b >/dev/stdout; echo {}', ':::', 'c']],
  ];
  for (const [name, args, env] of cases) {
    it(name, async () => {
      const { pump, general, logs } = await bothPaths(args, env);
      expect({ ...pump, pid: 0 }).toEqual({ ...general, pid: 0 });
      expect(logs[0]).toEqual(logs[1]);
      expect(logs[0].length).toBeGreaterThan(1); // the header and a row per job
    });
  }
});

describe('the job pump', () => {
  it('prints each job whole, stdout then stderr, never mixed with another job', async () => {
    // Four jobs at once, each writing 200 KiB in lines (more than a pipe holds) to both
    // streams: every job's lines must come out together.
    const script =
      'for i in $(seq 2000); do echo "{} $i ........................................................................................"; echo "{} err $i" >&2; done';
    const out = await cli(['run', '-j4', script, ':::', 'a', 'b', 'c', 'd']);
    expect(out.code).toBe(0);
    const runs = (text: string) =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line[0])
        .filter((job, i, all) => i === 0 || all[i - 1] !== job);
    expect(runs(out.stdout).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(runs(out.stderr).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(out.stdout.split('\n').length - 1).toBe(8000);
  });

  it('kills what a job leaves behind when it ends, and leaves no cgroup (jobs are trees)', async () => {
    const out = await cli(['run', '-j2', 'sleep 60 & echo $! {}', ':::', '1', '2', '3']);
    expect(out.code).toBe(0);
    const pids = out.stdout
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[0]));
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(pid).toBeGreaterThan(1);
    // Killed: gone, or a zombie until init reaps it (it was reparented there).
    for (const pid of pids) expect(hasExited(pid)).toBe(true);
    const root = capabilities().cgroup;
    if (root !== null) expect(existsSync(join(root, `pidwatch-${out.pid}`))).toBe(false);
  });

  it('with --no-tree does not wait for what a job leaves behind (its output is a file)', async () => {
    const out = await cli(['run', '--no-tree', 'sleep 60 & echo $! {}', ':::', '1']);
    expect(out.code).toBe(0);
    const pid = Number(out.stdout.split(' ')[0]);
    expect(pid).toBeGreaterThan(1);
    try {
      // The run ended while the background sleep, holding the job's stdout, still runs.
      expect(hasExited(pid)).toBe(false);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('gives every job one of the -j slots', async () => {
    const out = await cli([
      'run',
      '-j3',
      'echo $PARALLEL_JOBSLOT {}',
      ':::',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
    ]);
    const slots = out.stdout
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[0]));
    expect(slots).toHaveLength(6);
    for (const slot of slots) expect([1, 2, 3]).toContain(slot);
  });

  it('stops at a closed stdout with the status of SIGPIPE, as GNU parallel', async () => {
    const status = await new Promise<string>((resolve, reject) => {
      const child = spawnChild('bash', [
        '-c',
        `seq 100000 | "${process.execPath}" "${main}" run -j2 echo | head -1 >/dev/null; echo "\${PIPESTATUS[1]}"`,
      ]);
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        text += d;
      });
      child.on('error', reject);
      child.on('close', () => resolve(text.trim()));
    });
    expect(status).toBe('141');
  });
});
