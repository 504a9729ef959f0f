// pidwatch-guardian: kills the process trees of one pidwatch process when that
// process ends, however it ends (a normal exit, an uncaught exception, SIGKILL).
//
//   pidwatch-guardian PPID      (stdin: a pipe from PPID)
//
// PPID starts it once, in a session of its own, and tells it over the pipe, one
// line each, which trees are to die with it:
//   K <path>   a cgroup leaf (a tree made with the 'cgroup' mechanism)
//   k <path>   that leaf's tree has ended: forget it
//   G <pgid>   a process group (the 'pgroup' mechanism)
//   g <pgid>   that group's tree has ended: forget it
// The guardian holds a pidfd of PPID (pidfd_open works on a non-child) and sleeps
// in poll() on it and on the pipe: no polling interval, no timer. When the pidfd
// turns readable (PPID has exited) it reads what is left in the pipe, sends
// SIGKILL to every group, writes "1" to cgroup.kill of every leaf (atomic against
// forks, setsid() and double forks), waits for each leaf to empty (cgroup.events,
// POLLPRI, bounded), removes the empty leaves and their parent directories, and
// exits. Without pidfd_open (Linux < 5.3) the end of the pipe, which the kernel
// closes when PPID dies, is the signal instead.
//
// Written in C rather than as a Node process because it lives as long as its
// parent: a few hundred KiB of RSS instead of the ~40 MiB of a Node process.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

// How long to wait for a killed leaf to empty before removing what can be removed.
#define EMPTY_WAIT_MS 2000

struct list {
  char **items;
  size_t count, capacity;
};

static struct list leaves;  // cgroup leaf paths
static struct list groups;  // process group ids, as text
static struct list dirs;    // parent directories of leaves ever seen

static void add(struct list *list, const char *item) {
  for (size_t i = 0; i < list->count; i++)
    if (strcmp(list->items[i], item) == 0) return;
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? list->capacity * 2 : 16;
    char **items = realloc(list->items, capacity * sizeof *items);
    if (!items) return;  // out of memory: this entry is not guarded
    list->items = items;
    list->capacity = capacity;
  }
  char *copy = strdup(item);
  if (copy) list->items[list->count++] = copy;
}

static void drop(struct list *list, const char *item) {
  for (size_t i = 0; i < list->count; i++) {
    if (strcmp(list->items[i], item) != 0) continue;
    free(list->items[i]);
    list->items[i] = list->items[--list->count];
    return;
  }
}

static void handle_line(char *line) {
  if (line[0] == '\0' || line[1] != ' ' || line[2] == '\0') return;
  const char *arg = line + 2;
  switch (line[0]) {
    case 'K': {
      add(&leaves, arg);
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%s", arg);
      char *slash = strrchr(dir, '/');
      if (slash && slash != dir) {
        *slash = '\0';
        add(&dirs, dir);
      }
      break;
    }
    case 'k':
      drop(&leaves, arg);
      break;
    case 'G':
      add(&groups, arg);
      break;
    case 'g':
      drop(&groups, arg);
      break;
  }
}

static char buffer[2 * PATH_MAX + 8];
static size_t buffered;

// Reads what the pipe holds now. Returns 0 at end of file (or on an error), 1 else.
static int read_messages(void) {
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buffer + buffered, sizeof buffer - 1 - buffered);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN ? 1 : 0;
    if (n == 0) return 0;
    buffered += (size_t)n;
    char *start = buffer;
    char *newline;
    while ((newline = memchr(start, '\n', buffered - (size_t)(start - buffer))) != NULL) {
      *newline = '\0';
      handle_line(start);
      start = newline + 1;
    }
    buffered -= (size_t)(start - buffer);
    memmove(buffer, start, buffered);
    if (buffered == sizeof buffer - 1) buffered = 0;  // a line too long for a path: dropped
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// `dir`/`name` into `path`; false when that does not fit in PATH_MAX.
static int join_path(char path[PATH_MAX], const char *dir, const char *name) {
  int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);
  return n > 0 && n < PATH_MAX;
}

static int write_file(const char *dir, const char *name, const char *text) {
  char path[PATH_MAX];
  if (!join_path(path, dir, name)) return -1;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n < 0 ? -1 : 0;
}

// Waits, on cgroup.events notifications, until the cgroup holds no live process.
static void wait_empty(const char *dir, long long deadline) {
  char path[PATH_MAX];
  if (!join_path(path, dir, "cgroup.events")) return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  for (;;) {
    char text[256];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) break;
    text[n] = '\0';
    if (strstr(text, "populated 0")) break;
    long long left = deadline - now_ms();
    if (left <= 0) break;
    struct pollfd pfd = {.fd = fd, .events = POLLPRI};
    if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) break;
  }
  close(fd);
}

// Removes the empty cgroups below `dir` (deepest first); `dir` itself too when `self`.
static void remove_tree(const char *dir, int self) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
      if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
      char child[PATH_MAX];
      if (join_path(child, dir, entry->d_name)) remove_tree(child, 1);
    }
    closedir(d);
  }
  if (self) rmdir(dir);
}

static void kill_everything(void) {
  for (size_t i = 0; i < groups.count; i++) {
    long pgid = strtol(groups.items[i], NULL, 10);
    if (pgid > 1) kill((pid_t)-pgid, SIGKILL);
  }
  for (size_t i = 0; i < leaves.count; i++) write_file(leaves.items[i], "cgroup.kill", "1");
  long long deadline = now_ms() + EMPTY_WAIT_MS;
  for (size_t i = 0; i < leaves.count; i++) wait_empty(leaves.items[i], deadline);
  // A parent directory holds only pidwatch's leaves; those still populated (trees
  // started without killOnParentExit) stay, and so does the directory then.
  for (size_t i = 0; i < dirs.count; i++) remove_tree(dirs.items[i], 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pidwatch-guardian PPID  (stdin: a pipe from PPID)\n");
    return 2;
  }
  char *end;
  long ppid = strtol(argv[1], &end, 10);
  if (*end != '\0' || ppid <= 1 || ppid > INT_MAX) {
    fprintf(stderr, "pidwatch-guardian: bad PPID '%s'\n", argv[1]);
    return 2;
  }
  setsid();  // already a session leader when started detached: EPERM, harmless
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  if (chdir("/") != 0) {
    // stay where we are: only absolute paths are used
  }

  int pidfd = (int)syscall(__NR_pidfd_open, (pid_t)ppid, 0);
  // A pidfd taken after PPID died could name a new process with a reused PID: the
  // parent is still ours only if we have not been reparented.
  if (pidfd >= 0 && getppid() != (pid_t)ppid) {
    close(pidfd);
    pidfd = -1;
    ppid = 0;  // gone already
  } else if (pidfd < 0 && errno == ESRCH) {
    ppid = 0;
  }
  int flags = fcntl(STDIN_FILENO, F_GETFL);
  fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK);

  int reading = 1;
  while (ppid != 0) {
    struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    fds[0].fd = reading ? STDIN_FILENO : -1;
    if (poll(fds, pidfd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pidfd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) break;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!read_messages()) {
        reading = 0;
        if (pidfd < 0) break;  // without a pidfd, the pipe's end is the parent's end
        if (getppid() != (pid_t)ppid) break;
      }
    }
  }
  if (reading) read_messages();  // what the parent wrote just before it died
  kill_everything();
  return 0;
}
