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

Capabilities probe() {
  Capabilities caps;
  const char* forced = getenv("PIDWATCH_PIDFD");
  if (forced && strcmp(forced, "0") == 0) {
    caps.forced_sigchld = true;
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
  int child = probe_child(SpawnTier::kClone3Pidfd, caps.waitid_pidfd);
  caps.clone3_pidfd = child >= 0;
  if (child < 0 && caps.pidfd_open) child = probe_child(SpawnTier::kClonePidfdOpen, caps.waitid_pidfd);
  if (child >= 0) {
    ExitInfo info;
    caps.pidfd_info_exit = sys_pidfd_exit_info(child, &info) == 0 && info.known && info.code == 0;
    close(child);
  }
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
