// An artifact copied to a 16-byte aligned buffer, loaded on the kernels' runtime with an
// arena of its own, run on int8 input: what the optimizer tests check compiled models with.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::testing {

struct LoadedArtifact {
  std::vector<uint8_t> bytes, arena;
  kernels::Interpreter interp;
  explicit LoadedArtifact(const std::string& artifact) {
    bytes.resize(artifact.size() + 16);
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, artifact.data(), artifact.size());
    const auto err = interp.load(a, artifact.size());
    EXPECT_EQ(err.status, kernels::LoadStatus::kOk) << err.what;
    arena.resize(interp.arena_bytes());
    interp.bind_arena(arena.data(), arena.size());
  }
  // Output 0 for `input` (written to input 0).
  std::vector<int8_t> run(const std::vector<int8_t>& input) {
    std::memcpy(interp.input(0).data, input.data(), input.size());
    EXPECT_EQ(interp.invoke().status, kernels::LoadStatus::kOk);
    const auto o = interp.output(0);
    const auto* p = static_cast<const int8_t*>(o.data);
    return {p, p + o.bytes};
  }
};

}  // namespace tinyfleet::testing
