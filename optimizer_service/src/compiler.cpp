#include "tinyfleet/optimizer_service/compiler.h"

#include <algorithm>
#include <chrono>
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
#include "tinyfleet/optimizer_service/graph_cost.h"
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

// Operators that move bytes (or compare them) without requantizing: input and output
// share one quantization.
bool copies_quantization(OpType t) {
  return t == OpType::kMaxPool2D || t == OpType::kAveragePool2D || t == OpType::kReshape ||
         t == OpType::kPad || t == OpType::kConcatenation || t == OpType::kTranspose ||
         t == OpType::kStridedSlice;
}

// A channel's weight scale: max |w| / 127, but never so small that its requantization
// multiplier (input scale x weight scale / output scale) underflows 2^-30 or its int32
// bias leaves +-2^29 (the runtime refuses +-2^30). Channels whose weights are below
// int8 resolution (pruned ones: ~1e-30, subnormal, zero) thus quantize to zero weights
// and keep their bias: they output relu(bias), the constant the float model gives.
float weight_scale(float amax, float bias, float input_scale, float output_scale) {
  const double min_multiplier = std::ldexp(double{output_scale}, -30) / input_scale;
  const double max_bias = std::fabs(double{bias}) / (std::ldexp(1.0, 29) * input_scale);
  return static_cast<float>(std::max({double{amax} / 127.0, min_multiplier, max_bias}));
}

// The 256-entry table (index: input + 128) of any float function at the given input and
// output quantization, for the runtime's Lookup (HardSwish, a clamp no pass could fuse).
template <class F>
std::vector<int8_t> lookup_table(const k::TensorQuant& in, const k::TensorQuant& out, F f) {
  std::vector<int8_t> table(256);
  for (int i = -128; i <= 127; ++i) {
    table[static_cast<size_t>(i + 128)] =
        k::quantize_value(f(k::dequantize_value(static_cast<int8_t>(i), in)), out);
  }
  return table;
}

int argmax(const float* v, size_t n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// The drift baseline, one float sample at a time: the input (NHWC) and the float output.
class DriftAccumulator {
 public:
  DriftAccumulator(int32_t classes, int32_t channels)
      : hist_(static_cast<size_t>(classes), 0),
        sum_(static_cast<size_t>(channels), 0),
        sum2_(static_cast<size_t>(channels), 0) {}
  // Returns the float top-1 class.
  int add(const std::vector<float>& input, const std::vector<float>& output) {
    const int top = argmax(output.data(), output.size());
    if (static_cast<size_t>(top) < hist_.size()) hist_[static_cast<size_t>(top)] += 1;
    double z = 0;
    for (float v : output) z += std::exp(static_cast<double>(v) - output[static_cast<size_t>(top)]);
    confidence_ += 1.0 / z;
    const size_t channels = sum_.size();
    for (size_t j = 0; j < input.size(); ++j) {
      sum_[j % channels] += input[j];
      sum2_[j % channels] += static_cast<double>(input[j]) * input[j];
    }
    channel_values_ += static_cast<double>(input.size()) / static_cast<double>(channels);
    ++samples_;
    return top;
  }
  DriftBaseline finish() const {
    DriftBaseline d;
    const double n = static_cast<double>(samples_);
    for (double h : hist_) d.class_histogram.push_back(static_cast<float>(samples_ ? h / n : 0));
    d.mean_top1_confidence = static_cast<float>(samples_ ? confidence_ / n : 0);
    for (size_t c = 0; c < sum_.size(); ++c) {
      const double mean = channel_values_ > 0 ? sum_[c] / channel_values_ : 0;
      const double sq = channel_values_ > 0 ? sum2_[c] / channel_values_ : 0;
      d.channel_mean.push_back(static_cast<float>(mean));
      d.channel_std.push_back(static_cast<float>(std::sqrt(std::max(0.0, sq - mean * mean))));
    }
    return d;
  }

 private:
  std::vector<double> hist_, sum_, sum2_;
  double confidence_ = 0, channel_values_ = 0;
  int64_t samples_ = 0;
};

}  // namespace

Result<CompiledModel> compile_model(const std::string& onnx,
                                    const std::map<std::string, NpyArray>& calibration,
                                    const std::map<std::string, NpyArray>* validation,
                                    const CompileOptions& options) {
  auto imported = import_onnx(onnx);
  if (!imported) return imported.error();
  return compile_graph(std::move(*imported), calibration, validation, options);
}

