// A cgroup leaf as JS sees it (the 'cgroup' mechanism of `tree: true`), and the
// per-environment pool of emptied leaves. The kernel side is in cgroup.h.
#pragma once

#include <napi.h>
#include <uv.h>

#include <vector>

#include "cgroup.h"

namespace pidwatch {

struct AddonData;
class TreeLeaf;

// Each environment (main thread or worker) has its own leaves, named after it,
// and a small pool of emptied ones: reusing a leaf costs about half of making
// one (mkdir, open, and rmdir at the end).
struct TreeState {
  static constexpr size_t kPoolMax = 16;
  unsigned env_index = 0;
  unsigned next_leaf = 0;
  std::vector<LeafDir> pool;
  std::vector<LeafDir> removing;  // emptied, rmdir answered EBUSY: retried on a timer
  uv_timer_t* remove_timer = nullptr;
  // Once no tree of this environment runs, the pool is emptied and the parent
  // removed after kIdleMs: a process ended by a signal then leaves nothing.
  static constexpr unsigned kIdleMs = 1;
  uv_timer_t* idle_timer = nullptr;
  unsigned remove_delay_ms = 1;
  TreeLeaf* live = nullptr;  // leaves in use, for the environment's teardown
  Napi::FunctionReference ctor;
};

class TreeLeaf : public Napi::ObjectWrap<TreeLeaf> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TreeLeaf(const Napi::CallbackInfo& info);
  ~TreeLeaf() override;

  // The leaf for spawn to place a child in; null once released.
  LeafDir* dir() { return has_dir_ ? &dir_ : nullptr; }
  // The tree was spawned detached: at process exit it is moved out, not killed.
  void SetDetached();
  // Environment teardown: the tree is killed (moved out when detached) and the
  // leaf removed; no JS. A closed handle counts in *pending until on_closed.
  void Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*));
  TreeLeaf* next_live() const { return next_; }

 private:
  friend Napi::Value AcquireLeaf(const Napi::CallbackInfo& info);
  void Adopt(AddonData* data, LeafDir&& dir);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value Kill(const Napi::CallbackInfo& info);
  Napi::Value Pids(const Napi::CallbackInfo& info);
  Napi::Value Settle(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);

  static void OnEvents(uv_poll_t* handle, int status, int events);
  // Reads the tree's accounting into out[0..2] and gives the leaf back;
  // `empty`: cgroup.events has just said "populated 0".
  void Finish(double* out, bool empty);
  void GiveBack(double* out, bool known_empty);
  void StopPoll();
  void Unlink();

  AddonData* data_ = nullptr;
  LeafDir dir_;
  bool has_dir_ = false;
  bool detached_ = false;
  // The tree's CPU time is wanted (cpu.stat is read at its end, and at its start
  // when the pooled leaf's last reading was skipped).
  bool want_cpu_ = true;
  int leftovers_ = 0;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference on_empty_;
  TreeLeaf* prev_ = nullptr;
  TreeLeaf* next_ = nullptr;
};

// treeLeaf(wantCpu) -> TreeLeaf: a leaf from the pool or a new one; -errno when
// no leaf can be made. wantCpu false: the tree's CPU time is not read (null).
Napi::Value AcquireLeaf(const Napi::CallbackInfo& info);
// cgroupDirs() -> [root, parent] or null: where this process's trees live.
Napi::Value CgroupDirs(const Napi::CallbackInfo& info);
// pgroupMembers(pgid) -> number[]: live members of a process group (/proc walk).
Napi::Value PgroupMembers(const Napi::CallbackInfo& info);

void InitTrees(Napi::Env env, AddonData* data);
// Kills this environment's trees and removes its leaves (environment teardown).
void TeardownTrees(AddonData* data, void* closure, int* pending, void (*on_closed)(uv_handle_t*));

}  // namespace pidwatch
