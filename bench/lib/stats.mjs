// Summaries of per-round values: the median and the spread across rounds.

export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** { median, min, max } of one metric over the rounds. */
export function summarize(rounds, metric) {
  const values = rounds.map((r) => r[metric]);
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}
