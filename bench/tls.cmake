# bench/tls.cmake: TLS record throughput and handshake cost, in memory.
shardring_bench(tls_record_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_record_bench.cc
  LIBS shardring_tls_testing shardring_tls)
