// Spawning off the event loop (spawnAsync): the clone and the wait for execve
// run on a spawner thread (vfork suspends only that thread), and the child is
// handed back to the loop through a uv_async_t, to be watched there.
//
// Threads of one environment, the first started at its first spawnAsync, all
// ended at its teardown and never earlier: PR_SET_PDEATHSIG fires when the
// *thread* that created the child ends, so a killOnParentExit child dies when
// the thread that asked for it (the main thread, or a worker) ends. A second
// thread (up to kMaxThreads) starts when a job is queued and none is waiting:
// after execve the kernel wakes the thread where the new child runs, and there
// it waits until that child blocks or ends (a /bin/true: its whole life), so
// one thread alone would start a run's jobs one after the other.
#pragma once

#include <napi.h>
#include <uv.h>

#include <pthread.h>

#include <deque>

#include "spawn.h"

namespace pidwatch {

struct SpawnJob {
  SpawnRequest req;
  SpawnResult result;
  uint64_t started_ns = 0;
  double id = 0;
  napi_deferred deferred = nullptr;
  napi_ref fds = nullptr;   // the Int32Array the parent's ends are written to
  napi_ref leaf = nullptr;  // the TreeLeaf the child starts in, kept alive meanwhile
};

// pthread_create with every signal blocked in the new thread (a new thread inherits
// the mask): process signals are for the loop threads, and a handler must never run
// on a thread while a vfork child shares its stack. Returns 0 or an errno.
int create_thread_without_signals(pthread_t* thread, void* (*main)(void*), void* arg);

class Spawner {
 public:
  // Runs on the loop thread with the jobs the thread has spawned (or failed) for;
  // it owns them from then on.
  using Done = void (*)(void* context, std::deque<SpawnJob*>& jobs);

  // Queues a job for the thread, starting the thread first when needed.
  // Returns 0 or an errno (the thread or its async handle could not be made).
  int Submit(uv_loop_t* loop, SpawnJob* job, Done done, void* context);

  // Environment teardown, on the loop thread: ends the thread (after the spawn
  // it may be in) and gives back every job not handed over yet, through
  // `abandon` (no JS may run); the async handle is closed through on_closed,
  // counted in *pending.
  void Teardown(void (*abandon)(SpawnJob*), void* closure, int* pending,
                void (*on_closed)(uv_handle_t*));

 private:
  // Raw pthreads, not std::thread: the prebuilt binary must not need a newer
  // libstdc++ than GCC 8's.
  static void* Main(void* self);
  static void OnAsync(uv_async_t* handle);
  int Start(uv_loop_t* loop);

  static constexpr int kMaxThreads = 4;

  // Starts one more thread; returns 0 or its errno. Called with mu_ held.
  int AddThread();

  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake_ = PTHREAD_COND_INITIALIZER;
  std::deque<SpawnJob*> todo_;  // under mu_
  std::deque<SpawnJob*> done_;  // under mu_
  bool stopping_ = false;       // under mu_
  unsigned waiting_ = 0;        // under mu_: threads waiting for a job
  pthread_t threads_[kMaxThreads]{};
  int thread_count_ = 0;  // under mu_
  uv_async_t* async_ = nullptr;
  unsigned in_flight_ = 0;  // loop thread: jobs submitted and not handed back
  Done on_done_ = nullptr;
  void* context_ = nullptr;
};

}  // namespace pidwatch
