// seccomp-launch: runs a command with chosen system calls failing with a chosen
// errno, to reproduce the kernels and sandboxes that break pidfds (kernels older
// than 5.2 or 5.4, Docker's default profile, gVisor, Android).
//
//   seccomp-launch RULE... -- COMMAND [ARG...]
//
// A RULE is NAMES=ERRNO, NAMES a comma-separated list of system call names, each
// optionally narrowed by a qualifier (see usage() below). The filter checks the
// architecture and allows every call that no rule names. It is installed with
// no_new_privs set and is inherited by COMMAND and all its descendants.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SELF_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SELF_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp-launch supports x86_64 and aarch64"
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp-launch reads the low half of 64-bit arguments as on little-endian"
#endif

// Numbers that older libc headers may lack; they are the same on x86_64 and aarch64.
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

#define P_PIDFD_IDTYPE 3            // waitid(P_PIDFD, ...), Linux >= 5.4
#define CLONE_ARGS_SIZE_VER0 64     // struct clone_args up to tls
#define PIDFD_GET_INFO_CMD 0xc040ff0bu  // _IOWR(0xFF, 11, struct pidfd_info), 64 bytes

struct syscall_name {
  const char *name;
  int nr;
};

static const struct syscall_name syscalls[] = {
    {"clone3", __NR_clone3},
    {"clone", __NR_clone},
    {"pidfd_open", __NR_pidfd_open},
    {"pidfd_send_signal", __NR_pidfd_send_signal},
    {"pidfd_getfd", __NR_pidfd_getfd},
    {"waitid", __NR_waitid},
    {"wait4", __NR_wait4},
    {"ioctl", __NR_ioctl},
    {"prctl", __NR_prctl},
    {"setsid", __NR_setsid},
    {"rt_sigaction", __NR_rt_sigaction},
    {"close_range", __NR_close_range},
    {"unshare", __NR_unshare},
};

// A qualifier narrows a rule to the calls whose argument `arg` equals `value`:
// the low 32 bits only for int-sized arguments, all 64 bits otherwise.
struct qualifier {
  const char *syscall;
  const char *name;
  int arg;
  uint64_t value;
  int full_width;
};

static const struct qualifier qualifiers[] = {
    // Kernels before 5.4 refuse waitid(P_PIDFD, ...) with EINVAL.
    {"waitid", "P_PIDFD", 0, P_PIDFD_IDTYPE, 0},
    // glibc's pthread_create calls clone3 itself (with an 88-byte struct) and falls
    // back to clone only on ENOSYS, so a blanket clone3=EPERM, as in Docker's old
    // default profile, stops Node from starting any thread. pidwatch passes the
    // 64-byte v0 struct, so clone3:v0 refuses exactly pidwatch's clone3 the way
    // that profile would, and leaves thread creation alone.
    {"clone3", "v0", 1, CLONE_ARGS_SIZE_VER0, 1},
    {"ioctl", "PIDFD_GET_INFO", 1, PIDFD_GET_INFO_CMD, 0},
};

struct errno_name {
  const char *name;
  int value;
};

static const struct errno_name errnos[] = {
    {"ENOSYS", ENOSYS}, {"EPERM", EPERM},   {"EINVAL", EINVAL}, {"EACCES", EACCES},
    {"ENOMEM", ENOMEM}, {"EAGAIN", EAGAIN}, {"ENOTTY", ENOTTY}, {"ESRCH", ESRCH},
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FILTER 4096

static struct sock_filter filter[MAX_FILTER];
static unsigned filter_len;

static void usage(FILE *out) {
  fputs(
      "usage: seccomp-launch RULE... -- COMMAND [ARG...]\n"
      "Runs COMMAND with the system calls named by each RULE failing with an errno.\n"
      "\n"
      "RULE is NAMES=ERRNO: NAMES a comma-separated list of system calls, each\n"
      "optionally narrowed as NAME:QUALIFIER; ERRNO a name or a number.\n"
      "  clone3=ENOSYS                          every clone3 fails\n"
      "  pidfd_open,pidfd_send_signal,clone3=ENOSYS   a kernel before 5.2\n"
      "  waitid:P_PIDFD=EINVAL                  waitid(P_PIDFD, ...) only, as before 5.4\n"
      "  clone3:v0=EPERM                        clone3 with the 64-byte v0 struct only\n"
      "  ioctl:PIDFD_GET_INFO=ENOTTY            the PIDFD_GET_INFO ioctl only\n"
      "  close_range=ENOSYS                     a kernel before 5.9\n"
      "\n"
      "clone3:v0 exists because glibc's pthread_create uses clone3 itself (88-byte\n"
      "struct) and falls back to clone only on ENOSYS: a blanket clone3=EPERM, as in\n"
      "Docker's old default profile, would stop Node from starting any thread.\n"
      "\n"
      "System calls: clone3 clone pidfd_open pidfd_send_signal pidfd_getfd waitid\n"
      "  wait4 ioctl prctl setsid rt_sigaction close_range unshare\n"
      "Errnos: ENOSYS EPERM EINVAL EACCES ENOMEM EAGAIN ENOTTY ESRCH\n"
      "Exit status: COMMAND's; 2 on bad usage; 1 if the filter cannot be installed;\n"
      "127 if COMMAND cannot be run.\n",
      out);
}

static void bad_usage(const char *fmt, const char *what) {
  fputs("seccomp-launch: ", stderr);
  fprintf(stderr, fmt, what);
  fputs(" (try --help)\n", stderr);
  exit(2);
}

static void emit(struct sock_filter insn) {
  if (filter_len >= MAX_FILTER) bad_usage("%s", "too many rules");
  filter[filter_len++] = insn;
}

static int lookup_syscall(const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(syscalls); i++)
    if (strcmp(syscalls[i].name, name) == 0) return syscalls[i].nr;
  return -1;
}

