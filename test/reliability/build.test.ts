// The source build as users get it: it must compile on older userlands (kernel
// headers before 5.9, as on Ubuntu 20.04, RHEL 8, Amazon Linux 2), against musl's
// headers where the code is plain C, and without the development settings (no
// -Werror, no test launcher). The build does not depend on the watcher mode, so
// this runs in one mode only.
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeDir, runNodeGyp } from '../../scripts/node-gyp.mjs';
import { testMode } from '../helpers/mode.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sources = readdirSync(join(root, 'native'))
  .filter((name) => name.endsWith('.cc'))
  .map((name) => join(root, 'native', name));

/** The headers that older kernels' userland lacks, replaced by empty ones. */
const NEW_HEADERS = ['linux/close_range.h', 'linux/pidfd.h', 'linux/pidfs.h', 'sys/pidfd.h'];

function compile(compiler: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(compiler, args, { timeout: 120_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, stderr });
    });
  });
}

function nodeIncludes(): string[] {
  const dir = nodeDir() ?? join(dirname(process.execPath), '..');
  return [`-I${join(dir, 'include', 'node')}`, `-I${join(root, 'node_modules', 'node-addon-api')}`];
}

const cxxFlags = [
  '-std=c++17',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-Wno-unused-parameter',
  '-DNAPI_VERSION=8',
  '-DNAPI_DISABLE_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
];

function hasTool(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, name)));
}

describe.skipIf(testMode !== 'pidfd')('the source build', () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'pidwatch-build-'));
    for (const header of NEW_HEADERS) {
      mkdirSync(dirname(join(work, 'old', header)), { recursive: true });
      writeFileSync(join(work, 'old', header), '/* absent before Linux 5.9 */\n');
    }
    // Kernel headers for musl-gcc, which searches musl's own headers only (as
    // Alpine's linux-headers package provides them).
    mkdirSync(join(work, 'kernel'));
    for (const dir of ['linux', 'asm-generic'])
      symlinkSync(`/usr/include/${dir}`, join(work, 'kernel', dir));
    const asm = [
      '/usr/include/x86_64-linux-gnu/asm',
      '/usr/include/aarch64-linux-gnu/asm',
      '/usr/include/asm',
    ].find((dir) => existsSync(dir));
    if (asm) symlinkSync(asm, join(work, 'kernel', 'asm'));
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('compiles with the headers of an older userland (kernel < 5.9, glibc < 2.34)', async () => {
    for (const source of sources) {
      const object = join(work, `${source.split('/').pop()}.o`);
      const result = await compile('c++', [
        ...cxxFlags,
        `-I${join(work, 'old')}`,
        '-include',
        join(root, 'test', 'fixtures', 'build', 'old-headers.h'),
        ...nodeIncludes(),
        '-c',
        source,
        '-o',
        object,
      ]);
      expect(result.stderr, source).toBe('');
      expect(result.code, source).toBe(0);
    }
  }, 120_000);

  // node-gyp configures against the running Node's headers: in CI's second pass (Node
  // 24) they are not installed, and the makefiles do not depend on the Node version.
  it.skipIf(process.env.PIDWATCH_SECOND_PASS === '1')(
    'the user build leaves out -Werror and the test launcher; the development build has both',
    () => {
      const makefiles = (variables: string[]) => {
        const dir = mkdtempSync(join(work, 'gyp-'));
        for (const name of ['binding.gyp', 'native', 'node_modules'])
          symlinkSync(join(root, name), join(dir, name));
        const result = runNodeGyp(['configure', '--loglevel=error', ...variables], {
          cwd: dir,
          stdio: 'pipe',
        });
        expect(result.status, String(result.stderr)).toBe(0);
        const build = join(dir, 'build');
        return {
          addon: readFileSync(join(build, 'pidwatch.target.mk'), 'utf8'),
          launcher: existsSync(join(build, 'seccomp-launch.target.mk')),
        };
      };
      const user = makefiles([]);
      expect(user.addon).not.toMatch(/-Werror/);
      expect(user.launcher).toBe(false);
      const dev = makefiles(['--pidwatch_dev=1']);
      expect(dev.addon).toMatch(/-Werror/);
      expect(dev.launcher).toBe(true);
    },
    60_000,
  );

  it.skipIf(!hasTool('musl-gcc'))(
    'compiles its C parts against musl headers (musl-gcc)',
    async () => {
      const launcher = await compile('musl-gcc', [
        '-fsyntax-only',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-std=gnu11',
        '-isystem',
        join(work, 'kernel'),
        join(root, 'native', 'tools', 'seccomp-launch.c'),
      ]);
      expect(launcher.stderr).toBe('');
      expect(launcher.code).toBe(0);
      // native/sys.cc is C++ over C headers only: it compiles against musl's C
      // headers too. The other files need a libstdc++ built for musl (Alpine's g++).
      const musl = ['/usr/include/x86_64-linux-musl', '/usr/include/aarch64-linux-musl'].find(
        (dir) => existsSync(dir),
      );
      const gccInclude = await new Promise<string>((resolve) =>
        execFile('gcc', ['-print-file-name=include'], (_e, out) => resolve(String(out).trim())),
      );
      const sys = await compile('g++', [
        ...cxxFlags,
        '-nostdinc',
        '-isystem',
        musl!,
        '-isystem',
        gccInclude,
        '-isystem',
        join(work, 'kernel'),
        '-fsyntax-only',
        join(root, 'native', 'sys.cc'),
      ]);
      expect(sys.stderr).toBe('');
      expect(sys.code).toBe(0);
    },
    60_000,
  );
});
