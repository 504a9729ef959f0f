// The parent's environment for a child, without reading process.env for each
// spawn: JS reads it once (through Node's lock, variable by variable) and hands
// the copy over; while `environ` holds exactly those bytes, a spawn uses the
// copy, checked again right before the clone on whichever thread clones.
#pragma once

#include <stddef.h>
#include <sys/uio.h>

#include <atomic>
#include <string>
#include <vector>

namespace pidwatch {

// A copy of the environment that `environ` was found to hold, byte for byte.
// Immutable once made: any thread may use it.
struct EnvironSnapshot {
  std::string joined;       // the strings, each ended by a NUL, one after another
  std::vector<char*> envp;  // pointers into joined, then NULL: execve's envp
  bool has_path = false;    // PATH, the list a name without a slash is searched in
  std::string path;
  // Where environ held them: its array (its entries and the NULL after them) and
  // the strings, as regions of memory (adjacent strings merged), and their bytes.
  char** array = nullptr;
  std::vector<struct iovec> regions;
  std::string expected;

  // Whether environ still holds, byte for byte, what it held when this was made:
  // the same array, the same entries, each string at its address with its bytes.
  bool Unchanged() const;

  mutable std::atomic<int> refs{0};  // EnvironRefs to it
};

// A counted reference to a snapshot, shared by the loop thread and the jobs of
// the spawner thread. Not std::shared_ptr: libstdc++'s needs symbols newer than
// the prebuilt binaries may use (GLIBC_2.32, GLIBCXX_3.4.26).
class EnvironRef {
 public:
  EnvironRef() = default;
  explicit EnvironRef(EnvironSnapshot* s) : s_(s) { Hold(); }
  EnvironRef(const EnvironRef& other) : s_(other.s_) { Hold(); }
  EnvironRef& operator=(const EnvironRef& other) {
    if (s_ != other.s_) {
      Drop();
      s_ = other.s_;
      Hold();
    }
    return *this;
  }
  ~EnvironRef() { Drop(); }
  const EnvironSnapshot* operator->() const { return s_; }
  explicit operator bool() const { return s_ != nullptr; }

 private:
  void Hold() {
    if (s_) s_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void Drop() {
    if (s_ && s_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
    s_ = nullptr;
  }
  EnvironSnapshot* s_ = nullptr;
};

// A snapshot of `joined` (the environment as JS read it: its strings, each
// ended by a NUL) if environ holds exactly those strings now, else none.
EnvironRef match_environ(const std::string& joined);

}  // namespace pidwatch
