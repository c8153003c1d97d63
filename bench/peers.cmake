# bench/peers.cmake: peer clients for bench/peers/compare.sh that need
# building. beast_client: a plain Boost.Beast + asio + simdjson gateway client
# (one io_context thread), what a C++ developer would write without shardring.
# Built only when Boost's headers (Debian libboost-dev, 1.74: Beast is
# header-only there) and OpenSSL (libssl-dev) are found; otherwise
# compare.sh skips that client.
find_package(Boost 1.74 QUIET)
find_package(OpenSSL QUIET)
if(Boost_FOUND AND OpenSSL_FOUND AND EXISTS "${Boost_INCLUDE_DIRS}/boost/beast.hpp")
  add_executable(beast_client ${CMAKE_CURRENT_LIST_DIR}/peers/beast_client.cc)
  target_include_directories(beast_client SYSTEM PRIVATE ${Boost_INCLUDE_DIRS})
  target_link_libraries(beast_client PRIVATE simdjson::simdjson OpenSSL::SSL OpenSSL::Crypto
                        Threads::Threads)
  # Boost.Asio/Beast 1.74 under GCC 12 and C++20: deprecation noise only.
  target_compile_options(beast_client PRIVATE -Wno-deprecated-declarations)
else()
  message(STATUS "shardring: bench/peers beast_client skipped "
                 "(needs Boost >= 1.74 with Beast: libboost-dev, and OpenSSL: libssl-dev)")
endif()

# floor_client: the floor for compare.sh: one thread, io_uring multishot recv
# into a provided-buffer ring, frame headers walked and dispatches counted,
# nothing parsed; wss:// through our TLS library (tls/). Needs only what the
# engine needs anyway.
if(TARGET PkgConfig::URING)
  add_executable(floor_client ${CMAKE_CURRENT_LIST_DIR}/peers/floor_client.cc)
  target_link_libraries(floor_client PRIVATE PkgConfig::URING shardring_tls)
  target_include_directories(floor_client PRIVATE ${CMAKE_SOURCE_DIR})
else()
  message(STATUS "shardring: bench/peers floor_client skipped (needs liburing: liburing-dev)")
endif()
