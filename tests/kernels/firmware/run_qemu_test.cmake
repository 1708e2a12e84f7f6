# ctest: make the fixture with the host runtime, build the Cortex-M4F firmware with it
# embedded, run it under qemu-system-arm (mps2-an386, semihosting), and compare; then
# run the on-target twin check of optimized against reference kernels (and see it fail
# on a deliberately wrong variant), and bench_cortex_m4 on the MLPerf Tiny layer shapes
# and, with COMPILER and KWS, on the whole MLPerf Tiny KWS reference model.
#   -DFIXTURE=<make_firmware_fixture> -DSOURCE=<kernels/firmware> -DWORK=<dir>
#   [-DCOMPILER=<tinyfleet-compile> -DKWS=<kws_ref_model.tflite>]
include(${CMAKE_CURRENT_LIST_DIR}/../../support/qemu_m4.cmake)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${FIXTURE} ${WORK} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fixture failed")
endif()
firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build TOOLCHAIN ${SOURCE}/arm-none-eabi.cmake
               DEFINES -DARTIFACT=${WORK}/artifact.tfa -DINPUT=${WORK}/input.bin)
message("${FIRMWARE_BUILD_OUT}")

qemu_m4(${WORK}/build/qemu_app.elf qemu_out rc TIMEOUT 60)
file(READ ${WORK}/expected.txt expected)
string(STRIP "${expected}" expected)
string(STRIP "${qemu_out}" qemu_out)
message("host:  ${expected}\nqemu:  ${qemu_out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "qemu exited with ${rc}: ${qemu_out_ERR}")
endif()
if(NOT qemu_out STREQUAL expected)
  message(FATAL_ERROR "Cortex-M4 output differs from the host's")
endif()

# The optimized kernels as built for the Cortex-M4 (SMLAD) against the reference ones,
# on the target.
qemu_m4(${WORK}/build/selftest_app.elf self_out rc)
string(STRIP "${self_out}" self_out)
message("qemu:  ${self_out}")
if(NOT rc EQUAL 0 OR NOT self_out MATCHES "selftest: [0-9]+ cases, 0 mismatches")
  message(FATAL_ERROR "optimized and reference kernels differ on the Cortex-M4 (${rc}): "
                      "${self_out} ${self_out_ERR}")
endif()

# The same check with each deliberately wrong DSP path (kernels/firmware/CMakeLists.txt):
# each must report mismatches, or the check above proves nothing for that path.
foreach(mutant depthwise_dsp conv2d_dsp fully_connected_dsp requant_dsp)
  qemu_m4(${WORK}/build/selftest_mutant_${mutant}.elf mutant_out rc)
  string(STRIP "${mutant_out}" mutant_out)
  message("qemu (wrong ${mutant}):  ${mutant_out}")
  if(rc EQUAL 0 OR NOT mutant_out MATCHES "selftest: [0-9]+ cases, [1-9][0-9]* mismatches")
    message(FATAL_ERROR "the self-test did not catch the wrong ${mutant} variant (${rc})")
  endif()
endforeach()

# bench_cortex_m4 (built above) on the layer shapes only: it runs, and the optimized
# kernels give the reference bytes on every MLPerf Tiny layer (column "twins").
qemu_m4(${WORK}/build/bench_cortex_m4.elf bench_out rc ICOUNT)
message("${bench_out}")
if(NOT rc EQUAL 0 OR bench_out MATCHES "DIFFER" OR NOT bench_out MATCHES "kws fc 64 ->12")
  message(FATAL_ERROR "bench_cortex_m4 failed (${rc}): ${bench_out_ERR}")
endif()

# The whole MLPerf Tiny KWS reference (int8 .tflite, compiled for cortex-m4-256k) on the
# M4: it loads and runs, and one inference takes fewer instructions than TFLite Micro
# with CMSIS-NN's 21.8 M cycles (issue 23's baseline; docs/kernels.md has the figures).
if(COMPILER AND KWS)
  file(MAKE_DIRECTORY ${WORK}/models)
  execute_process(COMMAND ${COMPILER} ${KWS} --class cortex-m4-256k -o ${WORK}/models/kws_ref.tfa
                  RESULT_VARIABLE rc OUTPUT_VARIABLE report ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT report MATCHES "MACs per inference +([0-9]+)")
    message(FATAL_ERROR "tinyfleet-compile refused the KWS reference (${rc}): ${report}${err}")
  endif()
  set(kws_macs ${CMAKE_MATCH_1})
  execute_process(
    COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
            -icount shift=0 -semihosting-config enable=on,target=native
            -kernel ${WORK}/build/bench_cortex_m4.elf -append "kws_ref=${kws_macs}"
    WORKING_DIRECTORY ${WORK}/models TIMEOUT 120
    RESULT_VARIABLE rc OUTPUT_VARIABLE model_out ERROR_VARIABLE err)
  message("${model_out}")
  if(NOT rc EQUAL 0 OR NOT model_out MATCHES "kws_ref +${kws_macs} +([0-9]+) ")
    message(FATAL_ERROR "bench_cortex_m4 did not run the KWS reference (${rc}): ${err}")
  endif()
  if(NOT CMAKE_MATCH_1 LESS 21800000)
    message(FATAL_ERROR "KWS reference: ${CMAKE_MATCH_1} instructions, not below TFLite "
                        "Micro + CMSIS-NN's 21.8 M cycles")
  endif()
endif()
