#pragma once

// PostgreSQL array literals for binding lists as one parameter (libpqxx 6 binds no
// vectors): `WHERE id = ANY($1::text[])` with text_array_literal(ids).
#include <string>
#include <vector>

namespace tinyfleet::storage {

// {"a","b\"c"}: every element quoted, '"' and '\' escaped.
std::string text_array_literal(const std::vector<std::string>& items);

}  // namespace tinyfleet::storage
