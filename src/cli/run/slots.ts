// GNU parallel's -j (--jobs, -P, --max-procs): how many jobs run at once, given in one of its
// forms or as the name of a file that holds one. GNU parallel reads such a file again as the
// jobs run, so that the count can be changed without stopping the run.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { UsageError } from '../args.js';

/** -j 0: GNU parallel runs as many as file handles allow, 250-odd with the usual limits. */
const MANY_JOBS = 250;

/**
 * GNU parallel's forms, as written (no blanks): +N and -N whole numbers, N% with an optional
 * fraction, N a whole number. One final newline is allowed, as Perl's `$` allows it: a file
 * holding a count may end its line.
 */
const FORMS = /^(?:([+-])(\d+)|(\d+(?:\.\d+)?)%|(\d+))\n?$/;

/** Whether -j's value names a file rather than giving a count. */
export const isJobsFile = (text: string) => !FORMS.test(text);

/**
 * The count a -j form gives: N, N% of the CPU threads (rounded up, as GNU parallel rounds
 * it), +N / -N added to them, 0 for as many as possible; null when `text` is no form.
 */
function countOf(text: string, cpus: number): number | null {
  const match = FORMS.exec(text);
  if (match === null) return null;
  const [, sign, added, percent, whole] = match;
  if (percent !== undefined) return Math.ceil((cpus * Number(percent)) / 100);
  if (sign === '+') return cpus + Number(added);
  if (sign === '-') return cpus - Number(added);
  return Number(whole) === 0 ? MANY_JOBS : Number(whole);
}

/**
 * The text of `path` if it is a regular file; null when it is not, or not there. Opened
 * without blocking and tested on the open file: a FIFO is neither waited on nor read.
 */
function readRegularFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
  try {
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : null;
  } finally {
    closeSync(fd);
  }
}

/**
 * -j as given: a count in one of GNU parallel's forms, or else the name of a regular file
 * that holds one (a file naming another file is refused). Below one job is an error, as in
 * GNU parallel ("Cannot run any jobs").
 */
export function jobSlots(text: string, cpus: number): number {
  let slots = countOf(text, cpus);
  if (slots === null) {
    let content: string | null;
    try {
      content = readRegularFile(text);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(`-j: cannot open '${text}': ${code}`);
    }
    if (content === null) {
      throw new UsageError(`-j expects N, N%, +N, -N, 0 or a file holding one, got '${text}'`);
    }
    slots = countOf(content, cpus);
    if (slots === null) {
      throw new UsageError(`-j: '${text}' holds no line of N, N%, +N, -N or 0`);
    }
  }
  if (slots < 1) throw new UsageError('cannot run any jobs: -j leaves fewer than 1 job slot');
  return slots;
}

/** How often a -j FILE is read again: GNU parallel reads it at most once a second. */
const REREAD_MS = 1000;

/**
 * Reads a -j FILE every second while the jobs run and hands on the count it gives when the
 * count changes: more slots start jobs at once; fewer stop new starts until fewer jobs run,
 * and kill none. The file is read whole each time, not first tested for a later mtime,
 * which would miss a change made within the second of the last read. A file that gives no
 * count of at least one (empty while it is being rewritten, say) or that is gone keeps the
 * last count. Returns the function that stops the reading.
 */
export function watchJobsFile(
  path: string,
  cpus: number,
  slots: number,
  update: (slots: number) => void,
): () => void {
  let last = slots;
  const timer = setInterval(() => {
    let now: number | null;
    try {
      const content = readRegularFile(path);
      now = content === null ? null : countOf(content, cpus);
    } catch {
      now = null; // unreadable for now: as if it gave nothing
    }
    if (now === null || now < 1 || now === last) return;
    last = now;
    update(now);
  }, REREAD_MS);
  // The jobs keep the process alive while it runs; this timer never does.
  timer.unref();
  return () => clearInterval(timer);
}
