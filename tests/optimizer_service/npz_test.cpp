// .npy/.npz from an operator: malformed shapes, overflowing sizes, zip bombs and corrupt
// entries are errors naming what is wrong (no throw, no giant allocation); well-formed
// stored and deflated archives read back exactly.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;

namespace {

// A version-1 .npy with the given dict fields and data bytes.
std::string npy(const std::string& shape, const std::string& data,
                const std::string& descr = "<f4") {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 16 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string floats(std::initializer_list<float> v) {
  std::string out(v.size() * 4, '\0');
  size_t i = 0;
  for (float f : v) std::memcpy(&out[4 * i++], &f, 4);
  return out;
}

void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xffff));
  put16(s, static_cast<uint16_t>(v >> 16));
}

std::string deflate_raw(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct Entry {
  std::string name, payload;
  bool deflated = false;
  // Overrides of the header's fields (0: the true value).
  uint32_t declared_size = 0, crc = 0;
};

// A zip of local file headers (what the reader walks); no central directory needed.
std::string zip(const std::vector<Entry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    const std::string data = e.deflated ? deflate_raw(e.payload) : e.payload;
    const auto crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(e.payload.data()), e.payload.size()));
    put32(out, 0x04034b50);
    put16(out, 20);
    put16(out, 0);
    put16(out, e.deflated ? 8 : 0);
    put32(out, 0);  // time, date
    put32(out, e.crc ? e.crc : crc);
    put32(out, static_cast<uint32_t>(data.size()));
    put32(out, e.declared_size ? e.declared_size : static_cast<uint32_t>(e.payload.size()));
    put16(out, static_cast<uint16_t>(e.name.size()));
    put16(out, 0);
    out += e.name + data;
  }
  return out;
}

std::string npy_error(const std::string& bytes) {
  auto r = parse_npy(bytes, "x");
  return r ? "" : r.error().message;
}

std::string npz_error(const std::string& bytes, const NpzLimits& limits = {}) {
  auto r = parse_npz(bytes, limits);
  return r ? "" : r.error().message;
}

#define EXPECT_MENTIONS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(Npy, ReadsAWellFormedArray) {
  auto a = parse_npy(npy("(2, 2)", floats({1, 2, 3, 4})), "x");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->values, (std::vector<double>{1, 2, 3, 4}));
  auto one = parse_npy(npy("(3,)", floats({5, 6, 7})), "x");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(nhwc_sample(*one, 2), (std::vector<float>{7}));
  EXPECT_TRUE(nhwc_sample(*one, 3).empty());  // past the last sample: nothing, no read
  auto empty = parse_npy(npy("(0, 4)", ""), "x");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->values.empty());
  EXPECT_TRUE(nhwc_sample(*empty, 0).empty());
}

TEST(Npy, ANonNumericDimensionIsAnErrorNamingTheShape) {
  const auto e = npy_error(npy("(a,)", floats({1})));
  EXPECT_MENTIONS(e, "x header has a bad shape (a,)");
  EXPECT_MENTIONS(npy_error(npy("(-1,)", floats({1}))), "not a non-negative integer");
  EXPECT_MENTIONS(npy_error(npy("(1 2)", floats({1, 2}))), "separated by commas");
  EXPECT_MENTIONS(npy_error(npy("(99999999999999999999999,)", "")), "over 2^40");
  EXPECT_MENTIONS(npy_error(npy("(1,1,1,1,1,1,1,1,1)", floats({1}))), "more than 8 dimensions");
}

// A dimension of 0 leaves no values, however large the others: the sample is empty at
// once (npz_fuzzer timed out walking 8,888,888 x 8,888,881 positions of nothing).
TEST(Npy, ASampleOfAnArrayWithAZeroDimensionIsEmpty) {
  NpyArray a;
  a.shape = {1, 8888888, 8888881, 0};
  a.dtype = "<f4";
  EXPECT_EQ(a.size(), 0);
  EXPECT_TRUE(nhwc_sample(a, 0).empty());
  a.shape = {1, 8888888, 0};
  EXPECT_TRUE(nhwc_sample(a, 0).empty());
  // The other dimensions' product is past int64 (UBSan: signed overflow, before).
  a.shape = {2, 8888888, 88889, 8, 88888888, 8888, 8, 0};
  EXPECT_EQ(a.size(), 0);
  EXPECT_TRUE(nhwc_sample(a, 1).empty());
}

