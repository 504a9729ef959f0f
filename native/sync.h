// Blocking work for the synchronous API: spawnSync/execSync run a child to its
// end on the calling thread, with no event loop, and pipelines get plain
// blocking kernel pipes to hand to their stages.
#pragma once

#include <napi.h>

#include <string>

#include "cgroup.h"
#include "spawn.h"
#include "sys.h"

namespace pidwatch {

struct SyncOptions {
  const uint8_t* input = nullptr;  // written to the child's stdin (a pipe), then closed
  size_t input_length = 0;
  double timeout_ms = 0;  // 0: none
  int kill_signal = SIGTERM;
  double force_kill_after_ms = -1;  // -1: never
  double max_buffer = 0;            // bytes kept per stream; more kills the child
  bool all = false;                 // also keep stdout and stderr interleaved
  // `tree: true`: the child's cgroup leaf, or (null) the process group it leads
  // when the request has setpgid. Signals go to the whole tree, and what is
  // left of it when the child exits is killed.
  LeafDir* leaf = nullptr;
};

struct SyncResult {
  pid_t pid = -1;
  ExitInfo exit;
  double duration_ms = 0;
  bool timed_out = false;
  bool overflowed = false;
  int leftovers = 0;  // tree members still alive when the child exited, killed then
  std::string out[2];  // stdout, stderr
  std::string all;
};

// Runs the request to its end: spawns (any failure is in spawn->err, and then
// nothing is left behind), feeds the input, collects stdout and stderr, enforces
// the timeout and maxBuffer, and reaps the child by its pidfd or its PID only.
void run_sync(const SpawnRequest& req, const SyncOptions& options, SpawnResult* spawn,
              SyncResult* out);

// Adds spawnSync and pipe to the module's exports.
void InitSync(Napi::Env env, Napi::Object exports);

}  // namespace pidwatch
