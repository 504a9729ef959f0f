// The parts of the kernel interface that are newer than the oldest userland
// pidwatch builds on: kernel headers 4.18 (RHEL 8), 5.4 (Ubuntu 20.04, Amazon
// Linux 2 has 4.14). Syscall numbers and flags are stable ABI, so where the
// installed headers lack one it is defined here; the probe and the fallbacks
// decide at run time whether the running kernel has it.
//
// test/reliability/build.test.ts compiles every native source with these taken
// out of the installed headers (test/fixtures/build/old-headers.h).
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

// One number on every architecture since Linux 5.1's unified syscall table.
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424  // Linux 5.1
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // 5.3
#endif
#ifndef SYS_clone3
#define SYS_clone3 435  // 5.3
#endif
#ifndef SYS_close_range
#define SYS_close_range 436  // 5.9
#endif

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000  // 5.2
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL  // 5.5, clone3 only
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL  // 5.7, clone3 only
#endif

// <linux/close_range.h>, 5.9 (CLOSE_RANGE_CLOEXEC 5.11)
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
