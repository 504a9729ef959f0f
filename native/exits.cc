#include "exits.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "process.h"

namespace pidwatch {
bool ExitQueue::Init(napi_env env, uv_loop_t* loop, napi_value exports) {
  env_ = env;
  void* store = nullptr;
  napi_value buffer, rows, name;
  if (napi_create_arraybuffer(env, kRows * kExitSlots * sizeof(double), &store, &buffer) !=
          napi_ok ||
      napi_create_typedarray(env, napi_float64_array, kRows * kExitSlots, buffer, 0, &rows) !=
          napi_ok ||
      napi_create_reference(env, rows, 1, &rows_ref_) != napi_ok ||
      napi_set_named_property(env, exports, "exitRows", rows) != napi_ok ||
      napi_create_string_utf8(env, "pidwatch:exit", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, nullptr, name, &async_context_) != napi_ok)
    return false;
  rows_ = static_cast<double*>(store);  // an ArrayBuffer's store never moves
  loop_ = loop;
  Open();  // at load, so a process's fd count does not change at its first spawn
  return true;
}

// Made at load; where that failed (at the fd limit, say), at the next pidfd.
int ExitQueue::Open() {
  if (epfd_ >= 0) return 0;
  if (!loop_) return -EINVAL;  // torn down
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return -errno;
  poll_ = new uv_poll_t;
  uv_poll_init(loop_, poll_, epfd_);
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, OnReady);
  if (refs_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return 0;
}

void ExitQueue::SetHandler(napi_env env, napi_value handler) {
  if (handler_) napi_delete_reference(env, handler_);
  napi_create_reference(env, handler, 1, &handler_);
}

int ExitQueue::Add(int pidfd, ProcessHandle* handle) {
  if (int err = Open()) return err;
  size_t slot = static_cast<size_t>(pidfd);
  if (slot < holders_.size() && holders_[slot] && holders_[slot] != handle) return -EEXIST;
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.ptr = handle;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, pidfd, &ev) != 0) return -errno;
  if (slot >= holders_.size()) holders_.resize(slot + 1 + slot / 2, nullptr);
  holders_[slot] = handle;
  return 0;
}

void ExitQueue::Forget(int pidfd, ProcessHandle* handle) {
  size_t slot = static_cast<size_t>(pidfd);
  if (slot < holders_.size() && holders_[slot] == handle) holders_[slot] = nullptr;
}

void ExitQueue::Remove(int pidfd) {
  if (epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, pidfd, nullptr);
}

void ExitQueue::AddRef() {
  if (refs_++ == 0 && poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
}

void ExitQueue::RemoveRef() {
  if (--refs_ == 0 && poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

void ExitQueue::OnReady(uv_poll_t* handle, int status, int events) {
  ExitQueue* self = static_cast<ExitQueue*>(handle->data);
  Busy busy(self);
  self->Drain();
}

void ExitQueue::Retire(ProcessHandle* handle) {
  if (busy_ == 0) delete handle;
  else retired_.push_back(handle);
}

ExitQueue::Busy::~Busy() {
  if (--exits_->busy_ > 0) return;
  std::vector<ProcessHandle*> retired;
  retired.swap(exits_->retired_);
  for (ProcessHandle* handle : retired) delete handle;
}

// Takes every ready pidfd off the set, at most kRows at a time so that no JS
// runs while the events of a round are handled (JS may close and free handles).
void ExitQueue::Drain() {
  struct epoll_event ready[kRows];
  int n;
  do {
    n = epoll_wait(epfd_, ready, kRows, 0);
    for (int i = 0; i < n; i++) static_cast<ProcessHandle*>(ready[i].data.ptr)->OnReadable();
    Flush();
  } while (n == static_cast<int>(kRows) && epfd_ >= 0);
}

void ExitQueue::Record(double id, const ExitInfo& info, double duration_ms, int leftovers) {
  if (!rows_) return;  // the environment is going away
  if (count_ == kRows) Flush();
  double* row = rows_ + count_++ * kExitSlots;
  row[kSlotId] = id;
  row[kSlotCode] = info.known && info.signal == 0 ? info.code : -1;
  row[kSlotSignal] = info.known ? info.signal : 0;
  row[kSlotCoreDumped] = info.core_dumped ? 1 : 0;
  row[kSlotDurationMs] = duration_ms;
  row[kSlotHasUsage] = info.has_rusage ? 1 : 0;
  if (info.has_rusage) rusage_values(info.usage, row + kSlotUsage);
  row[kSlotLeftovers] = leftovers;
}

void ExitQueue::Flush() {
  if (count_ == 0) return;
  unsigned count = count_;
  count_ = 0;
  if (!handler_ || !rows_) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value handler, argv[1], result;
  // The JS handler never throws (it defers user errors to the next tick); an
  // exception here means the environment is going away: nothing to report.
  if (napi_get_reference_value(env_, handler_, &handler) == napi_ok && handler &&
      napi_create_uint32(env_, count, &argv[0]) == napi_ok &&
      napi_make_callback(env_, async_context_, handler, handler, 1, argv, &result) ==
          napi_pending_exception) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env_, &ignored);
  }
  napi_close_handle_scope(env_, scope);
}

void ExitQueue::Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*)) {
  if (poll_) {
    poll_->data = closure;
    ++*pending;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), on_closed);
    poll_ = nullptr;
  }
  if (epfd_ >= 0) close(epfd_);
  epfd_ = -1;
  loop_ = nullptr;
  rows_ = nullptr;
  count_ = 0;
  if (handler_) napi_delete_reference(env_, handler_);
  handler_ = nullptr;
  for (ProcessHandle* handle : retired_) delete handle;
  retired_.clear();
  if (rows_ref_) napi_delete_reference(env_, rows_ref_);
  rows_ref_ = nullptr;
  if (async_context_) napi_async_destroy(env_, async_context_);
  async_context_ = nullptr;
}

}  // namespace pidwatch
