// The process-wide reaper: children that nobody watches any more (their Worker
// was terminated, their environment torn down while they ran) are handed here,
// and one small thread reaps each when it exits, so none stays a zombie.
#pragma once

#include <sys/types.h>

namespace pidwatch {

// Takes over the child `pid` and its pidfd (-1 when there is none; the reaper
// then opens one if the kernel can, else checks on the child now and then).
void abandon_child(pid_t pid, int pidfd);

// For the SIGCHLD watcher that found an exited child not its own: reaps it if it
// is an abandoned child, and then returns true.
bool reap_if_abandoned(pid_t pid);

}  // namespace pidwatch
