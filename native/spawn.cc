#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#if defined(__SANITIZE_ADDRESS__)
#define PIDWATCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PIDWATCH_ASAN 1
#endif
#endif
#ifdef PIDWATCH_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "sys.h"

namespace pidwatch {
namespace {

// The child's stack: the parent thread is suspended (CLONE_VFORK) until the
// child calls execve or exits, so a buffer in the parent's frame is safe.
constexpr size_t kChildStackSize = 64 * 1024;

// Under AddressSanitizer (the memcheck build) the child's frames poison their
// redzones in the shadow memory it shares with the parent (CLONE_VM), and the
// child never returns to clear them: the parent clears them once it resumes,
// before its own stack reuses those bytes.
void forget_child_frames(char* stack, size_t size) {
#ifdef PIDWATCH_ASAN
  ASAN_UNPOISON_MEMORY_REGION(stack, size);
#else
  (void)stack;
  (void)size;
#endif
}

// The kernel's ceiling for fs.nr_open, so for every fd number: INT_MAX & -64.
constexpr int kFdCeiling = 0x7fffffc0;

constexpr uint64_t kCloneClearSighand = 0x100000000ULL;  // CLONE_CLEAR_SIGHAND, Linux 5.5

enum Step : int { kStepNone, kStepUnshare, kStepCgroup, kStepSetsid, kStepSetpgid, kStepDup,
                  kStepOpen, kStepChdir, kStepSetgid, kStepSetuid, kStepPrctl, kStepExecve };

const char* step_name(int step) {
  switch (step) {
    case kStepUnshare: return "unshare";
    case kStepCgroup: return "write";  // to the leaf's cgroup.procs
    case kStepSetsid: return "setsid";
    case kStepSetpgid: return "setpgid";
    case kStepDup: return "dup2";
    case kStepOpen: return "open";
    case kStepChdir: return "chdir";
    case kStepSetgid: return "setgid";
    case kStepSetuid: return "setuid";
    case kStepPrctl: return "prctl";
    default: return "execve";
  }
}

// Everything the child needs, prepared by the parent. The child shares the
// parent's memory: it reads this, writes only err/step and sh_argv[1], and
// allocates nothing.
struct ChildArgs {
  // The paths to try, in order, as execvp tries them: one when the file has a
  // slash, else one per PATH entry (relative ones relative to the child's cwd).
  char* const* paths;
  int path_count;
  bool searching;           // the paths come from PATH (the file has no slash)
  volatile int path_index;  // the path tried last (the one that ran, on success)
  char* const* argv;
  // {"/bin/sh", <the path>, argv[1], ..., nullptr}: how execvp runs a file the kernel
  // cannot (ENOEXEC: no #! line, no ELF header), as a shell script.
  char** sh_argv;
  char* const* envp;
  const char* cwd;
  int* stdio;  // scratch copy of the request's stdio codes, child fd order
  int stdio_count;
  // Per child fd, 1 where it is the child's end of a pipe or socket pair made for it:
  // made non-blocking with the parent's end, it is made blocking once in place.
  const char* made_here;
  int keep_below;  // the child's own fd table keeps fds [0, keep_below) only
  bool setsid;
  bool setpgid;
  const char* cgroup_procs;  // non-null: join this cgroup before anything runs
  bool set_uid, set_gid;
  uid_t uid;
  gid_t gid;
  bool pdeathsig;
  bool normal_policy;
  bool handlers_cleared;  // clone3 reset every handled signal (CLONE_CLEAR_SIGHAND)
  pid_t parent_pid;
  int err_fd;  // where the clone copies memory: the pipe to report err/step on, else -1
  volatile int err;
  volatile int step;
};

[[noreturn]] void child_fail(ChildArgs* a, int step) {
  a->err = errno;
  a->step = step;
  if (a->err_fd >= 0) {
    int report[2] = {a->err, step};
    ssize_t ignored = write(a->err_fd, report, sizeof report);
    (void)ignored;
  }
  _exit(127);
}

// False where CLONE_VM | CLONE_VFORK does not run the child in the parent's
// memory (QEMU user mode turns it into a plain fork): set by the probe.
std::atomic<bool> clone_shares_memory{true};

// The child starts on the parent's fd table (CLONE_FILES), so that the kernel
// does not copy every fd of the parent (one pidfd per running child, say) only
// to close it again at execve. It takes a copy of the fds it may need, those
// below keep_below, before it touches any fd: every other fd is closed, so the
// child holds exactly its stdio. Returns false if no copy could be made.
// getdents64's record, which glibc does not declare.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Closes the open fds from `first` up, as listed in /proc/self/fd: as many
// close calls as there are open fds, where a loop up to RLIMIT_NOFILE (which
// Node raises to the hard limit, 524288 or 1048576) costs that many, and misses
// fds above it. Raw getdents64 into a stack buffer: no allocation, safe in the
// vfork child. As glibc's closefrom fallback does, the listing is read again
// from the start after a batch that closed something. False without /proc.
bool close_listed_fds(int first) {
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    bool closed = false;
    for (long off = 0; off < n;) {
      const LinuxDirent64* entry = reinterpret_cast<const LinuxDirent64*>(buf + off);
      off += entry->d_reclen;
      int fd = 0;
      const char* c = entry->d_name;
      if (*c < '0' || *c > '9') continue;  // . and ..
      for (; *c >= '0' && *c <= '9'; c++) fd = fd * 10 + (*c - '0');
      if (fd < first || fd == dir) continue;
      close(fd);
      closed = true;
    }
    if (closed && lseek(dir, 0, SEEK_SET) < 0) break;
  }
  close(dir);
  return true;
}

bool unshare_fds(const ChildArgs* a) {
  unsigned first = static_cast<unsigned>(a->keep_below);
  if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_UNSHARE) == 0) return true;
  // Before Linux 5.9: copy the whole table, then close what is above.
  if (unshare(CLONE_FILES) != 0) return false;
  if (syscall(SYS_close_range, first, ~0U, 0) != 0 && !close_listed_fds(a->keep_below)) {
    // Without close_range and without /proc: every fd below RLIMIT_NOFILE.
    struct rlimit nofile;
    int limit = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 1u << 20
                    ? static_cast<int>(nofile.rlim_cur)
                    : 1 << 20;
    for (int fd = a->keep_below; fd < limit; fd++) close(fd);
  }
  return true;
}

