// A process pidwatch watches: its own child (reaped here) or any other process
// (watched, never reaped). In pidfd mode the pidfd is on the environment's exit
// queue (one epoll set) and readable means exited; in sigchld mode the child is
// on the SIGCHLD watcher. Either way the exit is recorded on the exit queue,
// which hands it to JS with the others of the same loop iteration.
#pragma once

#include <napi.h>
#include <uv.h>

#include <vector>

#include "addon.h"
#include "sys.h"

namespace pidwatch {

// Not a JS object: JS names a handle by the key it gave at spawn or watch (an
// exit id, the slot of AddonData::handles, plus a serial number in the bits
// above, so a key that outlived its process never reaches the next one in that
// slot). Wrapping a JS object per child cost a spawn some 6 us and the garbage
// collector a weak reference per child (measured on the fan-out bench).
class ProcessHandle {
 public:
  // The slot of a key: its low kSlotBits bits.
  static constexpr unsigned kSlotBits = 24;
  static size_t SlotOf(double key) {
    return static_cast<size_t>(static_cast<uint64_t>(key) & ((uint64_t{1} << kSlotBits) - 1));
  }
  // The handle a key names while it watches, else nullptr.
  static ProcessHandle* Find(AddonData* data, double key);

  ~ProcessHandle();

  // Begins watching. pidfd may be -1 (sigchld mode, children only). started_ns
  // (uv_hrtime) is when the process was started or the watch began; key names
  // the handle for JS, and its slot is the id the exit's row carries. Returns 0,
  // or -errno when the pidfd could not be put on the exit queue (nothing is
  // watched then, and the caller deletes the handle).
  int Start(AddonData* data, pid_t pid, int pidfd, bool is_child, uint64_t started_ns,
            double key);
  // The pidfd turned readable (the exit queue calls this).
  void OnReadable();
  // sigchld mode: tries to reap without blocking; true when the child is gone.
  bool TryReap(ExitInfo* info);
  // Releases everything and records the exit on the exit queue; the caller
  // flushes the queue before returning to the loop. The handle is retired.
  void Finish(const ExitInfo& info);
  // Environment teardown: closes the handles, no JS. Each closed handle gets
  // `closure` as its data and counts in *pending until on_closed runs.
  void Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*));
  // The parent's ends of the child's pipes, held until JS has wrapped them in
  // streams (ClaimFds): if JS stops before that (a Worker terminated between the
  // native spawn and its streams), the handle closes them.
  void HoldFds(const std::vector<int>& fds);
  pid_t pid() const { return pid_; }
  // The child leads a process group that is its tree ('pgroup'): when it exits,
  // before it is reaped (so the group ID cannot be reused), what is left of the
  // group is killed and counted (in the exit's row).
  void SetGroupLeader() { group_leader_ = true; }
  ProcessHandle* next_live() const { return live_next_; }

  // What JS asks of a handle, by key (see the functions InitProcess exports).
  int Kill(int sig);
  int KillGroup(int sig);
  void SetRef(bool want);
  // Stops watching: true when the process was still watched (no exit row will
  // come). The handle is retired.
  bool Close();
  void ClaimFds() { unclaimed_.clear(); }
  int pidfd() const { return pidfd_; }

 private:
  void CloseUnclaimedFds();
  bool EndGroup();

  static void OnTimer(uv_timer_t* handle);
  void OnExitReady();
  void Backoff(unsigned delay_ms);
  void StopHandles();
  void Release();
  void ApplyRef();
  void LinkLive();
  void UnlinkLive();
  void Retire();

  AddonData* data_ = nullptr;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool is_child_ = true;
  bool done_ = true;
  bool reaped_ = false;  // waited for: its PID is no longer ours, even before Finish
  bool refed_ = true;
  bool on_sigchld_ = false;
  bool armed_ = false;      // on the exit queue's epoll set, not yet readable
  bool holds_ref_ = false;  // counted in the exit queue's refs
  bool group_leader_ = false;
  int group_leftovers_ = 0;
  uv_timer_t* timer_ = nullptr;
  unsigned waited_ms_ = 0;
  unsigned next_delay_ms_ = 1;
  uint64_t started_ns_ = 0;
  ProcessHandle* live_prev_ = nullptr;  // AddonData::live
  ProcessHandle* live_next_ = nullptr;
  bool linked_ = false;
  double key_ = 0;
  struct HeldFd {
    int fd;
    dev_t dev;
    ino_t ino;
  };
  std::vector<HeldFd> unclaimed_;
};

// Exports handleKill(key, signal), handleKillGroup(key, signal), handleSetRef(key,
// ref), handleClose(key), handleClaimFds(key) and handlePidfd(key).
void InitProcess(Napi::Env env, Napi::Object exports);

}  // namespace pidwatch
