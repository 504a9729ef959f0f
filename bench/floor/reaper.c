// Runs one bench program so that nothing it starts outlives it. It becomes a
// child subreaper, starts the program in a process group of its own, and when
// the program ends (or on SIGTERM/SIGINT, the orchestrator's timeout) sends
// SIGKILL to that group and reaps every descendant before exiting with the
// program's status. The bench is measured inside; this process only sleeps in
// waitpid.
//
//   reaper PROGRAM [ARG...]
#include <dirent.h>
#include <sys/prctl.h>

#include "common.h"

// SIGKILL to every process whose parent is this one: orphans that left the group.
static void kill_children(void) {
  DIR* proc = opendir("/proc");
  if (proc == NULL) return;
  pid_t self = getpid();
  struct dirent* entry;
  while ((entry = readdir(proc)) != NULL) {
    char path[300], stat[512];
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
    FILE* f = fopen(path, "r");
    if (f == NULL) continue;
    size_t len = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[len] = 0;
    char* close_paren = strrchr(stat, ')');
    int ppid;
    if (close_paren != NULL && sscanf(close_paren + 2, "%*c %d", &ppid) == 1 && ppid == self) {
      kill(atoi(entry->d_name), SIGKILL);
    }
  }
  closedir(proc);
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: reaper PROGRAM [ARG...]\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("PR_SET_CHILD_SUBREAPER");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;  // no SA_RESTART: waitpid returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  pid_t program = fork();
  if (program < 0) die("fork");
  if (program == 0) {
    setpgid(0, 0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "reaper: %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  setpgid(program, program);

  int result = 1;
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid == program) {
      result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (pid < 0 && errno == EINTR && stop_requested) {
      kill(-program, SIGKILL);
      stop_requested = 0;
    } else if (pid < 0 && errno != EINTR) {
      die("waitpid");
    }
  }
  // Whatever the program left behind: its group, and orphans reparented here.
  kill(-program, SIGKILL);
  long leftovers = 0;
  for (;;) {
    pid_t pid = waitpid(-1, NULL, WNOHANG);
    if (pid > 0) {
      leftovers++;
      continue;
    }
    if (pid < 0 && errno == ECHILD) break;
    if (pid < 0 && errno != EINTR) die("waitpid");
    kill_children();
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 10000000L};
    nanosleep(&pause, NULL);
  }
  if (leftovers > 0) fprintf(stderr, "reaper: reaped %ld leftover processes\n", leftovers);
  return result;
}
