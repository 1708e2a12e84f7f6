// Element-wise and pooling operators on MLPerf Tiny shapes: tinyfleet's optimized int8
// kernels against their reference twins, single-threaded. After the Google Benchmark
// output, one table: operator and shape, optimized, reference, reference/optimized.
//   deploy/local/run-bench.sh bench_pool_elementwise
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "time_collector.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"

using namespace tinyfleet::kernels;

namespace {

struct Case {
  std::string name;
  // Runs the optimized (true) or reference (false) kernel once on prepared buffers.
  std::function<Status(bool)> run;
};

std::vector<int8_t> random_int8(size_t n) {
  std::mt19937 rng(7);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
  return v;
}

struct Buffers {
  std::vector<int8_t> a, b, out;
};

std::vector<Case> cases() {
  std::vector<Case> all;
  const TensorQuant qa{0.05f, -3}, qb{0.04f, 7}, qo{0.08f, -1};
  auto elementwise = [&](const std::string& name, int64_t n, bool mul) {
    auto buf = std::make_shared<Buffers>(Buffers{random_int8(static_cast<size_t>(n)),
                                                 random_int8(static_cast<size_t>(n)),
                                                 std::vector<int8_t>(static_cast<size_t>(n))});
    const AddParams ap = make_add_params(qa, qb, qo, {});
    const MulParams mp = make_mul_params(qa, qb, qo, {});
    all.push_back({name, [=](bool opt) {
                     int8_t* o = buf->out.data();
                     if (mul) {
                       return opt ? opt::mul(mp, n, buf->a.data(), n, buf->b.data(), o)
                                  : ref::mul(mp, n, buf->a.data(), n, buf->b.data(), o);
                     }
                     return opt ? opt::add(ap, n, buf->a.data(), n, buf->b.data(), o)
                                : ref::add(ap, n, buf->a.data(), n, buf->b.data(), o);
                   }});
  };
  // ResNet-8's residual adds; a 64-channel feature map scaled (KWS-sized).
  elementwise("add 32x32x16 (resnet)", 32 * 32 * 16, false);
  elementwise("add 8x8x64 (resnet)", 8 * 8 * 64, false);
  elementwise("mul 25x5x64", 25 * 5 * 64, true);
  auto pool = [&](const std::string& name, Dims in, int32_t k, int32_t stride, bool average) {
    PoolParams p;
    p.filter_h = p.filter_w = k;
    p.stride_h = p.stride_w = stride;
    const Dims out{1, (in.h - k) / stride + 1, (in.w - k) / stride + 1, in.c};
    auto buf = std::make_shared<Buffers>(
        Buffers{random_int8(static_cast<size_t>(in.elements())),
                {},
                std::vector<int8_t>(static_cast<size_t>(out.elements()))});
    all.push_back({name, [=](bool opt) {
                     const int8_t* x = buf->a.data();
                     int8_t* o = buf->out.data();
                     if (average) {
                       return opt ? opt::average_pool2d(p, in, x, out, o)
                                  : ref::average_pool2d(p, in, x, out, o);
                     }
                     return opt ? opt::max_pool2d(p, in, x, out, o)
                                : ref::max_pool2d(p, in, x, out, o);
                   }});
  };
  pool("avgpool 25x5x64 global (kws)", {1, 25, 5, 64}, 5, 1, true);
  pool("avgpool 8x8x64 global (resnet)", {1, 8, 8, 64}, 8, 1, true);
  pool("avgpool 3x3x256 global (mbv1)", {1, 3, 3, 256}, 3, 1, true);
  pool("maxpool 32x32x16 2x2 s2", {1, 32, 32, 16}, 2, 2, false);
  pool("maxpool 24x24x32 3x3 s2", {1, 24, 24, 32}, 3, 2, false);
  {
    const Dims in{1, 8, 8, 64};
    auto buf = std::make_shared<Buffers>(
        Buffers{random_int8(static_cast<size_t>(in.elements())), {}, std::vector<int8_t>(64)});
    const MeanParams p = make_mean_params({0.05f, -3}, {0.01f, 2}, 64);
    all.push_back({"mean 8x8x64 (resnet)", [=](bool opt) {
                     return opt ? opt::mean_hw(p, in, buf->a.data(), buf->out.data())
                                : ref::mean_hw(p, in, buf->a.data(), buf->out.data());
                   }});
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  const auto all = cases();
  for (const auto& c : all) {
    for (const bool opt : {true, false}) {
      benchmark::RegisterBenchmark((c.name + (opt ? "/optimized" : "/reference")).c_str(),
                                   [&c, opt](benchmark::State& s) {
                                     for (auto _ : s) {
                                       if (c.run(opt) != Status::kOk) {
                                         s.SkipWithError("kernel refused the shape");
                                         break;
                                       }
                                     }
                                   })
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.2);
    }
  }
  benchmark::Initialize(&argc, argv);
  tinyfleet::bench::TimeCollector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  std::printf("\n%-34s %12s %12s %10s\n", "operator (int8, 1 thread)", "optimized us",
              "reference us", "ref/opt");
  for (const auto& c : all) {
    auto t = [&](const char* k) { return collector.time(c.name + "/" + k); };
    const double o = t("optimized"), r = t("reference");
    std::printf("%-34s %12.2f %12.2f %9.1fx\n", c.name.c_str(), o, r, o > 0 ? r / o : 0);
  }
  return 0;
}
