# Benchmarks of engine/ building blocks (included by bench/CMakeLists.txt).
shardring_bench(engine_ring_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_ring_bench.cc
  LIBS Threads::Threads)
shardring_bench(engine_timer_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_timer_bench.cc
  LIBS shardring_engine_core)
