// parse/compression.h: the gateway's transport compression (the URL's
// compress=), the one definition every layer uses, from the flags to the
// inflater. Stage: parse; pure values, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace shardring::parse {

enum class Compression : uint8_t { kNone, kZlibStream, kZstdStream };

// "zlib-stream", "zstd-stream", or "none" for kNone.
[[nodiscard]] const char* to_string(Compression c) noexcept;
// The inverse, for the URL query and flags; nullopt for anything else.
[[nodiscard]] std::optional<Compression> compression_from_name(std::string_view name) noexcept;

}  // namespace shardring::parse
