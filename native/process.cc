#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "cgroup.h"
#include "probe.h"
#include "reaper.h"

namespace pidwatch {
namespace {

// A watched non-child that became a zombie: its parent has not reaped it, so
// PIDFD_INFO_EXIT is not published yet. We wait for the reap with a backoff
// from 1 ms, doubling to 100 ms; after kZombieProcAfterMs the zombie's status
// is read from /proc; after kZombieWaitMs we give up on the status (code and
// signal null).
constexpr unsigned kZombieProcAfterMs = 100;
constexpr unsigned kZombieWaitMs = 2000;
constexpr unsigned kMaxDelayMs = 100;

void delete_timer(uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); }

}  // namespace

ProcessHandle* ProcessHandle::Find(AddonData* data, double key) {
  size_t slot = SlotOf(key);
  if (slot >= data->handles.size()) return nullptr;
  ProcessHandle* handle = data->handles[slot];
  return handle && handle->key_ == key ? handle : nullptr;
}

ProcessHandle::~ProcessHandle() {
  if (!done_) Release();
  StopHandles();
}

int ProcessHandle::Start(AddonData* data, pid_t pid, int pidfd, bool is_child,
                         uint64_t started_ns, double key) {
  size_t slot = SlotOf(key);
  if (slot >= data->handles.size()) data->handles.resize(slot + 1 + slot / 2, nullptr);
  // JS frees a slot only after its handle is done (its row delivered, or close()
  // answered true), so a slot in use means a key JS did not reserve.
  if (data->handles[slot]) return -EEXIST;
  if (pidfd >= 0) {
    // First, since it can fail (EEXIST: that fd number is still on the exit queue,
    // as when someone closed a pidfd of ours behind our back; ENOMEM): the caller
    // then ends the process and reports the error.
    if (int err = data->exits.Add(pidfd, this)) return err;
    armed_ = true;
  }
  data_ = data;
  pid_ = pid;
  started_ns_ = started_ns;
  pidfd_ = pidfd;
  is_child_ = is_child;
  key_ = key;
  done_ = false;
  data->handles[slot] = this;
  LinkLive();
  if (pidfd_ < 0) {
    on_sigchld_ = true;
    data_->sigchld.Add(this);
    data_->sigchld.AddRef();
  }
  ApplyRef();
  return 0;
}

void ProcessHandle::OnReadable() {
  armed_ = false;  // EPOLLONESHOT: the kernel reports this pidfd no more
  OnExitReady();
}

void ProcessHandle::OnTimer(uv_timer_t* handle) {
  ProcessHandle* self = static_cast<ProcessHandle*>(handle->data);
  ExitQueue& exits = self->data_->exits;
  ExitQueue::Busy busy(&exits);
  self->OnExitReady();
  exits.Flush();
}

void ProcessHandle::OnExitReady() {
  if (done_) return;
  const Capabilities& caps = capabilities();
  ExitInfo info;
  if (is_child_) {
    int r = TryReap(&info) ? 0 : 1;
    if (r == 1) return Backoff(next_delay_ms_);  // spurious readiness (ptrace): retry later
    return Finish(info);
  }
  if (caps.pidfd_info_exit && sys_pidfd_exit_info(pidfd_, &info) == 0) return Finish(info);
  // Not reaped by its parent yet: a zombie. Its parent usually reaps it within
  // milliseconds, and the kernel's answer is then the exact one. Past a short
  // wait, the zombie's own wait status in /proc serves (the PID cannot have
  // been reused while the kernel still withholds the exit info).
  ExitInfo zombie;
  if ((!caps.pidfd_info_exit || waited_ms_ >= kZombieProcAfterMs) &&
      read_zombie_status(pid_, &zombie)) {
    if (caps.pidfd_info_exit && sys_pidfd_exit_info(pidfd_, &info) == 0) return Finish(info);
    return Finish(zombie);
  }
  if (!caps.pidfd_info_exit || waited_ms_ >= kZombieWaitMs) return Finish(ExitInfo{});
  Backoff(next_delay_ms_);
}

bool ProcessHandle::TryReap(ExitInfo* info) {
  const Capabilities& caps = capabilities();
  if (group_leader_ && !EndGroup()) return false;
  int r = caps.waitid_pidfd && pidfd_ >= 0
              ? sys_waitid_exit(kPidfdIdType, pidfd_, WNOHANG, info)
              : sys_waitid_exit(P_PID, pid_, WNOHANG, info);
  if (r == 1) return false;
  if (r < 0) *info = ExitInfo{};  // ECHILD: another reaper took the status
  // Gone from here on, though Finish may come later: a SIGCHLD batch reaps every
  // exited child before it reports the first, and a kill() from that report
  // must not reach a reaped child's PID, which the kernel may have handed on.
  reaped_ = true;
  return true;
}

