// The floor for exit latency: clone3(CLONE_PIDFD | CLONE_VFORK) of `sleep 1000`,
// then, timed, pidfd_send_signal(SIGKILL), epoll_wait on the pidfd and
// waitid(P_PIDFD): the path an event loop built on pidfds takes.
//
//   floor-latency samples=S rounds=R [idle=K] [settle_ms=2]
//
// Prints {"rounds":[{"p50":us,"p99":us}, ...]} on stdout.
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

int main(int argc, char** argv) {
  long samples = arg_long(argc, argv, "samples", 200);
  long rounds = arg_long(argc, argv, "rounds", 5);
  long settle_ms = arg_long(argc, argv, "settle_ms", 2);
  idle_start(arg_long(argc, argv, "idle", 0));

  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  double* v = calloc((size_t)samples, sizeof(double));
  if (v == NULL) die("calloc");

  for (long i = 0; i < samples / 10; i++) one_sample(epfd, settle_ms);
  printf("{\"rounds\":[");
  for (long r = 0; r < rounds; r++) {
    for (long i = 0; i < samples; i++) v[i] = one_sample(epfd, settle_ms);
    double p50 = quantile(v, samples, 0.5);
    double p99 = quantile(v, samples, 0.99);
    printf("%s{\"p50\":%.3f,\"p99\":%.3f}", r ? "," : "", p50, p99);
  }
  printf("]}\n");
  fflush(stdout);
  free(v);
  return 0;
}
