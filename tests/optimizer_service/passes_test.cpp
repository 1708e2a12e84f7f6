// The graph passes on small graphs built by hand, checked against the float executor:
// each rewrite leaves the function unchanged and removes what it says it removes.
#include <gtest/gtest.h>

#include <random>

#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/passes.h"

using namespace tinyfleet::optimizer_service;

namespace {

Tensor activation(const char* name, tinyfleet::kernels::Dims d) {
  Tensor t;
  t.name = name;
  t.dims = d;
  return t;
}

Tensor constant(const char* name, tinyfleet::kernels::Dims d, std::mt19937& rng) {
  Tensor t = activation(name, d);
  t.constant = true;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < d.elements(); ++i) t.data.push_back(u(rng));
  return t;
}

Node op(OpType type, std::vector<int> in, int out) {
  Node n;
  n.type = type;
  n.name = "test node";
  n.inputs = std::move(in);
  n.outputs = {out};
  return n;
}

std::vector<float> run(const Graph& g, const std::vector<float>& x) {
  FloatExecutor exec(g);
  auto r = exec.run(x);
  EXPECT_TRUE(r) << r.error().message;
  return exec.output();
}

void expect_same(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f) << "at " << i;
}

// x [1,6,6,3] -> Pad(1) -> Conv 3x3 (4 filters) -> Mul 0.5 -> ReLU -> Reshape (same) ->
// Concat (one input) -> y.
Graph sample(std::mt19937& rng) {
  Graph g;
  const int x = g.add_tensor(activation("x", {1, 6, 6, 3}));
  const int p = g.add_tensor(activation("p", {1, 8, 8, 3}));
  const int w = g.add_tensor(constant("w", {4, 3, 3, 3}, rng));
  const int b = g.add_tensor(constant("b", {1, 1, 1, 4}, rng));
  const int c = g.add_tensor(activation("c", {1, 6, 6, 4}));
  Tensor half = activation("half", {1, 1, 1, 1});
  half.constant = true;
  half.data = {0.5f};
  const int k = g.add_tensor(half);
  const int m = g.add_tensor(activation("m", {1, 6, 6, 4}));
  const int r = g.add_tensor(activation("r", {1, 6, 6, 4}));
  const int s = g.add_tensor(activation("s", {1, 6, 6, 4}));
  const int y = g.add_tensor(activation("y", {1, 6, 6, 4}));
  Node pad = op(OpType::kPad, {x}, p);
  pad.pad_before[1] = pad.pad_before[2] = pad.pad_after[1] = pad.pad_after[2] = 1;
  Node conv = op(OpType::kConv2D, {p, w, b}, c);
  conv.filter_h = conv.filter_w = 3;
  Node relu = op(OpType::kClamp, {m}, r);
  relu.activation.min = 0.0f;
  g.nodes = {pad,
             conv,
             op(OpType::kMul, {c, k}, m),
             relu,
             op(OpType::kReshape, {r}, s),
             op(OpType::kConcatenation, {s}, y)};
  g.nodes.back().axis = 3;
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

}  // namespace

TEST(Passes, EachRewriteKeepsTheFunction) {
  std::mt19937 rng(5);
  Graph g = sample(rng);
  std::vector<float> x(6 * 6 * 3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& v : x) v = u(rng);
  const auto want = run(g, x);
  EXPECT_EQ(fold_scalar_affine(g), 1);  // Mul 0.5 into the conv
  expect_same(run(g, x), want);
  EXPECT_EQ(fuse_pads(g), 1);
  expect_same(run(g, x), want);
  EXPECT_EQ(g.nodes[0].type, OpType::kConv2D);
  EXPECT_EQ(g.nodes[0].padding.top, 1);
  EXPECT_EQ(g.nodes[0].padding.right, 1);
  EXPECT_EQ(fuse_activations(g), 1);
  expect_same(run(g, x), want);
  EXPECT_EQ(remove_no_ops(g), 2);  // the same-shape reshape and the one-input concat
  expect_same(run(g, x), want);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].type, OpType::kConv2D);
}

TEST(Passes, APadOfChannelsStays) {
  std::mt19937 rng(6);
  Graph g = sample(rng);
  g.nodes[0].pad_after[3] = 1;  // pads channels too
  g.tensors[1].dims.c = 4;
  EXPECT_EQ(fuse_pads(g), 0);
}

TEST(Passes, AReluAfterConcatGoesIntoEachProducer) {
  std::mt19937 rng(7);
  Graph g;
  const int x = g.add_tensor(activation("x", {1, 4, 4, 2}));
  const int w1 = g.add_tensor(constant("w1", {3, 1, 1, 2}, rng));
  const int b1 = g.add_tensor(constant("b1", {1, 1, 1, 3}, rng));
  const int w2 = g.add_tensor(constant("w2", {5, 1, 1, 2}, rng));
  const int b2 = g.add_tensor(constant("b2", {1, 1, 1, 5}, rng));
  const int a = g.add_tensor(activation("a", {1, 4, 4, 3}));
  const int b = g.add_tensor(activation("b", {1, 4, 4, 5}));
  const int c = g.add_tensor(activation("c", {1, 4, 4, 8}));
  const int y = g.add_tensor(activation("y", {1, 4, 4, 8}));
  Node cat = op(OpType::kConcatenation, {a, b}, c);
  cat.axis = 3;
  Node relu = op(OpType::kClamp, {c}, y);
  relu.activation = {0.0f, 6.0f};
  g.nodes = {op(OpType::kConv2D, {x, w1, b1}, a), op(OpType::kConv2D, {x, w2, b2}, b), cat, relu};
  g.inputs = {x};
  g.outputs = {y};
  std::vector<float> in(32);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 7) - 3.0f;
  const auto want = run(g, in);
  EXPECT_EQ(fuse_activations(g), 1);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].activation.max, 6.0f);
  EXPECT_EQ(g.nodes[1].activation.min, 0.0f);
  expect_same(run(g, in), want);
}
