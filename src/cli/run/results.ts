// --results: each job's seq, stdout and stderr in files, in GNU parallel's layouts.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { ExitStatus } from '../../types.js';
import { expandTag, hasReplacement, type JobValues } from './template.js';

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
 * A --results directory that cannot be made. GNU parallel dies there (Perl's mkpath) with the
 * failed mkdir's errno as its exit status: 17 (EEXIST) where a part of the path is a file.
 */
export class ResultsDirError extends Error {
  override readonly name = 'ResultsDirError';

  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function dirError(dir: string, error: unknown): ResultsDirError {
  const errno = (error as NodeJS.ErrnoException).errno;
  const reason = (errno !== undefined && getSystemErrorMap().get(errno)?.[1]) || String(error);
  return new ResultsDirError(`mkdir ${dir}: ${reason}`, errno === undefined ? 1 : Math.abs(errno));
}

const isDirectory = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory();

/**
 * mkdir -p, as Perl's mkpath: each missing parent first, and a part of the path that is not
 * a directory fails as its mkdir does (EEXIST, naming that part). By hand also because Node
 * 20's `mkdirSync(dir, { recursive: true })` never returns for a path under a file system
 * that refuses mkdir with ENOENT (`/proc/x/1`), spinning on it.
 */
function makeDirs(dir: string): void {
  try {
    mkdirSync(dir);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && isDirectory(dir)) return;
    // ENAMETOOLONG is the caller's (it cuts the names and tries again).
    if (code === 'ENAMETOOLONG') throw error;
    if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(dir) === dir)
      throw dirError(dir, error);
  }
  makeDirs(dirname(dir));
  try {
    mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && isDirectory(dir)) return;
    throw code === 'ENAMETOOLONG' ? error : dirError(dir, error);
  }
}

/** Where one job's files go. */
export interface ResultFiles {
  /** Made before the files are written. */
  dir: string;
  stdout: string;
  stderr: string;
  seq: string;
  cpu: string;
}

/** A job's files in a directory of its own. */
function filesIn(dir: string): ResultFiles {
  const at = (name: string) => join(dir, name);
  return { dir, stdout: at('stdout'), stderr: at('stderr'), seq: at('seq'), cpu: at('cpu') };
}

/**
 * --results. A plain DIR gets GNU parallel's tree (DIR/1/<input 1>/2/<input 2>/...,
 * holding seq, stdout and stderr). A path with replacement strings is expanded per job,
 * unquoted: ending in `/`, it is the job's directory; else the job's stdout file, with
 * `.err` and `.seq` beside it (GNU parallel's two other forms).
 */
export class Results {
  private readonly template: boolean;

  constructor(
    private readonly root: string,
    private readonly replaceString: string | null,
    private readonly withCpu: boolean,
  ) {
    this.template = hasReplacement(root, replaceString);
  }

  private files(values: JobValues): ResultFiles {
    if (!this.template) return filesIn(resultDir(this.root, values.orig ?? values.args));
    const path = expandTag(this.root, values, this.replaceString);
    if (path.endsWith('/')) return filesIn(path);
    return {
      dir: dirname(path),
      stdout: path,
      stderr: `${path}.err`,
      seq: `${path}.seq`,
      cpu: `${path}.cpu`,
    };
  }

  /** The job's stdout file is there: what --resume skips (GNU parallel's test). */
  has(values: JobValues): boolean {
    return existsSync(this.files(values).stdout);
  }

  /** The job's files, once `prepare` has made their place, hold what it wrote. */
  write(files: ResultFiles, output: { stdout: Buffer; stderr: Buffer; status: ExitStatus }): void {
    writeFileSync(files.stdout, output.stdout);
    writeFileSync(files.stderr, output.stderr);
    if (this.withCpu) writeFileSync(files.cpu, cpuText(output.status));
  }

  /**
   * --dry-run: GNU parallel prints the command into the job's stdout file, then removes that
   * file as a job that printed nothing: seq and an empty stderr are what remain.
   */
  writeDryRun(values: JobValues): void {
    writeFileSync(this.prepare(values).stderr, '');
  }

  /**
   * Before the job runs, as GNU parallel does: makes its directory, writes its seq file and
   * returns where its files go. Throws ResultsDirError where the directory cannot be made,
   * so that job is not run.
   */
  prepare(values: JobValues): ResultFiles {
    let files = this.files(values);
    try {
      try {
        makeDirs(files.dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENAMETOOLONG' || cutNames || this.template)
          throw error;
        cutNames = true;
        files = this.files(values);
        makeDirs(files.dir);
      }
    } catch (error) {
      if (error instanceof ResultsDirError && !this.template) throw error;
      // A path with replacement strings that ends in / is checked by GNU parallel itself,
      // which exits 255; its other forms die in mkpath as a plain DIR does.
      if (files.dir.endsWith('/'))
        throw new ResultsDirError(`Cannot make dir '${files.dir}'.`, 255);
      throw error instanceof ResultsDirError ? error : dirError(files.dir, error);
    }
    writeFileSync(files.seq, String(values.seq));
    return files;
  }
}
