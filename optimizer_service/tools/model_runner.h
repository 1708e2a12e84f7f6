#pragma once

// `tinyfleet-compile run`: a model's outputs for inputs from .npy/.npz, in float (the
// compiler's float graph: what calibration and validation compare against) or in int8
// (the compiled artifact on the kernels' runtime, inputs quantized and outputs
// dequantized with the artifact's own scales), so a user can check our results against
// their framework.
#include <string>
#include <vector>

namespace tinyfleet::optimizer_service::tools {

struct RunOptions {
  std::string model;        // .onnx or .tflite (format detected, or declared below)
  std::string format;       // "", "onnx" or "tflite"
  std::string input;        // .npy, or .npz with `key`
  std::string key;          // the .npz array ("" : "x", else the only array)
  bool int8 = false;        // compile and run the artifact
  std::string calibration;  // .npz or .npy; int8 ONNX and float TFLite models need it
  std::string artifact;     // run this .tfa instead of compiling (int8)
  std::string output;       // write a float32 .npy here; "": print
  bool json = false;        // print JSON instead of text
  int64_t limit = -1;       // at most this many samples (-1: all)
};

// Exit status: 0 ran; 1 refused or failed (reason on stderr); prints or writes outputs.
int run_model(const RunOptions& options);

// A float32 .npy (format 1.0, C order) of `shape`.
std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<float>& values);

}  // namespace tinyfleet::optimizer_service::tools
