// `pidwatch wait`: util-linux waitpid(1) (its options, output and exit statuses), with one
// pidfd per PID on the event loop (no polling where pidfds exist). `--json` is our own.
import { ProcessGoneError } from '../errors.js';
import { deadline } from '../timers.js';
import type { ExitStatus } from '../types.js';
import { type WatchedProcess, watch } from '../watch.js';
import { parseArgs, UsageError, version } from './args.js';

const USAGE = `Usage:
 pidwatch wait [options] PID...

Waits for processes (not only its own children) to exit, like waitpid(1).

Options:
 -v, --verbose           be more verbose: one line per exit, with its code or signal
                         where the kernel tells it (Linux >= 6.15 for other processes)
 -t, --timeout=<timeout> wait at most timeout seconds
 -e, --exited            allow exited PIDs
 -c, --count=<count>     number of process exits to wait for
     --json              print one JSON object per exit
 -h, --help              display this help
 -V, --version           display the version

Exit status: 0 when done, 1 on error (bad usage, a PID that does not exist without
--exited), 3 when the timeout expired.
`;

const SPEC = {
  verbose: { short: 'v' },
  timeout: { short: 't', value: true },
  exited: { short: 'e' },
  count: { short: 'c', value: true },
  json: {},
  help: { short: 'h' },
  version: { short: 'V' },
} as const;

/** waitpid(1) exits 1 for bad usage and for errors alike; 3 when the timeout expires. */
const FAILURE = 1;
const TIMEOUT_EXPIRED = 3;

interface WaitConfig {
  pids: number[];
  /** ms; null: no timeout (also for 0, as in waitpid). */
  timeoutMs: number | null;
  count: number | null;
  acceptExited: boolean;
  verbose: boolean;
  json: boolean;
}

function how(status: ExitStatus | null): string {
  if (status === null) return '';
  if (status.signal !== null) {
    return ` (killed by ${status.signal}${status.coreDumped ? ', core dumped' : ''})`;
  }
  return status.code === null ? '' : ` (exit code ${status.code})`;
}

function parsePid(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0 || Number(text) > 0x3fffffff) {
    throw new UsageError(`invalid PID argument: '${text}'`);
  }
  return Number(text);
}

/** Seconds as strtod reads them (waitpid's parser): 1.5, .5, 1e3; no upper bound. */
function parseTimeout(text: string): number | null {
  if (!/^\s*(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(text) || !Number.isFinite(Number(text))) {
    throw new UsageError(`invalid timeout: '${text}'`);
  }
  const ms = Math.ceil(Number(text) * 1000);
  return ms === 0 ? null : ms;
}

function parseConfig(argv: readonly string[]): WaitConfig | 'help' | 'version' {
  const { options, positionals } = parseArgs(argv, SPEC);
  if (options.has('help')) return 'help';
  if (options.has('version')) return 'version';
  const value = (name: keyof typeof SPEC) => {
    const v = options.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  if (options.has('count') && options.has('exited')) {
    throw new UsageError('mutually exclusive arguments: --exited --count');
  }
  const countText = value('count');
  let count: number | null = null;
  if (countText !== undefined) {
    if (!/^\d+$/.test(countText) || Number(countText) < 1) {
      throw new UsageError(`invalid count: '${countText}'`);
    }
    count = Number(countText);
  }
  if (positionals.length === 0) throw new UsageError('no PIDs specified');
  if (count !== null && count > positionals.length) {
    throw new UsageError(`can't wait for ${count} of ${positionals.length} PIDs`);
  }
  const timeout = value('timeout');
  return {
    pids: positionals.map(parsePid),
    timeoutMs: timeout === undefined ? null : parseTimeout(timeout),
    count,
    acceptExited: options.has('exited'),
    verbose: options.has('verbose'),
    json: options.has('json'),
  };
}

export async function runWait(argv: string[]): Promise<number> {
  let config: WaitConfig | 'help' | 'version';
  try {
    config = parseConfig(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch wait: ${error.message}\n`);
    return FAILURE;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (config === 'version') {
    process.stdout.write(`pidwatch wait ${version()}\n`);
    return 0;
  }
  const { verbose, json } = config;
  const report = (pid: number, status: ExitStatus | null) => {
    if (json) {
      const object = {
        pid,
        code: status?.code ?? null,
        signal: status?.signal ?? null,
        coreDumped: status?.coreDumped ?? false,
        alreadyExited: status === null,
      };
      process.stdout.write(`${JSON.stringify(object)}\n`);
    } else if (verbose && status !== null) {
      process.stdout.write(`PID ${pid} finished${how(status)}\n`);
    }
  };

  const watches: WatchedProcess[] = [];
  const closeAll = () => {
    for (const w of watches) w.close();
  };
  for (const pid of config.pids) {
    try {
      watches.push(watch(pid));
    } catch (error) {
      if (!(error instanceof ProcessGoneError)) throw error;
      if (!config.acceptExited) {
        closeAll();
        process.stderr.write(`pidwatch wait: could not open PID ${pid}: No such process\n`);
        return FAILURE;
      }
      if (verbose) process.stderr.write(`pidwatch wait: PID ${pid} has exited, skipping\n`);
      if (json) report(pid, null);
    }
  }
  // As waitpid: exited PIDs skipped with --exited do not count towards --count.
  let remaining = Math.min(watches.length, config.count ?? watches.length);
  if (remaining === 0) {
    closeAll();
    return 0;
  }
  return new Promise<number>((resolve) => {
    let cancelTimeout: (() => void) | undefined;
    const finish = (status: number) => {
      cancelTimeout?.();
      closeAll();
      resolve(status);
    };
    if (config.timeoutMs !== null) {
      cancelTimeout = deadline(
        config.timeoutMs,
        () => {
          if (verbose) process.stdout.write('Timeout expired\n');
          finish(TIMEOUT_EXPIRED);
        },
        true,
      );
    }
    for (const w of watches) {
      w.exited.then(
        (status) => {
          if (remaining <= 0) return;
          report(w.pid, status);
          if (--remaining === 0) finish(0);
        },
        () => {},
      );
    }
  });
}
