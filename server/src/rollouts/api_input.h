#pragma once

// What an operator sends the Rollouts API besides names, checked before any database
// work: ListRollouts' page token and page size, and SkipGates' reason. Bounded, errors
// as text naming what is wrong; fuzzed by tests/fuzz/rollouts_api_input_fuzzer.cpp.
#include <cstdint>
#include <optional>
#include <string>

namespace tinyfleet::server::rollouts {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 100;

// A page token is the id of the last rollout of the previous page, in decimal (at most
// 18 digits); empty is the first page (0). Nothing when `token` is not one.
std::optional<int64_t> parse_page_token(const std::string& token);
std::string page_token(int64_t last_id);

// 0: the default; anything above the cap: the cap.
int page_size(uint32_t requested);

// Why a skip-gates reason is refused (empty, over 500 bytes, or holding a control
// character), or nothing.
std::optional<std::string> skip_gates_reason_error(const std::string& reason);

}  // namespace tinyfleet::server::rollouts
