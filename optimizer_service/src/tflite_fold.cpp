// Layout operators folded before the int8 and float paths map a TFLite model
// (tflite_import.h): SQUEEZE, TRANSPOSE, STRIDED_SLICE and RESHAPE of constants; TRANSPOSE
// and STRIDED_SLICE that move an activation's elements left as gathers.
#include <cstring>

#include "tflite_common.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service {

namespace {

using namespace tflite_common;

size_t element_size(int type) {
  switch (type) {
    case kTfliteFloat32:
    case kTfliteInt32:
      return 4;
    case kTfliteInt8:
      return 1;
    default:
      return 0;
  }
}

// A constant int32 vector operand (perm, begin, end, strides) of `rank` values.
Result<std::vector<int32_t>> int_operand(const TfliteModel& m, const TfliteOperator& o, size_t k,
                                         size_t rank, const char* what) {
  if (o.inputs.size() <= k || o.inputs[k] < 0) {
    return CompileError{o.name + ": needs its " + what + " operand"};
  }
  const TfliteTensor& t = m.tensors[static_cast<size_t>(o.inputs[k])];
  if (t.type != kTfliteInt32 || t.data.empty() || static_cast<size_t>(t.elements()) != rank) {
    return CompileError{o.name + ": " + what + " must be a constant int32 vector of " +
                        std::to_string(rank) + " values"};
  }
  std::vector<int32_t> v(rank);
  std::memcpy(v.data(), t.data.data(), rank * 4);
  return v;
}

// Row-major strides of `shape`.
std::vector<int64_t> strides_of(const std::vector<int32_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

// Writes the elements of `in` at the flat offsets `from` (in output order) to `out`.
void gather(const TfliteTensor& in, const std::vector<int64_t>& from, TfliteTensor& out) {
  const size_t es = element_size(in.type);
  out.data.resize(from.size() * es);
  for (size_t i = 0; i < from.size(); ++i) {
    std::memcpy(&out.data[i * es], &in.data[static_cast<size_t>(from[i]) * es], es);
  }
}

// Every output index of `shape` as the input's flat offset `base + sum(idx[d] * step[d])`.
std::vector<int64_t> offsets(const std::vector<int32_t>& shape, int64_t base,
                             const std::vector<int64_t>& step) {
  int64_t n = 1;
  for (int32_t d : shape) n *= d;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<int32_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = base;
    for (size_t d = 0; d < shape.size(); ++d) off += idx[d] * step[d];
    out.push_back(off);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// The gather over `counts` (row-major) with input steps `step` from `base`, as the
// kernels' 4-d strided copy: extents of 1 dropped, the rest right-aligned (rank <= 4).
kernels::StridedCopyParams copy_params(const std::vector<int32_t>& counts, int64_t base,
                                       const std::vector<int64_t>& step) {
  kernels::StridedCopyParams p;
  p.offset = static_cast<int32_t>(base);
  int d = 4;
  for (size_t i = counts.size(); i-- > 0;) {
    if (counts[i] == 1 || d == 0) continue;
    --d;
    p.count[d] = counts[i];
    p.step[d] = static_cast<int32_t>(step[i]);
  }
  return p;
}

// The quantization of a folded constant: the input's, per-channel dimension moved.
Result<bool> carry_quantization(const TfliteOperator& o, const TfliteTensor& in, int32_t new_qdim,
                                TfliteTensor& out) {
  if (in.scale.size() > 1 && new_qdim < 0) {
    return CompileError{o.name + ": moves or slices the per-channel dimension of '" + in.name +
                        "'"};
  }
  if (out.scale.empty()) {
    out.scale = in.scale;
    out.zero_point = in.zero_point;
  } else if (out.scale.size() != in.scale.size()) {
    return CompileError{o.name + ": output quantization differs from the input's"};
  }
  if (in.scale.size() > 1) out.quantized_dimension = new_qdim;
  return true;
}

// TRANSPOSE: out dimension i is input dimension perm[i].
// Of a constant: folded (*dropped); of an activation: true when elements move (o.copy
// set, the operator kept), false when it is a RESHAPE. Likewise strided_slice.
Result<bool> transpose(TfliteModel& m, TfliteOperator& o, bool* dropped) {
  const TfliteTensor& in = m.tensors[static_cast<size_t>(o.inputs[0])];
  TfliteTensor& out = m.tensors[static_cast<size_t>(o.outputs[0])];
  const size_t rank = in.shape.size();
  auto perm = int_operand(m, o, 1, rank, "perm");
  if (!perm) return perm.error();
  std::vector<bool> seen(rank, false);
  std::vector<int32_t> shape;
  for (int32_t p : *perm) {
    if (p < 0 || static_cast<size_t>(p) >= rank || seen[static_cast<size_t>(p)]) {
      return CompileError{o.name + ": perm is not a permutation of 0.." + std::to_string(rank - 1)};
    }
    seen[static_cast<size_t>(p)] = true;
    shape.push_back(in.shape[static_cast<size_t>(p)]);
  }
  if (shape != out.shape) return CompileError{o.name + ": output shape differs from the perm's"};
  const auto in_strides = strides_of(in.shape);
  std::vector<int64_t> step;
  int32_t qdim = -1;
  for (size_t i = 0; i < rank; ++i) {
    step.push_back(in_strides[static_cast<size_t>((*perm)[i])]);
    if ((*perm)[i] == in.quantized_dimension) qdim = static_cast<int32_t>(i);
  }
  if (in.data.empty()) {
    int32_t last = -1;
    bool in_order = true;
    for (int32_t p : *perm) {
      if (in.shape[static_cast<size_t>(p)] == 1) continue;
      in_order = in_order && p > last;
      last = p;
    }
    if (!in_order) o.copy = copy_params(out.shape, 0, step);
    return !in_order;  // kept as a gather, or a RESHAPE
  }
  if (auto r = carry_quantization(o, in, qdim, out); !r) return r;
  gather(in, offsets(out.shape, 0, step), out);
  *dropped = true;
  return true;
}

// TFLite's StartForAxis / StopForAxis for one dimension (in int64: the operands are
// the file's). count 0: empty or out of range.
struct Span {
  int64_t start, count, stride;
};
Span slice_span(const TfliteOperator& o, int d, int64_t dim, int64_t begin, int64_t end,
                int64_t stride) {
  const bool shrink = (o.shrink_axis_mask >> d) & 1;
  auto clamp = [&](int64_t v, bool pos) {
    if (v < 0) v += dim;
    return pos ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
  };
  if (shrink) {
    const int64_t s = begin < 0 ? begin + dim : begin;
    return {s, s >= 0 && s < dim ? 1 : 0, 1};
  }
  const bool pos = stride > 0;
  const int64_t s = ((o.begin_mask >> d) & 1) ? (pos ? 0 : dim - 1) : clamp(begin, pos);
  const int64_t e =
      ((o.end_mask >> d) & 1) ? (pos ? dim : -1) : clamp(o.slice_offset ? begin + end : end, pos);
  const int64_t span = pos ? e - s : s - e;
  const int64_t step = pos ? stride : -stride;
  return {s, span <= 0 ? 0 : (span + step - 1) / step, stride};
}

Result<bool> strided_slice(TfliteModel& m, TfliteOperator& o, bool* dropped) {
  const TfliteTensor& in = m.tensors[static_cast<size_t>(o.inputs[0])];
  TfliteTensor& out = m.tensors[static_cast<size_t>(o.outputs[0])];
  if (o.ellipsis_mask != 0 || o.new_axis_mask != 0) {
    return CompileError{o.name + ": ellipsis and new-axis masks are not supported"};
  }
  const size_t rank = in.shape.size();
  auto begin = int_operand(m, o, 1, rank, "begin");
  if (!begin) return begin.error();
  auto end = int_operand(m, o, 2, rank, "end");
  if (!end) return end.error();
  auto stride = int_operand(m, o, 3, rank, "strides");
  if (!stride) return stride.error();
  std::vector<int32_t> kept, full;
  bool everything = true;
  int64_t base = 0;
  std::vector<int64_t> step;
  const auto in_strides = strides_of(in.shape);
  int32_t qdim = in.quantized_dimension;
  for (size_t d = 0; d < rank; ++d) {
    if ((*stride)[d] == 0) return CompileError{o.name + ": a stride of 0"};
    const Span s =
        slice_span(o, static_cast<int>(d), in.shape[d], (*begin)[d], (*end)[d], (*stride)[d]);
    if (s.count < 1) return CompileError{o.name + ": an empty or out-of-range slice"};
    everything = everything &&
                 (in.shape[d] == 1 || (s.start == 0 && s.count == in.shape[d] && s.stride == 1));
    if (s.count != in.shape[d] && static_cast<int32_t>(d) == in.quantized_dimension) qdim = -1;
    base += s.start * in_strides[d];
    full.push_back(static_cast<int32_t>(s.count));
    step.push_back(s.stride * in_strides[d]);
    if (!((o.shrink_axis_mask >> d) & 1)) kept.push_back(static_cast<int32_t>(s.count));
  }
  int64_t n = 1;
  for (int32_t c : kept) n *= c;
  if (n != out.elements()) return CompileError{o.name + ": output shape differs from the slice's"};
  if (in.data.empty()) {
    if (!everything) o.copy = copy_params(full, base, step);
    return !everything;  // kept as a gather, or a RESHAPE
  }
  if (auto r = carry_quantization(o, in, qdim, out); !r) return r;
  gather(in, offsets(full, base, step), out);
  *dropped = true;
  return true;
}

// RESHAPE or SQUEEZE: of a constant, folded (the data is the same); of an activation,
// a RESHAPE (false: nothing moves).
Result<bool> reshape(TfliteModel& m, TfliteOperator& o, bool* dropped) {
  const TfliteTensor& in = m.tensors[static_cast<size_t>(o.inputs[0])];
  if (in.data.empty()) return false;
  TfliteTensor& out = m.tensors[static_cast<size_t>(o.outputs[0])];
  if (auto q = carry_quantization(o, in, in.scale.size() > 1 ? -1 : 0, out); !q) return q;
  out.data = in.data;
  *dropped = true;
  return false;
}

// One function per layout operator: true when elements move (kept as the runtime's
// gather), *dropped when folded into a constant, else the operator becomes a RESHAPE.
struct LayoutFold {
  int32_t code;
  Result<bool> (*fn)(TfliteModel&, TfliteOperator&, bool* dropped);
};
constexpr LayoutFold kLayoutFolds[] = {
    {kSqueeze, reshape},
    {kReshape, reshape},
    {kTranspose, transpose},
    {kStridedSlice, strided_slice},
};

}  // namespace

Result<TfliteModel> fold_tflite_layout(const TfliteModel& model) {
  TfliteModel m = model;
  std::vector<TfliteOperator> kept;
  for (TfliteOperator o : m.operators) {
    const LayoutFold* fold = nullptr;
    for (const auto& f : kLayoutFolds)
      if (f.code == o.code) fold = &f;
    if (!fold) {
      kept.push_back(std::move(o));
      continue;
    }
    if (o.inputs.empty() || o.inputs[0] < 0 || o.outputs.size() != 1) {
      return CompileError{o.name + ": input or output count"};
    }
    const TfliteTensor& in = m.tensors[static_cast<size_t>(o.inputs[0])];
    TfliteTensor& out = m.tensors[static_cast<size_t>(o.outputs[0])];
    if (in.type != out.type || element_size(in.type) == 0) {
      return CompileError{o.name + ": input and output types differ or are not int8/int32/float32"};
    }
    if (in.elements() < out.elements() ||
        (o.code != kStridedSlice && in.elements() != out.elements())) {
      return CompileError{o.name + ": changes the element count"};
    }
    bool dropped = false;
    Result<bool> r = fold->fn(m, o, &dropped);
    if (!r) return r.error();
    if (*r && !dropped) {  // elements move: the runtime's Transpose or StridedSlice
      o.inputs.resize(1);
      kept.push_back(std::move(o));
      continue;
    }
    if (dropped) {
      for (int32_t t : m.outputs) {
        if (t == o.outputs[0]) return CompileError{o.name + ": the graph output is a constant"};
      }
      continue;
    }
    o.code = kReshape;
    o.inputs.resize(1);
    kept.push_back(std::move(o));
  }
  m.operators = std::move(kept);
  return m;
}

}  // namespace tinyfleet::optimizer_service
