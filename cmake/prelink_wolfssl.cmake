# cmake -P cmake/prelink_wolfssl.cmake, from cmake/package.cmake: links the
# objects OBJECTS ("|"-separated) with the members of ARCHIVE they need into
# one relocatable object OUTPUT, then makes every symbol ARCHIVE defines
# local to it. Inputs: LINKER, NM, OBJCOPY, ARCHIVE, OBJECTS, OUTPUT.
string(REPLACE "|" ";" _objects "${OBJECTS}")
execute_process(
  COMMAND ${LINKER} -r -o ${OUTPUT}.tmp ${_objects} ${ARCHIVE}
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "prelink_wolfssl: ${LINKER} -r failed (${_rc})")
endif()
execute_process(
  COMMAND ${NM} -g --defined-only --format=posix ${ARCHIVE}
  OUTPUT_FILE ${OUTPUT}.nm
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "prelink_wolfssl: ${NM} ${ARCHIVE} failed (${_rc})")
endif()
# POSIX format: "name type value size" per symbol, "archive[member]:" headers.
file(STRINGS ${OUTPUT}.nm _lines REGEX "^[^ :]+ [A-Za-z] ")
set(_names "")
foreach(_line IN LISTS _lines)
  string(REGEX REPLACE " .*$" "" _name "${_line}")
  string(APPEND _names "${_name}\n")
endforeach()
if(_names STREQUAL "")
  message(FATAL_ERROR "prelink_wolfssl: no symbols found in ${ARCHIVE}")
endif()
file(WRITE ${OUTPUT}.symbols "${_names}")
execute_process(
  COMMAND ${OBJCOPY} --localize-symbols=${OUTPUT}.symbols ${OUTPUT}.tmp ${OUTPUT}
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "prelink_wolfssl: ${OBJCOPY} failed (${_rc})")
endif()
file(REMOVE ${OUTPUT}.tmp ${OUTPUT}.nm ${OUTPUT}.symbols)
