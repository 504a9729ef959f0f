// Copies the built addon to prebuilds/ so that a packed tarball works where
// install scripts do not run (npm >= 11 skips dependencies' scripts by default).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'build', 'Release', 'pidwatch.node');
if (!existsSync(built)) {
  console.error('prebuild: build/Release/pidwatch.node is missing; run `npm run build` first');
  process.exit(1);
}
const target = join(root, 'prebuilds', `linux-${process.arch}`);
mkdirSync(target, { recursive: true });
copyFileSync(built, join(target, 'pidwatch.node'));