// The kernel's struct sigaction, for raw rt_sigaction: glibc's wrapper refuses
// the signals it uses itself (32 and 33), whose handlers must be reset too.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

// Signals are all blocked here (the parent blocked them around clone), and stay
// so until execve. The standard signals get their default action, ignored ones
// included (SIGPIPE, which Node ignores), as child_process does. Every signal
// with a handler is reset before the mask is lifted, so no parent handler ever
// runs in the child: by the kernel when clone3 took CLONE_CLEAR_SIGHAND, else here.
void reset_signals(bool handlers_cleared) {
  KernelSigaction dfl = {SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig < 32; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  if (handlers_cleared) return;
  for (int sig = 32; sig <= 64; sig++) {
    KernelSigaction old;
    if (syscall(SYS_rt_sigaction, sig, nullptr, &old, 8) != 0) continue;
    if (old.handler != SIG_DFL && old.handler != SIG_IGN)
      syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
}

int child_main(void* arg) {
  ChildArgs* a = static_cast<ChildArgs*>(arg);
  // The policy the caller's thread has (see spawner.cc); before a setuid, which
  // would take the right to change it. It cannot fail: SCHED_BATCH to
  // SCHED_OTHER at the same nice value needs no privilege.
  if (a->normal_policy) {
    struct sched_param param = {};
    syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &param);
  }
  // Nothing may open, close or dup an fd before this: the table is the parent's.
  if (!unshare_fds(a)) child_fail(a, kStepUnshare);

  // Where clone3 could not place the child in its tree's cgroup, it moves
  // itself ("0" is the writer) before it can fork or exec anything.
  if (a->cgroup_procs) {
    int fd = open(a->cgroup_procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) child_fail(a, kStepCgroup);
    close(fd);
  }

  reset_signals(a->handlers_cleared);

  if (a->setsid && setsid() < 0) child_fail(a, kStepSetsid);
  if (!a->setsid && a->setpgid && setpgid(0, 0) < 0) child_fail(a, kStepSetpgid);

  // Move sources that sit in the target range out of the way, then dup2 into place.
  int n = a->stdio_count;
  int* src = a->stdio;
  for (int fd = 0; fd < n; fd++) {
    if (src[fd] >= 0 && src[fd] < n && src[fd] != fd) {
      int moved = fcntl(src[fd], F_DUPFD_CLOEXEC, n);
      if (moved < 0) child_fail(a, kStepDup);
      src[fd] = moved;
    }
  }
  for (int fd = 0; fd < n; fd++) {
    if (src[fd] == kStdioNone) continue;
    if (src[fd] == kStdioNull) {
      int null_fd = open("/dev/null", fd == 0 ? O_RDONLY : O_RDWR);
      if (null_fd < 0) child_fail(a, kStepOpen);
      if (null_fd != fd) {
        if (dup2(null_fd, fd) < 0) child_fail(a, kStepDup);
        close(null_fd);
      }
    } else if (src[fd] == fd) {
      if (fcntl(fd, F_SETFD, 0) < 0) child_fail(a, kStepDup);
    } else if (dup2(src[fd], fd) < 0) {
      child_fail(a, kStepDup);
    }
  }

  for (int fd = 0; fd < n; fd++) {
    if (a->made_here[fd] && fcntl(fd, F_SETFL, 0) < 0) child_fail(a, kStepDup);
  }

  // A slot with nothing in it ('ignore' or null above fd 2) still holds the
  // parent's fd of that number: close it, or it leaks into the program.
  for (int fd = 0; fd < n; fd++) {
    if (src[fd] == kStdioNone) close(fd);
  }

  // The sources placed above (a parent's fd passed in stdio, say) go too: the
  // child keeps its stdio fds and nothing else, with or without FD_CLOEXEC.
  // The error pipe, when there is one, is the highest fd kept, and stays open
  // until execve closes it (CLOEXEC).
  int close_end = a->err_fd >= 0 ? a->err_fd : a->keep_below;
  if (close_end > n && syscall(SYS_close_range, n, close_end - 1, 0) != 0) {
    for (int fd = n; fd < close_end; fd++) close(fd);
  }

  if (a->cwd && chdir(a->cwd) < 0) child_fail(a, kStepChdir);

  // Raw syscalls: glibc's setuid() would signal every thread of the parent.
  if (a->set_uid || a->set_gid) syscall(SYS_setgroups, 0, nullptr);
  if (a->set_gid && syscall(SYS_setgid, a->gid) < 0) child_fail(a, kStepSetgid);
  if (a->set_uid && syscall(SYS_setuid, a->uid) < 0) child_fail(a, kStepSetuid);

  if (a->pdeathsig) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(a, kStepPrctl);
    if (getppid() != a->parent_pid) _exit(128 + SIGKILL);
  }

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // execvp's search, here in the child: after the chdir, so that a relative PATH
  // entry (the empty one is the current directory) means what it means to the
  // program, and after setuid, so that the new credentials decide what may run.
  // A path that is missing or cannot be run is skipped; EACCES is reported if
  // one existed but none ran, as execvp does.
  bool saw_eacces = false;
  for (int i = 0; i < a->path_count; i++) {
    a->path_index = i;
    execve(a->paths[i], a->argv, a->envp);
    if (errno == ENOEXEC) {
      a->sh_argv[1] = a->paths[i];
      execve("/bin/sh", a->sh_argv, a->envp);
      errno = ENOEXEC;  // no shell to run it either: the error is still about the file
    }
    int err = errno;
    if (err == EACCES) saw_eacces = true;
    else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV && err != ETIMEDOUT)
      child_fail(a, kStepExecve);  // E2BIG, ENOEXEC, ...: about that very file
    if (!a->searching) child_fail(a, kStepExecve);  // a file with a slash: no search
  }
  a->path_index = -1;  // none ran: the error is about the name
  errno = saw_eacces ? EACCES : ENOENT;
  child_fail(a, kStepExecve);
}

