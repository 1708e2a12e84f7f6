// bench_cortex_m4: instructions per MAC of the MLPerf Tiny layer shapes (the twelve of
// bench_conv_layers plus the KWS fully connected layer), optimized and reference
// kernels, and instructions per inference of whole artifacts, on QEMU mps2-an386 with
// `-icount shift=0` (instruction_counter.h). Prints two tables over semihosting, beside
// the CMSIS-NN figures and the MLPerf Tiny Cortex-M4 results as targets.
//   bench/cortex_m4/run.sh   (builds, compiles the digits models, runs QEMU)
// A third table: the element-wise and pooling operators of bench_pool_elementwise, in
// instructions per input element.
// Arguments (semihosting command line): NAME=MACS ...; the artifact NAME.tfa is read
// from QEMU's working directory.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "instruction_counter.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

using namespace tinyfleet::kernels;
using tinyfleet::firmware::count_instructions;

namespace {

enum class Kind { kConv, kDepthwise, kFullyConnected };

struct Layer {
  const char* name;
  Kind kind;
  int32_t h, w, c, kh, kw, stride, out_c;
  Padding pad;
  double cmsis_nn;  // CMSIS-NN s8 instructions per MAC (issue 23), 0 if not measured
};

// KWS DS-CNN (49x10 MFCC), ResNet-8 (CIFAR-10 32x32x3), MobileNetV1-0.25 (96x96): the
// shapes of bench/kernels/ops/conv_layers_bench.cpp, then the KWS classifier.
const Layer kLayers[] = {
    {"kws conv 49x10x1 k10x4 s2 ->64", Kind::kConv, 49, 10, 1, 10, 4, 2, 64, {4, 1, 5, 1}, 3.49},
    {"kws dw 25x5x64 3x3", Kind::kDepthwise, 25, 5, 64, 3, 3, 1, 64, {1, 1, 1, 1}, 7.79},
    {"kws pw 25x5x64 ->64", Kind::kConv, 25, 5, 64, 1, 1, 1, 64, {}, 2.09},
    {"resnet conv 32x32x3 ->16", Kind::kConv, 32, 32, 3, 3, 3, 1, 16, {1, 1, 1, 1}, 0},
    {"resnet conv 32x32x16 ->16", Kind::kConv, 32, 32, 16, 3, 3, 1, 16, {1, 1, 1, 1}, 0},
    {"resnet conv 16x16x32 ->32", Kind::kConv, 16, 16, 32, 3, 3, 1, 32, {1, 1, 1, 1}, 0},
    {"resnet conv 8x8x64 ->64", Kind::kConv, 8, 8, 64, 3, 3, 1, 64, {1, 1, 1, 1}, 0},
    {"mbv1 conv 96x96x3 s2 ->8", Kind::kConv, 96, 96, 3, 3, 3, 2, 8, {0, 0, 1, 1}, 0},
    {"mbv1 dw 48x48x8 3x3", Kind::kDepthwise, 48, 48, 8, 3, 3, 1, 8, {1, 1, 1, 1}, 0},
    {"mbv1 pw 48x48x8 ->16", Kind::kConv, 48, 48, 8, 1, 1, 1, 16, {}, 0},
    {"mbv1 dw 6x6x128 3x3", Kind::kDepthwise, 6, 6, 128, 3, 3, 1, 128, {1, 1, 1, 1}, 0},
    {"mbv1 pw 6x6x128 ->256", Kind::kConv, 6, 6, 128, 1, 1, 1, 256, {}, 0},
    {"kws fc 64 ->12", Kind::kFullyConnected, 1, 1, 64, 1, 1, 1, 12, {}, 2.84},
};

constexpr size_t kMaxBytes = 40 * 1024;
alignas(16) int8_t g_input[kMaxBytes], g_filter[kMaxBytes], g_ref[kMaxBytes], g_opt[kMaxBytes];
alignas(16) uint8_t g_scratch[8 * 1024];
int32_t g_bias[256], g_mult[256], g_shift[256];

uint32_t g_state = 2463534242u;
int8_t random_int8() {  // xorshift32
  g_state ^= g_state << 13;
  g_state ^= g_state >> 17;
  g_state ^= g_state << 5;
  return static_cast<int8_t>(static_cast<int32_t>(g_state % 255) - 127);
}

struct Result {
  double macs = 0;
  uint64_t opt = 0, ref = 0;
  bool same = false;
  bool ok = false;
};

// Runs the layer once with each kernel (an instruction count is deterministic, so once is
// enough) and compares their outputs.
Result measure(const Layer& l) {
  Result r;
  const Dims in{1, l.h, l.w, l.c};
  const bool dw = l.kind == Kind::kDepthwise;
  const Dims f = dw ? Dims{1, l.kh, l.kw, l.c} : Dims{l.out_c, l.kh, l.kw, l.c};
  Conv2DParams p;
  p.stride_h = p.stride_w = l.stride;
  p.padding = l.pad;
  p.input_offset = 3;  // input zero point -3, as on the host
  p.output_offset = -5;
  const Dims out{1, conv_output_extent(l.h, l.kh, l.stride, 1, l.pad.top, l.pad.bottom),
                 conv_output_extent(l.w, l.kw, l.stride, 1, l.pad.left, l.pad.right), l.out_c};
  if (static_cast<size_t>(in.elements()) > kMaxBytes ||
      static_cast<size_t>(f.elements()) > kMaxBytes ||
      static_cast<size_t>(out.elements()) > kMaxBytes || l.out_c > 256) {
    return r;
  }
  for (int64_t i = 0; i < in.elements(); ++i) g_input[i] = random_int8();
  for (int64_t i = 0; i < f.elements(); ++i) g_filter[i] = random_int8();
  for (int32_t c = 0; c < l.out_c; ++c) {
    g_bias[c] = 1000;
    int s = 0;
    quantize_multiplier(0.02 * (0.002 + 0.0001 * c) / 0.1, &g_mult[c], &s);
    g_shift[c] = s;
  }
  const PerChannelRequant rq{g_mult, g_shift};
  Status a = Status::kOk, b = Status::kOk;
  if (dw) {
    DepthwiseParams d;
    static_cast<Conv2DParams&>(d) = p;
    r.ref = count_instructions(
        [&] { a = ref::depthwise_conv2d(d, rq, in, g_input, f, g_filter, g_bias, out, g_ref); });
    r.opt = count_instructions(
        [&] { b = opt::depthwise_conv2d(d, rq, in, g_input, f, g_filter, g_bias, out, g_opt); });
  } else if (l.kind == Kind::kConv) {
    r.ref = count_instructions(
        [&] { a = ref::conv2d(p, rq, in, g_input, f, g_filter, g_bias, out, g_ref, nullptr, 0); });
    r.opt = count_instructions([&] {
      b = opt::conv2d(p, rq, in, g_input, f, g_filter, g_bias, out, g_opt, g_scratch,
                      sizeof g_scratch);
    });
  } else {
    FullyConnectedParams fp;
    fp.input_offset = p.input_offset;
    fp.output_offset = p.output_offset;
    r.ref = count_instructions([&] {
      a = ref::fully_connected(fp, rq, 1, l.c, g_input, l.out_c, g_filter, g_bias, g_ref, nullptr,
                               0);
    });
    r.opt = count_instructions([&] {
      b = opt::fully_connected(fp, rq, 1, l.c, g_input, l.out_c, g_filter, g_bias, g_opt, g_scratch,
                               sizeof g_scratch);
    });
  }
  r.macs = static_cast<double>(out.elements()) * l.kh * l.kw * (dw ? 1 : l.c);
  r.ok = a == Status::kOk && b == Status::kOk;
  r.same = std::memcmp(g_ref, g_opt, static_cast<size_t>(out.elements())) == 0;
  return r;
}

bool layer_table() {
  std::printf("%-32s %10s %9s %9s %9s %9s %6s\n", "layer (int8)", "MACs", "opt i/MAC", "ref i/MAC",
              "ref/opt", "CMSIS-NN", "twins");
  bool all = true;
  for (const auto& l : kLayers) {
    const Result r = measure(l);
    all = all && r.ok && r.same;
    if (!r.ok) {
      std::printf("%-32s failed\n", l.name);
      continue;
    }
    char cmsis[16] = "-";
    if (l.cmsis_nn > 0) std::snprintf(cmsis, sizeof cmsis, "%.2f", l.cmsis_nn);
    std::printf("%-32s %10.0f %9.2f %9.2f %8.1fx %9s %6s\n", l.name, r.macs,
                static_cast<double>(r.opt) / r.macs, static_cast<double>(r.ref) / r.macs,
                static_cast<double>(r.ref) / static_cast<double>(r.opt), cmsis,
                r.same ? "same" : "DIFFER");
  }
  return all;
}

// Element-wise and pooling operators on the shapes of bench_pool_elementwise (host; the
// KWS average pool here is its real 25x5 window, the host bench's is 5x5): instructions
// per input element, optimized and reference, and whether they agree.
enum class Op { kAdd, kMul, kAverage, kMax, kMean };
struct ElementCase {
  const char* name;
  Op op;
  int32_t h, w, c, kh, kw, stride;  // pools: a kh x kw window; Add/Mul: h * w * c elements
};
const ElementCase kElementCases[] = {
    {"add 32x32x16 (resnet)", Op::kAdd, 32, 32, 16, 0, 0, 0},
    {"add 8x8x64 (resnet)", Op::kAdd, 8, 8, 64, 0, 0, 0},
    {"mul 25x5x64", Op::kMul, 25, 5, 64, 0, 0, 0},
    {"avgpool 25x5x64 global (kws)", Op::kAverage, 25, 5, 64, 25, 5, 1},
    {"avgpool 8x8x64 global (resnet)", Op::kAverage, 8, 8, 64, 8, 8, 1},
    {"avgpool 3x3x256 global (mbv1)", Op::kAverage, 3, 3, 256, 3, 3, 1},
    {"maxpool 32x32x16 2x2 s2", Op::kMax, 32, 32, 16, 2, 2, 2},
    {"maxpool 24x24x32 3x3 s2", Op::kMax, 24, 24, 32, 3, 3, 2},
    {"mean 8x8x64 (resnet)", Op::kMean, 8, 8, 64, 0, 0, 0},
};

// Runs one case with both kernels (the host bench's quantizations) and counts each.
Result measure(const ElementCase& e) {
  Result r;
  const Dims in{1, e.h, e.w, e.c};
  const int64_t n = in.elements();
  if (static_cast<size_t>(n) > kMaxBytes) return r;
  for (int64_t i = 0; i < n; ++i) g_input[i] = random_int8(), g_filter[i] = random_int8();
  const TensorQuant qa{0.05f, -3}, qb{0.04f, 7}, qo{0.08f, -1};
  PoolParams pp;
  pp.filter_h = e.kh;
  pp.filter_w = e.kw;
  pp.stride_h = pp.stride_w = e.stride;
  const Dims out = e.op == Op::kMean ? Dims{1, 1, 1, e.c}
                   : e.kh > 0
                       ? Dims{1, (e.h - e.kh) / e.stride + 1, (e.w - e.kw) / e.stride + 1, e.c}
                       : in;
  auto run = [&](bool opt, int8_t* o) -> Status {
    switch (e.op) {
      case Op::kAdd: {
        const AddParams p = make_add_params(qa, qb, qo, {});
        return opt ? opt::add(p, n, g_input, n, g_filter, o)
                   : ref::add(p, n, g_input, n, g_filter, o);
      }
      case Op::kMul: {
        const MulParams p = make_mul_params(qa, qb, qo, {});
        return opt ? opt::mul(p, n, g_input, n, g_filter, o)
                   : ref::mul(p, n, g_input, n, g_filter, o);
      }
      case Op::kAverage:
        return opt ? opt::average_pool2d(pp, in, g_input, out, o)
                   : ref::average_pool2d(pp, in, g_input, out, o);
      case Op::kMax:
        return opt ? opt::max_pool2d(pp, in, g_input, out, o)
                   : ref::max_pool2d(pp, in, g_input, out, o);
      case Op::kMean: {
        const MeanParams p = make_mean_params({0.05f, -3}, {0.01f, 2}, e.h * e.w);
        return opt ? opt::mean_hw(p, in, g_input, o) : ref::mean_hw(p, in, g_input, o);
      }
    }
    return Status::kBadShape;
  };
  Status a = Status::kOk, b = Status::kOk;
  r.ref = count_instructions([&] { a = run(false, g_ref); });
  r.opt = count_instructions([&] { b = run(true, g_opt); });
  r.macs = static_cast<double>(n);  // here: input elements
  r.ok = a == Status::kOk && b == Status::kOk;
  r.same = std::memcmp(g_ref, g_opt, static_cast<size_t>(out.elements())) == 0;
  return r;
}

bool element_table() {
  std::printf("\n%-32s %10s %12s %9s %9s %9s %6s\n", "operator (int8)", "elements", "opt instr",
              "opt i/el", "ref i/el", "ref/opt", "twins");
  bool all = true;
  for (const auto& e : kElementCases) {
    const Result r = measure(e);
    all = all && r.ok && r.same;
    if (!r.ok) {
      std::printf("%-32s failed\n", e.name);
      continue;
    }
    std::printf("%-32s %10.0f %12llu %9.2f %9.2f %8.1fx %6s\n", e.name, r.macs,
                static_cast<unsigned long long>(r.opt), static_cast<double>(r.opt) / r.macs,
                static_cast<double>(r.ref) / r.macs,
                static_cast<double>(r.ref) / static_cast<double>(r.opt),
                r.same ? "same" : "DIFFER");
  }
  return all;
}

alignas(16) uint8_t g_artifact[512 * 1024];
alignas(16) uint8_t g_arena[512 * 1024];

// Instructions per operator kind: a second, profiled run (the hook's own instructions
// are not in the counts; 40 instructions of resolution per operator).
uint64_t g_by_kind[tinyfleet::artifact::OpKind_MAX + 1];
void print_by_kind(Interpreter& interp) {
  for (auto& k : g_by_kind) k = 0;
  Profiler prof;
  prof.now = [](void*) { return tinyfleet::firmware::InstructionCounter::ticks(); };
  prof.record = [](void*, int32_t, tinyfleet::artifact::OpKind kind, uint32_t ticks) {
    if (kind >= 0 && kind <= tinyfleet::artifact::OpKind_MAX) {
      g_by_kind[kind] +=
          uint64_t{ticks} * tinyfleet::firmware::InstructionCounter::kInstructionsPerTick;
    }
  };
  interp.set_profiler(prof);
  const bool ok = interp.invoke().status == LoadStatus::kOk;
  interp.set_profiler(Profiler{});
  if (!ok) return;
  std::printf("%-32s", "  by operator kind:");
  for (int32_t k = 0; k <= tinyfleet::artifact::OpKind_MAX; ++k) {
    if (g_by_kind[k] == 0) continue;
    std::printf(" %s %llu",
                tinyfleet::artifact::EnumNameOpKind(static_cast<tinyfleet::artifact::OpKind>(k)),
                static_cast<unsigned long long>(g_by_kind[k]));
  }
  std::printf("\n");
}

Interpreter g_interp;

// Loads NAME.tfa (semihosting file I/O) into g_interp and counts the instructions of one
// inference on a seeded input; false if it does not load or run.
bool model_instructions(const char* name, uint64_t* instructions) {
  char path[96];
  std::snprintf(path, sizeof path, "%s.tfa", name);
  FILE* file = std::fopen(path, "rb");
  if (!file) return false;
  const size_t size = std::fread(g_artifact, 1, sizeof g_artifact, file);
  std::fclose(file);
  g_interp = Interpreter{};
  if (size == 0 || size == sizeof g_artifact ||
      g_interp.load(g_artifact, size).status != LoadStatus::kOk ||
      g_interp.bind_arena(g_arena, sizeof g_arena).status != LoadStatus::kOk) {
    return false;
  }
  for (int32_t i = 0; i < g_interp.input_count(); ++i) {
    const auto in = g_interp.input(i);
    for (size_t k = 0; k < in.bytes; ++k) static_cast<int8_t*>(in.data)[k] = random_int8();
  }
  LoadStatus s = LoadStatus::kOk;
  *instructions = count_instructions([&] { s = g_interp.invoke().status; });
  return s == LoadStatus::kOk;
}

// The best MLPerf Tiny v1.0 closed Cortex-M4 result and TFLite Micro + CMSIS-NN's, in
// cycles per inference, for the artifacts that stand for those benchmark models.
struct Moonshot {
  const char* artifact;
  double best, tflm;
};
const Moonshot kMoonshots[] = {
    {"kws_ref", 5.2e6, 21.8e6},
    {"vww_mobilenet_v1_025", 10.7e6, 72.1e6},
    {"ic_resnet8", 19.8e6, 84.5e6},
    {"ad_autoencoder", 0.49e6, 1.21e6},
};
const Moonshot* moonshot_for(const char* name) {
  for (const auto& m : kMoonshots) {
    if (std::strcmp(m.artifact, name) == 0) return &m;
  }
  return nullptr;
}

// Arguments NAME=MACS (the MACs the compiler reports for the artifact).
bool model_table(int argc, char** argv) {
  std::printf("\n%-32s %10s %14s %9s %22s\n", "model (artifact, optimized)", "MACs", "instructions",
              "i/MAC", "vs moonshot / TFLM");
  bool all = true;
  for (int i = 1; i < argc; ++i) {
    char name[64];
    const char* eq = std::strchr(argv[i], '=');
    const size_t len = eq ? static_cast<size_t>(eq - argv[i]) : std::strlen(argv[i]);
    if (len == 0 || len >= sizeof name) continue;
    std::memcpy(name, argv[i], len);
    name[len] = '\0';
    const double macs = eq ? std::atof(eq + 1) : 0;
    uint64_t n = 0;
    const bool ok = model_instructions(name, &n);
    all = all && ok;
    if (!ok) {
      std::printf("%-32s failed to load or run\n", name);
      continue;
    }
    char versus[32] = "";
    if (const Moonshot* m = moonshot_for(name)) {
      std::snprintf(versus, sizeof versus, "%.2fx / %.2fx", static_cast<double>(n) / m->best,
                    static_cast<double>(n) / m->tflm);
    }
    std::printf("%-32s %10.0f %14llu %9.2f %22s\n", name, macs, static_cast<unsigned long long>(n),
                macs > 0 ? static_cast<double>(n) / macs : 0.0, versus);
    print_by_kind(g_interp);
  }
  std::printf(
      "\nmoonshot, best MLPerf Tiny v1.0 closed results on a Cortex-M4 (NUCLEO-L4R5ZI, cycles\n"
      "per inference): KWS 5.2 M, VWW 10.7 M, IC 19.8 M, AD 0.49 M (TFLite Micro with\n"
      "CMSIS-NN: 21.8 M, 72.1 M, 84.5 M, 1.21 M). \"vs moonshot\": our instructions over\n"
      "those cycles (kws_ref: the MLPerf Tiny KWS model; vww_mobilenet_v1_025: a\n"
      "VWW-sized MobileNetV1-0.25; ic_resnet8, ad_autoencoder: MLPerf Tiny's IC ResNet-8 and\n"
      "AD autoencoder shapes; all three with random weights).\n");
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  tinyfleet::firmware::InstructionCounter::start();
  std::printf("bench_cortex_m4: instructions counted by QEMU mps2-an386 -icount shift=0\n\n");
  const bool layers = layer_table() && element_table();
  const bool models = model_table(argc, argv);
  return layers && models ? 0 : 1;
}
