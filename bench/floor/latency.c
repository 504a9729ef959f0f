// The floor for exit latency: clone3(CLONE_PIDFD | CLONE_VFORK) of `sleep 1000`,
// then, timed, pidfd_send_signal(SIGKILL), epoll_wait on the pidfd and
// waitid(P_PIDFD): the path an event loop built on pidfds takes.
//
//   floor-latency samples=S [idle=K] [settle_ms=2]
//
// Speaks the round protocol of bench/runner.mjs (see serve() in common.h); each
// round prints {"p50":us,"p99":us}.
#include <linux/sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "common.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static char* sleep_args[] = {"sleep", "1000", NULL};

// Returns the child's pidfd; the child is the exec'd `sleep 1000` by then
// (CLONE_VFORK holds the parent until the execve).
static int spawn_sleeper(void) {
  int pidfd = -1;
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD | CLONE_VFORK;
  args.pidfd = (unsigned long)&pidfd;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) die("clone3");
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    execve("/bin/sleep", sleep_args, environ);
    _exit(127);
  }
  return pidfd;
}

static double one_sample(int epfd, long settle_ms) {
  int pidfd = spawn_sleeper();
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = pidfd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) die("epoll_ctl");
  struct timespec settle = {.tv_sec = 0, .tv_nsec = settle_ms * 1000000L};
  nanosleep(&settle, NULL);

  double t0 = now_us();
  if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0) die("pidfd_send_signal");
  struct epoll_event out;
  while (epoll_wait(epfd, &out, 1, -1) < 1) {
    if (errno != EINTR) die("epoll_wait");
  }
  siginfo_t info;
  if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0) die("waitid");
  double t1 = now_us();

  if (info.si_code != CLD_KILLED || info.si_status != SIGKILL) {
    fprintf(stderr, "floor: sleeper was not killed by SIGKILL\n");
    exit(1);
  }
  epoll_ctl(epfd, EPOLL_CTL_DEL, pidfd, NULL);
  close(pidfd);
  return t1 - t0;
}

static int epfd;
static long samples, settle_ms;
static double* v;

static void latency_round(void) {
  for (long i = 0; i < samples; i++) v[i] = one_sample(epfd, settle_ms);
  double p50 = quantile(v, samples, 0.5);
  double p99 = quantile(v, samples, 0.99);
  printf("{\"p50\":%.3f,\"p99\":%.3f}", p50, p99);
}

int main(int argc, char** argv) {
  samples = arg_long(argc, argv, "samples", 200);
  settle_ms = arg_long(argc, argv, "settle_ms", 2);
  idle_start(arg_long(argc, argv, "idle", 0));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  v = calloc((size_t)samples, sizeof(double));
  if (v == NULL) die("calloc");
  for (long i = 0; i < samples / 10; i++) one_sample(epfd, settle_ms);
  serve(latency_round);
  finish();
  return 0;
}
