# systemd-analyze verify on deploy/systemd/fleetd.service, its ExecStart pointed at the
# built fleetd. Fails on an error or on any warning systemd prints (it only warns about
# many mistakes, e.g. an unknown signal name).
file(READ ${UNIT} text)
string(REPLACE "/usr/local/bin/fleetd" "${FLEETD}" text "${text}")
file(WRITE ${OUT}/fleetd.service "${text}")
execute_process(COMMAND ${ANALYZE} verify ${OUT}/fleetd.service
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
if(NOT rc EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
  message(FATAL_ERROR "systemd-analyze verify (exit ${rc}):\n${out}${err}")
endif()
message(STATUS "fleetd.service verified")
