// The package's install script. Installs that run no scripts (npm's
// --ignore-scripts, pnpm's and npm's allow-lists) never get here and use the
// prebuilt binary; this script only builds from source where none fits:
//   - a binary that loads already (a prebuilt one for this platform, or an
//     earlier source build): nothing to do;
//   - none does: build from source (the user build: no -Werror, no test tools);
//     a failed build fails the install, saying what to install;
//   - PIDWATCH_BUILD_FROM_SOURCE=1: build from source in any case; if that fails
//     where a prebuilt binary loads, warn and keep the prebuilt one.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runNodeGyp } from './node-gyp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** null when a binary loads, else why not. */
async function binaryProblem() {
  const loader = join(root, 'dist', 'binary.js');
  if (!existsSync(loader)) return 'dist/ is not built yet (a source checkout)';
  try {
    const { loadBinary } = await import(pathToFileURL(loader).href);
    loadBinary(root);
    return null;
  } catch (error) {
    return error.message;
  }
}

function buildFromSource() {
  console.error('pidwatch: building the native addon from source (node-gyp)');
  const result = runNodeGyp(['rebuild'], { cwd: root });
  return result.status === 0;
}

const forced = process.env.PIDWATCH_BUILD_FROM_SOURCE === '1';
const problem = await binaryProblem();
if (problem === null && !forced) process.exit(0);
if (buildFromSource()) process.exit(0);
if (problem === null) {
  console.error(
    'pidwatch: the source build failed (PIDWATCH_BUILD_FROM_SOURCE=1); the prebuilt binary stays in use',
  );
  process.exit(0);
}
console.error(
  `pidwatch: the source build failed, and no prebuilt binary fits:\n${problem}\n` +
    'Install a C++ compiler, make and Python 3 (Debian: apt-get install g++ make python3;\n' +
    'Alpine: apk add build-base python3) and install again.',
);
process.exit(1);
