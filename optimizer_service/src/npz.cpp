#include "tinyfleet/optimizer_service/npz.h"

#include <zlib.h>

#include <algorithm>
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

// Operator bytes as they appear in an error or a key: printable ASCII (anything else is
// '?', so messages stay valid UTF-8 for PostgreSQL and gRPC), at most 128 characters.
std::string printable(const std::string& raw) {
  std::string out = raw.substr(0, 128);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
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
  // A zero dimension first: the others of an empty array may multiply past int64
  // (npz_fuzzer: (2, 8888888, 88889, 8, 88888888, 8888, 8, 0)); a parsed array with
  // values was checked against its bytes, so its product fits.
  for (auto d : shape) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<float> nhwc_sample(const NpyArray& x, int64_t i) {
  const auto& s = x.shape;
  if (s.empty() || s[0] <= 0 || i < 0 || i >= s[0]) return {};
  const int64_t per = x.size() / s[0];
  // No values (a dimension of 0): nothing to lay out, however large the other dimensions
  // (the loops below would walk them all: npz_fuzzer's (1, 8888888, 8888881, 0)).
  if (per <= 0) return {};
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

namespace {

constexpr int64_t kMaxDimension = int64_t{1} << 40;

// "(3, 4)", "(5,)": the dimensions of a shape tuple, each a decimal number.
Result<std::vector<int64_t>> parse_shape(const std::string& shape, const std::string& what) {
  const auto bad = [&](const std::string& why) {
    return CompileError{what + " header has a bad shape " + printable(shape.substr(0, 64)) + ": " +
                        why};
  };
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
    return bad("not a tuple");
  }
  std::vector<int64_t> dims;
  size_t i = 1;
  const size_t end = shape.size() - 1;
  while (i < end) {
    while (i < end && shape[i] == ' ') ++i;
    if (i == end) break;
    int64_t d = 0;
    const size_t digits_at = i;
    while (i < end && shape[i] >= '0' && shape[i] <= '9') {
      d = d * 10 + (shape[i] - '0');
      if (d > kMaxDimension) return bad("a dimension is over 2^40");
      ++i;
    }
    if (i == digits_at) return bad("a dimension is not a non-negative integer");
    if (dims.size() == kMaxNpyRank) {
      return bad("more than " + std::to_string(kMaxNpyRank) + " dimensions");
    }
    dims.push_back(d);
    while (i < end && shape[i] == ' ') ++i;
    if (i < end && shape[i] != ',') return bad("dimensions are not separated by commas");
    ++i;
  }
  if (dims.empty()) return bad("a scalar (shape ()); the data needs a sample axis");
  return dims;
}

}  // namespace

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
  if (header_len > kMaxNpyHeaderBytes) {
    return CompileError{what + " header is " + std::to_string(header_len) + " bytes, at most " +
                        std::to_string(kMaxNpyHeaderBytes)};
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
  auto dims = parse_shape(shape, what);
  if (!dims) return dims.error();
  a.shape = std::move(*dims);
  const struct {
    const char* descr;
    size_t bytes;
  } kinds[] = {{"<f4", 4}, {"<f8", 8}, {"|i1", 1}, {"|u1", 1}, {"<i4", 4}, {"<i8", 8}, {"|b1", 1}};
  size_t elem = 0;
  for (const auto& k : kinds) {
    if (a.dtype == k.descr) elem = k.bytes;
  }
  if (elem == 0) {
    return CompileError{what + " has dtype " + printable(a.dtype.substr(0, 16)) +
                        ", supported: <f4 <f8 |i1 |u1 <i4 <i8 |b1"};
  }
  // The element count, checked against the bytes left after each factor: no product
  // can overflow, and a zero dimension makes an empty array.
  const size_t data_at = header_at + header_len;
  const uint64_t available = (b.size() - data_at) / elem;
  uint64_t n = 1;
  for (const int64_t d : a.shape) {
    if (d == 0) {
      n = 0;
      break;
    }
  }
  for (size_t k = 0; n != 0 && k < a.shape.size(); ++k) {
    const auto d = static_cast<uint64_t>(a.shape[k]);
    if (n > available / d) {
      return CompileError{what + " holds fewer bytes than its shape needs (" +
                          std::to_string(b.size() - data_at) + " bytes of data)"};
    }
    n *= d;
  }
  const char* d = b.data() + data_at;
  const auto count = static_cast<int64_t>(n);
  if (a.dtype == "<f4") convert<float>(d, count, a.values);
  if (a.dtype == "<f8") convert<double>(d, count, a.values);
  if (a.dtype == "|i1") convert<int8_t>(d, count, a.values);
  if (a.dtype == "|u1" || a.dtype == "|b1") convert<uint8_t>(d, count, a.values);
  if (a.dtype == "<i4") convert<int32_t>(d, count, a.values);
  if (a.dtype == "<i8") convert<int64_t>(d, count, a.values);
  return a;
}

namespace {

uint64_t le64(const std::string& b, size_t at) {
  return uint64_t{le32(b, at)} | uint64_t{le32(b, at + 4)} << 32;
}

// One zip entry's data, inflated into exactly `size` bytes and checked against `crc`.
Result<std::string> entry_data(const std::string& b, size_t at, uint64_t csize, uint64_t size,
                               uint16_t method, uint32_t crc, const std::string& name) {
  std::string data;
  if (method == 0) {
    if (csize != size) {
      return CompileError{"npz entry " + name + " is stored with sizes " + std::to_string(csize) +
                          " and " + std::to_string(size) + " that differ"};
    }
    data = b.substr(at, static_cast<size_t>(csize));
  } else if (method == 8) {
    data.resize(static_cast<size_t>(size));
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return CompileError{"zlib init failed"};
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + at));
    z.avail_in = static_cast<uInt>(csize);
    z.next_out = reinterpret_cast<Bytef*>(data.data());
    z.avail_out = static_cast<uInt>(size);
    const int rc = inflate(&z, Z_FINISH);
    const uint64_t produced = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != size) {
      return CompileError{"npz entry " + name + " does not inflate to its declared " +
                          std::to_string(size) + " bytes"};
    }
  } else {
    return CompileError{"npz entry " + name + " uses zip method " + std::to_string(method) +
                        ", supported: stored, deflate"};
  }
  const auto actual = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
  if (actual != crc) return CompileError{"npz entry " + name + " fails its CRC-32 check"};
  return data;
}

}  // namespace

