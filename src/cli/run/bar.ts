import type { Progress } from '../../runner/types.js';
import type { InputCount } from './input.js';

const REDRAW_MS = 100;
const WIDTH = 20;

function clock(seconds: number): string {
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/**
 * One line on stderr: done/total, running, failed and an ETA, redrawn at most every 100 ms
 * and only when something changed. `clear()` before writing job output; the next tick redraws.
 */
export class ProgressBar {
  private progress: Progress = { started: 0, finished: 0, failed: 0, running: 0 };
  private shown = false;
  private dirty = true;
  private readonly startedAt = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly count: InputCount,
  ) {
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
    this.timer.unref();
    this.draw();
  }

  update(progress: Progress): void {
    this.progress = progress;
    this.dirty = true;
  }

  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[K');
    this.shown = false;
    this.dirty = true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }

  line(): string {
    const { finished, failed, running } = this.progress;
    const total = this.count.total;
    const elapsed = (Date.now() - this.startedAt) / 1000;
    let eta = '?';
    if (total !== null && finished > 0) eta = clock((elapsed / finished) * (total - finished));
    let bar = '';
    if (total !== null && total > 0) {
      const filled = Math.round((finished / total) * WIDTH);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] `;
    }
    const text = `${bar}${finished}/${total ?? '?'} done, ${running} running, ${failed} failed, ETA ${eta}`;
    const columns = this.stream.columns;
    return columns !== undefined && columns > 1 ? text.slice(0, columns - 1) : text;
  }

  private draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.stream.write(`\r${this.line()}\x1b[K`);
    this.shown = true;
  }
}
