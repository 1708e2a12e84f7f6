#pragma once

// Stands in for the kernels runtime in the update state-machine tests until the
// runtime (issue 4) lands: its output is a fixed function of the artifact bytes and
// the input, so a self-test passes only for the artifact the vectors were made from.
#include <unistd.h>

#include <cstring>
#include <string>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::testing {

class StandInRunner final : public device_agent::ModelRunner {
 public:
  static constexpr size_t kIn = 8;
  static constexpr size_t kOut = 8;

  bool load(const uint8_t* artifact, size_t size, const char** reason) override {
    if (size < kOut) {
      *reason = "artifact too small";
      return false;
    }
    artifact_.assign(reinterpret_cast<const char*>(artifact), size);
    return true;
  }
  size_t input_bytes() const override { return kIn; }
  size_t output_bytes() const override { return kOut; }
  bool run(const int8_t* input, int8_t* output) override {
    ++runs;
    while (!hangs_on.empty() && artifact_ == hangs_on) pause();  // a model that never returns
    for (size_t i = 0; i < kOut; ++i) output[i] = expected(artifact_, input, i);
    return true;
  }
  // Depends on every byte of the artifact (FNV-1a), so any change shows.
  static int8_t expected(const std::string& artifact, const int8_t* input, size_t i) {
    uint64_t h = 1469598103934665603ull;
    for (char c : artifact) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    return static_cast<int8_t>(static_cast<uint8_t>(h >> (i * 8)) ^ input[i % kIn]);
  }
  // The self-test vector a server would ship for `artifact`.
  static std::pair<std::string, std::string> vector_for(const std::string& artifact) {
    std::string in(kIn, '\0'), out(kOut, '\0');
    for (size_t i = 0; i < kIn; ++i) in[i] = static_cast<char>(i * 37 + 5);
    for (size_t i = 0; i < kOut; ++i) {
      out[i] = static_cast<char>(expected(artifact, reinterpret_cast<const int8_t*>(in.data()), i));
    }
    return {in, out};
  }

  std::string artifact_;
  std::string hangs_on;  // run() on this artifact hangs (until the watchdog resets)
  int runs = 0;
};

}  // namespace tinyfleet::testing
