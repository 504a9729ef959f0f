#include "tree.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "addon.h"

namespace pidwatch {
namespace {

// How long an environment's teardown waits for a killed tree to empty before
// it removes the leaf (the exit hook retries what remains).
constexpr int kTeardownWaitMs = 200;
constexpr unsigned kRemoveMaxDelayMs = 256;

std::atomic<unsigned> next_env_index{0};

void delete_handle(uv_handle_t* handle) {
  if (handle->type == UV_POLL) delete reinterpret_cast<uv_poll_t*>(handle);
  else delete reinterpret_cast<uv_timer_t*>(handle);
}

void schedule_removal(TreeState* ts, AddonData* data);

// rmdir of an emptied leaf may answer EBUSY for a moment (the last member is
// still being released): retried with a backoff from 1 ms to kRemoveMaxDelayMs,
// after which it is left to the exit hook.
void on_remove_timer(uv_timer_t* timer) {
  AddonData* data = static_cast<AddonData*>(timer->data);
  TreeState* ts = data->trees;
  std::vector<LeafDir> still;
  for (LeafDir& dir : ts->removing) {
    if (leaf_remove(&dir) == 0) registry_remove(dir.path);
    else still.push_back(std::move(dir));
  }
  ts->removing = std::move(still);
  if (ts->removing.empty()) {
    ts->remove_delay_ms = 1;
    return;
  }
  ts->remove_delay_ms *= 2;
  if (ts->remove_delay_ms > kRemoveMaxDelayMs) {
    for (LeafDir& dir : ts->removing) leaf_close(&dir);  // the exit hook has the path
    ts->removing.clear();
    ts->remove_delay_ms = 1;
    return;
  }
  schedule_removal(ts, data);
}

void schedule_removal(TreeState* ts, AddonData* data) {
  if (!ts->remove_timer) {
    ts->remove_timer = new uv_timer_t;
    uv_timer_init(data->loop, ts->remove_timer);
    ts->remove_timer->data = data;
    uv_unref(reinterpret_cast<uv_handle_t*>(ts->remove_timer));
  }
  uv_timer_start(ts->remove_timer, on_remove_timer, ts->remove_delay_ms, 0);
}

void remove_or_retry(TreeState* ts, AddonData* data, LeafDir&& dir) {
  if (leaf_remove(&dir) == 0) {
    registry_remove(dir.path);
    return;
  }
  ts->removing.push_back(std::move(dir));
  schedule_removal(ts, data);
}

void on_idle(uv_timer_t* timer) {
  TreeState* ts = static_cast<AddonData*>(timer->data)->trees;
  if (ts->live) return;
  for (LeafDir& dir : ts->pool) {
    if (leaf_remove(&dir) == 0) registry_remove(dir.path);
    leaf_close(&dir);
  }
  ts->pool.clear();
  parent_remove_if_unused();
}

void start_idle(TreeState* ts, AddonData* data) {
  if (!ts->idle_timer) {
    ts->idle_timer = new uv_timer_t;
    uv_timer_init(data->loop, ts->idle_timer);
    ts->idle_timer->data = data;
    uv_unref(reinterpret_cast<uv_handle_t*>(ts->idle_timer));
  }
  uv_timer_start(ts->idle_timer, on_idle, TreeState::kIdleMs, 0);
}

}  // namespace

Napi::Function TreeLeaf::Define(Napi::Env env) {
  return DefineClass(env, "TreeLeaf",
                     {
                         InstanceAccessor<&TreeLeaf::GetPath>("path"),
                         InstanceMethod<&TreeLeaf::Kill>("kill"),
                         InstanceMethod<&TreeLeaf::Pids>("pids"),
                         InstanceMethod<&TreeLeaf::Settle>("settle"),
                         InstanceMethod<&TreeLeaf::Release>("release"),
                     });
}

TreeLeaf::TreeLeaf(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TreeLeaf>(info) {}

TreeLeaf::~TreeLeaf() {
  // Dropped without settle or release (a spawn that threw before the JS side
  // could): the leaf is empty or its tree is killed, then it goes back.
  if (has_dir_ && data_ && data_->trees) {
    StopPoll();
    leaf_signal(dir_, SIGKILL);
    Unlink();
    has_dir_ = false;
    remove_or_retry(data_->trees, data_, std::move(dir_));
  }
}

void TreeLeaf::Adopt(AddonData* data, LeafDir&& dir) {
  data_ = data;
  dir_ = std::move(dir);
  has_dir_ = true;
  TreeState* ts = data->trees;
  prev_ = nullptr;
  next_ = ts->live;
  if (next_) next_->prev_ = this;
  ts->live = this;
}

void TreeLeaf::Unlink() {
  if (!data_ || !data_->trees) return;
  TreeState* ts = data_->trees;
  if (prev_) prev_->next_ = next_;
  else if (ts->live == this) ts->live = next_;
  if (next_) next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  if (!ts->live) start_idle(ts, data_);
}

void TreeLeaf::SetDetached() {
  detached_ = true;
  if (has_dir_) registry_set_keep(dir_.path, true);
}

Napi::Value TreeLeaf::GetPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dir_.path);
}

