import { native } from './native.js';
import { cgroupDirs } from './tree.js';
import type { Capabilities } from './types.js';

let probed: Readonly<Capabilities> | undefined;

/** What this kernel (and seccomp policy) allows, probed once per process. */
export function capabilities(): Readonly<Capabilities> {
  if (!probed) {
    const caps = native.capabilities();
    probed = Object.freeze({
      mode: caps.clone3Pidfd || caps.pidfdOpen ? 'pidfd' : 'sigchld',
      clone3Pidfd: caps.clone3Pidfd,
      pidfdOpen: caps.pidfdOpen,
      waitidPidfd: caps.waitidPidfd,
      pidfdSendSignal: caps.pidfdSendSignal,
      pidfdInfoExit: caps.pidfdInfoExit,
      cgroup: cgroupDirs()?.[0] ?? null,
    });
  }
  return probed;
}
