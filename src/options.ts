// Validation and normalisation of spawn options, before anything is created.

import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { invalidType, invalidValue } from './errors.js';
import { joinNul, type NativeSpawnRequest, native, SpawnFlag } from './native.js';
import { checkShell, shellArgs } from './shell.js';
import { toSignalNumber } from './signals.js';
import { stdioCodes } from './stdio.js';
import type { SpawnOptions } from './types.js';

export interface NormalizedSpawn {
  file: string;
  args: string[];
  argv: string[];
  /** The child's environment, `joinNul`ed. */
  env: string;
  path: string | null;
  cwd: string | null;
  stdio: Int32Array;
  flags: number;
  uid: number;
  gid: number;
  signal: AbortSignal | undefined;
  timeout: number;
  killSignal: number;
  forceKillAfter: number | false;
  tree: boolean;
}

function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (value.includes('\0')) throw invalidValue(name, 'must be a string without null bytes', value);
  return value;
}

function checkId(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe)
    throw invalidValue(name, 'must be an integer from 0 to 4294967294', value);
  return value;
}

function checkBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalidType(name, 'of type boolean', value);
  return value;
}

export function checkMs(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isFinite(value) || value < 0)
    throw invalidValue(name, 'must be a finite number >= 0', value);
  return value;
}

function checkCwd(cwd: unknown): string | null {
  if (cwd === undefined || cwd === null) return null;
  if (cwd instanceof URL) {
    if (cwd.protocol !== 'file:') throw invalidValue('options.cwd', 'must be a file URL', cwd.href);
    return checkString(fileURLToPath(cwd), 'options.cwd');
  }
  return checkString(cwd, 'options.cwd');
}

/** An environment for the child: its `joinNul`ed strings, and the PATH to search. */
interface ChildEnv {
  env: string;
  path: string | null;
}

/**
 * The environment as it is now, taken through process.env: Node reads the real
 * environment under its own lock, so a Worker sharing it (SHARE_ENV) that calls
 * setenv meanwhile cannot free the array under the child, as it could if the
 * child were handed the live `environ`.
 */
function snapshotEnv(): ChildEnv {
  const pairs: string[] = [];
  let path: string | null = null;
  const live = process.env;
  for (const key in live) {
    const value = live[key];
    if (value === undefined) continue; // deleted meanwhile by another thread
    if (key === 'PATH') path = value;
    pairs.push(`${key}=${value}`);
  }
  return { env: joinNul(pairs), path };
}

/**
 * The main thread's process.env is the process environment itself (a Worker's is
 * its own copy unless shared); not once the program has put an object of its own
 * there (a plain object, a Proxy), before or after this module was loaded.
 */
const processEnv =
  isMainThread &&
  !types.isProxy(process.env) &&
  Object.getPrototypeOf(process.env) !== Object.prototype
    ? process.env
    : null;

/** The last snapshot, while the environment is known to hold exactly its bytes. */
let lastSnapshot: ChildEnv | null = null;

/**
 * The parent's environment for a child. Reading process.env costs a lock and a
 * string per variable; the copy is kept while the native side finds the process
 * environment byte for byte what the copy holds (a change by any thread, by
 * setenv or otherwise, is seen at the next spawn).
 */
function parentEnv(): ChildEnv {
  if (processEnv === null || process.env !== processEnv) return snapshotEnv();
  if (lastSnapshot !== null && native.environUnchanged()) return lastSnapshot;
  const fresh = snapshotEnv();
  lastSnapshot = native.environMatches(fresh.env) ? fresh : null;
  return fresh;
}

function checkEnv(env: unknown): ChildEnv {
  if (env === undefined || env === null) return parentEnv();
  if (typeof env !== 'object') throw invalidType('options.env', 'of type object', env);
  const pairs: string[] = [];
  let path: string | null = null;
  for (const [key, value] of Object.entries(env as Record<string, unknown>)) {
    if (value === undefined) continue;
    if (key.includes('=') || key.includes('\0') || key === '')
      throw invalidValue('options.env', `has an invalid variable name ${JSON.stringify(key)}`, key);
    const text = checkString(
      typeof value === 'string' ? value : String(value),
      `options.env.${key}`,
    );
    if (key === 'PATH') path = text;
    pairs.push(`${key}=${text}`);
  }
  return { env: joinNul(pairs), path };
}

export function checkSignalOption(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal))
    throw invalidType('options.signal', 'an AbortSignal', signal);
  return signal;
}

export function checkForceKillAfter(value: unknown): number | false {
  if (value === undefined) return 5000;
  if (value === false) return false;
  return checkMs(value, 'options.forceKillAfter');
}

/** Validates spawn(file, args, options); throws TypeError with a code on bad input. */
export function normalizeSpawn(file: unknown, args: unknown, options: unknown): NormalizedSpawn {
  checkString(file, 'file');
  if ((file as string).length === 0) throw invalidValue('file', 'cannot be empty', file);
  if (args === undefined || args === null) args = [];
  if (!Array.isArray(args)) throw invalidType('args', 'an instance of Array', args);
  let argList = (args as unknown[]).map((arg, i) => checkString(arg, `args[${i}]`));
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw invalidType('options', 'of type object', options);
  const o = options as SpawnOptions;
  const shell = checkShell(o.shell);
  if (shell !== null) {
    argList = shellArgs(shell, file as string, argList);
    file = shell;
  }

  const argv0 = o.argv0 === undefined ? (file as string) : checkString(o.argv0, 'options.argv0');
  const { env, path } = checkEnv(o.env);
  let flags = 0;
  if (checkBoolean(o.detached, 'options.detached')) flags |= SpawnFlag.setsid;
  if (checkBoolean(o.killOnParentExit, 'options.killOnParentExit')) flags |= SpawnFlag.pdeathsig;
  let uid = 0;
  let gid = 0;
  if (o.uid !== undefined) {
    uid = checkId(o.uid, 'options.uid');
    flags |= SpawnFlag.uid;
  }
  if (o.gid !== undefined) {
    gid = checkId(o.gid, 'options.gid');
    flags |= SpawnFlag.gid;
  }
  const timeout = o.timeout === undefined ? 0 : checkMs(o.timeout, 'options.timeout');
  const killSignal =
    o.killSignal === undefined ? 15 : toSignalNumber(o.killSignal, 'options.killSignal');
  return {
    file: file as string,
    args: argList,
    argv: [argv0, ...argList],
    env,
    path,
    cwd: checkCwd(o.cwd),
    stdio: stdioCodes(o.stdio),
    flags,
    uid,
    gid,
    signal: checkSignalOption(o.signal),
    timeout,
    killSignal,
    forceKillAfter: checkForceKillAfter(o.forceKillAfter),
    tree: checkBoolean(o.tree, 'options.tree'),
  };
}

/** The request as native spawn and spawnSync take it. */
export function nativeRequest(r: NormalizedSpawn): NativeSpawnRequest {
  return [r.file, joinNul(r.argv), r.env, r.path, r.cwd, r.stdio, r.flags, r.uid, r.gid];
}
