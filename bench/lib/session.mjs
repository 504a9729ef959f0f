// One competitor's process for one scenario, driven round by round over its stdin
// and stdout (the protocol is described in bench/runner.mjs). It runs under the
// reaper, so a SIGTERM to the session kills and reaps everything it started.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const live = new Set();

/** Stops every session still running: for SIGINT/SIGTERM of the orchestrator. */
export function stopAll() {
  for (const s of live) s.stop();
  return live.size;
}

export class Session {
  #child;
  #lines = [];
  #waiting = null;
  #stderr = '';
  #closed;

  constructor(reaper, argv, env) {
    this.#child = spawn(reaper, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this);
    this.#child.stdin.on('error', () => {});
    this.#child.stderr.setEncoding('utf8').on('data', (d) => {
      this.#stderr = (this.#stderr + d).slice(-4000);
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      this.#lines.push(line);
      this.#wake();
    });
    this.#closed = new Promise((resolve) => {
      this.#child.on('close', (code, signal) => {
        live.delete(this);
        this.exit = code ?? signal;
        resolve();
        this.#wake();
      });
    });
  }

  #wake() {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }

  /** The next JSON line the program prints; throws on exit, bad output or timeout. */
  async next(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.exit !== undefined) throw new Error(`exit ${this.exit}${this.#tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs / 1000} s${this.#tail()}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const line = this.#lines.shift();
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`unexpected output: ${line.slice(0, 200)}`);
    }
  }

  /** The error message the program printed (the first line naming an error), if any. */
  #tail() {
    const lines = this.#stderr.trim().split('\n');
    const line = lines.find((l) => /error|timed out|reaper:/i.test(l)) ?? lines[0];
    return line ? `: ${line.trim().slice(0, 200)}` : '';
  }

  send(command) {
    this.#child.stdin.write(`${command}\n`);
  }

  /** Runs one round and returns its figures. */
  async round(timeoutMs) {
    this.send('round');
    return this.next(timeoutMs);
  }

  /** Asks for the teardown and waits for the process to end; returns its info. */
  async end(timeoutMs) {
    this.send('end');
    this.#child.stdin.end();
    try {
      const { info } = await this.next(timeoutMs);
      return info;
    } finally {
      const timer = setTimeout(() => this.stop(), timeoutMs);
      await this.#closed;
      clearTimeout(timer);
    }
  }

  /** SIGTERM to the reaper: it kills the program's process group and reaps it all. */
  stop() {
    if (this.exit === undefined) this.#child.kill('SIGTERM');
    return this.#closed;
  }
}
