#include "tinyfleet/server/telemetry_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "segment-";

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_le(const std::string& in, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint32_t(static_cast<uint8_t>(in[at + i])) << (8 * i);
  return v;
}

// The segment numbers in `dir`, ascending.
std::vector<uint64_t> segments_in(const std::string& dir) {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) continue;
    const std::string digits = name.substr(std::char_traits<char>::length(kPrefix));
    if (digits.empty() || digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.push_back(std::stoull(digits));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TelemetrySpool::TelemetrySpool(std::string dir) : dir_(std::move(dir)) {}

TelemetrySpool::~TelemetrySpool() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TelemetrySpool::path(uint64_t segment) const {
  return dir_ + "/" + kPrefix + std::to_string(segment);
}

bool TelemetrySpool::open() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    log::error("telemetry.spool", {{"dir", dir_}, {"error", ec.message()}});
    return false;
  }
  const auto left = segments_in(dir_);
  next_ = left.empty() ? 1 : left.back() + 1;
  ok_ = true;
  return true;
}

size_t TelemetrySpool::replay(const Record& f) {
  if (!ok_) return 0;
  size_t n = 0;
  const auto left = segments_in(dir_);
  for (uint64_t s : left) {
    if (s >= next_) continue;  // written by this process
    std::ifstream in(path(s), std::ios::binary);
    const std::string data(std::istreambuf_iterator<char>(in), {});
    size_t at = 0;
    while (data.size() - at >= 8) {
      const size_t fleet = get_le(data, at, 2), device = get_le(data, at + 2, 2),
                   payload = get_le(data, at + 4, 4);
      if (payload > kMaxPayloadBytes || data.size() - at - 8 < fleet + device + payload) break;
      at += 8;
      const std::string fl = data.substr(at, fleet), dv = data.substr(at + fleet, device),
                        pl = data.substr(at + fleet + device, payload);
      at += fleet + device + payload;
      f(fl, dv, pl);
      ++n;
    }
  }
  for (uint64_t s : left) {
    if (s < next_) ::unlink(path(s).c_str());
  }
  return n;
}

void TelemetrySpool::append(const std::string& fleet, const std::string& device,
                            const std::string& payload) {
  if (!ok_ || fleet.size() > 0xffff || device.size() > 0xffff ||
      payload.size() > kMaxPayloadBytes) {
    return;
  }
  if (fd_ < 0) {
    current_ = next_++;
    fd_ = ::open(path(current_).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      log::error("telemetry.spool", {{"dir", dir_}, {"error", "cannot create a segment"}});
      return;
    }
  }
  std::string rec;
  rec.reserve(8 + fleet.size() + device.size() + payload.size());
  put_le(rec, static_cast<uint32_t>(fleet.size()), 2);
  put_le(rec, static_cast<uint32_t>(device.size()), 2);
  put_le(rec, static_cast<uint32_t>(payload.size()), 4);
  rec += fleet;
  rec += device;
  rec += payload;
  if (::write(fd_, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size())) {
    log::error("telemetry.spool", {{"dir", dir_}, {"error", "short write"}});
  }
}

uint64_t TelemetrySpool::seal() {
  if (fd_ < 0) return 0;
  ::close(fd_);
  fd_ = -1;
  return current_;
}

void TelemetrySpool::remove(const std::vector<uint64_t>& segments) {
  for (uint64_t s : segments) {
    if (s != 0) ::unlink(path(s).c_str());
  }
}

}  // namespace tinyfleet::server
