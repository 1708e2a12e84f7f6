// Reads a .tflite FlatBuffer into TfliteModel with every index, size and scale checked
// (tflite_import.h). The generated reader comes from optimizer_service/schema/tflite.fbs.
#include <cmath>
#include <cstring>
#include <vector>

#include "tinyfleet/optimizer_service/tflite_generated.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service {

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 24;  // per tensor

// Bytes per element of the types whose constants the importer reads; 0: others.
size_t element_bytes(int type) {
  switch (type) {
    case tflite::TensorType_FLOAT32:
    case tflite::TensorType_INT32:
      return 4;
    case tflite::TensorType_INT8:
    case tflite::TensorType_UINT8:
    case tflite::TensorType_BOOL:
      return 1;
    case tflite::TensorType_INT16:
    case tflite::TensorType_FLOAT16:
      return 2;
    case tflite::TensorType_INT64:
    case tflite::TensorType_FLOAT64:
      return 8;
    default:
      return 0;
  }
}

// TFLM's GetBuiltinCode: the larger of the deprecated byte field and the int32 field.
int32_t builtin_code(const tflite::OperatorCode* oc) {
  return std::max<int32_t>(oc->deprecated_builtin_code(), static_cast<int32_t>(oc->builtin_code()));
}

Result<TfliteTensor> read_tensor(
    const tflite::Tensor* t, uint32_t index,
    const flatbuffers::Vector<flatbuffers::Offset<tflite::Buffer>>* buffers) {
  TfliteTensor out;
  if (!t) return CompileError{"tensor " + std::to_string(index) + ": missing"};
  out.name = t->name() ? t->name()->str() : "";
  const std::string what =
      "tensor " + std::to_string(index) + (out.name.empty() ? "" : " '" + out.name + "'");
  out.type = t->type();
  if (t->sparsity()) return CompileError{what + ": sparse tensors are not supported"};
  if (t->is_variable()) return CompileError{what + ": variable tensors are not supported"};
  if (t->shape()) {
    if (t->shape()->size() > 4) {
      return CompileError{what + ": rank " + std::to_string(t->shape()->size()) +
                          ", supported: 0 to 4"};
    }
    int64_t n = 1;
    for (int32_t d : *t->shape()) {
      if (d < 1) return CompileError{what + ": dimension " + std::to_string(d) + " (must be >= 1)"};
      n *= d;
      if (n > kMaxElements) {
        return CompileError{what + ": more than " + std::to_string(kMaxElements) + " elements"};
      }
      out.shape.push_back(d);
    }
  }
  if (t->buffer() >= buffers->size()) {
    return CompileError{what + ": buffer index " + std::to_string(t->buffer()) + " of " +
                        std::to_string(buffers->size())};
  }
  const tflite::Buffer* b = buffers->Get(t->buffer());
  if (b && (b->offset() > 1 || b->size() > 1)) {
    return CompileError{what +
                        ": data outside the FlatBuffer (a model over 2 GB) is not supported"};
  }
  if (b && b->data() && b->data()->size() > 0) {
    const size_t eb = element_bytes(out.type);
    if (eb == 0) {
      return CompileError{what + ": constant of type " +
                          std::string(tflite::EnumNameTensorType(t->type())) + " is not supported"};
    }
    const uint64_t want = static_cast<uint64_t>(out.elements()) * eb;
    if (b->data()->size() != want) {
      return CompileError{what + ": buffer holds " + std::to_string(b->data()->size()) +
                          " bytes, its shape needs " + std::to_string(want)};
    }
    out.data.assign(reinterpret_cast<const char*>(b->data()->data()), b->data()->size());
  }
  if (const auto* q = t->quantization()) {
    if (q->details_type() != tflite::QuantizationDetails_NONE) {
      return CompileError{what + ": custom quantization is not supported"};
    }
    const size_t ns = q->scale() ? q->scale()->size() : 0;
    const size_t nz = q->zero_point() ? q->zero_point()->size() : 0;
    if (ns != nz) {
      return CompileError{what + ": " + std::to_string(ns) + " scales but " + std::to_string(nz) +
                          " zero points"};
    }
    if (ns > 0) {
      const int32_t qd = q->quantized_dimension();
      if (ns > 1) {
        if (qd < 0 || static_cast<size_t>(qd) >= out.shape.size() ||
            static_cast<size_t>(out.shape[static_cast<size_t>(qd)]) != ns) {
          return CompileError{what + ": " + std::to_string(ns) +
                              " scales do not match quantized_dimension " + std::to_string(qd)};
        }
      }
      out.quantized_dimension = qd;
      for (size_t i = 0; i < ns; ++i) {
        const float s = q->scale()->Get(static_cast<flatbuffers::uoffset_t>(i));
        const int64_t z = q->zero_point()->Get(static_cast<flatbuffers::uoffset_t>(i));
        if (!std::isfinite(s) || s <= 0) {
          return CompileError{what + ": scale " + std::to_string(s) + " (must be finite and > 0)"};
        }
        if (z < -32768 || z > 65535) {
          return CompileError{what + ": zero point " + std::to_string(z) + " out of range"};
        }
        out.scale.push_back(s);
        out.zero_point.push_back(z);
      }
    }
  }
  return out;
}

