// Random input to every public function and option (fast-check): each call works
// or throws TypeError (ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE), SpawnError,
// ProcessGoneError (or, for exec, rejects with ExitError). Never a crash, a hang,
// a leaked fd or a process left behind.
import { closeSync, openSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExitError,
  exec,
  ProcessGoneError,
  SpawnError,
  type Subprocess,
  spawn,
  watch,
} from '../../src/index.js';
import { describeFds, fdCount, trackChildren, waitFor } from '../helpers/proc.js';

const track = trackChildren();
let devNull: number;
let fdsBefore: number;

beforeAll(() => {
  devNull = openSync('/dev/null', 'r+');
  fdsBefore = fdCount();
});

afterAll(async () => {
  closeSync(devNull);
  // Pipes close once their streams have ended: wait for that, then compare.
  await waitFor(() => fdCount() === fdsBefore - 1, 'the fd count to come back').catch(() => {});
  expect(fdCount(), JSON.stringify(describeFds())).toBe(fdsBefore - 1);
});

/** What a call may throw. Anything else fails the property. */
function expectAllowed(error: unknown): void {
  if (error instanceof TypeError) {
    const code = (error as { code?: unknown }).code;
    expect(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE'], String(error)).toContain(code);
    return;
  }
  if (error instanceof SpawnError) {
    expect(error.code, String(error)).toMatch(/^E[A-Z0-9]+$/);
    return;
  }
  if (error instanceof ProcessGoneError || error instanceof ExitError) return;
  throw error;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Programs that write nothing on their own, so no fd handed over at random is
// ever written to; `sleep 60` is always killed.
const program = fc.constantFrom(
  '/bin/true',
  'true',
  '/bin/false',
  'sleep',
  '/nonexistent',
  '/dev/null',
  '/',
  '',
  'a\0b',
);
const goodProgram = fc.constantFrom('/bin/true', 'true', '/bin/false', 'sleep', '/nonexistent');
const sleepArgs = fc.constantFrom(['0'], ['0.01'], ['60']);
const anyValue = fc.anything({
  withBigInt: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
});

/** Mostly what the option takes (valid or not), now and then anything at all: with a
 * dozen options at once, most calls should get past the argument checks. */
function mostly(...choices: fc.Arbitrary<unknown>[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.oneof(...choices) },
    { weight: 1, arbitrary: anyValue },
  );
}

const signalValue = fc.oneof(
  fc.constantFrom('SIGTERM', 'SIGKILL', 'SIGINT', 'SIGBOGUS', 'sigterm', '', 'SIGSTOP'),
  fc.constantFrom(0, 1, 9, 15, 19, -1, 31, 32, 64, 65, 1.5, Number.NaN, 2 ** 31),
  anyValue,
);

const stdioEntry = () =>
  fc.oneof(
    fc.constantFrom(
      'pipe',
      'inherit',
      'ignore',
      null,
      undefined,
      'bogus',
      -1,
      1e9,
      0.5,
      Number.NaN,
    ),
    fc.constant(devNull),
    anyValue,
  );

const options = () =>
  fc.oneof(
    { weight: 1, arbitrary: anyValue },
    {
      weight: 4,
      arbitrary: fc.record(
        {
          cwd: mostly(
            fc.constantFrom(
              '/',
              '/tmp',
              '/nonexistent',
              'a\0b',
              new URL('file:///tmp'),
              new URL('http://x/'),
            ),
          ),
          env: mostly(
            fc.dictionary(fc.string(), mostly(fc.string(), fc.constant(undefined))),
            fc.constant({ PATH: '/usr/bin:/bin' }),
          ),
          argv0: mostly(fc.string()),
          stdio: mostly(
            fc.constantFrom('pipe', 'inherit', 'ignore', 'bogus'),
            fc.array(stdioEntry(), { maxLength: 6 }),
          ),
          detached: mostly(fc.boolean()),
          uid: mostly(fc.integer({ min: -1, max: 70_000 })),
          gid: mostly(fc.integer({ min: -1, max: 70_000 })),
          signal: mostly(
            fc.constant(undefined).map(() => AbortSignal.abort()),
            fc.constant(undefined).map(() => new AbortController().signal),
          ),
          timeout: mostly(fc.integer({ min: -5, max: 50 }), fc.double()),
          killSignal: mostly(signalValue),
          forceKillAfter: mostly(fc.constant(false), fc.integer({ min: -1, max: 100 })),
          killOnParentExit: mostly(fc.boolean()),
        },
        { requiredKeys: [] },
      ),
    },
  );

const fileArg = fc.oneof({ weight: 4, arbitrary: program }, { weight: 1, arbitrary: anyValue });
const argsArg = fc.oneof(
  { weight: 3, arbitrary: sleepArgs },
  { weight: 1, arbitrary: fc.array(fc.string(), { maxLength: 3 }) },
  { weight: 1, arbitrary: anyValue },
);

/** Ends a process that did start and waits for its reap. */
async function finish(proc: Subprocess): Promise<void> {
  proc.kill('SIGKILL');
  proc.stdin?.destroy();
  for (const stream of proc.stdio) if (stream && 'resume' in stream) stream.resume();
  await within(proc.exited, 10_000, `the exit of ${proc.pid}`);
}

describe('random input', () => {
  it('spawn(file, args, options)', async () => {
    const outcomes = { started: 0, TypeError: 0, SpawnError: 0 };
    await fc.assert(
      fc.asyncProperty(fileArg, argsArg, options(), async (file, args, opts) => {
        let proc: Subprocess;
        try {
          proc = track(spawn(file as string, args as string[], opts as never));
        } catch (error) {
          expectAllowed(error);
          if (error instanceof TypeError) outcomes.TypeError++;
          if (error instanceof SpawnError) outcomes.SpawnError++;
          return;
        }
        outcomes.started++;
        expect(proc.pid).toBeGreaterThan(0);
        await finish(proc);
      }),
      { numRuns: 200 },
    );
    // The generators reach every outcome, not only the argument checks.
    expect(outcomes.started, JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(outcomes.SpawnError, JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(outcomes.TypeError, JSON.stringify(outcomes)).toBeGreaterThan(0);
  });

  it('spawn() with valid options in random combinations', async () => {
    const valid = fc.record(
      {
        cwd: fc.constantFrom('/', '/tmp', '/nonexistent', new URL('file:///tmp')),
        env: fc.constantFrom({ PATH: '/usr/bin:/bin' }, { PATH: '/nonexistent' }, {}),
        argv0: fc.string().filter((text) => !text.includes('\0')),
        stdio: fc.oneof(
          fc.constantFrom('pipe', 'inherit', 'ignore'),
          fc.array(
            fc.oneof(
              fc.constantFrom('pipe', 'inherit', 'ignore', null, undefined),
              fc.constant(0).map(() => devNull),
            ),
            { maxLength: 6 },
          ),
        ),
        detached: fc.boolean(),
        uid: fc.constantFrom(0, 65534),
        gid: fc.constantFrom(0, 65534),
        signal: fc
          .constantFrom(undefined, 'aborted', 'live')
          .map((kind) =>
            kind === undefined
              ? undefined
              : kind === 'aborted'
                ? AbortSignal.abort()
                : new AbortController().signal,
          ),
        timeout: fc.integer({ min: 1, max: 50 }),
        killSignal: fc.constantFrom('SIGTERM', 'SIGKILL', 'SIGINT', 9, 15),
        forceKillAfter: fc.oneof(fc.constant(false), fc.integer({ min: 0, max: 100 })),
        killOnParentExit: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    let started = 0;
    await fc.assert(
      fc.asyncProperty(goodProgram, sleepArgs, valid, async (file, args, opts) => {
        let proc: Subprocess;
        try {
          proc = track(spawn(file, args, opts as never));
        } catch (error) {
          expectAllowed(error);
          expect(error).not.toBeInstanceOf(TypeError);
          return;
        }
        started++;
        const status = await within(
          proc.exited.then(() => proc.exited),
          // (a timeout of seconds or more is waited out in full, as asked: not here)
          (opts.timeout !== undefined && !(Number(opts.timeout) >= 5000)) ||
            file !== 'sleep' ||
            args[0] !== '60'
            ? 10_000
            : 0,
          'the exit',
        ).catch(async () => {
          await finish(proc);
          return proc.exited;
        });
        expect((status.code === null) !== (status.signal === null)).toBe(true);
      }),
      { numRuns: 100 },
    );
    expect(started).toBeGreaterThan(0);
  });

  it('spawn(file, options) and spawn with fewer arguments', async () => {
    await fc.assert(
      fc.asyncProperty(fileArg, fc.oneof(options(), fc.constant(undefined)), async (file, opts) => {
        for (const call of [
          () => spawn(file as string, opts as never),
          () => spawn(file as string),
        ]) {
          let proc: Subprocess;
          try {
            proc = track(call());
          } catch (error) {
            expectAllowed(error);
            continue;
          }
          await finish(proc);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('exec(file, args, options) with its own options', async () => {
    const execOptions = fc.oneof(
      options(),
      fc.record(
        {
          input: fc.oneof(fc.string(), fc.uint8Array(), anyValue),
          encoding: fc.oneof(fc.constantFrom('utf8', 'buffer', 'latin1', 'bogus'), anyValue),
          maxBuffer: fc.oneof(fc.integer({ min: -1, max: 100 }), anyValue),
          reject: fc.oneof(fc.boolean(), anyValue),
          timeout: fc.constantFrom(undefined, 1, 1000),
        },
        { requiredKeys: [] },
      ),
    );
    // Only short programs: exec waits for the end.
    const shortArgs = fc.oneof(
      fc.constantFrom(['0'], ['0.01']),
      fc.array(fc.string(), { maxLength: 2 }),
      anyValue,
    );
    await fc.assert(
      fc.asyncProperty(fileArg, shortArgs, execOptions, async (file, args, opts) => {
        // exec() gives no handle to end the process: a random killSignal such as
        // SIGSTOP with no escalation would leave it stopped forever, so every exec
        // ends within its timeout plus a SIGKILL shortly after.
        const capped =
          opts && typeof opts === 'object' && !Array.isArray(opts)
            ? { ...opts, timeout: 2000, forceKillAfter: 100 }
            : opts;
        let promise: Promise<unknown>;
        try {
          promise = exec(file as string, args as string[], capped as never);
        } catch (error) {
          expectAllowed(error);
          return;
        }
        await within(promise, 10_000, 'exec').catch(expectAllowed);
      }),
      { numRuns: 150 },
    );
  });

  it('kill(signal) on a running process, then on a reaped one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(signalValue, { minLength: 1, maxLength: 4 }), async (signals) => {
        const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
        for (const signal of signals) {
          try {
            expect(typeof proc.kill(signal as never)).toBe('boolean');
          } catch (error) {
            expectAllowed(error);
          }
        }
        proc.kill('SIGKILL');
        proc.kill('SIGCONT');
        await within(proc.exited, 10_000, 'the exit');
        for (const signal of signals) {
          try {
            expect(proc.kill(signal as never)).toBe(false);
          } catch (error) {
            expectAllowed(error);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('watch(pid, options): only probed with signal 0, then closed', async () => {
    const pidValue = fc.oneof(
      fc.integer({ min: -5, max: 4_194_304 }),
      fc.constantFrom(process.pid, process.ppid, 1, 0, -1, 2 ** 31, 1.5, Number.NaN, Infinity),
      anyValue,
    );
    await fc.assert(
      fc.asyncProperty(pidValue, fc.oneof(fc.constant(undefined), anyValue), async (pid, opts) => {
        let watched: ReturnType<typeof watch>;
        try {
          watched = watch(pid as number, opts as never);
        } catch (error) {
          expectAllowed(error);
          return;
        }
        expect(typeof watched.kill(0)).toBe('boolean');
        watched.unref();
        watched.close();
        await within(
          watched.exited.then(
            () => undefined,
            () => undefined,
          ),
          5000,
          'a closed watch',
        );
      }),
      { numRuns: 200 },
    );
  });
});
