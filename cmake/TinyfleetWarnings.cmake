# Warnings and sanitizers shared by every target of the project.
add_library(tinyfleet_warnings INTERFACE)
target_compile_options(tinyfleet_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                    -Wnon-virtual-dtor -Wno-missing-field-initializers)

if(TINYFLEET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
