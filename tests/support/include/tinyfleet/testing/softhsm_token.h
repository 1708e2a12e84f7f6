#pragma once

// A SoftHSM2 token in a temporary folder for PKCS#11 tests: writes a softhsm2.conf there,
// points SOFTHSM2_CONF at it (the module reads it once per process, at C_Initialize) and
// initializes a token with `softhsm2-util`. Header-only.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tinyfleet::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr char kSoftHsmToken[] = "tinyfleet-test";
inline constexpr char kSoftHsmPin[] = "1234";

// True when the token is ready; false (and nothing set) when SoftHSM2 is not installed.
inline bool make_softhsm_token(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(kSoftHsmModule)) return false;
  std::filesystem::create_directories(dir / "tokens");
  std::ofstream(dir / "softhsm2.conf") << "directories.tokendir = " << (dir / "tokens").string()
                                       << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
  const std::string init = std::string("softhsm2-util --init-token --free --label ") +
                           kSoftHsmToken + " --pin " + kSoftHsmPin + " --so-pin 5678 >/dev/null";
  return std::system(init.c_str()) == 0;
}

}  // namespace tinyfleet::testing
