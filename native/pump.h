// `pidwatch run`'s job pump: the runner's common case (each job's output printed
// whole when it ends, no per-job timeout, halt, retries or slot in the command)
// run off the event loop, at a job runner's cost rather than a JS promise chain's.
//
// One thread per concurrency slot does for a job what GNU parallel's main loop
// does: starts it (in a cgroup leaf of its own when jobs are trees), waits for its
// exit on its pidfd, kills what is left of its tree, and prints its output whole,
// stdout then stderr, from two memory files (GNU parallel buffers in files too: a
// file needs no reader while the job runs, and no EOF). JS gets a row per job, in
// batches: one call per loop wake-up, whatever the number of jobs that ended.
//
// A thread per slot, not one thread for all: after execve the kernel runs the
// vfork parent again only once the new child sleeps or ends (see spawner.h), so a
// single thread would start the jobs of a run one after the other.
#pragma once

#include <napi.h>

namespace pidwatch {

void InitPump(Napi::Env env, Napi::Object exports);

}  // namespace pidwatch
