// Once per vitest run, in its main process: the directory the C fixtures are compiled
// into (test/fixtures/reliability/support.ts), shared by the worker processes and
// removed at the end. A worker's own exit hook is not enough: vitest ends its workers
// without their 'exit' event, which left a directory behind per worker.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-fixtures-'));
  process.env.PIDWATCH_FIXTURES_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
