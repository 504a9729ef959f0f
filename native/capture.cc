#include "capture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pidwatch {
namespace {

// kFlagHold: the done event waits for exited(id), which returns the output in the
// JS turn that handles the child's exit: the output of a child that has ended is
// complete by then (its pipes close before its pidfd reports the exit), so one call
// into JS, the exit's, serves both, where a done event costs a call of its own.
enum CaptureFlags { kFlagAll = 1, kFlagDiscard = 2, kFlagHold = 4 };
enum PipeIndex { kStdin, kStdout, kStderr, kPipes };
// What onEvent(id, event, stdout, stderr, all) reports.
enum CaptureEvent { kEventOverflow = 1, kEventDone = 2, kEventDoneOverflowed = 3 };

// One read(2) at most this much; a pipe holds 64 KiB by default.
constexpr size_t kReadChunk = 64 * 1024;
// Output up to this size is copied into a fresh Buffer; larger output is handed
// over without a copy (an external Buffer freeing the malloc'd bytes).
constexpr size_t kCopyLimit = 64 * 1024;
// Output up to this size is handed over as a Latin-1 string, one byte a character, which
// JS turns into a Buffer from Node's pool (Buffer.from(s, 'latin1')): a Buffer made here
// costs an ArrayBuffer and a backing store of its own, and was 3% of exec's loop thread
// in a perf profile, for three bytes. Node's pool takes what is below 4 KiB.
constexpr size_t kStringLimit = 4095;
constexpr int kBatch = 64;
// How long the output pipes of a held capture (exec, runJobs 'buffer') go unwatched. A
// child that ends sooner, as most do, has its output read once, when its exit is handled
// (exited()): no epoll_ctl ADD and DEL per pipe, and no wake of the loop for output that
// arrives before the exit. A pipe holds 64 KiB, so only a child writing more than that
// waits for the watch, at most this long; from then on it is read as it writes, and
// maxBuffer is enforced while it runs. Not with `all`, whose interleaving needs the
// pipes read in the order they are written to.
constexpr uint64_t kUnwatchedMs = 2;

// A growing byte buffer; plain malloc so that JS can take it over.
struct Bytes {
  char* data = nullptr;
  size_t size = 0;
  size_t cap = 0;

  bool Append(const char* p, size_t n) {
    if (n == 0) return true;
    if (size + n > cap) {
      size_t want = cap < 4096 ? 4096 : cap * 2;
      if (want < size + n) want = size + n;
      char* grown = static_cast<char*>(realloc(data, want));
      if (!grown) return false;
      data = grown;
      cap = want;
    }
    memcpy(data + size, p, n);
    size += n;
    return true;
  }
  void Free() {
    free(data);
    data = nullptr;
    size = cap = 0;
  }
};

struct Capture;

struct Pipe {
  Capture* owner = nullptr;
  int index = 0;
  int fd = -1;
  bool watched = false;  // on the epoll set
  Bytes bytes;
};

// One child's pipes. Referred to from JS by its id only: no JS object per capture.
struct Capture {
  uint32_t id = 0;
  Pipe pipes[kPipes];
  std::string input;
  size_t written = 0;
  Bytes all;
  double max_buffer = 0;
  unsigned flags = 0;
  int open_outputs = 0;
  bool overflowed = false;
  bool overflow_told = false;
  bool held = false;  // done, waiting for exited() (kFlagHold)
  bool delivered = false;
  bool unwatched = false;  // its output pipes wait for the watch timer (kUnwatchedMs)
};

void free_external(napi_env, void* data, void*) { free(data); }

// Per environment (main thread or worker): one epoll set holding every pipe end,
// watched by a single uv_poll, so a pipe costs an epoll_ctl ADD and DEL and no libuv
// handle; the JS callback; and the live captures by id.
class CaptureEnv {
 public:
  CaptureEnv(napi_env env, uv_loop_t* loop) : env_(env), loop_(loop) {}

