#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "addon.h"
#include "probe.h"
#include "tree.h"

namespace pidwatch {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWake = 16;
constexpr double kNever = INFINITY;
// Without a pidfd the exit is not a pollable event: while a deadline is pending
// the child is asked with waitid(WNOHANG) between polls, 50 us at first, the
// pause doubling up to this ceiling. With no deadline the wait simply blocks.
constexpr double kExitPollCeilingMs = 10;
// How long the killed leftovers of a tree are waited for, at most, so that the
// output pipes they held close.
constexpr int kLeftoverWaitMs = 1000;

double now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// One child run to its end on this thread. Owns the parent's pipe ends and the
// pidfd; everything is closed and the child reaped before run() returns.
class SyncRun {
 public:
  SyncRun(const SyncOptions& options, const SpawnRequest& req, const SpawnResult& spawn,
          SyncResult* out)
      : options_(options), out_(out), pid_(spawn.pid), pidfd_(spawn.pidfd),
        pgroup_(req.setpgid && !options.leaf) {
    in_fd_ = spawn.parent_fds.size() > 0 ? spawn.parent_fds[0] : -1;
    out_fd_[0] = spawn.parent_fds.size() > 1 ? spawn.parent_fds[1] : -1;
    out_fd_[1] = spawn.parent_fds.size() > 2 ? spawn.parent_fds[2] : -1;
    for (size_t i = 3; i < spawn.parent_fds.size(); i++)
      if (spawn.parent_fds[i] >= 0) close(spawn.parent_fds[i]);
    if (in_fd_ >= 0 && options_.input_length == 0) close_fd(&in_fd_);
  }

  void Run(double started_ms) {
    deadline_ = options_.timeout_ms > 0 ? started_ms + options_.timeout_ms : kNever;
    while (!exited_ || out_fd_[0] >= 0 || out_fd_[1] >= 0) {
      double now = now_ms();
      if (now >= deadline_) OnTimeout();
      if (now >= force_at_) ForceKill();
      if (exited_ && stop_reading_) {
        // The output is not waited for any longer: take what the pipes hold now.
        for (int i = 0; i < 2; i++) Drain(i);
        break;
      }
      Wait();
    }
    for (int i = 0; i < 2; i++) close_fd(&out_fd_[i]);
    close_fd(&in_fd_);
    if (!exited_) Reap(true);
    close_fd(&pidfd_);
  }

 private:
  // A deadline passed: the timeout fires once.
  void OnTimeout() {
    deadline_ = kNever;
    out_->timed_out = true;
    if (exited_) {
      stop_reading_ = true;  // only a descendant holds the output now
    } else {
      Terminate();
    }
  }

  // killSignal now, SIGKILL after forceKillAfter; the output is then waited for
  // only until the child has exited.
  void Terminate() {
    stop_reading_ = true;
    if (terminated_ || exited_) return;
    terminated_ = true;
    Signal(options_.kill_signal);
    if (options_.force_kill_after_ms >= 0 && options_.kill_signal != SIGKILL)
      force_at_ = now_ms() + options_.force_kill_after_ms;
  }

  void ForceKill() {
    force_at_ = kNever;
    if (!exited_) Signal(SIGKILL);
  }

  void Signal(int sig) {
    if (options_.leaf) {
      leaf_signal(*options_.leaf, sig);
    } else if (pgroup_) {
      kill(-pid_, sig);  // the group the unreaped child leads: its PID is still its own
    } else if (pidfd_ >= 0 && capabilities().pidfd_send_signal) {
      sys_pidfd_send_signal(pidfd_, sig);
    } else {
      kill(pid_, sig);  // until pidwatch reaps it, the child's PID cannot name another
    }
  }

  // The child has exited: what is left of its tree is killed and waited for (a
  // bounded wait), so that the output pipes those members held close.
  void KillLeftovers() {
    std::vector<pid_t> pids;
    if (options_.leaf) {
      if (leaf_pids(*options_.leaf, &pids) != 0 || pids.empty()) return;
      out_->leftovers = static_cast<int>(pids.size());
      leaf_signal(*options_.leaf, SIGKILL);
      leaf_wait_empty(*options_.leaf, kLeftoverWaitMs);
      return;
    }
    if (pgroup_members(pid_, 0, &pids) < 0 || pids.empty()) return;
    out_->leftovers = static_cast<int>(pids.size());
    kill(-pid_, SIGKILL);
    double until = now_ms() + kLeftoverWaitMs;
    for (unsigned pause_us = 50; now_ms() < until; pause_us = std::min(pause_us * 2, 10000u)) {
      pids.clear();
      if (pgroup_members(pid_, 0, &pids) < 0 || pids.empty()) return;
      usleep(pause_us);
    }
  }

