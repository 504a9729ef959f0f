#include "reaper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "probe.h"
#include "sys.h"

namespace pidwatch {
namespace {

// A child without a pidfd (a kernel without pidfd_open) cannot be waited for in
// epoll: it is asked with waitid(WNOHANG) after 10 ms, doubling up to 1 s.
constexpr int kFirstCheckMs = 10;
constexpr int kMaxCheckMs = 1000;

struct Abandoned {
  pid_t pid;
  int pidfd;
};

// Hand-written: a thread blocked in epoll_wait on the pidfds is all this needs;
// the loops of the environments are gone or not ours to use.
struct Reaper {
  std::mutex mutex;
  std::vector<Abandoned> children;  // guarded by mutex
  bool running = false;             // the thread is up; guarded by mutex
  int epoll_fd = -1;
  int wake_fd = -1;  // eventfd: new children to register
};

Reaper& reaper() {
  static Reaper* r = new Reaper;  // never destroyed: the thread may outlive statics
  return *r;
}

// Reaps the child if it has exited. True when it is gone (reaped, or reaped by
// someone else: ECHILD).
bool try_reap(const Abandoned& child) {
  ExitInfo ignored;
  int r = child.pidfd >= 0 && capabilities().waitid_pidfd
              ? sys_waitid_exit(kPidfdIdType, child.pidfd, WNOHANG | __WALL, &ignored)
              : sys_waitid_exit(P_PID, child.pid, WNOHANG | __WALL, &ignored);
  return r != 1;
}

void wake(Reaper& r) {
  uint64_t one = 1;
  (void)!write(r.wake_fd, &one, sizeof one);
}

void* run(void*) {
  Reaper& r = reaper();
  int check_ms = kFirstCheckMs;
  for (;;) {
    bool unwatched = false;
    {
      std::lock_guard<std::mutex> lock(r.mutex);
      auto gone = [&](const Abandoned& child) {
        if (!try_reap(child)) {
          if (child.pidfd < 0) unwatched = true;
          return false;
        }
        if (child.pidfd >= 0) close(child.pidfd);  // also takes it off the epoll set
        return true;
      };
      r.children.erase(std::remove_if(r.children.begin(), r.children.end(), gone),
                       r.children.end());
      if (r.children.empty()) {  // done: nothing of the reaper stays behind
        close(r.epoll_fd);
        close(r.wake_fd);
        r.epoll_fd = r.wake_fd = -1;
        r.running = false;
        return nullptr;
      }
    }
    epoll_event events[16];
    int n = epoll_wait(r.epoll_fd, events, 16, unwatched ? check_ms : -1);
    check_ms = n == 0 ? std::min(check_ms * 2, kMaxCheckMs) : kFirstCheckMs;
    uint64_t count;
    for (int i = 0; i < n; i++) {
      if (events[i].data.fd == r.wake_fd) (void)!read(r.wake_fd, &count, sizeof count);
    }
  }
}

}  // namespace

void abandon_child(pid_t pid, int pidfd) {
  Reaper& r = reaper();
  if (pidfd < 0) pidfd = sys_pidfd_open(pid);  // works in sigchld mode where the kernel can
  if (pidfd < 0) pidfd = -1;
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.epoll_fd < 0) {
    r.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    r.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r.epoll_fd >= 0 && r.wake_fd >= 0) {
      epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.fd = r.wake_fd;
      epoll_ctl(r.epoll_fd, EPOLL_CTL_ADD, r.wake_fd, &ev);
    }
  }
  if (pidfd >= 0) {
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = pidfd;
    // Not watchable (no epoll): checked on the timer like a child without a pidfd.
    if (epoll_ctl(r.epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) != 0) {
      close(pidfd);
      pidfd = -1;
    }
  }
  r.children.push_back({pid, pidfd});
  if (r.running) return wake(r);
  // The thread blocks every signal: they are for the threads that run JS.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  r.running = pthread_create(&thread, &attr, run, nullptr) == 0;
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

bool reap_if_abandoned(pid_t pid) {
  Reaper& r = reaper();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = std::find_if(r.children.begin(), r.children.end(),
                         [pid](const Abandoned& child) { return child.pid == pid; });
  if (it == r.children.end() || !try_reap(*it)) return false;
  if (it->pidfd >= 0) close(it->pidfd);
  r.children.erase(it);
  if (r.children.empty() && r.running) wake(r);  // so the thread ends now, with its fds
  return true;
}

}  // namespace pidwatch
