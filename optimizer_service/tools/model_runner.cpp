// `tinyfleet-compile run` (model_runner.h).
#include "model_runner.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service::tools {

namespace {

namespace k = tinyfleet::kernels;

// An .npy, or one array of an .npz: `key`, else "x", else the only one.
Result<NpyArray> read_array(const std::string& path, const std::string& key) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  if (bytes->size() >= 6 && bytes->compare(0, 6, "\x93NUMPY") == 0) return parse_npy(*bytes, path);
  auto arrays = parse_npz(*bytes);
  if (!arrays) return CompileError{path + ": " + arrays.error().message};
  std::string want = key;
  if (want.empty()) want = arrays->count("x") || arrays->size() != 1 ? "x" : arrays->begin()->first;
  auto it = arrays->find(want);
  if (it == arrays->end()) {
    std::string known;
    for (const auto& [name, a] : *arrays) known += (known.empty() ? "" : ", ") + name;
    return CompileError{path + " has no array '" + want + "' (it has: " + known + ")"};
  }
  return it->second;
}

// The model's input for sample i: NCHW arrays become NHWC for ONNX; TFLite is NHWC as is.
Result<std::vector<float>> sample(const NpyArray& x, int64_t i, int64_t n, bool tflite,
                                  int64_t want) {
  const int64_t per = x.size() / n;
  if (per != want) {
    return CompileError{"a sample has " + std::to_string(per) + " values, the model's input " +
                        std::to_string(want)};
  }
  if (!tflite && x.shape.size() >= 2) return nhwc_sample(x, i);
  std::vector<float> v(static_cast<size_t>(per));
  for (int64_t j = 0; j < per; ++j)
    v[static_cast<size_t>(j)] = static_cast<float>(x.values[static_cast<size_t>(i * per + j)]);
  return v;
}

// One output back to the model's layout (ONNX: NHWC to NCHW) and its shape without N.
std::vector<float> to_model_layout(const std::vector<float>& y, const k::Dims& d, bool tflite,
                                   std::vector<int64_t>* shape) {
  const int32_t hw = d.h * d.w;
  if (hw == 1) {
    *shape = {d.c};
    return y;
  }
  if (tflite) {
    *shape = {d.h, d.w, d.c};
    return y;
  }
  *shape = {d.c, d.h, d.w};
  std::vector<float> out(y.size());
  for (int32_t c = 0; c < d.c; ++c)
    for (int32_t p = 0; p < hw; ++p)
      out[static_cast<size_t>(c) * static_cast<size_t>(hw) + static_cast<size_t>(p)] =
          y[static_cast<size_t>(p) * static_cast<size_t>(d.c) + static_cast<size_t>(c)];
  return out;
}

// Every sample's outputs, in order.
struct Outputs {
  std::vector<float> values;
  std::vector<int64_t> sample_shape;
  int64_t samples = 0;
};

Result<std::map<std::string, NpyArray>> calibration_of(const RunOptions& o) {
  if (o.calibration.empty()) {
    return CompileError{"--calib is required to quantize this model (an .npz or .npy of inputs)"};
  }
  auto a = read_array(o.calibration, "");
  if (!a) return a.error();
  if (o.calibration.size() > 4 && o.calibration.compare(o.calibration.size() - 4, 4, ".npy") == 0) {
    return std::map<std::string, NpyArray>{{"x", *a}};
  }
  return read_npz(o.calibration);
}

// The int8 artifact: given, or compiled (int8 TFLite with its own quantization, others
// calibrated on --calib).
Result<std::string> artifact_of(const RunOptions& o, const std::string& bytes, bool tflite) {
  if (!o.artifact.empty()) return read_file(o.artifact);
  CompileOptions options;
  options.model_name = o.model;
  Result<CompiledModel> compiled = CompileError{"not compiled"};
  if (tflite) {
    auto m = read_tflite(bytes);
    if (!m) return m.error();
    if (tflite_is_int8(*m)) {
      compiled = compile_tflite_int8(*m, options);
    } else {
      auto g = tflite_float_graph(*m);
      if (!g) return g.error();
      auto calib = calibration_of(o);
      if (!calib) return calib.error();
      compiled = compile_graph(std::move(*g), *calib, nullptr, options);
    }
  } else {
    auto calib = calibration_of(o);
    if (!calib) return calib.error();
    compiled = compile_model(bytes, *calib, nullptr, options);
  }
  if (!compiled) return compiled.error();
  return compiled->artifact;
}

