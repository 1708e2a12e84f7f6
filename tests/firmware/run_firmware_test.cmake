# ctest: sign offers and make a v1 -> v2 delta on the host (make_offer_fixture), build
# the agent's firmware libraries and the check apps for Cortex-M4F with them embedded (the
# build fails if an agent library uses the heap), run them under qemu-system-arm
# (mps2-an386, semihosting; the update app with -icount shift=0 for instruction counts),
# and print the footprint table from the update app's link map.
#   -DFIXTURE=<make_offer_fixture> -DSOURCE=<firmware> -DPYTHON=<python3> -DWORK=<dir>
#   [-DCOMPILER=<tinyfleet-compile> -DMODELS=<tests/fixtures/models> -DDATA=<tests/fixtures/data>]
#   (the instruction bench: digits_cnn v1 -> v2 on the target, printed as "bench |" rows)
include(${CMAKE_CURRENT_LIST_DIR}/../support/qemu_m4.cmake)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
# The instruction bench's models: digits_cnn v1 and v2 compiled for cortex-m4-256k.
set(digits)
if(COMPILER AND MODELS AND DATA)
  foreach(v digits_cnn digits_cnn_v2)
    execute_process(COMMAND ${COMPILER} ${MODELS}/${v}.onnx --class cortex-m4-256k
                            --calib ${DATA}/digits_calib.npz -o ${WORK}/${v}.tfa
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "tinyfleet-compile refused ${v} (${rc}): ${err}")
    endif()
    list(APPEND digits ${WORK}/${v}.tfa)
  endforeach()
endif()
execute_process(COMMAND ${FIXTURE} ${WORK}/fixture ${digits} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_offer_fixture failed (RFC 8032 vectors or signing)")
endif()
firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build
               TOOLCHAIN ${SOURCE}/../kernels/firmware/arm-none-eabi.cmake
               DEFINES -DFIXTURE=${WORK}/fixture
               TARGETS all crypto_check_app.elf crypto_check_heap_mutant.elf agent_update_app.elf
                       mqtt_uart_app.elf tinyfleet_kernels_m4)
string(REGEX MATCH "no heap:[^\n]*" no_heap "${FIRMWARE_BUILD_OUT}")
message("${no_heap}")

qemu_m4(${WORK}/build/crypto_check_app.elf out rc)
message("${out}")
file(WRITE ${WORK}/qemu_out.txt "${out}")
# The agent applying the host's v1 -> v2 delta with the kernels runtime.
qemu_m4(${WORK}/build/agent_update_app.elf update_out update_rc ICOUNT)
message("${update_out}")
file(APPEND ${WORK}/qemu_out.txt "${update_out}")
if(NOT update_rc EQUAL 0 OR NOT update_out MATCHES "agent update: ok \\([0-9]+ cases\\)"
   OR update_out MATCHES "FAIL")
  message(FATAL_ERROR "the agent did not apply the delta on the Cortex-M4 (qemu ${update_rc}): "
                      "${update_out_ERR}")
endif()
if(digits AND NOT update_out MATCHES "bench \\| one inference")
  message(FATAL_ERROR "the digits_cnn bench printed no table")
endif()
if(rc EQUAL 99)
  message(FATAL_ERROR "the agent allocated from the heap after start-up")
endif()
if(NOT rc EQUAL 0 OR NOT out MATCHES "crypto check: ok \\([0-9]+ cases\\)" OR out MATCHES "FAIL")
  message(FATAL_ERROR "firmware crypto check failed on the Cortex-M4 (qemu ${rc}): ${out_ERR}")
endif()
# The same app with one allocation after start-up: the heap trap must fire, or the run
# above proves nothing about the heap.
qemu_m4(${WORK}/build/crypto_check_heap_mutant.elf mutant_out rc)
if(NOT rc EQUAL 99)
  message(FATAL_ERROR "the heap trap did not fire on an allocation after start-up (qemu ${rc})")
endif()
message("heap trap: fires on an allocation after start-up (exit 99)")
execute_process(
  COMMAND ${PYTHON} ${SOURCE}/footprint.py --map ${WORK}/build/agent_update_app.map
          --map ${WORK}/build/crypto_check_app.map --map ${WORK}/build/mqtt_uart_app.map
          --kernels ${WORK}/build/kernels/libtinyfleet_kernels_m4.a --app-output ${WORK}/qemu_out.txt
  RESULT_VARIABLE rc OUTPUT_VARIABLE table ERROR_VARIABLE table_err)
message("${table}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "footprint table failed: ${table_err}")
endif()
