# The installable library and what `cmake --install` puts under a prefix
# (docs/interface.md "Build layout"):
#
#   bin/shardring                     the command line (links the engine statically)
#   lib/libshardring.so.X.Y.Z         the engine, shared: soname libshardring.so.0.1
#   lib/libshardring.a                the engine, static: one archive, wolfSSL inside
#   include/shardring/...             engine/engine.h and the headers it includes
#   lib/cmake/shardring/              find_package(shardring): shardring::engine (shared),
#                                     shardring::engine_static
#   lib/pkgconfig/shardring.pc        pkg-config (--static for the archive)
#   share/man/man1/shardring.1        the manual page
#
# The folders' own static libraries (shardring_ws ... shardring_engine) stay
# what the programs and tests link; the installable ones are made from the
# same objects, so nothing is compiled twice.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Everything a bot links, in data-path order.
set(SHARDRING_LIBRARY_PARTS shardring_ws shardring_parse shardring_gateway shardring_tls
    shardring_conn shardring_engine_core shardring_engine)
# Position-independent for the shared library. Without semantic interposition
# GCC inlines and calls functions within the library as it does in a PIE; the
# linker turns the GOT loads back into direct ones in an executable, so the
# programs linking these archives lose nothing.
set_target_properties(${SHARDRING_LIBRARY_PARTS} PROPERTIES POSITION_INDEPENDENT_CODE ON)
foreach(_part IN LISTS SHARDRING_LIBRARY_PARTS)
  set_property(TARGET ${_part} APPEND PROPERTY COMPILE_OPTIONS -fno-semantic-interposition)
endforeach()

# The public headers: engine/engine.h and everything of ours it includes
# (tests/install builds a bot against exactly these), relative paths kept.
set(SHARDRING_PUBLIC_HEADERS
    engine/engine.h
    engine/session_store.h
    gateway/payloads.h
    parse/compression.h)

# What the engine needs besides itself; the same list for both libraries.
set(_deps absl::status absl::statusor absl::strings absl::inlined_vector simdjson::simdjson
    PkgConfig::URING PkgConfig::ZSTD ZLIB::ZLIB Threads::Threads m)
set(_objects)
foreach(_part IN LISTS SHARDRING_LIBRARY_PARTS)
  if(NOT _part STREQUAL "shardring_tls" OR NOT SHARDRING_WOLFSSL_STATIC)
    list(APPEND _objects $<TARGET_OBJECTS:${_part}>)
  endif()
endforeach()

if(SHARDRING_WOLFSSL_STATIC)
  # wolfSSL goes inside both libraries and out of sight: tls/'s objects and
  # the members of libwolfssl.a they need are linked into one relocatable
  # object whose wolfSSL symbols are then made local. Neither library exports
  # a wolfSSL name, so a bot may link another wolfSSL (or anything defining
  # wolfSSL's generic names, sp_*, fe_*) beside it; nothing is installed for it.
  set(_tls_prelinked ${CMAKE_BINARY_DIR}/lib/shardring_tls_wolfssl.o)
  add_custom_command(
    OUTPUT ${_tls_prelinked}
    COMMAND ${CMAKE_COMMAND} -DLINKER=${CMAKE_LINKER} -DNM=${CMAKE_NM}
            -DOBJCOPY=${CMAKE_OBJCOPY} -DARCHIVE=${SHARDRING_WOLFSSL_ARCHIVE}
            -DOUTPUT=${_tls_prelinked} "-DOBJECTS=$<JOIN:$<TARGET_OBJECTS:shardring_tls>,|>"
            -P ${CMAKE_SOURCE_DIR}/cmake/prelink_wolfssl.cmake
    DEPENDS shardring_tls $<TARGET_OBJECTS:shardring_tls> ${SHARDRING_WOLFSSL_ARCHIVE}
            ${CMAKE_SOURCE_DIR}/cmake/prelink_wolfssl.cmake
    COMMENT "Linking tls/ with wolfSSL, its symbols hidden"
    VERBATIM)
  list(APPEND _objects ${_tls_prelinked})
  set(_wolfssl_link)
