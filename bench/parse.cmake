# Benchmarks of parse/: envelope parsing over the real corpus.
shardring_bench(parse_envelope_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/parse_envelope_bench.cc
  LIBS shardring_parse simdjson::simdjson)
if(TARGET parse_envelope_bench)
  target_compile_definitions(parse_envelope_bench PRIVATE
    SHARDRING_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  # The "gateway" set: events drawn from `shardring gateway`'s built-in mix.
  if(TARGET shardring_gateway_server)
    target_link_libraries(parse_envelope_bench PRIVATE shardring_gateway_server)
    target_compile_definitions(parse_envelope_bench PRIVATE SHARDRING_HAVE_GATEWAY_MIX=1)
  endif()
endif()
shardring_bench(parse_inflate_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/parse_inflate_bench.cc
  LIBS shardring_parse simdjson::simdjson ZLIB::ZLIB PkgConfig::ZSTD)
if(TARGET parse_inflate_bench)
  target_compile_definitions(parse_inflate_bench PRIVATE
    SHARDRING_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()