// The options the importer uses, checked against the operator's code.
void read_options(const tflite::Operator* op, TfliteOperator& o) {
  if (const auto* c = op->builtin_options_as_Conv2DOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_CONV_2D;
    o.padding = c->padding();
    o.stride_h = c->stride_h();
    o.stride_w = c->stride_w();
    o.dilation_h = c->dilation_h_factor();
    o.dilation_w = c->dilation_w_factor();
    o.activation = c->fused_activation_function();
  } else if (const auto* d = op->builtin_options_as_DepthwiseConv2DOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_DEPTHWISE_CONV_2D;
    o.padding = d->padding();
    o.stride_h = d->stride_h();
    o.stride_w = d->stride_w();
    o.dilation_h = d->dilation_h_factor();
    o.dilation_w = d->dilation_w_factor();
    o.depth_multiplier = d->depth_multiplier();
    o.activation = d->fused_activation_function();
  } else if (const auto* p = op->builtin_options_as_Pool2DOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_AVERAGE_POOL_2D ||
                    o.code == tflite::BuiltinOperator_MAX_POOL_2D;
    o.padding = p->padding();
    o.stride_h = p->stride_h();
    o.stride_w = p->stride_w();
    o.filter_h = p->filter_height();
    o.filter_w = p->filter_width();
    o.activation = p->fused_activation_function();
  } else if (const auto* f = op->builtin_options_as_FullyConnectedOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_FULLY_CONNECTED;
    o.activation = f->fused_activation_function();
    o.weights_format = f->weights_format();
  } else if (const auto* s = op->builtin_options_as_SoftmaxOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_SOFTMAX;
    o.beta = s->beta();
  } else if (const auto* a = op->builtin_options_as_AddOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_ADD;
    o.activation = a->fused_activation_function();
  } else if (const auto* mu = op->builtin_options_as_MulOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_MUL;
    o.activation = mu->fused_activation_function();
  } else if (const auto* cat = op->builtin_options_as_ConcatenationOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_CONCATENATION;
    o.axis = cat->axis();
    o.activation = cat->fused_activation_function();
  } else if (const auto* r = op->builtin_options_as_ReducerOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_MEAN;
    o.keep_dims = r->keep_dims();
  } else if (const auto* ss = op->builtin_options_as_StridedSliceOptions()) {
    o.has_options = o.code == tflite::BuiltinOperator_STRIDED_SLICE;
    o.begin_mask = ss->begin_mask();
    o.end_mask = ss->end_mask();
    o.ellipsis_mask = ss->ellipsis_mask();
    o.new_axis_mask = ss->new_axis_mask();
    o.shrink_axis_mask = ss->shrink_axis_mask();
    o.slice_offset = ss->offset();
  }
}

// Dataflow in execution order: every activation an operator reads is a graph input or
// written by an earlier operator, and every tensor is written once.
Result<bool> check_dataflow(const TfliteModel& out) {
  std::vector<bool> written(out.tensors.size(), false);
  for (int32_t t : out.inputs) written[static_cast<size_t>(t)] = true;
  for (const auto& o : out.operators) {
    for (int32_t t : o.inputs) {
      if (t >= 0 && out.tensors[static_cast<size_t>(t)].data.empty() &&
          !written[static_cast<size_t>(t)]) {
        return CompileError{o.name + ": reads tensor " + std::to_string(t) +
                            " before anything writes it"};
      }
    }
    for (int32_t t : o.outputs) {
      if (written[static_cast<size_t>(t)] || !out.tensors[static_cast<size_t>(t)].data.empty()) {
        return CompileError{o.name + ": writes tensor " + std::to_string(t) +
                            ", a constant or a tensor already written"};
      }
      written[static_cast<size_t>(t)] = true;
    }
  }
  return true;
}

}  // namespace

