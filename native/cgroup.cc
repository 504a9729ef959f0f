#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "probe.h"
#include "sys.h"

namespace pidwatch {
namespace {

constexpr long kCgroup2Magic = 0x63677270;
// How long a non-SIGKILL tree.kill waits for the leaf to report "frozen 1"
// before it signals anyway (a member in uninterruptible sleep delays freezing).
constexpr int kFreezeWaitMs = 100;
// How long the exit hook waits, in all, for killed trees to empty.
constexpr long kExitWaitMs = 500;

// Reads a whole small file; returns its size or -errno.
ssize_t read_all(int fd, std::string* out) {
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return static_cast<ssize_t>(out->size());
    out->append(buf, static_cast<size_t>(n));
  }
}

int read_at(int dir_fd, const char* name, std::string* out) {
  int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t r = read_all(fd, out);
  close(fd);
  return r < 0 ? static_cast<int>(r) : 0;
}

int read_path(const std::string& path, std::string* out) {
  return read_at(AT_FDCWD, path.c_str(), out);
}

int write_at(int dir_fd, const char* name, const char* value) {
  int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, value, strlen(value));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

// The value after "key " in a "key value" per line file, or -1.
double field(const std::string& text, const char* key) {
  size_t len = strlen(key);
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (end - at > len && text.compare(at, len, key) == 0 && text[at + len] == ' ')
      return strtod(text.c_str() + at + len + 1, nullptr);
    at = end + 1;
  }
  return -1;
}

void parse_pids(const std::string& text, std::vector<pid_t>* pids) {
  const char* p = text.c_str();
  while (*p) {
    char* end;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0) pids->push_back(static_cast<pid_t>(pid));
    p = end;
    while (*p == '\n') p++;
  }
}

// mountinfo escapes spaces and the like as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && isdigit(s[i + 1]) && isdigit(s[i + 2]) &&
        isdigit(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// This process's cgroup v2 directory: the "0::" line of /proc/self/cgroup, under
// the cgroup2 mount (found in /proc/self/mountinfo) whose root holds it. Works in
// the unified and the hybrid layout alike.
std::string own_cgroup_dir() {
  std::string text;
  if (read_path("/proc/self/cgroup", &text) < 0) return "";
  std::string rel;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, 3, "0::") == 0) rel = text.substr(at + 3, end - at - 3);
    at = end + 1;
  }
  if (rel.empty() || rel[0] != '/') return "";
  if (read_path("/proc/self/mountinfo", &text) < 0) return "";
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    size_t dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    // id parent major:minor root mountpoint ...
    std::vector<std::string> f;
    size_t p = 0;
    while (f.size() < 5 && p < dash) {
      size_t q = line.find(' ', p);
      if (q == std::string::npos || q > dash) q = dash;
      f.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    if (f.size() < 5) continue;
    std::string root = unescape(f[3]), mount = unescape(f[4]);
    if (root == "/") root = "";
    if (rel.compare(0, root.size(), root) != 0) continue;
    if (rel.size() > root.size() && !root.empty() && rel[root.size()] != '/') continue;
    std::string dir = mount + rel.substr(root.size());
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
  }
  return "";
}

bool writable_cgroup2(const std::string& dir) {
  struct statfs sf;
  if (statfs(dir.c_str(), &sf) != 0 || sf.f_type != kCgroup2Magic) return false;
  return access(dir.c_str(), W_OK) == 0 && access((dir + "/cgroup.procs").c_str(), W_OK) == 0;
}

std::string probe_root() {
  const char* off = getenv("PIDWATCH_CGROUP");
  if (off && strcmp(off, "0") == 0) return "";
  const char* given = getenv("PIDWATCH_CGROUP_ROOT");
  std::string dir = given && *given ? given : own_cgroup_dir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty() || !writable_cgroup2(dir)) return "";
  return dir;
}

std::mutex registry_mutex;
std::map<std::string, bool>* registry = nullptr;  // leaf path -> keep alive at exit
std::string parent_dir;
int parent_err = 0;
bool parent_tried = false;
bool exit_hook_set = false;

void sleep_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, nullptr);
}

