// Ending a process: kill(), timeout, AbortSignal, forceKillAfter and disposal.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { spawn } from '../src/index.js';
import { fixture, identify, stillThere, trackChildren, waitForLine } from './helpers/proc.js';

const track = trackChildren();

/** sh that ignores SIGTERM; resolves once its trap is set. */
async function stubborn(options: Parameters<typeof spawn>[2] = {}) {
  const proc = track(spawn('/bin/sh', [fixture('ignore-term.sh')], { ...options }));
  await waitForLine(proc.stdout!, 'ready');
  return proc;
}

describe('kill()', () => {
  it('sends SIGTERM by default and returns true', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.kill()).toBe(true);
    expect(await proc.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
  });

  it('takes a signal number', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.kill(9)).toBe(true);
    expect((await proc.exited).signal).toBe('SIGKILL');
  });

  it('probes with signal 0: true while running, the process untouched', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    expect(proc.kill(0)).toBe(true);
    expect(proc.kill(0)).toBe(true);
    expect(proc.exitCode).toBeNull();
    proc.kill('SIGKILL');
    expect((await proc.exited).signal).toBe('SIGKILL');
  });

  it('returns false once the process has been reaped, for any signal', async () => {
    const proc = track(spawn('/bin/true', [], { stdio: 'ignore' }));
    await proc.exited;
    expect(proc.kill()).toBe(false);
    expect(proc.kill('SIGKILL')).toBe(false);
    expect(proc.kill(0)).toBe(false);
  });

  it('throws a TypeError for an unknown signal name, running or not', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
    for (const bad of ['SIGBOGUS', 'TERM-ish', '', 'sigterm ']) {
      let error: unknown;
      try {
        proc.kill(bad as NodeJS.Signals);
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(TypeError);
      expect(['ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_UNKNOWN_SIGNAL']).toContain(
        (error as { code?: string }).code,
      );
    }
    expect(proc.kill(0)).toBe(true);
    proc.kill('SIGKILL');
    await proc.exited;
    expect(() => proc.kill('SIGBOGUS' as NodeJS.Signals)).toThrow(TypeError);
  });
});

describe('timeout', () => {
  it('sends killSignal on expiry and reports timedOut', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore', timeout: 50 }));
    const status = await proc.exited;
    expect(status).toMatchObject({ signal: 'SIGTERM', code: null, timedOut: true, aborted: false });
    expect(status.durationMs).toBeGreaterThanOrEqual(40);
  });

  it('uses killSignal', async () => {
    const proc = track(
      spawn('sleep', ['60'], { stdio: 'ignore', timeout: 50, killSignal: 'SIGINT' }),
    );
    expect(await proc.exited).toMatchObject({ signal: 'SIGINT', timedOut: true });
  });

  it('does nothing to a process that ends in time', async () => {
    const proc = track(spawn('/bin/sh', ['-c', 'exit 6'], { stdio: 'ignore', timeout: 30_000 }));
    expect(await proc.exited).toMatchObject({ code: 6, timedOut: false });
  });

  it('waits out a timeout or forceKillAfter longer than Node keeps a timer (2^31-1 ms)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const long = track(spawn('sleep', ['0.2'], { stdio: 'ignore', timeout: 2 ** 31 }));
      expect(await long.exited).toMatchObject({ code: 0, timedOut: false });
      // The abort comes once SIGTERM is ignored: only a SIGKILL could end it early.
      const controller = new AbortController();
      const stubborn = track(
        spawn('/bin/sh', [fixture('ignore-term.sh'), '0.3'], {
          signal: controller.signal,
          forceKillAfter: 2 ** 40,
        }),
      );
      await waitForLine(stubborn.stdout!, 'ready');
      controller.abort();
      expect(await stubborn.exited).toMatchObject({ code: 0, signal: null, aborted: true });
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('escalates to SIGKILL after forceKillAfter when SIGTERM is ignored', async () => {
    // the timeout leaves ample time for the shell to set its trap first
    const proc = track(
      spawn('/bin/sh', [fixture('ignore-term.sh')], { timeout: 1500, forceKillAfter: 100 }),
    );
    await waitForLine(proc.stdout!, 'ready');
    const status = await proc.exited;
    expect(status).toMatchObject({ signal: 'SIGKILL', code: null, timedOut: true });
    expect(status.durationMs).toBeGreaterThanOrEqual(1400);
  });
});