// kill(signal) -> 0 when sent, -ESRCH when the tree is empty (nothing sent), or -errno.
Napi::Value TreeLeaf::Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!has_dir_) return Napi::Number::New(env, -ESRCH);
  int r = leaf_signal(dir_, info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(env, r > 0 ? 0 : r == 0 ? -ESRCH : r);
}

Napi::Value TreeLeaf::Pids(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<pid_t> pids;
  if (has_dir_) leaf_pids(dir_, &pids);
  Napi::Array out = Napi::Array::New(env, pids.size());
  for (size_t i = 0; i < pids.size(); i++) out[i] = Napi::Number::New(env, pids[i]);
  return out;
}

namespace {
Napi::Value ToArray(Napi::Env env, const double* values) {
  Napi::Array out = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; i++) out[i] = Napi::Number::New(env, values[i]);
  return out;
}
}  // namespace

// settle(onEmpty) once the leader has been reaped: kills what is left of the
// tree and returns [leftovers, userUs, systemUs, memoryPeak] (-1: unknown) when
// the leaf is empty already; else returns undefined and calls onEmpty with that
// array once cgroup.events says "populated 0" (a priority event on the fd).
Napi::Value TreeLeaf::Settle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double out[4] = {0, -1, -1, -1};
  if (!has_dir_) return ToArray(env, out);
  CgroupEvents ev;
  bool read = leaf_events(dir_, &ev) == 0;
  bool empty = read && !ev.populated;
  if (read && ev.populated) {
    std::vector<pid_t> pids;
    leaf_pids(dir_, &pids);
    leftovers_ = static_cast<int>(pids.size());
    leaf_signal(dir_, SIGKILL);
    if (leaf_events(dir_, &ev) == 0 && ev.populated && info[0].IsFunction()) {
      on_empty_ = Napi::Persistent(info[0].As<Napi::Function>());
      poll_ = new uv_poll_t;
      if (uv_poll_init(data_->loop, poll_, dir_.events_fd) == 0) {
        poll_->data = this;
        uv_poll_start(poll_, UV_PRIORITIZED, OnEvents);
        Ref();  // alive until the callback, whatever JS drops
        return env.Undefined();
      }
      delete poll_;
      poll_ = nullptr;
      on_empty_.Reset();
      leaf_wait_empty(dir_, kTeardownWaitMs);
    }
    empty = false;  // read again by GiveBack
  }
  Finish(out, empty);
  return ToArray(env, out);
}

