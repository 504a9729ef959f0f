// The floor for spawning: glibc posix_spawn (clone with CLONE_VM | CLONE_VFORK,
// then execve) and waitpid, with nothing else in the process.
//
//   floor-spawn mode=seq n=N warmup=W [resident=MiB] [idle=K]
//   floor-spawn mode=conc n=N
//   floor-spawn mode=fanout n=N sleep=SEC
//
// Speaks the round protocol of bench/runner.mjs (see serve() in common.h); each
// round prints its figures in the units the JavaScript runners use
// (bench/lib/scenarios.mjs).
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

static long n_ops;

static void seq_round(void) {
  double t0 = now_us();
  run_true(n_ops);
  printf("{\"usPerOp\":%.3f}", (now_us() - t0) / (double)n_ops);
}

static pid_t* pids;

static void conc_round(void) {
  double t0 = now_us();
  for (long i = 0; i < n_ops; i++) pids[i] = spawn_ignored("/bin/true", true_args);
  for (long i = 0; i < n_ops; i++) wait_one(pids[i]);
  printf("{\"ms\":%.3f}", (now_us() - t0) / 1e3);
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

static char* sleep_args[] = {"sleep", "1", NULL};

static void fanout_round(void) {
  long rss0 = rss_kib();
  double cpu0 = cpu_ms();
  double t0 = now_us();
  for (long i = 0; i < n_ops; i++) pids[i] = spawn_ignored("/bin/sleep", sleep_args);
  double spawned = now_us();
  long rss1 = rss_kib();
  for (long i = 0; i < n_ops; i++) wait_one(pids[i]);
  double t1 = now_us();
  double cpu = cpu_ms() - cpu0;
  printf("{\"lastExitMs\":%.3f,\"spawnMs\":%.3f,\"cpuMsPer1000\":%.3f,\"rssKiBPerChild\":%.4f}",
         (t1 - t0) / 1e3, (spawned - t0) / 1e3, cpu * 1000.0 / (double)n_ops,
         (double)(rss1 - rss0) / (double)n_ops);
}

int main(int argc, char** argv) {
  const char* mode = arg_str(argc, argv, "mode", "seq");
  n_ops = arg_long(argc, argv, "n", 1000);
  pids = calloc((size_t)n_ops, sizeof(pid_t));
  if (pids == NULL) die("calloc");
  if (strcmp(mode, "seq") == 0) {
    hold_resident(arg_long(argc, argv, "resident", 0));
    idle_start(arg_long(argc, argv, "idle", 0));
    run_true(arg_long(argc, argv, "warmup", n_ops / 10));
    serve(seq_round);
  } else if (strcmp(mode, "conc") == 0) {
    run_true(n_ops / 10);
    serve(conc_round);
  } else if (strcmp(mode, "fanout") == 0) {
    static char seconds[32];
    snprintf(seconds, sizeof seconds, "%ld", arg_long(argc, argv, "sleep", 1));
    sleep_args[1] = seconds;
    serve(fanout_round);
  } else {
    fprintf(stderr, "floor-spawn: unknown mode %s\n", mode);
    return 2;
  }
  finish();
  return 0;
}
