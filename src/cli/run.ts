// `pidwatch run`: GNU parallel's command line (see its man page), on pidwatch's runner.
import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { envWith } from '../options.js';
import { startAttempt } from '../runner/attempt.js';
import { type JobSource, type RunHandle, startRun } from '../runner/run.js';
import type { Job, JobResult, RunAbortError, RunOptions } from '../runner/types.js';
import { skipTreeCpu } from '../tree.js';
import { UsageError } from './args.js';

import { startQueueRun } from './queue.js';
import { invocation, shellPwd } from './run/direct.js';
import { HaltTracker, type Outcome } from './run/halt.js';
import { type InputCount, jobArguments } from './run/input.js';
import type { JobLog, JoblogRow } from './run/joblog.js';
import { parseRunArgs, type RunConfig } from './run/options.js';
import { GroupedOutput, LineOrder, tagLines } from './run/output.js';
import { pumpable, runPumped } from './run/pump.js';
import type { ResultFiles, ResultsDirError } from './run/results.js';
import type { ResultsTable } from './run/results-table.js';
import { isJobsFile, jobSlots, watchJobsFile } from './run/slots.js';
import { CommandTemplate, expandTag, type JobValues, jobValues } from './run/template.js';

const USAGE = `Usage: pidwatch run [options] [COMMAND [ARG...]] [::: ARGS...] [:::: FILES...]

GNU parallel's command line: COMMAND and its ARGs form one shell command line, run once per
input with {} and the other replacement strings replaced by the input, shell-quoted (without
any, the input is appended). Inputs: the ARGS after each ::: (every combination of them;
:::+ links a list to the one before), the lines of each FILE after :::: or -a, else stdin.
A line with no shell syntax runs without the shell. Jobs run as process trees.

Replacement strings: {} input, {.} without extension, {/} basename, {//} dirname,
{/.} basename without extension, {#} job number, {%} job slot, {n} {n.} {n/} {n//} {n/.}
the n-th input (or --colsep column).

Options:
  -j, --jobs N|N%|+N|-N|0  jobs at once (default 100%: one per CPU thread; 0: as many as possible)
  -j, --jobs FILE          the count FILE holds in one of those forms, read every second
  -k, --keep-order         print outputs in input order
      --halt WHEN,WHAT=N   WHEN now|soon, WHAT fail|success|done, N a count or a percentage
      --retries N          try a failing job up to N times in all (0: until it succeeds)
      --timeout SEC|N%     kill a job after SEC seconds (or N% of the median runtime; 0: never)
      --delay SEC          wait SEC between starting jobs
      --joblog [+]FILE     log each job (+: append)
      --resume             skip the jobs the joblog (or --results) has;
                           --resume-failed also reruns the joblog's failed ones
      --results DIR        each job's seq, stdout and stderr under DIR/1/<input>/...;
                           a path with {}: each job's stdout file (.err, .seq beside it);
                           NAME.csv, .tsv, .json: one table, a row per job (-.csv: stdout)
      --tag                prefix output lines with the input; --tagstring STR with STR
      --line-buffer        print whole lines as they come; -u, --ungroup: as they come
      --dry-run            print the commands, run nothing; -v: print each before its output
  -I STR                   STR stands for {} in the command ({} is then text)
      --link               link all input sources (shorter ones wrap around)
  -r, --no-run-if-empty    skip blank inputs
  -0, --null               inputs end with NUL; -d, --delimiter D: with D
  -a, --arg-file FILE      an input source, like :::: FILE
  -C, --colsep REGEXP      split each input into columns {1} {2} ...
      --bar                show a progress bar on stderr
      --no-tree            run each job as a single process, not as a process tree
      --tree-cpu           with --results, also write each job's tree CPU time to 'cpu'
      --queue URL          run the jobs on 'pidwatch worker --queue URL' processes (BullMQ):
                           redis://HOST[:PORT]/NAME or redis+unix:///SOCKET?queue=NAME
  -h, --help               show this help

Exit status: 0 all jobs succeeded; 1-100 that many failed; 101 more; with --halt, GNU
parallel's; 255 on bad usage, or after SIGINT/SIGTERM (which kill the running jobs).
`;

