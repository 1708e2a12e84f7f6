// What a model costs is counted from its shapes and bounded before the compiler runs it: a
// small file declaring a huge activation would otherwise hold a compile worker for hours.
#include <gtest/gtest.h>

#include <map>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/graph_cost.h"

using namespace tinyfleet::optimizer_service;

namespace {

// x[1,H,W,1] -> 1x1 Conv2D to `channels` (weights 1 x channels, bias) -> y.
Graph pointwise(int32_t h, int32_t w, int32_t channels) {
  Graph g;
  Tensor x{"x", {1, h, w, 1}};
  Tensor weights{"w", {channels, 1, 1, 1}, true, std::vector<float>(channels, 0.5f)};
  Tensor bias{"b", {1, 1, 1, channels}, true, std::vector<float>(channels, 0.0f)};
  Tensor y{"y", {1, h, w, channels}};
  const int xi = g.add_tensor(x), wi = g.add_tensor(weights), bi = g.add_tensor(bias),
            yi = g.add_tensor(y);
  Node conv;
  conv.type = OpType::kConv2D;
  conv.name = "node 0 'Conv'";
  conv.inputs = {xi, wi, bi};
  conv.outputs = {yi};
  g.nodes.push_back(conv);
  g.inputs = {xi};
  g.outputs = {yi};
  return g;
}

TEST(GraphCost, CountsMultiplyAccumulatesAndActivationsFromShapes) {
  const GraphCost c = graph_cost(pointwise(8, 8, 16));
  EXPECT_EQ(c.work, 8.0 * 8 * 16);                // one MAC an output (1x1 kernel, 1 channel in)
  EXPECT_EQ(c.activation_elements, 64.0 + 1024);  // x and y; the constants do not count
  EXPECT_FALSE(check_cost(pointwise(8, 8, 16), {}).has_value());
}

TEST(GraphCost, TooManyMultiplyAccumulatesAreRefusedBeforeCalibration) {
  // 1024 x 1024 x 4096 outputs: 4.3e9 MACs, from 32 KB of weights.
  const Graph g = pointwise(1024, 1024, 4096);
  CompileOptions options;
  options.max_activation_elements = int64_t{1} << 40;  // only the work bound is at stake
  const auto e = check_cost(g, options);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message,
            "the model needs 4.29e+09 multiply-accumulates per inference; the compiler takes at "
            "most 1.07e+09 (CompileOptions::max_work)");
  // compile_graph refuses it before it looks for calibration data (there is none here).
  const auto r = compile_graph(g, {}, nullptr, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, e->message);
}

TEST(GraphCost, TooManyActivationElementsAreRefused) {
  // 4096 x 4096 x 2: 33.6 M elements out, 16.8 M in; 33.6 M MACs, well within the bound.
  const auto e = check_cost(pointwise(4096, 4096, 2), {});
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("the model's activations hold 5.03e+07 elements"), std::string::npos)
      << e->message;
}

TEST(GraphCost, ShapesWhoseProductPassesInt64AreCountedNotWrapped) {
  Graph g = pointwise(1, 1, 1);
  g.tensors[3].dims = {1 << 30, 1 << 30, 1 << 30, 1 << 30};  // 2^120 elements
  const auto e = check_cost(g, {});
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("1.33e+36"), std::string::npos) << e->message;
}

}  // namespace
