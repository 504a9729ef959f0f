// 10,000 spawns in one process (10% failing at exec, 10% killed, 10% timed out):
// afterwards the fds, live children and zombies are back where they started and
// RSS stays within its bound. The same program as `npm run stress`, shorter.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const churn = fileURLToPath(new URL('../stress/churn.mjs', import.meta.url));
const COUNT = 10_000;

interface Measure {
  fds: number;
  live: number;
  zombies: number;
  rssMiB: number;
}

it(`${COUNT} spawns leave no fd, child or zombie behind`, { timeout: 180_000 }, async () => {
  const { code, stdout, stderr } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    execFile(
      process.execPath,
      [churn, '--count', String(COUNT), '--json'],
      { timeout: 170_000 },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: unknown }) | null;
        resolve({ code: failure ? (failure.code as number) : 0, stdout, stderr });
      },
    );
  });
  expect(stderr).toBe('');
  const result = JSON.parse(stdout) as {
    count: number;
    before: Measure;
    after: Measure;
    problems: string[];
  };
  expect(result.problems).toEqual([]);
  expect(result.count).toBe(COUNT);
  expect(result.after.fds).toBe(result.before.fds);
  expect(result.after.live).toBe(result.before.live);
  expect(result.after.zombies).toBe(0);
  expect(code).toBe(0);
});
