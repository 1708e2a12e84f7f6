// ONNX dims from an operator's upload are bounded before anything multiplies them: a
// tensor with too many dimensions or dims whose product overflows is an error naming it.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "tinyfleet/optimizer_service/onnx_import.h"

using namespace tinyfleet::optimizer_service;

namespace {

// x[1,4] -> Relu -> y, plus an unused initializer `w` of the given dims holding one float.
onnx::ModelProto model_with_initializer(const std::vector<int64_t>& dims) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  for (auto* v : {g->add_input(), g->add_output()}) {
    v->set_name(v == &g->input(0) ? "x" : "y");
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_value(1);
    t->mutable_shape()->add_dim()->set_dim_value(4);
  }
  auto* n = g->add_node();
  n->set_op_type("Relu");
  n->add_input("x");
  n->add_output("y");
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) w->add_dims(d);
  w->add_float_data(1.0f);
  return m;
}

std::string refusal(const onnx::ModelProto& m) {
  auto r = import_onnx(m.SerializeAsString());
  return r ? "" : r.error().message;
}

TEST(OnnxBounds, TheBaseModelImports) { EXPECT_EQ(refusal(model_with_initializer({1})), ""); }

TEST(OnnxBounds, AnInitializerWithTooManyDimsIsRefused) {
  EXPECT_EQ(refusal(model_with_initializer(std::vector<int64_t>(9, 1))),
            "initializer 'w' has 9 dimensions, at most 8");
}

TEST(OnnxBounds, DimsWhoseProductOverflowsAreRefused) {
  // 2^40 x 2^40 x 16 wraps a 64-bit product to 0.
  const auto e = refusal(model_with_initializer({int64_t{1} << 40, int64_t{1} << 40, 16}));
  EXPECT_NE(e.find("initializer 'w' has dims whose product"), std::string::npos) << e;
  EXPECT_NE(refusal(model_with_initializer({-1})).find("negative"), std::string::npos);
}

TEST(OnnxBounds, AGraphInputWithTooManyDimsIsRefused) {
  auto m = model_with_initializer({1});
  for (int i = 0; i < 7; ++i) {
    m.mutable_graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->add_dim()
        ->set_dim_value(1);
  }
  EXPECT_EQ(refusal(m), "value 'x' has 9 dimensions, at most 8");
}

}  // namespace
