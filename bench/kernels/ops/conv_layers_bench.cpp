// MLPerf Tiny layer shapes: tinyfleet's optimized int8 kernels against their
// reference twins and XNNPACK's QC8 (per-channel int8) operators, single-threaded; both
// pack their weights once, outside the timing (packed_weights.h, XNNPACK's create).
// Each benchmark runs 5 times, the repetitions of all of them in random order (so a
// burst of load on this shared machine falls on any of the three alike); after Google
// Benchmark's output, one table of the medians: shape, optimized, reference, XNNPACK,
// reference/optimized and optimized/XNNPACK. (Flags given on the command line win.)
//   deploy/local/run-bench.sh bench_conv_layers
#include <benchmark/benchmark.h>
#include <xnnpack.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "time_collector.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/packed_weights.h"
#include "tinyfleet/kernels/ops/quantization.h"

using namespace tinyfleet::kernels;

namespace {

struct Layer {
  const char* name;
  bool depthwise;
  int32_t h, w, c, kh, kw, stride, out_c;
  Padding pad;
};

// KWS DS-CNN (49x10 MFCC), ResNet-8 (CIFAR-10 32x32x3), MobileNetV1-0.25 (96x96).
const Layer kLayers[] = {
    {"kws conv 49x10x1 k10x4 s2 ->64", false, 49, 10, 1, 10, 4, 2, 64, {4, 1, 5, 1}},
    {"kws dw 25x5x64 3x3", true, 25, 5, 64, 3, 3, 1, 64, {1, 1, 1, 1}},
    {"kws pw 25x5x64 ->64", false, 25, 5, 64, 1, 1, 1, 64, {}},
    {"resnet conv 32x32x3 ->16", false, 32, 32, 3, 3, 3, 1, 16, {1, 1, 1, 1}},
    {"resnet conv 32x32x16 ->16", false, 32, 32, 16, 3, 3, 1, 16, {1, 1, 1, 1}},
    {"resnet conv 16x16x32 ->32", false, 16, 16, 32, 3, 3, 1, 32, {1, 1, 1, 1}},
    {"resnet conv 8x8x64 ->64", false, 8, 8, 64, 3, 3, 1, 64, {1, 1, 1, 1}},
    {"mbv1 conv 96x96x3 s2 ->8", false, 96, 96, 3, 3, 3, 2, 8, {0, 0, 1, 1}},
    {"mbv1 dw 48x48x8 3x3", true, 48, 48, 8, 3, 3, 1, 8, {1, 1, 1, 1}},
    {"mbv1 pw 48x48x8 ->16", false, 48, 48, 8, 1, 1, 1, 16, {}},
    {"mbv1 dw 6x6x128 3x3", true, 6, 6, 128, 3, 3, 1, 128, {1, 1, 1, 1}},
    {"mbv1 pw 6x6x128 ->256", false, 6, 6, 128, 1, 1, 1, 256, {}},
};

struct Prepared {
  Dims in, f, out;
  Conv2DParams p;
  std::vector<int8_t> input, filter, output;
  std::vector<int32_t> bias, mult, shift;
  std::vector<float> kernel_scale;
  std::vector<uint8_t> scratch;
  std::vector<unsigned char> packed;  // ours, packed once like XNNPACK's (outside the timing)
  xnn_operator_t xnn = nullptr;
};

Prepared prepare(const Layer& l) {
  Prepared s;
  std::mt19937 rng(1);
  s.in = {1, l.h, l.w, l.c};
  s.f = l.depthwise ? Dims{1, l.kh, l.kw, l.c} : Dims{l.out_c, l.kh, l.kw, l.c};
  s.p.stride_h = s.p.stride_w = l.stride;
  s.p.padding = l.pad;
  s.p.input_offset = 3;  // input zero point -3
  s.p.output_offset = -5;
  s.out = {1, conv_output_extent(l.h, l.kh, l.stride, 1, l.pad.top, l.pad.bottom),
           conv_output_extent(l.w, l.kw, l.stride, 1, l.pad.left, l.pad.right), l.out_c};
  auto fill = [&](std::vector<int8_t>& v, size_t n) {
    v.resize(n);
    for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  };
  fill(s.input, static_cast<size_t>(s.in.elements()));
  fill(s.filter, static_cast<size_t>(s.f.elements()));
  s.output.resize(static_cast<size_t>(s.out.elements()));
  s.bias.assign(static_cast<size_t>(l.out_c), 1000);
  const float in_scale = 0.02f, out_scale = 0.1f;
  for (int32_t c = 0; c < l.out_c; ++c) {
    const float ks = 0.002f + 0.0001f * static_cast<float>(c);
    s.kernel_scale.push_back(ks);
    int32_t m = 0;
    int sh = 0;
    quantize_multiplier(static_cast<double>(in_scale) * ks / out_scale, &m, &sh);
    s.mult.push_back(m);
    s.shift.push_back(sh);
  }
  s.scratch.resize(conv2d_scratch_size(s.f));
  const PerChannelRequant rq{s.mult.data(), s.shift.data()};
  DepthwiseParams dp;
  static_cast<Conv2DParams&>(dp) = s.p;
  s.packed.resize(l.depthwise ? opt::depthwise_packed_size(dp, s.f) : opt::conv2d_packed_size(s.f));
  if (!s.packed.empty()) {
    const Status st = l.depthwise ? opt::depthwise_pack(dp, rq, s.f, s.filter.data(), s.bias.data(),
                                                        s.packed.data(), s.packed.size())
                                  : opt::conv2d_pack(rq, s.f, s.filter.data(), s.bias.data(),
                                                     s.packed.data(), s.packed.size());
    if (st != Status::kOk) s.packed.clear();
  }
  const auto status = xnn_create_convolution2d_nhwc_qc8(
      static_cast<uint32_t>(l.pad.top), static_cast<uint32_t>(l.pad.right),
      static_cast<uint32_t>(l.pad.bottom), static_cast<uint32_t>(l.pad.left),
      static_cast<uint32_t>(l.kh), static_cast<uint32_t>(l.kw), static_cast<uint32_t>(l.stride),
      static_cast<uint32_t>(l.stride), 1, 1, l.depthwise ? static_cast<uint32_t>(l.c) : 1,
      l.depthwise ? 1 : static_cast<size_t>(l.c), l.depthwise ? 1 : static_cast<size_t>(l.out_c),
      static_cast<size_t>(l.c), static_cast<size_t>(l.out_c), -3, in_scale, s.kernel_scale.data(),
      s.filter.data(), s.bias.data(), -5, out_scale, -128, 127,
      l.depthwise ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0, &s.xnn);
  if (status != xnn_status_success ||
      xnn_setup_convolution2d_nhwc_qc8(s.xnn, 1, static_cast<size_t>(l.h), static_cast<size_t>(l.w),
                                       s.input.data(), s.output.data(),
                                       nullptr) != xnn_status_success) {
    s.xnn = nullptr;
  }
  return s;
}

void run(benchmark::State& state, const Layer& l, int which) {
  Prepared s = prepare(l);
  const PerChannelRequant rq{s.mult.data(), s.shift.data()};
  DepthwiseParams dp;
  static_cast<Conv2DParams&>(dp) = s.p;
  const void* packed = s.packed.empty() ? nullptr : s.packed.data();
  for (auto _ : state) {
    Status st = Status::kOk;
    if (which == 2) {
      if (!s.xnn || xnn_run_operator(s.xnn, nullptr) != xnn_status_success) {
        state.SkipWithError("XNNPACK operator unavailable");
        break;
      }
    } else if (l.depthwise) {
      st = which == 0 ? opt::depthwise_prepacked(dp, rq, s.in, s.input.data(), s.f, s.filter.data(),
                                                 s.bias.data(), s.out, s.output.data(), packed)
                      : ref::depthwise_conv2d(dp, rq, s.in, s.input.data(), s.f, s.filter.data(),
                                              s.bias.data(), s.out, s.output.data());
    } else {
      st = which == 0 ? opt::conv2d_prepacked(s.p, rq, s.in, s.input.data(), s.f, s.filter.data(),
                                              s.bias.data(), s.out, s.output.data(),
                                              s.scratch.data(), s.scratch.size(), packed)
                      : ref::conv2d(s.p, rq, s.in, s.input.data(), s.f, s.filter.data(),
                                    s.bias.data(), s.out, s.output.data(), nullptr, 0);
    }
    if (st != Status::kOk) state.SkipWithError(to_string(st));
    benchmark::DoNotOptimize(s.output.data());
  }
  const double macs = static_cast<double>(s.out.elements()) * l.kh * l.kw * (l.depthwise ? 1 : l.c);
  state.counters["MMAC/s"] = benchmark::Counter(
      macs * static_cast<double>(state.iterations()) / 1e6, benchmark::Counter::kIsRate);
  if (s.xnn) xnn_delete_operator(s.xnn);
}

}  // namespace