bool is_tflite(const std::string& bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data() + 4, "TFL3", 4) == 0;
}

int64_t TfliteTensor::elements() const {
  int64_t n = 1;
  for (int32_t d : shape) n *= d;
  return n;
}

const char* tflite_operator_name(int32_t code) {
  if (code < tflite::BuiltinOperator_MIN || code > tflite::BuiltinOperator_MAX) return "UNKNOWN";
  const char* n = tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(code));
  return n && *n ? n : "UNKNOWN";
}

Result<TfliteModel> read_tflite(const std::string& bytes) {
  if (!is_tflite(bytes)) return CompileError{"not a TFLite model (no 'TFL3' file identifier)"};
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  // FlatBuffers' verifier: every offset, vector length and string inside the bytes.
  flatbuffers::Verifier verifier(data, bytes.size(), /*max_depth=*/64, /*max_tables=*/1000000);
  if (!tflite::VerifyModelBuffer(verifier)) {
    return CompileError{
        "the TFLite FlatBuffer does not verify (an offset or length out of bounds)"};
  }
  const tflite::Model* m = tflite::GetModel(data);
  if (m->version() != 3) {
    return CompileError{"TFLite schema version " + std::to_string(m->version()) + ", supported: 3"};
  }
  if (!m->subgraphs() || m->subgraphs()->size() == 0) return CompileError{"no subgraphs"};
  if (!m->operator_codes()) return CompileError{"no operator codes"};
  if (!m->buffers()) return CompileError{"no buffers"};
  const tflite::SubGraph* sg = m->subgraphs()->Get(0);
  if (!sg || !sg->tensors() || !sg->operators() || !sg->inputs() || !sg->outputs()) {
    return CompileError{"subgraph 0 lacks tensors, operators, inputs or outputs"};
  }
  TfliteModel out;
  const auto n_tensors = static_cast<int32_t>(sg->tensors()->size());
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) {
    auto t = read_tensor(sg->tensors()->Get(i), i, m->buffers());
    if (!t) return t.error();
    out.tensors.push_back(std::move(*t));
  }
  auto index_ok = [&](int32_t t, bool optional) {
    return (t >= 0 && t < n_tensors) || (optional && t == -1);
  };
  for (int32_t t : *sg->inputs()) {
    if (!index_ok(t, false))
      return CompileError{"subgraph input tensor index " + std::to_string(t)};
    out.inputs.push_back(t);
  }
  for (int32_t t : *sg->outputs()) {
    if (!index_ok(t, false))
      return CompileError{"subgraph output tensor index " + std::to_string(t)};
    out.outputs.push_back(t);
  }
  for (uint32_t k = 0; k < sg->operators()->size(); ++k) {
    const tflite::Operator* op = sg->operators()->Get(k);
    const std::string at = "operator " + std::to_string(k);
    if (!op) return CompileError{at + ": missing"};
    if (op->opcode_index() >= m->operator_codes()->size()) {
      return CompileError{at + ": operator code index " + std::to_string(op->opcode_index()) +
                          " of " + std::to_string(m->operator_codes()->size())};
    }
    const tflite::OperatorCode* oc = m->operator_codes()->Get(op->opcode_index());
    if (!oc) return CompileError{at + ": missing operator code"};
    TfliteOperator o;
    o.code = builtin_code(oc);
    if (o.code == tflite::BuiltinOperator_CUSTOM) {
      return CompileError{at + ": custom operator '" +
                          (oc->custom_code() ? oc->custom_code()->str() : std::string()) +
                          "' is not supported"};
    }
    o.name = at + " '" + tflite_operator_name(o.code) + "'";
    if (!op->inputs() || !op->outputs() || op->outputs()->size() == 0) {
      return CompileError{o.name + ": no inputs or outputs"};
    }
    for (int32_t t : *op->inputs()) {
      if (!index_ok(t, true))
        return CompileError{o.name + ": input tensor index " + std::to_string(t)};
      o.inputs.push_back(t);
    }
    for (int32_t t : *op->outputs()) {
      if (!index_ok(t, false)) {
        return CompileError{o.name + ": output tensor index " + std::to_string(t)};
      }
      o.outputs.push_back(t);
    }
    read_options(op, o);
    out.operators.push_back(std::move(o));
  }
  if (auto r = check_dataflow(out); !r) return r.error();
  return out;
}

}  // namespace tinyfleet::optimizer_service
