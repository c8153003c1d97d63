# wolfSSL: prefer the static build with assembly that scripts/setup.sh made
# from Debian's source package; fall back to the system library, loudly.
set(_wolf_lib "${SHARDRING_WOLFSSL_PREFIX}/lib/libwolfssl.a")
if(EXISTS "${_wolf_lib}" AND NOT SHARDRING_SANITIZE MATCHES "thread")
  add_library(shardring_wolfssl STATIC IMPORTED GLOBAL)
  set_target_properties(shardring_wolfssl PROPERTIES
    IMPORTED_LOCATION "${_wolf_lib}"
    INTERFACE_INCLUDE_DIRECTORIES "${SHARDRING_WOLFSSL_PREFIX}/include"
    INTERFACE_LINK_LIBRARIES "m;Threads::Threads")
  set(SHARDRING_WOLFSSL_KIND "built with assembly (${_wolf_lib})")
  set(SHARDRING_WOLFSSL_STATIC ON)
  set(SHARDRING_WOLFSSL_ARCHIVE "${_wolf_lib}")
else()
  pkg_check_modules(WOLFSSL REQUIRED IMPORTED_TARGET wolfssl)
  add_library(shardring_wolfssl INTERFACE IMPORTED GLOBAL)
  target_link_libraries(shardring_wolfssl INTERFACE PkgConfig::WOLFSSL)
  set(SHARDRING_WOLFSSL_STATIC OFF)
  set(SHARDRING_WOLFSSL_KIND "SYSTEM libwolfssl ${WOLFSSL_VERSION} (no assembly: ~25x slower AES-GCM; run scripts/setup.sh)")
  message(WARNING "shardring: using Debian's libwolfssl without assembly; "
                  "scripts/setup.sh builds the fast one into ${SHARDRING_WOLFSSL_PREFIX}")
endif()
message(STATUS "shardring: wolfSSL ${SHARDRING_WOLFSSL_KIND}")
