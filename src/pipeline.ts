// Pipelines: each stage's stdout wired to the next stage's stdin by a kernel pipe
// made here, so no byte of the inner pipes passes through JavaScript.
import { closeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Capture } from './capture.js';
import { ExitError, invalidType, invalidValue } from './errors.js';
import { native } from './native.js';
import { hasFailed, splitExecOptions, toOutput } from './output.js';
import { commandText } from './shell.js';
import { spawn, spawnRaw } from './spawn.js';
import type { Subprocess } from './subprocess.js';
import type { ExecOptions, ExitStatus, Output, SpawnOptions, StdioEntry } from './types.js';

const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);

/** One stage: an argv array, or a file with its args and its own spawn options. */
export type PipelineCommand =
  | readonly string[]
  | { file: string; args?: readonly string[]; options?: SpawnOptions };

export interface PipelineOptions extends SpawnOptions {
  /**
   * How the statuses add up to the pipeline's (in `execPipeline`): `true` (default)
   * the rightmost stage that failed, as `set -o pipefail`, where a stage before the
   * last killed by SIGPIPE did not fail (it wrote to a stage that had ended, as
   * `yes` in `yes | head -1`); `false` the last stage, as a plain shell pipeline.
   */
  pipefail?: boolean;
}

interface Stage {
  file: string;
  args: readonly string[] | undefined;
  options: SpawnOptions | undefined;
}

function toStage(command: unknown, i: number): Stage {
  const name = `commands[${i}]`;
  if (Array.isArray(command)) {
    if (command.length === 0) throw invalidValue(name, 'must not be an empty argv', command);
    const [file, ...args] = command as unknown[];
    return { file: file as string, args: args as string[], options: undefined };
  }
  if (command === null || typeof command !== 'object')
    throw invalidType(name, 'an argv array or { file, args?, options? }', command);
  const { file, args, options } = command as Stage;
  return { file, args, options };
}

function stdioArray(stdio: unknown): StdioEntry[] {
  if (stdio === undefined || stdio === null) return ['pipe', 'pipe', 'pipe'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio] as StdioEntry[];
  if (Array.isArray(stdio)) return [...stdio];
  throw invalidValue('options.stdio', "must be 'pipe', 'inherit', 'ignore' or an array", stdio);
}

/** Checks the commands and options of pipeline() and execPipeline(). */
export function checkPipeline(commands: unknown, options: unknown) {
  if (!Array.isArray(commands)) throw invalidType('commands', 'an array of commands', commands);
  if (commands.length === 0) throw invalidValue('commands', 'must not be empty', commands);
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw invalidType('options', 'of type object', options);
  const { pipefail = true, ...spawnOptions } = options as PipelineOptions;
  if (typeof pipefail !== 'boolean')
    throw invalidType('options.pipefail', 'of type boolean', pipefail);
  return { stages: commands.map(toStage), pipefail, spawnOptions };
}

/** A failed stage: a non-zero code, a signal, a timeout or an abort. */
function failed(status: ExitStatus): boolean {
  return status.code !== 0 || status.timedOut || status.aborted;
}

/** The status that stands for the whole pipeline (see PipelineOptions.pipefail). */
export function pipelineStatus(statuses: readonly ExitStatus[], pipefail: boolean): ExitStatus {
  const last = statuses[statuses.length - 1];
  if (!pipefail) return last;
  for (let i = statuses.length - 1; i >= 0; i--) {
    const status = statuses[i];
    const brokenPipe = i < statuses.length - 1 && status.signal === 'SIGPIPE' && !status.timedOut;
    if (failed(status) && !brokenPipe) return status;
  }
  return last;
}

/** A running pipeline: `stdin` of the first stage and `stdout` of the last, when piped. */
export class Pipeline implements AsyncDisposable {
  readonly procs: readonly Subprocess[];
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** The status of every stage, in order, once all have exited. Never rejects. */
  readonly exited: Promise<ExitStatus[]>;

  /** @internal Use `pipeline()`. */
  constructor(procs: Subprocess[]) {
    this.procs = procs;
    this.stdin = procs[0].stdin;
    this.stdout = procs[procs.length - 1].stdout;
    this.exited = Promise.all(procs.map((proc) => proc.exited));
  }

  /** Sends `signal` to every stage still running; true if any was signalled. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    let sent = false;
    for (const proc of this.procs) sent = proc.kill(signal) || sent;
    return sent;
  }

  /** Disposes of every stage (killSignal, then SIGKILL after forceKillAfter) and waits. */
  async [asyncDispose](): Promise<void> {
    await Promise.all(this.procs.map((proc) => proc[asyncDispose]()));
  }
}

/**
 * Starts `commands` as a pipeline, like `a | b | c` in a shell: each stdout goes
 * to the next stdin through a kernel pipe created here and given to both stages
 * as fds; pidwatch's copies are closed as soon as the stages have them. Every
 * stage is a Subprocess of its own. `options` are spawn options for every stage
 * (a stage's own options add to them), with `stdio[0]` for the first stage's
 * stdin, `stdio[1]` for the last stage's stdout and the rest for every stage.
 * Throws as spawn does; a stage that cannot start kills the ones started before it.
 */
export function pipeline(
  commands: readonly PipelineCommand[],
  options?: PipelineOptions,
): Pipeline {
  const { stages, spawnOptions } = checkPipeline(commands, options);
  return startPipeline(stages, spawnOptions);
}

