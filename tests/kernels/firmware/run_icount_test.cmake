# ctest: the instruction counter of the Cortex-M4 benchmarks (QEMU mps2-an386 with
# -icount shift=0, CMSDK timer 0) against loops of known instruction counts: every
# measured count must be N*k within one timer tick (40) plus the counter's overhead.
#   -DSOURCE=<kernels/firmware> -DWORK=<dir>
file(REMOVE_RECURSE ${WORK})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK} -G Ninja
          -DCMAKE_TOOLCHAIN_FILE=${SOURCE}/arm-none-eabi.cmake
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "firmware configure failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK} --target icount_check.elf
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "icount_check.elf build failed:\n${err}")
endif()
execute_process(
  COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
          -icount shift=0 -semihosting-config enable=on,target=native
          -kernel ${WORK}/icount_check.elf
  TIMEOUT 60 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
string(REGEX MATCHALL "k=[0-9]+ n=[0-9]+ expected=[0-9]+ measured=[0-9]+" lines "${out}")
list(LENGTH lines count)
if(NOT count EQUAL 6)
  message(FATAL_ERROR "expected 6 loop measurements, got ${count} (qemu ${rc}): ${err}")
endif()
foreach(line IN LISTS lines)
  string(REGEX MATCH "k=([0-9]+) n=([0-9]+) expected=([0-9]+) measured=([0-9]+)" _ "${line}")
  math(EXPR expected "${CMAKE_MATCH_2} * ${CMAKE_MATCH_1}")
  if(NOT expected EQUAL CMAKE_MATCH_3)
    message(FATAL_ERROR "${line}: the app's expectation is not n*k = ${expected}")
  endif()
  math(EXPR diff "${CMAKE_MATCH_4} - ${expected}")
  if(diff LESS -64 OR diff GREATER 64)
    message(FATAL_ERROR "${line}: measured count off by ${diff} instructions (> 64)")
  endif()
endforeach()
if(NOT rc EQUAL 0 OR NOT out MATCHES "icount check: ok")
  message(FATAL_ERROR "icount_check.elf failed (${rc})")
endif()
