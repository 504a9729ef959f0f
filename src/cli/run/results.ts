// --results DIR in GNU parallel's layout: DIR/1/<value of input 1>/2/<value of input 2>/...
// holding seq, stdout and stderr for each job.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ExitStatus } from '../../types.js';

/** A value as a directory name: \ / tab and NUL escaped as GNU parallel escapes them. */
export function escapeName(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\t/g, '\\t')
    .replace(/\0/g, '\\0')
    .replace(/\//g, '\\_');
}

/**
 * The longest name a directory may have (NAME_MAX on Linux file systems). As in GNU
 * parallel, names are cut to it only once a value has been found too long for one.
 */
const NAME_MAX = 255;
let cutNames = false;

/** A name cut to NAME_MAX bytes, back to a whole UTF-8 character. */
function cut(name: string): string {
  const bytes = Buffer.from(name);
  if (bytes.length <= NAME_MAX) return name;
  let end = NAME_MAX;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString();
}

/** The directory of one job. An empty value leaves no level of its own, as in GNU parallel. */
export function resultDir(root: string, args: readonly string[]): string {
  const name = cutNames ? (arg: string) => cut(escapeName(arg)) : escapeName;
  return join(root, ...args.flatMap((arg, i) => [String(i + 1), name(arg)]));
}

/** The job has a stdout file under `root`: what --resume skips with --results. */
export function hasResult(root: string, args: readonly string[]): boolean {
  return existsSync(join(resultDir(root, args), 'stdout'));
}

/**
 * With --tree-cpu (pidwatch's own): the CPU seconds of the job's whole tree, from its
 * cgroup's cpu.stat; of the job's process alone where no cgroup held the tree.
 */
export function cpuText(status: ExitStatus): string {
  const tree = status.tree;
  const seconds = (us: number) => (us / 1e6).toFixed(6);
  if (tree != null && tree.userCPUTime !== null && tree.systemCPUTime !== null) {
    return `tree user ${seconds(tree.userCPUTime)}\ntree system ${seconds(tree.systemCPUTime)}\n`;
  }
  const usage = status.resourceUsage;
  if (usage === null) return '';
  return `process user ${seconds(usage.userCPUTime)}\nprocess system ${seconds(usage.systemCPUTime)}\n`;
}

/**
 * mkdir -p. By hand: Node 20's `mkdirSync(dir, { recursive: true })` never returns for a
 * path under a file system that refuses mkdir with ENOENT (`/proc/x/1`), spinning on it.
 */
function makeDirs(dir: string): void {
  try {
    mkdirSync(dir);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  makeDirs(dirname(dir));
  try {
    mkdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

export function writeResult(
  root: string,
  args: readonly string[],
  seq: number,
  output: { stdout: Buffer; stderr: Buffer; status: ExitStatus },
  withCpu: boolean,
): void {
  let dir = resultDir(root, args);
  try {
    makeDirs(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENAMETOOLONG' || cutNames) throw error;
    cutNames = true;
    dir = resultDir(root, args);
    makeDirs(dir);
  }
  writeFileSync(join(dir, 'seq'), String(seq));
  writeFileSync(join(dir, 'stdout'), output.stdout);
  writeFileSync(join(dir, 'stderr'), output.stderr);
  if (withCpu) writeFileSync(join(dir, 'cpu'), cpuText(output.status));
}
