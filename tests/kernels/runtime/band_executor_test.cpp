// Patch-based execution (format 1.3): a chain of window operators run in bands of rows
// gives, byte for byte, the output of the same chain run whole, on random chains
// (Conv2D, DepthwiseConv2D, pooling; strides, dilations, paddings, band counts up to one
// row a band) and on the first stages of a VWW-sized MobileNetV1-0.25. Built with
// TINYFLEET_PATCH_HALO_MUTANT (the halo one row short), the same cases must differ.
// Malformed plans are refused at load; an older runtime's check refuses the banded
// intermediates (their arena_offset is past the arena).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/patch_rows.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

using namespace tinyfleet::kernels;
namespace artifact = tinyfleet::artifact;

namespace {

#ifdef TINYFLEET_PATCH_HALO_MUTANT
constexpr bool kMutant = true;
#else
constexpr bool kMutant = false;
#endif

struct Layer {
  artifact::OpKind kind = artifact::OpKind_Conv2D;
  int32_t out_c = 1, kh = 1, kw = 1, stride = 1, dilation = 1;
  Padding pad;
};

// A chain over a 1 x h x w x c input; every tensor apart, in the arena in order.
struct Chain {
  ModelSpec spec;
  std::vector<int32_t> outputs;  // tensor index of each operator's output
  uint32_t apart_bytes = 0;
};

std::string bytes_of(const std::vector<int8_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}
std::string bytes_of(const std::vector<int32_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

uint32_t align16(uint32_t v) { return (v + 15u) & ~15u; }

// nullopt-like: spec.operators empty when a layer's output would be empty.
Chain build_chain(std::mt19937& rng, Dims x, const std::vector<Layer>& layers) {
  Chain c;
  auto& s = c.spec;
  auto add_activation = [&](const Dims& d, float scale, int32_t zp) {
    TensorSpec t;
    t.name = "t" + std::to_string(s.tensors.size());
    t.dims = d;
    t.scale = {scale};
    t.zero_point = {zp};
    t.arena_offset = c.apart_bytes;
    c.apart_bytes += align16(static_cast<uint32_t>(d.n * d.h * d.w * d.c));
    s.tensors.push_back(t);
    return static_cast<int32_t>(s.tensors.size()) - 1;
  };
  auto rnd = [&](int lo, int hi) { return lo + static_cast<int>(rng() % (hi - lo + 1)); };
  int32_t cur = add_activation(x, 0.05f, rnd(-20, 20));
  s.inputs = {cur};
  for (const Layer& l : layers) {
    const Dims xd = s.tensors[static_cast<size_t>(cur)].dims;
    const bool pool =
        l.kind == artifact::OpKind_MaxPool2D || l.kind == artifact::OpKind_AveragePool2D;
    const bool dw = l.kind == artifact::OpKind_DepthwiseConv2D;
    const int32_t oc = pool || dw ? xd.c : l.out_c;
    const int32_t dil = pool ? 1 : l.dilation;
    const Dims yd{1, conv_output_extent(xd.h, l.kh, l.stride, dil, l.pad.top, l.pad.bottom),
                  conv_output_extent(xd.w, l.kw, l.stride, dil, l.pad.left, l.pad.right), oc};
    if (yd.h <= 0 || yd.w <= 0) {
      s.operators.clear();
      return c;
    }
    const auto& xt = s.tensors[static_cast<size_t>(cur)];
    const int32_t y = pool ? add_activation(yd, xt.scale[0], xt.zero_point[0])
                           : add_activation(yd, 0.05f, rnd(-20, 20));
    OperatorSpec op;
    op.kind = l.kind;
    op.stride_h = op.stride_w = l.stride;
    op.dilation_h = op.dilation_w = dil;
    op.padding = l.pad;
    op.activation_min = rnd(-128, -60);
    op.activation_max = rnd(60, 127);
    if (pool) {
      op.filter_h = l.kh;
      op.filter_w = l.kw;
      op.inputs = {cur};
    } else {
      const Dims wd = dw ? Dims{1, l.kh, l.kw, oc} : Dims{oc, l.kh, l.kw, xd.c};
      std::vector<int8_t> w(static_cast<size_t>(wd.n * wd.h * wd.w * wd.c));
      for (auto& v : w) v = static_cast<int8_t>(rnd(-127, 127));
      std::vector<int32_t> b(static_cast<size_t>(oc));
      for (auto& v : b) v = rnd(-3000, 3000);
      TensorSpec wt{"w" + std::to_string(s.tensors.size()),
                    artifact::TensorType_Int8,
                    wd,
                    std::vector<float>(static_cast<size_t>(oc), 0.01f),
                    std::vector<int32_t>(static_cast<size_t>(oc), 0),
                    bytes_of(w)};
      s.tensors.push_back(wt);
      const int32_t wi = static_cast<int32_t>(s.tensors.size()) - 1;
      TensorSpec bt{"b" + std::to_string(s.tensors.size()),
                    artifact::TensorType_Int32,
                    Dims{1, 1, 1, oc},
                    {1.0f},
                    {0},
                    bytes_of(b)};
      s.tensors.push_back(bt);
      op.inputs = {cur, wi, wi + 1};
      for (int32_t k = 0; k < oc; ++k) {
        int32_t m = 0;
        int sh = 0;
        quantize_multiplier(0.0005 + 0.0001 * rnd(0, 150), &m, &sh);
        op.requant_multiplier.push_back(m);
        op.requant_shift.push_back(sh);
      }
      if (!dw) {
        s.scratch_bytes = std::max(s.scratch_bytes, static_cast<uint32_t>(conv2d_scratch_size(wd)));
      }
    }
    op.outputs = {y};
    s.operators.push_back(op);
    c.outputs.push_back(y);
    cur = y;
  }
  s.outputs = {cur};
  s.tensor_arena_bytes = c.apart_bytes;
  return c;
}

// The same chain with operators [first, first + count) in `bands` bands, their
// intermediates' band buffers after the tensors.
ModelSpec banded(const Chain& c, int32_t first, int32_t count, int32_t bands) {
  ModelSpec s = c.spec;
  std::vector<WindowRows> rows;
  for (int32_t i = first; i < first + count; ++i) {
    const auto& op = s.operators[static_cast<size_t>(i)];
    const auto& x = s.tensors[static_cast<size_t>(op.inputs[0])];
    const bool weighted =
        op.kind == artifact::OpKind_Conv2D || op.kind == artifact::OpKind_DepthwiseConv2D;
    const int32_t filter =
        weighted ? s.tensors[static_cast<size_t>(op.inputs[1])].dims.h : op.filter_h;
    rows.push_back({x.dims.h, op.stride_h, op.dilation_h, filter, op.padding.top});
  }
  const Dims out =
      s.tensors[static_cast<size_t>(c.outputs[static_cast<size_t>(first + count - 1)])].dims;
  std::vector<uint32_t> largest(static_cast<size_t>(count), 0);
  for (int32_t p = 0; p < bands; ++p) {
    std::vector<RowRange> r(static_cast<size_t>(count) + 1);
    band_rows(rows.data(), count, out.h, bands, p, r.data());
    for (int32_t i = 1; i < count; ++i) {
      const Dims d =
          s.tensors[static_cast<size_t>(c.outputs[static_cast<size_t>(first + i - 1)])].dims;
      largest[static_cast<size_t>(i)] = std::max(
          largest[static_cast<size_t>(i)],
          static_cast<uint32_t>((r[static_cast<size_t>(i)].end - r[static_cast<size_t>(i)].begin) *
                                d.w * d.c));
    }
  }
  s.patches.first_operator = first;
  s.patches.operators = count;
  s.patches.bands = bands;
  uint32_t at = c.apart_bytes;
  for (int32_t i = 1; i < count; ++i) {
    s.patches.buffer_offsets.push_back(at);
    at += align16(largest[static_cast<size_t>(i)]);
  }
  s.tensor_arena_bytes = at;
  return s;
}

struct Loaded {
  explicit Loaded(const std::string& bytes) : artifact(bytes.size() + 16) {
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(artifact.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, bytes.data(), bytes.size());
    error = interp.load(a, bytes.size());
    if (error.status != LoadStatus::kOk) return;
    arena.assign(interp.arena_bytes(), 0x5a);
    error = interp.bind_arena(arena.data(), arena.size());
  }
  std::vector<uint8_t> artifact, arena;
  Interpreter interp;
  RuntimeError error;
};

// The output of `spec` on `input`, or empty when it does not load or run.
std::vector<int8_t> run(const ModelSpec& spec, const std::vector<int8_t>& input,
                        RuntimeError* error = nullptr) {
  Loaded l(write_artifact(spec));
  if (error) *error = l.error;
  if (l.error.status != LoadStatus::kOk) return {};
  std::memcpy(l.interp.input(0).data, input.data(), input.size());
  const RuntimeError e = l.interp.invoke();
  if (error) *error = e;
  if (e.status != LoadStatus::kOk) return {};
  const auto o = l.interp.output(0);
  const auto* p = static_cast<const int8_t*>(o.data);
  return std::vector<int8_t>(p, p + o.bytes);
}

std::vector<int8_t> random_input(std::mt19937& rng, const ModelSpec& s) {
  const Dims d = s.tensors[static_cast<size_t>(s.inputs[0])].dims;
  std::vector<int8_t> v(static_cast<size_t>(d.n * d.h * d.w * d.c));
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
  return v;
}

Layer random_layer(std::mt19937& rng) {
  auto rnd = [&](int lo, int hi) { return lo + static_cast<int>(rng() % (hi - lo + 1)); };
  const artifact::OpKind kinds[] = {
      artifact::OpKind_Conv2D,          artifact::OpKind_Conv2D,
      artifact::OpKind_DepthwiseConv2D, artifact::OpKind_DepthwiseConv2D,
      artifact::OpKind_MaxPool2D,       artifact::OpKind_AveragePool2D};
  Layer l;
  l.kind = kinds[rng() % 6];
  const bool pool =
      l.kind == artifact::OpKind_MaxPool2D || l.kind == artifact::OpKind_AveragePool2D;
  l.out_c = rnd(1, 9);
  l.kh = rnd(1, 5);
  l.kw = rnd(1, 3);
  l.stride = rnd(1, 2);
  l.dilation = !pool && l.kh > 1 && rng() % 4 == 0 ? 2 : 1;
  const int32_t eff_h = (l.kh - 1) * l.dilation + 1, eff_w = (l.kw - 1) * l.dilation + 1;
  l.pad = {rnd(0, eff_h - 1), rnd(0, eff_w - 1), rnd(0, eff_h - 1), rnd(0, eff_w - 1)};
  if (pool) {  // a pool window must hold an input pixel
    l.pad.top = std::min(l.pad.top, l.kh - 1);
    l.pad.bottom = std::min(l.pad.bottom, l.kh - 1);
  }
  return l;
}

}  // namespace

TEST(BandExecutor, RandomChainsGiveTheBytesOfTheWholeRun) {
  std::mt19937 rng(23);
  int cases = 0, differing = 0;
  while (cases < 300) {
    std::vector<Layer> layers(2 + rng() % 4);
    for (auto& l : layers) l = random_layer(rng);
    const Dims x{1, 6 + static_cast<int32_t>(rng() % 30), 2 + static_cast<int32_t>(rng() % 9),
                 1 + static_cast<int32_t>(rng() % 6)};
    const Chain c = build_chain(rng, x, layers);
    if (c.spec.operators.empty()) continue;
    const auto n = static_cast<int32_t>(layers.size());
    const int32_t first = static_cast<int32_t>(rng() % static_cast<uint32_t>(n - 1));
    const int32_t count = 2 + static_cast<int32_t>(rng() % static_cast<uint32_t>(n - first - 1));
    const int32_t out_h =
        c.spec.tensors[static_cast<size_t>(c.outputs[static_cast<size_t>(first + count - 1)])]
            .dims.h;
    const int32_t bands =
        rng() % 3 == 0 ? out_h : 1 + static_cast<int32_t>(rng() % static_cast<uint32_t>(out_h));
    const auto input = random_input(rng, c.spec);
    const auto whole = run(c.spec, input);
    RuntimeError e;
    const auto in_bands = run(banded(c, first, count, bands), input, &e);
    ASSERT_FALSE(whole.empty());
    if (!kMutant) {
      ASSERT_EQ(e.status, LoadStatus::kOk) << e.what << " at " << e.index;
    }
    ++cases;
    differing += e.status != LoadStatus::kOk || in_bands != whole;
  }
  if (kMutant) {
    EXPECT_GT(differing, 0) << "a halo one row short must change outputs";
  } else {
    EXPECT_EQ(differing, 0) << "of " << cases;
  }
  std::printf("%d random chains, %d differ from the whole run\n", cases, differing);
}

TEST(BandExecutor, MobileNetFirstStagesInBandsAreBitExact) {
  // VWW-sized MobileNetV1-0.25: 3x3 s2 conv 96x96x3 -> 48x48x8 (TensorFlow's SAME:
  // padding 0 above, 1 below), dw 3x3, pw -> 16, dw 3x3 s2 -> 24x24x16, pw -> 32.
  std::mt19937 rng(7);
  std::vector<Layer> layers(5);
  layers[0] = {artifact::OpKind_Conv2D, 8, 3, 3, 2, 1, {0, 0, 1, 1}};
  layers[1] = {artifact::OpKind_DepthwiseConv2D, 8, 3, 3, 1, 1, {1, 1, 1, 1}};
  layers[2] = {artifact::OpKind_Conv2D, 16, 1, 1, 1, 1, {}};
  layers[3] = {artifact::OpKind_DepthwiseConv2D, 16, 3, 3, 2, 1, {0, 0, 1, 1}};
  layers[4] = {artifact::OpKind_Conv2D, 32, 1, 1, 1, 1, {}};
  const Chain c = build_chain(rng, Dims{1, 96, 96, 3}, layers);
  ASSERT_FALSE(c.spec.operators.empty());
  int differing = 0;
  for (int32_t first : {0, 1}) {
    for (int32_t bands : {2, 3, 4, 6, 8, 24}) {
      const auto input = random_input(rng, c.spec);
      RuntimeError e;
      const auto in_bands = run(banded(c, first, 4 - first, bands), input, &e);
      if (!kMutant) {
        ASSERT_EQ(e.status, LoadStatus::kOk) << e.what;
      }
      differing += e.status != LoadStatus::kOk || in_bands != run(c.spec, input);
    }
  }
  if (kMutant) {
    EXPECT_GT(differing, 0);
  } else {
    EXPECT_EQ(differing, 0);
  }
}

#ifndef TINYFLEET_PATCH_HALO_MUTANT
TEST(BandExecutor, TheArtifactRecordsThePlanAndOlderRuntimesRefuseIt) {
  std::mt19937 rng(3);
  std::vector<Layer> layers(3);
  layers[0] = {artifact::OpKind_Conv2D, 4, 3, 3, 1, 1, {1, 1, 1, 1}};
  layers[1] = {artifact::OpKind_DepthwiseConv2D, 4, 3, 3, 1, 1, {1, 1, 1, 1}};
  layers[2] = {artifact::OpKind_MaxPool2D, 4, 2, 2, 2, 1, {}};
  const Chain c = build_chain(rng, Dims{1, 16, 8, 2}, layers);
  const ModelSpec s = banded(c, 0, 3, 4);
  const std::string bytes = write_artifact(s);
  const auto* m = artifact::GetModel(bytes.data());
  EXPECT_EQ(m->format_minor(), 3);
  EXPECT_EQ(artifact::GetModel(write_artifact(c.spec).data())->format_minor(), 2);
  ASSERT_TRUE(m->patch() && m->patch_buffer_offsets());
  EXPECT_EQ(m->patch()->bands(), 4);
  EXPECT_EQ(m->patch_buffer_offsets()->size(), 2u);
  // The intermediates point past the arena: a 1.2 runtime's tensor check refuses them.
  for (int32_t i = 0; i < 2; ++i) {
    const auto* t = m->tensors()->Get(static_cast<uint32_t>(c.outputs[static_cast<size_t>(i)]));
    EXPECT_EQ(t->arena_offset(), m->tensor_arena_bytes());
  }
  // The delta encoder sees the plan as two int32 segments.
  int found = 0;
  for (const auto& seg : tensor_segments(bytes)) {
    if (seg.name == "t1/patch" || seg.name == "t1/patch_offsets") {
      EXPECT_EQ(seg.kind, SegmentKind::kInt32);
      ++found;
    }
  }
  EXPECT_EQ(found, 2);
}

TEST(BandExecutor, MalformedPlansAreRefused) {
  std::mt19937 rng(4);
  std::vector<Layer> layers(3);
  layers[0] = {artifact::OpKind_Conv2D, 4, 3, 3, 1, 1, {1, 1, 1, 1}};
  layers[1] = {artifact::OpKind_DepthwiseConv2D, 4, 3, 3, 1, 1, {1, 1, 1, 1}};
  layers[2] = {artifact::OpKind_Conv2D, 4, 1, 1, 1, 1, {}};
  const Chain c = build_chain(rng, Dims{1, 12, 6, 2}, layers);
  const auto input = random_input(rng, c.spec);
  auto refused = [&](const ModelSpec& s, const char* what) {
    RuntimeError e;
    run(s, input, &e);
    EXPECT_EQ(e.status, LoadStatus::kBadGraph) << what;
    EXPECT_STREQ(e.what, what);
  };
  ModelSpec s = banded(c, 0, 3, 13);  // more bands than rows
  refused(s, "patch bands out of range");
  s = banded(c, 0, 3, 4);
  s.patches.buffer_offsets[1] = s.tensor_arena_bytes - 8;
  refused(s, "patch buffer outside the planned arena");
  s = banded(c, 0, 3, 4);
  s.patches.buffer_offsets.pop_back();
  refused(s, "patch plan operators or buffers out of range");
  s = banded(c, 0, 3, 4);  // a chain of one operator
  s.patches.operators = 1;
  refused(s, "patch plan operators or buffers out of range");
  s = banded(c, 0, 3, 4);  // an intermediate read by another operator too
  s.operators[2].inputs[0] = c.outputs[0];
  s.tensors[static_cast<size_t>(c.outputs[2])].dims.h = 12;
  RuntimeError e;
  run(s, input, &e);
  EXPECT_EQ(e.status, LoadStatus::kBadOperator);
  EXPECT_STREQ(e.what, "patch intermediate read outside its chain");
  s = banded(c, 0, 2, 4);  // an intermediate also a graph output
  s.outputs = {c.outputs[0]};
  run(s, input, &e);
  EXPECT_EQ(e.status, LoadStatus::kBadGraph);
  EXPECT_STREQ(e.what, "graph input/output is not an arena tensor");
}
#endif
