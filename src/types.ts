import type { Readable, Stream, Writable } from 'node:stream';

/** Resource usage of a reaped child, named as in Node's `process.resourceUsage()`. */
export interface ResourceUsage {
  /** microseconds */
  userCPUTime: number;
  /** microseconds */
  systemCPUTime: number;
  /** KiB */
  maxRSS: number;
  minorPageFault: number;
  majorPageFault: number;
  voluntaryContextSwitches: number;
  involuntaryContextSwitches: number;
}

/** How a process ended. For a reaped child exactly one of `code` and `signal` is non-null. */
export interface ExitStatus {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  coreDumped: boolean;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  resourceUsage: ResourceUsage | null;
  /** What became of the child's tree (`tree: true`), else null. */
  tree: TreeStatus | null;
}

/** How a tree ended: `ExitStatus.tree`. */
export interface TreeStatus {
  mechanism: 'cgroup' | 'pgroup';
  /** Members still alive when the leader exited, killed then. */
  leftovers: number;
  /** microseconds of the whole tree, from cgroup cpu.stat; null for 'pgroup' */
  userCPUTime: number | null;
  systemCPUTime: number | null;
  /** cgroup memory.peak where the memory controller is enabled, else null */
  memoryPeakBytes: number | null;
}

/** The processes a child started with `tree: true` leads: `Subprocess.tree`. */
export interface ProcessTree {
  readonly mechanism: 'cgroup' | 'pgroup';
  /** The leaf cgroup's path ('cgroup'), else null. */
  readonly cgroup: string | null;
  /** Live members, leader included. */
  pids(): number[];
  /** Signals every member (0 probes); false, and nothing sent, once the tree is empty. */
  kill(signal?: NodeJS.Signals | number): boolean;
}

export type StdioKind = 'pipe' | 'inherit' | 'ignore';
/** A stream passed in stdio must have an fd (an open file stream, a socket, process.stdout). */
export type StdioEntry = StdioKind | number | Stream | { fd: number } | null | undefined;

export interface SpawnOptions {
  cwd?: string | URL;
  env?: Record<string, string | undefined>;
  argv0?: string;
  stdio?: StdioKind | readonly StdioEntry[];
  detached?: boolean;
  uid?: number;
  gid?: number;
  signal?: AbortSignal;
  timeout?: number;
  killSignal?: NodeJS.Signals | number;
  forceKillAfter?: number | false;
  killOnParentExit?: boolean;
  /**
   * Runs `file` as a command line through `/bin/sh -c` (`true`) or the given
   * shell, with `args` as `$1`...
   */
  shell?: boolean | string;
  /** Own the child's whole tree: kill, timeout, abort and dispose reach every descendant. */
  tree?: boolean;
}

export interface ExecOptions extends Omit<SpawnOptions, 'stdio'> {
  input?: string | Uint8Array;
  encoding?: 'utf8' | 'buffer';
  maxBuffer?: number;
  reject?: boolean;
  /**
   * Also collect stdout and stderr interleaved in `output.all`, in the order they were
   * read: write order, except for writes to both closer together than the parent's
   * wake-up (two pipes cannot tell their order apart).
   */
  all?: boolean;
  /** Remove one final newline (`\n` or `\r\n`) from stdout, stderr and all. */
  stripFinalNewline?: boolean;
}

export type Output<T extends string | Buffer = string | Buffer> = ExitStatus & {
  stdout: T;
  stderr: T;
  /** With `all: true`: stdout and stderr interleaved in arrival order. */
  all?: T;
  /** A stream went past maxBuffer: the process was stopped and its output cut there. */
  isMaxBuffer: boolean;
};

export interface Capabilities {
  mode: 'pidfd' | 'sigchld';
  clone3Pidfd: boolean;
  pidfdOpen: boolean;
  waitidPidfd: boolean;
  pidfdSendSignal: boolean;
  pidfdInfoExit: boolean;
  /** The directory trees are created under (`'cgroup'` mechanism), or null (`'pgroup'`). */
  cgroup: string | null;
}

/** What `exit$` and the runner need of a process: a Subprocess or a WatchedProcess. */
export interface ExitSource {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
}

export type { Readable, Writable };
