#!/usr/bin/env node
// Tree churn: many spawns with `tree: true`, a bounded number at a time (every
// 50th leaves a background sleeper behind, every 50th is killed through its tree),
// then checks that no cgroup directory of pidwatch is left: once the process is
// idle (the pool of emptied leaves is dropped) and, checked from outside by
// test/tree.test.ts, after it has exited. Prints one JSON line and exits 1 when a
// tree ended differently than it should have or a directory is left.
//
//   node test/stress/trees.mjs [--count N] [--concurrency N]
//
// Needs the built package (npm run build).
import { existsSync } from 'node:fs';
import { capabilities, spawn } from '../../dist/index.js';

const options = { count: 10_000, concurrency: 8 };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '');
  const value = Number(process.argv[i + 1]);
  if (!(name in options) || !Number.isInteger(value) || value <= 0) {
    process.stderr.write('usage: node test/stress/trees.mjs [--count N] [--concurrency N]\n');
    process.exit(2);
  }
  options[name] = value;
}

const root = capabilities().cgroup;
const parent = root === null ? null : `${root}/pidwatch-${process.pid}`;
const problems = [];
let next = 0;
let mechanism = null;

async function one(i) {
  if (i % 50 === 1) {
    const proc = spawn('sh', ['-c', 'sleep 60 & true'], { stdio: 'ignore', tree: true });
    const status = await proc.exited;
    if (status.code !== 0 || status.tree?.leftovers !== 1) problems.push({ i, status });
  } else if (i % 50 === 2) {
    const proc = spawn('sleep', ['60'], { stdio: 'ignore', tree: true });
    proc.tree.kill('SIGKILL');
    const status = await proc.exited;
    if (status.signal !== 'SIGKILL') problems.push({ i, status });
  } else {
    const status = await spawn('/bin/true', [], { stdio: 'ignore', tree: true }).exited;
    mechanism ??= status.tree?.mechanism;
    if (status.code !== 0 || status.tree?.leftovers !== 0) problems.push({ i, status });
  }
}

async function worker() {
  while (next < options.count) await one(next++);
}

const started = performance.now();
await Promise.all(Array.from({ length: options.concurrency }, worker));
const ms = performance.now() - started;
// Idle now: the pool of emptied leaves and the parent directory go within a moment.
const deadline = performance.now() + 2000;
while (parent !== null && existsSync(parent) && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 5));
}
const leftWhenIdle = parent !== null && existsSync(parent);
console.log(
  JSON.stringify({
    pid: process.pid,
    count: options.count,
    mechanism,
    msPerTree: ms / options.count,
    problems: problems.slice(0, 5),
    leftWhenIdle,
  }),
);
process.exitCode = problems.length > 0 || leftWhenIdle ? 1 : 0;