Result<CompiledModel> compile_graph(Graph g, const std::map<std::string, NpyArray>& calibration,
                                    const std::map<std::string, NpyArray>* validation,
                                    const CompileOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  CompiledModel out;
  CompileReport& rep = out.report;
  rep.folded_constants = fold_scalar_affine(g);
  rep.fused_pads = fuse_pads(g);
  rep.fused_activations = fuse_activations(g);
  rep.removed_no_ops = remove_no_ops(g);
  remove_dead_nodes(g);
  rep.nodes = static_cast<int>(g.nodes.size());
  {
    // Execution order: TFLite Micro's greedy-by-size plan of the given order is the
    // baseline the report compares with; ours may run a branching graph in another order.
    const std::vector<uint32_t> int8_bytes(g.tensors.size(), 1);
    rep.greedy_arena_bytes = plan_greedy_by_size(g, int8_bytes).arena_bytes;
    reorder_nodes(g, best_execution_order(g, int8_bytes));
  }
  if (g.inputs.size() != 1 || g.outputs.size() != 1) {
    return CompileError{"supported: one input and one output"};
  }
  if (auto too_big = check_cost(g, options)) return *too_big;

  // Calibration: ranges of every activation over the calibration set (a second pass
  // fills histograms for the percentile and MSE methods).
  auto xit = calibration.find("x");
  if (xit == calibration.end()) return CompileError{"calibration data has no 'x' array"};
  const NpyArray& cx = xit->second;
  const size_t n_tensors = g.tensors.size();
  FloatExecutor exec(g);
  RangeObserver observer(n_tensors);
  const int passes = options.calibration == CalibrationMethod::kMinMax ? 1 : 2;
  // Without a validation set, the drift baseline describes the calibration set.
  DriftAccumulator calibration_drift(g.tensors[static_cast<size_t>(g.outputs[0])].dims.c,
                                     g.tensors[static_cast<size_t>(g.inputs[0])].dims.c);
  for (int pass = 0; pass < passes; ++pass) {
    if (pass == 1) observer.begin_histograms();
    for (int64_t i = 0; i < cx.shape[0]; ++i) {
      const auto input = nhwc_sample(cx, i);
      auto r = exec.run(input);
      if (!r) return CompileError{"calibration: " + r.error().message};
      if (pass == 0 && !validation) calibration_drift.add(input, exec.output());
      for (size_t t = 0; t < n_tensors; ++t) {
        if (!g.tensors[t].constant) observer.observe(t, exec.value(static_cast<int>(t)));
      }
    }
  }
  std::vector<k::TensorQuant> q(n_tensors);
  for (size_t t = 0; t < n_tensors; ++t) {
    if (g.tensors[t].constant) continue;
    // The graph input keeps its full range: clipping inputs only loses information.
    const bool is_input =
        std::find(g.inputs.begin(), g.inputs.end(), static_cast<int>(t)) != g.inputs.end();
    if (g.tensors[t].has_quant) {  // QDQ: the model's own scale
      q[t] = g.tensors[t].quant;
      ++rep.qdq_scales_kept;
      continue;
    }
    const auto r = observer.range(t, is_input ? CalibrationMethod::kMinMax : options.calibration,
                                  options.percentile);
    q[t] = from_range(r.lo, r.hi);
  }
  // Operators whose output shares the input's quantization, or has a fixed one.
  for (const auto& n : g.nodes) {
    const auto o = static_cast<size_t>(n.outputs[0]), in = static_cast<size_t>(n.inputs[0]);
    // Concatenation copies bytes: every input is produced at the output's quantization.
    if (n.type == OpType::kConcatenation) {
      for (int x : n.inputs) q[static_cast<size_t>(x)] = q[o];
    } else if (copies_quantization(n.type)) {
      q[o] = q[in];
    }
    if (n.type == OpType::kSoftmax || n.type == OpType::kLogistic) q[o] = {1.0f / 256.0f, -128};
    if (n.type == OpType::kTanh) q[o] = {1.0f / 128.0f, 0};
  }

  for (const auto& n : g.nodes) {
    const auto& qo = q[static_cast<size_t>(n.outputs[0])];
    for (size_t i = 0; copies_quantization(n.type) && i < n.inputs.size(); ++i) {
      if (q[static_cast<size_t>(n.inputs[i])] != qo) {
        return CompileError{n.name + ": input '" +
                            g.tensors[static_cast<size_t>(n.inputs[i])].name +
                            "' must share the output's quantization, but its producer fixes "
                            "another (a pooling, reshape, pad or the graph input)"};
      }
    }
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
          wscale[static_cast<size_t>(c)] =
              weight_scale(amax, b.data[static_cast<size_t>(c)], qx.scale, qy.scale);
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
          op.add = k::make_add_params(qx, q2, qy, act);
        } else {
          op.kind = fa::OpKind_Mul;
          op.mul = k::make_mul_params(qx, q2, qy, act);
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
        op.mean = k::make_mean_params(qx, qy, xd.h * xd.w);
        break;
      }
      case OpType::kReshape:
        op.kind = fa::OpKind_Reshape;
        break;
      case OpType::kConcatenation:
        op.kind = fa::OpKind_Concatenation;
        op.axis = n.axis;
        for (size_t i = 1; i < n.inputs.size(); ++i)
          op.inputs.push_back(activation_tensor(n.inputs[i]));
        break;
      case OpType::kPad:
        op.kind = fa::OpKind_Pad;
        op.pad_before.assign(n.pad_before, n.pad_before + 4);
        op.pad_after.assign(n.pad_after, n.pad_after + 4);
        op.pad_value = static_cast<int8_t>(clamp_q(n.pad_value, qy));
        op.has_pad_value = op.pad_value != qy.zero_point;
        break;
      case OpType::kTranspose:
      case OpType::kStridedSlice:
        op.kind = n.type == OpType::kTranspose ? fa::OpKind_Transpose : fa::OpKind_StridedSlice;
        op.copy_offset = n.copy.offset;
        op.copy_count.assign(n.copy.count, n.copy.count + 4);
        op.copy_step.assign(n.copy.step, n.copy.step + 4);
        break;
      case OpType::kHardSwish:
      case OpType::kClamp: {  // a clamp no pass could fuse into its producer
        op.kind = fa::OpKind_Lookup;
        op.activation_min = -128;
        op.activation_max = 127;
        const k::FloatRange r = n.activation;
        op.lut_i8 = n.type == OpType::kHardSwish
                        ? lookup_table(qx, qy,
                                       [](float v) {
                                         return v * std::min(6.0f, std::max(0.0f, v + 3.0f)) / 6.0f;
                                       })
                        : lookup_table(
                              qx, qy, [r](float v) { return std::min(r.max, std::max(r.min, v)); });
        break;
      }
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
  const MemoryPlan plan = plan_memory(g, elem_bytes, options.patches);
  for (size_t t = 0; t < n_tensors; ++t) {
    if (index[t] >= 0) spec.tensors[static_cast<size_t>(index[t])].arena_offset = plan.offset[t];
  }
  spec.patches = patch_spec(g, plan);  // nodes are the operators, one for one
  spec.tensor_arena_bytes = plan.arena_bytes;
  spec.scratch_bytes = scratch;
  rep.arena_bytes = plan.arena_bytes;
  rep.naive_arena_bytes = plan.naive_bytes;
  rep.in_place_operators = plan.in_place_pairs;
  rep.banded_first = plan.patches.first_node;
  rep.banded_operators = plan.patches.nodes;
  rep.bands = plan.patches.bands;
  rep.scratch_bytes = scratch;
  out.artifact = k::write_artifact(spec);
  rep.artifact_bytes = out.artifact.size();
  out.memory_plan.arena_bytes = plan.arena_bytes;
  for (size_t t = 0; t < n_tensors; ++t) {
    if (index[t] < 0 || plan.size[t] == 0) continue;
    out.memory_plan.buffers.push_back(
        {g.tensors[t].name, plan.offset[t], plan.size[t], plan.first_step[t], plan.last_step[t]});
  }
  // The artifact as written, loaded and run: a refusal if the runtime does not take it.
  auto self_tests = run_self_tests(out.artifact);
  if (!self_tests) return CompileError{"the written artifact: " + self_tests.error().message};
  out.self_tests = std::move(*self_tests);
  rep.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const auto& qin = q[static_cast<size_t>(g.inputs[0])];
  const auto& qout = q[static_cast<size_t>(g.outputs[0])];
  rep.input_scale = qin.scale;
  rep.input_zero_point = qin.zero_point;
  rep.output_scale = qout.scale;
  rep.output_zero_point = qout.zero_point;

  const int32_t classes = g.tensors[static_cast<size_t>(g.outputs[0])].dims.c;
  const int32_t channels = g.tensors[static_cast<size_t>(g.inputs[0])].dims.c;
  if (!validation) rep.drift_baseline = calibration_drift.finish();

  // Validation: float graph against the int8 artifact on the kernels' runtime, the drift
  // baseline, and per-layer SQNR from a copy of the artifact with every activation in a
  // buffer of its own (so each survives the run).
  if (validation) {
    auto vx = validation->find("x");
    auto vy = validation->find("y");
    if (vx == validation->end() || vy == validation->end()) {
      return CompileError{"validation data needs 'x' and 'y' arrays"};
    }
    if (static_cast<int64_t>(vy->second.values.size()) < vx->second.shape[0]) {
      return CompileError{"validation data has fewer labels in 'y' than samples in 'x'"};
    }
    k::ModelSpec naive = spec;
    naive.patches = {};  // the chain run whole: the banded run must give its bytes
    uint32_t at = 0;
    for (auto& t : naive.tensors) {
      if (!t.data.empty()) continue;
      t.arena_offset = at;
      at += (static_cast<uint32_t>(t.dims.elements()) + 15u) & ~15u;
    }
    naive.tensor_arena_bytes = at;
    const std::string naive_artifact = k::write_artifact(naive);
    struct Loaded {
      std::vector<uint8_t> bytes, arena;
      k::Interpreter interp;
    };
    auto load = [](const std::string& artifact, Loaded& l) -> Result<bool> {
      l.bytes.resize(artifact.size() + 16);
      auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(l.bytes.data()) + 15) &
                                           ~uintptr_t{15});
      std::memcpy(a, artifact.data(), artifact.size());
      auto err = l.interp.load(a, artifact.size());
      if (err.status != k::LoadStatus::kOk) {
        return CompileError{std::string("the written artifact does not load: ") + err.what};
      }
      l.arena.resize(l.interp.arena_bytes());
      l.interp.bind_arena(l.arena.data(), l.arena.size());
      return true;
    };
    Loaded shipped, wide;
    if (auto r = load(out.artifact, shipped); !r) return r.error();
    if (auto r = load(naive_artifact, wide); !r) return r.error();
    std::vector<double> signal(n_tensors, 0), noise(n_tensors, 0);
    DriftAccumulator drift(classes, channels);
    int float_ok = 0, int8_ok = 0;
    const int64_t samples = vx->second.shape[0];
    for (int64_t i = 0; i < samples; ++i) {
      const auto input = nhwc_sample(vx->second, i);
      auto r = exec.run(input);
      if (!r) return CompileError{"validation: " + r.error().message};
      const int label = static_cast<int>(vy->second.values[static_cast<size_t>(i)]);
      float_ok += drift.add(input, exec.output()) == label;
      for (Loaded* l : {&shipped, &wide}) {
        auto in8 = static_cast<int8_t*>(l->interp.input(0).data);
        for (size_t j = 0; j < input.size(); ++j) in8[j] = k::quantize_value(input[j], qin);
        if (l->interp.invoke().status != k::LoadStatus::kOk) {
          return CompileError{"validation: the artifact failed to run"};
        }
      }
      const auto o = shipped.interp.output(0);
      // The shipped plan overlaps tensors (in place) and may run a chain in bands; the
      // wide copy gives each tensor its own buffer and runs every operator whole. Any
      // difference means a kernel broke the in-place contract or a band its halo.
      const auto ow = wide.interp.output(0);
      if (o.bytes != ow.bytes || std::memcmp(o.data, ow.data, o.bytes) != 0) {
        return CompileError{"memory plan: validation sample " + std::to_string(i) +
                            " gives a different output with the planned arena than with "
                            "every tensor apart"};
      }
      std::vector<float> deq(o.bytes);
      for (size_t j = 0; j < o.bytes; ++j)
        deq[j] = k::dequantize_value(static_cast<int8_t*>(o.data)[j], qout);
      int8_ok += argmax(deq.data(), deq.size()) == label;
      for (size_t t = 0; t < n_tensors; ++t) {
        if (index[t] < 0 || g.tensors[t].constant) continue;
        const auto& ft = exec.value(static_cast<int>(t));
        const auto* qt = reinterpret_cast<const int8_t*>(wide.arena.data()) +
                         naive.tensors[static_cast<size_t>(index[t])].arena_offset;
        for (size_t j = 0; j < ft.size(); ++j) {
          const double e = ft[j] - k::dequantize_value(qt[j], q[t]);
          signal[t] += static_cast<double>(ft[j]) * ft[j];
          noise[t] += e * e;
        }
      }
    }
    rep.validation_samples = static_cast<int>(samples);
    rep.float_top1 = samples ? 100.0 * float_ok / samples : 0;
    rep.int8_top1 = samples ? 100.0 * int8_ok / samples : 0;
    rep.drift_baseline = drift.finish();
    double worst = 1e300;
    for (size_t t = 0; t < n_tensors; ++t) {
      if (index[t] < 0 || g.tensors[t].constant || signal[t] <= 0) continue;
      const double db = noise[t] > 0 ? 10.0 * std::log10(signal[t] / noise[t]) : 200.0;
      rep.layer_sqnr.push_back({g.tensors[t].name, db});
      if (db < worst) {
        worst = db;
        rep.worst_layer = g.tensors[t].name;
      }
    }
  }
  return out;
}

}  // namespace tinyfleet::optimizer_service
