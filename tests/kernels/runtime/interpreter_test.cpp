// The runtime over hand-built artifacts: it runs a small CNN exactly like a direct
// chain of the kernels, reports its arena, profiles each operator, allocates nothing
// while running, and refuses every kind of malformed artifact with its reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

// Counts heap allocations, to prove invoke() makes none.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace tinyfleet::kernels;
namespace artifact = tinyfleet::artifact;

namespace {

std::string bytes_of(const std::vector<int8_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}
std::string bytes_of(const std::vector<int32_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// An aligned copy of the artifact (as flash would hold it).
struct Aligned {
  explicit Aligned(const std::string& s, size_t shift = 0) : size(s.size()) {
    storage.resize(s.size() + 32);
    auto base = (reinterpret_cast<uintptr_t>(storage.data()) + 15) & ~uintptr_t{15};
    ptr = reinterpret_cast<uint8_t*>(base) + shift;
    std::memcpy(ptr, s.data(), s.size());
  }
  std::vector<uint8_t> storage;
  uint8_t* ptr;
  size_t size;
};

struct SmallCnn {
  SmallCnn() {
    std::mt19937 rng(5);
    auto r8 = [&](size_t n) {
      std::vector<int8_t> v(n);
      for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
      return v;
    };
    conv_w = r8(4 * 3 * 3 * 1);
    conv_b = {100, -200, 300, 0};
    fc_w = r8(10 * 64);
    fc_b.assign(10, 50);
    for (int i = 0; i < 4; ++i) {
      int s = 0;
      int32_t m = 0;
      quantize_multiplier(0.004 + 0.001 * i, &m, &s);
      conv_m.push_back(m);
      conv_s.push_back(s);
    }
    for (int i = 0; i < 10; ++i) {
      int s = 0;
      int32_t m = 0;
      quantize_multiplier(0.002, &m, &s);
      fc_m.push_back(m);
      fc_s.push_back(s);
    }
    build_softmax_table(0.1f, 1.0f, softmax_table);
    input = r8(64);
  }

  ModelSpec spec() const {
    ModelSpec m;
    m.device_class = "cortex-m4-256k";
    m.model_name = "small-cnn";
    auto act = [](const char* name, Dims d, float scale, int32_t zp, uint32_t off) {
      TensorSpec t;
      t.name = name;
      t.dims = d;
      t.scale = {scale};
      t.zero_point = {zp};
      t.arena_offset = off;
      return t;
    };
    m.tensors.push_back(act("input", {1, 8, 8, 1}, 0.02f, -3, 0));          // 0
    m.tensors.push_back(act("conv", {1, 8, 8, 4}, 0.05f, -128, 64));        // 1
    m.tensors.push_back(act("pool", {1, 4, 4, 4}, 0.05f, -128, 0));         // 2
    m.tensors.push_back(act("logits", {1, 1, 1, 10}, 0.1f, 5, 64));         // 3
    m.tensors.push_back(act("probs", {1, 1, 1, 10}, 1 / 256.f, -128, 80));  // 4
    TensorSpec w;
    w.name = "conv.weight";
    w.dims = {4, 3, 3, 1};
    w.scale = {0.01f, 0.01f, 0.01f, 0.01f};
    w.zero_point = {0, 0, 0, 0};
    w.data = bytes_of(conv_w);
    m.tensors.push_back(w);  // 5
    TensorSpec b;
    b.name = "conv.bias";
    b.type = artifact::TensorType_Int32;
    b.dims = {1, 1, 1, 4};
    b.data = bytes_of(conv_b);
    m.tensors.push_back(b);  // 6
    TensorSpec fw;
    fw.name = "fc.weight";
    fw.dims = {10, 1, 1, 64};
    fw.scale = std::vector<float>(10, 0.01f);
    fw.zero_point = std::vector<int32_t>(10, 0);
    fw.data = bytes_of(fc_w);
    m.tensors.push_back(fw);  // 7
    TensorSpec fb;
    fb.name = "fc.bias";
    fb.type = artifact::TensorType_Int32;
    fb.dims = {1, 1, 1, 10};
    fb.data = bytes_of(fc_b);
    m.tensors.push_back(fb);  // 8

    OperatorSpec conv;
    conv.kind = artifact::OpKind_Conv2D;
    conv.inputs = {0, 5, 6};
    conv.outputs = {1};
    conv.padding = {1, 1, 1, 1};
    conv.activation_min = -128;  // ReLU at zero point -128
    conv.requant_multiplier = conv_m;
    conv.requant_shift = conv_s;
    OperatorSpec pool;
    pool.kind = artifact::OpKind_MaxPool2D;
    pool.inputs = {1};
    pool.outputs = {2};
    pool.filter_h = pool.filter_w = pool.stride_h = pool.stride_w = 2;
    OperatorSpec fc;
    fc.kind = artifact::OpKind_FullyConnected;
    fc.inputs = {2, 7, 8};
    fc.outputs = {3};
    fc.requant_multiplier = fc_m;
    fc.requant_shift = fc_s;
    OperatorSpec sm;
    sm.kind = artifact::OpKind_Softmax;
    sm.inputs = {3};
    sm.outputs = {4};
    sm.lut_u32.assign(softmax_table, softmax_table + 256);
    m.operators = {conv, pool, fc, sm};
    m.inputs = {0};
    m.outputs = {4};
    m.tensor_arena_bytes = 320;
    m.scratch_bytes = static_cast<uint32_t>(
        std::max(conv2d_scratch_size({4, 3, 3, 1}), fully_connected_scratch_size(64)));
    return m;
  }

  // The same network as a direct chain of reference kernels.
  std::vector<int8_t> direct() const {
    std::vector<int8_t> conv(256), pool(64), logits(10), probs(10);
    Conv2DParams cp;
    cp.padding = {1, 1, 1, 1};
    cp.input_offset = 3;
    cp.output_offset = -128;
    ref::conv2d(cp, {conv_m.data(), conv_s.data()}, {1, 8, 8, 1}, input.data(), {4, 3, 3, 1},
                conv_w.data(), conv_b.data(), {1, 8, 8, 4}, conv.data(), nullptr, 0);
    PoolParams pp;
    pp.filter_h = pp.filter_w = pp.stride_h = pp.stride_w = 2;
    ref::max_pool2d(pp, {1, 8, 8, 4}, conv.data(), {1, 4, 4, 4}, pool.data());
    FullyConnectedParams fp;
    fp.input_offset = 128;
    fp.output_offset = 5;
    ref::fully_connected(fp, {fc_m.data(), fc_s.data()}, 1, 64, pool.data(), 10, fc_w.data(),
                         fc_b.data(), logits.data(), nullptr, 0);
    ref::softmax(softmax_table, 1, 10, logits.data(), probs.data());
    return probs;
  }

  std::vector<int8_t> conv_w, fc_w, input;
  std::vector<int32_t> conv_b, fc_b, conv_m, conv_s, fc_m, fc_s;
  uint32_t softmax_table[256];
};

TEST(Interpreter, RunsLikeADirectChainOfKernels) {
  SmallCnn net;
  const auto bytes = write_artifact(net.spec());
  EXPECT_TRUE(content_hash_matches(bytes));
  Aligned a(bytes);
  Interpreter interp;
  auto err = interp.load(a.ptr, a.size);
  ASSERT_EQ(err.status, LoadStatus::kOk) << err.what << " at " << err.index;
  EXPECT_EQ(interp.arena_bytes(), 320u + net.spec().scratch_bytes);
  std::vector<uint8_t> arena(interp.arena_bytes());
  EXPECT_EQ(interp.bind_arena(arena.data(), arena.size() - 1).status, LoadStatus::kArenaTooSmall);
  ASSERT_EQ(interp.bind_arena(arena.data(), arena.size()).status, LoadStatus::kOk);
  ASSERT_EQ(interp.input(0).bytes, 64u);
  std::memcpy(interp.input(0).data, net.input.data(), 64);

  struct Counts {
    int ops = 0;
    uint32_t ticks = 0;
  } counts;
  Profiler prof;
  prof.ctx = &counts;
  prof.now = [](void* c) { return ++static_cast<Counts*>(c)->ticks; };
  prof.record = [](void* c, int32_t, artifact::OpKind, uint32_t elapsed) {
    EXPECT_EQ(elapsed, 1u);
    ++static_cast<Counts*>(c)->ops;
  };
  interp.set_profiler(prof);
  const long before = g_allocations.load();
  ASSERT_EQ(interp.invoke().status, LoadStatus::kOk);
  EXPECT_EQ(g_allocations.load(), before) << "invoke() allocated";
  EXPECT_EQ(counts.ops, 4);
  const auto out = interp.output(0);
  const std::vector<int8_t> got(static_cast<int8_t*>(out.data),
                                static_cast<int8_t*>(out.data) + 10);
  EXPECT_EQ(got, net.direct());
  // Segments for tensor-wise deltas name the constant tensors, their scales and the
  // operators' requantization vectors; the content hash ends the artifact.
  const auto segs = tensor_segments(bytes);
  auto find = [&](const std::string& name) {
    for (const auto& s : segs) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no segment " << name;
    return TensorSegment{};
  };
  const auto w = find("conv.weight");
  EXPECT_EQ(w.kind, SegmentKind::kInt8);
  EXPECT_EQ(bytes.substr(w.offset, w.size), bytes_of(net.conv_w));
  EXPECT_EQ(find("conv.weight/scale").kind, SegmentKind::kFloat32);
  EXPECT_EQ(find("conv.weight/scale").size, 16u);  // four channels
  EXPECT_EQ(content_hash_offset(bytes), static_cast<int64_t>(bytes.size()) - 32);
  EXPECT_EQ(content_hash_offset("not an artifact"), -1);
  int multipliers = 0;
  for (const auto& s : segs) {
    multipliers += s.kind == SegmentKind::kMultiplier;
    EXPECT_LE(s.offset + s.size, bytes.size()) << s.name;
  }
  EXPECT_EQ(multipliers, 2);  // the convolution and the fully connected layer
}

TEST(Interpreter, RefusesMalformedArtifactsNamingTheCheck) {
  SmallCnn net;
  auto check = [](const ModelSpec& spec, LoadStatus expected, int32_t index = -2) {
    const auto bytes = write_artifact(spec);
    Aligned a(bytes);
    Interpreter interp;
    const auto err = interp.load(a.ptr, a.size);
    EXPECT_EQ(err.status, expected) << err.what;
    if (index != -2) {
      EXPECT_EQ(err.index, index) << err.what;
    }
    return std::string(err.what);
  };
  {  // Truncated and foreign bytes.
    const auto bytes = write_artifact(net.spec());
    Aligned a(bytes.substr(0, bytes.size() / 2));
    Interpreter interp;
    EXPECT_EQ(interp.load(a.ptr, a.size).status, LoadStatus::kNotVerified);
    Aligned junk(std::string(200, 'x'));
    EXPECT_EQ(interp.load(junk.ptr, junk.size).status, LoadStatus::kWrongIdentifier);
    Aligned shifted(bytes, 4);
    EXPECT_EQ(interp.load(shifted.ptr, shifted.size).status, LoadStatus::kMisaligned);
  }
  auto spec = net.spec();
  spec.format_major = 2;
  check(spec, LoadStatus::kUnsupportedMajor);

  spec = net.spec();
  spec.tensors[1].arena_offset = 300;  // 256 bytes from 300 pass the 320-byte plan
  EXPECT_EQ(check(spec, LoadStatus::kBadTensor, 1), "tensor outside the planned arena");

  spec = net.spec();
  spec.operators[0].inputs = {0, 5};
  EXPECT_EQ(check(spec, LoadStatus::kBadOperator, 0), "conv arity or types");

  spec = net.spec();
  spec.tensors[1].dims = {1, 7, 8, 4};
  check(spec, LoadStatus::kBadOperator, 0);

  spec = net.spec();
  spec.operators[2].requant_shift.pop_back();
  EXPECT_EQ(check(spec, LoadStatus::kBadOperator, 2), "requantization length differs from outputs");

  spec = net.spec();
  spec.tensors[7].data.pop_back();
  EXPECT_EQ(check(spec, LoadStatus::kBadTensor, 7), "buffer size differs from the tensor's");

  spec = net.spec();
  spec.operators[3].lut_u32.resize(100);
  check(spec, LoadStatus::kBadOperator, 3);

  spec = net.spec();
  spec.outputs = {5};  // a constant is not an output
  check(spec, LoadStatus::kBadGraph);

  spec = net.spec();
  spec.scratch_bytes = 8;
  EXPECT_EQ(check(spec, LoadStatus::kBadOperator, 0), "scratch_bytes below the conv's need");
}

TEST(Interpreter, RandomCorruptionNeverCrashes) {
  SmallCnn net;
  const auto bytes = write_artifact(net.spec());
  std::mt19937 rng(99);
  int refused = 0;
  for (int t = 0; t < 3000; ++t) {
    std::string bad = bytes;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
      bad[rng() % bad.size()] = static_cast<char>(rng());
    }
    Aligned a(bad);
    Interpreter interp;
    if (interp.load(a.ptr, a.size).status != LoadStatus::kOk) {
      ++refused;
      continue;
    }
    if (interp.arena_bytes() > (1u << 20)) continue;  // a device would not have it either
    std::vector<uint8_t> arena(interp.arena_bytes() + 16);
    if (interp.bind_arena(arena.data(), arena.size()).status == LoadStatus::kOk) {
      interp.invoke();  // must stay inside its buffers (ASan checks it in CI)
    }
  }
  EXPECT_GT(refused, 100);
}

// Format 1.1's typed options: Transpose gathers with StridedCopyOptions (checked against
// the input's extent at load), Pad writes PadOptions' value; a kind that needs options
// refuses an artifact without them.
TEST(Interpreter, TypedOptionsDriveTransposeAndPadAndAreChecked) {
  auto act = [](const char* name, Dims d, uint32_t off) {
    TensorSpec t;
    t.name = name;
    t.dims = d;
    t.scale = {0.1f};
    t.zero_point = {4};
    t.arena_offset = off;
    return t;
  };
  ModelSpec m;
  m.tensors = {act("x", {1, 2, 3, 4}, 0), act("t", {1, 4, 2, 3}, 32), act("p", {1, 4, 2, 5}, 64)};
  OperatorSpec tr;
  tr.kind = artifact::OpKind_Transpose;  // NHWC [1, 2, 3, 4] to [1, 4, 2, 3] (perm 0 3 1 2)
  tr.inputs = {0};
  tr.outputs = {1};
  tr.copy_count = {1, 4, 2, 3};
  tr.copy_step = {0, 1, 12, 4};
  OperatorSpec pd;
  pd.kind = artifact::OpKind_Pad;
  pd.inputs = {1};
  pd.outputs = {2};
  pd.pad_before = {0, 0, 0, 1};
  pd.pad_after = {0, 0, 0, 1};
  pd.has_pad_value = true;
  pd.pad_value = -77;
  m.operators = {tr, pd};
  m.inputs = {0};
  m.outputs = {2};
  m.tensor_arena_bytes = 128;
  const auto bytes = write_artifact(m);
  Aligned a(bytes);
  Interpreter interp;
  ASSERT_EQ(interp.load(a.ptr, a.size).status, LoadStatus::kOk);
  std::vector<uint8_t> arena(interp.arena_bytes());
  ASSERT_EQ(interp.bind_arena(arena.data(), arena.size()).status, LoadStatus::kOk);
  auto* in = static_cast<int8_t*>(interp.input(0).data);
  for (int i = 0; i < 24; ++i) in[i] = static_cast<int8_t>(i);
  ASSERT_EQ(interp.invoke().status, LoadStatus::kOk);
  const auto* out = static_cast<const int8_t*>(interp.output(0).data);
  for (int c = 0; c < 4; ++c) {
    for (int h = 0; h < 2; ++h) {
      const int8_t* row = out + (c * 2 + h) * 5;
      EXPECT_EQ(row[0], -77);
      EXPECT_EQ(row[4], -77);
      for (int w = 0; w < 3; ++w) EXPECT_EQ(row[1 + w], (h * 3 + w) * 4 + c) << c << h << w;
    }
  }
  auto refused = [](ModelSpec spec) {
    const auto b = write_artifact(spec);
    Aligned al(b);
    Interpreter i;
    const auto err = i.load(al.ptr, al.size);
    EXPECT_EQ(err.status, LoadStatus::kBadOperator);
    return std::string(err.what);
  };
  const std::string copy_error = "strided copy options, shapes or quantization";
  ModelSpec bad = m;
  bad.operators[0].copy_step = {0, 1, 12, 5};  // reaches element 24 of 24
  EXPECT_EQ(refused(bad), copy_error);
  bad = m;
  bad.operators[0].copy_offset = -1;
  EXPECT_EQ(refused(bad), copy_error);
  bad = m;
  bad.operators[0].copy_count = {1, 4, 2, 2};  // 16 elements for an output of 24
  EXPECT_EQ(refused(bad), copy_error);
  bad = m;
  bad.operators[0].copy_count.clear();  // options without their vectors
  bad.operators[0].copy_step.clear();
  EXPECT_EQ(refused(bad), copy_error);
  bad = m;
  bad.tensors[1].zero_point = {5};  // a gather cannot requantize
  EXPECT_EQ(refused(bad), copy_error);
}

// Format 1.2's typed options: Add, Mul, Mean and Softmax take their integers from
// AddOptions, MulOptions, MeanOptions and SoftmaxOptions, and still from positional
// int_params (format 1.1); both run like a direct chain of the reference kernels, the
// options are one int32 segment for deltas, and malformed ones are refused by name.
struct ParameterisedChain {
  TensorQuant qx{0.05f, -10}, qc{0.02f, 3}, qa{0.07f, -20}, qm{0.06f, 5}, qmean{0.05f, 0};
  int8_t constant = 77;
  uint32_t table[256];
  ParameterisedChain() { build_softmax_table(qmean.scale, 1.0f, table); }

