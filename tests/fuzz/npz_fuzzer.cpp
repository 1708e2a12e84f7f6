// Arbitrary bytes as an operator's calibration or validation data: parse_npz and
// parse_npy return arrays or an error, never crash, never allocate past the limits, and
// every array they return holds exactly as many values as its shape says.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/optimizer_service/npz.h"

namespace {

void check(const tinyfleet::optimizer_service::NpyArray& a) {
  if (a.shape.empty() || static_cast<uint64_t>(a.size()) != a.values.size()) std::abort();
  for (int64_t i = 0; i < 3 && i < a.shape[0]; ++i) {
    (void)tinyfleet::optimizer_service::nhwc_sample(a, i);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tinyfleet::optimizer_service;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  NpzLimits limits;
  limits.max_entry_bytes = 1 << 20;
  limits.max_total_bytes = 4 << 20;
  if (auto z = parse_npz(bytes, limits)) {
    for (const auto& [name, a] : *z) check(a);
  }
  if (auto a = parse_npy(bytes, "fuzz")) check(*a);
  return 0;
}
