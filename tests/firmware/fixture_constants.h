// Shared by make_offer_fixture (host) and crypto_check_app (Cortex-M4 under QEMU).
#pragma once

#include <cstdint>

namespace tinyfleet::firmware_test {

inline constexpr uint64_t kNow = 1795305600;  // 2026-11-22, the "wall clock" of both sides
inline constexpr uint64_t kRelease = 7;
inline constexpr uint32_t kPayloadSize = 5000;
inline constexpr uint32_t kChunkSize = 1024;
inline constexpr uint64_t kDeltaRelease = 8;     // the v1 -> v2 update applied on the target
inline constexpr uint32_t kDeltaChunkSize = 32;  // several chunks for a small delta
inline constexpr const char* kFleet = "default";
inline constexpr const char* kClass = "cortex-m4-256k";
inline constexpr const char* kDevice = "m4-0001";  // the offers are bound to it

}  // namespace tinyfleet::firmware_test
