// execSync / spawnSync: a child run to its end on the calling thread.
import { spawn as cpSpawn } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { capabilities, ExitError, execSync, SpawnError, spawn, spawnSync } from '../src/index.js';
import {
  childrenOf,
  describeFds,
  distEntry,
  fdCount,
  fixture,
  identify,
  procStat,
  runNode,
  stillThere,
  trackChildren,
  waitFor,
} from './helpers/proc.js';

const track = trackChildren();

function thrown(run: () => unknown): any {
  try {
    run();
  } catch (error) {
    if (error instanceof ExitError) track(error);
    return error;
  }
  throw new Error('expected an exception');
}

/** Kills a process this test left running outside its own children (by pid, once). */
function killStray(pid: number): void {
  if (procStat(pid)?.comm === 'sleep') process.kill(pid, 'SIGKILL');
}

describe('execSync()', () => {
  it('returns the Output: status, stdout and stderr', () => {
    const output = track(execSync('/bin/sh', ['-c', 'printf out; printf err >&2']));
    expect(output).toMatchObject({
      code: 0,
      signal: null,
      coreDumped: false,
      timedOut: false,
      aborted: false,
      stdout: 'out',
      stderr: 'err',
    });
    expect(output.pid).toBeGreaterThan(0);
    expect(output.durationMs).toBeGreaterThan(0);
    expect(output.resourceUsage?.maxRSS).toBeGreaterThan(0);
  });

  it('throws ExitError for a non-zero code, with the stderr tail in the message', () => {
    const error = thrown(() => execSync('sh', ['-c', 'echo so-far; echo why >&2; exit 3']));
    expect(error).toBeInstanceOf(ExitError);
    expect(error).toMatchObject({ code: 3, signal: null, stdout: 'so-far\n', stderr: 'why\n' });
    expect(error.shortMessage).toBe(
      "Command failed with exit code 3: sh -c 'echo so-far; echo why >&2; exit 3'",
    );
    expect(error.message).toBe(`${error.shortMessage}\n\nwhy`);
  });

  it('throws ExitError for a signal', () => {
    const error = thrown(() => execSync('sh', ['-c', 'kill -s KILL $$']));
    expect(error).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(error.message).toContain('SIGKILL');
  });

  it('writes input to stdin, a string or bytes, larger than a pipe holds', () => {
    expect(track(execSync('cat', { input: 'hello' })).stdout).toBe('hello');
    const bytes = new Uint8Array([0, 1, 2, 250]);
    expect([
      ...(track(execSync('cat', { input: bytes, encoding: 'buffer' })).stdout as Buffer),
    ]).toEqual([0, 1, 2, 250]);
    const big = 'x'.repeat(3 * 1024 * 1024);
    expect(
      track(execSync('wc', ['-c'], { input: big }))
        .stdout.toString()
        .trim(),
    ).toBe(String(big.length));
    // No input: stdin is /dev/null, so cat ends at once.
    expect(track(execSync('cat')).stdout).toBe('');
  });

  it('survives a child that exits without reading its input', () => {
    const output = track(spawnSync('true', { input: 'x'.repeat(4 * 1024 * 1024) }));
    expect(output.code).toBe(0);
  });

  it('kills the child past maxBuffer', () => {
    const error = thrown(() => execSync('yes', { maxBuffer: 1000 }));
    expect(error).toBeInstanceOf(ExitError);
    expect(error.isMaxBuffer).toBe(true);
    expect(error.stdout.length).toBe(1000);
    const output = track(spawnSync('sh', ['-c', 'exec yes >&2'], { maxBuffer: 500 }));
    expect(output.isMaxBuffer).toBe(true);
    expect(output.stderr.length).toBe(500);
  });

  it('cuts text at maxBuffer on a whole character, as exec does', () => {
    const output = track(
      spawnSync('sh', ['-c', "while :; do printf '\\342\\202\\254'; done"], { maxBuffer: 100 }),
    );
    expect(output.isMaxBuffer).toBe(true);
    expect(output.stdout).toBe('€'.repeat(33));
  });

  it('stops a child past maxBuffer with killSignal, not by closing its pipe first', () => {
    // With the pipe closed before the signal, a writer's next write raised SIGPIPE,
    // which it took first: most often with tree: true, where the signal takes longer.
    const signals = new Set<string | null>();
    for (let i = 0; i < 40; i++) {
      const tree = i % 2 === 0;
      signals.add(track(spawnSync('yes', [], { maxBuffer: 1000, tree })).signal);
    }
    expect([...signals]).toEqual(['SIGTERM']);
    const output = track(spawnSync('yes', [], { maxBuffer: 1000, killSignal: 'SIGINT' }));
    expect(output.signal).toBe('SIGINT');
  });

  it('returns Buffers with encoding: buffer, and runs through a shell', () => {
    const output = track(
      execSync('printf \'\\377%s\' "$1"', ['a b'], { shell: true, encoding: 'buffer' }),
    );
    expect([...(output.stdout as Buffer)]).toEqual([0xff, 0x61, 0x20, 0x62]);
  });

  it('passes spawn options through: cwd, env', () => {
    const output = track(
      execSync('/bin/sh', ['-c', 'printf "%s %s" "$PWD" "$ONLY"'], {
        cwd: '/',
        env: { ONLY: 'this' },
      }),
    );
    expect(output.stdout).toBe('/ this');
  });

  it('throws SpawnError for a command that cannot start', () => {
    const missing = thrown(() => execSync('/nonexistent/pidwatch'));
    expect(missing).toBeInstanceOf(SpawnError);
    expect(missing).toMatchObject({
      code: 'ENOENT',
      syscall: 'execve',
      path: '/nonexistent/pidwatch',
    });
    const noPath = thrown(() => spawnSync('no-such-command-pidwatch', { reject: false }));
    expect(noPath).toBeInstanceOf(SpawnError);
    const badCwd = thrown(() => spawnSync('true', { cwd: '/nonexistent/dir' }));
    expect(badCwd).toMatchObject({ code: 'ENOENT', syscall: 'chdir', path: '/nonexistent/dir' });
  });

  it('rejects bad arguments with a TypeError', () => {
    for (const run of [
      () => execSync(42 as never),
      () => execSync('true', ['a\0b']),
      () => execSync('true', { timeout: -1 }),
      () => execSync('true', { input: 42 as never }),
      () => execSync('true', { signal: new AbortController().signal }),
      () => execSync('true', { stdio: 'inherit' } as never),
      () => spawnSync('true', { stdio: 'inherit' } as never),
    ]) {
      expect(run).toThrow(expect.objectContaining({ name: 'TypeError' }));
    }
  });
});

