// The labelled digits the reference firmware carries for its accuracy probes (as fleet-sim
// --probe-every runs over digits_val.npz): the first COUNT samples of an .npz's `x` (NHWC
// floats, the compiled graph's layout) and `y`, written little-endian as
//   u32 count, u32 floats per sample, then per sample: i32 label, the floats.
//   make_probe_samples NPZ COUNT OUT
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "tinyfleet/optimizer_service/npz.h"

namespace os = tinyfleet::optimizer_service;

namespace {
template <typename T>
void put(std::ofstream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: make_probe_samples NPZ COUNT OUT\n");
    return 2;
  }
  auto npz = os::read_npz(argv[1]);
  if (!npz || !npz->count("x") || !npz->count("y")) {
    std::fprintf(stderr, "make_probe_samples: %s has no x and y\n", argv[1]);
    return 1;
  }
  const auto& x = npz->at("x");
  const auto& y = npz->at("y");
  const int64_t count = std::min<int64_t>(std::stoll(argv[2]), x.shape[0]);
  if (count <= 0 || static_cast<int64_t>(y.values.size()) < count) {
    std::fprintf(stderr, "make_probe_samples: no samples\n");
    return 1;
  }
  std::ofstream out(argv[3], std::ios::binary);
  const auto first = os::nhwc_sample(x, 0);
  put<uint32_t>(out, static_cast<uint32_t>(count));
  put<uint32_t>(out, static_cast<uint32_t>(first.size()));
  for (int64_t i = 0; i < count; ++i) {
    const auto s = os::nhwc_sample(x, i);
    put<int32_t>(out, static_cast<int32_t>(y.values[static_cast<size_t>(i)]));
    for (float f : s) put<float>(out, f);
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "make_probe_samples: cannot write %s\n", argv[3]);
    return 1;
  }
  std::printf("make_probe_samples: %lld samples of %zu floats\n", static_cast<long long>(count),
              first.size());
  return 0;
}
