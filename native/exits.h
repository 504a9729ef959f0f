// How exits reach JS: in batches. Every pidfd of an environment is on one epoll
// set of its own, which a single uv_poll_t watches, so one callback drains every
// exit that is ready in a loop iteration. Each exit is written as a row of
// exports.exitRows (a Float64Array shared with JS), and one call into JS then
// delivers them all. The row layout is mirrored by ExitSlot in src/native.ts.
#pragma once

#include <napi.h>
#include <uv.h>

#include <vector>

#include "sys.h"

namespace pidwatch {

class ProcessHandle;

enum ExitSlot {
  kSlotId,    // the id JS gave the handle at spawn or watch
  kSlotCode,  // -1: none (killed by a signal, or unknown)
  kSlotSignal,
  kSlotCoreDumped,
  kSlotDurationMs,
  kSlotHasUsage,
  kSlotUsage,  // 7 values, in the order of ExitStatus.resourceUsage
  kSlotLeftovers = kSlotUsage + 7,  // a process-group leader's: members killed at its exit
  kExitSlots,
};

class ExitQueue {
 public:
  // Rows per call into JS; also the most events taken from the epoll set at once.
  static constexpr unsigned kRows = 128;

  // Creates exports.exitRows. False on failure (an exception is then pending).
  bool Init(napi_env env, uv_loop_t* loop, napi_value exports);
  // The JS function that receives each batch: handler(count), rows 0..count-1.
  void SetHandler(napi_env env, napi_value handler);

  // Polls a pidfd until it turns readable once (EPOLLONESHOT: after that the
  // kernel reports it no more, so no epoll_ctl DEL is needed before close()).
  // Returns 0 or -errno: -EEXIST when a handle still holds that fd number (its
  // pidfd was closed behind pidwatch's back, and the number handed on).
  int Add(int pidfd, ProcessHandle* handle);
  // Takes a pidfd that has not turned readable off the set (a watch closed early).
  void Remove(int pidfd);
  // The handle is about to close its pidfd: the number is free again.
  void Forget(int pidfd, ProcessHandle* handle);
  // A ref'd handle keeps the loop alive: the poll handle is ref'd while any is.
  void AddRef();
  void RemoveRef();

  // Writes one exit; delivers the rows first when they are full.
  void Record(double id, const ExitInfo& info, double duration_ms, int leftovers);
  // Delivers the recorded exits to JS in one call. Call once at the end of every
  // libuv callback that may have recorded some.
  void Flush();

  // A handle done with (finished or closed): deleted at once when no callback of
  // the queue's is running, else when the outermost one returns, since JS run
  // from a callback (a batch of exits, a spawnAsync's reactions) may close a
  // handle that the callback still holds.
  void Retire(ProcessHandle* handle);
  // Marks a libuv callback that may finish handles and call JS.
  class Busy {
   public:
    explicit Busy(ExitQueue* exits) : exits_(exits) { exits_->busy_++; }
    ~Busy();
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    ExitQueue* exits_;
  };

  // False once the environment is being torn down: no JS may be called then.
  bool alive() const { return rows_ != nullptr; }
  // The async context pidwatch's native callbacks into JS run in.
  napi_async_context async_context() const { return async_context_; }

  // Environment teardown: closes the poll handle (counted in *pending until
  // on_closed runs with `closure` as its data) and the epoll set; no JS.
  void Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*));

 private:
  static void OnReady(uv_poll_t* handle, int status, int events);
  int Open();
  void Drain();

  napi_env env_ = nullptr;
  napi_async_context async_context_ = nullptr;
  napi_ref rows_ref_ = nullptr;
  napi_ref handler_ = nullptr;
  double* rows_ = nullptr;
  unsigned count_ = 0;
  uv_loop_t* loop_ = nullptr;
  int epfd_ = -1;
  uv_poll_t* poll_ = nullptr;
  int refs_ = 0;
  std::vector<ProcessHandle*> holders_;  // by pidfd number
  unsigned busy_ = 0;
  std::vector<ProcessHandle*> retired_;
};

}  // namespace pidwatch
