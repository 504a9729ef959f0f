// Process creation: clone with vfork semantics, and the async-signal-safe child
// side (stdio, credentials, execvp's PATH search). Knows nothing of Node-API or libuv.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "environ.h"

namespace pidwatch {

// What each child fd gets. A value >= 0 is a parent fd to dup into place.
enum StdioCode : int {
  kStdioNull = -1,       // /dev/null
  kStdioNone = -2,       // nothing: the fd stays closed in the child
  kStdioPipeIn = -3,     // a pipe the child reads (its stdin)
  kStdioPipeOut = -4,    // a pipe the child writes (its stdout, stderr)
  kStdioSocketPair = -5  // a duplex socketpair (extra fds)
};

// How the child is created, chosen once from the capability probe.
enum class SpawnTier {
  kClone3Pidfd,  // clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK): atomic pidfd
  kClonePidfdOpen,  // clone(CLONE_VM | CLONE_VFORK), then pidfd_open
  kCloneOnly     // clone(CLONE_VM | CLONE_VFORK), no pidfd (sigchld mode)
};

struct SpawnRequest {
  std::string file;
  std::vector<std::string> argv;
  // The child's environment, always given: a copy made under Node's lock, never
  // the live environ, which another thread's setenv may free under the child.
  std::vector<std::string> env;
  // Or, when set, the parent's environment: checked to be unchanged right before
  // the clone (else the spawn fails with ESTALE, syscall "environ", and nothing
  // is created); path_env is then its PATH.
  EnvironRef parent_env;
  std::string path_env;  // the PATH to search when file has no slash
  bool has_path_env = false;
  bool has_cwd = false;
  std::string cwd;
  std::vector<int> stdio;  // StdioCode or fd, one per child fd
  bool setsid = false;
  bool setpgid = false;  // leads a new process group (the 'pgroup' tree)
  // The cgroup leaf to start in (tree: true): a directory fd for clone3's
  // CLONE_INTO_CGROUP, and the path of its cgroup.procs for the tiers where the
  // child must write itself there before execve.
  int cgroup_fd = -1;
  const char* cgroup_procs = nullptr;
  bool set_uid = false, set_gid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool pdeathsig = false;
  // The creating thread runs SCHED_BATCH where the caller's ran SCHED_OTHER (the
  // spawner thread): the child goes back to SCHED_OTHER first thing.
  bool normal_policy = false;
};

struct SpawnResult {
  pid_t pid = -1;
  int pidfd = -1;
  std::vector<int> parent_fds;  // the parent's end per child fd, or -1
  int err = 0;                  // errno when it failed
  const char* syscall = nullptr;
  std::string path;  // the resolved executable
};

// Spawns, or fails leaving nothing behind: no child, no zombie, no fd.
void spawn_process(const SpawnRequest& req, SpawnTier tier, SpawnResult* out);

// For the capability probe: runs a child that exits at once, created as the tier
// says but with no exit signal (no SIGCHLD reaches any handler), and reaps it.
// Returns the child's pidfd, still open for PIDFD_GET_INFO, or -errno. Once the
// clone succeeded, *shares_memory is 1 if the child ran in the parent's memory
// before clone returned (vfork semantics), else 0.
int probe_child(SpawnTier tier, bool waitid_pidfd, int* shares_memory);

// Whether CLONE_VM | CLONE_VFORK runs the child in the parent's memory, the
// parent suspended until execve, as Linux does. QEMU's user mode emulates it as
// a plain fork (and refuses CLONE_FILES), so a failure the child writes to
// memory never reaches the parent. Set from the probe; when false, spawns ask no
// CLONE_FILES and the child reports failures through a CLOEXEC pipe.
void set_clone_shares_memory(bool shares);

}  // namespace pidwatch
