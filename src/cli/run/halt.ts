// --halt, with GNU parallel's arithmetic: when to stop, and the exit status it leaves.
import { UsageError } from '../args.js';

export interface HaltRule {
  /** `soon` stops starting jobs; `now` also kills the running ones. */
  when: 'soon' | 'now';
  /** What is counted: failed jobs, successful jobs, or every finished job. */
  on: 'fail' | 'success' | 'done';
  /** A number of jobs, or a percentage of all jobs (null when a count). */
  count: number | null;
  percent: number | null;
}

/** GNU parallel's short forms. */
const SHORT: Record<string, string> = {
  '0': 'never',
  '1': 'soon,fail=1',
  '2': 'now,fail=1',
  '-1': 'soon,success=1',
  '-2': 'now,success=1',
};

/** Parses --halt; null for `never`. */
export function parseHalt(text: string): HaltRule | null {
  const long = (Object.hasOwn(SHORT, text) ? SHORT[text] : text).replace(
    /^(\d+)%$/,
    'soon,fail=$1%',
  );
  if (long === 'never') return null;
  const [when, on, amount] = long.split(/[,=]/);
  if (when !== 'soon' && when !== 'now') {
    throw new UsageError(`--halt must have 'never', 'soon', or 'now', got '${text}'`);
  }
  if (on !== 'fail' && on !== 'success' && on !== 'done') {
    throw new UsageError(`--halt ${when} must be followed by ,fail ,success or ,done`);
  }
  const match = /^(\d+)(%?)$/.exec(amount ?? '');
  if (match === null) {
    throw new UsageError(`--halt ${when},${on} must be followed by =number or =percent%`);
  }
  const n = Number(match[1]);
  return match[2] === '%'
    ? { when, on, count: null, percent: n / 100 }
    : { when, on, count: n, percent: null };
}

/** How one job ended, as GNU parallel counts it: exit value (-1 timed out) and signal. */
export interface Outcome {
  exitval: number;
  signal: number;
}

const failed = (o: Outcome) => o.exitval !== 0 || o.signal !== 0;

/**
 * Counts finished jobs and answers, after each, whether the run halts. `totalJobs` is asked
 * only for a percentage (GNU parallel reads all input to know it).
 */
export class HaltTracker {
  private completed = 0;
  private failures = 0;
  private limit: number | null;
  private status: number | null = null;

  constructor(
    private readonly rule: HaltRule | null,
    private readonly totalJobs: () => number,
  ) {
    this.limit = rule?.count ?? null;
  }

  get failedJobs(): number {
    return this.failures;
  }

  /**
   * The job is of the kind the rule counts (failed, succeeded, or any): GNU parallel names
   * each such job on stderr as it finishes, whether or not the run halts at it.
   */
  counts(outcome: Outcome): boolean {
    if (this.rule === null) return false;
    return this.rule.on === 'done' || (this.rule.on === 'fail') === failed(outcome);
  }

  /** Records a finished job; returns `soon`/`now` when the run halts at it, else null. */
  finish(outcome: Outcome): 'soon' | 'now' | null {
    this.completed++;
    const bad = failed(outcome);
    if (bad) this.failures++;
    const rule = this.rule;
    if (rule === null) return null;
    let reached: number | null = null;
    if (bad && rule.on === 'fail') reached = this.failures;
    else if (!bad && rule.on === 'success') reached = this.completed - this.failures;
    if (rule.on === 'done') reached = this.completed;
    if (reached === null) return null;
    if (this.limit === null) this.limit = this.totalJobs() * rule.percent!;
    if (reached < this.limit) return null;
    if (rule.on === 'success' || this.noAmount) {
      this.status = 0;
    } else if (this.status === null) {
      // GNU parallel's min() skips an undefined count: done=N (N > 1) reached with no job
      // failed yet exits 101.
      this.status =
        rule.percent !== null
          ? Math.ceil((this.failures / this.totalJobs()) * 100)
          : this.failures === 0
            ? 101
            : Math.min(this.failures, 101);
      // One job decides: its own status, or 128 + its signal as a shell reports it.
      if (this.limit === 1) {
        this.status = outcome.exitval || (outcome.signal ? outcome.signal + 128 : 0);
      }
    }
    return rule.when;
  }

  /**
   * `fail=0` or `fail=0%` (any WHAT): GNU parallel halts at the first job counted and, its
   * amount being false in Perl, computes no status: the run exits 0 whatever failed.
   */
  private get noAmount(): boolean {
    return this.rule !== null && (this.rule.count ?? this.rule.percent) === 0;
  }

  /** The exit status of the whole run, once every job has been reaped. */
  exitStatus(started: number): number {
    let status: number;
    if (this.status !== null) status = this.status;
    else if (this.noAmount) status = 0;
    else if (this.rule?.percent != null) status = Math.ceil((this.failures / (started || 1)) * 100);
    else status = Math.min(this.failures, 101);
    return status & 0xff;
  }
}
