// Whether the process environment still holds what JS last read of it: lets JS
// keep its copy of process.env (read through Node's lock, variable by variable)
// from one spawn to the next instead of reading it again for each child.
#pragma once

#include <stddef.h>
#include <sys/uio.h>

#include <string>
#include <vector>

namespace pidwatch {

class EnvironWatch {
 public:
  // Whether `environ` holds exactly `joined` now (its strings, each ended by a
  // NUL, one after another, in order): if so, remembers where they are for
  // Unchanged(), else forgets.
  bool Matches(const std::string& joined);
  // Whether `environ` still holds, byte for byte, what the last Matches() found
  // there: the same array, the same entries, each string at the same address
  // with the same bytes. False when nothing is remembered.
  bool Unchanged();

 private:
  // Reads the remembered regions in one call; whether they hold expected_.
  bool Holds();

  bool known_ = false;
  char** array_ = nullptr;
  // The array (its entries and the NULL after them) and the strings, as regions
  // of memory (adjacent strings merged into one), and what they held.
  std::vector<struct iovec> regions_;
  std::string expected_;
  std::string scratch_;
};

}  // namespace pidwatch
