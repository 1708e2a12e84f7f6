// Mutated artifacts into the loader and, when accepted, one run of the interpreter.
#include <cstdint>
#include <cstring>
#include <vector>

#include "tinyfleet/kernels/runtime/interpreter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Flash is aligned: copy to a 16-byte aligned buffer.
  std::vector<uint8_t> buffer(size + 16);
  auto* p = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buffer.data()) + 15) &
                                       ~uintptr_t{15});
  if (size) std::memcpy(p, data, size);
  tinyfleet::kernels::Interpreter interp;
  if (interp.load(p, size).status != tinyfleet::kernels::LoadStatus::kOk) return 0;
  if (interp.arena_bytes() > (1u << 20)) return 0;
  std::vector<uint8_t> arena(interp.arena_bytes());
  if (interp.bind_arena(arena.data(), arena.size()).status != tinyfleet::kernels::LoadStatus::kOk) {
    return 0;
  }
  interp.invoke();
  return 0;
}