  // One poll over the pipes (and the pidfd), bounded by the next deadline.
  void Wait() {
    struct pollfd fds[4];
    int n = 0;
    int in_at = -1, out_at[2] = {-1, -1}, pidfd_at = -1;
    if (in_fd_ >= 0) fds[in_at = n++] = {in_fd_, POLLOUT, 0};
    for (int i = 0; i < 2; i++)
      if (out_fd_[i] >= 0) fds[out_at[i] = n++] = {out_fd_[i], POLLIN, 0};
    if (!exited_ && pidfd_ >= 0) fds[pidfd_at = n++] = {pidfd_, POLLIN, 0};

    double until = std::min(deadline_, force_at_);
    // Without a pidfd the exit is learnt from waitid alone. It matters before the
    // pipes end only once the output is no longer waited for (after a kill), or
    // for a tree, whose leftovers (which may hold the pipes) die with the child.
    bool no_pidfd = !exited_ && pidfd_ < 0;
    if (no_pidfd && n == 0 && until == kNever) {
      Reap(true);  // nothing else to wait for: block in waitid on this child only
      return;
    }
    bool tree = options_.leaf || pgroup_;
    bool ask_exit = no_pidfd && (n == 0 || stop_reading_ || tree);
    double timeout_ms = until == kNever ? -1 : std::max(0.0, until - now_ms());
    if (ask_exit) {
      timeout_ms = timeout_ms < 0 ? exit_poll_ms_ : std::min(timeout_ms, exit_poll_ms_);
      exit_poll_ms_ = std::min(exit_poll_ms_ * 2, kExitPollCeilingMs);
    }
    struct timespec ts, *tsp = nullptr;
    if (timeout_ms >= 0) {
      ts.tv_sec = static_cast<time_t>(timeout_ms / 1e3);
      ts.tv_nsec = static_cast<long>(std::fmod(timeout_ms, 1e3) * 1e6);
      tsp = &ts;
    }
    int r = ppoll(fds, n, tsp, nullptr);
    if (r < 0) return;  // EINTR: go round again
    if (in_at >= 0 && fds[in_at].revents) WriteInput();
    for (int i = 0; i < 2; i++)
      if (out_at[i] >= 0 && fds[out_at[i]].revents) Read(i);
    if (pidfd_at >= 0 && fds[pidfd_at].revents) Reap(false);
    if (ask_exit) Reap(false);
  }

  void WriteInput() {
    while (in_fd_ >= 0) {
      size_t left = options_.input_length - input_done_;
      ssize_t w = write(in_fd_, options_.input + input_done_, std::min(left, kReadChunk));
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) close_fd(&in_fd_);  // EPIPE: the child stopped reading
        return;
      }
      input_done_ += static_cast<size_t>(w);
      if (input_done_ == options_.input_length) close_fd(&in_fd_);
    }
  }

  // Reads what stream i holds now, at most kReadsPerWake chunks so that a fast
  // writer cannot keep the loop from its deadlines; closes the stream at EOF.
  void Read(int i) {
    char buf[kReadChunk];
    for (int reads = 0; reads < kReadsPerWake; reads++) {
      ssize_t r = read(out_fd_[i], buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) return;
      if (r <= 0) {
        close_fd(&out_fd_[i]);
        return;
      }
      Keep(i, buf, static_cast<size_t>(r));
      if (out_fd_[i] < 0) return;
    }
  }

  // Reads what stream i holds (up to kReadsPerWake chunks, more than a pipe
  // buffers by default), without waiting for more, and closes it.
  void Drain(int i) {
    if (out_fd_[i] >= 0) Read(i);
    close_fd(&out_fd_[i]);
  }

  void Keep(int i, const char* data, size_t length) {
    std::string& kept = out_->out[i];
    double room = options_.max_buffer - static_cast<double>(kept.size());
    bool over = static_cast<double>(length) > room;
    size_t take = over ? static_cast<size_t>(std::max(0.0, room)) : length;
    kept.append(data, take);
    if (options_.all) out_->all.append(data, take);
    if (over) {
      // Past maxBuffer: the child is killed, then that stream is cut there and
      // closed. In this order (Node's spawnSync kills before closing too) the
      // child dies of killSignal: with the pipe closed first, its next write would
      // raise SIGPIPE, which it would take before the killSignal sent after.
      out_->overflowed = true;
      Terminate();
      close_fd(&out_fd_[i]);
    }
  }

  // Reaps the child if it has exited (blocking: waits until it has).
  void Reap(bool block) {
    if (exited_) return;
    int flags = block ? 0 : WNOHANG;
    int r = 1;
    if (pidfd_ >= 0 && capabilities().waitid_pidfd)
      r = sys_waitid_exit(kPidfdIdType, pidfd_, flags, &out_->exit);
    else
      r = sys_waitid_exit(P_PID, pid_, flags, &out_->exit);
    if (r == 1) return;  // still running
    if (r < 0) out_->exit = ExitInfo{};  // ECHILD: SIGCHLD ignored, the kernel reaped it
    exited_ = true;
    close_fd(&in_fd_);
    close_fd(&pidfd_);
    if (options_.leaf || pgroup_) KillLeftovers();
    if (out_->timed_out || terminated_) stop_reading_ = true;
  }

  const SyncOptions& options_;
  SyncResult* out_;
  pid_t pid_;
  int pidfd_;
  bool pgroup_;  // the tree is the process group the child leads
  int in_fd_ = -1;
  int out_fd_[2] = {-1, -1};
  size_t input_done_ = 0;
  double deadline_ = kNever;
  double force_at_ = kNever;
  double exit_poll_ms_ = 0.05;
  bool exited_ = false;
  bool terminated_ = false;
  bool stop_reading_ = false;
};

}  // namespace

