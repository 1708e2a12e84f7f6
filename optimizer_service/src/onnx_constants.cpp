#include "onnx_constants.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>

namespace tinyfleet::optimizer_service::onnx_import_detail {

namespace {

int64_t count(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

// The element count of a shape, or -1 if an extent is negative or the count exceeds
// kMaxConstantElements (checked before anything is allocated).
int64_t bounded_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMaxConstantElements / d)) return -1;
    n *= d;
  }
  return n;
}

template <class T>
bool copy_raw(const std::string& raw, std::vector<float>* out) {
  if (raw.size() != out->size() * sizeof(T)) return false;
  for (size_t i = 0; i < out->size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    (*out)[i] = static_cast<float>(v);
  }
  return true;
}

template <class Field>
bool copy_field(const Field& f, std::vector<float>* out) {
  if (static_cast<size_t>(f.size()) != out->size()) return false;
  for (size_t i = 0; i < out->size(); ++i) (*out)[i] = static_cast<float>(f[static_cast<int>(i)]);
  return true;
}

int64_t attr_i(const onnx::NodeProto& n, const char* name, int64_t dflt) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return dflt;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  return {};
}
std::vector<int64_t> as_ints(const Raw& r) {
  std::vector<int64_t> v;
  for (float f : r.values) v.push_back(as_int(f));
  return v;
}
int64_t norm_axis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

// Element-wise with NumPy broadcasting.
Result<Raw> broadcast(const Raw& a, const Raw& b, const std::function<float(float, float)>& f) {
  const size_t rank = std::max(a.shape.size(), b.shape.size());
  std::vector<int64_t> sa(rank, 1), sb(rank, 1), so(rank, 1);
  std::copy(a.shape.begin(), a.shape.end(), sa.begin() + static_cast<long>(rank - a.shape.size()));
  std::copy(b.shape.begin(), b.shape.end(), sb.begin() + static_cast<long>(rank - b.shape.size()));
  for (size_t i = 0; i < rank; ++i) {
    if (sa[i] != sb[i] && sa[i] != 1 && sb[i] != 1) {
      return CompileError{"constant shapes do not broadcast"};
    }
    so[i] = std::max(sa[i], sb[i]);
  }
  if (bounded_count(so) < 0) return CompileError{"a folded constant is too large"};
  Raw r;
  r.shape = so;
  r.values.resize(static_cast<size_t>(count(so)));
  std::vector<int64_t> idx(rank, 0);
  for (size_t k = 0; k < r.values.size(); ++k) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < rank; ++d) {
      ia = ia * sa[d] + (sa[d] == 1 ? 0 : idx[d]);
      ib = ib * sb[d] + (sb[d] == 1 ? 0 : idx[d]);
    }
    r.values[k] = f(a.values[static_cast<size_t>(ia)], b.values[static_cast<size_t>(ib)]);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < so[d]) break;
      idx[d] = 0;
    }
  }
  return r;
}

Result<Raw> transpose(const Raw& x, std::vector<int64_t> perm) {
  const size_t rank = x.shape.size();
  if (perm.empty()) {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  if (perm.size() != rank) return CompileError{"perm does not match the rank"};
  Raw r;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank)) return CompileError{"perm out of range"};
    r.shape.push_back(x.shape[static_cast<size_t>(p)]);
  }
  std::vector<int64_t> stride(rank, 1);
  for (size_t d = rank; d-- > 1;) stride[d - 1] = stride[d] * x.shape[d];
  r.values.resize(x.values.size());
  std::vector<int64_t> idx(rank, 0);
  for (size_t k = 0; k < r.values.size(); ++k) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) src += idx[d] * stride[static_cast<size_t>(perm[d])];
    r.values[k] = x.values[static_cast<size_t>(src)];
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < r.shape[d]) break;
      idx[d] = 0;
    }
  }
  return r;
}

