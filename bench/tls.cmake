# bench/tls.cmake: TLS record throughput and handshake cost, in memory.
shardring_bench(tls_record_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_record_bench.cc
  LIBS shardring_tls_testing shardring_tls)

# The same TLS 1.3 work through each library's own API, one binary per
# library from one source (bench/tls_peer_bench.cc), side by side in
# bench/tls_compare.sh. Each is built only when its library is there:
#   tls_peer_bench_ours            the wolfSSL shardring links (shardring_wolfssl)
#   tls_peer_bench_system_wolfssl  Debian's libwolfssl.so, only when ours is
#                                  the .cache build (otherwise they are one)
#   tls_peer_bench_openssl         OpenSSL 3 (libssl-dev)
# wolfSSL's headers must match the library they are compiled against
# (wolfssl/options.h fixes the struct layouts): ours gets .cache/wolfssl/include
# from the shardring_wolfssl target only; the system one gets nothing but the
# compiler's default /usr/include, and links no shardring library.
if(NOT SHARDRING_BENCH)
  return()
endif()
set(_tls_peer_src ${CMAKE_CURRENT_LIST_DIR}/tls_peer_bench.cc
                  ${CMAKE_SOURCE_DIR}/tests/tls/test_pki.cc)

shardring_bench(tls_peer_bench_ours SOURCES ${_tls_peer_src}
  LIBS shardring_wolfssl ${CMAKE_DL_LIBS})
target_compile_definitions(tls_peer_bench_ours PRIVATE
  SHARDRING_PEER_WOLFSSL=1 SHARDRING_PEER_NAME="ours")

get_target_property(_tls_ours_type shardring_wolfssl TYPE)
if(_tls_ours_type STREQUAL "STATIC_LIBRARY")
  get_target_property(_tls_ours_inc shardring_wolfssl INTERFACE_INCLUDE_DIRECTORIES)
  pkg_check_modules(SHARDRING_SYSWOLF QUIET wolfssl)
  set(_tls_sys_ok FALSE)
  if(SHARDRING_SYSWOLF_FOUND)
    set(_tls_sys_lib "${SHARDRING_SYSWOLF_LINK_LIBRARIES}")
    set(_tls_sys_opt "${SHARDRING_SYSWOLF_INCLUDEDIR}/wolfssl/options.h")
    set(_tls_ours_opt "${_tls_ours_inc}/wolfssl/options.h")
    string(FIND "${_tls_sys_lib};${SHARDRING_SYSWOLF_INCLUDEDIR}"
           "${SHARDRING_WOLFSSL_PREFIX}" _tls_sys_is_ours)
    if(_tls_sys_is_ours EQUAL -1 AND EXISTS "${_tls_sys_opt}" AND EXISTS "${_tls_ours_opt}"
       AND _tls_sys_lib MATCHES "\\.so$")
      file(SHA256 "${_tls_sys_opt}" _tls_sys_sum)
      file(SHA256 "${_tls_ours_opt}" _tls_ours_sum)
      if(NOT _tls_sys_sum STREQUAL _tls_ours_sum)
        set(_tls_sys_ok TRUE)
      endif()
    endif()
  endif()
  if(_tls_sys_ok)
    shardring_bench(tls_peer_bench_system_wolfssl SOURCES ${_tls_peer_src}
      LIBS ${_tls_sys_lib} ${CMAKE_DL_LIBS})
    # Empty for /usr/include (the compiler's own), which is the point.
    target_include_directories(tls_peer_bench_system_wolfssl SYSTEM PRIVATE
      ${SHARDRING_SYSWOLF_INCLUDE_DIRS})
    target_compile_options(tls_peer_bench_system_wolfssl PRIVATE
      ${SHARDRING_SYSWOLF_CFLAGS_OTHER})
    target_compile_definitions(tls_peer_bench_system_wolfssl PRIVATE
      SHARDRING_PEER_WOLFSSL=1 SHARDRING_PEER_NAME="system-wolfssl")
    message(STATUS "shardring: tls_peer_bench_system_wolfssl: ${_tls_sys_lib} "
                   "(headers ${SHARDRING_SYSWOLF_INCLUDEDIR})")
  else()
    message(STATUS "shardring: tls_peer_bench_system_wolfssl skipped "
                   "(needs Debian's libwolfssl-dev, distinct from ${SHARDRING_WOLFSSL_PREFIX})")
  endif()
else()
  message(STATUS "shardring: tls_peer_bench_system_wolfssl skipped "
                 "(shardring itself links the system wolfSSL: see tls_peer_bench_ours)")
endif()

find_package(OpenSSL 3 QUIET)
if(OpenSSL_FOUND)
  shardring_bench(tls_peer_bench_openssl SOURCES ${_tls_peer_src}
    LIBS OpenSSL::SSL OpenSSL::Crypto ${CMAKE_DL_LIBS})
  target_compile_definitions(tls_peer_bench_openssl PRIVATE
    SHARDRING_PEER_OPENSSL=1 SHARDRING_PEER_NAME="openssl")
else()
  message(STATUS "shardring: tls_peer_bench_openssl skipped (needs OpenSSL 3: libssl-dev)")
endif()
