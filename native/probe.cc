#include "probe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>

#include "sys.h"

namespace pidwatch {
namespace {

// Tells spawn_process whether a vfork child shares our memory (it does not under
// QEMU user mode), from a plain vfork probe child when no pidfd probe child ran.
void learn_clone_memory(int shares_memory) {
  if (shares_memory < 0) {
    int child = probe_child(SpawnTier::kCloneOnly, false, &shares_memory);
    if (child >= 0) close(child);
  }
  set_clone_shares_memory(shares_memory != 0);
}

Capabilities probe() {
  Capabilities caps;
  int shares_memory = -1;  // learned from the first probe child that runs
  const char* forced = getenv("PIDWATCH_PIDFD");
  if (forced && strcmp(forced, "0") == 0) {
    caps.forced_sigchld = true;
    learn_clone_memory(shares_memory);
    return caps;
  }
  int self = sys_pidfd_open(getpid());
  caps.pidfd_open = self >= 0;
  if (self >= 0) {
    ExitInfo ignored;
    // On a pidfd of a non-child, waitid must fail with exactly ECHILD.
    caps.waitid_pidfd = sys_waitid_exit(kPidfdIdType, self, WNOHANG, &ignored) == -ECHILD;
    caps.pidfd_send_signal = sys_pidfd_send_signal(self, 0) == 0;
    close(self);
  }
  int child = probe_child(SpawnTier::kClone3Pidfd, caps.waitid_pidfd, &shares_memory);
  caps.clone3_pidfd = child >= 0;
  if (child < 0 && caps.pidfd_open)
    child = probe_child(SpawnTier::kClonePidfdOpen, caps.waitid_pidfd, &shares_memory);
  if (child >= 0) {
    ExitInfo info;
    caps.pidfd_info_exit = sys_pidfd_exit_info(child, &info) == 0 && info.known && info.code == 0;
    close(child);
  }
  learn_clone_memory(shares_memory);
  return caps;
}

}  // namespace

const Capabilities& capabilities() {
  static std::once_flag once;
  static Capabilities caps;
  std::call_once(once, [] { caps = probe(); });
  return caps;
}

}  // namespace pidwatch
