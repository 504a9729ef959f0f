// Every example in README.md runs, as written.
//
// HOW IT WORKS (read this before adding an example to the README)
// - Every fenced block in a runnable language is an example and is run:
//     ```js / ```javascript / ```mjs   an ES module (node FILE.mjs)
//     ```cjs                           a CommonJS script (node FILE.cjs)
//     ```sh / ```shell / ```bash       a shell script, run with `sh -e` (`bash -e`)
//   Blocks in other languages are listings, not run: ```ts (type shapes), ```text,
//   ```console and blocks without a language (usage lines, sample output). Write a
//   runnable example as ```js, never as ```ts.
// - Each example runs in a fresh scratch directory (its cwd), with a node_modules in
//   which `pidwatch` (and `pidwatch/rx`) is this checkout and every dev dependency
//   (rxjs, ...) can be imported; the `pidwatch` CLI is first on PATH. It must exit 0
//   within its timeout, and leave no process of its process group running.
// - An HTML comment on the line right before the fence (invisible on GitHub and npm)
//   sets the example up, in key="value" pairs:
//     <!-- example: setup="seq 3 > app.log" needs="make git" node=24 exit=1 timeout=60000 -->
//       setup    a sh -e command line run first in the scratch directory: create the
//                files the example reads (`printf '...' > server.js`), start what it
//                watches (`sleep 2 & echo $! > server.pid`)
//       needs    commands the example runs, or `cgroup` (a writable cgroup v2
//                directory, capabilities().cgroup): when one is missing the example is
//                skipped, and the test's name says why. Prefer making the example run
//                everywhere; use this only for tools CI cannot be expected to have.
//       node     the lowest Node.js major it runs on (e.g. 24 for `await using`)
//       exit     the exit status it must end with (default 0)
//       timeout  ms (default 30000)
//   A block of a runnable language that must not be run says why:
//     <!-- not run: installs the package and runs the whole suite -->
// - A typo in a key, a `not run` without a reason or a block that never finishes fails
//   the test. Runs in one watcher mode only (pidfd): the examples do not depend on it.
import { spawn as cpSpawn } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { capabilities } from '../src/index.js';
import { testMode } from './helpers/mode.js';
import { waitFor } from './helpers/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = join(root, 'README.md');

const RUNNERS: Record<string, { file: string; command: string[] }> = {
  js: { file: 'example.mjs', command: [process.execPath] },
  javascript: { file: 'example.mjs', command: [process.execPath] },
  mjs: { file: 'example.mjs', command: [process.execPath] },
  cjs: { file: 'example.cjs', command: [process.execPath] },
  sh: { file: 'example.sh', command: ['/bin/sh', '-e'] },
  shell: { file: 'example.sh', command: ['/bin/sh', '-e'] },
  bash: { file: 'example.sh', command: ['bash', '-e'] },
};
const KEYS = new Set(['setup', 'needs', 'node', 'exit', 'timeout']);

interface Example {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** The key="value" pairs of an `<!-- example: ... -->` comment. */
  options: Record<string, string>;
  /** The reason of a `<!-- not run: ... -->` comment, else null. */
  notRun: string | null;
}

function parseOptions(text: string, line: number): Record<string, string> {
  const options: Record<string, string> = {};
  const pair = /([\w-]+)=(?:"([^"]*)"|'([^']*)'|(\S+))/g;
  let rest = text;
  for (const m of text.matchAll(pair)) {
    if (!KEYS.has(m[1]))
      throw new Error(`README line ${line}: unknown example option ${m[1]} (know ${[...KEYS]})`);
    options[m[1]] = m[2] ?? m[3] ?? m[4];
    rest = rest.replace(m[0], '');
  }
  if (rest.trim() !== '') throw new Error(`README line ${line}: cannot read '${rest.trim()}'`);
  return options;
}

/** The fenced blocks of a Markdown text in a runnable language, with their directives. */
function examples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end].trim().startsWith(fence)) end++;
    const body = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
    const start = i;
    i = end;
    if (!(lang.toLowerCase() in RUNNERS)) continue;
    let before = start - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const comment = /^\s*<!--\s*(example|not run):(.*?)-->\s*$/.exec(lines[before] ?? '');
    const example: Example = {
      line: start + 1,
      lang: lang.toLowerCase(),
      code: `${body.join('\n')}\n`,
      options: {},
      notRun: null,
    };
    if (comment?.[1] === 'example') example.options = parseOptions(comment[2], start + 1);
    if (comment?.[1] === 'not run') example.notRun = comment[2].trim();
    out.push(example);
  }
  return out;
}

function onPath(command: string, path: string): boolean {
  return path.split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Why the example cannot run here, or null. */
function missing(example: Example, path: string): string | null {
  const node = Number(example.options.node ?? 0);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < node) return `needs Node.js >= ${node}, this is ${process.versions.node}`;
  for (const need of (example.options.needs ?? '').split(/\s+/).filter(Boolean)) {
    if (need === 'cgroup') {
      const dir = (capabilities() as { cgroup?: string | null }).cgroup;
      if (!dir) return 'needs a writable cgroup v2 directory';
    } else if (!onPath(need, path)) {
      return `needs ${need} on PATH`;
    }
  }
  return null;
}