else()
  # The system's shared libwolfssl: a dependency of both libraries.
  set(_wolfssl_link PkgConfig::WOLFSSL)
endif()

add_library(shardring_lib_shared SHARED ${_objects})
add_library(shardring_lib_static STATIC ${_objects})
add_library(shardring::engine ALIAS shardring_lib_shared)
add_library(shardring::engine_static ALIAS shardring_lib_static)
add_dependencies(shardring_lib_shared ${SHARDRING_LIBRARY_PARTS})
add_dependencies(shardring_lib_static ${SHARDRING_LIBRARY_PARTS})
# Before 1.0 every minor version may change the ABI (Config is a plain
# struct): the soname carries MAJOR.MINOR until then.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(_soversion ${PROJECT_VERSION_MAJOR})
endif()
set_target_properties(shardring_lib_shared PROPERTIES
  OUTPUT_NAME shardring
  EXPORT_NAME engine
  VERSION ${PROJECT_VERSION}
  SOVERSION ${_soversion})
set_target_properties(shardring_lib_static PROPERTIES
  OUTPUT_NAME shardring
  EXPORT_NAME engine_static
  ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
foreach(_lib shardring_lib_shared shardring_lib_static)
  target_include_directories(${_lib} INTERFACE
    $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/shardring>)
  target_compile_features(${_lib} INTERFACE cxx_std_20)
endforeach()
# The public headers use the standard library only: a bot of the shared
# library links nothing else. The archive brings its dependencies along.
target_link_libraries(shardring_lib_shared PRIVATE ${_deps} ${_wolfssl_link})
target_link_libraries(shardring_lib_static PRIVATE ${_deps} ${_wolfssl_link})
if(NOT SHARDRING_SANITIZE)
  # Every symbol resolved at link time (a sanitizer's come from its runtime,
  # which only the executable links).
  target_link_options(shardring_lib_shared PRIVATE -Wl,-z,defs)
endif()

install(TARGETS shardring RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS shardring_lib_shared shardring_lib_static EXPORT shardringTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(_header IN LISTS SHARDRING_PUBLIC_HEADERS)
  get_filename_component(_dir ${_header} DIRECTORY)
  install(FILES ${_header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shardring/${_dir})
endforeach()
install(FILES docs/shardring.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# find_package(shardring): the targets, and the dependencies they name.
set(_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/shardring)
if(SHARDRING_WOLFSSL_STATIC)
  set(SHARDRING_CONFIG_SYSTEM_WOLFSSL OFF)
else()
  set(SHARDRING_CONFIG_SYSTEM_WOLFSSL ON)
endif()
install(EXPORT shardringTargets NAMESPACE shardring:: DESTINATION ${_cmake_dir})
configure_package_config_file(cmake/shardringConfig.cmake.in
  ${CMAKE_BINARY_DIR}/package/shardringConfig.cmake
  INSTALL_DESTINATION ${_cmake_dir})
# Before 1.0 only the same minor version is compatible (as the soname says).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_compat SameMinorVersion)
else()
  set(_compat SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_BINARY_DIR}/package/shardringConfigVersion.cmake
  COMPATIBILITY ${_compat})
install(FILES ${CMAKE_BINARY_DIR}/package/shardringConfig.cmake
              ${CMAKE_BINARY_DIR}/package/shardringConfigVersion.cmake
        DESTINATION ${_cmake_dir})

# pkg-config: relocatable (the prefix is found from the .pc file's own place),
# so `cmake --install build --prefix P` works for any P.
file(RELATIVE_PATH SHARDRING_PC_PREFIX_FROM_PCDIR
     ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" SHARDRING_PC_PREFIX_FROM_PCDIR "${SHARDRING_PC_PREFIX_FROM_PCDIR}")
set(SHARDRING_PC_REQUIRES_PRIVATE
    "absl_status absl_statusor absl_strings absl_inlined_vector simdjson liburing libzstd zlib")
if(NOT SHARDRING_WOLFSSL_STATIC)
  string(APPEND SHARDRING_PC_REQUIRES_PRIVATE " wolfssl")
endif()
configure_file(cmake/shardring.pc.in ${CMAKE_BINARY_DIR}/package/shardring.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/shardring.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