  ModelSpec spec(bool positional) const {
    auto t = [](const char* name, Dims d, TensorQuant q, uint32_t off) {
      TensorSpec s;
      s.name = name;
      s.dims = d;
      s.scale = {q.scale};
      s.zero_point = {q.zero_point};
      s.arena_offset = off;
      return s;
    };
    ModelSpec m;
    m.tensors = {t("x", {1, 2, 2, 4}, qx, 0),
                 t("a", {1, 2, 2, 4}, qa, 16),
                 t("m", {1, 2, 2, 4}, qm, 32),
                 t("mean", {1, 1, 1, 4}, qmean, 48),
                 t("s", {1, 1, 1, 4}, {1 / 256.f, -128}, 64),
                 t("c", {1, 1, 1, 1}, qc, 0)};
    m.tensors[5].data = std::string(1, static_cast<char>(constant));
    OperatorSpec add, mul, mean, sm;
    add.kind = artifact::OpKind_Add;
    add.inputs = {0, 5};
    add.outputs = {1};
    add.add = make_add_params(qx, qc, qa, {});
    mul.kind = artifact::OpKind_Mul;
    mul.inputs = {1, 5};
    mul.outputs = {2};
    mul.mul = make_mul_params(qa, qc, qm, {});
    mean.kind = artifact::OpKind_Mean;
    mean.inputs = {2};
    mean.outputs = {3};
    mean.mean = make_mean_params(qm, qmean, 4);
    sm.kind = artifact::OpKind_Softmax;
    sm.inputs = {3};
    sm.outputs = {4};
    sm.lut_u32.assign(table, table + 256);
    if (positional) {
      const auto& p = add.add;
      add.int_params = {p.input1_offset,     p.input2_offset, p.output_offset,     p.left_shift,
                        p.input1_multiplier, p.input1_shift,  p.input2_multiplier, p.input2_shift,
                        p.output_multiplier, p.output_shift};
      mul.int_params = {mul.mul.input1_offset, mul.mul.input2_offset, mul.mul.output_offset,
                        mul.mul.output_multiplier, mul.mul.output_shift};
      mean.int_params = {mean.mean.input_offset, mean.mean.output_offset, mean.mean.multiplier,
                         mean.mean.shift};
    }
    m.operators = {add, mul, mean, sm};
    m.inputs = {0};
    m.outputs = {4};
    m.tensor_arena_bytes = 80;
    return m;
  }

