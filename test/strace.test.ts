// What the kernel sees: an strace of a script that spawns and kills through pidwatch
// shows clone3 with CLONE_PIDFD, waitid(P_PIDFD), pidfd_send_signal, and no wait4, no
// kill() by PID and no thread per child.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capabilities } from '../src/index.js';
import { fixture } from './helpers/proc.js';
import { parseStrace, straceWorks } from './helpers/strace.js';

const caps = capabilities();
const fullPidfd =
  caps.mode === 'pidfd' && caps.clone3Pidfd && caps.waitidPidfd && caps.pidfdSendSignal;
// Made in beforeAll, not at load: vitest runs neither hook in a file whose tests all skip.
let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'pidwatch-strace-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('strace of a script spawning through pidwatch', () => {
  it.skipIf(!fullPidfd || !straceWorks)(
    'shows clone3(CLONE_PIDFD), waitid(P_PIDFD), pidfd_send_signal; no wait4, no thread per child (pidfd mode with every pidfd feature, strace usable)',
    async () => {
      const log = join(scratch, 'trace.txt');
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(
          'strace',
          [
            '-f',
            '-e',
            'trace=clone,clone3,fork,vfork,waitid,wait4,pidfd_send_signal,pidfd_open,kill,tgkill',
            '-o',
            log,
            process.execPath,
            fixture('strace-script.mjs'),
          ],
          { timeout: 60_000 },
          (error, out) => (error ? reject(error) : resolve(out)),
        );
      });
      const report = JSON.parse(stdout) as { pids: number[]; signals: string[] };
      expect(report.signals).toEqual(Array(20).fill('SIGTERM'));
      const calls = parseStrace(readFileSync(log, 'utf8'));
      const nodePid = calls[0].pid;

      for (const child of report.pids) {
        // created by a clone that handed back a pidfd
        const created = calls.filter(
          (c) => /^clone3?\(/.test(c.line) && new RegExp(`= ${child}$`).test(c.line),
        );
        expect(created.length, `clone of ${child}`).toBe(1);
        expect(created[0].line).toContain('CLONE_PIDFD');
        expect(created[0].pid).toBe(nodePid);
        // reaped through its pidfd
        const reaped = calls.filter(
          (c) => c.call === 'waitid' && c.line.includes(`si_pid=${child},`),
        );
        expect(reaped.length, `waitid of ${child}`).toBe(1);
        expect(reaped[0].line).toMatch(/^waitid\(P_PIDFD, \d+,/);
      }

      const signalled = calls.filter(
        (c) => c.call === 'pidfd_send_signal' && c.line.includes('SIGTERM'),
      );
      expect(signalled.length).toBe(20);
      // no reaping or signalling by PID
      expect(calls.filter((c) => c.call === 'wait4').map((c) => c.line)).toEqual([]);
      const byPid = calls.filter(
        (c) =>
          (c.call === 'kill' || c.call === 'tgkill') &&
          report.pids.some((pid) => c.line.includes(`(${pid},`)),
      );
      expect(byPid.map((c) => c.line)).toEqual([]);
      // threads: Node's own few, not one per child (20 were alive at once)
      const threads = calls.filter((c) => c.line.includes('CLONE_THREAD'));
      expect(threads.length).toBeLessThan(20);
    },
  );
});
