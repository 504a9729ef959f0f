// Output capture: the parent's ends of a child's stdio pipes read (and its input
// written) on the event loop with uv_poll, into growing buffers handed to JS once,
// when every output pipe has ended. No Node stream objects, no per-chunk JS call.
#pragma once

#include <napi.h>

namespace pidwatch {

// Adds `Capture` (typed in src/native.ts) to the exports.
void InitCapture(Napi::Env env, Napi::Object exports);

}  // namespace pidwatch
