#pragma once

// NATS device accounts (broker.kind nats, nats.accounts_file): the file fleetd writes is a
// fragment of nats-server's configuration that every node `include`s inside its
// `authorization { }` block:
//
//   users = [
//     { user: "fleetd", password: "..." }            <- written by the operator, kept
//     { user: "dev-1", password: "$2b$04$...", permissions: { ... } }   <- fleetd's
//   ]
//
// One entry per line. fleetd adds a device's entry before the closing `]`, and reads the
// file's other lines back only to learn which names they hold: blank lines, comments
// (`#`, `//`), the `users = [` and `]` lines, and entries `{ user: NAME, ... }` written on
// one line. Anything else is refused with an error naming the line, so fleetd never
// rewrites a file it does not understand. The reader is bounded: lines of at most
// kNatsAccountsMaxLine bytes, blocks nested at most kNatsAccountsMaxDepth deep.
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

constexpr size_t kNatsAccountsMaxLine = 4096;
constexpr size_t kNatsAccountsMaxDepth = 8;

// The entry of device `user` of fleet `fleet` with password hash `hash` (bcrypt), on one
// line: publish on its own chunk/req, status, telemetry and presence, subscribe to its own
// offer, chunk and presence (the rules of deploy/local/mosquitto.acl), plus "$MQTT.>", the
// MQTT listener's own subjects. Subjects are the MQTT topics
// tinyfleet/v1/<fleet>/<device>/<kind> as nats-server maps them (nats_subject.h).
std::string nats_account_entry(const std::string& user, const std::string& fleet,
                               const std::string& hash);

// The user name of one entry line ("{ user: NAME, ... }", optionally followed by a comma
// or a comment); an error saying what is wrong otherwise.
storage::Expected<std::string> nats_entry_user(std::string_view line);

// What the file's lines hold: each entry's user name and line, and the line of the
// closing `]` (new entries go before it).
struct NatsAccountsIndex {
  std::unordered_map<std::string, size_t> users;
  size_t close = 0;
};
// kInvalidArgument "line N: ..." for the first line that is not understood.
storage::Expected<NatsAccountsIndex> parse_nats_accounts(const std::vector<std::string>& lines);

}  // namespace tinyfleet::server
