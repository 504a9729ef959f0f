// Finds and loads the native addon: the one place that requires a .node file.
//
// Tried in order, the first that loads wins:
//   build/Release/pidwatch.node  built from source on this machine: a development
//                                checkout, PIDWATCH_BUILD_FROM_SOURCE=1, or an install
//                                where no prebuilt binary fitted (scripts/install.mjs)
//   prebuilds/<platform>-<arch>-<libc>/pidwatch.node   shipped in the package
//                                (linux-x64-glibc, linux-arm64-glibc: glibc >= 2.28)
// A file that exists but fails to load (an older glibc, another architecture) is
// passed over, and its error is part of the ERR_PIDWATCH_NO_BINARY message.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The C library this process runs on, read from its own memory map (no process
 * is spawned): musl's dynamic loader is ld-musl-<arch>.so.1, glibc's libc is
 * libc.so.6. null when neither shows (not Linux, or a static Node).
 */
export function runningLibc(): 'glibc' | 'musl' | null {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return null;
  }
  if (/\/ld-musl-[^/\s]*\.so|\/libc\.musl-[^/\s]*\.so/.test(maps)) return 'musl';
  if (/\/libc\.so\.6$|\/libc-2\.\d+\.so$/m.test(maps)) return 'glibc';
  return null;
}

/** The prebuilt binary's directory name for this process: `linux-x64-glibc`, say. */
export function platformTag(): string {
  const libc = process.platform === 'linux' ? runningLibc() : null;
  return [process.platform, process.arch, libc].filter(Boolean).join('-');
}

/** The files tried, in order. */
export function binaryCandidates(root = packageRoot): string[] {
  return [
    join(root, 'build', 'Release', 'pidwatch.node'),
    join(root, 'prebuilds', platformTag(), 'pidwatch.node'),
  ];
}

/** A program built beside the addon (the guardian), from the same places; null when none is. */
export function builtProgram(name: string, root = packageRoot): string | null {
  const files = binaryCandidates(root).map((addon) => join(dirname(addon), name));
  return files.find((file) => existsSync(file)) ?? null;
}

export interface NoBinaryError extends Error {
  code: 'ERR_PIDWATCH_NO_BINARY';
}

function noBinary(tried: string[]): NoBinaryError {
  const tag = platformTag();
  const glibc = (
    process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  )?.header?.glibcVersionRuntime;
  const where = `${tag}${glibc ? ` (glibc ${glibc})` : ''}, Node.js ${process.version}`;
  const lines = [
    process.platform === 'linux'
      ? `pidwatch: no native binary fits ${where}.`
      : `pidwatch runs on Linux only; this is ${where}.`,
    ...tried.map((line) => `  ${line}`),
  ];
  if (process.platform === 'linux') {
    lines.push(
      'Prebuilt binaries ship for linux-x64-glibc and linux-arm64-glibc (glibc >= 2.28).',
      'Elsewhere pidwatch builds from source: install a C++ compiler, make and Python 3',
      '(Debian: apt-get install g++ make python3; Alpine: apk add build-base python3),',
      'then run `npm rebuild pidwatch` in the project that depends on it.',
    );
  }
  const error = new Error(lines.join('\n')) as NoBinaryError;
  error.code = 'ERR_PIDWATCH_NO_BINARY';
  return error;
}

/** Loads the first candidate that loads, or throws ERR_PIDWATCH_NO_BINARY. */
export function loadBinary<T>(root = packageRoot): T {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  if (process.platform === 'linux') {
    for (const file of binaryCandidates(root)) {
      const name = relative(root, file);
      if (!existsSync(file)) {
        tried.push(`${name}: not there`);
        continue;
      }
      try {
        return require(file) as T;
      } catch (error) {
        tried.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }
  throw noBinary(tried);
}