TEST(Npy, AScalarIsRefused) {
  EXPECT_MENTIONS(npy_error(npy("()", floats({1}))), "a scalar (shape ())");
}

TEST(Npy, AShapeWhoseProductOverflowsIsRefused) {
  // 2^40 x 2^40 x 16 wraps a 64-bit product to 0; the check must not be fooled.
  EXPECT_MENTIONS(npy_error(npy("(1099511627776, 1099511627776, 16)", floats({1}))),
                  "holds fewer bytes than its shape needs");
  EXPECT_MENTIONS(npy_error(npy("(3,)", floats({1, 2}))), "holds fewer bytes");
}

TEST(Npy, AHugeHeaderIsRefusedBeforeItIsRead) {
  std::string b = "\x93NUMPY\x02";
  b += '\0';
  put32(b, 0x7fffffff);
  b += "{}";
  EXPECT_MENTIONS(npy_error(b), "header is 2147483647 bytes, at most 65536");
}

TEST(Npz, ReadsStoredAndDeflatedEntries) {
  const auto x = npy("(2, 3)", floats({1, 2, 3, 4, 5, 6}));
  const auto y = npy("(2,)", std::string("\x01\x02", 2), "|u1");
  auto r = parse_npz(zip({{"x.npy", x, true}, {"y.npy", y, false}}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->at("x").values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->at("y").values, (std::vector<double>{1, 2}));
}

TEST(Npz, ADeclaredSizeOverTheCapIsRefusedBeforeAllocating) {
  // 4 GiB - 16 declared for a few bytes of deflate: refused on the number alone.
  Entry bomb{"x.npy", npy("(1,)", floats({1})), true, 0xfffffff0u};
  EXPECT_MENTIONS(npz_error(zip({bomb})), "npz entry x.npy declares 4294967280 bytes, at most");
  NpzLimits small;
  small.max_entry_bytes = 64;
  EXPECT_MENTIONS(npz_error(zip({{"x.npy", npy("(32,)", std::string(128, '\0')), false}}), small),
                  "at most 64");
}

TEST(Npz, ADeclaredRatioOverDeflatesLimitIsAZipBomb) {
  Entry bomb{"x.npy", npy("(1,)", floats({1})), true, 64u << 20};
  EXPECT_MENTIONS(npz_error(zip({bomb})), "(a zip bomb)");
}

TEST(Npz, AllEntriesTogetherAreBounded) {
  NpzLimits limits;
  limits.max_total_bytes = 200;
  const auto a = npy("(16,)", std::string(64, '\0'));
  EXPECT_MENTIONS(npz_error(zip({{"a.npy", a}, {"b.npy", a}}), limits), "200 bytes in total");
}

TEST(Npz, AnEntryThatInflatesShortOrFailsItsCrcIsRefused) {
  const auto x = npy("(2,)", floats({1, 2}));
  Entry longer{"x.npy", x, true, static_cast<uint32_t>(x.size() + 8)};
  EXPECT_MENTIONS(npz_error(zip({longer})), "does not inflate to its declared");
  Entry corrupt{"x.npy", x, false, 0, 0x12345678u};
  EXPECT_MENTIONS(npz_error(zip({corrupt})), "npz entry x.npy fails its CRC-32 check");
  Entry corrupt_deflated{"x.npy", x, true, 0, 0x12345678u};
  EXPECT_MENTIONS(npz_error(zip({corrupt_deflated})), "CRC-32");
}

TEST(Npz, AMalformedArrayInsideIsNamed) {
  EXPECT_MENTIONS(npz_error(zip({{"x.npy", npy("(a,)", floats({1}))}})),
                  "npz entry x header has a bad shape");
}

TEST(Npz, OperatorBytesInAnErrorArePrintableAscii) {
  const auto e = npz_error(zip({{"\xff\xfe\n.npy", npy("(\xc3,)", floats({1}))}}));
  EXPECT_MENTIONS(e, "npz entry ??? header has a bad shape (?,)");
  for (char c : e) EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << e;
}

TEST(Npz, TheSharedFixturesStillRead) {
  for (const char* f : {"data/digits_calib.npz", "data/digits_val.npz",
                        "data/breast_cancer_calib.npz", "data/breast_cancer_val.npz"}) {
    auto r = read_npz(tinyfleet::testing::fixture_path(f));
    EXPECT_TRUE(r) << f << ": " << r.error().message;
  }
}

}  // namespace
