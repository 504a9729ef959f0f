// --results DIR in GNU parallel's layout: DIR/1/<value of input 1>/2/<value of input 2>/...
// holding seq, stdout and stderr for each job.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A value as a directory name: \ / tab and NUL escaped as GNU parallel escapes them. */
export function escapeName(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\t/g, '\\t')
    .replace(/\0/g, '\\0')
    .replace(/\//g, '\\_');
}

/** The directory of one job. An empty value leaves no level of its own, as in GNU parallel. */
export function resultDir(root: string, args: readonly string[]): string {
  return join(root, ...args.flatMap((arg, i) => [String(i + 1), escapeName(arg)]));
}

export function writeResult(
  root: string,
  args: readonly string[],
  seq: number,
  stdout: Buffer,
  stderr: Buffer,
): void {
  const dir = resultDir(root, args);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'seq'), String(seq));
  writeFileSync(join(dir, 'stdout'), stdout);
  writeFileSync(join(dir, 'stderr'), stderr);
}
