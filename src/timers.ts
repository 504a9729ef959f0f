// Deadlines of any length. Node's timers hold at most 2^31-1 ms (about 24.8 days):
// a longer delay fires after 1 ms with a TimeoutOverflowWarning, which would kill a
// process with `timeout: 2 ** 31` at once. No library covers this for plain
// callbacks, so longer delays wait here in steps of the longest one Node keeps.

const LONGEST = 2 ** 31 - 1;

/**
 * Calls `fire` once `ms` have passed, unless the returned function is called
 * first. The timer does not keep the event loop alive (the process or its pipes
 * do), unless `keepAlive`.
 */
export function deadline(ms: number, fire: () => void, keepAlive = false): () => void {
  let timer: NodeJS.Timeout;
  const end = performance.now() + ms;
  const arm = (delay: number) => {
    timer = setTimeout(
      delay > LONGEST ? () => arm(end - performance.now()) : fire,
      Math.min(delay, LONGEST),
    );
    if (!keepAlive) timer.unref();
  };
  arm(ms);
  return () => clearTimeout(timer);
}
