// Builds the native addon unless a prebuilt one ships with the package.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilt = join(root, 'prebuilds', `linux-${process.arch}`, 'pidwatch.node');
if (existsSync(prebuilt) && !process.env.PIDWATCH_BUILD_FROM_SOURCE) process.exit(0);

const result = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