// The paths execvp would try for req.file: itself when it has a slash, else
// each entry of PATH (default /usr/bin:/bin) joined with it, an empty entry
// meaning the current directory. Relative ones stay relative: the child tries
// them after its chdir.
bool searches_path(const SpawnRequest& req) { return req.file.find('/') == std::string::npos; }

std::vector<std::string> search_paths(const SpawnRequest& req) {
  if (!searches_path(req)) return {req.file};
  const std::string dirs = req.has_path_env ? req.path_env : "/usr/bin:/bin";
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    paths.push_back((dir.empty() ? std::string(".") : dir) + "/" + req.file);
    start = end + 1;
  }
  return paths;
}

// Whether any of the PATH candidates names something (relative ones seen from
// the child's cwd): where none does, the search fails with ENOENT at once,
// without a child. Which one runs is for the child to find out, under its
// credentials.
bool any_exists(const std::vector<std::string>& paths, const SpawnRequest& req) {
  struct stat st;
  for (const std::string& path : paths) {
    const std::string seen = path[0] != '/' && req.has_cwd ? req.cwd + "/" + path : path;
    if (stat(seen.c_str(), &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) return true;
  }
  return false;
}

// Where the clone copies memory, the child reports a failure through a CLOEXEC
// pipe instead (as libuv does): its write end is placed above every fd the child
// keeps, so that the child's fd shuffling leaves it alone.
int open_error_pipe(ChildArgs* a, int* read_end) {
  int pair[2];
  if (pipe2(pair, O_CLOEXEC) < 0) return errno;
  int write_end = fcntl(pair[1], F_DUPFD_CLOEXEC, a->keep_below);
  int err = errno;
  close(pair[1]);
  if (write_end < 0) {
    close(pair[0]);
    return err;
  }
  *read_end = pair[0];
  a->err_fd = write_end;
  a->keep_below = write_end + 1;
  return 0;
}

// Blocks until the child has called execve (end of file) or reported a failure.
void read_child_error(int read_end, ChildArgs* a) {
  int report[2];
  ssize_t got;
  do {
    got = read(read_end, report, sizeof report);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof report)) {
    a->err = report[0];
    a->step = report[1];
  }
}