Result<Raw> concat(const std::vector<const Raw*>& in, int64_t axis_attr) {
  const Raw& first = *in.at(0);
  const size_t rank = first.shape.size();
  const int64_t axis = norm_axis(axis_attr, rank);
  if (axis < 0 || axis >= static_cast<int64_t>(rank)) return CompileError{"axis out of range"};
  Raw r;
  r.shape = first.shape;
  r.shape[static_cast<size_t>(axis)] = 0;
  for (const Raw* x : in) {
    if (x->shape.size() != rank) return CompileError{"inputs differ in rank"};
    for (size_t d = 0; d < rank; ++d) {
      if (static_cast<int64_t>(d) != axis && x->shape[d] != first.shape[d]) {
        return CompileError{"inputs differ in shape outside the axis"};
      }
    }
    r.shape[static_cast<size_t>(axis)] += x->shape[static_cast<size_t>(axis)];
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= first.shape[static_cast<size_t>(d)];
  for (int64_t o = 0; o < outer; ++o) {
    for (const Raw* x : in) {
      const int64_t block = count(x->shape) / std::max<int64_t>(outer, 1);
      r.values.insert(r.values.end(), x->values.begin() + o * block,
                      x->values.begin() + (o + 1) * block);
    }
  }
  return r;
}

Result<Raw> reshape(const Raw& x, const std::vector<int64_t>& spec) {
  Raw r = x;
  r.shape.clear();
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t v = spec[i] == 0 && i < x.shape.size() ? x.shape[i] : spec[i];
    if (v < -1 || v > kMaxConstantElements) return CompileError{"reshape to an invalid extent"};
    if (v == -1) {
      infer = static_cast<int64_t>(i);
    } else {
      known *= v;
      if (known > kMaxConstantElements) return CompileError{"reshape to too many elements"};
    }
    r.shape.push_back(v);
  }
  if (infer >= 0 && known > 0) r.shape[static_cast<size_t>(infer)] = count(x.shape) / known;
  if (count(r.shape) != count(x.shape)) return CompileError{"reshape changes the element count"};
  return r;
}

// Per tensor (one scale) or per axis (a scale per index of `axis`).
Result<Raw> dequantize(const onnx::NodeProto& n, const Raw& x, const Raw& scale, const Raw* zp) {
  const size_t channels = scale.values.size();
  if (zp && zp->values.size() != channels) {
    return CompileError{"the zero point and the scale differ in size"};
  }
  int64_t inner = 1;
  if (channels != 1) {
    const int64_t axis = norm_axis(attr_i(n, "axis", 1), x.shape.size());
    if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size()) ||
        x.shape[static_cast<size_t>(axis)] != static_cast<int64_t>(channels)) {
      return CompileError{"per-axis scales do not match the axis"};
    }
    for (size_t d = static_cast<size_t>(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  }
  Raw r;
  r.shape = x.shape;
  r.values.resize(x.values.size());
  for (size_t i = 0; i < x.values.size(); ++i) {
    const size_t c = (i / static_cast<size_t>(inner)) % channels;
    r.values[i] = (x.values[i] - (zp ? zp->values[c] : 0.0f)) * scale.values[c];
  }
  return r;
}

}  // namespace

Result<Raw> to_raw(const onnx::TensorProto& t) {
  Raw r;
  r.shape.assign(t.dims().begin(), t.dims().end());
  r.type = t.data_type();
  const int64_t n = bounded_count(r.shape);
  if (n < 0) {
    return CompileError{"initializer '" + t.name() + "' has a negative extent or more than " +
                        std::to_string(kMaxConstantElements) + " elements"};
  }
  if (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL) {
    return CompileError{"initializer '" + t.name() + "' is stored outside the model file"};
  }
  r.values.resize(static_cast<size_t>(n));
  const std::string& raw = t.raw_data();
  bool ok = false;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      ok = raw.empty() ? copy_field(t.float_data(), &r.values) : copy_raw<float>(raw, &r.values);
      break;
    case onnx::TensorProto::INT64:
      ok = raw.empty() ? copy_field(t.int64_data(), &r.values) : copy_raw<int64_t>(raw, &r.values);
      break;
    case onnx::TensorProto::INT32:
      ok = raw.empty() ? copy_field(t.int32_data(), &r.values) : copy_raw<int32_t>(raw, &r.values);
      break;
    case onnx::TensorProto::INT8:
      ok = raw.empty() ? copy_field(t.int32_data(), &r.values) : copy_raw<int8_t>(raw, &r.values);
      break;
    case onnx::TensorProto::UINT8:
      ok = raw.empty() ? copy_field(t.int32_data(), &r.values) : copy_raw<uint8_t>(raw, &r.values);
      break;
    default:
      return CompileError{"initializer '" + t.name() + "' has data type " +
                          std::to_string(t.data_type()) +
                          ", supported: float32, int64, int32, int8, uint8"};
  }
  if (!ok) return CompileError{"initializer '" + t.name() + "' holds fewer values than its shape"};
  return r;
}

