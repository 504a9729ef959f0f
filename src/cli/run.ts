import { availableParallelism, constants } from 'node:os';
import { type JobSource, type RunHandle, startRun } from '../runner/run.js';
import type { HaltPolicy, Job, JobResult, RunAbortError, RunOptions } from '../runner/types.js';
import { parseArgs, parseCount, parseSeconds, UsageError } from './args.js';
import { startQueueRun } from './queue.js';
import { ProgressBar } from './run/bar.js';
import { type InputCount, listArguments, readLines } from './run/input.js';
import { JobLog } from './run/joblog.js';
import { OutputWriter } from './run/output.js';
import { CommandTemplate } from './run/template.js';

const USAGE = `Usage: pidwatch run [options] [--] COMMAND [ARG...] [::: INPUT...]

Runs COMMAND once per line of stdin (or per INPUT after :::), N at a time. In the
arguments, {} is replaced by the input ({.} without extension, {/} basename, {//}
dirname, {/.} basename without extension, {#} job number); without any of them the
input is appended as the last argument. COMMAND is run directly, not through a shell:
use 'sh -c "..."' for pipes and redirections.

Options:
  -j, --jobs N             run N jobs at once (default: ${availableParallelism()}, the CPU count)
      --timeout SEC        kill a job (SIGTERM, then SIGKILL 2 s later) after SEC seconds
      --retries N          run a failed job up to N more times
      --halt WHEN,fail=N   stop starting jobs after N failures: 'soon' lets the running
                           jobs finish, 'now' kills them ('never' is the default)
      --joblog FILE        write a GNU parallel joblog to FILE
  -k, --keep-order         print outputs in input order rather than completion order
      --tag                prefix each output line with the input and a tab
      --bar                draw the progress bar even when stderr is not a terminal
      --queue URL          run the jobs on 'pidwatch worker --queue URL' workers (BullMQ):
                           redis://HOST[:PORT]/NAME or redis+unix:///SOCKET?queue=NAME
  -h, --help               show this help

Each job's output is buffered and written whole when the job ends, so outputs never
interleave. Exit status: the number of failed jobs (at most 101); 2 on bad usage;
130 after SIGINT and 143 after SIGTERM, which stop starting jobs, send the running
ones SIGTERM (SIGKILL 2 s later, or at a second SIGINT) and exit once all of them
are reaped.
`;

const OPTIONS = {
  jobs: { short: 'j', value: true },
  timeout: { value: true },
  retries: { value: true },
  halt: { value: true },
  joblog: { value: true },
  'keep-order': { short: 'k' },
  tag: {},
  bar: {},
  queue: { value: true },
  help: { short: 'h' },
} as const;

/** Grace between SIGTERM and SIGKILL for jobs stopped by a signal, a halt or a timeout. */
const GRACE_MS = 2000;
const MAX_STATUS = 101;

interface RunCommand {
  command: string[];
  inputs: string[] | null;
  concurrency: number;
  timeout: number | undefined;
  retries: number;
  halt: HaltPolicy;
  joblog: string | null;
  keepOrder: boolean;
  tag: boolean;
  bar: boolean;
  queue: string | null;
}

function parseHalt(text: string): HaltPolicy {
  if (text === 'never') return 'never';
  const match = /^(now|soon),fail=(\d+)$/.exec(text);
  if (match === null || Number(match[2]) < 1) {
    throw new UsageError(`--halt expects now,fail=N or soon,fail=N (N >= 1), got '${text}'`);
  }
  return { when: match[1] as 'now' | 'soon', fail: Number(match[2]) };
}

function parseCommand(argv: readonly string[]): RunCommand | 'help' {
  const { options, positionals } = parseArgs(argv, OPTIONS, { stopAtPositional: true });
  if (options.has('help')) return 'help';
  const text = (name: keyof typeof OPTIONS) => {
    const value = options.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const separator = positionals.indexOf(':::');
  const command = separator === -1 ? positionals : positionals.slice(0, separator);
  const inputs = separator === -1 ? null : positionals.slice(separator + 1);
  if (command.length === 0) throw new UsageError('no command given');
  if (inputs?.includes(':::')) throw new UsageError('only one ::: input source is supported');
  const jobs = text('jobs');
  const timeout = text('timeout');
  const retries = text('retries');
  const halt = text('halt');
  return {
    command,
    inputs,
    concurrency: jobs === undefined ? availableParallelism() : parseCount('jobs', jobs, 1),
    timeout: timeout === undefined ? undefined : parseSeconds('timeout', timeout),
    retries: retries === undefined ? 0 : parseCount('retries', retries, 0),
    halt: halt === undefined ? 'never' : parseHalt(halt),
    joblog: text('joblog') ?? null,
    keepOrder: options.has('keep-order'),
    tag: options.has('tag'),
    bar: options.has('bar') || process.stderr.isTTY === true,
    queue: text('queue') ?? null,
  };
}

/** The jobs for each input, made as the runner asks for them. */
async function* toJobs(
  inputs: AsyncIterable<string> | Iterable<string>,
  template: CommandTemplate,
  remember: ((index: number, input: string) => void) | null,
): AsyncGenerator<Job> {
  let index = 0;
  for await (const input of inputs) {
    remember?.(index, input);
    const [file, ...args] = template.expand(input, ++index);
    yield { file, args, options: { killOnParentExit: true } };
  }
}

/** `pidwatch run`: returns the exit status. */
export async function runRun(argv: string[]): Promise<number> {
  let config: RunCommand | 'help';
  let joblog: JobLog | null = null;
  try {
    config = parseCommand(argv);
    if (config !== 'help' && config.joblog !== null) {
      try {
        joblog = new JobLog(config.joblog);
      } catch (error) {
        throw new UsageError(`cannot write joblog ${config.joblog}: ${(error as Error).message}`);
      }
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch run: ${error.message}\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  const count: InputCount = { read: 0, total: null };
  const inputs =
    config.inputs === null ? readLines(process.stdin, count) : listArguments(config.inputs, count);
  const tags = config.tag ? new Map<number, string>() : null;
  const jobs: JobSource = toJobs(
    inputs,
    new CommandTemplate(config.command),
    tags && ((index, input) => tags.set(index, input)),
  );
  const bar = config.bar ? new ProgressBar(process.stderr, count) : null;
  const writer = new OutputWriter({
    keepOrder: config.keepOrder,
    tag:
      tags &&
      ((index) => {
        const input = tags.get(index) ?? '';
        tags.delete(index);
        return input;
      }),
    beforeWrite: () => bar?.clear(),
    stdout: process.stdout,
    stderr: process.stderr,
  });

  const runOptions: RunOptions<Buffer> = {
    concurrency: config.concurrency,
    timeout: config.timeout,
    retries: config.retries,
    halt: config.halt,
    output: 'buffer',
    encoding: 'buffer',
    killSignal: 'SIGTERM',
    forceKillAfter: GRACE_MS,
    onProgress: bar === null ? undefined : (progress) => bar.update(progress),
  };
  const hooks = {
    retainResults: false,
    onResult: (result: JobResult<Buffer>) => {
      joblog?.write(result);
      writer.add(result);
    },
  };
  let run: RunHandle<Buffer>;
  try {
    run =
      config.queue === null
        ? startRun<Buffer>(jobs, runOptions, hooks)
        : await startQueueRun(config.queue, jobs, runOptions, hooks);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch run: ${error.message}\n`);
    return 2;
  }

  let stoppedBy: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C does not wait for the grace period.
    if (stoppedBy !== null) run.kill('SIGKILL');
    stoppedBy ??= signal;
    run.abort(signal);
  };
  let brokenPipe = false;
  const onOutputError = (error: Error) => {
    brokenPipe = true;
    run.abort(error);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onOutputError);
  try {
    const summary = await run.done;
    return Math.min(summary.failed, MAX_STATUS);
  } catch (error) {
    if ((error as RunAbortError).name !== 'AbortError') throw error;
    if (stoppedBy !== null) return 128 + constants.signals[stoppedBy];
    if (brokenPipe) return 128 + constants.signals.SIGPIPE;
    return Math.min((error as RunAbortError).summary.failed, MAX_STATUS);
  } finally {
    bar?.stop();
    joblog?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