  bool Init();
  napi_value Start(const Napi::CallbackInfo& info);
  void Close(uint32_t id);
  void EndInput(uint32_t id);
  napi_value Exited(uint32_t id);
  void SetCallback(napi_value fn);
  // Environment teardown: every fd closed, handles closed, no JS.
  void Teardown(void (*on_closed)(uv_handle_t*), void* closure);
  // The handles Teardown closes (each calls on_closed once).
  int open_handles() const { return (poll_ ? 1 : 0) + (timer_ ? 1 : 0); }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnWatchTimer(uv_timer_t* handle);
  void Dispatch();
  bool Watch(Pipe& p, uint32_t events);
  void Defer(Capture* c);
  void WatchOutputs(Capture* c);
  void Undefer(Capture* c);
  void EndPipe(Pipe& p);
  bool ReadAvailable(Pipe& p, bool to_end);
  bool Keep(Pipe& p, const char* chunk, size_t n);
  bool WriteInput(Capture* c);
  void Deliver(Capture* c);
  void Done(Capture* c);
  void Buffers(Capture* c, napi_value* buffers);
  void Notify(uint32_t id, int event, napi_value* buffers);
  napi_value Take(Bytes& bytes);
  void MaybeRelease(Capture* c);
  void UpdateRef();

  napi_env env_;
  uv_loop_t* loop_;
  int epfd_ = -1;
  uv_poll_t* poll_ = nullptr;
  // Captures whose output pipes are not watched yet, by id, oldest first, with when
  // they are due (uv_now); an entry whose capture has moved on is skipped.
  struct Due {
    uint32_t id;
    uint64_t at;
  };
  std::deque<Due> unwatched_;
  size_t unwatched_count_ = 0;  // the captures still unwatched
  uv_timer_t* timer_ = nullptr;
  napi_ref callback_ = nullptr;
  napi_async_context async_context_ = nullptr;
  uint32_t next_id_ = 1;
  std::unordered_map<uint32_t, Capture*> live_;
  size_t held_ = 0;  // live captures that are held (nothing left to read)
  // Captures released while a batch is being handled, freed after it.
  std::vector<Capture*> released_;
  bool dispatching_ = false;
};

bool CaptureEnv::Init() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return false;
  poll_ = new uv_poll_t;
  if (uv_poll_init(loop_, poll_, epfd_) != 0) {
    delete poll_;
    poll_ = nullptr;
    close(epfd_);
    epfd_ = -1;
    return false;
  }
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  // The children keep the loop alive; a capture whose pipes are watched, its poll.
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  napi_value name;
  napi_create_string_utf8(env_, "pidwatch:capture", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env_, nullptr, name, &async_context_);
  return true;
}

void CaptureEnv::SetCallback(napi_value fn) {
  if (callback_) napi_delete_reference(env_, callback_);
  napi_create_reference(env_, fn, 1, &callback_);
}

// A live capture keeps the loop alive, as a stream being read does.
void CaptureEnv::UpdateRef() {
  if (!poll_) return;
  // A held capture has nothing left to read: its child's handle keeps the loop alive.
  if (live_.size() == held_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  else uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
}

bool CaptureEnv::Watch(Pipe& p, uint32_t events) {
  struct epoll_event ev;
  ev.events = events;
  ev.data.ptr = &p;
  p.watched = epoll_ctl(epfd_, EPOLL_CTL_ADD, p.fd, &ev) == 0;
  return p.watched;
}

void CaptureEnv::Defer(Capture* c) {
  c->unwatched = true;
  unwatched_count_++;
  uint64_t now = uv_now(loop_);
  unwatched_.push_back({c->id, now + kUnwatchedMs});
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)))
    uv_timer_start(timer_, OnWatchTimer, kUnwatchedMs, 0);
}

// The capture no longer waits for the timer (watched, ended or closed).
void CaptureEnv::Undefer(Capture* c) {
  if (!c->unwatched) return;
  c->unwatched = false;
  if (--unwatched_count_ == 0) {
    unwatched_.clear();
    uv_timer_stop(timer_);
  }
}

