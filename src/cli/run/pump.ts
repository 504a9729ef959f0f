// `pidwatch run`'s common case on the native job pump (native/pump.h): each job's output
// printed whole when it ends, and nothing that needs a decision in JS between one job's
// end and the next one's start (no --halt, --timeout, --retries, --delay, -k, --results,
// --tag, -v, --bar, no -j FILE, whose count can change, and no {%} in the command, whose
// slot only the pump knows). The jobs are made here as on the general path (inputs,
// template, the shell or not, the same environment); a pump thread per slot starts, waits
// for and prints them, and their rows come back in batches, to be logged and counted as the
// general path does.
import { capabilities } from '../../capabilities.js';
import { SpawnError } from '../../errors.js';
import { native } from '../../native.js';
import { joinEnvironment } from '../../options.js';
import { closeIterator, iterate } from '../../runner/run.js';
import { type Invocation, invocation } from './direct.js';
import type { HaltTracker, Outcome } from './halt.js';
import type { JobLog } from './joblog.js';
import type { RunConfig } from './options.js';
import { isJobsFile } from './slots.js';
import { type CommandTemplate, jobValues } from './template.js';

/** Offsets in a row of the pump (native/pump.cc, RowSlot). */
const Row = {
  index: 0,
  code: 1,
  signal: 2,
  start: 3,
  runtime: 4,
  received: 5,
  flags: 6,
  errno: 7,
  size: 8,
} as const;
const Flag = { aborted: 1, spawnFailed: 2, writeFailed: 4 } as const;

/** Threads the pump may start (native kMaxPumpThreads): a larger -j takes the general path. */
const MAX_SLOTS = 256;

/** Whether the run can go to the pump: same output, same joblog, same exit status. */
export function pumpable(config: RunConfig, concurrency: number): boolean {
  if (
    config.queue !== null ||
    config.output !== 'group' ||
    config.keepOrder ||
    config.results !== null ||
    config.tagstring !== null ||
    config.verbose ||
    config.timeout !== null ||
    config.retries > 1 ||
    config.halt !== null ||
    config.delaySeconds > 0 ||
    config.bar ||
    // a joblog on stdout: each row right after its job's output, written by the same thread
    config.joblog?.path === '-' ||
    concurrency > MAX_SLOTS ||
    // -j FILE: the count may change as the jobs run; the pump's threads are fixed at start
    isJobsFile(config.jobs) ||
    config.command.some((word) => word.includes('{%}'))
  ) {
    return false;
  }
  const caps = capabilities();
  if (caps.mode !== 'pidfd' || !caps.waitidPidfd || !caps.pidfdSendSignal) return false;
  return !config.tree || caps.cgroup !== null;
}

export interface PumpRun {
  config: RunConfig;
  concurrency: number;
  inputs: AsyncIterable<string[]> | string[][];
  skip: (seq: number, args: readonly string[]) => boolean;
  template: CommandTemplate;
  shell: string;
  /** The jobs' environment but PARALLEL_SEQ and PARALLEL_JOBSLOT, which each job gets its own of. */
  env: Record<string, string | undefined>;
  joblog: JobLog | null;
  halt: HaltTracker;
  /** ms between SIGTERM and SIGKILL when the run is stopped. */
  graceMs: number;
}

/** What the run's end is: how many jobs started, and why it stopped early, if it did. */
export interface PumpEnd {
  started: number;
  stoppedBy: NodeJS.Signals | null;
  brokenPipe: boolean;
}

interface Pending {
  seq: number;
  command: string;
  file: string;
  args: string[];
}

