// Module glue: the functions the TypeScript layer calls (typed in src/native.ts),
// and the per-environment setup and teardown.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addon.h"
#include "probe.h"
#include "process.h"
#include "spawn.h"

namespace pidwatch {
namespace {

enum SpawnFlags { kFlagSetsid = 1, kFlagPdeathsig = 2, kFlagUid = 4, kFlagGid = 8 };

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error error = Napi::Error::New(env, strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

std::vector<std::string> ToStrings(Napi::Array array) {
  std::vector<std::string> out;
  uint32_t n = array.Length();
  out.reserve(n);
  for (uint32_t i = 0; i < n; i++) out.push_back(array.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

Napi::Value GetCapabilities(const Napi::CallbackInfo& info) {
  const pidwatch::Capabilities& caps = capabilities();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("forcedSigchld", caps.forced_sigchld);
  o.Set("clone3Pidfd", caps.clone3_pidfd);
  o.Set("pidfdOpen", caps.pidfd_open);
  o.Set("waitidPidfd", caps.waitid_pidfd);
  o.Set("pidfdSendSignal", caps.pidfd_send_signal);
  o.Set("pidfdInfoExit", caps.pidfd_info_exit);
  return o;
}

Napi::Object NewHandle(AddonData* data) { return data->process_ctor.New({}); }

void AbandonChild(SpawnResult& result) {
  if (result.pidfd >= 0 && capabilities().pidfd_send_signal) {
    sys_pidfd_send_signal(result.pidfd, SIGKILL);
  } else {
    kill(result.pid, SIGKILL);
  }
  ExitInfo ignored;
  sys_waitid_exit(P_PID, result.pid, 0, &ignored);
  if (result.pidfd >= 0) close(result.pidfd);
  for (int fd : result.parent_fds)
    if (fd >= 0) close(fd);
}

// spawn(file, argv, env | null, path | null, cwd | null, stdio: Int32Array, flags, uid, gid,
//       onExit) -> { handle, fds }
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (info.Length() < 10 || !info[0].IsString() || !info[1].IsArray() || !info[5].IsTypedArray() ||
      !info[9].IsFunction()) {
    Napi::TypeError::New(env, "pidwatch native spawn: bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  SpawnRequest req;
  req.file = info[0].As<Napi::String>().Utf8Value();
  req.argv = ToStrings(info[1].As<Napi::Array>());
  if (info[2].IsArray()) {
    req.use_environ = false;
    req.env = ToStrings(info[2].As<Napi::Array>());
  }
  if (info[3].IsString()) {
    req.has_path_env = true;
    req.path_env = info[3].As<Napi::String>().Utf8Value();
  }
  if (info[4].IsString()) {
    req.has_cwd = true;
    req.cwd = info[4].As<Napi::String>().Utf8Value();
  }
  Napi::Int32Array stdio = info[5].As<Napi::Int32Array>();
  req.stdio.assign(stdio.Data(), stdio.Data() + stdio.ElementLength());
  uint32_t flags = info[6].As<Napi::Number>().Uint32Value();
  req.setsid = flags & kFlagSetsid;
  req.pdeathsig = flags & kFlagPdeathsig;
  req.set_uid = flags & kFlagUid;
  req.set_gid = flags & kFlagGid;
  req.uid = info[7].As<Napi::Number>().Uint32Value();
  req.gid = info[8].As<Napi::Number>().Uint32Value();

  const pidwatch::Capabilities& caps = capabilities();
  if (!caps.pidfd_mode() && !data->sigchld.Ensure(data->loop))
    return ThrowErrno(env, EAGAIN, "uv_signal_init", "");
  SpawnResult result;
  spawn_process(req, caps.tier(), &result);
  if (result.err) return ThrowErrno(env, result.err, result.syscall, result.path);

  Napi::Object object = NewHandle(data);
  if (env.IsExceptionPending() || object.IsEmpty()) {
    // The environment is terminating: end the child rather than lose track of it.
    AbandonChild(result);
    return env.Undefined();
  }
  ProcessHandle* handle = ProcessHandle::Unwrap(object);
  handle->Start(data, result.pid, result.pidfd, true, info[9].As<Napi::Function>());
  Napi::Array fds = Napi::Array::New(env, result.parent_fds.size());
  for (size_t i = 0; i < result.parent_fds.size(); i++)
    fds[static_cast<uint32_t>(i)] = Napi::Number::New(env, result.parent_fds[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", object);
  out.Set("fds", fds);
  return out;
}

// watch(pid, onExit) -> handle: a pidfd for any process, never reaped here.
Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "pidwatch native watch: bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int pidfd = sys_pidfd_open(pid);
  // EINVAL for a PID whose task is already gone, ENOENT for a thread that is
  // not a process leader: either way there is no such process.
  if (pidfd == -EINVAL || pidfd == -ENOENT) pidfd = -ESRCH;
  if (pidfd < 0) return ThrowErrno(env, -pidfd, "pidfd_open", "");
  Napi::Object object = NewHandle(data);
  if (env.IsExceptionPending() || object.IsEmpty()) {
    close(pidfd);
    return env.Undefined();
  }
  ProcessHandle::Unwrap(object)->Start(data, pid, pidfd, false, info[1].As<Napi::Function>());
  return object;
}

// ---- environment teardown ----

struct Teardown {
  napi_async_cleanup_hook_handle hook = nullptr;
  int pending = 0;
  bool armed = false;
};

void FinishTeardown(Teardown* t) {
  napi_remove_async_cleanup_hook(t->hook);
  delete t;
}

void OnTeardownClosed(uv_handle_t* handle) {
  Teardown* t = static_cast<Teardown*>(handle->data);
  if (handle->type == UV_POLL) delete reinterpret_cast<uv_poll_t*>(handle);
  else if (handle->type == UV_SIGNAL) delete reinterpret_cast<uv_signal_t*>(handle);
  else delete reinterpret_cast<uv_timer_t*>(handle);
  if (--t->pending == 0 && t->armed) FinishTeardown(t);
}

// Closes every libuv handle of this environment so its loop can close. The
// children keep running; nothing calls into JS any more.
void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  AddonData* data = static_cast<AddonData*>(arg);
  Teardown* t = new Teardown;
  t->hook = hook;
  std::vector<ProcessHandle*> live(data->live.begin(), data->live.end());
  data->live.clear();
  for (ProcessHandle* handle : live) handle->Teardown(t, &t->pending, OnTeardownClosed);
  if (uv_signal_t* sig = data->sigchld.handle()) {
    sig->data = t;
    t->pending++;
    uv_close(reinterpret_cast<uv_handle_t*>(sig), OnTeardownClosed);
    data->sigchld.Detach();
  }
  if (data->async_context) napi_async_destroy(data->env, data->async_context);
  data->async_context = nullptr;
  t->armed = true;
  if (t->pending == 0) FinishTeardown(t);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData* data = new AddonData;
  data->env = env;
  napi_get_uv_event_loop(env, &data->loop);
  napi_async_init(env, nullptr, Napi::String::New(env, "pidwatch:exit"), &data->async_context);
  data->process_ctor = Napi::Persistent(ProcessHandle::Define(env));
  env.SetInstanceData<AddonData>(data);
  napi_add_async_cleanup_hook(env, OnEnvCleanup, data, nullptr);

  exports.Set("capabilities", Napi::Function::New<GetCapabilities>(env, "capabilities"));
  exports.Set("spawn", Napi::Function::New<Spawn>(env, "spawn"));
  exports.Set("watch", Napi::Function::New<Watch>(env, "watch"));
  return exports;
}

}  // namespace pidwatch

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return pidwatch::Init(env, exports);
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitModule)
