// Validation and normalisation of spawn options, before anything is created.

import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { invalidType, invalidValue } from './errors.js';
import { joinNul, type NativeError, type NativeSpawnRequest, native, SpawnFlag } from './native.js';
import { checkShell, shellArgs } from './shell.js';
import { toSignalNumber } from './signals.js';
import { stdioCodes } from './stdio.js';
import type { SpawnOptions } from './types.js';

export interface NormalizedSpawn {
  file: string;
  args: string[];
  argv: string[];
  /** The child's environment, `joinNul`ed; null: the parent's (see parentEnv). */
  env: string | null;
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

/**
 * An environment for the child: its `joinNul`ed strings, and the PATH to search;
 * `env` null names the parent's, as the native side holds it (see parentEnv).
 */
interface ChildEnv {
  env: string | null;
  path: string | null;
}

/**
 * The environment as it is now, taken through process.env: Node reads the real
 * environment under its own lock, so a Worker sharing it (SHARE_ENV) that calls
 * setenv meanwhile cannot free the array under the child, as it could if the
 * child were handed the live `environ`.
 */
function snapshotEnv(): ChildEnv & { env: string } {
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

const HELD_ENV: ChildEnv = { env: null, path: null };

/** Whether the native side holds a copy the environment was found to hold exactly. */
let envHeld = false;

/** Reads process.env and hands the copy to the native side if environ holds exactly it. */
function freshEnv(): ChildEnv & { env: string } {
  const fresh = snapshotEnv();
  envHeld = processEnv !== null && process.env === processEnv && native.environMatches(fresh.env);
  return fresh;
}

/**
 * The parent's environment for a child. Reading process.env costs a lock and a
 * string per variable, so it is read once and its copy handed to the native side,
 * which checks right before each clone (on the thread that clones) that environ
 * still holds exactly those bytes: a change by any thread, through process.env or
 * setenv, fails that spawn with a stale environment, and `retryWithFreshEnv` runs
 * it again with process.env read afresh.
 */
function parentEnv(): ChildEnv {
  if (processEnv === null || process.env !== processEnv) return snapshotEnv();
  return envHeld ? HELD_ENV : freshEnv();
}

/**
 * For a spawn that failed: the request again with process.env read afresh, when
 * it failed because the held copy was stale; else null.
 */
export function retryWithFreshEnv(
  request: NormalizedSpawn,
  error: unknown,
): NormalizedSpawn | null {
  if (request.env !== null || (error as NativeError | null)?.syscall !== 'environ') return null;
  return { ...request, ...freshEnv() };
}

/** Runs a synchronous native spawn, and again as `retryWithFreshEnv` says. */
export function spawnWithFreshEnv<T>(
  request: NormalizedSpawn,
  spawn: (request: NormalizedSpawn) => T,
): T {
  try {
    return spawn(request);
  } catch (error) {
    const retry = retryWithFreshEnv(request, error);
    if (retry === null) throw error;
    return spawn(retry);
  }
}

/** A value of options.env as child_process takes it (coerced to a string), or a TypeError. */
function envText(value: unknown, key: string): string {
  if (typeof value === 'string') return value;
  try {
    return String(value);
  } catch {
    // an object whose toString or valueOf is missing or throws, a Symbol
    throw invalidType(`options.env.${key}`, 'a string or a value that converts to one', value);
  }
}

/** The pairs of an options.env object, checked and joined; its PATH. */
function joinEnv(env: object, skip?: ReadonlySet<string>): ChildEnv & { env: string } {
  const pairs: string[] = [];
  let path: string | null = null;
  for (const [key, value] of Object.entries(env as Record<string, unknown>)) {
    if (value === undefined || skip?.has(key)) continue;
    if (key.includes('=') || key.includes('\0') || key === '')
      throw invalidValue('options.env', `has an invalid variable name ${JSON.stringify(key)}`, key);
    const text = checkString(envText(value, key), `options.env.${key}`);
    if (key === 'PATH') path = text;
    pairs.push(`${key}=${text}`);
  }
  return { env: joinNul(pairs), path };
}

/** An options.env already checked and joined: see `envWith`. */
class JoinedEnv implements ChildEnv {
  constructor(
    readonly env: string,
    readonly path: string | null,
  ) {}
}

/**
 * @internal For many spawns whose environments differ only in the values of a few
 * variables (`pidwatch run`'s PARALLEL_SEQ and PARALLEL_JOBSLOT): `base` is checked and
 * joined once, and the function returned gives an options.env of `base` with `names` set
 * to the values it is given. Checking and joining the whole environment again for each
 * spawn cost `pidwatch run` some 30 us a job.
 */
export function envWith(
  base: Record<string, string | undefined>,
  names: readonly string[],
): (...values: string[]) => NonNullable<SpawnOptions['env']> {
  const { env, path } = joinEnv(base, new Set(names));
  return (...values) => {
    const own = names.map((name, i) => `${name}=${checkString(values[i], `options.env.${name}`)}`);
    return new JoinedEnv(env + joinNul(own), path) as unknown as NonNullable<SpawnOptions['env']>;
  };
}

/**
 * @internal `env` checked as options.env is, as the NUL-ended strings native code takes,
 * leaving out the variables named in `skip` (the job pump adds its own).
 */
export function joinEnvironment(
  env: Record<string, string | undefined>,
  skip: readonly string[] = [],
): string {
  return joinEnv(env, new Set(skip)).env;
}

function checkEnv(env: unknown): ChildEnv {
  if (env === undefined || env === null) return parentEnv();
  if (env instanceof JoinedEnv) return env;
  if (typeof env !== 'object') throw invalidType('options.env', 'of type object', env);
  return joinEnv(env);
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

/** The request as native spawn and spawnSync take it (with `flags` in place of its own). */
export function nativeRequest(r: NormalizedSpawn, flags = r.flags): NativeSpawnRequest {
  return [r.file, joinNul(r.argv), r.env, r.path, r.cwd, r.stdio, flags, r.uid, r.gid];
}
