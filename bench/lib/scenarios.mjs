// The scenarios as one competitor runs them, inside its own fresh process. A round
// returns its figures in the same units as the C floor programs (bench/floor/*.c),
// so the orchestrator treats every row alike.
import { setTimeout as delay } from 'node:timers/promises';

const TRUE = '/bin/true';
const SLEEP = '/bin/sleep';
const CHUNK = 256 * 1024 * 1024;

const now = () => process.hrtime.bigint();
const microseconds = (from, to) => Number(to - from) / 1e3;
const collectGarbage = () => globalThis.gc?.() ?? globalThis.Bun?.gc(true);

// Kept for the life of the process, so the memory stays resident.
const resident = [];

/** Touches `mib` MiB of Buffers, every page written, as a big application holds. */
function holdResident(mib) {
  let left = mib * 1024 * 1024;
  while (left > 0) {
    const size = Math.min(CHUNK, left);
    resident.push(Buffer.allocUnsafeSlow(size).fill(1));
    left -= size;
  }
}

async function runTrue(c, n) {
  for (let i = 0; i < n; i++) await c.start(TRUE, []).exited;
}

/** `sleep 1000` children that stay alive until stopIdle kills and reaps them. */
function startIdle(c, n) {
  const idle = [];
  for (let i = 0; i < n; i++) idle.push(c.start(SLEEP, ['1000']));
  return idle;
}

async function stopIdle(idle) {
  for (const p of idle) p.kill();
  await Promise.all(idle.map((p) => p.exited));
}

/** 1, 3, 4: sequential spawn+exit, optionally with memory held or idle children. */
async function seq(c, { n, warmup, resident: mib = 0, idle: idleCount = 0 }) {
  holdResident(mib);
  const idle = startIdle(c, idleCount);
  await runTrue(c, warmup);
  return {
    async round() {
      const t0 = now();
      await runTrue(c, n);
      return { usPerOp: microseconds(t0, now()) / n };
    },
    teardown: () => stopIdle(idle),
  };
}

/** 2: n spawns started together; the round ends when the last exit is seen. */
async function conc(c, { n }) {
  await runTrue(c, n / 10);
  return {
    async round() {
      const t0 = now();
      const started = [];
      for (let i = 0; i < n; i++) started.push(c.start(TRUE, []).exited);
      await Promise.all(started);
      return { ms: microseconds(t0, now()) / 1e3 };
    },
    async teardown() {},
  };
}

function quantile(sorted, q) {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

async function oneLatency(c, settleMs) {
  const p = c.start(SLEEP, ['1000']);
  await delay(settleMs);
  const t0 = now();
  p.kill();
  await p.exited;
  return microseconds(t0, now());
}

/** 5: kill(SIGKILL) to the exit seen in JS, with `idle` children alive. */
async function latency(c, { samples, idle: idleCount = 0, settle_ms: settleMs = 2 }) {
  const idle = startIdle(c, idleCount);
  for (let i = 0; i < samples / 10; i++) await oneLatency(c, settleMs);
  return {
    async round() {
      const v = [];
      for (let i = 0; i < samples; i++) v.push(await oneLatency(c, settleMs));
      v.sort((a, b) => a - b);
      return { p50: quantile(v, 0.5), p99: quantile(v, 0.99) };
    },
    teardown: () => stopIdle(idle),
  };
}

/**
 * 6: n sleepers started in one synchronous loop, as fast as the competitor spawns.
 * Time until the last exit is seen, parent CPU (user + system) per 1,000 children
 * over the whole round, and the RSS the parent grew by per child still unreaped
 * right after the loop (every child is still counted live by then).
 */
async function fanout(c, { n, sleep }) {
  const args = [String(sleep)];
  return {
    async round() {
      collectGarbage();
      const rss0 = process.memoryUsage.rss();
      const cpu0 = process.cpuUsage();
      const t0 = now();
      const started = [];
      for (let i = 0; i < n; i++) started.push(c.start(SLEEP, args).exited);
      const spawned = now();
      const rss1 = process.memoryUsage.rss();
      await Promise.all(started);
      const t1 = now();
      const cpu = process.cpuUsage(cpu0);
      return {
        lastExitMs: microseconds(t0, t1) / 1e3,
        spawnMs: microseconds(t0, spawned) / 1e3,
        cpuMsPer1000: ((cpu.user + cpu.system) / 1e3) * (1000 / n),
        rssKiBPerChild: (rss1 - rss0) / 1024 / n,
      };
    },
    async teardown() {},
  };
}

/**
 * Each scenario: setup(competitor, params) does the untimed part (memory, idle
 * children, warm-up) and returns { round(), teardown() }; round() measures once.
 */
export const scenarios = { seq, conc, latency, fanout };
