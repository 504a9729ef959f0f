// Which watcher mode this run of the suite is in (set by test/run-modes.mjs), and
// what capabilities() must report under it.
import type { Capabilities } from '../../src/types.js';

export type TestMode = 'pidfd' | 'clone3-eperm' | 'waitid-einval' | 'nopidfd' | 'sigchld';

/**
 * The fields of capabilities() each mode pins down; a field left out depends on the
 * kernel (pidfdInfoExit needs Linux >= 6.15) and is not checked.
 */
export const expectedByMode: Record<TestMode, Partial<Capabilities>> = {
  pidfd: {
    mode: 'pidfd',
    clone3Pidfd: true,
    pidfdOpen: true,
    waitidPidfd: true,
    pidfdSendSignal: true,
  },
  'clone3-eperm': {
    mode: 'pidfd',
    clone3Pidfd: false,
    pidfdOpen: true,
    waitidPidfd: true,
    pidfdSendSignal: true,
  },
  'waitid-einval': { mode: 'pidfd', waitidPidfd: false, pidfdOpen: true, pidfdSendSignal: true },
  nopidfd: {
    mode: 'sigchld',
    clone3Pidfd: false,
    pidfdOpen: false,
    pidfdSendSignal: false,
  },
  sigchld: { mode: 'sigchld' },
};

function readMode(value: string | undefined): TestMode {
  if (value === undefined || value === '') return 'pidfd';
  if (value in expectedByMode) return value as TestMode;
  throw new Error(
    `PIDWATCH_TEST_MODE=${value} is not one of ${Object.keys(expectedByMode).join(', ')}`,
  );
}

export const testMode: TestMode = readMode(process.env.PIDWATCH_TEST_MODE);

export const expected: Partial<Capabilities> = expectedByMode[testMode];

/** True when pidwatch watches through SIGCHLD in this run: no pidfds anywhere. */
export function isSigchldMode(): boolean {
  return expected.mode === 'sigchld' || process.env.PIDWATCH_PIDFD === '0';
}
