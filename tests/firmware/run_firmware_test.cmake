# ctest: sign an offer on the host (make_offer_fixture), build the agent's firmware
# libraries and the check app for Cortex-M4F with it embedded (the build fails if an
# agent library uses the heap), run it under qemu-system-arm (mps2-an386, semihosting),
# and print the footprint table from the link map.
#   -DFIXTURE=<make_offer_fixture> -DSOURCE=<firmware> -DPYTHON=<python3> -DWORK=<dir>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${FIXTURE} ${WORK}/fixture RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_offer_fixture failed (RFC 8032 vectors or signing)")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/build -G Ninja
          -DCMAKE_TOOLCHAIN_FILE=${SOURCE}/../kernels/firmware/arm-none-eabi.cmake
          -DFIXTURE=${WORK}/fixture
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "firmware configure failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build --target all crypto_check_app.elf crypto_check_heap_mutant.elf
                        tinyfleet_kernels_m4
                RESULT_VARIABLE rc OUTPUT_VARIABLE build_out ERROR_VARIABLE build_err)
string(REGEX MATCH "no heap:[^\n]*" no_heap "${build_out}")
message("${no_heap}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "firmware build failed:\n${build_out}\n${build_err}")
endif()
execute_process(
  COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
          -semihosting-config enable=on,target=native -kernel ${WORK}/build/crypto_check_app.elf
  TIMEOUT 120 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
file(WRITE ${WORK}/qemu_out.txt "${out}")
if(rc EQUAL 99)
  message(FATAL_ERROR "the agent allocated from the heap after start-up")
endif()
if(NOT rc EQUAL 0 OR NOT out MATCHES "crypto check: ok \\([0-9]+ cases\\)" OR out MATCHES "FAIL")
  message(FATAL_ERROR "firmware crypto check failed on the Cortex-M4 (qemu ${rc}): ${err}")
endif()
# The same app with one allocation after start-up: the heap trap must fire, or the run
# above proves nothing about the heap.
execute_process(
  COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
          -semihosting-config enable=on,target=native
          -kernel ${WORK}/build/crypto_check_heap_mutant.elf
  TIMEOUT 120 RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 99)
  message(FATAL_ERROR "the heap trap did not fire on an allocation after start-up (qemu ${rc})")
endif()
message("heap trap: fires on an allocation after start-up (exit 99)")
execute_process(
  COMMAND ${PYTHON} ${SOURCE}/footprint.py --map ${WORK}/build/crypto_check_app.map
          --kernels ${WORK}/build/kernels/libtinyfleet_kernels_m4.a --app-output ${WORK}/qemu_out.txt
  RESULT_VARIABLE rc OUTPUT_VARIABLE table ERROR_VARIABLE table_err)
message("${table}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "footprint table failed: ${table_err}")
endif()
