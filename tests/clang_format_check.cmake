# Fails listing every tracked C/C++ file that clang-format would change.
execute_process(COMMAND git ls-files "*.h" "*.cpp" "*.cc" "*.c" WORKING_DIRECTORY ${ROOT}
                OUTPUT_VARIABLE files OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE git_rc)
if(NOT git_rc EQUAL 0)
  message(FATAL_ERROR "git ls-files failed; run from a git checkout")
endif()
string(REPLACE "\n" ";" files "${files}")
set(bad "")
foreach(f ${files})
  execute_process(COMMAND ${CLANG_FORMAT} --dry-run -Werror ${f} WORKING_DIRECTORY ${ROOT}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT rc EQUAL 0)
    list(APPEND bad ${f})
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "not clang-formatted (run clang-format -i on them):\n  ${bad}")
endif()
