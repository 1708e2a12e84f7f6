#include "key_files.h"

#include <fstream>
#include <iterator>

namespace tinyfleet::update::key_files {

namespace fs = std::filesystem;
using storage::Error;
using storage::ErrorCode;

storage::Expected<std::string> read_all(const fs::path& p, size_t max_size) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error{ErrorCode::kNotFound, "cannot read " + p.string()};
  std::string bytes;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > max_size) {
      return Error{ErrorCode::kInvalidArgument,
                   p.string() + " is larger than " + std::to_string(max_size) + " bytes"};
    }
  }
  return bytes;
}

storage::Expected<std::string> read_exact(const fs::path& p, size_t size) {
  auto bytes = read_all(p, size + 1);
  if (!bytes) return bytes;
  if (bytes->size() != size) {
    return Error{ErrorCode::kInvalidArgument, p.string() + " holds " +
                                                  std::to_string(bytes->size()) + " bytes, not " +
                                                  std::to_string(size)};
  }
  return bytes;
}

storage::Expected<storage::Done> write_file(const fs::path& p, const std::string& bytes,
                                            bool secret) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error{ErrorCode::kUnavailable, "cannot write " + tmp.string()};
    if (secret) {
      fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return Error{ErrorCode::kUnavailable, "cannot write " + tmp.string()};
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) return Error{ErrorCode::kUnavailable, "cannot rename to " + p.string()};
  return storage::Done{};
}

}  // namespace tinyfleet::update::key_files
