import { exitTargets } from './exit-queue.js';
import { Subprocess } from './subprocess.js';

/**
 * pidwatch's own child `pid` if it has not been reaped yet (for watch()). A scan of
 * the exit targets rather than a map kept per child: a watch() of an own child is
 * rare, a spawn is not, and a map's set and delete cost each spawn about a microsecond.
 */
export function liveChild(pid: number): Subprocess | undefined {
  for (const target of exitTargets()) {
    if (target instanceof Subprocess && target.pid === pid) return target;
  }
  return undefined;
}
