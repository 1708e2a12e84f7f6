// Arbitrary bytes as what an operator sends the Rollouts API besides names: a
// ListRollouts page token and a SkipGates reason. A token is refused or stands for an id
// whose token is the same text; a reason is refused with a message, or is 1-500 bytes
// without control characters. Never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rollouts/api_input.h"

namespace r = tinyfleet::server::rollouts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto id = r::parse_page_token(text)) {
    if (*id < 0) std::abort();
    if (!text.empty() && r::page_token(*id) != text && text[0] != '0') std::abort();
    if (r::parse_page_token(r::page_token(*id)) != id) std::abort();
  }
  if (auto why = r::skip_gates_reason_error(text)) {
    if (why->empty()) std::abort();
  } else {
    if (text.empty() || text.size() > 500) std::abort();
    for (unsigned char ch : text) {
      if (ch < 0x20 || ch == 0x7f) std::abort();
    }
  }
  uint32_t n = 0;
  for (size_t i = 0; i < size && i < 4; ++i) n = n << 8 | data[i];
  const int page = r::page_size(n);
  if (page < 1 || page > r::kMaxPageSize) std::abort();
  return 0;
}