void close_all(std::vector<int>* fds) {
  for (int& fd : *fds) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

// Creates the pipes the request asks for. child_fds gets the child's ends (to be
// closed by the parent after clone); out->parent_fds the parent's.
int make_pipes(const SpawnRequest& req, std::vector<int>* child_src, std::vector<int>* child_fds,
               SpawnResult* out) {
  size_t n = req.stdio.size();
  out->parent_fds.assign(n, -1);
  child_fds->assign(n, -1);
  *child_src = req.stdio;
  for (size_t fd = 0; fd < n; fd++) {
    int code = req.stdio[fd];
    int pair[2];
    if (code == kStdioPipeIn || code == kStdioPipeOut) {
      // Both ends non-blocking, as the parent's must be (for its epoll set or the
      // streams); the child makes its own blocking again (see made_here).
      if (pipe2(pair, O_CLOEXEC | O_NONBLOCK) < 0) return out->syscall = "pipe2", errno;
      bool child_reads = code == kStdioPipeIn;
      (*child_fds)[fd] = child_reads ? pair[0] : pair[1];
      out->parent_fds[fd] = child_reads ? pair[1] : pair[0];
    } else if (code == kStdioSocketPair) {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
        return out->syscall = "socketpair", errno;
      (*child_fds)[fd] = pair[1];
      out->parent_fds[fd] = pair[0];
    } else {
      continue;
    }
    (*child_src)[fd] = (*child_fds)[fd];
  }
  return 0;
}

std::vector<char*> pointers(const std::vector<std::string>& strings) {
  std::vector<char*> ptrs;
  ptrs.reserve(strings.size() + 1);
  for (const std::string& s : strings) ptrs.push_back(const_cast<char*>(s.c_str()));
  ptrs.push_back(nullptr);
  return ptrs;
}

// Waits for a child that has already exited (its exec failed).
void reap_now(pid_t pid, int pidfd) {
  ExitInfo ignored;
  int r = pidfd >= 0 ? sys_waitid_exit(kPidfdIdType, pidfd, __WALL, &ignored) : -EINVAL;
  if (r < 0) sys_waitid_exit(P_PID, pid, __WALL, &ignored);
}

}  // namespace

