// Every exit pidwatch reports during a test, in order.
import { afterEach, beforeEach } from 'vitest';
import { onAnyExit } from '../../src/exits-hub.js';
import type { ExitStatus } from '../../src/index.js';

/** Registers hooks that record each test's exits into the returned array (emptied per test). */
export function recordExits(): ExitStatus[] {
  const seen: ExitStatus[] = [];
  let unsubscribe = () => {};
  beforeEach(() => {
    seen.length = 0;
    unsubscribe = onAnyExit((status) => seen.push(status));
  });
  afterEach(() => unsubscribe());
  return seen;
}
