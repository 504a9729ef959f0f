// Another thread may change the environment at any time (a Worker sharing it,
// native code calling setenv), and setenv may free the array being read. So the
// memory is read with process_vm_readv on this process itself, which answers
// EFAULT instead of faulting where it is no longer mapped, and only ever
// compared: whatever a read finds, a match means these very bytes were there.
#include "environ.h"

#include <string.h>
#include <unistd.h>

extern char** environ;

namespace pidwatch {

namespace {

// process_vm_readv takes at most IOV_MAX (1024) regions per call: an environment
// of more scattered strings is never matched (JS then reads it for each spawn).
constexpr size_t kMaxRegions = 1024;

ssize_t read_own(void* to, size_t n, const struct iovec* from, size_t count) {
  struct iovec local = {to, n};
  return process_vm_readv(getpid(), &local, 1, from, count, 0);
}

char** current_environ() { return __atomic_load_n(&environ, __ATOMIC_RELAXED); }

}  // namespace

bool EnvironSnapshot::Unchanged() const {
  if (current_environ() != array) return false;
  std::string now(expected.size(), '\0');
  return read_own(&now[0], now.size(), regions.data(), regions.size()) ==
             static_cast<ssize_t>(now.size()) &&
         now == expected;
}

EnvironRef match_environ(const std::string& joined) {
  EnvironSnapshot* made = new EnvironSnapshot;
  EnvironRef snapshot(made);
  EnvironSnapshot& s = *made;
  s.joined = joined;
  std::vector<size_t> lengths;
  size_t start = 0;
  for (size_t end; (end = joined.find('\0', start)) != std::string::npos; start = end + 1) {
    lengths.push_back(end + 1 - start);
    s.envp.push_back(&s.joined[start]);
    if (joined.compare(start, 5, "PATH=") == 0) {
      s.has_path = true;
      s.path.assign(joined, start + 5, end - start - 5);
    }
  }
  s.envp.push_back(nullptr);
  s.array = current_environ();
  if (start != joined.size() || s.array == nullptr || lengths.size() >= kMaxRegions) return {};

  const size_t count = lengths.size();
  std::vector<char*> slots(count + 1);
  struct iovec array = {s.array, (count + 1) * sizeof(char*)};
  if (read_own(slots.data(), array.iov_len, &array, 1) != static_cast<ssize_t>(array.iov_len) ||
      slots[count] != nullptr)
    return {};
  s.regions.push_back(array);
  for (size_t i = 0; i < count; i++) {
    struct iovec& last = s.regions.back();
    if (i > 0 && static_cast<char*>(last.iov_base) + last.iov_len == slots[i]) {
      last.iov_len += lengths[i];
    } else {
      if (s.regions.size() == kMaxRegions) return {};
      s.regions.push_back({slots[i], lengths[i]});
    }
  }
  s.expected.assign(reinterpret_cast<const char*>(slots.data()), array.iov_len);
  s.expected += joined;
  return s.Unchanged() ? snapshot : EnvironRef();
}

}  // namespace pidwatch