// A group leader's tree ends with it: once it has exited, and while its zombie
// still holds the group ID, the members left are counted and killed. Returns
// false while the leader is still running.
bool ProcessHandle::EndGroup() {
  const Capabilities& caps = capabilities();
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = caps.waitid_pidfd && pidfd_ >= 0
              ? waitid(static_cast<idtype_t>(kPidfdIdType), pidfd_, &si,
                       WEXITED | WNOHANG | WNOWAIT)
              : waitid(P_PID, pid_, &si, WEXITED | WNOHANG | WNOWAIT);
  if (r == 0 && si.si_pid == 0) return false;
  group_leader_ = false;
  if (r != 0) return true;  // reaped elsewhere: the group ID is no longer ours to use
  // Its descendants got PIDs handed out after the leader's: only those are
  // looked at, since reading the stat of every process on the machine at each
  // exit would cost more than the spawn. The kill reaches every member anyway.
  std::vector<pid_t> members;
  pgroup_members(pid_, pid_, &members, pid_);
  group_leftovers_ = static_cast<int>(members.size());
  kill(-pid_, SIGKILL);
  return true;
}

// 0, or -errno (-ESRCH once the leader has been reaped): signals the process
// group the child leads while its ID is still the child's.
int ProcessHandle::KillGroup(int sig) {
  if (done_ || !is_child_) return -ESRCH;
  return kill(-pid_, sig) == 0 ? 0 : -errno;
}

// Tries again after delay_ms: the pidfd, reported once (EPOLLONESHOT), is
// readable but the exit cannot be learnt yet.
void ProcessHandle::Backoff(unsigned delay_ms) {
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(data_->loop, timer_);
    timer_->data = this;
  }
  waited_ms_ += delay_ms;
  next_delay_ms_ = std::min(delay_ms * 2, kMaxDelayMs);
  uv_timer_start(timer_, OnTimer, delay_ms, 0);
  ApplyRef();
}

void ProcessHandle::StopHandles() {
  if (timer_) uv_close(reinterpret_cast<uv_handle_t*>(timer_), delete_timer);
  timer_ = nullptr;
  // Once reported (EPOLLONESHOT) the kernel never reports it again, and the
  // close takes it off the epoll set; one not reported yet was removed first.
  if (pidfd_ >= 0) {
    if (data_) data_->exits.Forget(pidfd_, this);
    close(pidfd_);
  }
  pidfd_ = -1;
}

void ProcessHandle::Finish(const ExitInfo& info) {
  if (done_) return;
  double duration_ms = static_cast<double>(uv_hrtime() - started_ns_) / 1e6;
  AddonData* data = data_;
  Release();
  if (data) {
    data->exits.Record(static_cast<double>(SlotOf(key_)), info, duration_ms, group_leftovers_);
    Retire();
  }
}

// Off the table, so no key reaches it any more; deleted by the exit queue once
// no native frame can still hold it.
void ProcessHandle::Retire() {
  size_t slot = SlotOf(key_);
  if (slot < data_->handles.size() && data_->handles[slot] == this) data_->handles[slot] = nullptr;
  data_->exits.Retire(this);
}

void ProcessHandle::HoldFds(const std::vector<int>& fds) {
  struct stat st;
  for (int fd : fds) {
    if (fd >= 0 && fstat(fd, &st) == 0) unclaimed_.push_back({fd, st.st_dev, st.st_ino});
  }
}

// Closes the pipe ends JS never took. Only while the fd is still the same pipe:
// one that a stream did wrap was closed with the stream (Node closes its handles
// before the environment's cleanup hooks run), and its number may be reused.
void ProcessHandle::CloseUnclaimedFds() {
  struct stat st;
  for (const HeldFd& held : unclaimed_) {
    if (fstat(held.fd, &st) == 0 && st.st_dev == held.dev && st.st_ino == held.ino)
      close(held.fd);
  }
  unclaimed_.clear();
}

// Stops watching: off the SIGCHLD watcher, handles closed, pidfd released.
void ProcessHandle::Release() {
  done_ = true;
  CloseUnclaimedFds();
  if (!data_) return;
  if (on_sigchld_) {
    if (refed_) data_->sigchld.RemoveRef();
    data_->sigchld.Remove(this);
    on_sigchld_ = false;
  }
  if (armed_) data_->exits.Remove(pidfd_);
  armed_ = false;
  ApplyRef();
  StopHandles();
  UnlinkLive();
}

void ProcessHandle::LinkLive() {
  live_prev_ = nullptr;
  live_next_ = data_->live;
  if (live_next_) live_next_->live_prev_ = this;
  data_->live = this;
  linked_ = true;
}

