// Model updates of four kinds, sent as our delta against the generic binary-delta tools
// Debian ships (bsdiff, xdelta3, zstd --patch-from), and the peak working memory of
// applying our delta on the device (besides the output slot).
//   deploy/local/run-bench.sh bench_delta_codecs
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/sodium_crypto.h"

using namespace tinyfleet;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& rel) { return std::string(TINYFLEET_FIXTURES) + "/" + rel; }

std::string compile(const std::string& model, const std::string& calib) {
  auto onnx = optimizer_service::read_file(fixture("models/" + model + ".onnx"));
  auto data = optimizer_service::read_npz(fixture("data/" + calib + ".npz"));
  if (!onnx || !data) {
    std::fprintf(stderr, "cannot read %s or %s\n", model.c_str(), calib.c_str());
    std::exit(1);
  }
  optimizer_service::CompileOptions o;  // as fleetd's compiler sets them
  o.device_class = "cortex-m4-256k";
  auto c = optimizer_service::compile_model(*onnx, *data, nullptr, o);
  if (!c) {
    std::fprintf(stderr, "compile %s: %s\n", model.c_str(), c.error().message.c_str());
    std::exit(1);
  }
  return c->artifact;
}

std::vector<update::ArtifactSegment> segments(const std::string& artifact) {
  return update::artifact_segments(artifact);
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs a tool quietly; the size of what it wrote, or -1 when it failed.
long tool(const std::vector<std::string>& argv, const fs::path& out) {
  fs::remove(out);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fs::exists(out)) return -1;
  return static_cast<long>(fs::file_size(out));
}

struct Base : update::BaseReader {
  explicit Base(const std::string& b) : bytes(b) {}
  uint64_t size() const override { return bytes.size(); }
  bool read(uint64_t off, uint8_t* out, size_t n) override {
    if (off + n > bytes.size()) return false;
    std::copy_n(bytes.data() + off, n, out);
    return true;
  }
  const uint8_t* contiguous() const override {
    return reinterpret_cast<const uint8_t*>(bytes.data());
  }
  const std::string& bytes;
};
struct Slot : update::SlotWriter {
  bool write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
    return true;
  }
  std::string out;
};

// Applies the delta as the device does, in 256-byte chunks; its peak working memory.
size_t apply_peak(const update::Delta& d, const std::string& base, const std::string& target) {
  std::vector<uint8_t> work(update::DeltaDecoder::workspace_size_for(d.codec, 14));
  Base b(base);
  Slot slot;
  update::SodiumSha256 sha;
  update::DeltaDecoder dec(d.codec, target.size(), 14, work.data(), work.size(), &b, &slot);
  dec.set_hasher(&sha);
  auto s = dec.start();
  for (size_t off = 0; s == update::DeltaStatus::kOk && off < d.payload.size(); off += 256) {
    s = dec.feed(reinterpret_cast<const uint8_t*>(d.payload.data()) + off,
                 std::min<size_t>(256, d.payload.size() - off));
  }
  if (s == update::DeltaStatus::kOk) s = dec.finish();
  if (s != update::DeltaStatus::kOk || slot.out != target) {
    std::fprintf(stderr, "our delta did not reproduce the target: %s\n", to_string(s));
    std::exit(1);
  }
  return dec.peak_bytes();
}

// With --regions: what the region stream holds (literal bytes, differences, nonzero ones).
void print_regions(const std::string& base, const std::string& target) {
  auto st = update::region_stream(base, target, segments(base), segments(target));
  if (!st) return;
  size_t p = 12, lit = 0, diff = 0, nonzero = 0, regions = 0;
  while (p + 5 <= st->size()) {
    const int kind = (*st)[p];
    uint32_t n = 0;
    std::memcpy(&n, st->data() + p + 1, 4);
    const size_t header = kind ? 13 : 5;
    for (size_t i = 0; kind && i < n; ++i) nonzero += (*st)[p + header + i] != 0;
    (kind ? diff : lit) += n;
    ++regions;
    p += header + n;
  }
  std::printf("    regions %zu, literal %zu B, differences %zu B (%zu nonzero)\n", regions, lit,
              diff, nonzero);
}

struct Case {
  const char* kind;
  const char* what;
  std::string base, target;
  bool target_ratio;  // the 0.7x target applies
};

}  // namespace

