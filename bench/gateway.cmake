# Benchmarks for gateway/ (included by bench/CMakeLists.txt).
shardring_bench(gateway_session_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gateway_session_bench.cc
  LIBS shardring_gateway)
