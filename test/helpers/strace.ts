// Reading `strace -f` logs in tests.
import { spawnSync } from 'node:child_process';

/** strace is installed and may trace here (ptrace allowed). */
export const straceWorks =
  spawnSync('strace', ['-f', '-o', '/dev/null', '/bin/true'], { stdio: 'ignore' }).status === 0;

export interface TracedCall {
  pid: number;
  call: string;
  args: string[];
  result: string;
  line: string;
}

/** strace -f lines, `<unfinished ...>` halves joined with their `resumed>` ends. */
export function parseStrace(text: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const pending = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const match = /^(\d+)\s+(.*)$/.exec(raw);
    if (!match) continue;
    const pid = Number(match[1]);
    let rest = match[2];
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const key = `${pid}:${resumed[1]}`;
      rest = `${pending.get(key) ?? `${resumed[1]}(`}${resumed[2]}`;
      pending.delete(key);
    } else if (rest.endsWith('<unfinished ...>')) {
      const name = /^(\w+)\(/.exec(rest)?.[1] ?? '';
      pending.set(`${pid}:${name}`, rest.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const call = /^(\w+)\((.*)\)\s+=\s+(\S+)/.exec(rest);
    if (!call) continue;
    calls.push({ pid, call: call[1], args: splitArgs(call[2]), result: call[3], line: rest });
  }
  return calls;
}

/** Splits strace's argument list at top-level commas (not inside [...] or {...}). */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[' || ch === '{') depth++;
    if (ch === ']' || ch === '}') depth--;
    if (ch === ',' && depth === 0) {
      args.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') args.push(current.trim());
  return args;
}
