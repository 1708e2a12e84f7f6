// Runs the embedded artifact once on the embedded input and prints the output bytes
// as hex over semihosting ("output: 0a ff ..."), then the exit code says ok or which
// step failed.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/kernels/runtime/interpreter.h"

extern "C" {
extern const unsigned char tf_artifact[];
extern const unsigned int tf_artifact_size;
extern const unsigned char tf_input[];
extern const unsigned int tf_input_size;
}

alignas(16) static uint8_t g_arena[256 * 1024];

int main() {
  tinyfleet::kernels::Interpreter interp;
  auto err = interp.load(tf_artifact, tf_artifact_size);
  if (err.status != tinyfleet::kernels::LoadStatus::kOk) {
    std::printf("load failed: %s (%ld)\n", err.what, static_cast<long>(err.index));
    return 2;
  }
  if (interp.bind_arena(g_arena, sizeof g_arena).status != tinyfleet::kernels::LoadStatus::kOk) {
    std::printf("arena too small: %u\n", static_cast<unsigned>(interp.arena_bytes()));
    return 3;
  }
  const auto in = interp.input(0);
  if (in.bytes != tf_input_size) {
    std::printf("input size %u, expected %u\n", tf_input_size, static_cast<unsigned>(in.bytes));
    return 4;
  }
  std::memcpy(in.data, tf_input, in.bytes);
  err = interp.invoke();
  if (err.status != tinyfleet::kernels::LoadStatus::kOk) {
    std::printf("invoke failed: %s\n", err.what);
    return 5;
  }
  const auto out = interp.output(0);
  std::printf("output:");
  for (size_t i = 0; i < out.bytes; ++i) {
    std::printf(" %02x", static_cast<const uint8_t*>(out.data)[i]);
  }
  std::printf("\n");
  return 0;
}
