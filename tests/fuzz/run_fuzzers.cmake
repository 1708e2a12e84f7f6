# Builds the fuzz project with clang, makes seed inputs, runs each target for SECONDS.
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/build -G Ninja
                        -DCMAKE_CXX_COMPILER=${CLANGXX} -DROOT=${ROOT}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz project configure failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz build failed:\n${out}\n${err}")
endif()
# Seeds: a valid artifact (from the firmware fixture), and the checked-in seeds.
file(MAKE_DIRECTORY ${WORK}/findings ${WORK}/corpus/artifact ${WORK}/corpus/offer ${WORK}/corpus/delta
                    ${WORK}/corpus/status ${WORK}/corpus/telemetry ${WORK}/corpus/presence
                    ${WORK}/corpus/chunk_request
                    ${WORK}/corpus/device_class ${WORK}/corpus/onnx_import
                    ${WORK}/corpus/tflite_import ${WORK}/corpus/console_listen
                    ${WORK}/corpus/mqtt_packet ${WORK}/corpus/npz
                    ${WORK}/corpus/rollouts_api_input ${WORK}/corpus/console_create_form
                    ${WORK}/corpus/root_metadata ${WORK}/corpus/nats_subject
                    ${WORK}/corpus/nats_accounts
                    ${WORK}/corpus/provisioning)
file(WRITE ${WORK}/corpus/console_listen/seed "127.0.0.1:8443")
file(WRITE ${WORK}/corpus/rollouts_api_input/seed "1234")
file(WRITE ${WORK}/corpus/nats_subject/seed "tinyfleet.v1.default.dev//1.chunk.req")
file(WRITE ${WORK}/corpus/nats_accounts/seed
     "# ops\nusers = [\n  { user: fleetd, password: \"pw\" }\n  { user: \"d1\", password: \"$2b$04$x\", permissions: { publish: [\"a.b\", \"$MQTT.>\"], subscribe: [\"c\"] } },\n]\n")
file(WRITE ${WORK}/corpus/provisioning/seed
     "user=fw-0001\npassword=pw\nfleet=default\nnow=1795305600\nmode=run\nrate_ms=200\n")
execute_process(COMMAND ${SEED_MAKER} ${WORK}/seed OUTPUT_QUIET RESULT_VARIABLE rc)
file(MAKE_DIRECTORY ${WORK}/seed)
execute_process(COMMAND ${SEED_MAKER} ${WORK}/seed OUTPUT_QUIET)
file(COPY ${WORK}/seed/artifact.tfa ${WORK}/seed/banded.tfa DESTINATION ${WORK}/corpus/artifact)
# Format 1.1 artifacts (positional int_params) seed the loader's older form too.
file(GLOB old_artifacts ${ROOT}/tests/fixtures/models/artifacts_1_1/*.tfa)
file(COPY ${old_artifacts} DESTINATION ${WORK}/corpus/artifact)
# The class catalog's entries seed the class-spec parser.
file(COPY ${ROOT}/optimizer_service/device_classes/catalog.json
     DESTINATION ${WORK}/corpus/device_class)
# The ONNX fixtures (shipped, generated constructs, the digits models) seed the importer.
file(GLOB_RECURSE onnx_seeds ${ROOT}/tests/fixtures/models/*.onnx)
file(COPY ${onnx_seeds} DESTINATION ${WORK}/corpus/onnx_import)
# The TFLite fixtures (TFLM examples, MLPerf Tiny KWS) seed the TFLite importer.
file(GLOB_RECURSE tflite_seeds ${ROOT}/tests/fixtures/models/*.tflite)
file(COPY ${tflite_seeds} DESTINATION ${WORK}/corpus/tflite_import)
# The MQTT parser starts from an empty corpus (its packets need NUL bytes, which cmake's
# file(WRITE) cannot write; the fixed header's grammar is small). Checked-in seeds:
# tests/fuzz/seeds/<target>/ (telemetry: a version-1 and a version-2 window, so the fuzzer
# starts inside both layouts; npz: small archives, stored, deflated, and a bare .npy;
# root_metadata: a pinned key and a two-version chain, signatures zero).
file(GLOB seed_dirs LIST_DIRECTORIES true ${ROOT}/tests/fuzz/seeds/*)
foreach(dir ${seed_dirs})
  get_filename_component(target ${dir} NAME)
  file(GLOB seeds ${dir}/*)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus/${target})
endforeach()
foreach(target artifact offer delta status telemetry presence chunk_request device_class
               onnx_import tflite_import console_listen mqtt_packet npz rollouts_api_input
               console_create_form root_metadata nats_subject nats_accounts provisioning)
  execute_process(
    # -timeout: an input that runs 25 s is a hang, reported as a failure (libFuzzer's
    # default is 20 minutes, past -max_total_time). It is wall time: on the 2-core CI box
    # running the rest of the suite beside it, inputs that take 0.2 s of CPU (a 43 KB
    # TFLite model compiled and self-tested) were seen taking over 3 s.
    # -artifact_prefix: the input that crashed or hung is kept under ${WORK}/findings/.
    COMMAND ${WORK}/build/${target}_fuzzer -max_total_time=${SECONDS} -rss_limit_mb=2048
            -timeout=25 -print_final_stats=1 -artifact_prefix=${WORK}/findings/${target}-
            ${WORK}/corpus/${target}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" runs "${err}")
  message("${target}_fuzzer: ${runs}")
  if(NOT rc EQUAL 0)
    # The report starts at the first line of libFuzzer's or the sanitizer's report ("==pid=="
    # ERROR, deadly signal, out-of-memory; "ALARM:" for a hang); progress lines before it are
    # left out, so a CI log that keeps only the start of the output shows what was found.
    string(FIND "${err}" "\n==" at)
    string(FIND "${err}" "\nALARM:" alarm)
    if(alarm GREATER -1 AND (at EQUAL -1 OR alarm LESS at))
      set(at ${alarm})
    endif()
    if(at GREATER -1)
      string(SUBSTRING "${err}" ${at} -1 report)
    else()
      set(report "${err}")
    endif()
    string(LENGTH "${report}" n)
    if(n GREATER 6000)
      string(SUBSTRING "${report}" 0 6000 report)
    endif()
    file(GLOB found ${WORK}/findings/${target}-*)
    message(FATAL_ERROR "${target}_fuzzer found a crash or a hang (input: ${found}):\n${report}")
  endif()
endforeach()
