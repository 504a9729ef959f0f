#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <string>

namespace pidwatch {
namespace {

enum CaptureFlags { kFlagAll = 1, kFlagDiscard = 2 };
enum PipeIndex { kStdin, kStdout, kStderr, kPipes };

// One read(2) at most this much; a pipe holds 64 KiB by default.
constexpr size_t kReadChunk = 64 * 1024;
// Output up to this size is copied into a fresh Buffer; larger output is handed
// over without a copy (an external Buffer freeing the malloc'd bytes).
constexpr size_t kCopyLimit = 64 * 1024;

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

class CaptureHandle;

// Per environment (main thread or worker): its loop, the async context the JS
// callbacks run in, and the live captures, closed without JS at teardown.
struct CaptureEnv {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  napi_async_context async_context = nullptr;
  CaptureHandle* live = nullptr;
};

struct Pipe {
  CaptureHandle* owner = nullptr;
  int index = 0;
  int fd = -1;
  uv_poll_t* poll = nullptr;
  Bytes bytes;
};

void delete_poll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

void free_external(napi_env, void* data, void*) { free(data); }

// new Capture(fds: Int32Array [stdin, stdout, stderr] (-1: none), input: Uint8Array | null,
//             maxBuffer, flags, onOverflow: () => void, onDone: (stdout?, stderr?, all?) => void)
// takes over the fds. Output is kept up to maxBuffer bytes per stream; past it the
// stream is closed and onOverflow runs once. onDone runs once every output pipe has
// ended (EOF, error, overflow or close()), with a Buffer per non-empty stream.
class CaptureHandle : public Napi::ObjectWrap<CaptureHandle> {
 public:
  static Napi::Function Define(Napi::Env env, CaptureEnv* cenv) {
    return DefineClass(env, "Capture",
                       {
                           InstanceMethod<&CaptureHandle::Close>("close"),
                           InstanceMethod<&CaptureHandle::EndInput>("endInput"),
                       },
                       cenv);
  }

  explicit CaptureHandle(const Napi::CallbackInfo& info);
  ~CaptureHandle() override { CloseAll(); }

  CaptureHandle* next_live() const { return live_next_; }
  // Environment teardown: handles closed, fds closed, no JS.
  void Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*));

