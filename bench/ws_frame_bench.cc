// bench/ws_frame_bench.cc: RFC 6455 framing throughput. Decode (client role:
// unmasked, text messages UTF-8 validated; server role: masked, unmasked in
// place) and encode (client masked, server plain) of 200 B, 1 KiB and 64 KiB
// frames, against memcpy of the same bytes; masking against a byte loop.
// Messages/s is the honest unit for decode: payload bytes of in-place
// messages are only validated, never copied.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ws/decoder.h"
#include "ws/encoder.h"
#include "ws/mask.h"

namespace shardring::ws {
namespace {

constexpr MaskKey kKey = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};

// A JSON-ish ASCII payload of `n` bytes, like a gateway dispatch.
std::string Payload(size_t n) {
  static const std::string kPattern =
      "{\"t\":\"MESSAGE_CREATE\",\"s\":42,\"op\":0,\"d\":{\"content\":\"hello "
      "world\",\"channel_id\":\"1234567890123456789\"}}";
  std::string s;
  while (s.size() < n) s += kPattern;
  s.resize(n);
  return s;
}

// Enough frames of `n` bytes for about 1 MiB of wire (at least 16).
int FramesFor(size_t n) { return std::max<int>(16, (1 << 20) / (n + 14)); }

std::string Wire(Role sender, size_t n, bool text) {
  Encoder enc(sender);
  const std::string p = Payload(n);
  std::string wire;
  for (int i = 0, k = FramesFor(n); i < k; ++i) {
    const Errc e =
        text ? enc.text(wire, p, kKey) : enc.binary(wire, std::as_bytes(std::span(p)), kKey);
    if (e != Errc::kOk) std::abort();
  }
  wire.append(kPadding, ' ');
  return wire;
}

void Decode(benchmark::State& state, Role role, bool text) {
  const size_t n = static_cast<size_t>(state.range(0));
  // The peer of `role` produced the bytes.
  std::string wire = Wire(role == Role::kClient ? Role::kServer : Role::kClient, n, text);
  const size_t wire_size = wire.size() - kPadding;
  auto bytes = std::as_writable_bytes(std::span(wire.data(), wire_size));
  int64_t messages = 0;
  for (auto _ : state) {
    Decoder dec(role);
    dec.feed(bytes, kPadding);
    Message m;
    while (dec.next(m) == Errc::kOk) {
      benchmark::DoNotOptimize(m.payload.data());
      ++messages;
    }
  }
  if (messages != state.iterations() * FramesFor(n)) {
    state.SkipWithError("wrong message count");
  }
  state.SetItemsProcessed(messages);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire_size));
}

void BM_WsDecodeClientText(benchmark::State& s) { Decode(s, Role::kClient, true); }
void BM_WsDecodeClientBinary(benchmark::State& s) { Decode(s, Role::kClient, false); }
// Binary: unmasking in place toggles the payload between iterations.
void BM_WsDecodeServerBinary(benchmark::State& s) { Decode(s, Role::kServer, false); }

void Encode(benchmark::State& state, Role role) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string p = Payload(n);
  const int frames = FramesFor(n);
  Encoder enc(role);
  std::string out;
  out.reserve(static_cast<size_t>(frames) * (n + 14));
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < frames; ++i) {
      if (enc.text(out, p, kKey) != Errc::kOk) std::abort();
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * frames);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}

void BM_WsEncodeClientMasked(benchmark::State& s) { Encode(s, Role::kClient); }
void BM_WsEncodeServer(benchmark::State& s) { Encode(s, Role::kServer); }

// The floor: copying the same frames' bytes once.
void BM_MemcpySameBytes(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const int frames = FramesFor(n);
  const std::string src(static_cast<size_t>(frames) * (n + 2), 'x');
  std::string dst(src.size(), '\0');
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * frames);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(src.size()));
}

void BM_WsMask(benchmark::State& state) {
  std::vector<std::byte> buf(static_cast<size_t>(state.range(0)), std::byte{7});
  for (auto _ : state) {
    mask(buf, kKey, 1);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// What a naive framer does (kept scalar: the compiler may not widen it).
[[gnu::noinline, gnu::optimize("no-tree-vectorize")]] void MaskByteLoop(std::byte* p, size_t n,
                                                                        MaskKey key,
                                                                        size_t offset) {
  for (size_t i = 0; i < n; ++i) p[i] ^= key[(offset + i) & 3];
}

void BM_WsMaskByteLoop(benchmark::State& state) {
  std::vector<std::byte> buf(static_cast<size_t>(state.range(0)), std::byte{7});
  for (auto _ : state) {
    MaskByteLoop(buf.data(), buf.size(), kKey, 1);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

#define SIZES Arg(200)->Arg(1024)->Arg(65536)
BENCHMARK(BM_WsDecodeClientText)->SIZES;
BENCHMARK(BM_WsDecodeClientBinary)->SIZES;
BENCHMARK(BM_WsDecodeServerBinary)->SIZES;
BENCHMARK(BM_WsEncodeClientMasked)->SIZES;
BENCHMARK(BM_WsEncodeServer)->SIZES;
BENCHMARK(BM_MemcpySameBytes)->SIZES;
BENCHMARK(BM_WsMask)->SIZES;
BENCHMARK(BM_WsMaskByteLoop)->SIZES;

}  // namespace
}  // namespace shardring::ws

BENCHMARK_MAIN();
