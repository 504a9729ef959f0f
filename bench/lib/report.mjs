// Renders a bench result three ways: a text table for the terminal, the same table
// in markdown with the method and the machine, and an SVG bar chart of the ratios
// to the C floor (hand-written, log scale, one group of bars per scenario).

function num(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const ratio = (v) => (v === undefined || v === null ? '-' : `${v.toFixed(2)}x`);

/** The secondary figures of a row, from the medians of its rounds. */
function more(scenario, row) {
  if (row.status !== 'ok') return `${row.status}: ${row.reason}`;
  const m = row.medians;
  const parts = [];
  if (scenario.kind === 'seq') parts.push(`${num(1e6 / m.usPerOp)} spawns/s`);
  if (scenario.kind === 'conc') parts.push(`${num((scenario.params.n * 1e3) / m.ms)} spawns/s`);
  if (scenario.kind === 'latency') parts.push(`p99 ${num(m.p99)} us`);
  if (scenario.kind === 'fanout') {
    parts.push(`CPU ${num(m.cpuMsPer1000)} ms/1,000 children`);
    parts.push(`RSS ${num(m.rssKiBPerChild)} KiB/child`);
    parts.push(`spawn loop ${num(m.spawnMs)} ms`);
  }
  if (scenario.kind === 'loop') {
    parts.push(`call p99 ${num(m.callP99)} us`);
    if (m.delayP99Ms !== undefined) parts.push(`loop delay p99 ${num(m.delayP99Ms)} ms`);
    if (m.busyUsPerSpawn !== undefined) parts.push(`loop busy ${num(m.busyUsPerSpawn)} us/spawn`);
  }
  if (scenario.kind === 'exec') parts.push(`wall ${num(m.wallUs)} us/call`);
  if (scenario.kind === 'jobs') parts.push(`wall ${num(m.wallUs)} us/job`);
  if (scenario.kind === 'run') parts.push(`CPU ${num(m.cpuMs)} ms (runner + jobs)`);
  if (scenario.kind === 'jobsRate') {
    parts.push(`${num(1e6 / m.wallUs)} jobs/s`);
    if (m.cpuUs !== undefined) parts.push(`parent CPU ${num(m.cpuUs)} us/job`);
  }
  if (scenario.kind === 'pipe') {
    parts.push(`${num(m.mibPerS)} MiB/s`);
    parts.push(`CPU ${num(m.cpuMs)} ms (all processes)`);
  }
  if (row.xBaseline !== undefined) {
    const baseline = scenario.rows.find((r) => r.id === scenario.baseline);
    parts.push(`${ratio(row.xBaseline)} ${baseline?.label ?? scenario.baseline}`);
  }
  if (row.xAlso !== undefined) {
    const also = scenario.rows.find((r) => r.id === scenario.also);
    parts.push(`${ratio(row.xAlso)} ${also?.label ?? scenario.also}`);
  }
  if (row.xPidfd !== undefined) parts.push(`${ratio(row.xPidfd)} pidfd mode (7)`);
  return parts.join('; ');
}

/** Table cells, one array per line; a scenario opens with a title line. */
function cells(result) {
  const lines = [];
  for (const s of result.scenarios) {
    lines.push({
      title: `${s.id}. ${s.title} [${s.unit}, median of ${s.params.rounds} round${s.params.rounds > 1 ? 's' : ''}]`,
    });
    for (const row of s.rows) {
      const ok = row.status === 'ok';
      lines.push({
        row: [
          row.label,
          ok ? num(row.median) : '-',
          ok ? `${num(row.min)}-${num(row.max)}` : '-',
          ok ? ratio(row.xFloor) : '-',
          ok ? ratio(row.xChildProcess) : '-',
          more(s, row),
        ],
      });
    }
  }
  return lines;
}

const HEADER = ['row', 'median', 'spread (min-max)', 'x C floor', 'x child_process', 'more'];

export function renderText(result) {
  const lines = cells(result);
  const widths = HEADER.map((h, i) =>
    Math.max(h.length, ...lines.filter((l) => l.row).map((l) => l.row[i].length)),
  );
  const pad = (cols) =>
    cols
      .map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [pad(HEADER)];
  for (const l of lines) out.push(l.title ? `\n${l.title}` : `  ${pad(l.row)}`);
  return `${out.join('\n')}\n${result.notes.map((n) => `\nnote: ${n}`).join('')}\n`;
}

function describeMachine(m) {
  return `${m.cpu}, ${m.cores} cores, ${m.kernel}, ${m.memoryGiB} GiB RAM; Node ${m.node}`;
}

export function renderMarkdown(result) {
  const { machine: m } = result;
  const rows = cells(result).map((l) =>
    l.title ? `| **${l.title}** | | | | | |` : `| ${l.row.join(' | ')} |`,
  );
  return [
    '# pidwatch benchmarks',
    '',
    `- Date: ${m.date.slice(0, 10)} (${result.mode} mode: \`npm run bench${result.mode === 'quick' ? ' -- --quick' : ''}\`)`,
    `- Machine: ${describeMachine(m)}`,
    `- Competitors: ${result.versions}`,
    ...(m.loadAverage
      ? [
          `- Load average (1, 5, 15 min) before: ${m.loadBefore?.join(', ') ?? '?'}; after: ${m.loadAverage.join(', ')}; ${Math.round(result.seconds)} s in all`,
        ]
      : []),
    '',
    'Each competitor runs each scenario in a fresh process of its own (set up and warmed',
    'up before timing), and the rounds of all competitors are interleaved, the order',
    'rotating each round, so that a change in the load of the machine falls on every',
    'row alike. The median is over the rounds (their count is in each title), the spread',
    'is the lowest and the highest round; ratios divide medians, so lower is better and',
    "1.00x is the C floor. Every competitor runs with stdio `'ignore'` on fds 0-2 in",
    'every row (no pipes to create or read), so the rows compare the same work.',
    '',
    '- C floor: a C program doing the same work with nothing else in the process:',
    '  posix_spawn + waitpid for the spawn scenarios (holding the same touched memory',
    '  or idle children itself), clone3(CLONE_PIDFD) + epoll on the pidfd + waitid for',
    '  exit latency.',
    '- Exit latency: `sleep 1000` is started, left 2 ms, then timed from',
    '  kill(SIGKILL) to the exit being seen (the promise or event settled in JS).',
    '- Fan-out: CPU is the parent process (user + system) over the whole round; RSS is',
    '  what the parent grew by right after the spawn loop, per child started.',
    '- 7 (sigchld mode): the `pidwatch (sigchld)` rows, run with `PIDWATCH_PIDFD=0`;',
    '  "x pidfd mode" compares them with the `pidwatch` row.',
    "- exec, jobs, run-*: output collected (these rows do not use 'ignore'): exec and",
    '  runJobs read pipes, GNU parallel its temporary files, pidwatch run its memory',
    "  files; xargs leaves the jobs' output to /dev/null. exec and jobs give the parent's",
    '  CPU (user + system) per call or job, wall time beside it; run-* time `pidwatch',
    '  run`, GNU parallel and `xargs -P` over the same input lines (stdout to /dev/null)',
    '  from start to exit, with the CPU of the runner and every job it reaped. "x ROW"',
    '  in the last column compares with ROW.',
    '',
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map((_, i) => (i === 0 || i === 5 ? '---' : '---:')).join(' | ')} |`,
    ...rows,
    '',
    ...result.notes.map((n) => `Note: ${n}`),
    '',
    '![Ratios to the C floor](latest.svg)',
    '',
  ].join('\n');
}

const COLORS = {
  pidwatch: '#1f77b4',
  'pidwatch-sigchld': '#7fb2dc',
  child_process: '#d62728',
  execa: '#ff7f0e',
  bun: '#2ca02c',
};

const xmlText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars of x C floor on a log axis; the floor itself is the line at 1x. */
export function renderSvg(result) {
  const left = 230;
  const plotWidth = 520;
  const bar = 12;
  const groupGap = 16;
  const top = 40;
  const groups = result.scenarios.map((s) => ({
    title: `${s.id}. ${s.title}`,
    bars: s.rows.filter((r) => r.status === 'ok' && r.id !== 'floor' && r.xFloor),
  }));
  const ratios = groups.flatMap((g) => g.bars.map((b) => b.xFloor));
  const low = Math.log10(Math.min(0.5, ...ratios));
  const high = Math.ceil(Math.log10(Math.max(2, ...ratios)) * 10) / 10;
  const x = (r) => left + ((Math.log10(r) - low) / (high - low)) * plotWidth;
  const px = (v) => v.toFixed(1);
  const parts = [];
  let y = top;
  for (const g of groups) {
    parts.push(`<text x="10" y="${y + 10}" class="t">${xmlText(g.title)}</text>`);
    y += 16;
    for (const b of g.bars) {
      const w = Math.max(1, x(b.xFloor) - left);
      parts.push(
        `<text x="${left - 6}" y="${y + bar - 2}" class="l">${xmlText(b.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${px(w)}" height="${bar}" fill="${COLORS[b.id] ?? '#888'}"/>`,
        `<text x="${px(left + w + 4)}" y="${y + bar - 2}" class="v">${b.xFloor.toFixed(2)}x</text>`,
      );
      y += bar + 3;
    }
    y += groupGap;
  }
  const ticks = [0.25, 0.5, 1, 1.15, 1.5, 2, 5, 10, 20, 50, 100, 200, 500].filter(
    (t) => Math.log10(t) >= low && Math.log10(t) <= high,
  );
  const axis = ticks.map(
    (t) =>
      `<line x1="${px(x(t))}" y1="${top - 6}" x2="${px(x(t))}" y2="${y - groupGap}" class="${t === 1 ? 'f' : 'g'}"/>` +
      `<text x="${px(x(t))}" y="${top - 10}" class="a">${t}x</text>`,
  );
  const height = y + 10;
  const width = left + plotWidth + 60;
  const m = result.machine;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<style>.t{font-size:12px;font-weight:bold}.l{font-size:11px;text-anchor:end}.v{font-size:10px}.a{font-size:10px;text-anchor:middle;fill:#555}.g{stroke:#ccc;stroke-width:1}.f{stroke:#000;stroke-width:1.5}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="14" font-size="13">Time relative to the C floor (black line, 1x), log scale, lower is better. ${xmlText(m.date.slice(0, 10))}, ${m.cores} cores, ${xmlText(m.kernel)}, Node ${xmlText(m.node)}</text>
${axis.join('\n')}
${parts.join('\n')}
</svg>
`;
}
