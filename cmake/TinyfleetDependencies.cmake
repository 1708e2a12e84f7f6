# Every third-party dependency, found from Debian 12's packages (see
# deploy/local/install-deps.sh and docs/dependencies.md).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
# bcrypt for NATS device accounts (nats.accounts_file): libxcrypt (libcrypt-dev).
pkg_check_modules(XCRYPT REQUIRED IMPORTED_TARGET libxcrypt)
pkg_check_modules(LZMA REQUIRED IMPORTED_TARGET liblzma)
# pkcs11.h only (the PKCS#11 signer loads the token's module with dlopen).
pkg_check_modules(P11KIT REQUIRED p11-kit-1)
find_package(zstd CONFIG REQUIRED)
find_package(FlatBuffers CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(PahoMqttCpp CONFIG REQUIRED)
find_package(ONNX CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 2 CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(ZLIB REQUIRED)

if(TINYFLEET_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(TINYFLEET_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
