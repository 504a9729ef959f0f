// The capability probe, run once per process, in the manner of Go's checkPidfd.
#pragma once

#include "spawn.h"

namespace pidwatch {

struct Capabilities {
  bool forced_sigchld = false;  // PIDWATCH_PIDFD=0
  bool clone3_pidfd = false;
  bool pidfd_open = false;
  bool waitid_pidfd = false;
  bool pidfd_send_signal = false;
  bool pidfd_info_exit = false;

  bool pidfd_mode() const { return clone3_pidfd || pidfd_open; }
  SpawnTier tier() const {
    if (clone3_pidfd) return SpawnTier::kClone3Pidfd;
    if (pidfd_open) return SpawnTier::kClonePidfdOpen;
    return SpawnTier::kCloneOnly;
  }
};

// Thread-safe; probes on the first call only.
const Capabilities& capabilities();

}  // namespace pidwatch
