// Force-included (-include) into every C++ file of the prebuilt binaries
// (binding.gyp, pidwatch_portable=1) so that they load on glibc 2.28 (Debian 10,
// RHEL 8, Ubuntu 20.04 has 2.31) although they are built against a newer glibc.
// A newer glibc gives some functions a new symbol version, and the linker picks
// the newest; the old version stays in the library for old binaries. Here every
// such function pidwatch calls is bound to its version from before 2.28:
//
//   pthread_sigmask  GLIBC_2.32 (moved from libpthread into libc)
//   pthread_once, pthread_create, pthread_join, pthread_detach, pthread_kill,
//   pthread_attr_setstacksize, pthread_key_create, pthread_[gs]etspecific
//                    GLIBC_2.34 (idem; std::call_once uses pthread_once)
//   stat, lstat, fstat, fstatat  GLIBC_2.33 (before: inline wrappers of __xstat64 & co)
//
// The old pthread versions live in libpthread.so.0 before glibc 2.34, a library
// Node itself links there; the addon names it too (binding.gyp), so it is found
// either way. test/reliability/prebuilds.test.ts reads the shipped binaries'
// version needs (objdump -T) and fails on anything newer than 2.28.
#pragma once

#if defined(__GLIBC__) || defined(__linux__)
#include <features.h>
#endif

#if defined(__GLIBC__) && !defined(PIDWATCH_NO_GLIBC_PINS)

#include <signal.h>
#include <sys/stat.h>

#if defined(__x86_64__)
#define PIDWATCH_GLIBC_BASE "GLIBC_2.2.5"
#define PIDWATCH_STAT_VER 1  // _STAT_VER_LINUX
#elif defined(__aarch64__)
#define PIDWATCH_GLIBC_BASE "GLIBC_2.17"
#define PIDWATCH_STAT_VER 0  // _STAT_VER_KERNEL
#else
#error "glibc symbol pins are only known for x86_64 and aarch64"
#endif

__asm__(".symver pthread_sigmask, pthread_sigmask@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_once, pthread_once@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_create, pthread_create@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_join, pthread_join@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_detach, pthread_detach@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_attr_setstacksize, pthread_attr_setstacksize@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_kill, pthread_kill@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_key_create, pthread_key_create@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_getspecific, pthread_getspecific@" PIDWATCH_GLIBC_BASE);
__asm__(".symver pthread_setspecific, pthread_setspecific@" PIDWATCH_GLIBC_BASE);

#ifdef __cplusplus
extern "C" {
#endif
int __xstat64(int ver, const char* path, struct stat64* buf);
int __lxstat64(int ver, const char* path, struct stat64* buf);
int __fxstat64(int ver, int fd, struct stat64* buf);
int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* buf, int flags);
#ifdef __cplusplus
}
#endif
__asm__(".symver __xstat64, __xstat64@" PIDWATCH_GLIBC_BASE);
__asm__(".symver __lxstat64, __lxstat64@" PIDWATCH_GLIBC_BASE);
__asm__(".symver __fxstat64, __fxstat64@" PIDWATCH_GLIBC_BASE);
__asm__(".symver __fxstatat64, __fxstatat64@" PIDWATCH_GLIBC_BASE);

// On 64-bit Linux struct stat and struct stat64 are the same layout.
static inline int pidwatch_stat(const char* path, struct stat* buf) {
  return __xstat64(PIDWATCH_STAT_VER, path, reinterpret_cast<struct stat64*>(buf));
}
static inline int pidwatch_lstat(const char* path, struct stat* buf) {
  return __lxstat64(PIDWATCH_STAT_VER, path, reinterpret_cast<struct stat64*>(buf));
}
static inline int pidwatch_fstat(int fd, struct stat* buf) {
  return __fxstat64(PIDWATCH_STAT_VER, fd, reinterpret_cast<struct stat64*>(buf));
}
static inline int pidwatch_fstatat(int dirfd, const char* path, struct stat* buf, int flags) {
  return __fxstatat64(PIDWATCH_STAT_VER, dirfd, path, reinterpret_cast<struct stat64*>(buf), flags);
}
// libstdc++ of GCC >= 12 versions condition_variable::wait anew (GLIBCXX_3.4.30);
// the GCC 4.3 one (GLIBCXX_3.4.11) is still there, and is GCC 8's.
#ifdef __cplusplus
__asm__(".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
        "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif

#define stat(path, buf) pidwatch_stat(path, buf)
#define lstat(path, buf) pidwatch_lstat(path, buf)
#define fstat(fd, buf) pidwatch_fstat(fd, buf)
#define fstatat(dirfd, path, buf, flags) pidwatch_fstatat(dirfd, path, buf, flags)

#endif
