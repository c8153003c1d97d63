# Helpers every folder uses to declare tests, benchmarks and fuzz targets.

# shardring_test(NAME SOURCES... [LIBS libs...] [LABELS labels...])
# One GoogleTest binary in build/bin/, registered with ctest.
function(shardring_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES
    LABELS "${T_LABELS}"
    ENVIRONMENT "SHARDRING_SOURCE_DIR=${CMAKE_SOURCE_DIR};SHARDRING_CORPUS_DIR=${CMAKE_SOURCE_DIR}/tests/data/corpus;SHARDRING_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()

# shardring_bench(NAME SOURCES... [LIBS libs...]): a Google Benchmark binary.
function(shardring_bench name)
  if(NOT SHARDRING_BENCH)
    return()
  endif()
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${B_SOURCES} ${B_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${B_LIBS} benchmark::benchmark)
endfunction()

# shardring_fuzz(NAME SOURCE [LIBS libs...] [SEEDS dirs...])
# NAME ends in _fuzz; its seeds live in tests/fuzz/seeds/<NAME without _fuzz>
# (scripts/test.sh finds them there for the libFuzzer runs).
# With SHARDRING_FUZZ=ON: a libFuzzer binary. Otherwise the same
# LLVMFuzzerTestOneInput linked with tests/fuzz/replay_main.cc, which replays
# the seed files (and the checked-in regressions) as a ctest test, so every
# build runs the fuzz targets' seeds.
function(shardring_fuzz name source)
  cmake_parse_arguments(F "" "" "LIBS;SEEDS" ${ARGN})
  if(SHARDRING_FUZZ)
    add_executable(${name} ${source})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${source} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.cc)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    add_test(NAME ${name}_replay COMMAND ${name} ${F_SEEDS})
    set_tests_properties(${name}_replay PROPERTIES LABELS "fuzz-replay")
  endif()
endfunction()