/** Runs the jobs on the pump; null when the pump cannot start (the general path runs them). */
export function runPumped(run: PumpRun): Promise<PumpEnd> | null {
  const { config, template, shell } = run;
  const direct = shell === '/bin/sh';
  // Jobs made ahead of the pump (never all the input): JS is woken to make more once
  // fewer than `refillBelow` wait, about 24 jobs at a time.
  const window = run.concurrency * 2 + 32;
  const refillBelow = run.concurrency + 8;
  const pending = new Map<number, Pending>();
  let pushed = 0;
  let finished = 0;
  let exhausted = false;
  let pulling = false;
  let stopStarting = false;
  let stoppedBy: NodeJS.Signals | null = null;
  let brokenPipe = false;
  let fatal: { error: unknown } | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  let settle!: () => void;
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });

  const onRows = (
    rows: Float64Array,
    count: number,
    failures: [number, string, string][] | null,
    last: boolean,
  ) => {
    const failed = new Map<number, [string, string]>();
    for (const [index, syscall, path] of failures ?? []) failed.set(index, [syscall, path]);
    for (let i = 0; i < count; i++) finish(rows.subarray(i * Row.size, (i + 1) * Row.size), failed);
    if (last) {
      clearTimeout(killTimer);
      stop();
      settle();
    } else {
      pull();
    }
  };
  const env = joinEnvironment(run.env, ['PARALLEL_SEQ', 'PARALLEL_JOBSLOT']);
  // With --joblog each row is written as its job ends, as GNU parallel does.
  const eachRow = run.joblog !== null;
  const id = native.pumpStart(run.concurrency, config.tree, env, onRows, refillBelow, eachRow);
  if (id < 0) return null;

  function finish(row: Float64Array, failed: Map<number, [string, string]>): void {
    finished++;
    const index = row[Row.index];
    const job = pending.get(index)!;
    pending.delete(index);
    const flags = row[Row.flags];
    // Jobs killed because the run stopped are neither printed nor logged, as on the general path.
    if (flags & Flag.aborted) return;
    if (flags & Flag.writeFailed) {
      brokenPipe = true;
      abort();
    }
    let outcome: Outcome;
    if (flags & Flag.spawnFailed) {
      const [syscall, path] = failed.get(index) ?? ['spawn', job.file];
      const error = new SpawnError(row[Row.errno], syscall, path, [job.file, ...job.args]);
      process.stderr.write(`pidwatch run: ${error.message}\n`);
      outcome = { exitval: 127, signal: 0 };
    } else if (row[Row.signal] !== 0) {
      outcome = { exitval: 0, signal: row[Row.signal] };
    } else {
      outcome = { exitval: Math.max(row[Row.code], 0), signal: 0 };
    }
    run.halt.finish(outcome);
    run.joblog?.write({
      seq: job.seq,
      startTime: row[Row.start],
      runtime: row[Row.runtime],
      receive: row[Row.received],
      ...outcome,
      command: job.command,
    });
  }

  const source = iterate(run.inputs).iterator as Iterator<string[]> | AsyncIterator<string[]>;
  let seq = 0;
  /** Makes jobs and hands them to the pump while fewer than `window` wait or run. */
  async function fill(): Promise<void> {
    while (!stopStarting && pushed - finished < window) {
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        native.pumpClose(id, false, false);
        return;
      }
      if (stopStarting) return;
      const args = next.value;
      if (run.skip(++seq, args)) continue;
      const values = jobValues(args, seq, 0, run.config.colsep !== null);
      const command = template.expand(values);
      // A NUL can only be left in a value that starts with one (see input.ts): the line
      // ends there for the shell, as exec reads it in GNU parallel.
      const nul = command.indexOf('\0');
      const line = nul < 0 ? command : command.slice(0, nul);
      const how: Invocation = direct
        ? invocation(line, shell)
        : { file: shell, args: ['-c', line] };
      const argv0 = how.argv0 ?? how.file;
      pending.set(pushed, { seq, command, file: how.file, args: how.args });
      native.pumpPush(id, pushed++, seq, how.file, [argv0, ...how.args]);
    }
  }
  function pull(): void {
    if (pulling || exhausted || stopStarting) return;
    pulling = true;
    fill().then(
      () => {
        pulling = false;
        if (pushed - finished < window) pull();
      },
      (error) => {
        pulling = false;
        fatal ??= { error };
        abort();
      },
    );
  }

  /** Starts no more jobs; with `kill`, the running ones get SIGTERM, then SIGKILL. */
  function stopStartingJobs(kill: boolean): void {
    stopStarting = true;
    native.pumpClose(id, true, kill);
    if (!kill) return;
    native.pumpSignal(id, 15);
    killTimer ??= setTimeout(() => native.pumpSignal(id, 9), run.graceMs);
  }
  function abort(): void {
    stopStartingJobs(true);
  }

  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C does not wait for the grace period.
    if (stoppedBy !== null) native.pumpSignal(id, 9);
    stoppedBy ??= signal;
    abort();
  };
  // SIGHUP, as in GNU parallel: no job starts after it, the running ones finish.
  const onHangup = () => {
    if (!stopStarting)
      process.stderr.write('pidwatch run: SIGHUP received. No new jobs will be started.\n');
    stopStartingJobs(false);
  };
  function stop(): void {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHangup);
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHangup);
  pull();

  return done.then(() => {
    if (!exhausted) closeIterator(source);
    if (fatal !== null) throw fatal.error;
    return { started: pushed, stoppedBy, brokenPipe };
  });
}
