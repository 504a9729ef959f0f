// Process-tree scenarios, whose rows are ways to do the same job: spawn+exit of
// /bin/true with `tree: true` (a cgroup leaf, and a process group) beside a plain
// spawn; and killing a tree of 100 processes until its last member is gone, by
// tree.kill('SIGKILL') (cgroup.kill, exited resolves at populated 0), by kill(-pgid)
// and by tree-kill's approach (walk /proc for the descendants, kill each), those two
// waiting by checking /proc. Each row runs in its own process.
import { strict as assert } from 'node:assert';
import { spawn as spawnChild } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const now = () => process.hrtime.bigint();
const microseconds = (from, to) => Number(to - from) / 1e3;

/** spawn: n sequential spawn+exit of /bin/true; the row picks plain, cgroup or pgroup. */
async function treeSpawn(row, { n, warmup }) {
  const { spawn, capabilities } = await import('../../dist/index.js');
  if (row === 'pgroup') process.env.PIDWATCH_CGROUP = '0'; // read at each spawn
  if (row === 'cgroup') assert.ok(capabilities().cgroup, 'no writable cgroup v2 directory');
  const tree = row !== 'plain';
  const once = async () => {
    const status = await spawn('/bin/true', [], { stdio: 'ignore', tree }).exited;
    assert.equal(status.code, 0);
    if (tree) assert.equal(status.tree.mechanism, row);
  };
  for (let i = 0; i < warmup; i++) await once();
  return {
    async round() {
      const t0 = now();
      for (let i = 0; i < n; i++) await once();
      return { usPerOp: microseconds(t0, now()) / n };
    },
    async teardown() {},
  };
}

/** pid -> [ppid, pgrp, state] of every process, from /proc. */
function processTable() {
  const table = new Map();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 49 || name.charCodeAt(0) > 57) continue;
    let text;
    try {
      text = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    table.set(Number(name), [Number(fields[1]), Number(fields[2]), fields[0]]);
  }
  return table;
}

const alive = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text[text.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

/** Waits, checking /proc between event-loop turns, until none of `pids` is alive. */
async function allGone(pids) {
  let left = pids;
  while (left.length > 0) {
    left = left.filter(alive);
    if (left.length > 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

const TREE_SCRIPT = (size) =>
  `i=1; while [ $i -lt ${size} ]; do sleep 600 & i=$((i+1)); done; echo ready; wait`;

/** Starts a tree of `size` processes (a shell and its sleepers); resolves once all run. */
async function startTree(row, size) {
  const script = TREE_SCRIPT(size);
  let proc;
  let stdout;
  if (row === 'tree.kill') {
    const { spawn } = await import('../../dist/index.js');
    proc = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'], tree: true });
    assert.equal(proc.tree.mechanism, 'cgroup', 'no writable cgroup v2 directory');
    stdout = proc.stdout;
  } else {
    // What users of kill(-pgid) and of tree-kill do: child_process, detached for a group.
    proc = spawnChild('sh', ['-c', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: row === 'kill(-pgid)',
    });
    proc.exited = new Promise((resolve) => proc.once('exit', resolve));
    stdout = proc.stdout;
  }
  const lines = createInterface({ input: stdout });
  for await (const line of lines) if (line === 'ready') break;
  lines.close();
  stdout.resume();
  return proc;
}

/** The descendants of `root`, as tree-kill finds them (there with `ps`, here from /proc). */
function descendants(root) {
  const children = new Map();
  for (const [pid, [ppid]] of processTable()) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** kill: a tree of `size` processes killed until its last member is gone, `samples` per round. */
async function treeKill(row, { size, samples }) {
  const killOne = async () => {
    const proc = await startTree(row, size);
    let members;
    const t0 = now();
    if (row === 'tree.kill') {
      assert.equal(proc.tree.kill('SIGKILL'), true);
      const status = await proc.exited; // resolves at cgroup.events populated 0
      assert.equal(status.tree.leftovers >= 0, true);
    } else if (row === 'kill(-pgid)') {
      members = [...processTable()].filter(([, [, pgrp]]) => pgrp === proc.pid).map(([p]) => p);
      process.kill(-proc.pid, 'SIGKILL');
      await allGone(members);
    } else {
      members = descendants(proc.pid);
      for (const pid of members) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await allGone(members);
    }
    const ms = microseconds(t0, now()) / 1e3;
    if (members) assert.equal(members.length, size);
    await proc.exited;
    return ms;
  };
  await killOne();
  return {
    async round() {
      const times = [];
      for (let i = 0; i < samples; i++) times.push(await killOne());
      times.sort((a, b) => a - b);
      return { ms: times[Math.floor(times.length / 2)] };
    },
    async teardown() {},
  };
}

export const treeScenarios = { 'tree-spawn': treeSpawn, 'tree-kill': treeKill };

/** The scenarios, for bench/lib/plan.mjs. */
export function treePlan({ quick, size, rounds }) {
  return [
    {
      id: 'tree-spawn',
      title: "Sequential spawn+exit of /bin/true with tree: true ('cgroup', 'pgroup') beside plain",
      kind: 'tree-spawn',
      params: { n: size(300), warmup: size(100), rounds },
      metric: 'usPerOp',
      unit: 'us/spawn',
      rows: [
        { id: 'plain', label: 'pidwatch spawn' },
        { id: 'cgroup', label: "tree: true, 'cgroup'" },
        { id: 'pgroup', label: "tree: true, 'pgroup'" },
      ],
      baseline: 'plain',
    },
    {
      id: 'tree-kill',
      title: 'Kill a tree of 100 processes, until its last member is gone',
      kind: 'tree-kill',
      params: { size: 100, samples: quick ? 1 : 3, rounds: quick ? 3 : 7 },
      metric: 'ms',
      unit: 'ms to last member gone',
      rows: [
        { id: 'tree.kill', label: "pidwatch tree.kill('SIGKILL')" },
        { id: 'kill(-pgid)', label: 'kill(-pgid) + waiting' },
        { id: 'tree-kill', label: "tree-kill's approach (/proc walk)" },
      ],
      baseline: 'tree.kill',
    },
  ];
}
