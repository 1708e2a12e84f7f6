# The operator sources, shared by the host build (CMakeLists.txt) and the Cortex-M
# firmware build. Paths relative to this folder.
set(TINYFLEET_KERNELS_OPS_PORTABLE_SOURCES
  common/data_movement.cpp
  common/quantization.cpp
  optimized/forwarding.cpp
  reference/activations.cpp
  reference/conv2d.cpp
  reference/depthwise_conv2d.cpp
  reference/elementwise.cpp
  reference/fully_connected.cpp
  reference/pooling.cpp)
# Built twice on the host: as opt:: (with AVX2 when available) and as opt_scalar::.
set(TINYFLEET_KERNELS_OPS_OPTIMIZED_SOURCES
  optimized/conv2d.cpp
  optimized/conv2d_dsp.cpp
  optimized/conv2d_packed.cpp
  optimized/depthwise_3x3_dsp.cpp
  optimized/depthwise_conv2d.cpp
  optimized/depthwise_dsp.cpp
  optimized/depthwise_packed.cpp
  optimized/elementwise.cpp
  optimized/elementwise_dsp.cpp
  optimized/fully_connected.cpp
  optimized/fully_connected_dsp.cpp
  optimized/pooling.cpp
  optimized/pooling_dsp.cpp
  optimized/requant_dsp.cpp)
# Host builds only (opt:: and opt_scalar::), not the Cortex-M firmware: weights packed once.
set(TINYFLEET_KERNELS_OPS_HOST_OPTIMIZED_SOURCES optimized/packed_weights.cpp)
# The compiler's side: the in-place contract (overlap_distance, for the memory planner),
# what the compiler precomputes (multipliers, parameters, tables) and the float32
# reference kernels (the compiler's float executor and the tests). In the host library
# and the firmware's self-test and bench apps, not in the device runtime, which never
# calls them.
set(TINYFLEET_KERNELS_OPS_COMPILER_SOURCES common/in_place.cpp common/precomputed.cpp
  float_ref/conv.cpp float_ref/elementwise_pool_activations.cpp)
