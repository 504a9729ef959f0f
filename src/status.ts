import { ExitSlot, native } from './native.js';
import { signalName } from './signals.js';
import type { ExitStatus, ResourceUsage } from './types.js';

const rows = native.exitRows;

export function resourceUsageAt(values: Float64Array, at: number): ResourceUsage {
  return {
    userCPUTime: values[at],
    systemCPUTime: values[at + 1],
    maxRSS: values[at + 2],
    minorPageFault: values[at + 3],
    majorPageFault: values[at + 4],
    voluntaryContextSwitches: values[at + 5],
    involuntaryContextSwitches: values[at + 6],
  };
}

/**
 * The exit at offset `at` of the rows the native layer is reporting: valid for
 * the length of the ExitTarget call only.
 */
export function nativeExitStatus(
  pid: number,
  at: number,
  timedOut = false,
  aborted = false,
): ExitStatus {
  const code = rows[at + ExitSlot.code];
  return {
    pid,
    code: code < 0 ? null : code,
    signal: signalName(rows[at + ExitSlot.signal]),
    coreDumped: rows[at + ExitSlot.coreDumped] === 1,
    timedOut,
    aborted,
    durationMs: rows[at + ExitSlot.durationMs],
    resourceUsage:
      rows[at + ExitSlot.hasUsage] === 1 ? resourceUsageAt(rows, at + ExitSlot.usage) : null,
    tree: null,
  };
}

export interface StatusFacts {
  pid: number;
  code: number | null;
  signal: number;
  coreDumped: boolean;
  startedAt: number;
}

/** An exit pidwatch learnt of without the native layer (/proc polling). */
export function toExitStatus(facts: StatusFacts): ExitStatus {
  return {
    pid: facts.pid,
    code: facts.code,
    signal: signalName(facts.signal),
    coreDumped: facts.coreDumped,
    timedOut: false,
    aborted: false,
    durationMs: performance.now() - facts.startedAt,
    resourceUsage: null,
    tree: null,
  };
}
