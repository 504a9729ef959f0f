import { ExitSlot, native } from './native.js';
import { signalName } from './signals.js';
import type { ExitStatus, ResourceUsage } from './types.js';

const slots = native.exitInfo;

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
 * The exit the native layer is reporting: call it first thing in a
 * NativeExitCallback, before anything else can report another.
 */
export function nativeExitStatus(pid: number, timedOut = false, aborted = false): ExitStatus {
  const code = slots[ExitSlot.code];
  return {
    pid,
    code: code < 0 ? null : code,
    signal: signalName(slots[ExitSlot.signal]),
    coreDumped: slots[ExitSlot.coreDumped] === 1,
    timedOut,
    aborted,
    durationMs: slots[ExitSlot.durationMs],
    resourceUsage: slots[ExitSlot.hasUsage] === 1 ? resourceUsageAt(slots, ExitSlot.usage) : null,
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
