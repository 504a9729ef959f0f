// The x86_64 clone3 trampoline (native/sys.cc) carries unwind information: an FDE in
// .eh_frame covering it, whose child half marks the return address undefined, so
// that gdb, perf and other unwinders stop in the child instead of walking into a
// stack that is not its own. Read from the built addon with binutils' readelf.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testMode } from './helpers/mode.js';

const addon = fileURLToPath(new URL('../build/Release/pidwatch.node', import.meta.url));

function haveReadelf(): boolean {
  try {
    execFileSync('readelf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const runs = testMode === 'pidfd' && process.arch === 'x64' && existsSync(addon) && haveReadelf();

describe.skipIf(!runs)('the clone3 trampoline', () => {
  const symbols = execFileSync('readelf', ['-W', '--syms', addon], { encoding: 'utf8' });
  const entry = symbols.split('\n').find((line) => line.endsWith(' pidwatch_clone3_asm'));

  it('is a sized function in .text', () => {
    expect(entry).toBeDefined();
    const [, value, size, type, , , ndx] = entry!.trim().split(/\s+/);
    expect(type).toBe('FUNC');
    expect(Number(size)).toBeGreaterThan(0);
    const sections = execFileSync('readelf', ['-W', '--sections', addon], { encoding: 'utf8' });
    const text = sections.split('\n').find((line) => / \.text /.test(line));
    expect(text).toBeDefined();
    expect(text!.match(/\[\s*(\d+)\]/)?.[1]).toBe(ndx);
    expect(BigInt(`0x${value}`)).toBeGreaterThan(0n);
  });

  it('has an FDE covering it, with the return address undefined in the child', () => {
    const [, value, size] = entry!.trim().split(/\s+/);
    const start = BigInt(`0x${value}`);
    const end = start + BigInt(size);
    const frames = execFileSync('readelf', ['--debug-dump=frames', addon], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const fdes = frames.split('\n\n').filter((block) => / FDE /.test(block));
    const covering = fdes.find((block) => {
      const m = /pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(block);
      return m !== null && BigInt(`0x${m[1]}`) <= start && BigInt(`0x${m[2]}`) >= end;
    });
    expect(covering, 'no FDE in .eh_frame covers pidwatch_clone3_asm').toBeDefined();
    expect(covering).toMatch(/DW_CFA_undefined: r16 \(rip\)/);
  });
});
