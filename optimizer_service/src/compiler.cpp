#include "tinyfleet/optimizer_service/compiler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/memory_planner.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/optimizer_service/passes.h"

namespace tinyfleet::optimizer_service {

namespace {

namespace k = tinyfleet::kernels;
namespace fa = tinyfleet::artifact;

k::TensorQuant from_range(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (hi - lo < 1e-6f) hi = lo + 1e-6f;
  const float scale = (hi - lo) / 255.0f;
  const int32_t zp = static_cast<int32_t>(std::lround(-128.0f - lo / scale));
  return {scale, std::min(127, std::max(-128, zp))};
}

int32_t clamp_q(float v, const k::TensorQuant& q) {
  if (v <= -3.0e38f) return -128;
  if (v >= 3.0e38f) return 127;
  const long r = std::lround(v / q.scale) + q.zero_point;
  return static_cast<int32_t>(std::min(127L, std::max(-128L, r)));
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

int argmax(const float* v, size_t n) { return static_cast<int>(std::max_element(v, v + n) - v); }

}  // namespace

Result<CompiledModel> compile_model(const std::string& onnx,
                                    const std::map<std::string, NpyArray>& calibration,
                                    const std::map<std::string, NpyArray>* validation,
                                    const CompileOptions& options) {
  auto imported = import_onnx(onnx);
  if (!imported) return imported.error();
  Graph g = std::move(*imported);
  CompiledModel out;
  CompileReport& rep = out.report;
  rep.fused_activations = fuse_activations(g);
  remove_dead_nodes(g);
  rep.nodes = static_cast<int>(g.nodes.size());
  if (g.inputs.size() != 1 || g.outputs.size() != 1) {
    return CompileError{"supported: one input and one output"};
  }
  for (const auto& n : g.nodes) {
    if (n.type == OpType::kClamp) return CompileError{n.name + ": a clamp that cannot be fused"};
    if (n.type == OpType::kConcatenation || n.type == OpType::kPad) {
      return CompileError{n.name + ": " + to_string(n.type) + " is not compiled yet"};
    }
  }

  // Calibration: min/max of every activation over the calibration set.
  auto xit = calibration.find("x");
  if (xit == calibration.end()) return CompileError{"calibration data has no 'x' array"};
  const NpyArray& cx = xit->second;
  const size_t n_tensors = g.tensors.size();
  std::vector<float> lo(n_tensors, 3.4e38f), hi(n_tensors, -3.4e38f);
  FloatExecutor exec(g);
  for (int64_t i = 0; i < cx.shape[0]; ++i) {
    auto r = exec.run(nhwc_sample(cx, i));
    if (!r) return CompileError{"calibration: " + r.error().message};
    for (size_t t = 0; t < n_tensors; ++t) {
      if (g.tensors[t].constant) continue;
      for (float v : exec.value(static_cast<int>(t))) {
        lo[t] = std::min(lo[t], v);
        hi[t] = std::max(hi[t], v);
      }
    }
  }
  std::vector<k::TensorQuant> q(n_tensors);
  for (size_t t = 0; t < n_tensors; ++t) {
    if (!g.tensors[t].constant) q[t] = from_range(lo[t], hi[t]);
  }
  // Operators whose output shares the input's quantization, or has a fixed one.
  for (const auto& n : g.nodes) {
    const auto o = static_cast<size_t>(n.outputs[0]), in = static_cast<size_t>(n.inputs[0]);
    if (n.type == OpType::kMaxPool2D || n.type == OpType::kAveragePool2D ||
        n.type == OpType::kReshape)
      q[o] = q[in];
    if (n.type == OpType::kSoftmax || n.type == OpType::kLogistic) q[o] = {1.0f / 256.0f, -128};
    if (n.type == OpType::kTanh) q[o] = {1.0f / 128.0f, 0};
  }

  // The artifact: tensors (activations in the arena, quantized constants), operators.
  k::ModelSpec spec;
  spec.device_class = options.device_class;
  spec.model_name = options.model_name;
  std::vector<int32_t> index(n_tensors, -1);
  std::vector<uint32_t> elem_bytes(n_tensors, 1);
  auto activation_tensor = [&](int t) {
    if (index[static_cast<size_t>(t)] < 0) {
      k::TensorSpec s;
      s.name = g.tensors[static_cast<size_t>(t)].name;
      s.dims = g.tensors[static_cast<size_t>(t)].dims;
      s.scale = {q[static_cast<size_t>(t)].scale};
      s.zero_point = {q[static_cast<size_t>(t)].zero_point};
      index[static_cast<size_t>(t)] = static_cast<int32_t>(spec.tensors.size());
      spec.tensors.push_back(std::move(s));
    }
    return index[static_cast<size_t>(t)];
  };
  auto constant_tensor = [&](k::TensorSpec s) {
    rep.weight_bytes += s.data.size();
    spec.tensors.push_back(std::move(s));
    return static_cast<int32_t>(spec.tensors.size()) - 1;
  };
  for (int t : g.inputs) activation_tensor(t);
  uint32_t scratch = 0;
  for (const auto& n : g.nodes) {
    k::OperatorSpec op;
    const int x = n.inputs[0], y = n.outputs[0];
    const auto& qx = q[static_cast<size_t>(x)];
    const auto& qy = q[static_cast<size_t>(y)];
    const auto& xd = g.tensors[static_cast<size_t>(x)].dims;
    const auto& yd = g.tensors[static_cast<size_t>(y)].dims;
    op.inputs = {activation_tensor(x)};
    op.outputs = {activation_tensor(y)};
    op.activation_min = clamp_q(n.activation.min, qy);
    op.activation_max = clamp_q(n.activation.max, qy);
    op.stride_h = n.stride_h;
    op.stride_w = n.stride_w;
    op.dilation_h = n.dilation_h;
    op.dilation_w = n.dilation_w;
    op.padding = n.padding;
    switch (n.type) {
      case OpType::kConv2D:
      case OpType::kDepthwiseConv2D:
      case OpType::kFullyConnected: {
        const Tensor& w = g.tensors[static_cast<size_t>(n.inputs[1])];
        const Tensor& b = g.tensors[static_cast<size_t>(n.inputs[2])];
        const bool dw = n.type == OpType::kDepthwiseConv2D;
        const int32_t oc = dw ? w.dims.c : w.dims.n;
        const int64_t per = static_cast<int64_t>(w.data.size()) / oc;
        std::vector<float> wscale(static_cast<size_t>(oc));
        std::vector<int8_t> wq(w.data.size());
        std::vector<int32_t> bq(static_cast<size_t>(oc));
        for (int32_t c = 0; c < oc; ++c) {
          auto at = [&](int64_t i) {
            return dw ? static_cast<size_t>(i * oc + c) : static_cast<size_t>(c * per + i);
          };
          float amax = 0;
          for (int64_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(w.data[at(i)]));
          wscale[static_cast<size_t>(c)] = amax > 0 ? amax / 127.0f : 1e-8f;
          for (int64_t i = 0; i < per; ++i) {
            wq[at(i)] =
                static_cast<int8_t>(std::lround(w.data[at(i)] / wscale[static_cast<size_t>(c)]));
          }
          const double bias_scale = static_cast<double>(qx.scale) * wscale[static_cast<size_t>(c)];
          bq[static_cast<size_t>(c)] =
              static_cast<int32_t>(std::llround(b.data[static_cast<size_t>(c)] / bias_scale));
          int32_t m = 0;
          int s = 0;
          k::quantize_multiplier(bias_scale / qy.scale, &m, &s);
          op.requant_multiplier.push_back(m);
          op.requant_shift.push_back(s);
        }
        k::TensorSpec ws;
        ws.name = w.name;
        ws.dims = w.dims;
        ws.scale = wscale;
        ws.zero_point.assign(wscale.size(), 0);
        ws.data = bytes_of(wq);
        k::TensorSpec bs;
        bs.name = b.name;
        bs.type = fa::TensorType_Int32;
        bs.dims = b.dims;
        bs.data = bytes_of(bq);
        op.inputs.push_back(constant_tensor(std::move(ws)));
        op.inputs.push_back(constant_tensor(std::move(bs)));
        if (n.type == OpType::kFullyConnected) {
          op.kind = fa::OpKind_FullyConnected;
          scratch = std::max<uint32_t>(
              scratch,
              static_cast<uint32_t>(k::fully_connected_scratch_size(static_cast<int32_t>(per))));
          rep.macs += int64_t{xd.n} * per * oc;
          rep.fc_macs += int64_t{xd.n} * per * oc;
        } else {
          op.kind = dw ? fa::OpKind_DepthwiseConv2D : fa::OpKind_Conv2D;
          op.depth_multiplier = n.depth_multiplier;
          if (!dw)
            scratch =
                std::max<uint32_t>(scratch, static_cast<uint32_t>(k::conv2d_scratch_size(w.dims)));
          rep.macs += yd.elements() * per;
          (dw ? rep.depthwise_macs : rep.conv_macs) += yd.elements() * per;
        }
        break;
      }
      case OpType::kAdd:
      case OpType::kMul: {
        const int x2 = n.inputs[1];
        const Tensor& t2 = g.tensors[static_cast<size_t>(x2)];
        k::TensorQuant q2 = q[static_cast<size_t>(x2)];
        if (t2.constant) {
          q2 = from_range(t2.data[0], t2.data[0]);
          k::TensorSpec cs;
          cs.name = t2.name;
          cs.dims = t2.dims;
          cs.scale = {q2.scale};
          cs.zero_point = {q2.zero_point};
          const int8_t v = static_cast<int8_t>(clamp_q(t2.data[0], q2));
          cs.data = std::string(1, static_cast<char>(v));
          op.inputs.push_back(constant_tensor(std::move(cs)));
        } else {
          op.inputs.push_back(activation_tensor(x2));
        }
        const k::ActivationRange act{op.activation_min, op.activation_max};
        if (n.type == OpType::kAdd) {
          op.kind = fa::OpKind_Add;
          const auto p = k::make_add_params(qx, q2, qy, act);
          op.int_params = {p.input1_offset,     p.input2_offset,     p.output_offset,
                           p.left_shift,        p.input1_multiplier, p.input1_shift,
                           p.input2_multiplier, p.input2_shift,      p.output_multiplier,
                           p.output_shift};
        } else {
          op.kind = fa::OpKind_Mul;
          const auto p = k::make_mul_params(qx, q2, qy, act);
          op.int_params = {p.input1_offset, p.input2_offset, p.output_offset, p.output_multiplier,
                           p.output_shift};
        }
        break;
      }
      case OpType::kAveragePool2D:
      case OpType::kMaxPool2D:
        op.kind = n.type == OpType::kMaxPool2D ? fa::OpKind_MaxPool2D : fa::OpKind_AveragePool2D;
        op.filter_h = n.filter_h;
        op.filter_w = n.filter_w;
        break;
      case OpType::kMean: {
        op.kind = fa::OpKind_Mean;
        const auto p = k::make_mean_params(qx, qy, xd.h * xd.w);
        op.int_params = {p.input_offset, p.output_offset, p.multiplier, p.shift};
        break;
      }
      case OpType::kReshape:
        op.kind = fa::OpKind_Reshape;
        break;
      case OpType::kSoftmax: {
        op.kind = fa::OpKind_Softmax;
        uint32_t table[256];
        k::build_softmax_table(qx.scale, n.beta, table);
        op.lut_u32.assign(table, table + 256);
        break;
      }
      case OpType::kLogistic:
      case OpType::kTanh: {
        op.kind = n.type == OpType::kLogistic ? fa::OpKind_Logistic : fa::OpKind_Tanh;
        int8_t table[256];
        if (n.type == OpType::kLogistic) {
          k::build_logistic_table(qx, qy, table);
        } else {
          k::build_tanh_table(qx, qy, table);
        }
        op.lut_i8.assign(table, table + 256);
        break;
      }
      default:
        return CompileError{n.name + ": " + to_string(n.type) + " is not compiled yet"};
    }
    if (n.type != OpType::kConv2D && n.type != OpType::kDepthwiseConv2D &&
        n.type != OpType::kFullyConnected) {
      rep.other_ops_elements += yd.elements();
    }
    spec.operators.push_back(std::move(op));
  }
  spec.inputs = {index[static_cast<size_t>(g.inputs[0])]};
  spec.outputs = {index[static_cast<size_t>(g.outputs[0])]};

  // Memory plan over the IR's activations, copied to the artifact's tensors.
  const MemoryPlan plan = plan_memory(g, elem_bytes);
  for (size_t t = 0; t < n_tensors; ++t) {
    if (index[t] >= 0) spec.tensors[static_cast<size_t>(index[t])].arena_offset = plan.offset[t];
  }
  spec.tensor_arena_bytes = plan.arena_bytes;
  spec.scratch_bytes = scratch;
  rep.arena_bytes = plan.arena_bytes;
  rep.naive_arena_bytes = plan.naive_bytes;
  rep.scratch_bytes = scratch;
  out.artifact = k::write_artifact(spec);
  rep.artifact_bytes = out.artifact.size();
  const auto& qin = q[static_cast<size_t>(g.inputs[0])];
  const auto& qout = q[static_cast<size_t>(g.outputs[0])];
  rep.input_scale = qin.scale;
  rep.input_zero_point = qin.zero_point;
  rep.output_scale = qout.scale;
  rep.output_zero_point = qout.zero_point;

  // Validation: float graph against the int8 artifact on the kernels' runtime.
  if (validation) {
    auto vx = validation->find("x");
    auto vy = validation->find("y");
    if (vx == validation->end() || vy == validation->end()) {
      return CompileError{"validation data needs 'x' and 'y' arrays"};
    }
    std::vector<uint8_t> aligned(out.artifact.size() + 16);
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, out.artifact.data(), out.artifact.size());
    k::Interpreter interp;
    auto err = interp.load(a, out.artifact.size());
    if (err.status != k::LoadStatus::kOk) {
      return CompileError{std::string("the written artifact does not load: ") + err.what};
    }
    std::vector<uint8_t> arena(interp.arena_bytes());
    interp.bind_arena(arena.data(), arena.size());
    int float_ok = 0, int8_ok = 0;
    const int64_t samples = vx->second.shape[0];
    for (int64_t i = 0; i < samples; ++i) {
      const auto input = nhwc_sample(vx->second, i);
      auto r = exec.run(input);
      if (!r) return CompileError{"validation: " + r.error().message};
      const int label = static_cast<int>(vy->second.values[static_cast<size_t>(i)]);
      const auto& fo = exec.output();
      float_ok += argmax(fo.data(), fo.size()) == label;
      auto in8 = static_cast<int8_t*>(interp.input(0).data);
      for (size_t j = 0; j < input.size(); ++j) in8[j] = k::quantize_value(input[j], qin);
      if (interp.invoke().status != k::LoadStatus::kOk)
        return CompileError{"validation: the artifact failed to run"};
      const auto o = interp.output(0);
      std::vector<float> deq(o.bytes);
      for (size_t j = 0; j < o.bytes; ++j)
        deq[j] = k::dequantize_value(static_cast<int8_t*>(o.data)[j], qout);
      int8_ok += argmax(deq.data(), deq.size()) == label;
    }
    rep.validation_samples = static_cast<int>(samples);
    rep.float_top1 = samples ? 100.0 * float_ok / samples : 0;
    rep.int8_top1 = samples ? 100.0 * int8_ok / samples : 0;
  }
  return out;
}

}  // namespace tinyfleet::optimizer_service
