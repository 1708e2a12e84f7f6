// Concatenation, Pad and the strided copy: bytes moved, identical for every build (no opt:: twin).
#include "tinyfleet/kernels/ops/data_movement.h"

#include <cstring>

namespace tinyfleet::kernels {

namespace {
int32_t dim(const Dims& d, int32_t axis) {
  const int32_t v[4] = {d.n, d.h, d.w, d.c};
  return v[axis];
}
}  // namespace

Status concatenation(int32_t axis, int32_t count, const Dims* input_dims, const void* const* inputs,
                     size_t element_size, const Dims& output_dims, void* output) {
  if (axis < 0 || axis > 3 || count <= 0 || element_size == 0) return Status::kBadParams;
  int32_t total = 0;
  for (int32_t k = 0; k < count; ++k) {
    for (int32_t a = 0; a < 4; ++a) {
      if (a != axis && dim(input_dims[k], a) != dim(output_dims, a)) return Status::kBadShape;
    }
    total += dim(input_dims[k], axis);
  }
  if (total != dim(output_dims, axis)) return Status::kBadShape;
  int64_t outer = 1, inner = 1;
  for (int32_t a = 0; a < axis; ++a) outer *= dim(output_dims, a);
  for (int32_t a = axis + 1; a < 4; ++a) inner *= dim(output_dims, a);
  auto* out = static_cast<uint8_t*>(output);
  for (int64_t o = 0; o < outer; ++o) {
    for (int32_t k = 0; k < count; ++k) {
      const size_t bytes = static_cast<size_t>(dim(input_dims[k], axis) * inner) * element_size;
      std::memcpy(out, static_cast<const uint8_t*>(inputs[k]) + o * bytes, bytes);
      out += bytes;
    }
  }
  return Status::kOk;
}

Status pad(const PadParams& p, const Dims& in, const void* input, size_t element_size,
           const void* value, const Dims& out, void* output) {
  const int32_t ind[4] = {in.n, in.h, in.w, in.c};
  const int32_t outd[4] = {out.n, out.h, out.w, out.c};
  for (int a = 0; a < 4; ++a) {
    if (p.before[a] < 0 || p.after[a] < 0 || ind[a] + p.before[a] + p.after[a] != outd[a]) {
      return Status::kBadShape;
    }
  }
  auto* dst = static_cast<uint8_t*>(output);
  const auto* src = static_cast<const uint8_t*>(input);
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t y = 0; y < out.h; ++y) {
      for (int32_t x = 0; x < out.w; ++x) {
        for (int32_t c = 0; c < out.c; ++c) {
          const int32_t ib = b - p.before[0], iy = y - p.before[1], ix = x - p.before[2],
                        ic = c - p.before[3];
          const bool inside = ib >= 0 && ib < in.n && iy >= 0 && iy < in.h && ix >= 0 &&
                              ix < in.w && ic >= 0 && ic < in.c;
          const void* from =
              inside ? src + (((static_cast<int64_t>(ib) * in.h + iy) * in.w + ix) * in.c + ic) *
                                 element_size
                     : value;
          std::memcpy(dst, from, element_size);
          dst += element_size;
        }
      }
    }
  }
  return Status::kOk;
}

bool strided_copy_span(const StridedCopyParams& p, int64_t* lowest, int64_t* highest) {
  int64_t lo = p.offset, hi = p.offset;
  for (int d = 0; d < 4; ++d) {
    if (p.count[d] < 1) return false;
    const int64_t reach = int64_t{p.count[d] - 1} * p.step[d];
    (reach < 0 ? lo : hi) += reach;
  }
  *lowest = lo;
  *highest = hi;
  return true;
}

Status strided_copy(const StridedCopyParams& p, int64_t input_elements, const void* input,
                    size_t element_size, void* output) {
  int64_t lo = 0, hi = 0;
  if (!strided_copy_span(p, &lo, &hi) || lo < 0 || hi >= input_elements || element_size == 0) {
    return Status::kBadParams;
  }
  const auto* src = static_cast<const uint8_t*>(input);
  auto* dst = static_cast<uint8_t*>(output);
  for (int32_t a = 0; a < p.count[0]; ++a) {
    for (int32_t b = 0; b < p.count[1]; ++b) {
      for (int32_t c = 0; c < p.count[2]; ++c) {
        int64_t at =
            p.offset + int64_t{a} * p.step[0] + int64_t{b} * p.step[1] + int64_t{c} * p.step[2];
        for (int32_t d = 0; d < p.count[3]; ++d, at += p.step[3]) {
          std::memcpy(dst, src + at * static_cast<int64_t>(element_size), element_size);
          dst += element_size;
        }
      }
    }
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels
