# Fails when an object in the archives LIBS ("|"-separated) refers to the heap or to
# exceptions: malloc and friends, operator new, __cxa_throw / __cxa_allocate_exception.
# Two references are allowed, both never reached:
#  - operator delete (_ZdlPv*), from the deleting destructors the compiler emits for every
#    class with a virtual destructor (the port interfaces); nothing is ever new'd;
#  - malloc/free in libsodium's utils.c, from sodium_malloc/sodium_free, which nothing
#    here calls (--gc-sections drops them; the QEMU check app traps any allocation).
string(REPLACE "|" ";" LIBS "${LIBS}")
set(forbidden "^(malloc|free|calloc|realloc|_malloc_r|_free_r|_calloc_r|_realloc_r|_Znwj|_Znaj|_ZnwjRKSt9nothrow_t|_ZnajRKSt9nothrow_t|__cxa_throw|__cxa_allocate_exception|__cxa_begin_catch)$")
set(bad "")
foreach(lib IN LISTS LIBS)
  execute_process(COMMAND ${NM} -A -u ${lib} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${lib}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^([^:]+):([^:]+):[ ]+U (.+)$")
      continue()
    endif()
    set(object ${CMAKE_MATCH_2})
    set(sym ${CMAKE_MATCH_3})
    if(object STREQUAL "utils.c.obj" AND sym MATCHES "^(malloc|free)$")
      continue()
    endif()
    if(sym MATCHES "${forbidden}")
      get_filename_component(name ${lib} NAME)
      list(APPEND bad "${name}(${object}): ${sym}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(REMOVE_DUPLICATES bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "heap or exception use in the agent's firmware libraries:\n  ${bad}")
endif()
message("no heap: no malloc, new or throw in the agent's firmware libraries")
