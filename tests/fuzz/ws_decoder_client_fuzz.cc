// tests/fuzz/ws_decoder_client_fuzz.cc: ws::Decoder in the client role over
// hostile bytes (the body and its invariants: tests/ws/fuzz_decoder.h).
#include "tests/ws/fuzz_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return shardring::ws::fuzz::RunDecoder(shardring::ws::Role::kClient, data, size);
}
