// bench/parse_inflate_bench.cc: transport compression on the receive path.
// One stream of gateway events (the corpus's 128 B .. 4 KiB dispatches,
// cycled with rising seqs: the ~1 KiB traffic of a bot) compressed once the
// way `shardring gateway` does (zlib level 6 with a sync flush per payload;
// zstd level 3, 128 KiB window, a flush per payload); then per iteration:
//   BM_Inflate         our Inflater over the whole stream (a new stream each
//                      iteration), into the shared padded buffer;
//   BM_InflateLibrary  the library's own streaming call over the same
//                      messages into a fixed buffer: the floor;
//   BM_InflateParse    Inflater + Parser::parse (full check): what one event
//                      costs the engine with compression...
//   BM_Parse           ...and the same events uncompressed.
// Set "large": the corpus's 2.8 MB GUILD_CREATE alone.
// Bytes/s counts inflated bytes; items/s counts events.
#include <benchmark/benchmark.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

#include "parse/envelope.h"
#include "parse/inflate.h"
#include "tests/parse/corpus.h"

namespace {

using namespace shardring::parse;
namespace pt = shardring::parse::testing;

struct Stream {
  std::vector<std::string> payloads;  // each followed by padding in `padded`
  std::vector<std::string> padded;
  std::vector<std::string> zlib, zstd;  // compressed messages, in order
  size_t bytes = 0;
};

Stream make_stream(const std::vector<std::string>& payloads) {
  Stream s;
  Deflater z(Compression::kZlibStream);
  Deflater zs(Compression::kZstdStream, 3, 17);
  for (const auto& p : payloads) {
    s.payloads.push_back(p);
    s.padded.push_back(p + std::string(kPadding, ' '));
    std::string a, b;
    if (!z.compress(p, a) || !zs.compress(p, b)) std::abort();
    s.zlib.push_back(std::move(a));
    s.zstd.push_back(std::move(b));
    s.bytes += p.size();
  }
  return s;
}

const std::vector<std::string>& messages(const Stream& s, Compression c) {
  return c == Compression::kZlibStream ? s.zlib : s.zstd;
}

void finish(benchmark::State& state, const Stream& s) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(s.bytes));
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(s.payloads.size()));
}

size_t compressed_bytes(const Stream& s, Compression c) {
  size_t n = 0;
  for (const auto& m : messages(s, c)) n += m.size();
  return n;
}

void BM_Inflate(benchmark::State& state, const Stream* s, Compression c, bool parse) {
  InflateBuffer out;
  Parser parser;
  Envelope env;
  for (auto _ : state) {
    Inflater inf(c);
    for (const auto& m : messages(*s, c)) {
      std::string_view payload;
      if (inf.inflate(std::as_bytes(std::span(m.data(), m.size())), out, &payload) !=
          InflateErrc::kOk) {
        state.SkipWithError("inflate failed");
        return;
      }
      if (parse && parser.parse(payload, env) != Errc::kOk) {
        state.SkipWithError("parse failed");
        return;
      }
      benchmark::DoNotOptimize(payload.data());
    }
  }
  finish(state, *s);
  state.counters["ratio"] =
      static_cast<double>(s->bytes) / static_cast<double>(compressed_bytes(*s, c));
}

void BM_InflateLibrary(benchmark::State& state, const Stream* s, Compression c) {
  std::vector<char> out(16 << 20);
  for (auto _ : state) {
    if (c == Compression::kZlibStream) {
      z_stream zs{};
      inflateInit(&zs);
      for (const auto& m : s->zlib) {
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(m.data()));
        zs.avail_in = static_cast<uInt>(m.size());
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        if (inflate(&zs, Z_SYNC_FLUSH) != Z_OK) {
          state.SkipWithError("inflate failed");
          return;
        }
        benchmark::DoNotOptimize(out.data());
      }
      inflateEnd(&zs);
    } else {
      ZSTD_DCtx* d = ZSTD_createDCtx();
      for (const auto& m : s->zstd) {
        ZSTD_inBuffer in{m.data(), m.size(), 0};
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        while (in.pos < in.size) {
          if (ZSTD_isError(ZSTD_decompressStream(d, &ob, &in))) {
            state.SkipWithError("zstd failed");
            return;
          }
        }
        benchmark::DoNotOptimize(out.data());
      }
      ZSTD_freeDCtx(d);
    }
  }
  finish(state, *s);
}

void BM_Parse(benchmark::State& state, const Stream* s) {
  Parser parser;
  Envelope env;
  for (auto _ : state) {
    for (size_t i = 0; i < s->padded.size(); ++i) {
      if (parser.parse(std::string_view(s->padded[i].data(), s->payloads[i].size()), env) !=
          Errc::kOk) {
        state.SkipWithError("parse failed");
        return;
      }
      benchmark::DoNotOptimize(env.d.data());
    }
  }
  finish(state, *s);
}

}  // namespace

int main(int argc, char** argv) {
  static std::vector<pt::CorpusFile> corpus = pt::load_corpus();
  std::vector<std::string> mix_frames, large;
  uint64_t seq = 1;
  for (int round = 0; round < 20; ++round) {
    for (const auto& f : corpus) {
      if (f.kind == pt::FileKind::kRest) continue;
      const bool dispatch =
          f.kind == pt::FileKind::kBareD || f.name.find("_op0_") != std::string::npos;
      std::string frame = f.kind == pt::FileKind::kBareD
                              ? pt::wrap_dispatch(pt::trim(f.bytes), f.event, seq++, "tsod")
                              : f.bytes;
      if (dispatch && frame.size() >= 128 && frame.size() <= 4096) mix_frames.push_back(frame);
      if (round == 0 && frame.size() > (1 << 20)) large.push_back(frame);
    }
  }
  static Stream mix = make_stream(mix_frames);
  static Stream big = make_stream(large);
  for (auto [name, s] : {std::pair{"mix", &mix}, std::pair{"large", &big}}) {
    if (s->payloads.empty()) continue;
    for (auto [cname, c] : {std::pair{"zlib", Compression::kZlibStream},
                            std::pair{"zstd", Compression::kZstdStream}}) {
      const std::string suffix = std::string("/") + cname + "/" + name;
      benchmark::RegisterBenchmark(("BM_Inflate" + suffix).c_str(), BM_Inflate, s, c, false);
      benchmark::RegisterBenchmark(("BM_InflateLibrary" + suffix).c_str(), BM_InflateLibrary, s, c);
      benchmark::RegisterBenchmark(("BM_InflateParse" + suffix).c_str(), BM_Inflate, s, c, true);
    }
    benchmark::RegisterBenchmark((std::string("BM_Parse/none/") + name).c_str(), BM_Parse, s);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