void run_sync(const SpawnRequest& req, const SyncOptions& options, SpawnResult* spawn,
              SyncResult* out) {
  double started = now_ms();
  spawn_process(req, capabilities().tier(), spawn);
  if (spawn->err) return;
  out->pid = spawn->pid;
  SyncRun run(options, req, *spawn, out);
  run.Run(started);
  out->duration_ms = now_ms() - started;
}

namespace {

// spawnSync(file, argv, env, path | null, cwd | null, stdio, flags, uid, gid, leaf | null,
//           input: Uint8Array | null, timeoutMs, killSignal, forceKillAfterMs (-1: never),
//           maxBuffer, all) -> { pid, code, signal, coreDumped, durationMs, usage, timedOut,
//           overflowed, leftovers, stdout, stderr, all }. code -1 / signal 0: none; usage
//           null or 7 numbers in the order of ExitStatus.resourceUsage; all null unless
//           asked for.
Napi::Value SpawnSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnRequest req;
  if (info.Length() < 16 || !ReadSpawnRequest(info, &req) || !info[11].IsNumber() ||
      !info[12].IsNumber() || !info[13].IsNumber() || !info[14].IsNumber())
    return ThrowTypeError(env, "pidwatch native spawnSync: bad arguments");
  SyncOptions options;
  if (info[9].IsObject()) {
    TreeLeaf* leaf = nullptr;
    void* native = nullptr;
    if (napi_unwrap(env, info[9], &native) == napi_ok) leaf = static_cast<TreeLeaf*>(native);
    if (!leaf || !leaf->dir()) return ThrowTypeError(env, "pidwatch native spawnSync: bad leaf");
    options.leaf = leaf->dir();
    req.cgroup_fd = options.leaf->dir_fd;
    req.cgroup_procs = options.leaf->procs_path.c_str();
  }
  if (info[10].IsTypedArray()) {
    Napi::Uint8Array input = info[10].As<Napi::Uint8Array>();
    options.input = input.Data();
    options.input_length = input.ByteLength();
  }
  options.timeout_ms = info[11].As<Napi::Number>().DoubleValue();
  options.kill_signal = info[12].As<Napi::Number>().Int32Value();
  options.force_kill_after_ms = info[13].As<Napi::Number>().DoubleValue();
  options.max_buffer = info[14].As<Napi::Number>().DoubleValue();
  options.all = info[15].ToBoolean().Value();

  SpawnResult spawn;
  SyncResult result;
  run_sync(req, options, &spawn, &result);
  if (spawn.err) return ThrowErrno(env, spawn.err, spawn.syscall, spawn.path);

  const ExitInfo& exit = result.exit;
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", result.pid);
  o.Set("code", exit.known && exit.signal == 0 ? exit.code : -1);
  o.Set("signal", exit.known ? exit.signal : 0);
  o.Set("coreDumped", exit.core_dumped);
  o.Set("durationMs", result.duration_ms);
  if (exit.has_rusage) {
    Napi::Float64Array usage = Napi::Float64Array::New(env, kUsageValues);
    rusage_values(exit.usage, usage.Data());
    o.Set("usage", usage);
  } else {
    o.Set("usage", env.Null());
  }
  o.Set("timedOut", result.timed_out);
  o.Set("overflowed", result.overflowed);
  o.Set("leftovers", result.leftovers);
  o.Set("stdout", Napi::Buffer<char>::Copy(env, result.out[0].data(), result.out[0].size()));
  o.Set("stderr", Napi::Buffer<char>::Copy(env, result.out[1].data(), result.out[1].size()));
  if (options.all)
    o.Set("all", Napi::Buffer<char>::Copy(env, result.all.data(), result.all.size()));
  else
    o.Set("all", env.Null());
  return o;
}

// pipe(size?) -> [readFd, writeFd]: a blocking kernel pipe, both ends close-on-exec.
// With a size, the pipe's buffer is asked to grow to it (F_SETPIPE_SZ); where the
// kernel refuses (past pipe-max-size, or an unprivileged user over
// pipe-user-pages-soft) the pipe keeps its default size.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ThrowErrno(env, errno, "pipe2", "");
  if (info.Length() > 0 && info[0].IsNumber()) {
    int size = info[0].As<Napi::Number>().Int32Value();
    if (size > 0) (void)fcntl(fds[1], F_SETPIPE_SZ, size);
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, fds[0]);
  pair.Set(1u, fds[1]);
  return pair;
}

}  // namespace

void InitSync(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnSync", Napi::Function::New<SpawnSync>(env, "spawnSync"));
  exports.Set("pipe", Napi::Function::New<Pipe>(env, "pipe"));
}

}  // namespace pidwatch
