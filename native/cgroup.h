// The kernel interface of process trees, in one place: finding a writable
// cgroup v2 directory, creating and removing leaves, reading cgroup.events,
// cgroup.procs and cpu.stat, cgroup.kill, and signalling every member of a
// frozen leaf through pidfds; plus the /proc walk of the process-group fallback.
// Knows nothing of Node-API or libuv. Functions return 0 (or a count) or -errno.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace pidwatch {

// The directory pidwatch creates its cgroups under, probed once per process:
// PIDWATCH_CGROUP_ROOT, else this process's own cgroup v2 directory, when it is a
// writable cgroup2 directory; "" when there is none or PIDWATCH_CGROUP=0.
const std::string& cgroup_root();

// "<root>/pidwatch-<pid>": every leaf of this process lives below it, so
// cgroup.kill there kills every tree of the process. Created on first use;
// "" when there is no root or it could not be created (then *err is set).
const std::string& cgroup_parent(int* err = nullptr);

// A leaf cgroup: its path, a directory fd (for CLONE_INTO_CGROUP and openat)
// and an open cgroup.events (read and polled for "populated" and "frozen").
struct LeafDir {
  std::string path;
  std::string procs_path;  // path + "/cgroup.procs", for the child's own write
  int dir_fd = -1;
  int events_fd = -1;
  uint64_t id = 0;  // the cgroup id (the directory's inode number)
  // cpu.stat at the last release, subtracted when the leaf is reused; unknown
  // (base_known false) when that release did not read it.
  double base_user_us = 0, base_system_us = 0;
  bool base_known = true;
  bool has_memory_peak = false;  // memory controller on: a fresh leaf each time
  // cgroup.kill was written. Such a leaf is never reused: on Linux 6.18 a child
  // placed by CLONE_INTO_CGROUP in a cgroup killed before is killed at birth.
  bool killed = false;
};

struct CgroupEvents {
  bool populated = false;
  bool frozen = false;
};

// mkdir + open. The name is taken as given; EEXIST is returned as is.
int leaf_create(const std::string& path, LeafDir* leaf);
// Opens the fds of a leaf that exists (one taken from the pool, which keeps no fd).
int leaf_open(LeafDir* leaf);
// Closes the fds and removes the directory. -EBUSY while members remain.
int leaf_remove(LeafDir* leaf);
void leaf_close(LeafDir* leaf);

int leaf_events(const LeafDir& leaf, CgroupEvents* events);
// The PIDs in cgroup.procs.
int leaf_pids(const LeafDir& leaf, std::vector<pid_t>* pids);
// cpu.stat user_usec and system_usec, minus the leaf's base.
int leaf_cpu(const LeafDir& leaf, double* user_us, double* system_us);
// memory.peak in bytes, or -errno (-ENOENT without the memory controller).
int64_t leaf_memory_peak(const LeafDir& leaf);

// Sends sig to every member: SIGKILL by cgroup.kill (atomic against forks), any
// other signal by freezing the leaf, signalling each member through a pidfd
// checked to belong to this leaf, and thawing. Returns how many members there
// were (0: empty, nothing sent), or -errno.
int leaf_signal(LeafDir& leaf, int sig);

// Waits, blocking up to timeout_ms, for the leaf to be empty. For teardown only.
bool leaf_wait_empty(const LeafDir& leaf, int timeout_ms);

// Moves every member to `to` (a cgroup directory): a detached tree outlives us.
void leaf_migrate(const LeafDir& leaf, const std::string& to);

// Process groups (the 'pgroup' mechanism): the members of group pgid found by a
// walk of /proc, leaving out `except` (0: none). With `since` (a PID), only the
// PIDs handed out after it are looked at (up to the last one the kernel gave,
// wrapping around), whose stat is then all that is read.
int pgroup_members(pid_t pgid, pid_t except, std::vector<pid_t>* pids, pid_t since = 0);

// Process-wide registry of leaves that exist on disk, for the exit hook that
// removes them (and the parent) when the process exits normally.
void registry_add(const std::string& path, bool keep_alive);
void registry_set_keep(const std::string& path, bool keep_alive);
void registry_remove(const std::string& path);
// Removes the parent directory when no leaf of any environment is left in it.
void parent_remove_if_unused();

}  // namespace pidwatch