namespace {

// One function per operator that folds on constants: the result, or nullopt when an input
// it needs is not a constant (the node then stays in the graph). `in` has at least one
// constant input, in[0].
using Folded = std::optional<Result<Raw>>;
using Inputs = std::vector<const Raw*>;

const Raw* arg(const Inputs& in, size_t i) { return i < in.size() ? in[i] : nullptr; }

Folded fold_identity(const onnx::NodeProto&, const Inputs& in) { return Result<Raw>(*in[0]); }

Folded fold_cast(const onnx::NodeProto& n, const Inputs& in) {
  Raw r = *in[0];
  r.type = static_cast<int32_t>(attr_i(n, "to", onnx::TensorProto::FLOAT));
  return Result<Raw>(r);
}

template <class F>
Folded fold_binary(const onnx::NodeProto&, const Inputs& in) {
  if (!arg(in, 1)) return std::nullopt;
  return broadcast(*in[0], *in[1], F());
}

Folded fold_transpose(const onnx::NodeProto& n, const Inputs& in) {
  return transpose(*in[0], attr_ints(n, "perm"));
}

Folded fold_concat(const onnx::NodeProto& n, const Inputs& in) {
  for (const Raw* r : in)
    if (!r) return std::nullopt;
  return concat(in, attr_i(n, "axis", 0));
}

Folded fold_reshape(const onnx::NodeProto&, const Inputs& in) {
  if (!arg(in, 1)) return std::nullopt;
  return reshape(*in[0], as_ints(*in[1]));
}

Folded fold_flatten(const onnx::NodeProto& n, const Inputs& in) {
  const Raw& x = *in[0];
  const int64_t axis = norm_axis(attr_i(n, "axis", 1), x.shape.size());
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[static_cast<size_t>(d)];
  return reshape(x, {outer, -1});
}

// Squeeze and Unsqueeze: axes from input 1 (opset 13) or the attribute (before).
std::vector<int64_t> squeeze_axes(const onnx::NodeProto& n, const Inputs& in) {
  return arg(in, 1) ? as_ints(*in[1]) : attr_ints(n, "axes");
}

Folded fold_unsqueeze(const onnx::NodeProto& n, const Inputs& in) {
  std::vector<int64_t> axes = squeeze_axes(n, in);
  Raw r = *in[0];
  const size_t rank = r.shape.size() + axes.size();
  for (auto& a : axes) a = norm_axis(a, rank);
  std::sort(axes.begin(), axes.end());
  for (int64_t a : axes) {
    if (a < 0 || a > static_cast<int64_t>(r.shape.size())) {
      return Result<Raw>(CompileError{"unsqueeze axis out of range"});
    }
    r.shape.insert(r.shape.begin() + a, 1);
  }
  return Result<Raw>(r);
}

Folded fold_squeeze(const onnx::NodeProto& n, const Inputs& in) {
  const std::vector<int64_t> axes = squeeze_axes(n, in);
  const Raw& x = *in[0];
  Raw r = x;
  r.shape.clear();
  for (size_t d = 0; d < x.shape.size(); ++d) {
    const bool listed =
        std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end() ||
        std::find(axes.begin(), axes.end(),
                  static_cast<int64_t>(d) - static_cast<int64_t>(x.shape.size())) != axes.end();
    if (!(x.shape[d] == 1 && (axes.empty() || listed))) r.shape.push_back(x.shape[d]);
  }
  return Result<Raw>(r);
}

Folded fold_dequantize(const onnx::NodeProto& n, const Inputs& in) {
  if (!arg(in, 1)) return std::nullopt;
  return dequantize(n, *in[0], *in[1], arg(in, 2));
}

// Adding a foldable operator: its function above and a line here.
struct ConstantFold {
  const char* op;
  Folded (*fn)(const onnx::NodeProto&, const Inputs&);
};
const ConstantFold kFolds[] = {
    {"Identity", fold_identity},
    {"Dropout", fold_identity},
    {"Cast", fold_cast},
    {"Add", fold_binary<std::plus<float>>},
    {"Sub", fold_binary<std::minus<float>>},
    {"Mul", fold_binary<std::multiplies<float>>},
    {"Div", fold_binary<std::divides<float>>},
    {"Transpose", fold_transpose},
    {"Concat", fold_concat},
    {"Reshape", fold_reshape},
    {"Flatten", fold_flatten},
    {"Squeeze", fold_squeeze},
    {"Unsqueeze", fold_unsqueeze},
    {"DequantizeLinear", fold_dequantize},
};

}  // namespace

std::optional<Result<Raw>> fold_constant(const onnx::NodeProto& n,
                                         const std::vector<const Raw*>& in) {
  if (!arg(in, 0)) return std::nullopt;
  for (const auto& f : kFolds) {
    if (n.op_type() == f.op) return f.fn(n, in);
  }
  return std::nullopt;
}

}  // namespace tinyfleet::optimizer_service::onnx_import_detail
