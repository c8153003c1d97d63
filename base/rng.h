// base/rng.h: xoshiro256** (Blackman and Vigna), the pseudo-random source
// for WebSocket mask keys, handshake nonces and backoff jitter. Stage: none;
// vocabulary for every folder (standard library only). Sans-I/O code takes
// one from its caller, so a test seeds it and gets the same bytes every run;
// the engine seeds it from getrandom(). Not for secrets. One per thread.
#ifndef SHARDRING_BASE_RNG_H_
#define SHARDRING_BASE_RNG_H_

#include <cstdint>

namespace shardring::base {

class Rng {
 public:
  // The four words of state come from `seed` through splitmix64, so any
  // seed (0 included) gives a good state.
  explicit Rng(uint64_t seed) noexcept {
    for (auto& word : s_) {
      seed += 0x9E3779B97F4A7C15u;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
      word = z ^ (z >> 31);
    }
  }
  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace shardring::base

#endif  // SHARDRING_BASE_RNG_H_
