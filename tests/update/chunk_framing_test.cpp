// Chunk framing: TFCR requests and TFCK answers, written once for both sides.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/update/chunk_framing.h"

using namespace tinyfleet::update;

TEST(ChunkFraming, RequestRoundTripAndLayout) {
  const ChunkRequest req{0x0102030405060708ull, 0x1112131415161718ull, 0x21222324u};
  uint8_t out[kChunkRequestBytes];
  ASSERT_TRUE(encode_chunk_request(req, out, sizeof out).ok());
  const uint8_t expected[kChunkRequestBytes] = {'T',  'F',  'C',  'R',  0x08, 0x07, 0x06, 0x05,
                                                0x04, 0x03, 0x02, 0x01, 0x18, 0x17, 0x16, 0x15,
                                                0x14, 0x13, 0x12, 0x11, 0x24, 0x23, 0x22, 0x21};
  EXPECT_EQ(std::memcmp(out, expected, sizeof out), 0);
  ChunkRequest back;
  ASSERT_TRUE(decode_chunk_request(out, sizeof out, &back).ok());
  EXPECT_EQ(back.release, req.release);
  EXPECT_EQ(back.offset, req.offset);
  EXPECT_EQ(back.length, req.length);
}

TEST(ChunkFraming, RequestEveryTruncationAndExtraByteRefused) {
  uint8_t out[kChunkRequestBytes + 1] = {};
  ASSERT_TRUE(encode_chunk_request({1, 2, 3}, out, kChunkRequestBytes).ok());
  ChunkRequest r;
  for (size_t n = 0; n < kChunkRequestBytes; ++n) {
    EXPECT_EQ(decode_chunk_request(out, n, &r).error, WireError::kTruncated) << n;
  }
  EXPECT_EQ(decode_chunk_request(out, kChunkRequestBytes + 1, &r).error, WireError::kTrailingBytes);
}

TEST(ChunkFraming, RequestBadMagicAndZeroLengthRefused) {
  uint8_t out[kChunkRequestBytes];
  ASSERT_TRUE(encode_chunk_request({1, 2, 3}, out, sizeof out).ok());
  ChunkRequest r;
  out[3] = 'K';
  EXPECT_EQ(decode_chunk_request(out, sizeof out, &r).error, WireError::kBadMagic);
  out[3] = 'R';
  std::memset(out + 20, 0, 4);
  const auto s = decode_chunk_request(out, sizeof out, &r);
  EXPECT_EQ(s.error, WireError::kBadValue);
  EXPECT_STREQ(s.field, "chunk_request.length");
  EXPECT_EQ(encode_chunk_request({1, 2, 0}, out, sizeof out).error, WireError::kBadValue);
  EXPECT_EQ(encode_chunk_request({1, 2, 3}, out, sizeof out - 1).error, WireError::kNoRoom);
}

TEST(ChunkFraming, AnswerRoundTrip) {
  std::vector<uint8_t> msg(kChunkHeaderBytes);
  ASSERT_TRUE(encode_chunk_header(7, 4096, msg.data(), msg.size()).ok());
  EXPECT_EQ(std::memcmp(msg.data(), "TFCK", 4), 0);
  const std::string data = "payload bytes";
  msg.insert(msg.end(), data.begin(), data.end());
  Chunk c;
  ASSERT_TRUE(decode_chunk(msg.data(), msg.size(), &c).ok());
  EXPECT_EQ(c.release, 7u);
  EXPECT_EQ(c.offset, 4096u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c.data), c.size), data);
  // An answer with no data is a valid (empty) chunk; shorter is truncated.
  ASSERT_TRUE(decode_chunk(msg.data(), kChunkHeaderBytes, &c).ok());
  EXPECT_EQ(c.size, 0u);
  for (size_t n = 0; n < kChunkHeaderBytes; ++n) {
    EXPECT_EQ(decode_chunk(msg.data(), n, &c).error, WireError::kTruncated) << n;
  }
  msg[0] = 'X';
  EXPECT_EQ(decode_chunk(msg.data(), msg.size(), &c).error, WireError::kBadMagic);
}

TEST(ChunkFraming, OversizeAnswerRefused) {
  std::vector<uint8_t> msg(kChunkHeaderBytes + kMaxChunkBytes + 1);
  ASSERT_TRUE(encode_chunk_header(1, 0, msg.data(), msg.size()).ok());
  Chunk c;
  EXPECT_EQ(decode_chunk(msg.data(), msg.size(), &c).error, WireError::kTooLong);
  EXPECT_TRUE(decode_chunk(msg.data(), msg.size() - 1, &c).ok());
}
