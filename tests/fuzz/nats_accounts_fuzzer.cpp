// Arbitrary bytes as the lines of a NATS accounts file (fleetd, nats.accounts_file, which
// an operator writes too): read within its bounds or refused with a reason; what it
// accepts is consistent (each user's line reads back as that user, the closing ']' is
// after every entry), and an entry fleetd writes for an accepted user reads back as it.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tinyfleet/server/nats_accounts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tinyfleet::server;
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line.push_back(static_cast<char>(data[i]));
    }
  }
  if (!line.empty()) lines.push_back(line);
  const auto index = parse_nats_accounts(lines);
  if (!index) {
    if (index.error().message.empty()) std::abort();
    return 0;
  }
  if (index->close >= lines.size()) std::abort();
  for (const auto& [user, at] : index->users) {
    if (at >= index->close) std::abort();
    const auto again = nats_entry_user(lines[at]);
    if (!again || *again != user) std::abort();
    // A name that could be a device's (at most 64 bytes, none of the characters fleetd
    // refuses): fleetd's own entry for it reads back the same.
    if (user.size() <= 64 && user.find_first_of(":\n\r#\"'\\ \t{}[],*>/+") == std::string::npos) {
      const auto mine = nats_entry_user(nats_account_entry(user, "fleet", "$2b$04$x"));
      if (!mine || *mine != user) std::abort();
    }
  }
  return 0;
}