// Puts the output pipes still open on the epoll set. One that cannot be (epoll_ctl
// failing: no memory, or max_user_watches reached) is read for what it holds and
// closed, reported as output cut, as when memory runs out while keeping it.
void CaptureEnv::WatchOutputs(Capture* c) {
  Undefer(c);
  for (int i = kStdout; i < kPipes; i++) {
    Pipe& p = c->pipes[i];
    if (p.fd < 0 || p.watched || Watch(p, EPOLLIN)) continue;
    ReadAvailable(p, false);
    c->overflowed = true;
    EndPipe(p);
  }
}

void CaptureEnv::OnWatchTimer(uv_timer_t* handle) {
  CaptureEnv* self = static_cast<CaptureEnv*>(handle->data);
  uint64_t now = uv_now(self->loop_);
  while (!self->unwatched_.empty() && self->unwatched_.front().at <= now) {
    auto it = self->live_.find(self->unwatched_.front().id);
    self->unwatched_.pop_front();
    if (it == self->live_.end() || !it->second->unwatched) continue;
    Capture* c = it->second;
    self->WatchOutputs(c);
    // (Only held captures go unwatched: Done keeps this one for exited(), frees nothing.)
    if (c->open_outputs == 0 && !c->held && !c->delivered) self->Done(c);
  }
  if (!self->unwatched_.empty())
    uv_timer_start(handle, OnWatchTimer, self->unwatched_.front().at - now, 0);
}

