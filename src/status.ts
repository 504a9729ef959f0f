import { signalName } from './signals.js';
import type { ExitStatus, ResourceUsage } from './types.js';

export function toResourceUsage(usage: number[] | null): ResourceUsage | null {
  if (!usage) return null;
  return {
    userCPUTime: usage[0],
    systemCPUTime: usage[1],
    maxRSS: usage[2],
    minorPageFault: usage[3],
    majorPageFault: usage[4],
    voluntaryContextSwitches: usage[5],
    involuntaryContextSwitches: usage[6],
  };
}

export interface StatusFacts {
  pid: number;
  code: number | null;
  signal: number;
  coreDumped: boolean;
  usage: number[] | null;
  startedAt: number;
  timedOut?: boolean;
  aborted?: boolean;
}

export function toExitStatus(facts: StatusFacts): ExitStatus {
  return {
    pid: facts.pid,
    code: facts.code,
    signal: signalName(facts.signal),
    coreDumped: facts.coreDumped,
    timedOut: facts.timedOut ?? false,
    aborted: facts.aborted ?? false,
    durationMs: performance.now() - facts.startedAt,
    resourceUsage: toResourceUsage(facts.usage),
  };
}
