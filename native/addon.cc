// Module glue: the functions the TypeScript layer calls (typed in src/native.ts),
// and the per-environment setup and teardown.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addon.h"
#include "capture.h"
#include "probe.h"
#include "pump.h"
#include "process.h"
#include "reaper.h"
#include "spawn.h"
#include "spawner.h"
#include "sync.h"
#include "tree.h"

namespace pidwatch {

// Raw napi calls, each allowed to fail: while a worker is being terminated no
// error can be created, and node-addon-api's Error::New would then abort.
napi_value MakeError(napi_env env, const char* message, int err, const char* syscall,
                     const std::string& path, bool type_error) {
  napi_value text, error, value;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) != napi_ok) return nullptr;
  napi_status st = type_error ? napi_create_type_error(env, nullptr, text, &error)
                              : napi_create_error(env, nullptr, text, &error);
  if (st != napi_ok) return nullptr;
  if (syscall) {
    if (napi_create_int32(env, err, &value) == napi_ok)
      napi_set_named_property(env, error, "errno", value);
    if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok)
      napi_set_named_property(env, error, "syscall", value);
  }
  if (!path.empty() && napi_create_string_utf8(env, path.c_str(), path.size(), &value) == napi_ok)
    napi_set_named_property(env, error, "path", value);
  return error;
}

napi_value Throw(napi_env env, const char* message, int err, const char* syscall,
                 const std::string& path, bool type_error) {
  napi_value error = MakeError(env, message, err, syscall, path, type_error);
  if (error) napi_throw(env, error);
  return nullptr;
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Throw(env, strerror(err), err, syscall, path);
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const char* message) {
  Throw(env, message, 0, nullptr, "", true);
  return env.Undefined();
}

// Splits "a\0b\0" (each string NUL-terminated) into its strings. Strings cross
// the boundary joined because reading an array element may run JS, which fails
// while a worker is being terminated.
std::vector<std::string> SplitNul(const std::string& joined) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t end; (end = joined.find('\0', start)) != std::string::npos; start = end + 1)
    out.emplace_back(joined, start, end - start);
  return out;
}

enum SpawnFlags {
  kFlagSetsid = 1,
  kFlagPdeathsig = 2,
  kFlagUid = 4,
  kFlagGid = 8,
  kFlagProcessGroup = 16,  // leads a new process group that is its tree ('pgroup')
};

// spawn's and spawnSync's first arguments: (file, argv, env | null, path | null,
// cwd | null, stdio: Int32Array, flags, uid, gid); argv and env are NUL-terminated
// strings joined. env null: the environment environMatches last matched, with its
// PATH (path is then not read).
bool ReadSpawnRequest(const Napi::CallbackInfo& info, SpawnRequest* req) {
  if (info.Length() < 9 || !info[0].IsString() || !info[1].IsString() || !info[5].IsTypedArray())
    return false;
  req->file = info[0].As<Napi::String>().Utf8Value();
  req->argv = SplitNul(info[1].As<Napi::String>().Utf8Value());
  if (info[2].IsNull()) {
    req->parent_env = info.Env().GetInstanceData<AddonData>()->parent_env;
    if (!req->parent_env) return false;
    req->has_path_env = req->parent_env->has_path;
    req->path_env = req->parent_env->path;
  } else if (info[2].IsString()) {
    req->env = SplitNul(info[2].As<Napi::String>().Utf8Value());
  } else {
    return false;
  }
  if (!req->parent_env && info[3].IsString()) {
    req->has_path_env = true;
    req->path_env = info[3].As<Napi::String>().Utf8Value();
  }
  if (info[4].IsString()) {
    req->has_cwd = true;
    req->cwd = info[4].As<Napi::String>().Utf8Value();
  }
  Napi::Int32Array stdio = info[5].As<Napi::Int32Array>();
  req->stdio.assign(stdio.Data(), stdio.Data() + stdio.ElementLength());
  uint32_t flags = info[6].As<Napi::Number>().Uint32Value();
  req->setsid = flags & kFlagSetsid;
  req->pdeathsig = flags & kFlagPdeathsig;
  req->set_uid = flags & kFlagUid;
  req->set_gid = flags & kFlagGid;
  req->uid = info[7].As<Napi::Number>().Uint32Value();
  req->gid = info[8].As<Napi::Number>().Uint32Value();
  req->setpgid = flags & kFlagProcessGroup;
  return true;
}