// start(stdin, stdout, stderr (fds, -1: none), input: Uint8Array | null, maxBuffer,
//       flags) -> id. Takes over the fds, non-blocking as spawn makes the parent's ends.
//       The fds come as numbers, not in a typed array: a small typed array lives on
//       V8's heap, and reading it natively first copies it out (a few us a call).
// Output is kept up to maxBuffer bytes per stream; past it the stream is closed and an
// overflow event is reported once. The done event comes once every output pipe has
// ended (EOF, error, overflow or close()), with the bytes of each non-empty stream (see
// Take), or, with kFlagHold, through exited().
napi_value CaptureEnv::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[4].IsNumber() || !info[5].IsNumber()) {
    Napi::TypeError::New(env, "pidwatch native captureStart: bad arguments")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (epfd_ < 0) {
    Napi::Error::New(env, "pidwatch native captureStart: no epoll set").ThrowAsJavaScriptException();
    return nullptr;
  }
  Capture* c = new Capture;
  c->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  for (int i = 0; i < kPipes; i++) {
    c->pipes[i].owner = c;
    c->pipes[i].index = i;
    c->pipes[i].fd = info[i].As<Napi::Number>().Int32Value();
  }
  if (info[3].IsTypedArray()) {
    Napi::Uint8Array input = info[3].As<Napi::Uint8Array>();
    c->input.assign(reinterpret_cast<const char*>(input.Data()), input.ByteLength());
  }
  c->max_buffer = info[4].As<Napi::Number>().DoubleValue();
  c->flags = info[5].As<Napi::Number>().Uint32Value();
  live_.emplace(c->id, c);

  Pipe& in = c->pipes[kStdin];
  if (in.fd >= 0) {
    if (WriteInput(c) || !Watch(in, EPOLLOUT)) EndPipe(in);
  }
  const bool defer = (c->flags & (kFlagHold | kFlagAll)) == kFlagHold;
  for (int i = kStdout; i < kPipes; i++) {
    Pipe& p = c->pipes[i];
    if (p.fd < 0) continue;
    c->open_outputs++;
    if (defer) continue;
    if (!Watch(p, EPOLLIN)) {
      int err = errno;
      for (Pipe& q : c->pipes) EndPipe(q);
      live_.erase(c->id);
      delete c;
      Napi::Error error = Napi::Error::New(env, strerror(err));
      error.Set("code", Napi::String::New(env, err == ENOSPC ? "ENOSPC" : "ENOMEM"));
      error.Set("syscall", Napi::String::New(env, "epoll_ctl"));
      error.ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  if (defer && c->open_outputs > 0) Defer(c);
  UpdateRef();
  return Napi::Number::New(env, c->id);
}

void CaptureEnv::OnPoll(uv_poll_t* handle, int status, int events) {
  static_cast<CaptureEnv*>(handle->data)->Dispatch();
}

// Handles what the epoll set has ready: the I/O of the whole batch first, with no JS
// (so nothing can close a pipe of the batch under us), then the events to JS.
void CaptureEnv::Dispatch() {
  struct epoll_event events[kBatch];
  int n = epoll_wait(epfd_, events, kBatch, 0);
  if (n <= 0) return;
  struct Notice {
    uint32_t id;
    int pipe;
    int event;
  };
  std::vector<Notice> notices;
  dispatching_ = true;
  for (int i = 0; i < n; i++) {
    Pipe& p = *static_cast<Pipe*>(events[i].data.ptr);
    Capture* c = p.owner;
    if (p.fd < 0) continue;
    if (p.index == kStdin) {
      if ((events[i].events & EPOLLERR) || WriteInput(c)) EndPipe(p);
      MaybeRelease(c);
      continue;
    }
    bool ended = ReadAvailable(p, events[i].events & (EPOLLHUP | EPOLLERR));
    if (c->overflowed && !c->overflow_told) {
      // Told first (JS stops the process with its killSignal), then the pipe ends.
      c->overflow_told = true;
      notices.push_back({c->id, p.index, kEventOverflow});
    } else if (ended) {
      EndPipe(p);
      if (c->open_outputs == 0) notices.push_back({c->id, p.index, kEventDone});
    }
  }
  dispatching_ = false;
  for (const Notice& notice : notices) {
    auto it = live_.find(notice.id);
    if (it == live_.end() || it->second->delivered || it->second->held) continue;
    Capture* c = it->second;
    if (notice.event == kEventOverflow) {
      Notify(notice.id, kEventOverflow, nullptr);
      if (live_.count(notice.id) == 0 || c->delivered) continue;  // closed from JS
      EndPipe(c->pipes[notice.pipe]);
      if (c->open_outputs > 0) continue;
    }
    Done(c);
  }
  for (Capture* c : released_) delete c;
  released_.clear();
}

// Reads what the pipe holds now. True once it has ended: EOF, an error, or its
// maxBuffer reached. A short read means the pipe is empty for now, unless every
// writer is gone (`to_end`, after EPOLLHUP): then reading on finds the EOF at once
// rather than one loop turn later.
bool CaptureEnv::ReadAvailable(Pipe& p, bool to_end) {
  char chunk[kReadChunk];
  for (;;) {
    ssize_t n = read(p.fd, chunk, sizeof chunk);
    if (n > 0) {
      if (!Keep(p, chunk, static_cast<size_t>(n))) return true;
      if (!to_end && static_cast<size_t>(n) < sizeof chunk) return false;
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN;
  }
}

// Keeps a chunk within maxBuffer. False when the stream must stop: past maxBuffer
// (or out of memory, reported the same way: output was cut).
bool CaptureEnv::Keep(Pipe& p, const char* chunk, size_t n) {
  Capture* c = p.owner;
  if (c->flags & kFlagDiscard) return true;
  double room = c->max_buffer - static_cast<double>(p.bytes.size);
  bool over = static_cast<double>(n) > room;
  size_t take = over ? static_cast<size_t>(room > 0 ? room : 0) : n;
  bool ok = p.bytes.Append(chunk, take) && (!(c->flags & kFlagAll) || c->all.Append(chunk, take));
  if (over || !ok) {
    c->overflowed = true;
    return false;
  }
  return true;
}

// Writes as much input as the pipe takes. True when done: all written, or the
// reader is gone (EPIPE) or another error.
bool CaptureEnv::WriteInput(Capture* c) {
  Pipe& in = c->pipes[kStdin];
  while (c->written < c->input.size()) {
    ssize_t n = write(in.fd, c->input.data() + c->written, c->input.size() - c->written);
    if (n > 0) {
      c->written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return !(n < 0 && errno == EAGAIN);
  }
  return true;
}

// Takes the pipe off the epoll set (explicitly: a copy of the fd in a child being
// spawned would keep it registered) and closes it.
void CaptureEnv::EndPipe(Pipe& p) {
  if (p.fd < 0) return;
  if (p.watched) epoll_ctl(epfd_, EPOLL_CTL_DEL, p.fd, nullptr);
  p.watched = false;
  close(p.fd);
  p.fd = -1;
  if (p.index == kStdin) {
    std::string().swap(p.owner->input);  // frees it (shrink_to_fit() would need GLIBCXX_3.4.29)
  } else if (--p.owner->open_outputs == 0) {
    Undefer(p.owner);
  }
}

napi_value CaptureEnv::Take(Bytes& bytes) {
  napi_value value = nullptr;
  if (bytes.size == 0) {
    napi_get_undefined(env_, &value);
  } else if (bytes.size <= kStringLimit) {
    if (napi_create_string_latin1(env_, bytes.data, bytes.size, &value) != napi_ok)
      napi_get_undefined(env_, &value);
  } else if (bytes.size > kCopyLimit &&
             napi_create_external_buffer(env_, bytes.size, bytes.data, free_external, nullptr,
                                         &value) == napi_ok) {
    bytes = Bytes{};  // now owned by the Buffer
    return value;
  } else if (napi_create_buffer_copy(env_, bytes.size, bytes.data, nullptr, &value) != napi_ok) {
    napi_get_undefined(env_, &value);
  }
  bytes.Free();
  return value;
}

void CaptureEnv::Notify(uint32_t id, int event, napi_value* buffers) {
  if (!callback_ || !async_context_) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value fn, global, result;
  napi_value argv[5];
  if (napi_get_reference_value(env_, callback_, &fn) == napi_ok && fn &&
      napi_get_global(env_, &global) == napi_ok) {
    napi_create_uint32(env_, id, &argv[0]);
    napi_create_int32(env_, event, &argv[1]);
    for (int i = 0; i < 3; i++) {
      if (buffers) argv[2 + i] = buffers[i];
      else napi_get_undefined(env_, &argv[2 + i]);
    }
    // The JS callback never throws (it defers user errors); an exception here
    // means the environment is going away.
    if (napi_make_callback(env_, async_context_, global, fn, 5, argv, &result) ==
        napi_pending_exception) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env_, &ignored);
    }
  }
  napi_close_handle_scope(env_, scope);
}

// Every output has ended: the done event now, or with kFlagHold when exited() asks.
void CaptureEnv::Done(Capture* c) {
  if (!(c->flags & kFlagHold)) {
    Deliver(c);
    return;
  }
  c->held = true;
  held_++;
  UpdateRef();
}

// The output as the done event carries it: buffers[0..2] = stdout, stderr, all
// (undefined when empty). Marks the capture delivered.
void CaptureEnv::Buffers(Capture* c, napi_value* buffers) {
  if (c->held) {
    c->held = false;
    held_--;
  }
  c->delivered = true;
  buffers[0] = Take(c->pipes[kStdout].bytes);
  buffers[1] = Take(c->pipes[kStderr].bytes);
  buffers[2] = Take(c->all);
}

void CaptureEnv::Deliver(Capture* c) {
  if (c->delivered) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value buffers[3];
  uint32_t id = c->id;
  int event = c->overflowed ? kEventDoneOverflowed : kEventDone;
  Buffers(c, buffers);
  MaybeRelease(c);  // `c` may be gone after this
  Notify(id, event, buffers);
  napi_close_handle_scope(env_, scope);
}

// Forgets a capture once nothing is open and its result is out.
void CaptureEnv::MaybeRelease(Capture* c) {
  if (!c->delivered || c->pipes[kStdin].fd >= 0) return;
  if (live_.erase(c->id) == 0) return;
  UpdateRef();
  if (dispatching_) released_.push_back(c);
  else delete c;
}

// close(id): stop now. What the pipes already hold is read (without waiting for more),
// then every pipe end is closed and the done event comes, if it has not yet.
void CaptureEnv::Close(uint32_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  Capture* c = it->second;
  for (int i = kStdout; i < kPipes; i++) {
    Pipe& p = c->pipes[i];
    if (p.fd >= 0 && !c->overflowed) ReadAvailable(p, false);
  }
  for (Pipe& p : c->pipes) EndPipe(p);
  if (c->delivered) MaybeRelease(c);
  else Deliver(c);
}

// endInput(id): stop writing input and close the child's stdin, as after its exit.
void CaptureEnv::EndInput(uint32_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  EndPipe(it->second->pipes[kStdin]);
  MaybeRelease(it->second);
}

// exited(id), once the child has exited: ends the input as endInput does; then, if
// the output has ended (kFlagHold; read to its end here if it can be), returns
// [event, stdout, stderr, all] and the capture is done; else undefined, and the done
// event comes when the output ends. An overflow found here is told by the event
// alone: the child it would stop has exited.
napi_value CaptureEnv::Exited(uint32_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return nullptr;
  Capture* c = it->second;
  EndPipe(c->pipes[kStdin]);
  c->flags &= ~static_cast<unsigned>(kFlagHold);
  if (!c->held && !c->delivered) {
    // The pipes' EOF may be in this same loop iteration, not handled yet: read on
    // now. A short read, then EOF (or EAGAIN: a descendant holds the pipe).
    for (int i = kStdout; i < kPipes; i++) {
      Pipe& p = c->pipes[i];
      if (p.fd >= 0 && (ReadAvailable(p, false) || ReadAvailable(p, false))) EndPipe(p);
    }
    // Not ended (a descendant holds a pipe): read from now on as it writes.
    if (c->unwatched && !c->overflowed) WatchOutputs(c);
    if (c->overflowed) {
      // Past maxBuffer with the child gone: what another pipe holds is not waited for
      // (as close() after the overflow event would do), and the result tells.
      c->overflow_told = true;
      for (int i = kStdout; i < kPipes; i++) EndPipe(c->pipes[i]);
    }
    if (c->open_outputs == 0) {
      c->held = true;
      held_++;
    }
  }
  if (!c->held) {
    MaybeRelease(c);  // output delivered before, stdin open until now
    return nullptr;
  }
  napi_value result;
  if (napi_create_array_with_length(env_, 4, &result) != napi_ok) {
    Deliver(c);  // the environment is going away: the event as without hold
    return nullptr;
  }
  napi_value values[4];
  napi_create_int32(env_, c->overflowed ? kEventDoneOverflowed : kEventDone, &values[0]);
  Buffers(c, values + 1);
  for (uint32_t i = 0; i < 4; i++) napi_set_element(env_, result, i, values[i]);
  MaybeRelease(c);  // `c` is gone after this
  return result;
}

void CaptureEnv::Teardown(void (*on_closed)(uv_handle_t*), void* closure) {
  for (auto& [id, c] : live_) {
    for (Pipe& p : c->pipes)
      if (p.fd >= 0) close(p.fd);
    for (Pipe& p : c->pipes) p.bytes.Free();
    c->all.Free();
    delete c;
  }
  live_.clear();
  if (callback_) napi_delete_reference(env_, callback_);
  callback_ = nullptr;
  if (async_context_) napi_async_destroy(env_, async_context_);
  async_context_ = nullptr;
  unwatched_.clear();
  unwatched_count_ = 0;
  if (timer_) {
    timer_->data = closure;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), on_closed);
    timer_ = nullptr;
  }
  if (poll_) {
    poll_->data = closure;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), on_closed);
    poll_ = nullptr;
  }
  if (epfd_ >= 0) close(epfd_);  // uv_close has taken it off the loop's epoll
  epfd_ = -1;
}

