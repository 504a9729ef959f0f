// Part of the prebuilt binaries only (binding.gyp, pidwatch_portable=1), which
// must load with the libstdc++ of GCC 8 (GLIBCXX_3.4.25, CXXABI_1.3.11), the one
// glibc-2.28 systems ship. GCC >= 11 makes std::allocator call this function
// (GLIBCXX_3.4.29) when a size overflows; defined here, hidden, it is bound
// inside the addon instead of being asked of the system's libstdc++.
#include <new>

namespace std {
[[noreturn]] void __throw_bad_array_new_length() { throw std::bad_array_new_length(); }
}  // namespace std
