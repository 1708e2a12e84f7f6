# The reference firmware's two ctests (labels firmware;stack), one script:
#   -DSTEP=build (ctest firmware_reference_build, the fixture firmware_reference): the host
#     compiles digits_cnn and digits_cnn_v2 for cortex-m4-256k (tinyfleet-compile, as fleetd
#     does), signs the v1 -> v2 offer (make_offer_fixture), writes the labelled probe digits
#     (make_probe_samples) and builds reference_firmware.elf in WORK/build. The image holds
#     no account: the FirmwareRollout e2e test runs the same image.
#   -DSTEP=run (ctest firmware_reference_qemu): writes the provisioning record for test
#     device 27's account and a fresh fleet (the offer is bound to the fixture's fleet and
#     device), then serve_offer (fleetd's part: the offer retained, chunk requests answered)
#     and QEMU (UART0 joined to the devices' listener) run together; both must end well:
#     the firmware switched to release 8 and published telemetry, and serve_offer saw the
#     status `Committed` and a telemetry window.
#   -DFIXTURE=<make_offer_fixture> -DPROBES=<make_probe_samples> -DCOMPILE=<tinyfleet-compile>
#   -DMODELS=<tests/fixtures> -DSERVE=<serve_offer> -DSOURCE=<firmware> -DWORK=<dir>
include(${CMAKE_CURRENT_LIST_DIR}/../support/qemu_m4.cmake)
if(STEP STREQUAL "build")
  file(REMOVE_RECURSE ${WORK}/fixture)  # the build folder stays: ninja rebuilds what changed
  file(MAKE_DIRECTORY ${WORK}/fixture)
  foreach(m digits_cnn digits_cnn_v2)
    execute_process(COMMAND ${COMPILE} ${MODELS}/models/${m}.onnx --class cortex-m4-256k
                            --calib ${MODELS}/data/digits_calib.npz -o ${WORK}/${m}.tfa
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "tinyfleet-compile ${m} failed (${rc}): ${out}${err}")
    endif()
  endforeach()
  execute_process(COMMAND ${FIXTURE} ${WORK}/fixture ${WORK}/digits_cnn.tfa
                          ${WORK}/digits_cnn_v2.tfa
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make_offer_fixture failed (${rc}): ${out}${err}")
  endif()
  message("${out}")
  execute_process(COMMAND ${PROBES} ${MODELS}/data/digits_val.npz 40
                          ${WORK}/fixture/probe_samples.bin
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make_probe_samples failed (${rc}): ${out}${err}")
  endif()
  firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build
                 TOOLCHAIN ${SOURCE}/../kernels/firmware/arm-none-eabi.cmake
                 DEFINES -DFIXTURE=${WORK}/fixture
                 TARGETS firmware_no_heap_check reference_firmware.elf)
  return()
endif()

stack_device_account(27 user password)
string(RANDOM LENGTH 8 ALPHABET abcdefghijklmnopqrstuvwxyz0123456789 nonce)
set(fleet "fwref${nonce}")
# The offer names the fixture's fleet and device (fixture_constants.h); the clock is the
# fixture's (no `now`), the root key the one built in.
set(device_dir ${WORK}/device-${nonce})
file(MAKE_DIRECTORY ${device_dir})
file(WRITE ${device_dir}/provision.txt
     "user=${user}\npassword=${password}\nfleet=${fleet}\noffer_fleet=default\n"
     "device=m4-0001\nfactory=1\nmode=once\n")
# Both at once (execute_process runs its COMMANDs as one pipeline): serve_offer writes
# its lines to stderr; QEMU's stdout is the firmware's semihosting output.
execute_process(
  COMMAND ${SERVE} $ENV{TINYFLEET_MQTT_HOST} $ENV{TINYFLEET_MQTT_PORT}
          $ENV{TINYFLEET_MQTT_SERVER_USER} $ENV{TINYFLEET_MQTT_SERVER_PASSWORD} ${fleet} ${user}
          ${WORK}/fixture/digits_offer.bin ${WORK}/fixture/digits_delta.bin 8 120
  COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none
          -icount shift=0,sleep=on -serial tcp:$ENV{TINYFLEET_MQTT_HOST}:$ENV{TINYFLEET_MQTT_DEVICE_PORT},nodelay=on
          -semihosting-config enable=on,target=native -kernel ${WORK}/build/reference_firmware.elf
  WORKING_DIRECTORY ${device_dir}
  TIMEOUT 180 RESULTS_VARIABLE rcs OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}\n${err}")
file(REMOVE_RECURSE ${device_dir})
list(GET rcs 0 serve_rc)
list(GET rcs 1 qemu_rc)
if(qemu_rc EQUAL 99)
  message(FATAL_ERROR "the reference firmware allocated from the heap")
endif()
if(NOT qemu_rc EQUAL 0 OR NOT out MATCHES "reference firmware: ok \\([0-9]+ cases\\)")
  message(FATAL_ERROR "the reference firmware failed (qemu ${qemu_rc})")
endif()
if(NOT serve_rc EQUAL 0)
  message(FATAL_ERROR "serve_offer did not see the device commit release 8 and send telemetry "
                      "(${serve_rc})")
endif()
