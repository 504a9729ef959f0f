// The kernel interface pidwatch uses, in one place: raw syscalls for pidfds,
// clone3, waitid with rusage and PIDFD_GET_INFO. Every function returns the
// result or -errno; none of them allocates, so the spawn child may use them.
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "compat/linux.h"

namespace pidwatch {

#ifndef P_PIDFD
constexpr int kPidfdIdType = 3;
#else
constexpr int kPidfdIdType = P_PIDFD;
#endif

// struct clone_args up to CLONE_ARGS_SIZE_VER2 (cgroup, Linux 5.7). Passed to
// the kernel as VER0 (64 bytes) unless `cgroup` is used.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};
static_assert(sizeof(CloneArgs) == 88, "clone_args v2 is 88 bytes");

// The PIDFD_GET_INFO answer, PIDFD_INFO_SIZE_VER0 (Linux >= 6.13; exit_code >= 6.15).
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
static_assert(sizeof(PidfdInfo) == 64, "pidfd_info v0 is 64 bytes");
constexpr uint64_t kPidfdInfoExit = 1ULL << 3;

// How a waited-for process ended, decoded from siginfo or a wait status.
struct ExitInfo {
  bool known = false;  // false: the status could not be learned
  int code = -1;       // exit code, or -1
  int signal = 0;      // terminating signal, or 0
  bool core_dumped = false;
  bool has_rusage = false;
  struct rusage usage {};
};

int sys_pidfd_open(pid_t pid);
int sys_pidfd_send_signal(int pidfd, int sig);
// waitid(idtype, id, WEXITED | options) with the rusage of the fifth argument.
// Returns 0 with *info filled, 1 when nothing was ready (WNOHANG), or -errno.
int sys_waitid_exit(int idtype, int id, int options, ExitInfo* info);
// PIDFD_GET_INFO asking for PIDFD_INFO_EXIT. Returns 0 and fills *info when the
// kernel published the exit, 1 when it has not (yet), -errno on failure.
int sys_pidfd_exit_info(int pidfd, ExitInfo* info);

// The 7 resource usage values JS reports, in the order of ExitStatus.resourceUsage:
// user and system CPU time (us), maxRSS (KiB), minor and major faults, voluntary
// and involuntary context switches.
constexpr int kUsageValues = 7;
void rusage_values(const struct rusage& ru, double* out);

// Decodes a waitpid-style status (as in PIDFD_INFO_EXIT or /proc/<pid>/stat).
void decode_wait_status(int status, ExitInfo* info);

// The wait status of the zombie `pid` from /proc/<pid>/stat (field 52). False when
// it is not a zombie, or when this process may not see the status: the kernel shows
// 0 there to a reader without ptrace read access, which would pass for exit code 0.
// Allocates nothing, but reads files: not for the spawn child.
bool read_zombie_status(pid_t pid, ExitInfo* info);

// Runs fn(arg) in a new process created by clone3 on the given stack; the child
// exits with fn's return value. Returns the child's pid or -errno. Only defined
// where an assembly trampoline exists (x86_64); elsewhere returns -ENOSYS.
long sys_clone3_run(CloneArgs* args, int (*fn)(void*), void* arg);

}  // namespace pidwatch
