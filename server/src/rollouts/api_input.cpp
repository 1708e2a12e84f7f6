#include "rollouts/api_input.h"

namespace tinyfleet::server::rollouts {

std::optional<int64_t> parse_page_token(const std::string& token) {
  if (token.empty()) return 0;
  if (token.size() > 18) return std::nullopt;
  int64_t id = 0;
  for (char ch : token) {
    if (ch < '0' || ch > '9') return std::nullopt;
    id = id * 10 + (ch - '0');
  }
  return id;
}

std::string page_token(int64_t last_id) { return std::to_string(last_id); }

int page_size(uint32_t requested) {
  if (requested == 0) return kDefaultPageSize;
  return requested > static_cast<uint32_t>(kMaxPageSize) ? kMaxPageSize
                                                         : static_cast<int>(requested);
}

std::optional<std::string> skip_gates_reason_error(const std::string& reason) {
  if (reason.empty()) return "skipping the gates needs a reason";
  if (reason.size() > 500) {
    return "the reason has " + std::to_string(reason.size()) + " bytes; 500 at most";
  }
  for (unsigned char ch : reason) {
    if (ch < 0x20 || ch == 0x7f) return "the reason holds a control character";
  }
  return std::nullopt;
}

}  // namespace tinyfleet::server::rollouts
