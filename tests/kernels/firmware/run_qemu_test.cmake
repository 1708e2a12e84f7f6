# ctest: make the fixture with the host runtime, build the Cortex-M4F firmware with it
# embedded, run it under qemu-system-arm (mps2-an386, semihosting), and compare; then
# run the on-target twin check of optimized against reference kernels (and see it fail
# on a deliberately wrong variant), and bench_cortex_m4 on the MLPerf Tiny layer shapes
# and, with COMPILER and KWS, on the whole MLPerf Tiny KWS reference (and VWW, IC, AD) models.
#   -DFIXTURE=<make_firmware_fixture> -DSOURCE=<kernels/firmware> -DWORK=<dir>
#   [-DCOMPILER=<tinyfleet-compile> -DKWS=<kws_ref_model.tflite> -DVWW_SCRIPT=<make_vww_mobilenet.py>
#    -DSHAPED=<tests/fixtures/models/mlperf_shaped>]
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
foreach(mutant depthwise_dsp depthwise_3x3_dsp conv2d_dsp fully_connected_dsp requant_dsp
               elementwise_dsp mul_dsp max_pool_dsp average_pool_dsp mean_dsp)
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

# Whole models on the M4 (docs/kernels.md): the MLPerf Tiny KWS reference (int8 .tflite)
# and, when Debian's python3-onnx is there, the generated VWW-sized MobileNetV1-0.25
# (VWW_SCRIPT), compiled for cortex-m4-256k. Each must load and run, and one inference
# must take fewer instructions than TFLite Micro with CMSIS-NN's cycles (issue 23:
# KWS 21.8 M, VWW 72.1 M).
# bench_model(<name> <MACs> <limit>): runs NAME.tfa from ${WORK}/models.
function(bench_model name macs limit)
  execute_process(
    COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
            -icount shift=0 -semihosting-config enable=on,target=native
            -kernel ${WORK}/build/bench_cortex_m4.elf -append "${name}=${macs}"
    WORKING_DIRECTORY ${WORK}/models TIMEOUT 120
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX MATCH "${name} +${macs} +([0-9]+) [^\n]*" row "${out}")
  message("qemu:  ${row}")
  if(NOT rc EQUAL 0 OR NOT row)
    message(FATAL_ERROR "bench_cortex_m4 did not run ${name} (${rc}): ${out}${err}")
  endif()
  if(NOT CMAKE_MATCH_1 LESS ${limit})
    message(FATAL_ERROR "${name}: ${CMAKE_MATCH_1} instructions, not below ${limit}")
  endif()
endfunction()

# compile_model(<out MACs var> <model> <name> [--calib npz]): NAME.tfa in ${WORK}/models.
function(compile_model macs_var model name)
  execute_process(COMMAND ${COMPILER} ${model} --class cortex-m4-256k ${ARGN}
                          -o ${WORK}/models/${name}.tfa
                  RESULT_VARIABLE rc OUTPUT_VARIABLE report ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT report MATCHES "MACs per inference +([0-9]+)")
    message(FATAL_ERROR "tinyfleet-compile refused ${model} (${rc}): ${report}${err}")
  endif()
  set(${macs_var} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()

if(COMPILER AND KWS)
  file(MAKE_DIRECTORY ${WORK}/models)
  compile_model(kws_macs ${KWS} kws_ref)
  bench_model(kws_ref ${kws_macs} 21800000)
  execute_process(COMMAND /usr/bin/python3 -c "import onnx" RESULT_VARIABLE no_onnx
                  OUTPUT_QUIET ERROR_QUIET)
  if(VWW_SCRIPT AND no_onnx EQUAL 0)
    execute_process(COMMAND /usr/bin/python3 ${VWW_SCRIPT} ${WORK}/models RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${VWW_SCRIPT} failed (${rc})")
    endif()
    compile_model(vww_macs ${WORK}/models/vww_mobilenet_v1_025.onnx vww_mobilenet_v1_025
                  --calib ${WORK}/models/vww_calib.npz)
    bench_model(vww_mobilenet_v1_025 ${vww_macs} 72100000)
    # Its first stages run in bands (patch-based execution, format 1.3): the M4's
    # output bytes must be the host runtime's (which the compiler checked against the
    # chain run whole).
    file(MAKE_DIRECTORY ${WORK}/vww)
    execute_process(COMMAND ${FIXTURE} ${WORK}/vww ${WORK}/models/vww_mobilenet_v1_025.tfa
                    RESULT_VARIABLE rc OUTPUT_VARIABLE vww_fixture)
    if(NOT rc EQUAL 0 OR NOT vww_fixture MATCHES "bands: [1-9]")
      message(FATAL_ERROR "VWW artifact without a patch plan or not run (${rc}): ${vww_fixture}")
    endif()
    firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build TOOLCHAIN ${SOURCE}/arm-none-eabi.cmake
                   DEFINES -DARTIFACT=${WORK}/vww/artifact.tfa -DINPUT=${WORK}/vww/input.bin
                   TARGETS qemu_app.elf)
    qemu_m4(${WORK}/build/qemu_app.elf vww_out rc TIMEOUT 120)
    file(READ ${WORK}/vww/expected.txt vww_expected)
    string(STRIP "${vww_expected}" vww_expected)
    string(STRIP "${vww_out}" vww_out)
    message("VWW in bands, host:  ${vww_expected}\nVWW in bands, qemu:  ${vww_out}")
    if(NOT rc EQUAL 0 OR NOT vww_out STREQUAL vww_expected)
      message(FATAL_ERROR "VWW in bands: the Cortex-M4 output differs from the host's (${rc})")
    endif()
  else()
    message("VWW-sized MobileNetV1-0.25 skipped: no python3-onnx for /usr/bin/python3")
  endif()
  # MLPerf Tiny-shaped IC (ResNet-8) and AD (FC autoencoder), committed with random
  # weights: below TFLite Micro with CMSIS-NN (IC 84.5 M, AD 1.21 M cycles).
  if(SHAPED)
    compile_model(ic_macs ${SHAPED}/ic_resnet8.onnx ic_resnet8 --calib ${SHAPED}/ic_calib.npz)
    bench_model(ic_resnet8 ${ic_macs} 84500000)
    compile_model(ad_macs ${SHAPED}/ad_autoencoder.onnx ad_autoencoder
                  --calib ${SHAPED}/ad_calib.npz)
    bench_model(ad_autoencoder ${ad_macs} 1210000)
  endif()
endif()