namespace {

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

// Ends a child nobody can watch: SIGKILL, its fds closed, reaped by the reaper.
void EndChild(SpawnResult& result) {
  if (result.pidfd >= 0 && capabilities().pidfd_send_signal) {
    sys_pidfd_send_signal(result.pidfd, SIGKILL);
  } else {
    kill(result.pid, SIGKILL);
  }
  abandon_child(result.pid, result.pidfd);  // reaped off this thread once it has died
  for (int fd : result.parent_fds)
    if (fd >= 0) close(fd);
}

// Reads the arguments spawn and spawnAsync share: (file, argv, env, path | null,
// cwd | null, stdio: Int32Array, flags, uid, gid, fds: Int32Array, id, leaf?).
// argv and env are NUL-terminated strings joined. False with a TypeError thrown.
bool ReadRequest(const Napi::CallbackInfo& info, SpawnRequest* req, TreeLeaf** leaf) {
  Napi::Env env = info.Env();
  if (info.Length() < 11 || !ReadSpawnRequest(info, req) || !info[9].IsTypedArray() ||
      !info[10].IsNumber()) {
    ThrowTypeError(env, "pidwatch native spawn: bad arguments");
    return false;
  }
  if (info[9].As<Napi::Int32Array>().ElementLength() < req->stdio.size()) {
    ThrowTypeError(env, "pidwatch native spawn: fds shorter than stdio");
    return false;
  }
  *leaf = nullptr;
  if (info.Length() > 11 && info[11].IsObject()) {
    void* native = nullptr;
    if (napi_unwrap(env, info[11], &native) == napi_ok) *leaf = static_cast<TreeLeaf*>(native);
    if (!*leaf || !(*leaf)->dir()) {
      ThrowTypeError(env, "pidwatch native spawn: bad leaf");
      return false;
    }
    req->cgroup_fd = (*leaf)->dir()->dir_fd;
    req->cgroup_procs = (*leaf)->dir()->procs_path.c_str();
  }
  // sigchld mode: the watcher must be up before the child can exit.
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!capabilities().pidfd_mode() && !data->sigchld.Ensure(data->loop, &data->exits)) {
    ThrowErrno(env, EAGAIN, "uv_signal_init", "");
    return false;
  }
  return true;
}

// Starts watching a child just spawned and writes the parent's ends to fds.
// Returns 0, or the errno that kept its pidfd off the exit queue (the child is
// then ended rather than lost track of).
int Adopt(AddonData* data, const SpawnRequest& req, SpawnResult& result, TreeLeaf* leaf,
          uint64_t started_ns, double key, int32_t* fds) {
  ProcessHandle* handle = new ProcessHandle;
  if (req.setpgid) handle->SetGroupLeader();
  if (leaf && req.setsid) leaf->SetDetached();
  if (int failed = handle->Start(data, result.pid, result.pidfd, true, started_ns, key)) {
    delete handle;
    EndChild(result);
    return -failed;
  }
  handle->HoldFds(result.parent_fds);
  for (size_t i = 0; i < result.parent_fds.size(); i++) fds[i] = result.parent_fds[i];
  return 0;
}

// spawn(...) -> pid (see ReadRequest): spawns on this thread. fds receives the
// parent's end of each child fd, or -1; key names the handle (handleKill and the
// others) and its slot is what the exit's row carries. With a leaf the child
// starts in that cgroup.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  SpawnRequest req;
  TreeLeaf* leaf;
  if (!ReadRequest(info, &req, &leaf)) return env.Undefined();
  SpawnResult result;
  uint64_t started_ns = uv_hrtime();
  spawn_process(req, capabilities().tier(), &result);
  if (result.err) return ThrowErrno(env, result.err, result.syscall, result.path);
  if (int err = Adopt(data, req, result, leaf, started_ns, info[10].As<Napi::Number>().DoubleValue(),
                      info[9].As<Napi::Int32Array>().Data()))
    return ThrowErrno(env, err, "epoll_ctl", result.path);
  return Napi::Number::New(env, result.pid);
}

napi_value RefValue(napi_env env, napi_ref ref) {
  napi_value value = nullptr;
  if (ref) napi_get_reference_value(env, ref, &value);
  return value;
}

void DeleteJob(napi_env env, SpawnJob* job) {
  if (job->fds) napi_delete_reference(env, job->fds);
  if (job->leaf) napi_delete_reference(env, job->leaf);
  delete job;
}