// At exit: every leaf still on disk is emptied (its members killed, or moved to
// the root when the tree was spawned detached) and removed, then the parent.
void remove_all_at_exit() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (registry) {
    std::vector<LeafDir> leaves;
    for (const auto& [path, keep] : *registry) {
      LeafDir leaf;
      leaf.path = path;
      leaf.dir_fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (leaf.dir_fd < 0) continue;
      leaf.events_fd = openat(leaf.dir_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
      if (keep) leaf_migrate(leaf, cgroup_root());
      else leaf_signal(leaf, SIGKILL);
      leaves.push_back(std::move(leaf));
    }
    // All killed first, then each waited for within one shared bound.
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (LeafDir& leaf : leaves) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      leaf_wait_empty(leaf, static_cast<int>(std::max(0L, kExitWaitMs - waited)));
      leaf_remove(&leaf);
      leaf_close(&leaf);
    }
    registry->clear();
  }
  if (!parent_dir.empty()) {
    for (int i = 0; i < 50 && rmdir(parent_dir.c_str()) != 0 && errno == EBUSY; i++) sleep_ms(2);
  }
}

// A process killed by a signal (a test runner ending its workers with SIGTERM)
// runs no exit hook. The first tree of a later process removes what such a
// process left: the empty leaves of a pidwatch-<pid> whose process is gone,
// then that directory. A leaf that still has members is left alone.
void remove_stale_dirs(const std::string& root) {
  DIR* dir = opendir(root.c_str());
  if (!dir) return;
  pid_t self = getpid();
  while (struct dirent* e = readdir(dir)) {
    if (strncmp(e->d_name, "pidwatch-", 9) != 0) continue;
    pid_t owner = static_cast<pid_t>(atoi(e->d_name + 9));
    if (owner <= 0 || owner == self || kill(owner, 0) == 0 || errno != ESRCH) continue;
    std::string stale = root + "/" + e->d_name;
    if (DIR* leaves = opendir(stale.c_str())) {
      while (struct dirent* leaf = readdir(leaves)) {
        if (leaf->d_type == DT_DIR && leaf->d_name[0] != '.')
          rmdir((stale + "/" + leaf->d_name).c_str());
      }
      closedir(leaves);
    }
    rmdir(stale.c_str());
  }
  closedir(dir);
}

}  // namespace

const std::string& cgroup_root() {
  static std::once_flag once;
  static std::string root;
  std::call_once(once, [] { root = probe_root(); });
  return root;
}

const std::string& cgroup_parent(int* err) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!parent_tried && !cgroup_root().empty()) {
    parent_tried = true;
    static bool swept = false;
    if (!swept) remove_stale_dirs(cgroup_root());
    swept = true;
    std::string dir = cgroup_root() + "/pidwatch-" + std::to_string(getpid());
    if (mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) {
      parent_dir = dir;
      if (!registry) registry = new std::map<std::string, bool>;
      if (!exit_hook_set) atexit(remove_all_at_exit);
      exit_hook_set = true;
    } else {
      parent_err = errno;
    }
  }
  if (err) *err = parent_dir.empty() ? (parent_err ? parent_err : ENOENT) : 0;
  return parent_dir;
}

int leaf_create(const std::string& path, LeafDir* leaf) {
  if (mkdir(path.c_str(), 0755) != 0) return -errno;
  leaf->path = path;
  leaf->procs_path = path + "/cgroup.procs";
  if (int r = leaf_open(leaf)) {
    rmdir(path.c_str());
    return r;
  }
  leaf->base_user_us = leaf->base_system_us = 0;
  leaf->base_known = true;
  leaf->has_memory_peak = faccessat(leaf->dir_fd, "memory.peak", R_OK, 0) == 0;
  return 0;
}

