#include "spawner.h"

#include <errno.h>
#include <signal.h>

#include <system_error>

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
  // The thread starts with every signal blocked (a new thread inherits the
  // mask): process signals are for the loop threads, and a handler must never
  // run on the thread while a vfork child shares its stack.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = 0;
  try {
    thread_ = std::thread(&Spawner::Main, this);
  } catch (const std::system_error& e) {
    err = e.code().value() ? e.code().value() : EAGAIN;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err) {
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
  }
  return err;
}

int Spawner::Submit(uv_loop_t* loop, SpawnJob* job, Done done, void* context) {
  if (!async_) {
    if (int err = Start(loop)) return err;
  }
  on_done_ = done;
  context_ = context;
  if (in_flight_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    todo_.push_back(job);
  }
  wake_.notify_one();
  return 0;
}

void Spawner::Main() {
  const SpawnTier tier = capabilities().tier();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
    if (stopping_) return;
    SpawnJob* job = todo_.front();
    todo_.pop_front();
    lock.unlock();
    job->started_ns = uv_hrtime();
    spawn_process(job->req, tier, &job->result);
    lock.lock();
    done_.push_back(job);
    uv_async_send(async_);
  }
}

void Spawner::OnAsync(uv_async_t* handle) {
  Spawner* self = static_cast<Spawner*>(handle->data);
  std::deque<SpawnJob*> done;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    done.swap(self->done_);
  }
  self->in_flight_ -= static_cast<unsigned>(done.size());
  if (self->in_flight_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  if (!done.empty()) self->on_done_(self->context_, done);
}

void Spawner::Teardown(void (*abandon)(SpawnJob*), void* closure, int* pending,
                       void (*on_closed)(uv_handle_t*)) {
  if (!async_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
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
