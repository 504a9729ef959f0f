// The floor for spawning: glibc posix_spawn (clone with CLONE_VM | CLONE_VFORK,
// then execve) and waitpid, with nothing else in the process.
//
//   floor-spawn mode=seq n=N rounds=R warmup=W [resident=MiB] [idle=K]
//   floor-spawn mode=conc n=N rounds=R
//   floor-spawn mode=fanout n=N rounds=R sleep=SEC
//
// Prints {"rounds":[{...}, ...]} on stdout, one object per round, in the units the
// JavaScript runners use (see bench/lib/scenarios.mjs).
#include <sys/resource.h>

#include "common.h"

static char* true_args[] = {"true", NULL};

static void wait_one(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "floor: child %d did not exit 0\n", pid);
    exit(1);
  }
}

static void run_true(long n) {
  for (long i = 0; i < n; i++) wait_one(spawn_ignored("/bin/true", true_args));
}

static void seq(long n, long rounds, long warmup) {
  run_true(warmup);
  printf("{\"rounds\":[");
  for (long r = 0; r < rounds; r++) {
    double t0 = now_us();
    run_true(n);
    double t1 = now_us();
    printf("%s{\"usPerOp\":%.3f}", r ? "," : "", (t1 - t0) / (double)n);
  }
  printf("]}\n");
}

static void conc(long n, long rounds) {
  pid_t* pids = calloc((size_t)n, sizeof(pid_t));
  if (pids == NULL) die("calloc");
  run_true(n / 10);
  printf("{\"rounds\":[");
  for (long r = 0; r < rounds; r++) {
    double t0 = now_us();
    for (long i = 0; i < n; i++) pids[i] = spawn_ignored("/bin/true", true_args);
    for (long i = 0; i < n; i++) wait_one(pids[i]);
    double t1 = now_us();
    printf("%s{\"ms\":%.3f}", r ? "," : "", (t1 - t0) / 1e3);
  }
  printf("]}\n");
  free(pids);
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static long rss_kib(void) {
  long pages_total, pages_resident;
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == NULL) die("/proc/self/statm");
  if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
  fclose(f);
  return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void fanout(long n, long rounds, long sleep_s) {
  char seconds[32];
  snprintf(seconds, sizeof seconds, "%ld", sleep_s);
  char* args[] = {"sleep", seconds, NULL};
  pid_t* pids = calloc((size_t)n, sizeof(pid_t));
  if (pids == NULL) die("calloc");
  printf("{\"rounds\":[");
  for (long r = 0; r < rounds; r++) {
    long rss0 = rss_kib();
    double cpu0 = cpu_ms();
    double t0 = now_us();
    for (long i = 0; i < n; i++) pids[i] = spawn_ignored("/bin/sleep", args);
    double spawned = now_us();
    long rss1 = rss_kib();
    for (long i = 0; i < n; i++) {
      int status;
      while (waitpid(-1, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid");
      }
    }
    double t1 = now_us();
    double cpu = cpu_ms() - cpu0;
    printf("%s{\"lastExitMs\":%.3f,\"spawnMs\":%.3f,\"cpuMsPer1000\":%.3f,\"rssKiBPerChild\":%.4f}",
           r ? "," : "", (t1 - t0) / 1e3, (spawned - t0) / 1e3, cpu * 1000.0 / (double)n,
           (double)(rss1 - rss0) / (double)n);
  }
  printf("]}\n");
  free(pids);
}

int main(int argc, char** argv) {
  const char* mode = arg_str(argc, argv, "mode", "seq");
  long n = arg_long(argc, argv, "n", 1000);
  long rounds = arg_long(argc, argv, "rounds", 5);
  if (strcmp(mode, "seq") == 0) {
    hold_resident(arg_long(argc, argv, "resident", 0));
    idle_start(arg_long(argc, argv, "idle", 0));
    seq(n, rounds, arg_long(argc, argv, "warmup", n / 10));
  } else if (strcmp(mode, "conc") == 0) {
    conc(n, rounds);
  } else if (strcmp(mode, "fanout") == 0) {
    fanout(n, rounds, arg_long(argc, argv, "sleep", 1));
  } else {
    fprintf(stderr, "floor-spawn: unknown mode %s\n", mode);
    return 2;
  }
  fflush(stdout);
  return 0;
}