int leaf_open(LeafDir* leaf) {
  leaf->dir_fd = open(leaf->path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (leaf->dir_fd >= 0)
    leaf->events_fd = openat(leaf->dir_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
  struct stat st;
  // The id of a pooled leaf, reopened, is known already.
  if (leaf->dir_fd < 0 || leaf->events_fd < 0 || (leaf->id == 0 && fstat(leaf->dir_fd, &st) != 0)) {
    int err = errno;
    leaf_close(leaf);
    return -err;
  }
  if (leaf->id == 0) leaf->id = st.st_ino;
  return 0;
}

void leaf_close(LeafDir* leaf) {
  if (leaf->events_fd >= 0) close(leaf->events_fd);
  if (leaf->dir_fd >= 0) close(leaf->dir_fd);
  leaf->events_fd = leaf->dir_fd = -1;
}

int leaf_remove(LeafDir* leaf) {
  if (rmdir(leaf->path.c_str()) != 0 && errno != ENOENT) return -errno;
  leaf_close(leaf);
  return 0;
}

int leaf_events(const LeafDir& leaf, CgroupEvents* events) {
  char buf[128];
  ssize_t n;
  do {
    n = pread(leaf.events_fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  buf[n] = '\0';
  const char* p = strstr(buf, "populated ");
  events->populated = p && p[10] == '1';
  p = strstr(buf, "frozen ");
  events->frozen = p && p[7] == '1';
  return 0;
}

int leaf_pids(const LeafDir& leaf, std::vector<pid_t>* pids) {
  std::string text;
  pids->clear();
  if (int r = read_at(leaf.dir_fd, "cgroup.procs", &text)) return r;
  parse_pids(text, pids);
  return 0;
}

int leaf_cpu(const LeafDir& leaf, double* user_us, double* system_us) {
  std::string text;
  if (int r = read_at(leaf.dir_fd, "cpu.stat", &text)) return r;
  double user = field(text, "user_usec"), system = field(text, "system_usec");
  if (user < 0 || system < 0) return -ENODATA;
  *user_us = user;
  *system_us = system;
  return 0;
}

int64_t leaf_memory_peak(const LeafDir& leaf) {
  std::string text;
  if (int r = read_at(leaf.dir_fd, "memory.peak", &text)) return r;
  return strtoll(text.c_str(), nullptr, 10);
}

namespace {

// Waits for "frozen 1" on cgroup.events (a priority event on each change).
void wait_frozen(const LeafDir& leaf) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    CgroupEvents ev;
    if (leaf_events(leaf, &ev) != 0 || ev.frozen || !ev.populated) return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (waited >= kFreezeWaitMs) return;
    struct pollfd pfd = {leaf.events_fd, POLLPRI, 0};
    poll(&pfd, 1, static_cast<int>(kFreezeWaitMs - waited));
  }
}

// Signals the members of `pids` through pidfds. A pidfd is opened first, then
// cgroup.procs is read again: a PID still listed there names, as long as the
// pidfd's process lives, that very process, so the signal reaches a member or
// (the process having died meanwhile) nothing at all; never a reused PID.
int signal_members(const LeafDir& leaf, const std::vector<pid_t>& pids, int sig) {
  const Capabilities& caps = capabilities();
  std::vector<int> fds(pids.size(), -1);
  bool have_pidfds = false;
  for (size_t i = 0; i < pids.size(); i++) {
    fds[i] = sys_pidfd_open(pids[i]);
    if (fds[i] >= 0) have_pidfds = true;
  }
  std::vector<pid_t> now;
  leaf_pids(leaf, &now);
  std::sort(now.begin(), now.end());
  int sent = 0;
  for (size_t i = 0; i < pids.size(); i++) {
    bool listed = std::binary_search(now.begin(), now.end(), pids[i]);
    if (fds[i] >= 0) {
      if (listed && (caps.pidfd_send_signal ? sys_pidfd_send_signal(fds[i], sig) == 0
                                            : kill(pids[i], sig) == 0))
        sent++;
      close(fds[i]);
    } else if (!have_pidfds && listed && kill(pids[i], sig) == 0) {
      // No pidfds on this kernel: the leaf is frozen, so a listed member cannot
      // exit on its own between the read and the kill.
      sent++;
    }
  }
  return sent;
}

}  // namespace

int leaf_signal(LeafDir& leaf, int sig) {
  CgroupEvents ev;
  if (int r = leaf_events(leaf, &ev)) return r;
  if (!ev.populated) return 0;
  if (sig == SIGKILL) {
    int r = write_at(leaf.dir_fd, "cgroup.kill", "1");
    leaf.killed = true;
    if (r == 0) return 1;
    if (r != -ENOENT) return r;  // before Linux 5.14: one member at a time
  }
  bool froze = sig != 0 && !ev.frozen && write_at(leaf.dir_fd, "cgroup.freeze", "1") == 0;
  if (froze) wait_frozen(leaf);
  std::vector<pid_t> pids;
  int r = leaf_pids(leaf, &pids);
  int count = r < 0 ? r : static_cast<int>(pids.size());
  if (r == 0 && sig != 0) signal_members(leaf, pids, sig);
  if (froze) write_at(leaf.dir_fd, "cgroup.freeze", "0");
  return count;
}

bool leaf_wait_empty(const LeafDir& leaf, int timeout_ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    CgroupEvents ev;
    if (leaf_events(leaf, &ev) != 0 || !ev.populated) return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (waited >= timeout_ms) return false;
    struct pollfd pfd = {leaf.events_fd, POLLPRI, 0};
    poll(&pfd, 1, static_cast<int>(std::min<long>(timeout_ms - waited, 10)));
  }
}

void leaf_migrate(const LeafDir& leaf, const std::string& to) {
  int to_fd = open(to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (to_fd < 0) return;
  std::vector<pid_t> pids;
  for (int round = 0; round < 16 && leaf_pids(leaf, &pids) == 0 && !pids.empty(); round++) {
    for (pid_t pid : pids) write_at(to_fd, "cgroup.procs", std::to_string(pid).c_str());
  }
  close(to_fd);
}

namespace {

// Adds `pid` to *pids when /proc/<pid>/stat says it is a live member of pgid.
void check_member(int proc_fd, long pid, pid_t pgid, pid_t except, std::vector<pid_t>* pids) {
  char path[32], buf[512];
  snprintf(path, sizeof path, "%ld/stat", pid);
  int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = '\0';
  // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
  const char* p = strrchr(buf, ')');
  int ppid, pgrp;
  char state;
  if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return;
  if (pgrp == pgid && pid != except && state != 'Z') pids->push_back(static_cast<pid_t>(pid));
}

// Up to this many PIDs handed out since the leader are looked at one by one;
// past it, /proc is listed instead.
constexpr long kProbeWindow = 64;

}  // namespace

int pgroup_members(pid_t pgid, pid_t except, std::vector<pid_t>* pids, pid_t since) {
  pids->clear();
  long last = 0;
  if (since > 0) {
    std::string text;
    if (read_path("/proc/sys/kernel/ns_last_pid", &text) == 0) last = atol(text.c_str());
  }
  int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) return -errno;
  if (since > 0 && last >= since && last - since <= kProbeWindow) {
    // The usual case: few PIDs handed out since, so no listing of /proc at all.
    for (long pid = since + 1; pid <= last; pid++) check_member(proc_fd, pid, pgid, except, pids);
    close(proc_fd);
    return 0;
  }
  // A PID handed out after `since`: in (since, last], or past the wrap-around.
  auto after_since = [&](long pid) {
    if (since <= 0 || last <= 0) return true;
    return since < last ? pid > since && pid <= last : pid > since || pid <= last;
  };
  DIR* proc = fdopendir(proc_fd);
  if (!proc) {
    int err = errno;
    close(proc_fd);
    return -err;
  }
  while (struct dirent* e = readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    long pid = atol(e->d_name);
    if (after_since(pid)) check_member(dirfd(proc), pid, pgid, except, pids);
  }
  closedir(proc);
  return 0;
}

void parent_remove_if_unused() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (parent_dir.empty() || (registry && !registry->empty())) return;
  if (rmdir(parent_dir.c_str()) != 0 && errno != ENOENT) return;
  parent_dir.clear();
  parent_tried = false;  // made again if a tree is spawned later
}

void registry_add(const std::string& path, bool keep_alive) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (registry) (*registry)[path] = keep_alive;
}

void registry_set_keep(const std::string& path, bool keep_alive) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!registry) return;
  auto it = registry->find(path);
  if (it != registry->end()) it->second = keep_alive;
}

void registry_remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (registry) registry->erase(path);
}

}  // namespace pidwatch