// ---- the functions JS calls ----

CaptureEnv* EnvOf(const Napi::CallbackInfo& info) { return static_cast<CaptureEnv*>(info.Data()); }

uint32_t IdOf(const Napi::CallbackInfo& info) {
  return info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
}

Napi::Value CaptureStart(const Napi::CallbackInfo& info) {
  napi_value id = EnvOf(info)->Start(info);
  return id ? Napi::Value(info.Env(), id) : info.Env().Undefined();
}

Napi::Value CaptureClose(const Napi::CallbackInfo& info) {
  EnvOf(info)->Close(IdOf(info));
  return info.Env().Undefined();
}

Napi::Value CaptureExited(const Napi::CallbackInfo& info) {
  napi_value result = EnvOf(info)->Exited(IdOf(info));
  return result ? Napi::Value(info.Env(), result) : info.Env().Undefined();
}

Napi::Value CaptureEndInput(const Napi::CallbackInfo& info) {
  EnvOf(info)->EndInput(IdOf(info));
  return info.Env().Undefined();
}

// memoryFile(name) -> fd, or -errno: a memory file (memfd, close-on-exec) for a
// child's output, read once the child and its whole tree are gone.
Napi::Value MemoryFile(const Napi::CallbackInfo& info) {
  std::string name = info.Length() > 0 && info[0].IsString()
                         ? info[0].As<Napi::String>().Utf8Value()
                         : std::string("pidwatch-output");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  return Napi::Number::New(info.Env(), fd < 0 ? -errno : fd);
}

