# Benchmarks of parse/: envelope parsing over the real corpus.
shardring_bench(parse_envelope_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/parse_envelope_bench.cc
  LIBS shardring_parse simdjson::simdjson)
if(TARGET parse_envelope_bench)
  target_compile_definitions(parse_envelope_bench PRIVATE
    SHARDRING_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()
shardring_bench(parse_inflate_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/parse_inflate_bench.cc
  LIBS shardring_parse simdjson::simdjson ZLIB::ZLIB PkgConfig::ZSTD)
if(TARGET parse_inflate_bench)
  target_compile_definitions(parse_inflate_bench PRIVATE
    SHARDRING_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()
