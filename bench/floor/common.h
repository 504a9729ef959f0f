// Shared by the C floor programs: the clock, key=value arguments, a resident
// memory block, and idle children that are always killed and reaped.
#pragma once

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static inline double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline void die(const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

// Reads `key=value` from argv; `fallback` when absent.
static inline long arg_long(int argc, char** argv, const char* key, long fallback) {
  size_t len = strlen(key);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], key, len) == 0 && argv[i][len] == '=') return atol(argv[i] + len + 1);
  }
  return fallback;
}

static inline const char* arg_str(int argc, char** argv, const char* key, const char* fallback) {
  size_t len = strlen(key);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], key, len) == 0 && argv[i][len] == '=') return argv[i] + len + 1;
  }
  return fallback;
}

// posix_spawn with every stdio fd on /dev/null, as stdio 'ignore' does in Node.
static inline pid_t spawn_ignored(const char* path, char* const args[]) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; fd++) {
    posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  pid_t pid;
  int err = posix_spawn(&pid, path, &fa, NULL, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    errno = err;
    die("posix_spawn");
  }
  return pid;
}

// `mib` MiB of heap, every page written, kept for the life of the process.
static inline void hold_resident(long mib) {
  if (mib <= 0) return;
  size_t size = (size_t)mib << 20;
  char* block = malloc(size);
  if (block == NULL) die("malloc");
  memset(block, 1, size);
  __asm__ volatile("" : : "r"(block) : "memory");
}

// The idle children: `sleep 1000`, killed and reaped by idle_stop.
static pid_t* idle_pids;
static long idle_count;

static inline void idle_stop(void) {
  for (long i = 0; i < idle_count; i++) kill(idle_pids[i], SIGKILL);
  for (long i = 0; i < idle_count; i++) {
    while (waitpid(idle_pids[i], NULL, 0) < 0 && errno == EINTR) {
    }
  }
  idle_count = 0;
  free(idle_pids);
  idle_pids = NULL;
}

static inline void idle_start(long n) {
  if (n <= 0) return;
  idle_pids = calloc((size_t)n, sizeof(pid_t));
  if (idle_pids == NULL) die("calloc");
  char* args[] = {"sleep", "1000", NULL};
  for (long i = 0; i < n; i++) {
    idle_pids[i] = spawn_ignored("/bin/sleep", args);
    idle_count = i + 1;
  }
  atexit(idle_stop);
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// The q-th quantile (0..1) of n samples, nearest rank; sorts in place.
static inline double quantile(double* v, long n, double q) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  long rank = (long)(q * (double)n + 0.999999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1];
}

// The round protocol of bench/runner.mjs: {"ready":true} once set up, then one
// line of figures per `round` read on stdin, until `end` or EOF.
static inline void serve(void (*round)(void)) {
  printf("{\"ready\":true}\n");
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (strcmp(line, "end\n") == 0) break;
    if (strcmp(line, "round\n") == 0) {
      round();
      printf("\n");
      fflush(stdout);
    }
  }
}

static inline void finish(void) {
  idle_stop();
  printf("{\"done\":true,\"info\":{}}\n");
  fflush(stdout);
}