// takeMemoryFile(fd) -> Buffer | undefined (empty): the file's bytes from its
// start, in one read; the fd is closed.
Napi::Value TakeMemoryFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "pidwatch native takeMemoryFile: bad arguments")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  napi_value value = nullptr;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    size_t size = static_cast<size_t>(st.st_size);
    char* data = static_cast<char*>(malloc(size));
    size_t got = 0;
    while (data && got < size) {
      ssize_t n = pread(fd, data + got, size - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (data && got > 0 && got <= kCopyLimit) {
      if (napi_create_buffer_copy(env, got, data, nullptr, &value) != napi_ok) value = nullptr;
    } else if (data && got > 0 &&
               napi_create_external_buffer(env, got, data, free_external, nullptr, &value) ==
                   napi_ok) {
      data = nullptr;  // owned by the Buffer
    }
    free(data);
  }
  close(fd);
  if (value == nullptr) return env.Undefined();
  return Napi::Value(env, value);
}

Napi::Value CaptureInit(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "pidwatch native captureInit: a function is needed")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  EnvOf(info)->SetCallback(info[0]);
  return info.Env().Undefined();
}

// ---- environment teardown ----

struct Teardown {
  CaptureEnv* cenv = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  int pending = 0;  // handles not closed yet
};

void OnTeardownClosed(uv_handle_t* handle) {
  Teardown* t = static_cast<Teardown*>(handle->data);
  if (handle->type == UV_TIMER) delete reinterpret_cast<uv_timer_t*>(handle);
  else delete reinterpret_cast<uv_poll_t*>(handle);
  if (--t->pending > 0) return;
  napi_remove_async_cleanup_hook(t->hook);
  delete t->cenv;
  delete t;
}

