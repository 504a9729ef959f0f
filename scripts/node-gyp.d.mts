import type { SpawnSyncReturns, StdioOptions } from 'node:child_process';

export function findNodeGyp(): string | null;
export function nodeDir(): string | null;
export function runNodeGyp(
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv; stdio?: StdioOptions },
): SpawnSyncReturns<Buffer>;