  std::vector<int8_t> direct(const std::vector<int8_t>& x) const {
    std::vector<int8_t> a(16), m(16), mean(4), s(4);
    ref::add(make_add_params(qx, qc, qa, {}), 16, x.data(), 1, &constant, a.data());
    ref::mul(make_mul_params(qa, qc, qm, {}), 16, a.data(), 1, &constant, m.data());
    ref::mean_hw(make_mean_params(qm, qmean, 4), {1, 2, 2, 4}, m.data(), mean.data());
    ref::softmax(table, 1, 4, mean.data(), s.data());
    return s;
  }
};

std::string load_error(const ModelSpec& spec) {
  const auto b = write_artifact(spec);
  Aligned al(b);
  Interpreter i;
  return i.load(al.ptr, al.size).what;
}

TEST(Interpreter, TypedAndPositionalParametersRunAlike) {
  ParameterisedChain chain;
  std::mt19937 rng(3);
  for (const bool positional : {false, true}) {
    const auto bytes = write_artifact(chain.spec(positional));
    Aligned a(bytes);
    Interpreter interp;
    const auto err = interp.load(a.ptr, a.size);
    ASSERT_EQ(err.status, LoadStatus::kOk) << err.what << " at " << err.index;
    std::vector<uint8_t> arena(interp.arena_bytes());
    ASSERT_EQ(interp.bind_arena(arena.data(), arena.size()).status, LoadStatus::kOk);
    for (int sample = 0; sample < 50; ++sample) {
      std::vector<int8_t> x(16);
      for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
      std::memcpy(interp.input(0).data, x.data(), 16);
      ASSERT_EQ(interp.invoke().status, LoadStatus::kOk);
      const auto* out = static_cast<const int8_t*>(interp.output(0).data);
      EXPECT_EQ(std::vector<int8_t>(out, out + 4), chain.direct(x)) << positional << sample;
    }
    // The integers as one segment: "<output>/options" (typed) or ".../int_params".
    const auto segs = tensor_segments(bytes);
    const auto add = std::find_if(segs.begin(), segs.end(), [&](const TensorSegment& s) {
      return s.name == (positional ? "a/int_params" : "a/options");
    });
    ASSERT_NE(add, segs.end()) << positional;
    EXPECT_EQ(add->kind, SegmentKind::kInt32);
    ASSERT_EQ(add->size, 40u);
    std::vector<int32_t> got(10);
    std::memcpy(got.data(), bytes.data() + add->offset, 40);
    const ModelSpec typed = chain.spec(false);  // kept: p refers into it
    const auto& p = typed.operators[0].add;
    std::vector<int32_t> want = {p.input1_offset,     p.input2_offset,     p.output_offset,
                                 p.left_shift,        p.input1_multiplier, p.input1_shift,
                                 p.input2_multiplier, p.input2_shift,      p.output_multiplier,
                                 p.output_shift};
    std::sort(got.begin(), got.end());  // the table's fields, in the builder's order
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
    for (const char* name : {"m", "mean", "s"}) {
      const std::string segment = std::string(name) + (positional ? "/int_params" : "/options");
      const bool found = std::any_of(segs.begin(), segs.end(),
                                     [&](const TensorSegment& s) { return s.name == segment; });
      EXPECT_EQ(found, !(positional && std::string(name) == "s")) << segment;
    }
  }
}

TEST(Interpreter, MalformedTypedOrPositionalParametersAreRefused) {
  ParameterisedChain chain;
  ModelSpec bad = chain.spec(false);
  bad.operators[2].mean.shift = 40;
  EXPECT_EQ(load_error(bad), "mean shapes or parameters");
  bad = chain.spec(false);
  bad.operators[0].add.input1_multiplier = -1;
  EXPECT_EQ(load_error(bad), "add/mul parameters out of range");
  bad = chain.spec(false);
  bad.operators[1].mul.output_shift = -32;
  EXPECT_EQ(load_error(bad), "add/mul parameters out of range");
  bad = chain.spec(true);
  bad.operators[0].int_params.pop_back();  // nine positional values for Add
  EXPECT_EQ(load_error(bad), "add/mul arity, types or parameters");
  bad = chain.spec(false);
  bad.operators[3].softmax_mode = artifact::SoftmaxMode_Tflm;  // not TFLM's exp table
  EXPECT_EQ(load_error(bad), "softmax mode, table or depth");
  bad = chain.spec(false);
  bad.operators[3].softmax_mode = static_cast<artifact::SoftmaxMode>(7);
  EXPECT_EQ(load_error(bad), "softmax mode, table or depth");
  bad = chain.spec(true);
  bad.operators[3].int_params = {2};
  EXPECT_EQ(load_error(bad), "softmax mode, table or depth");
  bad = chain.spec(false);
  bad.operators[1].kind = static_cast<artifact::OpKind>(artifact::OpKind_MAX + 1);
  EXPECT_EQ(load_error(bad), "unknown operator kind");
}

// A union type without its table (the verifier lets a union's value be absent) and a
// table without its struct are refused, not read (the corruption test above found the
// first as a null dereference).
TEST(Interpreter, OptionsTypeWithoutItsTableIsRefused) {
  ParameterisedChain chain;
  for (const bool with_table : {false, true}) {
    flatbuffers::FlatBufferBuilder b;
    const artifact::Dims4 shape(1, 1, 1, 4);
    auto tensor = [&](const char* name, uint32_t offset) {
      return artifact::CreateTensor(b, b.CreateString(name), artifact::TensorType_Int8, &shape,
                                    b.CreateVector(std::vector<float>{0.05f}),
                                    b.CreateVector(std::vector<int32_t>{0}), -1, offset);
    };
    const auto tensors = b.CreateVector(std::vector{tensor("x", 0), tensor("y", 16)});
    const auto options = with_table ? artifact::CreateSoftmaxOptions(b).Union() : 0;
    const auto op = artifact::CreateOperator(
        b, artifact::OpKind_Softmax, b.CreateVector(std::vector<int32_t>{0}),
        b.CreateVector(std::vector<int32_t>{1}), 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, -128, 127, 0,
        0, 0, 0, 0, 0, b.CreateVector(chain.table, 256), artifact::OperatorOptions_SoftmaxOptions,
        options);
    const auto io0 = b.CreateVector(std::vector<int32_t>{0});
    const auto io1 = b.CreateVector(std::vector<int32_t>{1});
    artifact::FinishModelBuffer(
        b, artifact::CreateModel(b, 1, 2, 0, 0, tensors, b.CreateVector(std::vector{op}), io0, io1,
                                 0, 32, 0));
    Aligned a(std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
    Interpreter interp;
    const auto err = interp.load(a.ptr, a.size);
    EXPECT_EQ(err.status, LoadStatus::kBadOperator) << with_table;
    EXPECT_STREQ(err.what, "softmax mode, table or depth") << with_table;
  }
}

}  // namespace