void ProcessHandle::UnlinkLive() {
  if (!linked_) return;
  if (live_prev_) live_prev_->live_next_ = live_next_;
  else data_->live = live_next_;
  if (live_next_) live_next_->live_prev_ = live_prev_;
  live_prev_ = live_next_ = nullptr;
  linked_ = false;
}

void ProcessHandle::ApplyRef() {
  bool hold = refed_ && !done_ && pidfd_ >= 0;
  if (hold != holds_ref_) {
    hold ? data_->exits.AddRef() : data_->exits.RemoveRef();
    holds_ref_ = hold;
  }
  if (timer_) refed_ ? uv_ref(reinterpret_cast<uv_handle_t*>(timer_))
                     : uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

void ProcessHandle::SetRef(bool want) {
  if (done_ || want == refed_) return;
  refed_ = want;
  if (on_sigchld_) want ? data_->sigchld.AddRef() : data_->sigchld.RemoveRef();
  ApplyRef();
}

// Returns 0 when sent, or -errno; -ESRCH once the process has been reaped or
// the watch closed, without signalling anything.
int ProcessHandle::Kill(int sig) {
  if (done_ || reaped_) return -ESRCH;
  const Capabilities& caps = capabilities();
  if (pidfd_ >= 0 && caps.pidfd_send_signal) return sys_pidfd_send_signal(pidfd_, sig);
  // Only pidwatch reaps its children, so an unreaped child's PID is still its own.
  if (is_child_) return kill(pid_, sig) == 0 ? 0 : -errno;
  // A pidfd without pidfd_send_signal: signal by PID only while it has not exited.
  struct pollfd pfd = {pidfd_, POLLIN, 0};
  if (pidfd_ < 0 || poll(&pfd, 1, 0) != 0) return -ESRCH;
  return kill(pid_, sig) == 0 ? 0 : -errno;
}

bool ProcessHandle::Close() {
  if (done_) return false;
  Release();
  if (data_) Retire();
  return true;
}

void ProcessHandle::Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*)) {
  if (timer_) {
    timer_->data = closure;
    ++*pending;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), on_closed);
  }
  timer_ = nullptr;
  CloseUnclaimedFds();
  if (armed_ && data_) data_->exits.Remove(pidfd_);
  if (pidfd_ >= 0 && data_) data_->exits.Forget(pidfd_, this);
  // A child still running goes on without us: the process-wide reaper takes it
  // (and its pidfd), so that it does not stay a zombie once it exits.
  if (is_child_ && !reaped_) abandon_child(pid_, pidfd_);
  else if (pidfd_ >= 0) close(pidfd_);
  pidfd_ = -1;
  done_ = true;
  on_sigchld_ = false;
  armed_ = false;
  holds_ref_ = false;
  live_prev_ = live_next_ = nullptr;
  linked_ = false;
  data_ = nullptr;
}

// ---- what JS asks of a handle, by key ----

namespace {

// The handle the first argument names; nullptr once it is done (or for a key
// that names none), which each function answers as for a process gone.
ProcessHandle* HandleOf(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) return nullptr;
  return ProcessHandle::Find(info.Env().GetInstanceData<AddonData>(),
                             info[0].As<Napi::Number>().DoubleValue());
}

int SignalArg(const Napi::CallbackInfo& info) {
  return info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
}

// handleKill(key, signal) -> 0 when sent, or -errno (-ESRCH once reaped or closed).
Napi::Value HandleKill(const Napi::CallbackInfo& info) {
  ProcessHandle* handle = HandleOf(info);
  return Napi::Number::New(info.Env(), handle ? handle->Kill(SignalArg(info)) : -ESRCH);
}

// handleKillGroup(key, signal) -> as handleKill, for the group the child leads.
Napi::Value HandleKillGroup(const Napi::CallbackInfo& info) {
  ProcessHandle* handle = HandleOf(info);
  return Napi::Number::New(info.Env(), handle ? handle->KillGroup(SignalArg(info)) : -ESRCH);
}

