// Builds the prebuilt binaries that ship in the package (run by prepack, so
// `npm pack` and `npm publish` produce them from the sources):
//   prebuilds/linux-x64-glibc/pidwatch.node (and pidwatch-guardian)
//   prebuilds/linux-arm64-glibc/pidwatch.node (and pidwatch-guardian)
// each with node-gyp against the same Node headers, with pidwatch_portable=1
// (binding.gyp): symbols pinned to glibc 2.28 and GCC 8's libstdc++, stripped.
// The architecture that is not the build machine's is cross-compiled with
// Debian's cross compilers (g++-aarch64-linux-gnu, g++-x86-64-linux-gnu).
// Each build runs in a scratch directory, so build/ (the development build) is
// left alone.
//
//   node scripts/prebuild.mjs [TAG...]     (default: every tag)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeGyp } from './node-gyp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const TARGETS = [
  {
    tag: 'linux-x64-glibc',
    arch: 'x64',
    triple: 'x86_64-linux-gnu',
    crossPackage: 'g++-x86-64-linux-gnu',
  },
  {
    tag: 'linux-arm64-glibc',
    arch: 'arm64',
    triple: 'aarch64-linux-gnu',
    crossPackage: 'g++-aarch64-linux-gnu',
  },
];

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

/** The compilers for a target: the system's own, or the cross compilers. */
function toolchain(target) {
  if (target.arch === process.arch) return {};
  const cxx = `${target.triple}-g++`;
  if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0)
    fail(`${cxx} is missing: install it (Debian, Ubuntu: apt-get install ${target.crossPackage})`);
  return { CC: `${target.triple}-gcc`, CXX: cxx, LINK: cxx, AR: `${target.triple}-ar` };
}

function build(target) {
  const work = mkdtempSync(join(tmpdir(), `pidwatch-prebuild-${target.tag}-`));
  try {
    for (const name of ['binding.gyp', 'native', 'node_modules'])
      symlinkSync(join(root, name), join(work, name));
    const env = { ...process.env, ...toolchain(target) };
    const args = ['rebuild', `--arch=${target.arch}`, '--pidwatch_portable=1', '--loglevel=warn'];
    console.error(`prebuild: ${target.tag}`);
    const result = runNodeGyp(args, { cwd: work, env });
    if (result.status !== 0) fail(`the ${target.tag} build failed`);
    const dir = join(root, 'prebuilds', target.tag);
    mkdirSync(dir, { recursive: true });
    for (const name of ['pidwatch.node', 'pidwatch-guardian'])
      copyFileSync(join(work, 'build', 'Release', name), join(dir, name));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const wanted = process.argv.slice(2);
for (const tag of wanted) if (!TARGETS.some((t) => t.tag === tag)) fail(`unknown target ${tag}`);
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
for (const target of TARGETS) if (wanted.length === 0 || wanted.includes(target.tag)) build(target);