int main(int argc, char** argv) {
  const bool regions = argc > 1 && std::string(argv[1]) == "--regions";
  const fs::path dir = fs::temp_directory_path() / ("tf-delta-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string cnn = compile("digits_cnn", "digits_calib");
  const std::string resnet = compile("digits_resnet", "digits_calib");
  std::vector<Case> cases = {
      {"(a) last layer fine-tuned", "digits_cnn -> digits_cnn_lastlayer", cnn,
       compile("digits_cnn_lastlayer", "digits_calib"), true},
      {"(b) more epochs", "digits_cnn -> digits_cnn_v2", cnn,
       compile("digits_cnn_v2", "digits_calib"), true},
      {"(c) calibration changed", "digits_cnn, calib -> val set", cnn,
       compile("digits_cnn", "digits_val"), true},
      {"(c) calibration changed", "digits_resnet, calib -> val set", resnet,
       compile("digits_resnet", "digits_val"), true},
      {"(d) other architecture", "digits_cnn -> digits_dscnn", cnn,
       compile("digits_dscnn", "digits_calib"), false},
  };

  std::printf(
      "Model updates: our delta (TensorRange: typed regions, int32 ratio predictions, "
      "adaptive range coder)\n"
      "against bsdiff 4.3, xdelta3 -9 and zstd -19 --patch-from (bytes; ratio = ours / "
      "best generic; target <= 0.70 for a-c)\n\n");
  std::printf("| %-25s | %-32s | %8s | %7s | %7s | %7s | %7s | %7s | %6s | %9s |\n", "update",
              "pair", "artifact", "bsdiff", "xdelta3", "zstd-pf", "lzma", "ours", "ratio",
              "apply mem");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(27, '-').c_str(),
              std::string(34, '-').c_str(), std::string(10, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(8, '-').c_str(),
              std::string(11, '-').c_str());
  bool all_met = true;
  size_t worst_mem = 0;
  for (const auto& c : cases) {
    const fs::path base = dir / "base", target = dir / "target";
    write(base, c.base);
    write(target, c.target);
    const long bsdiff = tool({"bsdiff", base, target, dir / "p.bsdiff"}, dir / "p.bsdiff");
    const long xdelta =
        tool({"xdelta3", "-9", "-e", "-f", "-s", base, target, dir / "p.xd3"}, dir / "p.xd3");
    const long zstdpf = tool(
        {"zstd", "-q", "-19", "-f", "--patch-from=" + base.string(), target, "-o", dir / "p.zst"},
        dir / "p.zst");
    update::DeltaOptions small;
    small.max_window_log = 14;
    auto ours =
        update::encode_tensor_range(c.base, c.target, segments(c.base), segments(c.target), small);
    auto lzma =
        update::encode_tensor_lzma(c.base, c.target, segments(c.base), segments(c.target), small);
    update::DeltaOptions any;
    any.max_window_log = 20;
    auto best = update::encode_best(c.base, c.target, segments(c.base), segments(c.target), any);
    if (!ours || !lzma || !best) {
      std::fprintf(stderr, "encode failed\n");
      return 1;
    }
    const size_t mem = apply_peak(*ours, c.base, c.target);
    apply_peak(*lzma, c.base, c.target);
    worst_mem = std::max(worst_mem, mem);
    long generic = -1;
    for (long v : {bsdiff, xdelta, zstdpf}) {
      if (v > 0 && (generic < 0 || v < generic)) generic = v;
    }
    const double ratio = generic > 0 ? static_cast<double>(ours->payload.size()) / generic : 0;
    if (c.target_ratio && ratio > 0.7) all_met = false;
    std::printf("| %-25s | %-32s | %8zu | %7ld | %7ld | %7ld | %7zu | %7zu | %6.2f | %6.1f KB |\n",
                c.kind, c.what, c.target.size(), bsdiff, xdelta, zstdpf, lzma->payload.size(),
                ours->payload.size(), ratio, mem / 1024.0);
    if (best->payload.size() < ours->payload.size()) {
      std::printf("    (encode_best found a smaller codec: %d, %zu B)\n",
                  static_cast<int>(best->codec), best->payload.size());
    }
    if (regions) print_regions(c.base, c.target);
  }
  std::printf(
      "\nlzma: our previous codec (TensorLzma: byte differences, LZMA2 with a 16 KB "
      "dictionary).\n"
      "apply mem: peak decoder state + dictionary + I/O buffers while applying ours "
      "(target <= 64 KB): worst %.1f KB.\n"
      "0.70x target on (a)-(c): %s\n",
      worst_mem / 1024.0, all_met ? "met" : "NOT met");
  fs::remove_all(dir);
  return 0;
}