void TreeLeaf::OnEvents(uv_poll_t* handle, int status, int events) {
  TreeLeaf* leaf = static_cast<TreeLeaf*>(handle->data);
  CgroupEvents ev;
  bool read = status == 0 && leaf_events(leaf->dir_, &ev) == 0;
  if (read && ev.populated) return;
  leaf->StopPoll();
  double out[4] = {0, -1, -1, -1};
  leaf->Finish(out, read);
  Napi::FunctionReference cb = std::move(leaf->on_empty_);
  AddonData* data = leaf->data_;
  if (!data || !data->exits.alive() || cb.IsEmpty()) {
    leaf->Unref();
    return;
  }
  Napi::Env env = leaf->Env();
  Napi::HandleScope scope(env);
  napi_value arg = ToArray(env, out), result;
  napi_status st =
      napi_make_callback(env, data->exits.async_context(), leaf->Value(), cb.Value(), 1, &arg, &result);
  leaf->Unref();
  if (st == napi_pending_exception) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

void TreeLeaf::Finish(double* out, bool empty) {
  out[0] = leftovers_;
  GiveBack(out, empty);
}

// Gives the (empty) leaf back: to the pool, its cpu.stat kept as the base of
// the next tree's figures (when read); or removed when the pool is full or
// memory.peak, which cannot be reset, must start from zero.
void TreeLeaf::GiveBack(double* out, bool known_empty) {
  if (!has_dir_) return;
  has_dir_ = false;
  Unlink();
  TreeState* ts = data_->trees;
  double user = -1, system = -1;
  bool cpu_read = want_cpu_ && leaf_cpu(dir_, &user, &system) == 0;
  if (cpu_read && out && dir_.base_known) {
    out[1] = user - dir_.base_user_us;
    out[2] = system - dir_.base_system_us;
  }
  if (out && dir_.has_memory_peak) {
    int64_t peak = leaf_memory_peak(dir_);
    out[3] = peak >= 0 ? static_cast<double>(peak) : -1;
  }
  CgroupEvents ev;
  bool empty = known_empty || (leaf_events(dir_, &ev) == 0 && !ev.populated);
  if (empty && (cpu_read || !want_cpu_) && !dir_.killed && !dir_.has_memory_peak &&
      ts->pool.size() < TreeState::kPoolMax) {
    dir_.base_user_us = user;
    dir_.base_system_us = system;
    dir_.base_known = cpu_read;
    registry_set_keep(dir_.path, false);
    leaf_close(&dir_);  // a pooled leaf holds no fd: reopened when taken
    ts->pool.push_back(std::move(dir_));
  } else {
    if (!empty) leaf_signal(dir_, SIGKILL);
    remove_or_retry(ts, data_, std::move(dir_));
  }
  dir_ = LeafDir{};
}

// release(): gives back a leaf whose spawn failed (its child has been reaped).
Napi::Value TreeLeaf::Release(const Napi::CallbackInfo& info) {
  StopPoll();
  GiveBack(nullptr, false);
  return info.Env().Undefined();
}

void TreeLeaf::StopPoll() {
  if (poll_) uv_close(reinterpret_cast<uv_handle_t*>(poll_), delete_handle);
  poll_ = nullptr;
}

void TreeLeaf::Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*)) {
  if (poll_) {
    poll_->data = closure;
    ++*pending;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), on_closed);
  }
  poll_ = nullptr;
  on_empty_.Reset();
  if (!has_dir_) return;
  has_dir_ = false;
  prev_ = next_ = nullptr;
  TreeState* trees = data_ ? data_->trees : nullptr;
  data_ = nullptr;
  if (detached_) leaf_migrate(dir_, cgroup_root());
  else leaf_signal(dir_, SIGKILL);
  if (trees) trees->removing.push_back(std::move(dir_));  // removed by TeardownTrees
  dir_ = LeafDir{};
}

