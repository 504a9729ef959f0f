// Scenarios of everyday calls, whose rows are not spawn adapters but ways to do
// the same job: a pipeline of four processes, and a synchronous run of
// /bin/true. Each row runs in its own process, as every other scenario's.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';

const now = () => process.hrtime.bigint();
const microseconds = (from, to) => Number(to - from) / 1e3;

/** The job of scenario 7: `head -c BYTES /dev/zero | cat | cat | wc -c`. */
function pipelineStages(bytes) {
  return [['head', '-c', String(bytes), '/dev/zero'], ['cat'], ['cat'], ['wc', '-c']];
}

async function readText(stream) {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

/** One way to run the pipeline, per row. Resolves with what `wc -c` printed. */
async function pipelineRunner(row) {
  switch (row) {
    case 'pidwatch': {
      // Kernel pipes between the stages; JS reads only the count.
      const { pipeline } = await import('../../dist/index.js');
      return async (bytes) => {
        const p = pipeline(pipelineStages(bytes), { stdio: ['ignore', 'pipe', 'inherit'] });
        const [text] = await Promise.all([readText(p.stdout), p.exited]);
        return text;
      };
    }
    case 'sh': {
      const { execFile } = await import('node:child_process');
      return (bytes) =>
        new Promise((resolve, reject) => {
          const line = pipelineStages(bytes)
            .map((argv) => argv.join(' '))
            .join(' | ');
          execFile('/bin/sh', ['-c', line], (error, stdout) =>
            error ? reject(error) : resolve(stdout),
          );
        });
    }
    case 'child_process': {
      // Each stdout piped into the next stdin through Node streams, as commonly done.
      const cp = await import('node:child_process');
      return async (bytes) => {
        const procs = pipelineStages(bytes).map(([file, ...args], i) =>
          cp.spawn(file, args, { stdio: [i === 0 ? 'ignore' : 'pipe', 'pipe', 'inherit'] }),
        );
        for (let i = 0; i < procs.length - 1; i++) procs[i].stdout.pipe(procs[i + 1].stdin);
        const exits = procs.map((p) => new Promise((resolve) => p.on('close', resolve)));
        const [text] = await Promise.all([readText(procs.at(-1).stdout), ...exits]);
        return text;
      };
    }
    default:
      throw new Error(`no pipeline row ${row}`);
  }
}

/**
 * CPU time in ms of this process and of every descendant reaped so far (utime,
 * stime, cutime, cstime of /proc/self/stat, in clock ticks of 10 ms). Less
 * disturbed by other work on the machine than the wall time.
 */
function cpuWithChildren() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) * 10;
}

/** 7: bytes through a four-stage pipeline; the time to the last exit, and the CPU. */
async function pipe(row, { bytes }) {
  const run = await pipelineRunner(row);
  assert.equal(Number(await run(1024 * 1024)), 1024 * 1024); // warm-up
  return {
    async round() {
      const cpu0 = cpuWithChildren();
      const t0 = now();
      const text = await run(bytes);
      const us = microseconds(t0, now());
      const cpuMs = cpuWithChildren() - cpu0;
      assert.equal(Number(text), bytes);
      return { ms: us / 1e3, mibPerS: bytes / 1024 / 1024 / (us / 1e6), cpuMs };
    },
    async teardown() {},
  };
}

/** One way to run /bin/true synchronously, per row. */
async function syncRunner(row) {
  switch (row) {
    case 'pidwatch':
    case 'pidwatch-sigchld': {
      const { execSync } = await import('../../dist/index.js');
      return () => execSync('/bin/true');
    }
    case 'child_process': {
      const { execFileSync } = await import('node:child_process');
      return () => execFileSync('/bin/true');
    }
    case 'child_process-spawnSync': {
      const { spawnSync } = await import('node:child_process');
      return () => {
        const result = spawnSync('/bin/true');
        assert.equal(result.status, 0);
      };
    }
    default:
      throw new Error(`no sync row ${row}`);
  }
}

/** 8: sequential synchronous runs of /bin/true (output piped and collected). */
async function sync(row, { n, warmup }) {
  const run = await syncRunner(row);
  for (let i = 0; i < warmup; i++) run();
  return {
    async round() {
      const t0 = now();
      for (let i = 0; i < n; i++) run();
      return { usPerOp: microseconds(t0, now()) / n };
    },
    async teardown() {},
  };
}

/** Setups taking (row id, params) instead of a spawn adapter. */
export const everydayScenarios = { pipe, sync };