 private:
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value EndInput(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  bool StartPoll(Pipe& p, int events);
  void OnReadable(Pipe& p, bool failed);
  bool ReadAvailable(Pipe& p);
  bool Keep(Pipe& p, const char* chunk, size_t n);
  bool WriteInput();
  void EndPipe(Pipe& p);
  void Deliver();
  void NotifyOverflow();
  void MaybeRelease();
  void CloseAll();
  void Unlink();
  napi_value Take(napi_env env, Bytes& bytes);

  CaptureEnv* cenv_ = nullptr;
  Pipe pipes_[kPipes];
  std::string input_;
  size_t written_ = 0;
  Bytes all_;
  double max_buffer_ = 0;
  unsigned flags_ = 0;
  int open_outputs_ = 0;
  bool overflowed_ = false;
  bool overflow_told_ = false;
  bool delivered_ = false;
  bool held_ = false;  // the wrap is Ref'd while pipes are open or the result is pending
  CaptureHandle* live_prev_ = nullptr;
  CaptureHandle* live_next_ = nullptr;
  bool linked_ = false;
  Napi::FunctionReference on_overflow_;
  Napi::FunctionReference on_done_;
};

CaptureHandle::CaptureHandle(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CaptureHandle>(info) {
  Napi::Env env = info.Env();
  cenv_ = static_cast<CaptureEnv*>(info.Data());
  for (int i = 0; i < kPipes; i++) {
    pipes_[i].owner = this;
    pipes_[i].index = i;
  }
  if (info.Length() < 6 || !info[0].IsTypedArray() || !info[2].IsNumber() ||
      !info[3].IsNumber() || !info[5].IsFunction()) {
    Napi::TypeError::New(env, "pidwatch native Capture: bad arguments").ThrowAsJavaScriptException();
    return;
  }
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  if (fds.ElementLength() < kPipes) {
    Napi::TypeError::New(env, "pidwatch native Capture: fds needs 3 entries")
        .ThrowAsJavaScriptException();
    return;
  }
  for (int i = 0; i < kPipes; i++) pipes_[i].fd = fds[i];
  if (info[1].IsTypedArray()) {
    Napi::Uint8Array input = info[1].As<Napi::Uint8Array>();
    input_.assign(reinterpret_cast<const char*>(input.Data()), input.ByteLength());
  }
  max_buffer_ = info[2].As<Napi::Number>().DoubleValue();
  flags_ = info[3].As<Napi::Number>().Uint32Value();
  if (info[4].IsFunction()) on_overflow_ = Napi::Persistent(info[4].As<Napi::Function>());
  on_done_ = Napi::Persistent(info[5].As<Napi::Function>());

  Ref();
  held_ = true;
  live_next_ = cenv_->live;
  if (live_next_) live_next_->live_prev_ = this;
  cenv_->live = this;
  linked_ = true;

  Pipe& in = pipes_[kStdin];
  if (in.fd >= 0) {
    fcntl(in.fd, F_SETFL, fcntl(in.fd, F_GETFL) | O_NONBLOCK);
    if (WriteInput() || !StartPoll(in, UV_WRITABLE)) EndPipe(in);
  }
  for (int i = kStdout; i < kPipes; i++) {
    Pipe& p = pipes_[i];
    if (p.fd < 0) continue;
    open_outputs_++;
    if (!StartPoll(p, UV_READABLE)) EndPipe(p);
  }
  // Nothing to read: the JS side does not construct a capture then, but stay correct.
  if (open_outputs_ == 0) MaybeRelease();
}

bool CaptureHandle::StartPoll(Pipe& p, int events) {
  p.poll = new uv_poll_t;
  if (uv_poll_init(cenv_->loop, p.poll, p.fd) != 0) {
    delete p.poll;
    p.poll = nullptr;
    return false;
  }
  p.poll->data = &p;
  uv_poll_start(p.poll, events, OnPoll);
  return true;
}

void CaptureHandle::OnPoll(uv_poll_t* handle, int status, int events) {
  Pipe* p = static_cast<Pipe*>(handle->data);
  CaptureHandle* self = p->owner;
  if (p->index == kStdin) {
    if (status < 0 || self->WriteInput()) self->EndPipe(*p);
    self->MaybeRelease();
    return;
  }
  self->OnReadable(*p, status < 0);
}

void CaptureHandle::OnReadable(Pipe& p, bool failed) {
  bool ended = failed || ReadAvailable(p);
  // Tell JS of an overflow first (it stops the process), then end the pipe,
  // which may deliver. A callback may have closed everything: check the fd.
  if (overflowed_ && !overflow_told_) NotifyOverflow();
  if (ended && p.fd >= 0) EndPipe(p);
  MaybeRelease();
}

// Reads what the pipe holds now. True once it has ended: EOF, an error, or its
// maxBuffer reached.
bool CaptureHandle::ReadAvailable(Pipe& p) {
  char chunk[kReadChunk];
  for (;;) {
    ssize_t n = read(p.fd, chunk, sizeof chunk);
    if (n > 0) {
      if (!Keep(p, chunk, static_cast<size_t>(n))) return true;
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN;
  }
}

// Keeps a chunk within maxBuffer. False when the stream must stop: past maxBuffer
// (or out of memory, reported the same way: output was cut).
bool CaptureHandle::Keep(Pipe& p, const char* chunk, size_t n) {
  if (flags_ & kFlagDiscard) return true;
  double room = max_buffer_ - static_cast<double>(p.bytes.size);
  bool over = static_cast<double>(n) > room;
  size_t take = over ? static_cast<size_t>(room > 0 ? room : 0) : n;
  bool ok = p.bytes.Append(chunk, take) && (!(flags_ & kFlagAll) || all_.Append(chunk, take));
  if (over || !ok) {
    overflowed_ = true;
    return false;
  }
  return true;
}

// Writes as much input as the pipe takes. True when done: all written, or the
// reader is gone (EPIPE) or another error.
bool CaptureHandle::WriteInput() {
  Pipe& in = pipes_[kStdin];
  while (written_ < input_.size()) {
    ssize_t n = write(in.fd, input_.data() + written_, input_.size() - written_);
    if (n > 0) {
      written_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return !(n < 0 && errno == EAGAIN);
  }
  return true;
}

void CaptureHandle::EndPipe(Pipe& p) {
  if (p.fd < 0) return;
  // uv_close takes the fd off epoll before we close it.
  if (p.poll) uv_close(reinterpret_cast<uv_handle_t*>(p.poll), delete_poll);
  p.poll = nullptr;
  close(p.fd);
  p.fd = -1;
  if (p.index == kStdin) {
    std::string().swap(input_);  // frees it (shrink_to_fit() would need GLIBCXX_3.4.29)
    return;
  }
  if (--open_outputs_ == 0) Deliver();
}

napi_value CaptureHandle::Take(napi_env env, Bytes& bytes) {
  napi_value value = nullptr;
  if (bytes.size == 0) {
    napi_get_undefined(env, &value);
  } else if (bytes.size > kCopyLimit &&
             napi_create_external_buffer(env, bytes.size, bytes.data, free_external, nullptr,
                                         &value) == napi_ok) {
    bytes = Bytes{};  // now owned by the Buffer
    return value;
  } else if (napi_create_buffer_copy(env, bytes.size, bytes.data, nullptr, &value) != napi_ok) {
    value = nullptr;
  }
  bytes.Free();
  return value;
}

void CaptureHandle::NotifyOverflow() {
  overflow_told_ = true;
  if (on_overflow_.IsEmpty() || !cenv_ || !cenv_->async_context) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value result;
  if (napi_make_callback(env, cenv_->async_context, Value(), on_overflow_.Value(), 0, nullptr,
                         &result) == napi_pending_exception) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

void CaptureHandle::Deliver() {
  if (delivered_) return;
  delivered_ = true;
  Napi::FunctionReference cb = std::move(on_done_);
  on_overflow_.Reset();
  if (!cenv_ || !cenv_->async_context || cb.IsEmpty()) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value argv[4];
  argv[0] = Take(env, pipes_[kStdout].bytes);
  argv[1] = Take(env, pipes_[kStderr].bytes);
  argv[2] = Take(env, all_);
  napi_get_boolean(env, overflowed_, &argv[3]);
  for (napi_value& v : argv)
    if (!v) napi_get_undefined(env, &v);
  napi_value result;
  // The JS callback never throws (it defers user errors); an exception here
  // means the environment is going away.
  if (napi_make_callback(env, cenv_->async_context, Value(), cb.Value(), 4, argv, &result) ==
      napi_pending_exception) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

// Lets the wrap be collected once nothing is open and the result is out.
// Nothing may touch `this` after it.
void CaptureHandle::MaybeRelease() {
  if (!held_ || !delivered_ || pipes_[kStdin].fd >= 0) return;
  held_ = false;
  Unlink();
  Unref();
}

void CaptureHandle::Unlink() {
  if (!linked_) return;
  if (live_prev_) live_prev_->live_next_ = live_next_;
  else if (cenv_) cenv_->live = live_next_;
  if (live_next_) live_next_->live_prev_ = live_prev_;
  live_prev_ = live_next_ = nullptr;
  linked_ = false;
}

// close(): stop now. What the pipes already hold is read (without waiting for
// more), then every pipe end is closed and onDone runs, if it has not yet.
Napi::Value CaptureHandle::Close(const Napi::CallbackInfo& info) {
  for (int i = kStdout; i < kPipes; i++) {
    Pipe& p = pipes_[i];
    if (p.fd >= 0 && !overflowed_) ReadAvailable(p);
  }
  for (Pipe& p : pipes_) EndPipe(p);
  if (open_outputs_ == 0) Deliver();  // a capture built with no outputs
  MaybeRelease();
  return info.Env().Undefined();
}

// endInput(): stop writing input and close the child's stdin, as after its exit.
Napi::Value CaptureHandle::EndInput(const Napi::CallbackInfo& info) {
  EndPipe(pipes_[kStdin]);
  MaybeRelease();
  return info.Env().Undefined();
}

void CaptureHandle::CloseAll() {
  Unlink();
  for (Pipe& p : pipes_) {
    if (p.poll) uv_close(reinterpret_cast<uv_handle_t*>(p.poll), delete_poll);
    p.poll = nullptr;
    if (p.fd >= 0) close(p.fd);
    p.fd = -1;
    p.bytes.Free();
  }
  all_.Free();
}

void CaptureHandle::Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*)) {
  for (Pipe& p : pipes_) {
    if (p.poll) {
      p.poll->data = closure;
      ++*pending;
      uv_close(reinterpret_cast<uv_handle_t*>(p.poll), on_closed);
      p.poll = nullptr;
    }
    if (p.fd >= 0) close(p.fd);
    p.fd = -1;
  }
  linked_ = false;
  live_prev_ = live_next_ = nullptr;
  cenv_ = nullptr;
  delivered_ = true;
}

// ---- environment teardown ----

struct Teardown {
  CaptureEnv* cenv = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  int pending = 0;
  bool armed = false;
};

void FinishTeardown(Teardown* t) {
  napi_remove_async_cleanup_hook(t->hook);
  delete t->cenv;
  delete t;
}

void OnTeardownClosed(uv_handle_t* handle) {
  Teardown* t = static_cast<Teardown*>(handle->data);
  delete reinterpret_cast<uv_poll_t*>(handle);
  if (--t->pending == 0 && t->armed) FinishTeardown(t);
}

void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  CaptureEnv* cenv = static_cast<CaptureEnv*>(arg);
  Teardown* t = new Teardown;
  t->cenv = cenv;
  t->hook = hook;
  CaptureHandle* next;
  for (CaptureHandle* handle = cenv->live; handle; handle = next) {
    next = handle->next_live();
    handle->Teardown(t, &t->pending, OnTeardownClosed);
  }
  cenv->live = nullptr;
  if (cenv->async_context) napi_async_destroy(cenv->env, cenv->async_context);
  cenv->async_context = nullptr;
  t->armed = true;
  if (t->pending == 0) FinishTeardown(t);
}

}  // namespace

void InitCapture(Napi::Env env, Napi::Object exports) {
  CaptureEnv* cenv = new CaptureEnv;
  cenv->env = env;
  napi_get_uv_event_loop(env, &cenv->loop);
  napi_async_init(env, nullptr, Napi::String::New(env, "pidwatch:capture"), &cenv->async_context);
  napi_add_async_cleanup_hook(env, OnEnvCleanup, cenv, nullptr);
  exports.Set("Capture", CaptureHandle::Define(env, cenv));
}

}  // namespace pidwatch
