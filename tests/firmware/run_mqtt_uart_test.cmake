# ctest (labels firmware;stack): the firmware's MQTT client on the Cortex-M4 under QEMU,
# UART0 joined to the stack's Mosquitto (devices' listener) with `-serial tcp:...`.
# Publishes a retained message on test device 21's offer topic (mosquitto_pub as fleetd),
# builds mqtt_uart_app.elf with that account, runs it, checks it printed the message,
# reads its retained status back with mosquitto_sub and compares it with the bytes the
# app sent, then clears both retained messages.
#   -DSOURCE=<firmware> -DWORK=<dir>; the stack's TINYFLEET_MQTT_* in the environment.
include(${CMAKE_CURRENT_LIST_DIR}/../support/qemu_m4.cmake)
stack_device_account(25 user password)  # test device 25 (environment.h)
string(RANDOM LENGTH 8 ALPHABET abcdefghijklmnopqrstuvwxyz0123456789 nonce)
set(fleet "fwuart${nonce}")
set(offer_topic "tinyfleet/v1/${fleet}/${user}/offer")
set(status_topic "tinyfleet/v1/${fleet}/${user}/status")
set(server -V mqttv311 -h $ENV{TINYFLEET_MQTT_HOST} -p $ENV{TINYFLEET_MQTT_PORT}
           -u $ENV{TINYFLEET_MQTT_SERVER_USER} -P $ENV{TINYFLEET_MQTT_SERVER_PASSWORD})

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
firmware_build(SOURCE ${SOURCE} BUILD ${WORK}/build
               TOOLCHAIN ${SOURCE}/../kernels/firmware/arm-none-eabi.cmake
               DEFINES -DMQTT_USER=${user} -DMQTT_PASSWORD=${password} -DMQTT_FLEET=${fleet}
               TARGETS firmware_no_heap_check mqtt_uart_app.elf)

set(message "retained offer ${nonce} for the firmware")
execute_process(COMMAND mosquitto_pub ${server} -q 1 -r -t ${offer_topic} -m ${message}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mosquitto_pub failed (${rc})")
endif()
qemu_m4(${WORK}/build/mqtt_uart_app.elf out qemu_rc TIMEOUT 90
        SERIAL tcp:$ENV{TINYFLEET_MQTT_HOST}:$ENV{TINYFLEET_MQTT_DEVICE_PORT},nodelay=on)
message("${out}")
execute_process(COMMAND mosquitto_sub ${server} -C 1 -W 5 -F %x -t ${status_topic}
                OUTPUT_VARIABLE stored OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE sub_rc)
execute_process(COMMAND mosquitto_pub ${server} -q 1 -r -t ${offer_topic} -n)
execute_process(COMMAND mosquitto_pub ${server} -q 1 -r -t ${status_topic} -n)

if(qemu_rc EQUAL 99)
  message(FATAL_ERROR "the MQTT client allocated from the heap on the Cortex-M4")
endif()
if(NOT qemu_rc EQUAL 0 OR NOT out MATCHES "mqtt uart: ok \\([0-9]+ cases\\)" OR out MATCHES "FAIL")
  message(FATAL_ERROR "the MQTT client over UART0 failed (qemu ${qemu_rc}): ${out_ERR}")
endif()
if(NOT out MATCHES "offer message: ${message}\n")
  message(FATAL_ERROR "the app did not print the retained message \"${message}\"")
endif()
string(REGEX MATCH "status sent: ([0-9a-f]+)" _ "${out}")
set(sent "${CMAKE_MATCH_1}")
if(NOT sub_rc EQUAL 0 OR sent STREQUAL "" OR NOT stored STREQUAL sent)
  message(FATAL_ERROR "the retained status on ${status_topic} (${stored}, mosquitto_sub ${sub_rc}) "
                      "is not what the firmware sent (${sent})")
endif()
message("mosquitto_sub read the firmware's status back: ${stored}")
# The client's flash: what the app's link map kept of tinyfleet_mqtt_m4 (packet codec,
# client, UART port), per object.
execute_process(COMMAND arm-none-eabi-size -t ${WORK}/build/libtinyfleet_mqtt_m4.a
                OUTPUT_VARIABLE sizes)
message("MQTT client objects (arm-none-eabi-size, before --gc-sections):\n${sizes}")
