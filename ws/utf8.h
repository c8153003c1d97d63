// ws/utf8.h: UTF-8 validation (RFC 3629) for text messages and close
// reasons (RFC 6455 5.6, 8.1), whole or incremental across fragments and
// reads. Stage: ws decoder. Value types and pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace shardring::ws {

// Streaming validator. State is one byte: a code point split across feed()
// calls (fragment or read boundaries) is checked exactly as if whole.
// Rejects overlong forms, surrogates (U+D800-DFFF) and anything past
// U+10FFFF as soon as the offending byte is seen (fail fast, as RFC 6455 8.1
// asks), not only at the end of the message.
class Utf8Validator {
 public:
  // False once the bytes so far cannot be the start of valid UTF-8; it stays
  // false (sticky) until reset().
  [[nodiscard]] bool feed(std::span<const std::byte> bytes) noexcept;
  // True when everything fed is valid and no code point is left open.
  [[nodiscard]] bool complete() const noexcept { return state_ == 0; }
  [[nodiscard]] bool failed() const noexcept { return state_ == 1; }
  void reset() noexcept { state_ = 0; }

 private:
  uint8_t state_ = 0;  // 0 accept, 1 reject, others: inside a code point
};

// Whether `bytes` is complete, valid UTF-8. ASCII runs go 16 bytes a step.
[[nodiscard]] bool is_valid_utf8(std::span<const std::byte> bytes) noexcept;
[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace shardring::ws
