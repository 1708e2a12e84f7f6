# The runtime's device-side sources (shared with the Cortex-M firmware build).
set(TINYFLEET_KERNELS_RUNTIME_SOURCES
    interpreter.cpp operator_registry.cpp conv_operators.cpp pool_operators.cpp
    arithmetic_operators.cpp data_operators.cpp element_operators.cpp)