int main(int argc, char** argv) {
  if (xnn_initialize(nullptr) != xnn_status_success) {
    std::fprintf(stderr, "XNNPACK failed to initialize\n");
    return 1;
  }
  const char* kinds[] = {"optimized", "reference", "xnnpack"};
  for (const auto& l : kLayers) {
    for (int k = 0; k < 3; ++k) {
      benchmark::RegisterBenchmark((std::string(l.name) + "/" + kinds[k]).c_str(),
                                   [&l, k](benchmark::State& s) { run(s, l, k); })
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.2)
          ->Repetitions(5)
          ->ReportAggregatesOnly(true);
    }
  }
  std::vector<char*> args(argv, argv + argc);
  char interleave[] = "--benchmark_enable_random_interleaving=true";
  args.insert(args.begin() + 1, interleave);
  int args_count = static_cast<int>(args.size());
  benchmark::Initialize(&args_count, args.data());
  tinyfleet::bench::TimeCollector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  std::printf("\nmedians of 5\n%-34s %12s %12s %12s %10s %10s\n", "layer (int8, 1 thread)",
              "optimized us", "reference us", "xnnpack us", "ref/opt", "opt/xnn");
  for (const auto& l : kLayers) {
    const std::string n = l.name;
    auto t = [&](const char* k) { return collector.time(n + "/" + k); };
    const double o = t("optimized"), r = t("reference"), x = t("xnnpack");
    std::printf("%-34s %12.1f %12.1f %12.1f %9.1fx %9.2fx\n", l.name, o, r, x, o > 0 ? r / o : 0,
                x > 0 ? o / x : 0);
  }
  std::printf("targets: ref/opt >= 4x; opt/xnn <= 2x\n");
  return 0;
}
