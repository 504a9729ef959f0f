// One adapter per competitor, all with the same shape, so that a scenario runs the
// same code for each: start(file, args) -> { pid, exited: Promise<void>, kill() }.
// Every competitor runs with stdio 'ignore' on all three fds: no pipes to set up,
// read or close, and 10,000 children plus 2,000 idle ones fit under `ulimit -n`.

/** @typedef {{ pid: number, exited: Promise<void>, kill(): void }} Started */

// The bench only ever sees `true` and `sleep` exit 0 or die of its SIGKILL; anything
// else means the measurement is wrong, so it fails the run.
function settle(resolve, reject, file, code, signal) {
  if (code === 0 || signal === 'SIGKILL') resolve();
  else reject(new Error(`${file} ended with code ${code}, signal ${signal}`));
}

function childProcessAdapter(cp) {
  return {
    start(file, args) {
      const child = cp.spawn(file, args, { stdio: 'ignore' });
      const exited = new Promise((resolve, reject) => {
        child.once('exit', (code, signal) => settle(resolve, reject, file, code, signal));
        child.once('error', reject);
      });
      return { pid: child.pid, exited, kill: () => child.kill('SIGKILL') };
    },
  };
}

function execaAdapter(execa) {
  return {
    start(file, args) {
      const subprocess = execa(file, args, { stdio: 'ignore', reject: false });
      const exited = new Promise((resolve, reject) => {
        subprocess.then((r) => settle(resolve, reject, file, r.exitCode ?? null, r.signal ?? null));
      });
      return { pid: subprocess.pid, exited, kill: () => subprocess.kill('SIGKILL') };
    },
  };
}

function pidwatchAdapter(pidwatch) {
  return {
    start(file, args) {
      const proc = pidwatch.spawn(file, args, { stdio: 'ignore' });
      const exited = new Promise((resolve, reject) => {
        proc.exited.then((s) => settle(resolve, reject, file, s.code, s.signal), reject);
      });
      return { pid: proc.pid, exited, kill: () => proc.kill('SIGKILL') };
    },
  };
}

function bunAdapter() {
  return {
    start(file, args) {
      const proc = globalThis.Bun.spawn([file, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
      const exited = new Promise((resolve, reject) => {
        proc.exited.then(
          () => settle(resolve, reject, file, proc.exitCode, proc.signalCode),
          reject,
        );
      });
      return { pid: proc.pid, exited, kill: () => proc.kill('SIGKILL') };
    },
  };
}

/**
 * Loads one competitor by name. Returns the adapter and a few facts for the report
 * (the version, and for pidwatch the watcher mode it chose).
 */
export async function loadCompetitor(name) {
  switch (name) {
    case 'child_process': {
      const cp = await import('node:child_process');
      return { adapter: childProcessAdapter(cp), info: { version: process.version } };
    }
    case 'execa': {
      const { execa } = await import('execa');
      const { readFileSync } = await import('node:fs');
      const manifest = new URL('package.json', import.meta.resolve('execa'));
      const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
      return { adapter: execaAdapter(execa), info: { version } };
    }
    case 'pidwatch':
    case 'pidwatch-sigchld': {
      const pidwatch = await import('../../dist/index.js');
      const mode = pidwatch.capabilities().mode;
      const wanted = name === 'pidwatch' ? 'pidfd' : 'sigchld';
      if (mode !== wanted) throw new Error(`pidwatch runs in ${mode} mode, expected ${wanted}`);
      return { adapter: pidwatchAdapter(pidwatch), info: { mode } };
    }
    case 'bun':
      if (globalThis.Bun === undefined) throw new Error('the bun runner must run under bun');
      return { adapter: bunAdapter(), info: { version: globalThis.Bun.version } };
    default:
      throw new Error(`unknown competitor ${name}`);
  }
}
