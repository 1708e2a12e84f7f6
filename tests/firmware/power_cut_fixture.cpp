// Host side of the power-cut test (ctest firmware_power_cut_qemu): three versions of the
// fixture model (fixture_model.h: v1, its fine-tune v2 and v3) and two TensorRange deltas,
// v1 -> v2 and v2 -> v3, each under three signed offers (releases 8, 9, 10 and 11, 12, 13:
// a release a cut failed is not tried again, so "the server" offers the next one).
//   power_cut_fixture DIR  ->  DIR/root.pub, v{1,2,3}.tfa, input.bin, out{1,2,3}.bin,
//                              d12.bin, d23.bin, offer{8..13}.bin
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fixture_constants.h"
#include "fixture_model.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;

namespace {
bool write(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  return static_cast<bool>(f);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: power_cut_fixture DIR\n");
    return 2;
  }
  if (sodium_init() < 0) return 1;
  const std::filesystem::path dir = argv[1];
  std::filesystem::remove_all(dir / "keys");
  std::filesystem::create_directories(dir);
  auto key = update::init_keys((dir / "keys").string(), ft::kNow, 30);
  const auto root = update::load_root_public_key((dir / "keys").string());
  if (!key || !root || !write(dir / "root.pub", *root)) return 1;
  const std::string input = ft::fixture_input();
  std::string v[4], out[4];
  for (int i = 1; i <= 3; ++i) {
    v[i] = ft::fixture_artifact(i);
    out[i] = ft::run_on_host(v[i], input);
    if (out[i].empty() || !write(dir / ("v" + std::to_string(i) + ".tfa"), v[i]) ||
        !write(dir / ("out" + std::to_string(i) + ".bin"), out[i])) {
      return 1;
    }
  }
  if (out[1] == out[2] || out[2] == out[3] || !write(dir / "input.bin", input)) {
    std::fprintf(stderr, "fixture versions give the same output\n");
    return 1;
  }
  uint64_t release = ft::kDeltaRelease;
  for (int step = 1; step <= 2; ++step) {
    const std::string& from = v[step];
    const std::string& to = v[step + 1];
    update::DeltaOptions options;
    auto delta = update::encode_tensor_range(from, to, update::artifact_segments(from),
                                             update::artifact_segments(to), options);
    if (!delta) {
      std::fprintf(stderr, "delta: %s\n", delta.error().message.c_str());
      return 1;
    }
    const std::string name = "d" + std::to_string(step) + std::to_string(step + 1) + ".bin";
    if (!write(dir / name, delta->payload)) return 1;
    update::ManifestFields f = ft::fixture_manifest(
        from, to, *delta, static_cast<uint32_t>(step + 1), ft::kDeltaChunkSize);
    f.self_tests = {{input, out[step + 1]}};
    for (int attempt = 0; attempt < 3; ++attempt, ++release) {
      f.release_seq = release;
      if (!write(dir / ("offer" + std::to_string(release) + ".bin"), update::sign_offer(f, *key))) {
        return 1;
      }
    }
    std::printf("v%d %zu B -> v%d %zu B: TensorRange delta %zu B\n", step, from.size(), step + 1,
                to.size(), delta->payload.size());
  }
  return 0;
}