Napi::Value AcquireLeaf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  TreeState* ts = data->trees;
  if (ts->idle_timer) uv_timer_stop(ts->idle_timer);
  LeafDir dir;
  while (!ts->pool.empty()) {
    dir = std::move(ts->pool.back());
    ts->pool.pop_back();
    if (leaf_open(&dir) == 0) break;
    registry_remove(dir.path);  // removed from outside meanwhile
    dir = LeafDir{};
  }
  bool want_cpu = !info[0].IsBoolean() || info[0].As<Napi::Boolean>().Value();
  // A pooled leaf whose last tree skipped cpu.stat: the base is read now.
  if (want_cpu && dir.dir_fd >= 0 && !dir.base_known) {
    dir.base_known = leaf_cpu(dir, &dir.base_user_us, &dir.base_system_us) == 0;
  }
  if (dir.dir_fd < 0) {
    int err = 0;
    const std::string& parent = cgroup_parent(&err);
    if (parent.empty()) return Napi::Number::New(env, -err);
    int r;
    do {
      std::string path = parent + "/t" + std::to_string(ts->env_index) + "-" +
                         std::to_string(ts->next_leaf++);
      r = leaf_create(path, &dir);
    } while (r == -EEXIST);
    if (r < 0) return Napi::Number::New(env, r);
    registry_add(dir.path, false);
  }
  // Raw calls: a terminating environment fails to construct, and
  // node-addon-api would turn that failure into an abort.
  napi_value ctor, object;
  void* native = nullptr;
  if (napi_get_reference_value(env, ts->ctor, &ctor) != napi_ok || ctor == nullptr ||
      napi_new_instance(env, ctor, 0, nullptr, &object) != napi_ok ||
      napi_unwrap(env, object, &native) != napi_ok) {
    leaf_close(&dir);
    ts->pool.push_back(std::move(dir));
    return env.Undefined();
  }
  static_cast<TreeLeaf*>(native)->want_cpu_ = want_cpu;
  static_cast<TreeLeaf*>(native)->Adopt(data, std::move(dir));
  return Napi::Value(env, object);
}

Napi::Value CgroupDirs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string& root = cgroup_root();
  if (root.empty()) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out[0u] = Napi::String::New(env, root);
  out[1u] = Napi::String::New(env, root + "/pidwatch-" + std::to_string(getpid()));
  return out;
}

Napi::Value PgroupMembers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<pid_t> pids;
  pgroup_members(info[0].As<Napi::Number>().Int32Value(), 0, &pids);
  Napi::Array out = Napi::Array::New(env, pids.size());
  for (size_t i = 0; i < pids.size(); i++) out[i] = Napi::Number::New(env, pids[i]);
  return out;
}

void InitTrees(Napi::Env env, AddonData* data) {
  data->trees = new TreeState;
  data->trees->env_index = next_env_index.fetch_add(1);
  data->trees->ctor = Napi::Persistent(TreeLeaf::Define(env));
}

void TeardownTrees(AddonData* data, void* closure, int* pending,
                   void (*on_closed)(uv_handle_t*)) {
  TreeState* ts = data->trees;
  if (!ts) return;
  TreeLeaf* next;
  for (TreeLeaf* leaf = ts->live; leaf; leaf = next) {
    next = leaf->next_live();
    leaf->Teardown(closure, pending, on_closed);
  }
  ts->live = nullptr;
  // Every tree was sent SIGKILL above; now each leaf is waited for (within one
  // shared bound) and removed.
  uint64_t deadline = uv_hrtime() + kTeardownWaitMs * 1000000ULL;
  for (std::vector<LeafDir>* dirs : {&ts->pool, &ts->removing}) {
    for (LeafDir& dir : *dirs) {
      uint64_t now = uv_hrtime();
      leaf_wait_empty(dir, now < deadline ? static_cast<int>((deadline - now) / 1000000) : 0);
      if (leaf_remove(&dir) == 0) registry_remove(dir.path);
      leaf_close(&dir);
    }
    dirs->clear();
  }
  parent_remove_if_unused();
  for (uv_timer_t** timer : {&ts->remove_timer, &ts->idle_timer}) {
    if (!*timer) continue;
    (*timer)->data = closure;
    ++*pending;
    uv_close(reinterpret_cast<uv_handle_t*>(*timer), on_closed);
    *timer = nullptr;
  }
}

}  // namespace pidwatch
