#include "tinyfleet/kernels/ops/in_place.h"

#include <algorithm>
#include <limits>

namespace tinyfleet::kernels {

int64_t overlap_distance(const Dims& input, const Dims& output, const WindowGeometry& window,
                         size_t element_size) {
  if (input.n != 1 || output.n != 1 || window.stride_h < 1 || window.stride_w < 1) return -1;
  const int64_t in_pixel = int64_t{input.c} * static_cast<int64_t>(element_size);
  const int64_t out_pixel = int64_t{output.c} * static_cast<int64_t>(element_size);
  auto lo_row = [&](int64_t r) {
    return std::clamp<int64_t>(r * window.stride_h - window.pad_top, 0, input.h);
  };
  int64_t d = 0;
  for (int64_t r = 0; r < output.h; ++r) {
    const int64_t next_row =
        r + 1 < output.h ? lo_row(r + 1) * input.w : std::numeric_limits<int64_t>::max();
    for (int64_t c = 0; c < output.w; ++c) {
      const int64_t lo_col = std::clamp<int64_t>(c * window.stride_w - window.pad_left, 0, input.w);
      const int64_t still_read = std::min(lo_row(r) * input.w + lo_col, next_row);
      d = std::max(d, (r * output.w + c + 1) * out_pixel - still_read * in_pixel);
    }
  }
  return d;
}

}  // namespace tinyfleet::kernels
