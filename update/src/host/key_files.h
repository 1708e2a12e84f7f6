#pragma once

// Key and metadata files (internal to update_host): exact-size reads and durable writes.
#include <filesystem>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::update::key_files {

storage::Expected<std::string> read_exact(const std::filesystem::path& p, size_t size);
storage::Expected<std::string> read_all(const std::filesystem::path& p, size_t max_size);
// Write-then-rename, so a crash never leaves half a key; `secret` files are mode 0600.
storage::Expected<storage::Done> write_file(const std::filesystem::path& p,
                                            const std::string& bytes, bool secret);

}  // namespace tinyfleet::update::key_files