// On the loop thread, for the jobs the spawner thread has done: each promise is
// settled, then (once the callback scope closes) the JS reactions run, which take
// the pipe ends and name each exit's target. Only then may an exit be delivered:
// in sigchld mode, a child whose SIGCHLD came before it was watched is reaped
// here after that, and its row flushed.
void OnSpawned(void* context, std::deque<SpawnJob*>& jobs) {
  AddonData* data = static_cast<AddonData*>(context);
  napi_env env = data->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value resource;
  napi_callback_scope callback_scope = nullptr;
  if (napi_create_object(env, &resource) == napi_ok)
    napi_open_callback_scope(env, resource, data->exits.async_context(), &callback_scope);
  ExitQueue::Busy busy(&data->exits);
  std::vector<double> unwatched;  // sigchld mode: a SIGCHLD may have come and gone
  for (SpawnJob* job : jobs) {
    SpawnResult& result = job->result;
    if (result.err) {
      napi_value error = MakeError(env, strerror(result.err), result.err, result.syscall,
                                   result.path);
      if (error) napi_reject_deferred(env, job->deferred, error);
      DeleteJob(env, job);
      continue;
    }
    napi_value fds = RefValue(env, job->fds), leaf_object = RefValue(env, job->leaf);
    void* buffer = nullptr;
    void* leaf = nullptr;
    if (leaf_object) napi_unwrap(env, leaf_object, &leaf);
    napi_value pid = nullptr;
    if (fds && napi_get_typedarray_info(env, fds, nullptr, nullptr, &buffer, nullptr, nullptr) ==
                   napi_ok &&
        napi_create_int32(env, result.pid, &pid) == napi_ok) {
      if (int err = Adopt(data, job->req, result, static_cast<TreeLeaf*>(leaf), job->started_ns,
                          job->id, static_cast<int32_t*>(buffer))) {
        napi_value error = MakeError(env, strerror(err), err, "epoll_ctl", result.path);
        if (error) napi_reject_deferred(env, job->deferred, error);
      } else {
        napi_resolve_deferred(env, job->deferred, pid);
        if (!capabilities().pidfd_mode()) unwatched.push_back(job->id);
      }
    } else {
      EndChild(result);
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, job->deferred, undefined);
    }
    DeleteJob(env, job);
  }
  if (callback_scope) napi_close_callback_scope(env, callback_scope);
  // By key: the reactions may have closed a handle (and the slot been taken since).
  for (double key : unwatched) {
    ProcessHandle* handle = ProcessHandle::Find(data, key);
    ExitInfo exit;
    if (handle && handle->TryReap(&exit)) handle->Finish(exit);
  }
  napi_close_handle_scope(env, scope);
  data->exits.Flush();
}

// spawnAsync(...) -> Promise<pid | undefined> (see ReadRequest): the same as
// spawn, the clone and the wait for execve on the environment's spawner thread.
// A failure rejects with the error spawn would throw; undefined: the environment
// is terminating.
Napi::Value SpawnAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  SpawnJob* job = new SpawnJob;
  TreeLeaf* leaf;
  if (!ReadRequest(info, &job->req, &leaf)) {
    delete job;
    return env.Undefined();
  }
  job->id = info[10].As<Napi::Number>().DoubleValue();
  napi_value promise;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_reference(env, info[9], 1, &job->fds) != napi_ok ||
      (leaf && napi_create_reference(env, info[11], 1, &job->leaf) != napi_ok)) {
    DeleteJob(env, job);
    return env.Undefined();
  }
  if (int err = data->spawner.Submit(data->loop, job, OnSpawned, data)) {
    napi_value error = MakeError(env, strerror(err), err, "pthread_create", "");
    if (error) napi_reject_deferred(env, job->deferred, error);
    DeleteJob(env, job);
  }
  return Napi::Value(env, promise);
}

// Teardown: a job the thread had not handed back; its child, if any, is ended.
void AbandonJob(SpawnJob* job) {
  if (job->result.pid > 0) EndChild(job->result);
  delete job;  // its references go with the environment
}

// watch(pid, key) -> pid: a pidfd for any process, never reaped here (key as
// for spawn).
Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    return ThrowTypeError(env, "pidwatch native watch: bad arguments");
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int pidfd = sys_pidfd_open(pid);
  // EINVAL for a PID whose task is already gone, ENOENT for a thread that is
  // not a process leader: either way there is no such process.
  if (pidfd == -EINVAL || pidfd == -ENOENT) pidfd = -ESRCH;
  if (pidfd < 0) return ThrowErrno(env, -pidfd, "pidfd_open", "");
  ProcessHandle* handle = new ProcessHandle;
  if (int err = handle->Start(data, pid, pidfd, false, uv_hrtime(),
                              info[1].As<Napi::Number>().DoubleValue())) {
    delete handle;
    close(pidfd);
    return ThrowErrno(env, -err, "epoll_ctl", "");
  }
  return Napi::Number::New(env, pid);
}