/** A node_modules where `pidwatch` is this checkout and its dev dependencies resolve. */
function linkModules(dir: string): string {
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  symlinkSync(root, join(modules, 'pidwatch'));
  symlinkSync(join(root, 'dist', 'cli', 'main.js'), join(modules, '.bin', 'pidwatch'));
  return join(modules, '.bin');
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function endGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

interface Outcome {
  code: number | null;
  signal: string | null;
  output: string;
  timedOut: boolean;
  pgid: number;
}

function run(command: string[], cwd: string, env: NodeJS.ProcessEnv, ms: number) {
  return new Promise<Outcome>((resolve) => {
    // its own process group, so that whatever it leaves running can be found
    const child = cpSpawn(command[0], command.slice(1), {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      endGroup(child.pid!);
    }, ms);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        output: Buffer.concat(chunks).toString(),
        timedOut,
        pgid: child.pid!,
      });
    });
  });
}

const scratchDirs: string[] = [];
const groups: number[] = [];
afterAll(() => {
  for (const pgid of groups) endGroup(pgid);
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

async function runExample(example: Example, path: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-readme-'));
  scratchDirs.push(dir);
  const bin = linkModules(dir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [bin, dirname(process.execPath), path].join(delimiter),
  };
  delete env.NODE_OPTIONS; // vitest's own loader flags are not for the example
  if (example.options.setup) {
    const log = openSync(join(dir, '.setup.log'), 'w');
    // output to a file: a process the setup leaves running must not hold a pipe open;
    // its own process group, ended after the tests
    const setup = cpSpawn('/bin/sh', ['-ec', example.options.setup], {
      cwd: dir,
      env,
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    groups.push(setup.pid!);
    const [code, signal] = (await once(setup, 'exit')) as [number | null, string | null];
    if (code !== 0) {
      const text = readFileSync(join(dir, '.setup.log'), 'utf8');
      throw new Error(`setup failed (${code ?? signal}): ${text}`);
    }
  }
  const runner = RUNNERS[example.lang];
  writeFileSync(join(dir, runner.file), example.code);
  const ms = Number(example.options.timeout ?? 30_000);
  const outcome = await run([...runner.command, runner.file], dir, env, ms);
  groups.push(outcome.pgid);
  const shown = `output:\n${outcome.output}`;
  expect(outcome.timedOut, `did not finish within ${ms} ms; ${shown}`).toBe(false);
  expect({ code: outcome.code, signal: outcome.signal }, shown).toEqual({
    code: Number(example.options.exit ?? 0),
    signal: null,
  });
  // Whatever it started has ended once it exits (a killed child may need a moment to be
  // reaped by init).
  await waitFor(() => !groupAlive(outcome.pgid), 'the example’s processes to end', 3000).catch(
    () => {
      endGroup(outcome.pgid);
      throw new Error(`the example left processes running in its process group; ${shown}`);
    },
  );
}

function title(example: Example): string {
  const first = example.code.split('\n').find((l) => l.trim() !== '' && !/^import /.test(l));
  return `README line ${example.line} (${example.lang}): ${(first ?? '').trim().slice(0, 60)}`;
}

const found = examples(readFileSync(readme, 'utf8'));

describe.skipIf(testMode !== 'pidfd')('README examples', () => {
  it('has examples, and every one that is not run says why', () => {
    expect(found.length).toBeGreaterThan(5);
    for (const example of found) {
      if (example.notRun !== null) expect(example.notRun, title(example)).not.toBe('');
    }
  });

  const path = process.env.PATH ?? '';
  for (const example of found) {
    if (example.notRun !== null) {
      it.skip(`${title(example)} (not run: ${example.notRun})`, () => {});
      continue;
    }
    const why = missing(example, path);
    if (why) {
      it.skip(`${title(example)} (skipped: ${why})`, () => {});
      continue;
    }
    const ms = Number(example.options.timeout ?? 30_000);
    it(title(example), () => runExample(example, path), ms + 30_000);
  }
});

describe('the README example reader', () => {
  it('reads indented blocks, their directives, and leaves listings out', () => {
    const text = [
      '```ts',
      '{ pid: number }',
      '```',
      '- item',
      '  <!-- example: setup="touch a b" needs=make exit=2 -->',
      '  ```js',
      "  console.log('x');",
      '    nested();',
      '  ```',
      '<!-- not run: installs things -->',
      '```sh',
      'npm install',
      '```',
      '```',
      '$ output sample',
      '```',
    ].join('\n');
    expect(examples(text)).toEqual([
      {
        line: 6,
        lang: 'js',
        code: "console.log('x');\n  nested();\n",
        options: { setup: 'touch a b', needs: 'make', exit: '2' },
        notRun: null,
      },
      { line: 11, lang: 'sh', code: 'npm install\n', options: {}, notRun: 'installs things' },
    ]);
  });

  it('refuses an unknown option, so a typo does not go unnoticed', () => {
    expect(() => examples('<!-- example: setpu="x" -->\n```js\n1;\n```\n')).toThrow(/setpu/);
  });
});
