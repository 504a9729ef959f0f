// The published package: `npm pack`, installed into an empty project without
// running install scripts (npm 11's default for dependencies), then imported,
// required and run. Slow, so it runs in one mode only.
//
// The package's prepack is `build:ts` then scripts/prebuild.mjs. Here dist/ is
// already built (npm test builds it first) and other test files load it while
// this one runs, so only the prebuild step is run, then `npm pack --ignore-scripts`.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testMode } from '../helpers/mode.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(
  file: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 150_000 }, (error, stdout, stderr) => {
      const failure = error as (Error & { code?: unknown }) | null;
      resolve({ code: failure ? Number(failure.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(testMode !== 'pidfd')('the packed tarball, installed into an empty project', () => {
  let dir: string;
  let app: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pidwatch-pack-'));
    const prebuilt = await run(process.execPath, [join(root, 'scripts', 'prebuild.mjs')], root);
    expect(prebuilt.code, prebuilt.stderr).toBe(0);
    const packed = await run(
      npm,
      ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir],
      root,
    );
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
    expect(tarball).toBeDefined();

    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
    );
    const installed = await run(
      npm,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--prefer-offline',
        join(dir, tarball!),
      ],
      app,
    );
    expect(installed.code, installed.stderr).toBe(0);
  }, 180_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships the prebuilt addon and guardian, not the build directory', () => {
    const installed = join(app, 'node_modules', 'pidwatch');
    const prebuilt = readdirSync(join(installed, 'prebuilds', `linux-${process.arch}-glibc`));
    expect(prebuilt).toContain('pidwatch.node');
    expect(prebuilt).toContain('pidwatch-guardian');
    expect(readdirSync(installed)).not.toContain('build');
  });

  it('import: spawns and prints the exit code', async () => {
    const script =
      "import { spawn } from 'pidwatch';" +
      "const status = await spawn('/bin/sh', ['-c', 'exit 7']).exited;" +
      'console.log(status.code);';
    const result = await run(process.execPath, ['--input-type=module', '-e', script], app);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('7\n');
  });

  it('require: spawns and prints the exit code', async () => {
    const script =
      "const { spawn } = require('pidwatch');" +
      "spawn('/bin/sh', ['-c', 'exit 5']).exited.then((status) => console.log(status.code));";
    const result = await run(process.execPath, ['-e', script], app);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('5\n');
  });

  it('the pidwatch/rx entry and the pidwatch executable load', async () => {
    const script =
      "import { firstValueFrom } from 'rxjs';" +
      "import { exit$ } from 'pidwatch/rx';" +
      "import { spawn } from 'pidwatch';" +
      "console.log((await firstValueFrom(exit$(spawn('/bin/true')))).code);";
    const rxjs = await run(process.execPath, ['--input-type=module', '-e', script], app);
    // rxjs is an optional peer: without it the reactive entry cannot load.
    if (rxjs.code === 0) expect(rxjs.stdout).toBe('0\n');
    else expect(rxjs.stderr).toMatch(/rxjs/);

    const bin = await run(join(app, 'node_modules', '.bin', 'pidwatch'), ['--help'], app);
    expect(bin.code, bin.stderr).toBe(0);
    expect(bin.stdout).toMatch(/pidwatch/);
  });
});
