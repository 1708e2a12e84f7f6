#pragma once

// Private helpers shared by the repositories.
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/error.h"

// A timestamptz column as RFC 3339 UTC text, e.g. 2026-11-22T23:59:01Z.
#define TF_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

namespace tinyfleet::storage::sql {

// A named statement, prepared on a connection the first time it runs there.
struct Statement {
  const char* name;
  const char* text;
};

template <class... Args>
pqxx::result run(pqxx::work& w, const Statement& s, Args&&... args) {
  w.conn().prepare(s.name, s.text);  // no-op when already prepared on this connection
  return w.exec_prepared(s.name, std::forward<Args>(args)...);
}

// NULL-able parameters: libpqxx 6 treats a null const char* as SQL NULL.
inline const char* nullable(const std::optional<std::string>& v) {
  return v ? v->c_str() : nullptr;
}
inline std::optional<std::string> opt_string(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

// JSON arrays of strings (device tags, target classes) stored as jsonb.
std::string to_json_array(const std::vector<std::string>& values);
std::vector<std::string> from_json_array(const std::string& json);

// real[] columns: a PostgreSQL array literal (every float exact, NaN and infinities
// spelled as PostgreSQL reads them) and back from a field (NULL: empty).
std::string to_real_array(const std::vector<float>& values);
std::vector<float> from_real_array(const pqxx::field& f);

}  // namespace tinyfleet::storage::sql
