// engine/uring_options.h: what io_uring set-up a core thread got
// (UringFeatures) and which features to do without (UringFallbacks,
// Config::uring_fallbacks, --uring-fallback). No liburing here: the command
// line checks its flags with it.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shardring::engine {

struct UringFeatures {
  bool single_issuer = false;  // IORING_SETUP_SINGLE_ISSUER (6.0)
  bool defer_taskrun = false;  // IORING_SETUP_DEFER_TASKRUN (6.1)
  // IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG (5.19): where DEFER_TASKRUN is
  // not used, completions are not run by an interrupt of this thread.
  bool coop_taskrun = false;
  bool registered_fd = false;  // io_uring_register_ring_fd (5.18)
  // The wait's minimum time (IORING_FEAT_MIN_TIMEOUT, 6.12): a coalescing
  // wait (Settings::coalesce) that finds nothing in its time sleeps on
  // until the first completion instead of waking empty.
  bool min_wait = false;
  // Receive bundles (IORING_FEAT_RECVSEND_BUNDLE, 6.10): one multishot recv
  // completion carries every provided buffer the socket's data filled.
  bool recv_bundle = false;
  std::string kernel;  // uname -r
  // "single_issuer,defer_taskrun,registered_fd" (what is on), for the log.
  std::string to_string() const;
};

// Set-up features to do without even where the kernel has them: each
// fallback path runs (and is tested) on any kernel. Names as in
// UringFeatures; parse_uring_fallbacks reads "defer_taskrun,coop_taskrun"
// or "all".
struct UringFallbacks {
  bool single_issuer = false, defer_taskrun = false, coop_taskrun = false, registered_fd = false,
       min_wait = false, recv_bundle = false;
};
absl::StatusOr<UringFallbacks> parse_uring_fallbacks(std::string_view list);

}  // namespace shardring::engine
