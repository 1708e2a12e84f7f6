# ctest firmware_reference_qemu (labels firmware;stack): the reference firmware on the
# Cortex-M4 under QEMU takes a signed offer and its TensorRange delta over MQTT. The host
# compiles digits_cnn and digits_cnn_v2 for cortex-m4-256k (tinyfleet-compile, as fleetd
# does), signs the v1 -> v2 offer (make_offer_fixture), the firmware is built with test device
# 27's account and a fresh fleet, then serve_offer (fleetd's part: the offer retained,
# chunk requests answered) and QEMU (UART0 joined to the devices' listener) run together;
# both must end well: the firmware switched to release 8 and published telemetry, and
# serve_offer saw the status `Committed` and a telemetry window.
#   -DFIXTURE=<make_offer_fixture> -DCOMPILE=<tinyfleet-compile> -DMODELS=<tests/fixtures>
#   -DSERVE=<serve_offer> -DSOURCE=<firmware> -DWORK=<dir>
include(${CMAKE_CURRENT_LIST_DIR}/../support/qemu_m4.cmake)
stack_device_account(27 user password)
string(RANDOM LENGTH 8 ALPHABET abcdefghijklmnopqrstuvwxyz0123456789 nonce)
set(fleet "fwref${nonce}")

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/fixture)
foreach(m digits_cnn digits_cnn_v2)
  execute_process(COMMAND ${COMPILE} ${MODELS}/models/${m}.onnx --class cortex-m4-256k
                          --calib ${MODELS}/data/digits_calib.npz -o ${WORK}/${m}.tfa
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tinyfleet-compile ${m} failed (${rc}): ${out}${err}")
  endif()
endforeach()
execute_process(COMMAND ${FIXTURE} ${WORK}/fixture ${WORK}/digits_cnn.tfa ${WORK}/digits_cnn_v2.tfa
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_offer_fixture failed (${rc}): ${out}${err}")
endif()
message("${out}")
firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build
               TOOLCHAIN ${SOURCE}/../kernels/firmware/arm-none-eabi.cmake
               DEFINES -DFIXTURE=${WORK}/fixture -DMQTT_USER=${user} -DMQTT_PASSWORD=${password}
                       -DMQTT_FLEET=${fleet}
               TARGETS firmware_no_heap_check reference_firmware.elf)
# Both at once (execute_process runs its COMMANDs as one pipeline): serve_offer writes
# its lines to stderr; QEMU's stdout is the firmware's semihosting output.
execute_process(
  COMMAND ${SERVE} $ENV{TINYFLEET_MQTT_HOST} $ENV{TINYFLEET_MQTT_PORT}
          $ENV{TINYFLEET_MQTT_SERVER_USER} $ENV{TINYFLEET_MQTT_SERVER_PASSWORD} ${fleet} ${user}
          ${WORK}/fixture/digits_offer.bin ${WORK}/fixture/digits_delta.bin 8 120
  COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none
          -serial tcp:$ENV{TINYFLEET_MQTT_HOST}:$ENV{TINYFLEET_MQTT_DEVICE_PORT},nodelay=on
          -semihosting-config enable=on,target=native -kernel ${WORK}/build/reference_firmware.elf
  TIMEOUT 180 RESULTS_VARIABLE rcs OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}\n${err}")
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
