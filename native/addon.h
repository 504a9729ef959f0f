// Per-environment state: each main thread or worker that loads the addon gets
// its own, bound to its own libuv loop.
#pragma once

#include <napi.h>
#include <uv.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "environ.h"
#include "exits.h"
#include "spawner.h"
#include "sys.h"

namespace pidwatch {

class ProcessHandle;
struct SpawnRequest;

// Errors thrown to JS through raw napi calls, each allowed to fail (a terminating
// worker can create no error): `errno` and `syscall` are set when syscall is given.
napi_value Throw(napi_env env, const char* message, int err, const char* syscall,
                 const std::string& path, bool type_error = false);
// The same error, made and returned rather than thrown (nullptr when it cannot be).
napi_value MakeError(napi_env env, const char* message, int err, const char* syscall,
                     const std::string& path, bool type_error = false);
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path);
Napi::Value ThrowTypeError(Napi::Env env, const char* message);
// Splits "a\0b\0" (each string NUL-terminated) into its strings.
std::vector<std::string> SplitNul(const std::string& joined);
// Reads the spawn request that spawn() and spawnSync() both begin with (arguments
// 0 to 8); false when they are malformed.
bool ReadSpawnRequest(const Napi::CallbackInfo& info, SpawnRequest* req);
struct TreeState;

// The SIGCHLD watcher of sigchld mode: one uv_signal_t per loop (libuv shares
// the real handler with child_process). On each signal it peeks at the exited
// children (waitid WNOWAIT) and reaps only its own, by PID: never waitpid(-1),
// which would steal others'.
class SigchldWatcher {
 public:
  // Starts the signal handle; must run before the child is created.
  bool Ensure(uv_loop_t* loop, ExitQueue* exits);
  void Add(ProcessHandle* child);
  void Remove(ProcessHandle* child);
  void AddRef();
  void RemoveRef();
  uv_signal_t* handle() const { return handle_; }
  uv_timer_t* ignored_check() const { return ignored_check_; }
  void Detach() {
    handle_ = nullptr;
    ignored_check_ = nullptr;
  }

 private:
  static constexpr unsigned kIgnoredCheckMs = 250;
  static void OnSignal(uv_signal_t* handle, int signum);
  static void OnIgnoredCheck(uv_timer_t* timer);
  void ReapExited();
  void ReapAll(std::vector<std::pair<ProcessHandle*, ExitInfo>> exited = {});
  uv_signal_t* handle_ = nullptr;
  uv_timer_t* ignored_check_ = nullptr;
  ExitQueue* exits_ = nullptr;
  std::unordered_map<pid_t, ProcessHandle*> children_;
  int refs_ = 0;
};

struct AddonData {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  ExitQueue exits;
  SigchldWatcher sigchld;
  Spawner spawner;
  // The copy of the environment JS handed over, while environ was found to hold
  // it; a spawn request may name it instead of giving an environment of its own.
  EnvironRef parent_env;
  // The handles still watching, by slot (see ProcessHandle::SlotOf).
  std::vector<ProcessHandle*> handles;
  // The handles still watching, for the environment's teardown: a list threaded
  // through the handles, so a spawn or an exit neither allocates nor hashes.
  ProcessHandle* live = nullptr;
  TreeState* trees = nullptr;  // this environment's cgroup leaves (tree.h)
};

}  // namespace pidwatch