describe('AbortSignal', () => {
  it('sends killSignal on abort and reports aborted', async () => {
    const controller = new AbortController();
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore', signal: controller.signal }));
    controller.abort();
    expect(await proc.exited).toMatchObject({ signal: 'SIGTERM', aborted: true, timedOut: false });
  });

  it('escalates to SIGKILL after forceKillAfter when SIGTERM is ignored', async () => {
    const controller = new AbortController();
    const proc = await stubborn({ signal: controller.signal, forceKillAfter: 50 });
    controller.abort();
    expect(await proc.exited).toMatchObject({ signal: 'SIGKILL', code: null, aborted: true });
  });

  it('leaves it at killSignal with forceKillAfter: false', async () => {
    const controller = new AbortController();
    const proc = track(
      spawn(process.execPath, [fixture('term-echo.mjs')], {
        signal: controller.signal,
        forceKillAfter: false,
      }),
    );
    await waitForLine(proc.stdout!, 'ready');
    const term = waitForLine(proc.stdout!, 'term');
    controller.abort();
    await term;
    // nothing else comes: still alive a while later, ending only on its own terms
    await delay(300);
    expect(proc.kill(0)).toBe(true);
    expect(proc.exitCode).toBeNull();
    proc.stdin!.end();
    expect(await proc.exited).toMatchObject({ code: 3, signal: null, aborted: true });
  });

  it('does nothing once the process has exited', async () => {
    const controller = new AbortController();
    const proc = track(spawn('/bin/true', [], { stdio: 'ignore', signal: controller.signal }));
    const status = await proc.exited;
    controller.abort();
    expect(status).toMatchObject({ code: 0, aborted: false });
  });

  it('kills at once when given an already-aborted signal, or refuses to start', async () => {
    let proc: ReturnType<typeof spawn>;
    try {
      proc = spawn('sleep', ['60'], { stdio: 'ignore', signal: AbortSignal.abort() });
    } catch (error) {
      expect((error as Error).name).toBe('AbortError');
      return;
    }
    track(proc);
    expect(await proc.exited).toMatchObject({ aborted: true, signal: 'SIGTERM' });
  });
});

describe('disposal', () => {
  it('await using kills and reaps the process at the end of the block', async () => {
    let id: ReturnType<typeof identify>;
    let seen: ReturnType<typeof spawn>;
    {
      await using proc = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
      seen = proc;
      id = identify(proc.pid);
      expect(proc.kill(0)).toBe(true);
    }
    expect(stillThere(id)).toBe(false);
    expect(seen.signalCode).toBe('SIGTERM');
  });

  it('await using escalates to SIGKILL for a process that ignores SIGTERM', async () => {
    let seen: ReturnType<typeof spawn>;
    {
      await using proc = await stubborn({ forceKillAfter: 50 });
      seen = proc;
    }
    expect(seen.signalCode).toBe('SIGKILL');
    expect(seen.pidfd).toBeNull();
  });

  it('Symbol.asyncDispose, called directly, kills with killSignal and waits', async () => {
    const proc = track(spawn('sleep', ['60'], { stdio: 'ignore', killSignal: 'SIGUSR2' }));
    await proc[Symbol.asyncDispose]();
    expect(proc.signalCode).toBe('SIGUSR2');
  });

  it('Symbol.asyncDispose of an exited process leaves its status alone', async () => {
    const proc = track(spawn('/bin/sh', ['-c', 'exit 5'], { stdio: 'ignore' }));
    await proc.exited;
    await proc[Symbol.asyncDispose]();
    expect(proc.exitCode).toBe(5);
    expect((await proc.exited).code).toBe(5);
  });
});
