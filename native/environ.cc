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
// of more scattered strings is never remembered (JS then reads it each time).
constexpr size_t kMaxRegions = 1024;

ssize_t read_own(void* to, size_t n, const struct iovec* from, size_t count) {
  struct iovec local = {to, n};
  return process_vm_readv(getpid(), &local, 1, from, count, 0);
}

char** current_environ() { return __atomic_load_n(&environ, __ATOMIC_RELAXED); }

}  // namespace

bool EnvironWatch::Holds() {
  scratch_.resize(expected_.size());
  return read_own(&scratch_[0], scratch_.size(), regions_.data(), regions_.size()) ==
             static_cast<ssize_t>(scratch_.size()) &&
         scratch_ == expected_;
}

bool EnvironWatch::Matches(const std::string& joined) {
  known_ = false;
  regions_.clear();
  std::vector<size_t> lengths;
  size_t start = 0;
  for (size_t end; (end = joined.find('\0', start)) != std::string::npos; start = end + 1)
    lengths.push_back(end + 1 - start);
  array_ = current_environ();
  if (start != joined.size() || array_ == nullptr || lengths.size() >= kMaxRegions) return false;

  const size_t count = lengths.size();
  std::vector<char*> slots(count + 1);
  struct iovec array = {array_, (count + 1) * sizeof(char*)};
  if (read_own(slots.data(), array.iov_len, &array, 1) != static_cast<ssize_t>(array.iov_len) ||
      slots[count] != nullptr)
    return false;
  regions_.push_back(array);
  for (size_t i = 0; i < count; i++) {
    struct iovec& last = regions_.back();
    if (i > 0 && static_cast<char*>(last.iov_base) + last.iov_len == slots[i]) {
      last.iov_len += lengths[i];
    } else {
      if (regions_.size() == kMaxRegions) return false;
      regions_.push_back({slots[i], lengths[i]});
    }
  }
  expected_.assign(reinterpret_cast<const char*>(slots.data()), array.iov_len);
  expected_ += joined;
  known_ = Holds();
  return known_;
}

bool EnvironWatch::Unchanged() { return known_ && current_environ() == array_ && Holds(); }

}  // namespace pidwatch
