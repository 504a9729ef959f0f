// `pidwatch wait`: waits for other processes to exit, like util-linux waitpid(1),
// with one pidfd per PID on the event loop (no polling where pidfds exist).
import { ProcessGoneError } from '../errors.js';
import type { ExitStatus } from '../types.js';
import { type WatchedProcess, watch } from '../watch.js';
import { parseArgs, parseCount, parseSeconds, UsageError } from './args.js';

const USAGE = `Usage: pidwatch wait [--timeout SEC] [--exited] [--count N] [--json] PID...

Waits for the given processes (children of any process) to exit. Prints one line per
exit with its exit code or signal where the kernel tells it (Linux >= 6.15 for
processes that are not pidwatch's children).

Options:
  -t, --timeout SEC  give up after SEC seconds (exit status 3)
  -e, --exited       accept PIDs that have already exited (they count as exited)
  -c, --count N      return after N of the processes have exited
  -j, --json         print one JSON object per exit
  -h, --help         show this help

Exit status: 0 when done, 1 on error (no such PID without --exited), 2 on bad usage,
3 on timeout.
`;

const SPEC = {
  timeout: { short: 't', value: true },
  exited: { short: 'e' },
  count: { short: 'c', value: true },
  json: { short: 'j' },
  help: { short: 'h' },
} as const;

function describe(pid: number, status: ExitStatus | null): string {
  if (!status) return `${pid}: already gone`;
  if (status.signal)
    return `${pid}: killed by ${status.signal}${status.coreDumped ? ' (core dumped)' : ''}`;
  if (status.code !== null) return `${pid}: exited with code ${status.code}`;
  return `${pid}: exited (status unknown)`;
}

function report(pid: number, status: ExitStatus | null, json: boolean): void {
  const line = json
    ? JSON.stringify({
        pid,
        code: status?.code ?? null,
        signal: status?.signal ?? null,
        coreDumped: status?.coreDumped ?? false,
        alreadyExited: status === null,
      })
    : describe(pid, status);
  process.stdout.write(`${line}\n`);
}

function parsePid(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0 || Number(text) > 0x3fffffff)
    throw new UsageError(`not a PID: '${text}'`);
  return Number(text);
}

export async function runWait(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv, SPEC);
    if (parsed.options.has('help')) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (parsed.positionals.length === 0) throw new UsageError('no PID given');
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch wait: ${error.message}\n`);
    return 2;
  }
  const { options, positionals } = parsed;
  let pids: number[];
  let timeoutMs: number | undefined;
  let count: number;
  try {
    pids = [...new Set(positionals.map(parsePid))];
    const timeout = options.get('timeout');
    if (typeof timeout === 'string') timeoutMs = parseSeconds('timeout', timeout);
    const countText = options.get('count');
    count = typeof countText === 'string' ? parseCount('count', countText, 1) : pids.length;
    if (count > pids.length)
      throw new UsageError(`--count ${count} is more than the ${pids.length} PIDs given`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pidwatch wait: ${error.message}\n`);
    return 2;
  }
  const json = options.has('json');
  const acceptExited = options.has('exited');

  const watches: WatchedProcess[] = [];
  let remaining = count;
  for (const pid of pids) {
    try {
      watches.push(watch(pid));
    } catch (error) {
      if (!(error instanceof ProcessGoneError)) throw error;
      if (!acceptExited) {
        for (const w of watches) w.close();
        process.stderr.write(`pidwatch wait: no process with PID ${pid}\n`);
        return 1;
      }
      report(pid, null, json);
      remaining--;
    }
  }
  if (remaining <= 0) {
    for (const w of watches) w.close();
    return 0;
  }
  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (status: number) => {
      clearTimeout(timer);
      for (const w of watches) w.close();
      resolve(status);
    };
    if (timeoutMs !== undefined) timer = setTimeout(() => finish(3), timeoutMs);
    for (const w of watches) {
      w.exited.then(
        (status) => {
          if (remaining <= 0) return;
          report(w.pid, status, json);
          if (--remaining === 0) finish(0);
        },
        () => {},
      );
    }
  });
}
