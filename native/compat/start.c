// Part of the prebuilt guardian only (binding.gyp, pidwatch_portable=1, with
// -Wl,--wrap=__libc_start_main), so that the executable starts on glibc 2.28.
// Since glibc 2.34 every executable's entry code (Scrt1.o) calls
// __libc_start_main@GLIBC_2.34; the entry point is wrapped here and calls the
// version every glibc has. The older entry code passed an init function that ran
// the program's constructors (__libc_csu_init), which glibc before 2.34 needs;
// the new one passes none, so this file brings its own. glibc >= 2.34 calls it
// instead of running the constructors itself: either way they run once.
#include <stddef.h>

#if defined(__x86_64__)
#define PIDWATCH_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define PIDWATCH_GLIBC_BASE "GLIBC_2.17"
#else
#error "the glibc entry pin is only known for x86_64 and aarch64"
#endif

typedef int (*main_fn)(int, char**, char**);
typedef void (*init_fn)(int, char**, char**);

int pidwatch_libc_start_main(main_fn main, int argc, char** argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void* stack_end);
__asm__(".symver pidwatch_libc_start_main, __libc_start_main@" PIDWATCH_GLIBC_BASE);

// Bounds of the executable's constructor arrays, from the linker.
extern init_fn __preinit_array_start[] __attribute__((visibility("hidden")));
extern init_fn __preinit_array_end[] __attribute__((visibility("hidden")));
extern init_fn __init_array_start[] __attribute__((visibility("hidden")));
extern init_fn __init_array_end[] __attribute__((visibility("hidden")));

static void run_constructors(int argc, char** argv, char** envp) {
  for (init_fn* f = __preinit_array_start; f < __preinit_array_end; f++) (*f)(argc, argv, envp);
  for (init_fn* f = __init_array_start; f < __init_array_end; f++) (*f)(argc, argv, envp);
}

int __wrap___libc_start_main(main_fn main, int argc, char** argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void* stack_end) {
  (void)init;
  return pidwatch_libc_start_main(main, argc, argv, (void (*)(void))run_constructors, fini,
                                  rtld_fini, stack_end);
}