Result<Outputs> run_int8(const RunOptions& o, const std::string& bytes, bool tflite,
                         const NpyArray& x, int64_t n) {
  auto artifact = artifact_of(o, bytes, tflite);
  if (!artifact) return artifact.error();
  std::vector<uint8_t> buf(artifact->size() + 16);
  auto* a =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 15) & ~uintptr_t{15});
  std::memcpy(a, artifact->data(), artifact->size());
  k::Interpreter interp;
  if (auto e = interp.load(a, artifact->size()); e.status != k::LoadStatus::kOk) {
    return CompileError{"the artifact does not load: " + std::string(e.what)};
  }
  std::vector<uint8_t> arena(interp.arena_bytes());
  interp.bind_arena(arena.data(), arena.size());
  const k::TensorView in = interp.input(0);
  const k::TensorView out = interp.output(0);
  const bool in8 = in.type == artifact::TensorType_Int8;
  const bool out8 = out.type == artifact::TensorType_Int8;
  Outputs r;
  for (int64_t i = 0; i < n; ++i) {
    auto s = sample(x, i, n, tflite, in.dims.elements());
    if (!s) return s.error();
    if (in8) {
      auto* p = static_cast<int8_t*>(in.data);
      for (size_t j = 0; j < s->size(); ++j)
        p[j] = k::quantize_value((*s)[j], {in.scale, in.zero_point});
    } else {
      std::memcpy(in.data, s->data(), s->size() * sizeof(float));
    }
    if (auto e = interp.invoke(); e.status != k::LoadStatus::kOk) {
      return CompileError{"the artifact failed: " + std::string(e.what)};
    }
    std::vector<float> y(static_cast<size_t>(out.dims.elements()));
    for (size_t j = 0; j < y.size(); ++j) {
      y[j] = out8 ? k::dequantize_value(static_cast<const int8_t*>(out.data)[j],
                                        {out.scale, out.zero_point})
                  : static_cast<const float*>(out.data)[j];
    }
    const auto v = to_model_layout(y, out.dims, tflite, &r.sample_shape);
    r.values.insert(r.values.end(), v.begin(), v.end());
    ++r.samples;
  }
  return r;
}

Result<Outputs> run_float(const std::string& bytes, bool tflite, const NpyArray& x, int64_t n) {
  Result<Graph> g = CompileError{"no graph"};
  if (tflite) {
    auto m = read_tflite(bytes);
    if (!m) return m.error();
    if (tflite_is_int8(*m)) {
      return CompileError{"an int8 TFLite model has no float graph: run it with --int8"};
    }
    g = tflite_float_graph(*m);
  } else {
    g = import_onnx(bytes);
  }
  if (!g) return g.error();
  FloatExecutor exec(*g);
  const k::Dims in = g->tensors[static_cast<size_t>(g->inputs.at(0))].dims;
  const k::Dims od = g->tensors[static_cast<size_t>(g->outputs.at(0))].dims;
  Outputs r;
  for (int64_t i = 0; i < n; ++i) {
    auto s = sample(x, i, n, tflite, in.elements());
    if (!s) return s.error();
    if (auto e = exec.run(*s); !e) return e.error();
    const auto v = to_model_layout(exec.output(), od, tflite, &r.sample_shape);
    r.values.insert(r.values.end(), v.begin(), v.end());
    ++r.samples;
  }
  return r;
}

void print(const Outputs& r, bool json) {
  const size_t per = r.samples ? r.values.size() / static_cast<size_t>(r.samples) : 0;
  nlohmann::json all = nlohmann::json::array();
  for (int64_t i = 0; i < r.samples; ++i) {
    const auto first = r.values.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(i) * per);
    const std::vector<float> y(first, first + static_cast<std::ptrdiff_t>(per));
    const auto best = std::max_element(y.begin(), y.end()) - y.begin();
    if (json) {
      all.push_back({{"sample", i}, {"output", y}, {"argmax", best}});
      continue;
    }
    std::printf("sample %lld (argmax %lld):", static_cast<long long>(i),
                static_cast<long long>(best));
    for (float v : y) std::printf(" %.6g", static_cast<double>(v));
    std::printf("\n");
  }
  if (json) std::cout << all.dump() << "\n";
}

}  // namespace

std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return out;
}

int run_model(const RunOptions& o) {
  auto fail = [](const std::string& why) {
    std::cerr << "tinyfleet-compile run: " << why << "\n";
    return 1;
  };
  auto bytes = read_file(o.model);
  if (!bytes) return fail(bytes.error().message);
  const bool tflite = is_tflite(*bytes);
  if (!o.format.empty() && (o.format == "tflite") != tflite) {
    return fail(o.model + " was declared " + o.format + " but is " +
                (tflite ? "TFLite" : "not TFLite"));
  }
  auto x = read_array(o.input, o.key);
  if (!x) return fail(x.error().message);
  if (x->shape.empty() || x->shape[0] < 1)
    return fail(o.input + ": needs a leading sample dimension");
  int64_t n = x->shape.size() == 1 ? 1 : x->shape[0];
  if (o.limit >= 0) n = std::min(n, o.limit);
  auto r = o.int8 || !o.artifact.empty() ? run_int8(o, *bytes, tflite, *x, n)
                                         : run_float(*bytes, tflite, *x, n);
  if (!r) return fail(r.error().message);
  if (o.output.empty()) {
    print(*r, o.json);
    return 0;
  }
  std::vector<int64_t> shape = {r->samples};
  shape.insert(shape.end(), r->sample_shape.begin(), r->sample_shape.end());
  std::ofstream f(o.output, std::ios::binary);
  f << npy_bytes(shape, r->values);
  if (!f) return fail("cannot write " + o.output);
  return 0;
}

}  // namespace tinyfleet::optimizer_service::tools
