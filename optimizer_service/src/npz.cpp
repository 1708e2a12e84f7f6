#include "tinyfleet/optimizer_service/npz.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace tinyfleet::optimizer_service {

namespace {

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8 |
         static_cast<uint8_t>(b[at + 2]) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}
uint16_t le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}

// The value of `key` in the header's Python dict literal.
std::string header_field(const std::string& header, const std::string& key) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  auto colon = header.find(':', k);
  auto start = header.find_first_not_of(" ", colon + 1);
  if (start == std::string::npos) return "";
  if (header[start] == '(') return header.substr(start, header.find(')', start) - start + 1);
  if (header[start] == '\'')
    return header.substr(start + 1, header.find('\'', start + 1) - start - 1);
  return header.substr(start, header.find_first_of(",}", start) - start);
}

template <class T>
void convert(const char* data, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, data + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    out[static_cast<size_t>(i)] = static_cast<double>(v);
  }
}

}  // namespace

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<float> nhwc_sample(const NpyArray& x, int64_t i) {
  const auto& s = x.shape;
  const int64_t per = x.size() / s[0];
  std::vector<float> out(static_cast<size_t>(per));
  if (s.size() == 3) {  // [N, C, L] (1-D signals) is NHWC [N, 1, L, C]
    const int64_t C = s[1], L = s[2];
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t l = 0; l < L; ++l) {
        out[static_cast<size_t>(l * C + c)] =
            static_cast<float>(x.values[static_cast<size_t>(i * per + c * L + l)]);
      }
    }
    return out;
  }
  if (s.size() != 4) {
    for (int64_t j = 0; j < per; ++j) {
      out[static_cast<size_t>(j)] = static_cast<float>(x.values[static_cast<size_t>(i * per + j)]);
    }
    return out;
  }
  const int64_t C = s[1], H = s[2], W = s[3];
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t w = 0; w < W; ++w) {
        out[static_cast<size_t>((h * W + w) * C + c)] =
            static_cast<float>(x.values[static_cast<size_t>(i * per + (c * H + h) * W + w)]);
      }
    }
  }
  return out;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return CompileError{"cannot read " + path};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Result<NpyArray> parse_npy(const std::string& b, const std::string& what) {
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) {
    return CompileError{what + " is not a .npy array (bad magic)"};
  }
  const int major = static_cast<uint8_t>(b[6]);
  size_t header_len = 0, header_at = 0;
  if (major == 1) {
    header_len = le16(b, 8);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return CompileError{what + " is truncated"};
    header_len = le32(b, 8);
    header_at = 12;
  } else {
    return CompileError{what + " has .npy format version " + std::to_string(major) +
                        ", supported: 1 to 3"};
  }
  if (header_at + header_len > b.size()) return CompileError{what + " header is truncated"};
  const std::string header = b.substr(header_at, header_len);
  NpyArray a;
  a.dtype = header_field(header, "descr");
  if (header_field(header, "fortran_order") != "False") {
    return CompileError{what + " is in Fortran order; save it in C order"};
  }
  const std::string shape = header_field(header, "shape");
  if (shape.empty()) return CompileError{what + " header has no shape"};
  for (size_t i = 1; i < shape.size();) {
    const size_t j = shape.find_first_of(",)", i);
    const std::string num = shape.substr(i, j - i);
    if (num.find_first_not_of(" ") != std::string::npos) a.shape.push_back(std::stoll(num));
    i = j + 1;
  }
  const struct {
    const char* descr;
    size_t bytes;
  } kinds[] = {{"<f4", 4}, {"<f8", 8}, {"|i1", 1}, {"|u1", 1}, {"<i4", 4}, {"<i8", 8}, {"|b1", 1}};
  size_t elem = 0;
  for (const auto& k : kinds) {
    if (a.dtype == k.descr) elem = k.bytes;
  }
  if (elem == 0) {
    return CompileError{what + " has dtype " + a.dtype +
                        ", supported: <f4 <f8 |i1 |u1 <i4 <i8 |b1"};
  }
  const int64_t n = a.size();
  const size_t data_at = header_at + header_len;
  if (n < 0 || data_at + static_cast<size_t>(n) * elem > b.size()) {
    return CompileError{what + " holds fewer bytes than its shape needs"};
  }
  const char* d = b.data() + data_at;
  if (a.dtype == "<f4") convert<float>(d, n, a.values);
  if (a.dtype == "<f8") convert<double>(d, n, a.values);
  if (a.dtype == "|i1") convert<int8_t>(d, n, a.values);
  if (a.dtype == "|u1" || a.dtype == "|b1") convert<uint8_t>(d, n, a.values);
  if (a.dtype == "<i4") convert<int32_t>(d, n, a.values);
  if (a.dtype == "<i8") convert<int64_t>(d, n, a.values);
  return a;
}

Result<std::map<std::string, NpyArray>> parse_npz(const std::string& b) {
  std::map<std::string, NpyArray> out;
  size_t at = 0;
  while (at + 30 <= b.size() && le32(b, at) == 0x04034b50) {  // local file header
    const uint16_t flags = le16(b, at + 6), method = le16(b, at + 8);
    uint32_t csize = le32(b, at + 18), usize = le32(b, at + 22);
    const uint16_t name_len = le16(b, at + 26), extra_len = le16(b, at + 28);
    if (at + 30 + name_len + extra_len > b.size())
      return CompileError{"npz entry header truncated"};
    std::string name = b.substr(at + 30, name_len);
    const size_t data_at = at + 30 + name_len + extra_len;
    // zip64 extra field (numpy writes it for large arrays): sizes in the extra data.
    if ((csize == 0xffffffffu || usize == 0xffffffffu) && extra_len >= 20 &&
        le16(b, at + 30 + name_len) == 1) {
      usize = le32(b, at + 30 + name_len + 4);
      csize = le32(b, at + 30 + name_len + 12);
    }
    if (flags & 0x8) return CompileError{"npz entry " + name + " uses a data descriptor"};
    if (data_at + csize > b.size()) return CompileError{"npz entry " + name + " is truncated"};
    std::string data;
    if (method == 0) {
      data = b.substr(data_at, csize);
    } else if (method == 8) {
      data.resize(usize);
      z_stream z{};
      if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return CompileError{"zlib init failed"};
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + data_at));
      z.avail_in = csize;
      z.next_out = reinterpret_cast<Bytef*>(data.data());
      z.avail_out = usize;
      const int rc = inflate(&z, Z_FINISH);
      inflateEnd(&z);
      if (rc != Z_STREAM_END) return CompileError{"npz entry " + name + " does not inflate"};
    } else {
      return CompileError{"npz entry " + name + " uses zip method " + std::to_string(method) +
                          ", supported: stored, deflate"};
    }
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) {
      name.resize(name.size() - 4);
    }
    auto array = parse_npy(data, "npz entry " + name);
    if (!array) return array.error();
    out.emplace(name, std::move(*array));
    at = data_at + csize;
  }
  if (out.empty()) return CompileError{"not an .npz archive (no zip entries)"};
  return out;
}

Result<std::map<std::string, NpyArray>> read_npz(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  auto r = parse_npz(*bytes);
  if (!r) return CompileError{path + ": " + r.error().message};
  return r;
}

}  // namespace tinyfleet::optimizer_service
