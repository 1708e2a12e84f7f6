# Shared by the Cortex-M4 ctest scripts (cmake -P): configure and build a firmware tree
# with the arm-none-eabi toolchain, run an image under qemu-system-arm (mps2-an386,
# Cortex-M4, semihosting: the image's output is QEMU's stdout, its exit code QEMU's), and
# pick the stack's device account a script uses.

# stack_device_account(<index> <user var> <password var>)
# Test device <index> of the stack (tests/support: test_devices(), the table in
# environment.h): its "id:password" from TINYFLEET_MQTT_TEST_DEVICES. Fatal when the
# stack's TINYFLEET_MQTT_* variables are not set (not under deploy/local/with-stack.sh) or
# the stack made fewer accounts.
function(stack_device_account index user_var password_var)
  foreach(v TINYFLEET_MQTT_HOST TINYFLEET_MQTT_PORT TINYFLEET_MQTT_DEVICE_PORT
            TINYFLEET_MQTT_SERVER_USER TINYFLEET_MQTT_SERVER_PASSWORD TINYFLEET_MQTT_TEST_DEVICES)
    if(NOT DEFINED ENV{${v}})
      message(FATAL_ERROR "${v} is not set: run under deploy/local/with-stack.sh")
    endif()
  endforeach()
  string(REPLACE " " ";" accounts "$ENV{TINYFLEET_MQTT_TEST_DEVICES}")
  list(LENGTH accounts n)
  math(EXPR needed "${index} + 1")
  if(n LESS needed)
    message(FATAL_ERROR "the stack made ${n} test device accounts, this test uses number ${index}")
  endif()
  list(GET accounts ${index} account)
  string(REPLACE ":" ";" account "${account}")
  list(GET account 0 user)
  list(GET account 1 password)
  set(${user_var} "${user}" PARENT_SCOPE)
  set(${password_var} "${password}" PARENT_SCOPE)
endfunction()

# firmware_build(SOURCE <dir> BUILD <dir> TOOLCHAIN <file> [DEFINES -D...] [TARGETS ...])
# Fatal when configure or build fails; the build's output is left in FIRMWARE_BUILD_OUT.
function(firmware_build)
  cmake_parse_arguments(FW "" "SOURCE;BUILD;TOOLCHAIN" "DEFINES;TARGETS" ${ARGN})
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${FW_SOURCE} -B ${FW_BUILD} -G Ninja
            -DCMAKE_TOOLCHAIN_FILE=${FW_TOOLCHAIN} ${FW_DEFINES}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "firmware configure failed:\n${err}")
  endif()
  set(targets)
  if(FW_TARGETS)
    set(targets --target ${FW_TARGETS})
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${FW_BUILD} ${targets}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "firmware build failed:\n${out}\n${err}")
  endif()
  set(FIRMWARE_BUILD_OUT "${out}" PARENT_SCOPE)
endfunction()

# qemu_m4(<elf> <out var> <exit var> [ICOUNT] [TIMEOUT s] [SERIAL <chardev>])
# Runs <elf>; ICOUNT makes QEMU count one instruction per tick (-icount shift=0), so the
# image's timer reads instruction counts. SERIAL joins UART0 (0x40004000) to a QEMU
# character device, e.g. tcp:127.0.0.1:1883 (default: none). Sets <out var> (stdout),
# <out var>_ERR and <exit var>.
function(qemu_m4 elf out_var rc_var)
  cmake_parse_arguments(Q "ICOUNT" "TIMEOUT;SERIAL" "" ${ARGN})
  if(NOT Q_TIMEOUT)
    set(Q_TIMEOUT 120)
  endif()
  if(NOT Q_SERIAL)
    set(Q_SERIAL none)
  endif()
  set(icount)
  if(Q_ICOUNT)
    set(icount -icount shift=0)
  endif()
  execute_process(
    COMMAND qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial ${Q_SERIAL}
            ${icount} -semihosting-config enable=on,target=native -kernel ${elf}
    TIMEOUT ${Q_TIMEOUT} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${out_var}_ERR "${err}" PARENT_SCOPE)
  set(${rc_var} "${rc}" PARENT_SCOPE)
endfunction()