void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  CaptureEnv* cenv = static_cast<CaptureEnv*>(arg);
  Teardown* t = new Teardown{cenv, hook, cenv->open_handles()};
  bool closing = t->pending > 0;
  cenv->Teardown(OnTeardownClosed, t);
  if (!closing) {
    napi_remove_async_cleanup_hook(hook);
    delete cenv;
    delete t;
  }
}

}  // namespace

void InitCapture(Napi::Env env, Napi::Object exports) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  CaptureEnv* cenv = new CaptureEnv(env, loop);
  cenv->Init();  // without an epoll set, captureStart throws
  napi_add_async_cleanup_hook(env, OnEnvCleanup, cenv, nullptr);
  exports.Set("captureInit", Napi::Function::New<CaptureInit>(env, "captureInit", cenv));
  exports.Set("captureStart", Napi::Function::New<CaptureStart>(env, "captureStart", cenv));
  exports.Set("captureClose", Napi::Function::New<CaptureClose>(env, "captureClose", cenv));
  exports.Set("memoryFile", Napi::Function::New<MemoryFile>(env, "memoryFile"));
  exports.Set("takeMemoryFile", Napi::Function::New<TakeMemoryFile>(env, "takeMemoryFile"));
  exports.Set("captureEndInput",
              Napi::Function::New<CaptureEndInput>(env, "captureEndInput", cenv));
  exports.Set("captureExited", Napi::Function::New<CaptureExited>(env, "captureExited", cenv));
}

}  // namespace pidwatch
