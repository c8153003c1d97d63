# bench/ws.cmake: ws/ frame decode, encode and masking benchmarks.
shardring_bench(ws_frame_bench
  SOURCES ${CMAKE_SOURCE_DIR}/bench/ws_frame_bench.cc
  LIBS shardring_ws)