void spawn_process(const SpawnRequest& req, SpawnTier tier, SpawnResult* out) {
  if (req.parent_env && !req.parent_env->Unchanged()) {
    out->err = ESTALE;
    out->syscall = "environ";
    return;
  }
  std::vector<std::string> paths = search_paths(req);
  if (searches_path(req) && !any_exists(paths, req)) {
    out->err = ENOENT;
    out->syscall = "execve";
    return;
  }
  std::vector<int> child_src, child_fds;
  if (int err = make_pipes(req, &child_src, &child_fds, out)) {
    out->err = err;
    close_all(&child_fds);
    close_all(&out->parent_fds);
    return;
  }
  std::vector<char*> argv = pointers(req.argv);
  std::vector<char*> sh_argv{const_cast<char*>("/bin/sh"), nullptr};
  if (argv.size() > 1) sh_argv.insert(sh_argv.end(), argv.begin() + 1, argv.end() - 1);
  sh_argv.push_back(nullptr);
  std::vector<char*> envp = req.parent_env ? std::vector<char*>() : pointers(req.env);

  std::vector<char*> path_ptrs = pointers(paths);

  ChildArgs args;
  args.paths = path_ptrs.data();
  args.path_count = static_cast<int>(paths.size());
  args.path_index = -1;
  args.searching = searches_path(req);
  args.argv = argv.data();
  args.sh_argv = sh_argv.data();
  args.envp = req.parent_env ? req.parent_env->envp.data() : envp.data();
  args.cwd = req.has_cwd ? req.cwd.c_str() : nullptr;
  args.stdio = child_src.data();
  args.stdio_count = static_cast<int>(child_src.size());
  std::vector<char> made_here(child_fds.size());
  for (size_t fd = 0; fd < child_fds.size(); fd++) made_here[fd] = child_fds[fd] >= 0;
  args.made_here = made_here.data();
  args.keep_below = args.stdio_count;
  for (int src : child_src) {
    // An fd number the kernel never hands out (JS checks it too): refused before
    // src + 1 could overflow.
    if (src >= kFdCeiling) {
      out->err = EBADF;
      out->syscall = "dup2";
      close_all(&child_fds);
      close_all(&out->parent_fds);
      return;
    }
    args.keep_below = std::max(args.keep_below, src + 1);
  }
  args.setsid = req.setsid;
  args.setpgid = req.setpgid;
  args.cgroup_procs = req.cgroup_procs;
  args.set_uid = req.set_uid;
  args.set_gid = req.set_gid;
  args.uid = req.uid;
  args.gid = req.gid;
  args.pdeathsig = req.pdeathsig;
  args.normal_policy = req.normal_policy;
  args.handlers_cleared = false;
  args.parent_pid = getpid();
  args.err_fd = -1;
  args.err = 0;
  args.step = kStepNone;

  // Where the clone is a fork in disguise, the child has its own fd table
  // anyway, and CLONE_FILES is refused (QEMU) or would be wrong.
  const bool shared = clone_shares_memory.load(std::memory_order_relaxed);
  const uint64_t share_files = shared ? CLONE_FILES : 0;
  int err_read = -1;
  if (!shared) {
    if (int err = open_error_pipe(&args, &err_read)) {
      out->err = err;
      out->syscall = "pipe2";
      close_all(&child_fds);
      close_all(&out->parent_fds);
      return;
    }
  }

  alignas(16) char stack[kChildStackSize];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid;
  int pidfd = -1;
  if (tier == SpawnTier::kClone3Pidfd) {
    CloneArgs ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK | share_files;
    ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    ca.exit_signal = SIGCHLD;
    ca.stack = reinterpret_cast<uint64_t>(stack);
    ca.stack_size = sizeof stack;
    // CLONE_CLEAR_SIGHAND (Linux 5.5) spares the child a syscall per handled
    // signal; before 5.5 clone3 answers EINVAL and the child resets them itself.
    static std::atomic<bool> clear_sighand{true};
    args.handlers_cleared = clear_sighand.load(std::memory_order_relaxed);
    if (args.handlers_cleared) ca.flags |= kCloneClearSighand;
    // CLONE_INTO_CGROUP (Linux 5.7) starts the child in its leaf. Before 5.7
    // clone3 answers E2BIG or EINVAL, and in a threaded cgroup EOPNOTSUPP: the
    // child then joins the leaf itself, and later spawns go that way at once.
    static std::atomic<bool> into_cgroup{true};
    if (req.cgroup_fd >= 0 && into_cgroup.load(std::memory_order_relaxed)) {
      ca.flags |= CLONE_INTO_CGROUP;
      ca.cgroup = static_cast<uint64_t>(req.cgroup_fd);
      args.cgroup_procs = nullptr;
      pid = sys_clone3_run(&ca, child_main, &args);
      if (pid == -EINVAL || pid == -E2BIG || pid == -EOPNOTSUPP) {
        into_cgroup.store(false, std::memory_order_relaxed);
        ca.flags &= ~CLONE_INTO_CGROUP;
        ca.cgroup = 0;
        args.cgroup_procs = req.cgroup_procs;
        pid = sys_clone3_run(&ca, child_main, &args);
      }
    } else {
      pid = sys_clone3_run(&ca, child_main, &args);
    }
    if (pid == -EINVAL && args.handlers_cleared) {
      clear_sighand.store(false, std::memory_order_relaxed);
      args.handlers_cleared = false;
      ca.flags &= ~kCloneClearSighand;
      pid = sys_clone3_run(&ca, child_main, &args);
    }
    if (pid < 0) errno = static_cast<int>(-pid);
  } else {
    pid = clone(child_main, stack + sizeof stack,
                static_cast<int>(CLONE_VM | CLONE_VFORK | share_files | SIGCHLD), &args);
  }
  int clone_errno = errno;
  forget_child_frames(stack, sizeof stack);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close_all(&child_fds);
  if (args.err_fd >= 0) {
    close(args.err_fd);
    if (pid >= 0) read_child_error(err_read, &args);
    close(err_read);
  }

  if (pid < 0) {
    out->err = clone_errno;
    out->syscall = tier == SpawnTier::kClone3Pidfd ? "clone3" : "clone";
    close_all(&out->parent_fds);
    return;
  }
  // The path that ran, or the one an error is about (none when no PATH entry
  // held the name: the error is then about the name itself).
  if (args.path_index >= 0) out->path = paths[args.path_index];
  if (args.err != 0) {
    reap_now(static_cast<pid_t>(pid), pidfd);
    if (pidfd >= 0) close(pidfd);
    out->err = args.err;
    out->syscall = step_name(args.step);
    close_all(&out->parent_fds);
    return;
  }
  if (tier == SpawnTier::kClonePidfdOpen) {
    pidfd = sys_pidfd_open(static_cast<pid_t>(pid));
    if (pidfd < 0) {
      // Without its pidfd the child cannot be watched: end it, and report why.
      out->err = -pidfd;
      out->syscall = "pidfd_open";
      kill(static_cast<pid_t>(pid), SIGKILL);
      reap_now(static_cast<pid_t>(pid), -1);
      close_all(&out->parent_fds);
      return;
    }
  }
  out->pid = static_cast<pid_t>(pid);
  out->pidfd = pidfd;
}

