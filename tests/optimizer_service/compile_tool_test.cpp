// tinyfleet-compile as a user runs it: --help documents every flag of both commands, and
// `run` gives mnist-8's expected outputs on its three published test sets (float, within
// 1e-4 of the largest logit; int8 compiled here, the same argmax), reading .npy/.npz and
// writing .npy; an int8 .tflite runs with its own quantization.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

const std::string kMnist = "models/thirdparty/onnx_model_zoo_mnist8/";

struct Ran {
  int exit = -1;
  std::string out;
};

Ran tool(const std::string& args) {
  const std::string cmd = std::string(TINYFLEET_COMPILE_TOOL) + " " + args + " 2>&1";
  Ran r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A float32 .npy written here (independently of the tool's writer).
void write_npy(const std::string& path, const std::vector<int64_t>& shape,
               const std::vector<double>& values) {
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
  if (shape.size() == 1) dims += ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.resize(117, ' ');
  header += '\n';  // 10 + 118 = 128 bytes before the data
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(header.size()), 0};
  f.write(len, 2);
  f << header;
  for (double v : values) {
    const auto x = static_cast<float>(v);
    f.write(reinterpret_cast<const char*>(&x), 4);
  }
}

std::vector<double> tensor_pb(const std::string& path) {
  auto bytes = read_file(fixture_path(path));
  EXPECT_TRUE(bytes) << path;
  onnx::TensorProto t;
  EXPECT_TRUE(bytes && t.ParseFromString(*bytes)) << path;
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
  if (v.empty()) v.assign(t.float_data().begin(), t.float_data().end());
  return {v.begin(), v.end()};
}

size_t argmax(const std::vector<double>& v, size_t from, size_t n) {
  return static_cast<size_t>(std::max_element(v.begin() + static_cast<std::ptrdiff_t>(from),
                                              v.begin() + static_cast<std::ptrdiff_t>(from + n)) -
                             v.begin()) -
         from;
}

TEST(CompileTool, HelpDocumentsEveryFlagOfBothCommands) {
  const Ran help = tool("--help");
  EXPECT_EQ(help.exit, 0) << help.out;
  for (const char* flag :
       {"--class", "--calib", "--val", "--output", "--format", "--catalog", "--json", "run"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << " missing in:\n" << help.out;
  }
  const Ran run_help = tool("run --help");
  EXPECT_EQ(run_help.exit, 0) << run_help.out;
  for (const char* flag : {"--input", "--key", "--int8", "--calib", "--artifact", "--output",
                           "--format", "--limit", "--json"}) {
    EXPECT_NE(run_help.out.find(flag), std::string::npos) << flag << " missing in:\n"
                                                          << run_help.out;
  }
  EXPECT_EQ(tool("--no-such-flag").exit, 2);
  EXPECT_EQ(tool("run").exit, 2);  // a model and --input are required
  EXPECT_EQ(tool(fixture_path("models/digits_mlp.onnx") + " --class x --format caffe").exit, 2);
}

// The declared format (what fleetd stores with a version) is checked against the bytes.
TEST(CompileTool, ADeclaredFormatTheBytesAreNotInIsRefused) {
  const std::string tflite = fixture_path("models/thirdparty/tflite_micro/hello_world_int8.tflite");
  const Ran ok = tool(tflite + " --class cortex-m4-256k --format tflite --json");
  EXPECT_EQ(ok.exit, 0) << ok.out;
  EXPECT_NE(ok.out.find("\"model_format\": \"tflite\""), std::string::npos) << ok.out;
  const Ran wrong = tool(tflite + " --class cortex-m4-256k --format onnx");
  EXPECT_EQ(wrong.exit, 1) << wrong.out;
  EXPECT_NE(wrong.out.find("declared onnx but its bytes are TFLite"), std::string::npos)
      << wrong.out;
  const Ran onnx =
      tool(fixture_path("models/digits_mlp.onnx") + " --class cortex-m4-256k --calib " +
           fixture_path("data/digits_calib.npz") + " --format tflite");
  EXPECT_EQ(onnx.exit, 1) << onnx.out;
  EXPECT_NE(onnx.out.find("declared tflite but its bytes are not TFLite"), std::string::npos)
      << onnx.out;
}

TEST(CompileTool, RunGivesMnist8sPublishedOutputsInFloatAndItsArgmaxInInt8) {
  const std::string dir = ::testing::TempDir();
  std::vector<double> inputs, want;
  for (int set = 0; set < 3; ++set) {
    const std::string d = kMnist + "test_data_set_" + std::to_string(set) + "/";
    const auto in = tensor_pb(d + "input_0.pb");
    const auto out = tensor_pb(d + "output_0.pb");
    ASSERT_EQ(in.size(), 784u);
    ASSERT_EQ(out.size(), 10u);
    inputs.insert(inputs.end(), in.begin(), in.end());
    want.insert(want.end(), out.begin(), out.end());
  }
  write_npy(dir + "/mnist_x.npy", {3, 1, 28, 28}, inputs);
  const std::string model = fixture_path(kMnist + "mnist-8.onnx");
  const Ran f = tool("run " + model + " --input " + dir + "/mnist_x.npy -o " + dir + "/float.npy");
  ASSERT_EQ(f.exit, 0) << f.out;
  auto got = parse_npy(*read_file(dir + "/float.npy"), "float.npy");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->shape, (std::vector<int64_t>{3, 10}));
  ASSERT_EQ(got->values.size(), want.size());
  for (size_t s = 0; s < 3; ++s) {
    double scale = 0;
    for (size_t k = 0; k < 10; ++k) scale = std::max(scale, std::fabs(want[s * 10 + k]));
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_NEAR(got->values[s * 10 + k], want[s * 10 + k], 1e-4 * scale) << s << " " << k;
    }
  }
  // int8: calibrated on the three inputs and their mirror images, from an .npy.
  std::vector<double> calib = inputs;
  for (int s = 0; s < 3; ++s)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        calib.push_back(inputs[static_cast<size_t>(s * 784 + y * 28 + 27 - x)]);
  write_npy(dir + "/mnist_calib.npy", {6, 1, 28, 28}, calib);
  const Ran q = tool("run " + model + " --int8 --calib " + dir + "/mnist_calib.npy --input " + dir +
                     "/mnist_x.npy --json");
  ASSERT_EQ(q.exit, 0) << q.out;
  const auto printed = nlohmann::json::parse(q.out, nullptr, false);
  ASSERT_TRUE(printed.is_array() && printed.size() == 3) << q.out;
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(printed[s]["sample"], s);
    EXPECT_EQ(printed[s]["argmax"], argmax(want, s * 10, 10)) << printed[s].dump();
    EXPECT_EQ(printed[s]["output"].size(), 10u);
  }
  const Ran no_calib = tool("run " + model + " --int8 --input " + dir + "/mnist_x.npy");
  EXPECT_EQ(no_calib.exit, 1);
  EXPECT_NE(no_calib.out.find("--calib is required"), std::string::npos) << no_calib.out;
}

TEST(CompileTool, RunsAnInt8TfliteWithItsOwnQuantization) {
  const std::string dir = ::testing::TempDir();
  write_npy(dir + "/x.npy", {4, 1}, {0.0, 1.5707963, 3.1415926, 4.712389});
  const std::string model = fixture_path("models/thirdparty/tflite_micro/hello_world_int8.tflite");
  const Ran r = tool("run " + model + " --int8 --input " + dir + "/x.npy -o " + dir + "/y.npy");
  ASSERT_EQ(r.exit, 0) << r.out;
  auto y = parse_npy(*read_file(dir + "/y.npy"), "y.npy");
  ASSERT_TRUE(y) << y.error().message;
  ASSERT_EQ(y->shape, (std::vector<int64_t>{4, 1}));
  // sin(x), as the model was trained to approximate it.
  const double want[4] = {0.0, 1.0, 0.0, -1.0};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y->values[i], want[i], 0.15) << i;
  const Ran f = tool("run " + model + " --input " + dir + "/x.npy");
  EXPECT_EQ(f.exit, 1);
  EXPECT_NE(f.out.find("no float graph"), std::string::npos) << f.out;
}

}  // namespace