static int lookup_errno(const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(errnos); i++)
    if (strcmp(errnos[i].name, name) == 0) return errnos[i].value;
  char *end;
  errno = 0;
  long value = strtol(name, &end, 10);
  if (errno != 0 || end == name || *end != '\0' || value <= 0 || value > 4095) return -1;
  return (int)value;
}

static const struct qualifier *lookup_qualifier(const char *syscall, const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(qualifiers); i++)
    if (strcmp(qualifiers[i].syscall, syscall) == 0 && strcmp(qualifiers[i].name, name) == 0)
      return &qualifiers[i];
  return NULL;
}

static uint32_t arg_low(int arg) {
  return offsetof(struct seccomp_data, args) + (uint32_t)arg * sizeof(uint64_t);
}

// One block per system call of a rule; every jump stays inside the block, so a
// mismatch falls through to the next block, and after the last one to ALLOW.
static void emit_block(int nr, const struct qualifier *q, int err) {
  const uint8_t checks = q == NULL ? 0 : q->full_width ? 2 : 1;
  const uint8_t rest = (uint8_t)(checks * 2 + 1);  // instructions after the nr test

  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, rest));
  if (q != NULL) {
    emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low(q->arg)));
    emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)q->value, 0,
                                      (uint8_t)(rest - 2)));
    if (q->full_width) {
      emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low(q->arg) + 4));
      emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(q->value >> 32),
                                        0, 1));
    }
  }
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                    SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)));
}

static void add_rule(char *rule) {
  char *eq = strrchr(rule, '=');
  if (eq == NULL) bad_usage("rule '%s' has no '=ERRNO'", rule);
  *eq = '\0';
  const int err = lookup_errno(eq + 1);
  if (err < 0) bad_usage("unknown errno '%s'", eq + 1);
  if (*rule == '\0') bad_usage("%s", "a rule names no system call");

  char *save = NULL;
  for (char *name = strtok_r(rule, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
    const struct qualifier *q = NULL;
    char *colon = strchr(name, ':');
    if (colon != NULL) *colon = '\0';
    const int nr = lookup_syscall(name);
    if (nr < 0) bad_usage("unknown system call '%s'", name);
    if (colon != NULL) {
      q = lookup_qualifier(name, colon + 1);
      if (q == NULL) bad_usage("unknown qualifier '%s'", colon + 1);
    }
    emit_block(nr, q, err);
  }
}

static int install_filter(void) {
  struct sock_fprog prog = {.len = (unsigned short)filter_len, .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("seccomp-launch: prctl(PR_SET_NO_NEW_PRIVS)");
    return -1;
  }
#ifdef SYS_seccomp
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) return 0;
  if (errno != ENOSYS) {
    perror("seccomp-launch: seccomp(SECCOMP_SET_MODE_FILTER)");
    return -1;
  }
#endif
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
    perror("seccomp-launch: prctl(PR_SET_SECCOMP)");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }

  int sep = 1;
  while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
  if (sep >= argc) bad_usage("%s", "missing '--' before the command");
  if (sep == 1) bad_usage("%s", "no RULE given");
  if (sep + 1 >= argc) bad_usage("%s", "no command after '--'");

  // Calls of another architecture (e.g. i386 on x86_64) are not ours to judge.
  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SELF_AUDIT_ARCH, 1, 0));
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  for (int i = 1; i < sep; i++) add_rule(argv[i]);
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));

  if (install_filter() != 0) return 1;
  execvp(argv[sep + 1], &argv[sep + 1]);
  fprintf(stderr, "seccomp-launch: %s: %s\n", argv[sep + 1], strerror(errno));
  return 127;
}