void set_clone_shares_memory(bool shares) {
  clone_shares_memory.store(shares, std::memory_order_relaxed);
}

namespace {
// Writes to the parent's memory, if it shares it, and exits.
int mark_and_exit(void* arg) {
  *static_cast<volatile int*>(arg) = 1;
  return 0;
}
}  // namespace

int probe_child(SpawnTier tier, bool waitid_pidfd, int* shares_memory) {
  volatile int marked = 0;
  void* mark = const_cast<int*>(&marked);
  alignas(16) char stack[4096];
  int pidfd = -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid;
  if (tier == SpawnTier::kClone3Pidfd) {
    CloneArgs ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK;
    ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    ca.exit_signal = 0;  // no SIGCHLD: the probe must be invisible to handlers
    ca.stack = reinterpret_cast<uint64_t>(stack);
    ca.stack_size = sizeof stack;
    pid = sys_clone3_run(&ca, mark_and_exit, mark);
  } else {
    pid = clone(mark_and_exit, stack + sizeof stack, CLONE_VM | CLONE_VFORK, mark);
    // QEMU user mode refuses any exit signal but SIGCHLD (EINVAL); there the
    // probe child signals its exit like any child (and is reaped below).
    if (pid < 0 && errno == EINVAL)
      pid = clone(mark_and_exit, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, mark);
    if (pid < 0) pid = -errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return static_cast<int>(pid);
  // With vfork semantics the child has run, in our memory, by now.
  *shares_memory = marked;
  // The child has exited and stays a zombie until reaped, so its PID is ours.
  if (tier == SpawnTier::kClonePidfdOpen) pidfd = sys_pidfd_open(static_cast<pid_t>(pid));
  ExitInfo ignored;
  if (!waitid_pidfd || pidfd < 0 || sys_waitid_exit(kPidfdIdType, pidfd, __WALL, &ignored) < 0)
    sys_waitid_exit(P_PID, static_cast<int>(pid), __WALL, &ignored);
  if (pidfd < 0) return pidfd == -1 ? -EINVAL : pidfd;  // -1: CLONE_PIDFD was ignored
  return pidfd;
}

}  // namespace pidwatch
