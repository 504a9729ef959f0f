#!/usr/bin/env node
// Ranges over several full runs: for every row of every scenario, the lowest and the
// highest of the runs' medians, and of the row's ratio to the scenario's reference
// row in the same run (the C floor, or the scenario's baseline), as a Markdown table.
//
//   node bench/ranges.mjs bench/results/runs/*.json > ranges.md
//
// A ratio is only ever formed within one run, since the machine's load differs
// between runs.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node bench/ranges.mjs RESULT.json...\n');
  process.exit(2);
}
const runs = files.map((file) => JSON.parse(readFileSync(file, 'utf8')));

const figure = (x) => (x >= 100 ? Math.round(x).toLocaleString('en') : x.toPrecision(3));
const span = (values, format) => {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return format(low) === format(high) ? format(low) : `${format(low)}-${format(high)}`;
};
const ratio = (x) => `${x.toFixed(2)}x`;

/** The row the others are divided by: the scenario's baseline, else its C floor. */
function reference(scenario) {
  if (scenario.baseline) return scenario.baseline;
  return scenario.rows.some((row) => row.id === 'floor') ? 'floor' : null;
}

const lines = [
  `Ranges over ${runs.length} full runs (ending ${runs.map((r) => r.machine.date.slice(11, 16)).join(', ')} UTC, ${runs[0].machine.date.slice(0, 10)}).`,
  'Each cell is the lowest and the highest of the runs; a ratio divides two medians of the same run.',
  '',
  '| scenario | row | median | ratio | to | other figures |',
  '|---|---|---|---|---|---|',
];
// Scenarios and rows as the newest run has them; a row some runs lack (added later) is
// ranged over the runs that have it, which the last column names.
for (const first of runs[runs.length - 1].scenarios) {
  const ref = reference(first);
  const to = ref ? (first.rows.find((r) => r.id === ref)?.label ?? ref) : '';
  for (const row of first.rows) {
    // Per run that has this row measured: the row, and its reference row's median.
    const found = [];
    runs.forEach((run, index) => {
      const scenario = run.scenarios.find((s) => s.id === first.id);
      const r = scenario?.rows.find((x) => x.id === row.id);
      if (r?.status !== 'ok' || typeof r.median !== 'number') return;
      const base = ref ? scenario.rows.find((x) => x.id === ref)?.median : undefined;
      found.push({ row: r, base, run: index + 1 });
    });
    if (found.length === 0) continue;
    const rows = found.map((f) => f.row);
    const medians = rows.map((r) => r.median);
    const compared =
      ref !== null &&
      row.id !== ref &&
      found.every((f) => typeof f.base === 'number' && f.base > 0);
    const ratios = compared
      ? span(
          found.map((f) => f.row.median / f.base),
          ratio,
        )
      : '';
    // The scenario's other measures (CPU, p99, ...), each as its own range.
    const others = Object.keys(rows[0].medians ?? {})
      .filter(
        (key) => key !== first.metric && rows.every((r) => typeof r.medians?.[key] === 'number'),
      )
      .map(
        (key) =>
          `${key} ${span(
            rows.map((r) => r.medians[key]),
            figure,
          )}`,
      )
      .join(', ');
    // A second reference some rows are also divided by (exec to spawnAsync 'ignore').
    const also = first.also && first.rows.find((r) => r.id === first.also);
    const alsoRatio = rows.every((r) => typeof r.xAlso === 'number')
      ? `${span(
          rows.map((r) => r.xAlso),
          ratio,
        )} ${also?.label ?? first.also}`
      : '';
    const subset =
      found.length < runs.length ? `runs ${found.map((f) => f.run).join(', ')} only` : '';
    lines.push(
      `| ${first.id} | ${row.label} | ${span(medians, figure)} ${first.unit} | ${ratios} | ${compared ? to : ''} | ${[alsoRatio, others, subset].filter(Boolean).join(', ')} |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
