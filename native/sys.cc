#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)
#define PIDWATCH_PIDFD_GET_INFO _IOWR(0xFF, 11, pidwatch::PidfdInfo)

namespace pidwatch {

static inline int neg_errno(long r) { return r < 0 ? -errno : static_cast<int>(r); }

int sys_pidfd_open(pid_t pid) { return neg_errno(syscall(SYS_pidfd_open, pid, 0)); }

int sys_pidfd_send_signal(int pidfd, int sig) {
  return neg_errno(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

static void decode_siginfo(const siginfo_t& si, ExitInfo* info) {
  info->known = true;
  switch (si.si_code) {
    case CLD_EXITED:
      info->code = si.si_status;
      break;
    case CLD_DUMPED:
      info->core_dumped = true;
      info->signal = si.si_status;
      break;
    default:  // CLD_KILLED
      info->signal = si.si_status;
      break;
  }
}

int sys_waitid_exit(int idtype, int id, int options, ExitInfo* info) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  struct rusage usage;
  long r;
  do {
    r = syscall(SYS_waitid, idtype, id, &si, WEXITED | options, &usage);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (si.si_pid == 0) return 1;
  decode_siginfo(si, info);
  info->usage = usage;
  info->has_rusage = true;
  return 0;
}

int sys_pidfd_exit_info(int pidfd, ExitInfo* info) {
  PidfdInfo pi;
  memset(&pi, 0, sizeof pi);
  pi.mask = kPidfdInfoExit;
  if (ioctl(pidfd, PIDWATCH_PIDFD_GET_INFO, &pi) < 0) return -errno;
  if (!(pi.mask & kPidfdInfoExit)) return 1;
  decode_wait_status(pi.exit_code, info);
  return 0;
}

static double timeval_us(const struct timeval& tv) {
  return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
}

void rusage_values(const struct rusage& ru, double* out) {
  out[0] = timeval_us(ru.ru_utime);
  out[1] = timeval_us(ru.ru_stime);
  out[2] = static_cast<double>(ru.ru_maxrss);
  out[3] = static_cast<double>(ru.ru_minflt);
  out[4] = static_cast<double>(ru.ru_majflt);
  out[5] = static_cast<double>(ru.ru_nvcsw);
  out[6] = static_cast<double>(ru.ru_nivcsw);
}

void decode_wait_status(int status, ExitInfo* info) {
  info->known = true;
  if (WIFEXITED(status)) {
    info->code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info->signal = WTERMSIG(status);
    info->core_dumped = WCOREDUMP(status);
  } else {
    info->known = false;
  }
}

namespace {

// Reads a small /proc file into buf (NUL-terminated). Returns its length or -errno.
ssize_t read_proc(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, size - 1);
  int err = errno;
  close(fd);
  if (n < 0) return -err;
  buf[n] = '\0';
  return n;
}

// Whether the kernel shows this process the exit code of `pid` in its stat: only
// with ptrace read access (PTRACE_MODE_READ_FSCREDS: same uid, euid and suid and
// same gid, egid and sgid, or CAP_SYS_PTRACE). Reading the link /proc/<pid>/ns/user
// is refused (EACCES) under that very check and works on zombies, so it asks the
// kernel itself, user namespaces and security modules included. A kernel without
// user namespaces has no such link: the status then counts as unknown.
bool may_read_exit_code(pid_t pid) {
  char path[64], target[128];
  snprintf(path, sizeof path, "/proc/%d/ns/user", static_cast<int>(pid));
  return readlink(path, target, sizeof target) >= 0;
}

}  // namespace

bool read_zombie_status(pid_t pid, ExitInfo* info) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  if (read_proc(path, buf, sizeof buf) <= 0) return false;
  char* p = strrchr(buf, ')');
  if (!p || p[1] != ' ' || p[2] != 'Z') return false;
  p += 2;  // field 3, the state
  for (int field = 3; field < 52; field++) {
    p = strchr(p, ' ');
    if (!p) return false;
    p++;
  }
  int status = atoi(p);
  // Checked after the read: a reaped zombie's PID may be reused meanwhile, and the
  // caller confirms the process was still unreaped after this call returns.
  if (!may_read_exit_code(pid)) return false;
  decode_wait_status(status, info);
  return info->known;
}

#if defined(__x86_64__)
// long pidwatch_clone3_asm(CloneArgs* args, size_t size, int (*fn)(void*), void* arg)
// The child starts on its own stack with no frame to return to, so it must not
// return through C code: it calls fn directly and exits with its result.
// CFI: the parent's path is an ordinary leaf function (the return address at
// the CFA, as on entry); in the child the return address is marked undefined,
// so debuggers, profilers and unwinders stop there instead of walking into the
// parent's stack, as glibc's clone does.
extern "C" long pidwatch_clone3_asm(CloneArgs*, size_t, int (*)(void*), void*);
asm(R"(
  .pushsection .text
  .globl pidwatch_clone3_asm
  .hidden pidwatch_clone3_asm
  .type pidwatch_clone3_asm, @function
  .p2align 4
pidwatch_clone3_asm:
  .cfi_startproc
  movq %rdx, %r8
  movq %rcx, %r9
  movl $435, %eax
  syscall
  testq %rax, %rax
  jz 1f
  ret
1:
  .cfi_undefined rip
  xorl %ebp, %ebp
  movq %r9, %rdi
  call *%r8
  movl %eax, %edi
  movl $60, %eax
  syscall
  hlt
  .cfi_endproc
  .size pidwatch_clone3_asm, .-pidwatch_clone3_asm
  .popsection
)");

long sys_clone3_run(CloneArgs* args, int (*fn)(void*), void* arg) {
  size_t size = args->flags & CLONE_INTO_CGROUP ? sizeof(CloneArgs) : 64;
  return pidwatch_clone3_asm(args, size, fn, arg);  // pid or -errno
}
#else
long sys_clone3_run(CloneArgs*, int (*)(void*), void*) { return -ENOSYS; }
#endif

}  // namespace pidwatch