// handleSetRef(key, ref): whether the running process keeps the loop alive.
Napi::Value HandleSetRef(const Napi::CallbackInfo& info) {
  ProcessHandle* handle = HandleOf(info);
  if (handle && info.Length() > 1) handle->SetRef(info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

// handleClose(key) -> true when the process was still watched (no exit row will
// come), false when its exit has already been recorded.
Napi::Value HandleClose(const Napi::CallbackInfo& info) {
  ProcessHandle* handle = HandleOf(info);
  return Napi::Boolean::New(info.Env(), handle && handle->Close());
}

// handleClaimFds(key): the parent's pipe ends are in streams now; the handle no
// longer closes them.
Napi::Value HandleClaimFds(const Napi::CallbackInfo& info) {
  if (ProcessHandle* handle = HandleOf(info)) handle->ClaimFds();
  return info.Env().Undefined();
}

// handlePidfd(key) -> the pidfd while watching, else -1.
Napi::Value HandlePidfd(const Napi::CallbackInfo& info) {
  ProcessHandle* handle = HandleOf(info);
  return Napi::Number::New(info.Env(), handle ? handle->pidfd() : -1);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("handleKill", Napi::Function::New<HandleKill>(env, "handleKill"));
  exports.Set("handleKillGroup", Napi::Function::New<HandleKillGroup>(env, "handleKillGroup"));
  exports.Set("handleSetRef", Napi::Function::New<HandleSetRef>(env, "handleSetRef"));
  exports.Set("handleClose", Napi::Function::New<HandleClose>(env, "handleClose"));
  exports.Set("handleClaimFds", Napi::Function::New<HandleClaimFds>(env, "handleClaimFds"));
  exports.Set("handlePidfd", Napi::Function::New<HandlePidfd>(env, "handlePidfd"));
}

// ---- sigchld mode ----

bool SigchldWatcher::Ensure(uv_loop_t* loop, ExitQueue* exits) {
  if (handle_) return true;
  exits_ = exits;
  handle_ = new uv_signal_t;
  if (uv_signal_init(loop, handle_) != 0) {
    delete handle_;
    handle_ = nullptr;
    return false;
  }
  handle_->data = this;
  uv_signal_start(handle_, OnSignal, SIGCHLD);
  uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  ignored_check_ = new uv_timer_t;
  uv_timer_init(loop, ignored_check_);
  ignored_check_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(ignored_check_));
  return true;
}

void SigchldWatcher::Add(ProcessHandle* child) {
  if (children_.empty() && ignored_check_)
    uv_timer_start(ignored_check_, OnIgnoredCheck, kIgnoredCheckMs, kIgnoredCheckMs);
  children_[child->pid()] = child;
}

void SigchldWatcher::Remove(ProcessHandle* child) {
  auto it = children_.find(child->pid());
  if (it != children_.end() && it->second == child) children_.erase(it);
  if (children_.empty() && ignored_check_) uv_timer_stop(ignored_check_);
}

// Native code may set SIGCHLD to SIG_IGN (or SA_NOCLDWAIT) after the watcher
// started: the kernel then reaps the children itself and sends no signal. While
// children run, a check every kIgnoredCheckMs notices that disposition and
// collects them (waitid answers ECHILD: code and signal null), so nothing hangs.
void SigchldWatcher::OnIgnoredCheck(uv_timer_t* timer) {
  struct sigaction current;
  if (sigaction(SIGCHLD, nullptr, &current) != 0) return;
  SigchldWatcher* self = static_cast<SigchldWatcher*>(timer->data);
  if (current.sa_handler == SIG_IGN || (current.sa_flags & SA_NOCLDWAIT)) {
    ExitQueue::Busy busy(self->exits_);
    self->ReapAll();
    self->exits_->Flush();
  }
}

void SigchldWatcher::AddRef() {
  if (refs_++ == 0 && handle_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
}

void SigchldWatcher::RemoveRef() {
  if (--refs_ == 0 && handle_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
}

void SigchldWatcher::OnSignal(uv_signal_t* handle, int) {
  SigchldWatcher* self = static_cast<SigchldWatcher*>(handle->data);
  ExitQueue::Busy busy(self->exits_);
  self->ReapExited();
  self->exits_->Flush();
}

// Asks the kernel which children have exited, without reaping (WNOWAIT), and
// reaps those that are ours: one lookup per exit, not one waitid per live child
// as child_process does. A zombie that is not ours (another library's child, not
// reaped yet) would keep answering first; then every child of ours is asked.
void SigchldWatcher::ReapExited() {
  std::vector<std::pair<ProcessHandle*, ExitInfo>> exited;
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) break;
    auto it = children_.find(si.si_pid);
    ExitInfo info;
    if (it == children_.end() && reap_if_abandoned(si.si_pid)) continue;
    if (it == children_.end() || !it->second->TryReap(&info)) return ReapAll(std::move(exited));
    exited.emplace_back(it->second, info);
    children_.erase(it);
  }
  for (auto& [child, info] : exited) child->Finish(info);
}

// Tries every child of ours, as after a SIGCHLD from a zombie not ours, or when
// SIGCHLD is ignored and the kernel reaps children itself (waitid: ECHILD).
void SigchldWatcher::ReapAll(std::vector<std::pair<ProcessHandle*, ExitInfo>> exited) {
  // Reap first, then call JS: a callback may spawn and change the set.
  for (auto& [pid, child] : children_) {
    ExitInfo info;
    if (child->TryReap(&info)) exited.emplace_back(child, info);
  }
  for (auto& [child, info] : exited) child->Finish(info);
}

}  // namespace pidwatch
