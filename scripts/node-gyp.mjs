// Runs node-gyp as `npm run` would, from any script: npm's own node-gyp (npm
// passes its path to scripts as npm_config_node_gyp; outside npm it is looked
// for beside node) and npm's `nodedir` setting, where Node's headers are.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  return candidates.find((file) => file && existsSync(file)) ?? null;
}

export function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  try {
    const dir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
    return dir && dir !== 'undefined' && dir !== 'null' ? dir : null;
  } catch {
    return null;
  }
}

/**
 * node-gyp ARGS in cwd; returns spawnSync's result. Falls back to a `node-gyp`
 * on PATH when npm's cannot be found.
 */
export function runNodeGyp(args, { cwd, env = process.env, stdio = 'inherit' } = {}) {
  const dir = nodeDir();
  const allArgs = [
    ...args,
    ...(dir && !args.some((a) => a.startsWith('--nodedir')) ? [`--nodedir=${dir}`] : []),
  ];
  const script = findNodeGyp();
  return script
    ? spawnSync(process.execPath, [script, ...allArgs], { cwd, env, stdio })
    : spawnSync('node-gyp', allArgs, { cwd, env, stdio });
}