/** GNU parallel's status for bad usage, and after SIGINT or SIGTERM. */
const USAGE_STATUS = 255;
/**
 * Grace between SIGTERM and SIGKILL for jobs stopped by a signal, a halt or a timeout: GNU
 * parallel's default --termseq (TERM,200,TERM,100,TERM,50,KILL) sends its KILL then.
 */
const GRACE_MS = 350;
const EMPTY = Buffer.alloc(0);

/** What the CLI keeps about a started job until its result arrives. */
interface Started {
  /** The job's index in the run. */
  index: number;
  values: JobValues;
  command: string;
  /** Bytes --line-buffer read from the job's stdout and stderr (grouped output counts its stdout). */
  receive: number | null;
  /** With a --results directory, where the job's output goes (made before it runs). */
  files: ResultFiles | undefined;
}

function signalNumber(name: NodeJS.Signals | null): number {
  return name === null ? 0 : (constants.signals[name] ?? 0);
}

/** How a job ended in GNU parallel's terms: killed on timeout is exit value -1. */
function outcomeOf(result: JobResult<Buffer>): Outcome {
  const { status } = result;
  if (result.error !== undefined) return { exitval: 127, signal: 0 };
  // Timed out: GNU parallel marks the job -1 when it kills it, and its reap keeps that
  // unless the job exited with a code of its own (a shell trapping SIGTERM).
  if (status.timedOut) {
    if (status.signal === null && status.code) return { exitval: status.code, signal: 0 };
    return { exitval: -1, signal: signalNumber(status.signal) };
  }
  if (status.signal !== null) return { exitval: 0, signal: signalNumber(status.signal) };
  return { exitval: status.code ?? 0, signal: 0 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const fileAttempt = (job: Job, settings: Parameters<typeof startAttempt>[1]) =>
  startAttempt(job, settings, true);

/** `pidwatch run`: returns the exit status. */
export async function runRun(argv: string[]): Promise<number> {
  let config: RunConfig | 'help';
  let concurrency: number;
  let done = new Set<number>();
  let joblog: JobLog | null = null;
  let table: ResultsTable | null = null;
  try {
    config = parseRunArgs(argv);
    if (config === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    concurrency = jobSlots(config.jobs, availableParallelism());
    checkInputFiles(config);
    // Only --tree-cpu reads a tree's CPU time.
    if (!config.treeCpu) skipTreeCpu();
    if (config.joblog !== null) {
      let append = config.joblog.append;
      // Modules that only some options need are loaded only then: a lean start-up.
      const { JobLog, readDoneSeqs } = await import('./run/joblog.js');
      if (config.resume !== 'no') {
        const read = readDoneSeqs(config.joblog.path, config.resume === 'failed');
        done = read.done;
        append ||= read.hasHeader;
      }
      // --dry-run writes no joblog, but skips what one says is done, as GNU parallel.
      if (!config.dryRun) joblog = new JobLog(config.joblog.path, append);
    }
    // --results NAME.csv (.tsv, .json): one table, opened (emptied) before any job runs.
    if (config.results !== null) {
      const { ResultsTable, tableFormat } = await import('./run/results-table.js');
      const format = tableFormat(config.results);
      if (format !== null) table = new ResultsTable(config.results, format);
    }
  } catch (error) {
    joblog?.close(); // opened before a --results table that could not be
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch run: ${error.message}\n`);
    return USAGE_STATUS;
  }
  try {
    return await runJobsOf(config, concurrency, done, joblog, table);
  } catch (error) {
    // A --results directory that cannot be made ends the run (its jobs killed), as GNU
    // parallel dies there.
    // (Matched by name: results.js is loaded only for --results.)
    if ((error as Error).name !== 'ResultsDirError') throw error;
    process.stderr.write(`pidwatch run: ${(error as ResultsDirError).message}\n`);
    return (error as ResultsDirError).status;
  } finally {
    joblog?.close();
    table?.close();
  }
}

/** Where `-u`'s jobs write, and how to give back what was opened for it. */
interface JobOutputs {
  stdio: ['ignore', number | 'inherit' | 'ignore', number | 'inherit' | 'ignore'];
  close(): void;
}

/** -u with a --results table on stdout: GNU parallel points the jobs' output at /dev/null. */
const NO_OUTPUTS: JobOutputs = { stdio: ['ignore', 'ignore', 'ignore'], close: () => {} };

/**
 * The stdout and stderr of `-u`'s jobs, which write to this process's own: where one is a
 * pipe, that pipe opened anew (`/proc/self/fd/N`: a file description of its own). Node makes
 * the pipe under process.stdout non-blocking, and that flag belongs to the file description a
 * child inherits: a job writing faster than the reader read got EAGAIN and lost its output,
 * where GNU parallel's jobs block, as writers to a pipe expect. A terminal or a file is
 * inherited as it is. `close` gives back what was opened.
 */
function ownOutputs(): JobOutputs {
  const opened: number[] = [];
  const output = (fd: 1 | 2): number | 'inherit' => {
    try {
      if (!fstatSync(fd).isFIFO()) return 'inherit';
      const reopened = openSync(`/proc/self/fd/${fd}`, fsConstants.O_WRONLY);
      opened.push(reopened);
      return reopened;
    } catch {
      return 'inherit'; // no /proc: the pipe as it is
    }
  };
  return {
    stdio: ['ignore', output(1), output(2)],
    close: () => {
      for (const fd of opened) closeSync(fd);
    },
  };
}

/** As GNU parallel, a missing or unreadable input file is bad usage, found before any job runs. */
function checkInputFiles(config: RunConfig): void {
  for (const source of config.sources) {
    if (source.kind !== 'file' || source.path === '-') continue;
    try {
      accessSync(source.path, fsConstants.R_OK); // not opened here: a FIFO would block
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(`cannot open input file '${source.path}': ${code}`);
    }
  }
}

async function runJobsOf(
  config: RunConfig,
  concurrency: number,
  done: ReadonlySet<number>,
  joblog: JobLog | null,
  table: ResultsTable | null,
): Promise<number> {
  const count: InputCount = { read: 0, total: null };
  let inputs: AsyncIterable<string[]> | string[][] = jobArguments(
    config.sources,
    {
      delimiter: config.delimiter,
      colsep: config.colsep,
      stdin: process.stdin,
      link: config.link,
      skipEmpty: config.skipEmpty,
      warn: (lines) => {
        for (const line of lines) process.stderr.write(`pidwatch run: Warning: ${line}\n`);
      },
    },
    count,
  );
  // A percentage in --halt is of all jobs: GNU parallel reads every input first to know it.
  if (config.halt?.percent != null) {
    const all: string[][] = [];
    for await (const args of inputs) all.push(args);
    inputs = all;
  }
  const template = new CommandTemplate(config.command, config.replaceString);
  const shell = process.env.PARALLEL_SHELL ?? '/bin/sh';
  const direct = shell === '/bin/sh';
  const halt = new HaltTracker(config.halt, () => count.total ?? count.read);

  const tagOf = (values: JobValues) =>
    config.tagstring === null
      ? ''
      : `${expandTag(config.tagstring, values, config.replaceString)}\t`;

  const results =
    config.results === null || table !== null
      ? null
      : new (await import('./run/results.js')).Results(
          config.results,
          config.replaceString,
          config.treeCpu,
        );
  // Jobs a --resume skips: in the joblog, or (with --results) whose stdout file is there,
  // GNU parallel's test.
  const skip = (seq: number, args: readonly string[]) =>
    done.has(seq) || (config.resume === 'all' && results?.has({ args, seq, slot: 1 }) === true);
  if (table !== null && config.resume !== 'no' && config.joblog === null) {
    process.stderr.write(
      'pidwatch run: Warning: --resume --results .csv/.tsv/.json is not supported yet\n',
    );
  }
  /** A row of the --results table; the output as printed, the values as read. */
  const tableRow = (values: JobValues, row: JoblogRow, stdout: Buffer, stderr: Buffer) => {
    const tag = tagOf(values);
    table!.write({
      ...row,
      values: values.orig ?? values.args,
      stdout: tagLines(stdout, tag),
      stderr: tagLines(stderr, tag),
    });
  };

  if (config.dryRun) {
    let seq = 0;
    for await (const args of inputs) {
      if (skip(++seq, args)) continue;
      const values = jobValues(args, seq, 1, config.colsep !== null);
      const command = template.expand(values);
      if (results !== null) results.writeDryRun(values);
      else if (table !== null) {
        // GNU parallel's row for a job not run: the command line as its output.
        const stdout = Buffer.from(`${command}\n`);
        const row = { seq, startTime: Date.now(), runtime: 0, receive: stdout.length };
        tableRow(values, { ...row, exitval: 0, signal: 0, command }, stdout, EMPTY);
      }
      // Printed as a job's output is: not with --results, but by --line-buffer with a table
      // (GNU parallel's --dry-run groups -u's).
      const printed =
        config.results === null || (table !== null && config.output === 'line' && !table.onStdout);
      if (printed) process.stdout.write(`${tagOf(values)}${command}\n`);
    }
    return 0;
  }

  // process.env is read through a getter per key: copy it once, not once per job. Jobs
  // run here get it checked and joined once too; a queue's workers are sent it whole.
  // Jobs run here, with or without sh, see the PWD sh would give them.
  const pwd = config.queue === null ? { PWD: shellPwd(process.env.PWD) } : {};
  const baseEnv = { ...process.env, ...pwd, PARALLEL_PID: String(process.pid) };

  if (pumpable(config, concurrency)) {
    const pumped = runPumped({
      config,
      concurrency,
      inputs,
      skip,
      template,
      shell,
      env: baseEnv,
      joblog,
      halt,
      graceMs: GRACE_MS,
    });
    if (pumped !== null) {
      const end = await pumped;
      if (end.stoppedBy !== null) return USAGE_STATUS;
      if (end.brokenPipe) return 128 + constants.signals.SIGPIPE;
      return halt.exitStatus(end.started);
    }
  }

  // -u and --line-buffer pass each job's output on as it comes, unless it goes to a --results
  // directory: GNU parallel then writes it to the job's files and prints none of it, and
  // pidwatch holds it whole. With a --results table it is passed on all the same (the rows
  // keep --line-buffer's, and nothing of -u's, which GNU parallel never reads).
  const output: RunOptions['output'] =
    config.output === 'group' || (config.results !== null && table === null)
      ? 'buffer'
      : config.output === 'line'
        ? 'ignore'
        : 'inherit';
  /** The jobs' own output goes nowhere: the table is on stdout. */
  const quiet = table?.onStdout === true;

  const started = new Map<number, Started>();
  const freeSlots: number[] = [];
  let slotCount = 0;
  let stopStarting = false;
  const runtimes: number[] = [];
  let lastStart = 0;
  let startedJobs = 0;

  const bar = config.bar
    ? new (await import('./run/bar.js')).ProgressBar(process.stderr, count)
    : null;
  const { streamedAttempt } =
    output === 'ignore' ? await import('./run/streamed.js') : { streamedAttempt: null };
  const lineOrder = output === 'ignore' && config.keepOrder ? new LineOrder() : null;
  const beforeWrite = () => bar?.clear();
  const grouped = new GroupedOutput(
    { stdout: process.stdout, stderr: process.stderr, beforeWrite },
    config.keepOrder,
  );

  // -u: the jobs write to the outputs themselves.
  const ungrouped =
    output === 'inherit' && config.queue === null ? (quiet ? NO_OUTPUTS : ownOutputs()) : null;
  const jobEnv =
    config.queue === null
      ? envWith(baseEnv, ['PARALLEL_SEQ', 'PARALLEL_JOBSLOT'])
      : (seq: string, slot: string) => ({ ...baseEnv, PARALLEL_SEQ: seq, PARALLEL_JOBSLOT: slot });
  async function* jobs(): AsyncGenerator<Job> {
    let seq = 0;
    for await (const args of inputs) {
      if (stopStarting) return;
      if (skip(++seq, args)) continue;
      if (config.delaySeconds > 0 && startedJobs > 0) {
        const wait = lastStart + config.delaySeconds * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (stopStarting) return;
      }
      lastStart = Date.now();
      const slot = freeSlots.length > 0 ? freeSlots.shift()! : ++slotCount;
      const values = jobValues(args, seq, slot, config.colsep !== null);
      const command = template.expand(values);
      // -v with -u: the command line as the job starts (--line-buffer's comes as the job's output).
      if (config.verbose && output === 'inherit' && !quiet) {
        beforeWrite();
        process.stdout.write(`${command}\n`);
      }
      // A --results directory that cannot be made stops the run before this job starts.
      const files = results?.prepare(values);
      const info: Started = { index: startedJobs, values, command, receive: null, files };
      started.set(startedJobs++, info);
      // A NUL can only be left in a value that starts with one (see input.ts): the line
      // ends there for the shell, as exec reads it in GNU parallel.
      const nul = command.indexOf('\0');
      const line = nul < 0 ? command : command.slice(0, nul);
      const run = direct
        ? invocation(line, shell)
        : { file: shell, args: ['-c', line], argv0: undefined };
      let timeout: number | undefined;
      if (config.timeout !== null) {
        if ('seconds' in config.timeout) timeout = config.timeout.seconds * 1000;
        else if (runtimes.length > 0) timeout = (median(runtimes) * config.timeout.percent) / 100;
      }
      const job: Job = {
        file: run.file,
        args: run.args,
        options: {
          argv0: run.argv0,
          env: jobEnv(String(seq), String(slot)),
          timeout: timeout === undefined ? undefined : Math.max(1, Math.round(timeout)),
          killOnParentExit: true,
          stdio: ungrouped?.stdio,
        },
      };
      byJob.set(job, info);
      yield job;
    }
  }

  const byJob = new WeakMap<Job, Started>();
  const streamed = streamedAttempt?.({
    stdout: quiet ? null : process.stdout,
    stderr: quiet ? null : process.stderr,
    tag: (job) => tagOf(byJob.get(job)!.values),
    // -v: as GNU parallel writes it to the job's stdout, the line is tagged and counted.
    head: (job) => (config.verbose ? `${byJob.get(job)!.command}\n` : ''),
    beforeWrite,
    received: (job, bytes) => {
      byJob.get(job)!.receive = bytes;
    },
    keep: table !== null,
    gate:
      lineOrder === null
        ? undefined
        : (job, write) => lineOrder.write(byJob.get(job)!.index, write),
  });

  /** The signal that stopped the run (SIGINT, SIGTERM), once one has. */
  let stoppedBy: NodeJS.Signals | null = null;
  const onResult = (result: JobResult<Buffer>) => {
    const job = started.get(result.index)!;
    started.delete(result.index);
    freeSlots.push(job.values.slot);
    freeSlots.sort((a, b) => a - b);
    // Jobs killed by --halt now, SIGINT or SIGTERM are neither printed nor logged, as in
    // GNU parallel; what they wrote still goes to --results, as there (its files fill as
    // the job runs).
    if (result.status.aborted) {
      if (job.files) results?.write(job.files, result);
      grouped.add(null, result.index, () => lineOrder?.finish(result.index));
      return;
    }
    const outcome = outcomeOf(result);
    if (result.error !== undefined) {
      const stderr = Buffer.concat([
        result.stderr,
        Buffer.from(`pidwatch run: ${result.error.message}\n`),
      ]);
      result = { ...result, stderr };
    }
    if (result.status.timedOut) {
      process.stderr.write(
        `pidwatch run: Warning: This job was killed because it timed out:\npidwatch run: Warning: ${job.command}\n`,
      );
    } else if (outcome.exitval === 0 && outcome.signal === 0) {
      runtimes.push(result.status.durationMs);
    }
    // -v: the command line comes first, as part of the job's output (its --results stdout
    // file and its joblog Receive count too, as in GNU parallel).
    const stdout =
      config.verbose && output === 'buffer'
        ? Buffer.concat([Buffer.from(`${job.command}\n`), result.stdout])
        : result.stdout;
    const row = {
      seq: job.values.seq,
      startTime: result.startTime,
      runtime: result.status.durationMs,
      // GNU parallel counts nothing of -u's output, not even what goes to --results files.
      receive: config.output === 'ungroup' ? 0 : (job.receive ?? stdout.length),
      ...outcome,
      command: job.command,
    };
    // Once the job is printed (-k: after the jobs before it), its rows; then -k --line-buffer
    // lets the next job's held lines out: GNU parallel prints and logs job by job.
    const logged = () => {
      joblog?.write(row);
      if (table !== null) tableRow(job.values, row, stdout, result.stderr);
      lineOrder?.finish(result.index);
    };
    if (job.files) results?.write(job.files, { ...result, stdout });
    // What -u and --line-buffer passed on as it came, and what --results holds, is not
    // printed here; --line-buffer with a --results directory prints the name of the job's
    // stdout file instead, as GNU parallel does.
    const printed =
      output === 'buffer' && config.results === null
        ? { index: result.index, stdout, stderr: result.stderr, tag: tagOf(job.values) }
        : config.output === 'line' && job.files !== undefined
          ? {
              index: result.index,
              stdout: Buffer.from(`${job.files.stdout}\n`),
              stderr: EMPTY,
              tag: tagOf(job.values),
            }
          : null;
    grouped.add(printed, result.index, logged);
    const verdict = halt.finish(outcome);
    if (config.halt !== null && halt.counts(outcome)) {
      const what = { fail: 'failed', success: 'succeeded', done: 'finished' }[config.halt.on];
      process.stderr.write(`pidwatch run: This job ${what}:\n${job.command}\n`);
    }
    if (verdict !== null) {
      // As GNU parallel, each job that halts the run `soon` says how many still run.
      if (verdict === 'soon' && started.size > 0) {
        process.stderr.write(
          `pidwatch run: Starting no more jobs. Waiting for ${started.size} jobs to finish.\n`,
        );
      }
      stopStarting = true;
      if (verdict === 'now') {
        // With -k, what waits behind a job killed now is never printed (GNU parallel).
        grouped.dropHeld();
        run.abort(new Error('halt'));
      }
    }
  };

  const runOptions: RunOptions<Buffer> = {
    concurrency,
    retries: Math.max(config.retries - 1, 0),
    output,
    encoding: 'buffer',
    killSignal: 'SIGTERM',
    forceKillAfter: GRACE_MS,
    tree: config.tree,
    onProgress: bar === null ? undefined : (progress) => bar.update(progress),
  };
  let run: RunHandle<Buffer>;
  try {
    run =
      config.queue === null
        ? startRun<Buffer>(jobs() as JobSource, runOptions, {
            retainResults: false,
            onResult,
            // Each job's output in memory files, as GNU parallel's files: a process it
            // leaves behind (with --no-tree) is not waited for.
            startAttempt: output === 'ignore' ? streamed : fileAttempt,
          })
        : await startQueueRun(config.queue, jobs() as JobSource, runOptions, {
            retainResults: false,
            onResult,
          });
  } catch (error) {
    ungrouped?.close();
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch run: ${error.message}\n`);
    return USAGE_STATUS;
  }

  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C does not wait for the grace period.
    if (stoppedBy !== null) run.kill('SIGKILL');
    stoppedBy ??= signal;
    grouped.dropHeld();
    run.abort(signal);
  };
  let brokenPipe = false;
  const onOutputError = (error: Error) => {
    brokenPipe = true;
    run.abort(error);
  };
  // SIGHUP, as in GNU parallel: no job starts after it, the running ones finish.
  const onHangup = () => {
    if (!stopStarting)
      process.stderr.write('pidwatch run: SIGHUP received. No new jobs will be started.\n');
    stopStarting = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHangup);
  process.stdout.on('error', onOutputError);
  // -j FILE: the count it gives as the jobs run (a queue's workers keep their own).
  const stopWatching =
    isJobsFile(config.jobs) && run.setConcurrency !== undefined
      ? watchJobsFile(config.jobs, availableParallelism(), concurrency, run.setConcurrency)
      : null;
  try {
    await run.done;
  } catch (error) {
    if ((error as RunAbortError).name !== 'AbortError') throw error;
    // GNU parallel exits 255 after SIGINT or SIGTERM, the killed jobs unprinted.
    if (stoppedBy !== null) return USAGE_STATUS;
    if (brokenPipe) return 128 + constants.signals.SIGPIPE;
  } finally {
    stopWatching?.();
    bar?.stop();
    ungrouped?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHangup);
  }
  return halt.exitStatus(startedJobs);
}
