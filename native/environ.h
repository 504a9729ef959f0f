// The parent's environment for a child, without reading process.env for each
// spawn: JS reads it once (through Node's lock, variable by variable) and hands
// the copy over; while `environ` holds exactly those bytes, a spawn uses the
// copy, checked again right before the clone on whichever thread clones.
#pragma once

#include <stddef.h>
#include <sys/uio.h>

#include <memory>
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
};

// A snapshot of `joined` (the environment as JS read it: its strings, each
// ended by a NUL) if environ holds exactly those strings now, else null.
std::shared_ptr<const EnvironSnapshot> match_environ(const std::string& joined);

}  // namespace pidwatch
