#include "tinyfleet/optimizer_service/float_executor.h"

#include <algorithm>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/data_movement.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::optimizer_service {

namespace k = tinyfleet::kernels;

FloatExecutor::FloatExecutor(const Graph& graph) : graph_(graph) {
  values_.resize(graph.tensors.size());
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const auto& t = graph.tensors[i];
    values_[i] = t.constant ? t.data : std::vector<float>(static_cast<size_t>(t.dims.elements()));
  }
}

Result<bool> FloatExecutor::run(const std::vector<float>& input) {
  auto& in = values_.at(static_cast<size_t>(graph_.inputs.at(0)));
  if (input.size() != in.size()) {
    return CompileError{"input has " + std::to_string(input.size()) + " values, the model takes " +
                        std::to_string(in.size())};
  }
  in = input;
  for (const auto& n : graph_.nodes) {
    auto t = [&](size_t i) -> const Tensor& {
      return graph_.tensors[static_cast<size_t>(n.inputs[i])];
    };
    const float* x = values_[static_cast<size_t>(n.inputs[0])].data();
    const Tensor& yt = graph_.tensors[static_cast<size_t>(n.outputs[0])];
    float* y = values_[static_cast<size_t>(n.outputs[0])].data();
    k::Status s = k::Status::kOk;
    switch (n.type) {
      case OpType::kConv2D:
      case OpType::kDepthwiseConv2D: {
        k::DepthwiseFloatParams p;
        p.stride_h = n.stride_h;
        p.stride_w = n.stride_w;
        p.dilation_h = n.dilation_h;
        p.dilation_w = n.dilation_w;
        p.padding = n.padding;
        p.activation = n.activation;
        p.depth_multiplier = n.depth_multiplier;
        const float* w = values_[static_cast<size_t>(n.inputs[1])].data();
        const float* b = values_[static_cast<size_t>(n.inputs[2])].data();
        s = n.type == OpType::kConv2D
                ? k::ref_float::conv2d(p, t(0).dims, x, t(1).dims, w, b, yt.dims, y)
                : k::ref_float::depthwise_conv2d(p, t(0).dims, x, t(1).dims, w, b, yt.dims, y);
        break;
      }
      case OpType::kFullyConnected:
        s = k::ref_float::fully_connected(
            n.activation, t(0).dims.n, static_cast<int32_t>(t(0).dims.elements() / t(0).dims.n), x,
            t(1).dims.n, values_[static_cast<size_t>(n.inputs[1])].data(),
            values_[static_cast<size_t>(n.inputs[2])].data(), y);
        break;
      case OpType::kAdd:
      case OpType::kMul: {
        const auto& x2 = values_[static_cast<size_t>(n.inputs[1])];
        s = n.type == OpType::kAdd
                ? k::ref_float::add(n.activation, yt.dims.elements(), x,
                                    static_cast<int64_t>(x2.size()), x2.data(), y)
                : k::ref_float::mul(n.activation, yt.dims.elements(), x,
                                    static_cast<int64_t>(x2.size()), x2.data(), y);
        break;
      }
      case OpType::kAveragePool2D:
      case OpType::kMaxPool2D: {
        k::PoolFloatParams p;
        p.filter_h = n.filter_h;
        p.filter_w = n.filter_w;
        p.stride_h = n.stride_h;
        p.stride_w = n.stride_w;
        p.padding = n.padding;
        p.activation = n.activation;
        s = n.type == OpType::kMaxPool2D
                ? k::ref_float::max_pool2d(p, t(0).dims, x, yt.dims, y)
                : k::ref_float::average_pool2d(p, t(0).dims, x, yt.dims, y);
        break;
      }
      case OpType::kMean:
        s = k::ref_float::mean_hw(t(0).dims, x, y);
        break;
      case OpType::kReshape:
        std::copy(x, x + yt.dims.elements(), y);
        break;
      case OpType::kSoftmax:
        s = k::ref_float::softmax(n.beta, static_cast<int32_t>(yt.dims.elements() / yt.dims.c),
                                  yt.dims.c, x, y);
        break;
      case OpType::kLogistic:
        s = k::ref_float::logistic(yt.dims.elements(), x, y);
        break;
      case OpType::kTanh:
        s = k::ref_float::tanh(yt.dims.elements(), x, y);
        break;
      case OpType::kClamp:
        s = k::ref_float::relu(n.activation, yt.dims.elements(), x, y);
        break;
      case OpType::kConcatenation: {
        std::vector<k::Dims> dims;
        std::vector<const void*> inputs;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          dims.push_back(t(i).dims);
          inputs.push_back(values_[static_cast<size_t>(n.inputs[i])].data());
        }
        s = k::concatenation(n.axis, static_cast<int32_t>(n.inputs.size()), dims.data(),
                             inputs.data(), sizeof(float), yt.dims, y);
        break;
      }
      case OpType::kPad: {
        k::PadParams p;
        for (int i = 0; i < 4; ++i) {
          p.before[i] = n.pad_before[i];
          p.after[i] = n.pad_after[i];
        }
        s = k::pad(p, t(0).dims, x, sizeof(float), &n.pad_value, yt.dims, y);
        break;
      }
      case OpType::kHardSwish:
        for (int64_t i = 0; i < yt.dims.elements(); ++i) {
          y[i] = x[i] * std::min(6.0f, std::max(0.0f, x[i] + 3.0f)) / 6.0f;
        }
        break;
      case OpType::kTranspose:
      case OpType::kStridedSlice:
        s = k::strided_copy(n.copy, t(0).dims.elements(), x, sizeof(float), y);
        break;
    }
    if (s != k::Status::kOk) return CompileError{n.name + ": " + k::to_string(s)};
  }
  return true;
}

}  // namespace tinyfleet::optimizer_service
