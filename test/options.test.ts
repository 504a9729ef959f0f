// Bad arguments: a synchronous TypeError with Node's code, and then nothing running and
// no fd left open.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, spawn } from '../src/index.js';
import { childrenOf, describeFds, fdCount } from './helpers/proc.js';

type Args = Parameters<typeof spawn>;
const TYPE = 'ERR_INVALID_ARG_TYPE';
const VALUE = 'ERR_INVALID_ARG_VALUE';
const EITHER = [TYPE, VALUE];

/** Processes that a case failed to refuse: killed and awaited before the checks. */
const started: Promise<unknown>[] = [];

/** Calls spawn with deliberately wrong arguments; returns what it threw. */
function thrownBy(args: unknown[]): unknown {
  try {
    const proc = spawn(...(args as Args));
    proc.kill('SIGKILL');
    started.push(proc.exited);
  } catch (error) {
    return error;
  }
  return undefined;
}

const cases: [string, unknown[], string | string[]][] = [
  // file
  ['a number as file', [123], TYPE],
  ['undefined as file', [undefined], TYPE],
  ['an array as file', [['/bin/true']], TYPE],
  ['an empty file name', [''], VALUE],
  ['a NUL byte in file', ['/bin/tr\0ue'], VALUE],
  // args
  ['a string as args', ['/bin/echo', 'hi'], TYPE],
  ['a number among args', ['/bin/echo', ['a', 1]], TYPE],
  ['null among args', ['/bin/echo', [null]], TYPE],
  ['a NUL byte in an arg', ['/bin/echo', ['a\0b']], VALUE],
  // options
  ['options that are not an object', ['/bin/true', [], 'x'], TYPE],
  ['a number as cwd', ['/bin/true', [], { cwd: 5 }], TYPE],
  ['a NUL byte in cwd', ['/bin/true', [], { cwd: '/t\0mp' }], VALUE],
  ['env that is not an object', ['/bin/true', [], { env: 'A=1' }], TYPE],
  ['a NUL byte in an env value', ['/bin/true', [], { env: { A: 'x\0y' } }], VALUE],
  [
    'a file whose description throws (a Proxy)',
    [
      new Proxy(
        {},
        {
          get: () => {
            throw new Error('trap');
          },
        },
      ),
      [],
    ],
    TYPE,
  ],
  [
    'an env value that cannot become a string',
    ['/bin/true', [], { env: { A: [{ toString: 0n }], B: 'b' } }],
    TYPE,
  ],
  ['a NUL byte in an env name', ['/bin/true', [], { env: { 'A\0B': 'x' } }], VALUE],
  ['a number as argv0', ['/bin/true', [], { argv0: 1 }], TYPE],
  ['a NUL byte in argv0', ['/bin/true', [], { argv0: 'a\0' }], VALUE],
  ['an unknown stdio string', ['/bin/true', [], { stdio: 'pipes' }], VALUE],
  ['an unknown stdio entry', ['/bin/true', [], { stdio: ['pipe', 'bogus', 'pipe'] }], VALUE],
  ['a negative stdio fd', ['/bin/true', [], { stdio: ['pipe', -1, 'pipe'] }], EITHER],
  ['a fractional stdio fd', ['/bin/true', [], { stdio: ['pipe', 1.5, 'pipe'] }], EITHER],
  // no fd number reaches 2^31 - 64 (the kernel's cap on fs.nr_open)
  ['the fd 0x7fffffff in stdio', ['/bin/true', [], { stdio: ['pipe', 0x7fffffff, 'pipe'] }], VALUE],
  ['the fd 0x7fffffc0 in stdio', ['/bin/true', [], { stdio: ['pipe', 0x7fffffc0, 'pipe'] }], VALUE],
  ['the fd 2^31 in stdio', ['/bin/true', [], { stdio: ['pipe', 2 ** 31, 'pipe'] }], VALUE],
  [
    'a stream whose fd is 2^31',
    ['/bin/true', [], { stdio: [{ fd: 2 ** 31 }, 'pipe', 'pipe'] }],
    VALUE,
  ],
  ['an object without an fd in stdio', ['/bin/true', [], { stdio: [{}, 'pipe', 'pipe'] }], EITHER],
  ['a string as uid', ['/bin/true', [], { uid: '0' }], TYPE],
  ['a negative gid', ['/bin/true', [], { gid: -1 }], EITHER],
  ['a string as detached', ['/bin/true', [], { detached: 'yes' }], TYPE],
  ['a non-AbortSignal as signal', ['/bin/true', [], { signal: {} }], TYPE],
  ['an unknown killSignal name', ['/bin/true', [], { killSignal: 'SIGBOGUS' }], EITHER],
  ['an out-of-range killSignal number', ['/bin/true', [], { killSignal: 999 }], EITHER],
  ['a negative timeout', ['/bin/true', [], { timeout: -1 }], EITHER],
  ['a NaN timeout', ['/bin/true', [], { timeout: Number.NaN }], EITHER],
  ['an infinite timeout', ['/bin/true', [], { timeout: Number.POSITIVE_INFINITY }], EITHER],
  ['a string timeout', ['/bin/true', [], { timeout: '100' }], TYPE],
  ['a negative forceKillAfter', ['/bin/true', [], { forceKillAfter: -5 }], EITHER],
  ['true as forceKillAfter', ['/bin/true', [], { forceKillAfter: true }], TYPE],
  ['a NaN forceKillAfter', ['/bin/true', [], { forceKillAfter: Number.NaN }], EITHER],
];

describe('spawn() with bad arguments', () => {
  let fdsBefore: number;
  let fdListBefore: Record<number, string>;
  let childrenBefore: number[];
  beforeAll(() => {
    // load everything lazily loaded first, so the count compares like with like
    thrownBy([123]);
    fdsBefore = fdCount();
    fdListBefore = describeFds();
    childrenBefore = childrenOf();
  });

  it.each(cases)('%s: TypeError', (_name, args, code) => {
    const error = thrownBy(args) as TypeError & { code?: string };
    expect(error).toBeInstanceOf(TypeError);
    expect(Array.isArray(code) ? code : [code]).toContain(error.code);
    expect(error.message.length).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await Promise.all(started);
    // every case above threw before anything started
    expect(childrenOf()).toEqual(childrenBefore);
    expect({ count: fdCount(), fds: describeFds() }).toEqual({
      count: fdsBefore,
      fds: fdListBefore,
    });
  });
});

describe('exec() with bad arguments', () => {
  async function failure(args: unknown[]): Promise<any> {
    try {
      await (exec as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (error) {
      return error;
    }
    throw new Error('expected exec() to fail');
  }

  it.each([
    ['a number as file', [1], TYPE],
    ['a number as input', ['/bin/cat', [], { input: 5 }], TYPE],
    ['an unknown encoding', ['/bin/cat', [], { encoding: 'latin9' }], VALUE],
    ['a negative maxBuffer', ['/bin/cat', [], { maxBuffer: -1 }], EITHER],
    ['a string as reject', ['/bin/cat', [], { reject: 'no' }], TYPE],
  ] as [string, unknown[], string | string[]][])('%s: TypeError', async (_name, args, code) => {
    const error = await failure(args);
    expect(error).toBeInstanceOf(TypeError);
    expect(Array.isArray(code) ? code : [code]).toContain(error.code);
  });
});