// zombieStatus(pid) -> [code, signal, coreDumped] of the zombie `pid` (code -1 when
// a signal ended it), or null when it is no zombie or this process may not see
// its status: the /proc reader of watch() without pidfds.
Napi::Value ZombieStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    return ThrowTypeError(env, "pidwatch native zombieStatus: bad arguments");
  ExitInfo exit;
  if (!read_zombie_status(info[0].As<Napi::Number>().Int32Value(), &exit)) return env.Null();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, exit.signal == 0 ? exit.code : -1);
  out.Set(1u, exit.signal);
  out.Set(2u, exit.core_dumped);
  return out;
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
  else if (handle->type == UV_ASYNC) delete reinterpret_cast<uv_async_t*>(handle);
  else delete reinterpret_cast<uv_timer_t*>(handle);
  if (--t->pending == 0 && t->armed) FinishTeardown(t);
}

// Closes every libuv handle of this environment so its loop can close. The
// children keep running; nothing calls into JS any more.
void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  AddonData* data = static_cast<AddonData*>(arg);
  Teardown* t = new Teardown;
  t->hook = hook;
  // First, so that no child is handed over while the handles close.
  data->spawner.Teardown(AbandonJob, t, &t->pending, OnTeardownClosed);
  ProcessHandle* next;
  for (ProcessHandle* handle = data->live; handle; handle = next) {
    next = handle->next_live();
    handle->Teardown(t, &t->pending, OnTeardownClosed);
    delete handle;
  }
  data->live = nullptr;
  data->handles.clear();
  uv_handle_t* watcher_handles[] = {reinterpret_cast<uv_handle_t*>(data->sigchld.handle()),
                                    reinterpret_cast<uv_handle_t*>(data->sigchld.ignored_check())};
  for (uv_handle_t* h : watcher_handles) {
    if (!h) continue;
    h->data = t;
    t->pending++;
    uv_close(h, OnTeardownClosed);
  }
  data->sigchld.Detach();
  TeardownTrees(data, t, &t->pending, OnTeardownClosed);
  data->exits.Teardown(t, &t->pending, OnTeardownClosed);
  t->armed = true;
  if (t->pending == 0) FinishTeardown(t);
}

// environMatches(joined) -> whether environ holds exactly these NUL-ended
// strings now; if so, a spawn request may name them (env null) from then on,
// until the next call.
Napi::Value EnvironMatches(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    return ThrowTypeError(info.Env(), "pidwatch native environMatches: bad arguments");
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->parent_env = match_environ(info[0].As<Napi::String>().Utf8Value());
  return Napi::Boolean::New(info.Env(), static_cast<bool>(data->parent_env));
}

// onExits(handler): handler(count) receives each batch of exits (exitRows).
Napi::Value OnExits(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    return ThrowTypeError(info.Env(), "pidwatch native onExits: bad arguments");
  info.Env().GetInstanceData<AddonData>()->exits.SetHandler(info.Env(), info[0]);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Probe at load, not at the first spawn: a process that first spawns at its fd
  // limit must not conclude from EMFILE that the kernel lacks pidfds.
  capabilities();
  AddonData* data = new AddonData;
  data->env = env;
  napi_get_uv_event_loop(env, &data->loop);
  env.SetInstanceData<AddonData>(data);
  InitTrees(env, data);
  napi_add_async_cleanup_hook(env, OnEnvCleanup, data, nullptr);
  if (!data->exits.Init(env, data->loop, exports)) return exports;

  exports.Set("onExits", Napi::Function::New<OnExits>(env, "onExits"));
  exports.Set("capabilities", Napi::Function::New<GetCapabilities>(env, "capabilities"));
  exports.Set("spawn", Napi::Function::New<Spawn>(env, "spawn"));
  exports.Set("spawnAsync", Napi::Function::New<SpawnAsync>(env, "spawnAsync"));
  exports.Set("environMatches", Napi::Function::New<EnvironMatches>(env, "environMatches"));
  exports.Set("watch", Napi::Function::New<Watch>(env, "watch"));
  exports.Set("zombieStatus", Napi::Function::New<ZombieStatus>(env, "zombieStatus"));
  exports.Set("treeLeaf", Napi::Function::New<AcquireLeaf>(env, "treeLeaf"));
  exports.Set("cgroupDirs", Napi::Function::New<CgroupDirs>(env, "cgroupDirs"));
  exports.Set("pgroupMembers", Napi::Function::New<PgroupMembers>(env, "pgroupMembers"));
  InitProcess(env, exports);
  InitCapture(env, exports);
  InitSync(env, exports);
  InitPump(env, exports);
  return exports;
}

}  // namespace pidwatch

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return pidwatch::Init(env, exports);
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitModule)