Result<std::map<std::string, NpyArray>> parse_npz(const std::string& b, const NpzLimits& limits) {
  std::map<std::string, NpyArray> out;
  uint64_t total = 0;
  size_t at = 0;
  while (at + 30 <= b.size() && le32(b, at) == 0x04034b50) {  // local file header
    const uint16_t flags = le16(b, at + 6), method = le16(b, at + 8);
    const uint32_t crc = le32(b, at + 14);
    uint64_t csize = le32(b, at + 18), usize = le32(b, at + 22);
    const uint16_t name_len = le16(b, at + 26), extra_len = le16(b, at + 28);
    if (at + 30 + name_len + extra_len > b.size())
      return CompileError{"npz entry header truncated"};
    std::string name = printable(b.substr(at + 30, name_len));
    const size_t data_at = at + 30 + name_len + extra_len;
    // zip64 extra field (numpy writes it for large arrays): 64-bit sizes in the extra data.
    for (size_t e = at + 30 + name_len; e + 4 <= data_at;) {
      const uint16_t id = le16(b, e), len = le16(b, e + 2);
      if (e + 4 + len > data_at) break;
      if (id == 1 && usize == 0xffffffffu && len >= 8) usize = le64(b, e + 4);
      if (id == 1 && csize == 0xffffffffu && len >= 16) csize = le64(b, e + 12);
      e += 4 + size_t{len};
    }
    if (flags & 0x8) return CompileError{"npz entry " + name + " uses a data descriptor"};
    if (flags & 0x1) return CompileError{"npz entry " + name + " is encrypted"};
    if (out.size() == limits.max_entries) {
      return CompileError{"npz has more than " + std::to_string(limits.max_entries) + " entries"};
    }
    if (csize > b.size() - data_at) return CompileError{"npz entry " + name + " is truncated"};
    if (usize > limits.max_entry_bytes || usize > 0xffffffffu || csize > 0xffffffffu) {
      return CompileError{"npz entry " + name + " declares " + std::to_string(usize) +
                          " bytes, at most " +
                          std::to_string(std::min<uint64_t>(limits.max_entry_bytes, 0xffffffffu))};
    }
    if (usize / limits.max_ratio > csize) {
      return CompileError{"npz entry " + name + " declares " + std::to_string(usize) +
                          " bytes from " + std::to_string(csize) + " compressed, over " +
                          std::to_string(limits.max_ratio) + ":1 (a zip bomb)"};
    }
    total += usize;
    if (total > limits.max_total_bytes) {
      return CompileError{"npz entries hold over " + std::to_string(limits.max_total_bytes) +
                          " bytes in total"};
    }
    auto data = entry_data(b, data_at, csize, usize, method, crc, name);
    if (!data) return data.error();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) {
      name.resize(name.size() - 4);
    }
    auto array = parse_npy(*data, "npz entry " + name);
    if (!array) return array.error();
    out.emplace(name, std::move(*array));
    at = data_at + static_cast<size_t>(csize);
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