/**
 * The buffer asked for each pipe between two stages. The kernel's default (64 KiB)
 * is half of what coreutils' cat or sort write at once, so every write would wait
 * for the reader. 1 MiB (the largest an unprivileged process may ask for, by
 * default) lets a stage run several writes ahead: a 1 GiB `cat | cat | wc -c`
 * took some 4% less time than with 256 KiB (medians of 12 alternated runs). The
 * pages are taken only as data is written, but the kernel counts the whole size
 * against an unprivileged user's pipe-user-pages-soft (64 MiB by default): past
 * it, as with some 64 inner pipes open at once, that user's new pipes get 8 KiB
 * until some close, and the size asked for here is refused.
 */
const INNER_PIPE_BYTES = 1024 * 1024;

/**
 * Spawns the checked stages. With `raw`, the first stage's stdin and the last
 * stage's stdout, where piped, are not wrapped in streams but written to raw[0]
 * and raw[1], for a Capture.
 */
function startPipeline(stages: Stage[], options: SpawnOptions, raw?: Int32Array): Pipeline {
  const procs: Subprocess[] = [];
  const fds = new Int32Array(3);
  let upstream = -1; // the read end of the pipe from the previous stage
  let pipe: number[] = [];
  try {
    for (let i = 0; i < stages.length; i++) {
      const { file, args, options: own } = stages[i];
      const stageOptions = { ...options, ...own };
      const stdio = stdioArray(own?.stdio ?? options.stdio);
      if (i > 0) stdio[0] = upstream;
      if (i < stages.length - 1) {
        pipe = native.pipe(INNER_PIPE_BYTES);
        stdio[1] = pipe[1];
      }
      const request = { ...stageOptions, stdio };
      procs.push(raw ? spawnRaw(file, args, request, fds) : spawn(file, args, request));
      if (raw && i === 0) raw[0] = fds[0];
      if (raw && i === stages.length - 1) raw[1] = fds[1];
      // The stage has its copies now: pidwatch's go at once.
      if (upstream >= 0) closeSync(upstream);
      upstream = -1;
      if (pipe.length > 0) {
        closeSync(pipe[1]);
        upstream = pipe[0];
        pipe = [];
      }
    }
  } catch (error) {
    const ends = raw ? [raw[0], raw[1]] : [];
    if (raw) raw.fill(-1, 0, 2);
    for (const fd of [upstream, ...pipe, ...ends]) if (fd >= 0) closeSync(fd);
    for (const proc of procs) proc.kill('SIGKILL');
    throw error;
  }
  return new Pipeline(procs);
}

/** What `execPipeline()` resolves with: the Output of the pipeline and every status. */
export type PipelineOutput = Output & { statuses: ExitStatus[] };

export type ExecPipelineOptions = Omit<PipelineOptions, 'stdio'> &
  Omit<ExecOptions, keyof SpawnOptions>;

/**
 * execPipeline decides every stage's stdio (the ends are collected, stderr is shared),
 * so a `stdio` option, for the pipeline or for one stage, is refused as exec refuses
 * it: a stage's own pipe would be one nobody reads (a stage writing past the pipe's
 * buffer would hang, and the parent would keep its end), and `'inherit'` would be
 * silently captured.
 */
function refuseStdio(name: string, stdio: unknown): void {
  if (stdio === undefined) return;
  throw invalidValue(
    name,
    'is not an option of execPipeline: stdout and stderr are collected (use pipeline for other stdio)',
    stdio,
  );
}

/**
 * Runs a pipeline to its end, as `exec()` runs one command: `input` goes to the
 * first stage, the last stage's stdout is collected, and the stderr of every
 * stage goes to one pipe, collected in the order written (as a shell's terminal
 * shows it). The Output's status is the pipeline's (see `pipefail`), `statuses`
 * has every stage's. With `reject` (default) a failure rejects with ExitError,
 * which carries `statuses` too. Past `maxBuffer` every stage is stopped.
 */
export async function execPipeline(
  commands: readonly PipelineCommand[],
  options?: ExecPipelineOptions,
): Promise<PipelineOutput> {
  const { stages, pipefail, spawnOptions: rest } = checkPipeline(commands, options);
  refuseStdio('options.stdio', rest.stdio);
  for (let i = 0; i < stages.length; i++)
    refuseStdio(`commands[${i}].options.stdio`, stages[i].options?.stdio);
  const { spawnOptions, settings } = splitExecOptions(rest);
  // One stderr pipe for all stages, as a shell's stages share its stderr.
  const [errRead, errWrite] = native.pipe();
  const raw = Int32Array.of(-1, -1, errRead); // the ends a Capture reads and writes
  let p: Pipeline;
  try {
    const stdio: StdioEntry[] = [(spawnOptions.stdio as StdioEntry[])[0], 'pipe', errWrite];
    p = startPipeline(stages, { ...spawnOptions, stdio }, raw);
  } catch (error) {
    closeSync(errRead);
    throw error;
  } finally {
    closeSync(errWrite);
  }
  let stopped = false;
  const capture = new Capture(raw, {
    input: settings.input,
    maxBuffer: settings.maxBuffer,
    all: settings.all,
    onOverflow: () => {
      stopped = true;
      for (const proc of p.procs) proc.terminate('dispose');
    },
  });
  const statuses = await p.exited;
  capture.endInput();
  // Once a stage was stopped, a descendant still holding a pipe is not waited for.
  if (stopped || statuses.some((s) => s.timedOut || s.aborted)) capture.close();
  const collected = await capture.done;
  const status = pipelineStatus(statuses, pipefail);
  const output = { ...toOutput(status, collected, settings), statuses };
  if (settings.reject && hasFailed(output)) {
    const command = stages
      .map((stage) =>
        commandText(stage.file, stage.args ?? [], stage.options?.shell ?? spawnOptions.shell),
      )
      .join(' | ');
    throw Object.assign(new ExitError(command, status, output, output.isMaxBuffer), { statuses });
  }
  return output;
}
