// engine/uring_options.cc: see uring_options.h.
#include "engine/uring_options.h"

#include "engine/text.h"

namespace shardring::engine {

std::string UringFeatures::to_string() const {
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(single_issuer, "single_issuer");
  add(defer_taskrun, "defer_taskrun");
  add(coop_taskrun, "coop_taskrun");
  add(registered_fd, "registered_fd");
  add(min_wait, "min_wait");
  add(recv_bundle, "recv_bundle");
  return out.empty() ? "none" : out;
}

absl::StatusOr<UringFallbacks> parse_uring_fallbacks(std::string_view list) {
  UringFallbacks f;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name == "all") {
      f = UringFallbacks{true, true, true, true, true, true};
    } else if (name == "single_issuer") {
      f.single_issuer = true;
    } else if (name == "defer_taskrun") {
      f.defer_taskrun = true;
    } else if (name == "coop_taskrun") {
      f.coop_taskrun = true;
    } else if (name == "registered_fd") {
      f.registered_fd = true;
    } else if (name == "min_wait") {
      f.min_wait = true;
    } else if (name == "recv_bundle") {
      f.recv_bundle = true;
    } else if (!name.empty()) {
      return absl::InvalidArgumentError(
          cat("unknown io_uring feature '", name,
              "' (single_issuer, defer_taskrun, coop_taskrun, registered_fd, min_wait, "
              "recv_bundle or all)"));
    }
  }
  return f;
}

}  // namespace shardring::engine
