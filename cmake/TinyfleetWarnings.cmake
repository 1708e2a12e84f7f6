# Warnings and sanitizers shared by every target of the project.
add_library(tinyfleet_warnings INTERFACE)
target_compile_options(tinyfleet_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                    -Wnon-virtual-dtor -Wno-missing-field-initializers)

if(TINYFLEET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Under the sanitizers (the CI build), a directory whose code the suite does not wait on
# (fleetd's services, storage, fleetctl, the tests themselves: they wait on I/O) calls this
# first and compiles at -O0, in about 60 % of -O1's time (the gRPC and Protobuf headers'
# inline code is most of what -O1 optimizes there). The rooms that compute (kernels, the
# optimizer, update's decoders and crypto, the device agent) keep the preset's -O1.
macro(tinyfleet_quick_sanitized_compile)
  if(TINYFLEET_SANITIZE)
    add_compile_options(-O0)
  endif()
endmacro()
