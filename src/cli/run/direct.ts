// Running a shell command line without the shell when the shell would only split it into
// words and exec the first one (the way GNU make skips the shell): one process fewer per
// job, same result. Anything the shell would interpret sends the line to /bin/sh -c.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { join, delimiter as PATH_SEPARATOR } from 'node:path';

/** Characters that stand for themselves outside quotes (bytes >= 0x80 too, as in dash). */
const PLAIN = /^[A-Za-z0-9_./,:@%+=\-\u0080-\uffff]$/u;

/**
 * The words of `line` when it is one simple command the shell would run as-is: plain words,
 * '...' and "..." (without $ ` \ inside), blanks between. Null when anything else appears.
 */
export function splitWords(line: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end === -1) return null;
      const quoted = line.slice(i + 1, end);
      if (c === '"' && /[$`\\]/.test(quoted)) return null;
      word = (word ?? '') + quoted;
      i = end;
    } else if (PLAIN.test(c)) {
      word = (word ?? '') + c;
    } else {
      return null;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** dash's reserved words and builtins: a line starting with one needs the shell. */
const SHELL_WORDS = new Set(
  (
    'if then else elif fi do done case esac while until for in function select ' +
    '. : [ alias bg break cd chdir command continue eval exec exit export fc fg getopts ' +
    'hash jobs kill local printf pwd read readonly return set shift test times trap type ' +
    'ulimit umask unalias unset wait echo true false'
  ).split(' '),
);

/** `echo` is the same program inside and outside dash unless it sees an option or a backslash. */
function echoIsPlain(args: readonly string[]): boolean {
  return args.every(
    (arg, i) => !arg.includes('\\') && (!arg.startsWith('-') || (i === 0 && arg === '-n')),
  );
}

/**
 * `true` and `false` ignore their arguments inside and outside dash, but for a lone
 * `--help` or `--version`, which the programs answer.
 */
const trueIsPlain = (args: readonly string[]) =>
  !(args.length === 1 && (args[0] === '--help' || args[0] === '--version'));

const resolved = new Map<string, string | null>();

/**
 * What execve would do with `path`: 'program' for a regular executable file the kernel
 * runs itself (ELF or #!), 'script' for one it refuses with ENOEXEC (which sh then runs as
 * a script of its own), null for no executable file there.
 */
function executable(path: string): 'program' | 'script' | null {
  try {
    if (!statSync(path).isFile()) return null;
    accessSync(path, constants.X_OK);
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(4);
      const n = readSync(fd, head, 0, 4, 0);
      const runs =
        (n === 4 && head.readUInt32BE(0) === 0x7f454c46) ||
        (n >= 2 && head.toString('latin1', 0, 2) === '#!');
      return runs ? 'program' : 'script';
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * The file `sh` would execute for command word `name`, searched once; null: leave it to sh
 * (not found, or the first executable file found is one sh runs as a script).
 */
function resolveProgram(name: string): string | null {
  let path = resolved.get(name);
  if (path !== undefined) return path;
  path = null;
  if (name.includes('/')) {
    if (executable(name) === 'program') path = name;
  } else {
    for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(PATH_SEPARATOR)) {
      const candidate = join(dir === '' ? '.' : dir, name);
      const found = executable(candidate);
      if (found !== null) {
        if (found === 'program') path = candidate;
        break;
      }
    }
  }
  resolved.set(name, path);
  return path;
}

/** How to run a command line: a program and its argv, without a shell when none is needed. */
export interface Invocation {
  file: string;
  args: string[];
  argv0?: string;
}

export function invocation(line: string, shell: string): Invocation {
  const words = splitWords(line);
  if (words !== null && words.length > 0) {
    const [name, ...args] = words;
    const needsShell =
      name.includes('=') ||
      (SHELL_WORDS.has(name) &&
        !(name === 'echo' && echoIsPlain(args)) &&
        !((name === 'true' || name === 'false') && trueIsPlain(args)));
    const file = needsShell ? null : resolveProgram(name);
    if (file !== null) return { file, args, argv0: name };
  }
  return { file: shell, args: ['-c', line] };
}

/**
 * The PWD a job sees through sh: dash keeps an inherited PWD only when it is an absolute
 * path to the working directory, else it sets (and exports) the real path. A job run
 * without the shell is given the same.
 */
export function shellPwd(inherited: string | undefined): string {
  if (inherited?.startsWith('/')) {
    try {
      const named = statSync(inherited);
      const cwd = statSync('.');
      if (named.dev === cwd.dev && named.ino === cwd.ino) return inherited;
    } catch {
      // not there: the real path, as dash
    }
  }
  return process.cwd();
}
