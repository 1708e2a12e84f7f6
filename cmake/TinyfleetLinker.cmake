# The linker: LLVM's lld when the compiler can use it (Debian's `lld`), else the default
# (GNU ld). The suite links about a hundred executables; linking fleetd's debug build took
# 6.2 s of CPU with GNU ld and 0.8 s with lld (docs/local-stack.md), which on the 2-core CI
# box is minutes of the build. TINYFLEET_LINKER=default keeps GNU ld.
set(TINYFLEET_LINKER "lld" CACHE STRING "lld (when usable) or default")
if(TINYFLEET_LINKER STREQUAL "lld")
  include(CheckLinkerFlag)
  check_linker_flag(CXX "-fuse-ld=lld" TINYFLEET_HAVE_LLD)
  if(TINYFLEET_HAVE_LLD)
    add_link_options(-fuse-ld=lld)
  else()
    message(STATUS "lld not found: linking with the default linker")
  endif()
endif()
