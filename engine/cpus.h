// engine/cpus.h: the CPUs this process may run on (taskset, cgroups), and
// pinning the calling thread to some of them. Start-up only.
#pragma once

#include <vector>

namespace shardring::engine {

// In ascending order; never empty (falls back to 0..online-1).
std::vector<int> allowed_cpus();
// Restricts the calling thread (and threads it starts later) to `cpus`.
bool pin_to(const std::vector<int>& cpus);

}  // namespace shardring::engine
