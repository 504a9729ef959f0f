#include "spawner.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>

#include "probe.h"

namespace pidwatch {

int Spawner::Start(uv_loop_t* loop) {
  async_ = new uv_async_t;
  if (uv_async_init(loop, async_, OnAsync) != 0) {
    delete async_;
    async_ = nullptr;
    return EAGAIN;
  }
  async_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  int err = AddThread();
  if (err) {
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
  }
  return err;
}

int create_thread_without_signals(pthread_t* thread, void* (*main)(void*), void* arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(thread, nullptr, main, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return err;
}

int Spawner::AddThread() {
  int err = create_thread_without_signals(&threads_[thread_count_], Main, this);
  if (err == 0) {
    thread_count_++;
    waiting_++;  // from its start, as it will wait for a job first
  }
  return err;
}

int Spawner::Submit(uv_loop_t* loop, SpawnJob* job, Done done, void* context) {
  pthread_mutex_lock(&mu_);
  if (!async_) {
    if (int err = Start(loop)) {
      pthread_mutex_unlock(&mu_);
      return err;
    }
  }
  on_done_ = done;
  context_ = context;
  if (in_flight_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  todo_.push_back(job);
  // More jobs queued than threads waiting for one: the busy threads may be
  // held for as long as their children run (see the header). Without a new
  // thread the job still runs, on the next thread free.
  if (todo_.size() > waiting_ && thread_count_ < kMaxThreads) AddThread();
  pthread_mutex_unlock(&mu_);
  // Signalled after the unlock: a thread woken under the lock would wake only to
  // wait for it (a second futex call, and a second switch of that thread).
  pthread_cond_signal(&wake_);
  return 0;
}

void* Spawner::Main(void* arg) {
  Spawner* self = static_cast<Spawner*>(arg);
  const SpawnTier tier = capabilities().tier();
  // SCHED_BATCH (where the loop thread that started it runs SCHED_OTHER): a
  // batch thread never preempts the thread that wakes it, so a submit costs the
  // loop the wake-up alone, not the spawn too when both share a core (measured:
  // the call's p50 halved and its p99 a tenth under load). Each child goes back
  // to SCHED_OTHER before its execve.
  struct sched_param param = {};
  const bool batch =
      sched_getscheduler(0) == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &param) == 0;
  pthread_mutex_lock(&self->mu_);
  for (;;) {
    while (!self->stopping_ && self->todo_.empty()) pthread_cond_wait(&self->wake_, &self->mu_);
    if (self->stopping_) break;
    self->waiting_--;
    SpawnJob* job = self->todo_.front();
    self->todo_.pop_front();
    pthread_mutex_unlock(&self->mu_);
    job->started_ns = uv_hrtime();
    job->req.normal_policy = batch;
    spawn_process(job->req, tier, &job->result);
    pthread_mutex_lock(&self->mu_);
    self->done_.push_back(job);
    uv_async_send(self->async_);
    self->waiting_++;
  }
  pthread_mutex_unlock(&self->mu_);
  return nullptr;
}

void Spawner::OnAsync(uv_async_t* handle) {
  Spawner* self = static_cast<Spawner*>(handle->data);
  std::deque<SpawnJob*> done;
  pthread_mutex_lock(&self->mu_);
  done.swap(self->done_);
  pthread_mutex_unlock(&self->mu_);
  self->in_flight_ -= static_cast<unsigned>(done.size());
  if (self->in_flight_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  if (!done.empty()) self->on_done_(self->context_, done);
}

void Spawner::Teardown(void (*abandon)(SpawnJob*), void* closure, int* pending,
                       void (*on_closed)(uv_handle_t*)) {
  if (!async_) return;
  pthread_mutex_lock(&mu_);
  stopping_ = true;
  pthread_cond_broadcast(&wake_);
  const int count = thread_count_;
  pthread_mutex_unlock(&mu_);
  for (int i = 0; i < count; i++) pthread_join(threads_[i], nullptr);
  for (SpawnJob* job : todo_) abandon(job);
  for (SpawnJob* job : done_) abandon(job);
  todo_.clear();
  done_.clear();
  async_->data = closure;
  ++*pending;
  uv_close(reinterpret_cast<uv_handle_t*>(async_), on_closed);
  async_ = nullptr;
}

}  // namespace pidwatch
