import type { Subprocess } from './subprocess.js';

/** pidwatch's own children that have not been reaped yet, by PID (for watch()). */
export const liveChildren = new Map<number, Subprocess>();