describe('spawnSync()', () => {
  it('returns failures instead of throwing', () => {
    expect(track(spawnSync('sh', ['-c', 'echo e >&2; exit 4']))).toMatchObject({
      code: 4,
      stderr: 'e\n',
    });
    expect(track(spawnSync('sh', ['-c', 'kill -s TERM $$']))).toMatchObject({
      code: null,
      signal: 'SIGTERM',
    });
  });

  it('times out a child that ignores SIGTERM: SIGKILL after forceKillAfter', () => {
    const t0 = performance.now();
    const output = track(
      spawnSync(fixture('ignore-term.sh'), ['60'], { timeout: 100, forceKillAfter: 100 }),
    );
    const elapsed = performance.now() - t0;
    expect(output).toMatchObject({
      timedOut: true,
      code: null,
      signal: 'SIGKILL',
      stdout: 'ready\n',
    });
    expect(elapsed).toBeGreaterThanOrEqual(200 - 5); // SIGTERM did not end it: SIGKILL did
    expect(elapsed).toBeLessThan(30_000); // and it was not waited out
  });

  it('sends killSignal at the timeout', () => {
    const output = track(spawnSync('sleep', ['60'], { timeout: 50, killSignal: 'SIGINT' }));
    expect(output).toMatchObject({ timedOut: true, signal: 'SIGINT' });
    const error = thrown(() => execSync('sleep', ['60'], { timeout: 50 }));
    expect(error).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    expect(error.shortMessage).toMatch(/^Command timed out \(SIGTERM\)/);
  });

  it('does not wait past the exit for output a descendant still holds, once timed out', () => {
    // The shell's background sleep keeps stdout open; the shell itself is killed.
    const t0 = performance.now();
    const output = track(
      spawnSync('sh', ['-c', 'sleep 60 & echo $!; exec sleep 60'], {
        timeout: 100,
        forceKillAfter: 300,
      }),
    );
    const elapsed = performance.now() - t0;
    killStray(Number(output.stdout.toString().trim()));
    expect(output).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    expect(elapsed).toBeLessThan(100 + 300 + 100 + 50); // timeout + forceKillAfter + 100 ms, and slack
  });

  it('leaves no fd and no zombie after 1,000 calls', () => {
    const before = fdCount();
    const fds = describeFds();
    for (let i = 0; i < 1000; i++) {
      const output = spawnSync('/bin/sh', ['-c', i % 2 ? 'exit 1' : 'echo x'], {
        input: i % 3 ? 'in' : undefined,
      });
      if (output.code !== i % 2) throw new Error(`call ${i}: code ${output.code}`);
    }
    expect(fdCount()).toBe(before);
    expect(describeFds()).toEqual(fds);
    expect(childrenOf()).toEqual([]);
  });

  it("never takes another child's exit status", async () => {
    // An async pidwatch child and a child_process child exit while execSync blocks.
    const async = track(spawn('sh', ['-c', 'exit 7'], { stdio: 'ignore' }));
    const cp = cpSpawn('sh', ['-c', 'exit 9'], { stdio: 'ignore' });
    const cpExit = once(cp, 'exit');
    for (let i = 0; i < 20; i++) track(execSync('sh', ['-c', 'sleep 0.01']));
    expect((await async.exited).code).toBe(7);
    expect((await cpExit)[0]).toBe(9);
  });

  it('works in a worker thread', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       import(${JSON.stringify(distEntry)}).then(({ execSync }) => {
         const out = execSync('sh', ['-c', 'echo from-worker; exit 0']);
         parentPort.postMessage({ pid: out.pid, code: out.code, stdout: out.stdout });
       });`,
      { eval: true },
    );
    // Listened for at once: the exit may come in the same turn as the message.
    const exited = once(worker, 'exit');
    const [message] = (await once(worker, 'message')) as [
      { pid: number; code: number; stdout: string },
    ];
    track(message);
    expect(message).toMatchObject({ code: 0, stdout: 'from-worker\n' });
    expect(await exited).toEqual([0]);
  });

  it("works in a process.on('exit') handler", async () => {
    const script = `
      import(${JSON.stringify(distEntry)}).then(({ execSync }) => {
        process.on('exit', () => {
          const out = execSync('sh', ['-c', 'echo at-exit']);
          process.stdout.write('handler got ' + out.stdout);
        });
      });`;
    const result = await runNode(['-e', script]);
    expect(result).toMatchObject({ code: 0, stdout: 'handler got at-exit\n' });
  });

  it('leaves nothing running after a timeout', async () => {
    const output = track(spawnSync('sleep', ['60'], { timeout: 20 }));
    await waitFor(() => procStat(output.pid) === null, 'the child to be gone');
    expect(childrenOf()).toEqual([]);
  });
});

describe('execSync() with tree: true', () => {
  const mechanism = () => (capabilities().cgroup ? 'cgroup' : 'pgroup');

  for (const forced of [false, true]) {
    const label = forced ? ' (PIDWATCH_CGROUP=0: a process group)' : '';
    const expected = () => (forced ? 'pgroup' : mechanism());

    it(`kills what is left of the tree when the child exits${label}`, async () => {
      const saved = process.env.PIDWATCH_CGROUP;
      if (forced) process.env.PIDWATCH_CGROUP = '0';
      try {
        // Without the tree, the background sleep would hold stdout open for 60 s.
        const output = track(execSync('sh', ['-c', 'sleep 60 & echo $!'], { tree: true }));
        const stray = identify(Number(output.stdout.toString().trim()));
        expect(output.tree).toMatchObject({ mechanism: expected(), leftovers: 1 });
        await waitFor(
          () => !stillThere(stray) || procStat(stray.pid)?.state === 'Z',
          'the leftover to die',
        );
      } finally {
        if (saved === undefined) delete process.env.PIDWATCH_CGROUP;
        else process.env.PIDWATCH_CGROUP = saved;
      }
    });

    it(`sends the timeout's signals to the whole tree${label}`, async () => {
      const saved = process.env.PIDWATCH_CGROUP;
      if (forced) process.env.PIDWATCH_CGROUP = '0';
      try {
        const output = track(
          spawnSync('sh', ['-c', 'trap "" TERM; sleep 60 & echo $!; sleep 60'], {
            tree: true,
            timeout: 100,
            forceKillAfter: 100,
          }),
        );
        const stray = identify(Number(output.stdout.toString().trim()));
        expect(output).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
        expect(output.tree?.mechanism).toBe(expected());
        await waitFor(
          () => !stillThere(stray) || procStat(stray.pid)?.state === 'Z',
          'the tree to die',
        );
      } finally {
        if (saved === undefined) delete process.env.PIDWATCH_CGROUP;
        else process.env.PIDWATCH_CGROUP = saved;
      }
    });
  }

  it('reports the tree only when asked for', () => {
    expect(track(execSync('true')).tree).toBeNull();
    const output = track(execSync('true', { tree: true }));
    expect(output.tree).toMatchObject({ mechanism: mechanism(), leftovers: 0 });
    if (output.tree?.mechanism === 'cgroup') expect(output.tree.userCPUTime).not.toBeNull();
  });
});
