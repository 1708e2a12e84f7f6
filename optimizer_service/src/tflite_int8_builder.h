#pragma once

// What the int8 path's operator functions share: the model being mapped, the artifact's
// spec and the memory planner's graph being built (tflite_int8.cpp maps, plans and
// writes; tflite_int8_ops.cpp holds the table, reduction and data-movement operators).
#include <cstring>
#include <string>
#include <vector>

#include "tflite_common.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/graph.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service::tflite_int8 {

namespace k = tinyfleet::kernels;
namespace fa = tinyfleet::artifact;
using namespace tflite_common;

template <class T>
std::vector<T> values_of(const std::string& bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

using Status = Result<bool>;

struct Builder {
  const TfliteModel& m;
  CompileReport& rep;
  Graph g;  // the topology, for the memory planner
  k::ModelSpec spec;
  std::vector<int> graph_index;      // TFLite tensor -> g tensor
  std::vector<int32_t> spec_index;   // TFLite tensor -> spec tensor (activations)
  std::vector<uint32_t> elem_bytes;  // per g tensor
  uint32_t scratch = 0;

  Builder(const TfliteModel& model, CompileReport& r)
      : m(model),
        rep(r),
        graph_index(model.tensors.size(), -1),
        spec_index(model.tensors.size(), -1) {}

  const TfliteTensor& tensor(int32_t t) const { return m.tensors[static_cast<size_t>(t)]; }

  int graph_tensor(int32_t t) {
    auto& gi = graph_index[static_cast<size_t>(t)];
    if (gi < 0) {
      Tensor x;
      x.name = tensor(t).name;
      x.dims = dims_of(tensor(t).shape);
      x.constant = !tensor(t).data.empty();
      gi = g.add_tensor(std::move(x));
      elem_bytes.push_back(tensor(t).type == kTfliteFloat32 ? 4 : 1);
    }
    return gi;
  }

  // The one (scale, zero point) of an int8 (or float, at the edges) activation.
  Result<k::TensorQuant> quant(int32_t t, const std::string& op) const {
    const TfliteTensor& x = tensor(t);
    if (x.scale.size() != 1 || x.zero_point[0] < -128 || x.zero_point[0] > 127) {
      return CompileError{op + ": tensor '" + x.name +
                          "' needs one int8 scale and zero point (per-tensor quantization)"};
    }
    return k::TensorQuant{x.scale[0], static_cast<int32_t>(x.zero_point[0])};
  }

  Result<int32_t> activation(int32_t t, const std::string& op) {
    const TfliteTensor& x = tensor(t);
    if (!x.data.empty()) return CompileError{op + ": tensor '" + x.name + "' must not be constant"};
    if (spec_index[static_cast<size_t>(t)] >= 0) return spec_index[static_cast<size_t>(t)];
    k::TensorSpec s;
    s.name = x.name;
    s.dims = dims_of(x.shape);
    if (x.type == kTfliteFloat32) {
      s.type = fa::TensorType_Float32;
    } else if (x.type == kTfliteInt8) {
      auto q = quant(t, op);
      if (!q) return q.error();
      s.scale = {q->scale};
      s.zero_point = {q->zero_point};
    } else {
      return CompileError{op + ": tensor '" + x.name + "' is neither int8 nor float32"};
    }
    graph_tensor(t);
    spec_index[static_cast<size_t>(t)] = static_cast<int32_t>(spec.tensors.size());
    spec.tensors.push_back(std::move(s));
    return spec_index[static_cast<size_t>(t)];
  }

  int32_t constant(k::TensorSpec s) {
    rep.weight_bytes += s.data.size();
    spec.tensors.push_back(std::move(s));
    return static_cast<int32_t>(spec.tensors.size()) - 1;
  }
};

// Operators that move or compare bytes: TFLM requires (pooling) or assumes (reshape) one
// quantization at input and output.
inline Status same_quantization(const Builder& b, const TfliteOperator& o) {
  auto qx = b.quant(o.inputs[0], o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  if (*qx != *qy) return CompileError{o.name + ": input and output quantization differ"};
  return true;
}

// One function per operator (tflite_int8_ops.cpp), as the ones in tflite_int8.cpp.
Status lookup(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n);
Status mean(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n);
Status pad(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n);
Status concatenation(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n);
Status strided_copy(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n);

}  // namespace tinyfleet::optimizer_service::tflite_int8
