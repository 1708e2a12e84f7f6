// The status, telemetry and presence messages: round trips, and every way the bytes can
// be wrong is refused with the field it concerns, never read out of bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/update/agent_reasons.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/root_metadata.h"
#include "tinyfleet/update/status_message.h"
#include "tinyfleet/update/telemetry_message.h"

using namespace tinyfleet::update;

namespace {

StatusMessage sample_status() {
  StatusMessage m;
  set_text(m.device_class, "cortex-m4-256k");
  m.event = StatusEvent::kOfferRefused;
  m.state = UpdateState::kCommitted;
  m.refusal = OfferStatus::kBaseMismatch;
  m.has_artifact = true;
  m.release = 42;
  for (int i = 0; i < 32; ++i) m.artifact_sha256[i] = static_cast<uint8_t>(i * 7);
  m.pending_release = 43;
  m.failed_release = 41;
  set_text(m.detail, to_string(m.refusal));
  return m;
}

std::vector<uint8_t> encoded(const StatusMessage& m) {
  std::vector<uint8_t> out(kMaxStatusBytes);
  size_t n = 0;
  EXPECT_TRUE(encode_status(m, out.data(), out.size(), &n).ok());
  out.resize(n);
  return out;
}

TelemetryMessage sample_telemetry() {
  TelemetryMessage m;
  m.seq = 9;
  m.ts_unix = 1'800'000'000;
  m.release = 5;
  for (int i = 0; i < 32; ++i) m.artifact_sha256[i] = static_cast<uint8_t>(255 - i);
  m.inferences = 1200;
  m.latency_p50_us = 812.5f;
  m.latency_p95_us = 1400.25f;
  m.energy_uj = 3.125f;
  m.output_psi = 0.0421f;
  m.input_drift = -1.0f;
  m.probes = 40;
  m.probes_correct = 37;
  m.shadow = 10;
  m.shadow_agree = 9;
  return m;
}

// Every prefix of a valid message is refused (the header's length no longer matches).
template <class Decode, class Message>
void every_truncation_refused(const std::vector<uint8_t>& bytes, Decode decode) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes, so a read past them is a heap overflow under ASan.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    Message m;
    const auto s = decode(cut.data(), cut.size(), &m);
    EXPECT_FALSE(s.ok()) << n;
    EXPECT_TRUE(s.error == WireError::kTruncated || s.error == WireError::kLengthMismatch)
        << n << ": " << to_string(s.error);
  }
}

}  // namespace

TEST(StatusMessage, RoundTrip) {
  const StatusMessage m = sample_status();
  const auto bytes = encoded(m);
  EXPECT_EQ(bytes[0], 'T');
  EXPECT_EQ(bytes[1], 'F');
  EXPECT_EQ(bytes[2], static_cast<uint8_t>(MessageKind::kStatus));
  EXPECT_EQ(bytes[3], kStatusVersion);
  EXPECT_EQ(bytes[4] | (bytes[5] << 8), static_cast<int>(bytes.size() - kHeaderBytes));
  StatusMessage back;
  ASSERT_TRUE(decode_status(bytes.data(), bytes.size(), &back).ok());
  EXPECT_STREQ(back.device_class, m.device_class);
  EXPECT_EQ(back.event, m.event);
  EXPECT_EQ(back.state, m.state);
  EXPECT_EQ(back.refusal, OfferStatus::kBaseMismatch);
  EXPECT_TRUE(back.has_artifact);
  EXPECT_EQ(back.release, 42u);
  EXPECT_EQ(std::memcmp(back.artifact_sha256, m.artifact_sha256, 32), 0);
  EXPECT_EQ(back.pending_release, 43u);
  EXPECT_EQ(back.failed_release, 41u);
  EXPECT_STREQ(back.detail, "delta base is not the installed model");
}

TEST(StatusMessage, LongestFieldsFitTheBound) {
  StatusMessage m = sample_status();
  std::memset(m.device_class, 'c', kMaxNameBytes);
  std::memset(m.detail, 'd', kMaxDetailBytes);
  const auto bytes = encoded(m);
  EXPECT_EQ(bytes.size(), kMaxStatusBytes);
  StatusMessage back;
  ASSERT_TRUE(decode_status(bytes.data(), bytes.size(), &back).ok());
  EXPECT_EQ(std::strlen(back.detail), kMaxDetailBytes);
  // set_text cuts at the field's size.
  const std::string longer(300, 'x');
  set_text(m.detail, longer.c_str());
  EXPECT_EQ(std::strlen(m.detail), kMaxDetailBytes);
}

TEST(StatusMessage, EveryTruncationRefused) {
  every_truncation_refused<decltype(&decode_status), StatusMessage>(encoded(sample_status()),
                                                                    &decode_status);
}

TEST(StatusMessage, WrongHeaderRefused) {
  auto bytes = encoded(sample_status());
  StatusMessage m;
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kBadMagic);
  bad = bytes;
  bad[2] = static_cast<uint8_t>(MessageKind::kTelemetry);
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kWrongKind);
  for (uint8_t v : {0, 2, 255}) {
    bad = bytes;
    bad[3] = v;
    EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kUnknownVersion);
  }
  bad = bytes;
  bad[4] = static_cast<uint8_t>(bad[4] + 1);  // length one more than follows
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kLengthMismatch);
  bad = bytes;
  bad.push_back(0);  // one byte more than the fields, the length patched to match
  bad[4] = static_cast<uint8_t>(bad.size() - kHeaderBytes);
  const auto s = decode_status(bad.data(), bad.size(), &m);
  EXPECT_EQ(s.error, WireError::kTrailingBytes);
  EXPECT_STREQ(s.field, "status");
}

TEST(StatusMessage, OversizeLengthFieldsRefused) {
  const auto bytes = encoded(sample_status());
  StatusMessage m;
  // device_class's length byte claims 65 (over the bound) and 200 (past the end).
  for (uint8_t len : {static_cast<uint8_t>(kMaxNameBytes + 1), uint8_t{200}}) {
    auto bad = bytes;
    bad[kHeaderBytes] = len;
    const auto s = decode_status(bad.data(), bad.size(), &m);
    EXPECT_EQ(s.error, WireError::kTooLong);
    EXPECT_STREQ(s.field, "status.device_class");
  }
  // detail is the last field: its length byte sits right after the fixed fields.
  const size_t class_len = bytes[kHeaderBytes];
  const size_t detail_at = kHeaderBytes + 1 + class_len + 4 + 8 + 32 + 8 + 8;
  auto bad = bytes;
  bad[detail_at] = static_cast<uint8_t>(kMaxDetailBytes + 1);
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kTooLong);
  bad[detail_at] = static_cast<uint8_t>(bytes[detail_at] + 1);  // one past the end
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kTruncated);
}

TEST(StatusMessage, OutOfRangeValuesRefused) {
  const auto bytes = encoded(sample_status());
  const size_t at = kHeaderBytes + 1 + bytes[kHeaderBytes];  // event, state, refusal, flags
  const struct {
    size_t offset;
    uint8_t value;
    const char* field;
  } cases[] = {{0, 0, "status.event"},
               {0, kLastStatusEvent + 1, "status.event"},
               {1, kLastUpdateState + 1, "status.state"},
               {2, kLastOfferStatus + 1, "status.refusal"},
               {3, 2, "status.flags"}};
  for (const auto& c : cases) {
    auto bad = bytes;
    bad[at + c.offset] = c.value;
    StatusMessage m;
    const auto s = decode_status(bad.data(), bad.size(), &m);
    EXPECT_EQ(s.error, WireError::kBadValue) << c.field;
    EXPECT_STREQ(s.field, c.field);
  }
  auto bad = bytes;
  bad[kHeaderBytes + 2] = 0;  // a NUL inside device_class
  StatusMessage m;
  EXPECT_EQ(decode_status(bad.data(), bad.size(), &m).error, WireError::kBadValue);
}

TEST(StatusMessage, EncoderRefusesSmallBuffers) {
  const StatusMessage m = sample_status();
  const auto full = encoded(m);
  std::vector<uint8_t> out(kMaxStatusBytes);
  for (size_t cap = 0; cap < full.size(); ++cap) {
    size_t n = 1;
    EXPECT_EQ(encode_status(m, out.data(), cap, &n).error, WireError::kNoRoom) << cap;
    EXPECT_EQ(n, 0u);
  }
}

// Version 2's statistics filled with distinct values.
TelemetryMessage sample_telemetry_v2() {
  TelemetryMessage m = sample_telemetry();
  m.failures = 3;
  m.classes = 12;
  for (uint32_t i = 0; i < m.classes; ++i) m.class_counts[i] = 100 - i;  // sums to 1134
  m.channels = 3;
  m.input_count = 1200;
  for (int c = 0; c < m.channels; ++c) {
    m.input_sum[c] = 0.1 * (c + 1) * 1200;
    m.input_sumsq[c] = 0.25 * (c + 1) * 1200;
  }
  m.latency_hist[9] = 700;   // 512..1023 us
  m.latency_hist[10] = 500;  // 1024..2047 us
  m.active_us = 1'020'000;
  m.flags = kTelemetryEnergyMeasured;
  m.energy_measured_uj = 41234.5;
  m.energy_modelled_uj = 3.125 * 1200;
  return m;
}

std::vector<uint8_t> encoded_telemetry(const TelemetryMessage& m) {
  std::vector<uint8_t> out(kTelemetryMaxBytes);
  size_t n = 0;
  EXPECT_TRUE(encode_telemetry(m, out.data(), out.size(), &n).ok());
  out.resize(n);
  return out;
}

WireStatus decoded(const TelemetryMessage& m) {
  const auto bytes = encoded_telemetry(m);
  TelemetryMessage back;
  return decode_telemetry(bytes.data(), bytes.size(), &back);
}

// A firmware device sends its reasons as codes (agent_reasons.h); the host names each
// one as the Linux agent's text, and a detail that is text (an older or a Linux device)
// or an unknown code stays as it came.
TEST(AgentReasons, CodesNamedAsTheText) {
  const auto state = StatusEvent::kState;
  EXPECT_STREQ(
      name_detail(AgentReasonCode<AgentReason::kPayloadMismatch>::text, state, OfferStatus::kOk),
      "payload sha256 mismatch");
  EXPECT_STREQ(AgentReasonCode<AgentReason::kRootNotStored>::text, "#01");
  for (int n = 1; n < static_cast<int>(AgentReason::kEnd); ++n) {
    const std::string code = "#" + std::to_string(n / 10) + std::to_string(n % 10);
    EXPECT_STREQ(name_detail(code.c_str(), state, OfferStatus::kOk), kAgentReasonText[n]) << n;
    EXPECT_STRNE(kAgentReasonText[n], "") << n;
    EXPECT_STREQ(name_detail(("#" + std::to_string(n)).c_str(), state, OfferStatus::kOk),
                 kAgentReasonText[n]);
  }
  char code[5];
  format_detail_code(code, 'd', static_cast<uint8_t>(DeltaStatus::kCorrupt));
  EXPECT_STREQ(code, "#d04");
  EXPECT_STREQ(name_detail(code, state, OfferStatus::kOk), to_string(DeltaStatus::kCorrupt));
  format_detail_code(code, 'r', static_cast<uint8_t>(RootStatus::kNotSignedByOld));
  EXPECT_STREQ(name_detail(code, StatusEvent::kOfferRefused, OfferStatus::kRootRejected),
               to_string(RootStatus::kNotSignedByOld));
  // A refusal or deferral without detail: its code names it; any other event keeps none.
  EXPECT_STREQ(name_detail("", StatusEvent::kOfferRefused, OfferStatus::kBadSignature),
               to_string(OfferStatus::kBadSignature));
  EXPECT_STREQ(name_detail("", StatusEvent::kOfferDeferred, OfferStatus::kOnProbation),
               to_string(OfferStatus::kOnProbation));
  EXPECT_STREQ(name_detail("", StatusEvent::kState, OfferStatus::kOk), "");
  // Text, and codes this side does not know, pass through.
  EXPECT_STREQ(name_detail("payload sha256 mismatch", state, OfferStatus::kOk),
               "payload sha256 mismatch");
  for (const char* kept : {"#", "#00", "#99", "#123", "#x1", "#1x", "#d", "#d00", "#d99", "#d123",
                           "#r", "#r05", "#r1x", "# 1", "#-1"}) {
    EXPECT_STREQ(name_detail(kept, state, OfferStatus::kOk), kept) << kept;
  }
}

TEST(TelemetryMessage, Version1StillDecodes) {
  TelemetryMessage m = sample_telemetry();
  m.version = 1;
  m.failures = 7;  // not in version 1: not sent
  const auto bytes = encoded_telemetry(m);
  EXPECT_EQ(bytes.size(), kTelemetryV1Bytes);
  EXPECT_EQ(bytes[3], 1);
  TelemetryMessage back;
  ASSERT_TRUE(decode_telemetry(bytes.data(), bytes.size(), &back).ok());
  EXPECT_EQ(back.version, 1);
  EXPECT_EQ(back.seq, m.seq);
  EXPECT_EQ(back.ts_unix, m.ts_unix);
  EXPECT_EQ(back.release, m.release);
  EXPECT_EQ(std::memcmp(back.artifact_sha256, m.artifact_sha256, 32), 0);
  EXPECT_EQ(back.inferences, m.inferences);
  EXPECT_EQ(back.latency_p50_us, m.latency_p50_us);
  EXPECT_EQ(back.latency_p95_us, m.latency_p95_us);
  EXPECT_EQ(back.energy_uj, m.energy_uj);
  EXPECT_EQ(back.output_psi, m.output_psi);
  EXPECT_EQ(back.input_drift, -1.0f);
  EXPECT_EQ(back.probes, 40u);
  EXPECT_EQ(back.probes_correct, 37u);
  EXPECT_EQ(back.shadow, 10u);
  EXPECT_EQ(back.shadow_agree, 9u);
  EXPECT_EQ(back.failures, 0u);
  EXPECT_EQ(back.classes, 0);
  // And it encodes back to the same bytes (the fuzzer's round trip).
  EXPECT_EQ(encoded_telemetry(back), bytes);
}

TEST(TelemetryMessage, Version2RoundTripIsExact) {
  const TelemetryMessage m = sample_telemetry_v2();
  const auto bytes = encoded_telemetry(m);
  EXPECT_EQ(bytes[3], kTelemetryVersion);
  EXPECT_EQ(bytes.size(), kTelemetryV1Bytes + 4 + 1 + 4 * 12 + 1 + 4 + 16 * 3 +
                              4 * kTelemetryLatencyBuckets + 8 + 1 + 8 + 8);
  TelemetryMessage back;
  ASSERT_TRUE(decode_telemetry(bytes.data(), bytes.size(), &back).ok());
  EXPECT_EQ(back.version, 2);
  EXPECT_EQ(back.probes_correct, 37u);
  EXPECT_EQ(back.failures, 3u);
  ASSERT_EQ(back.classes, 12);
  for (uint32_t i = 0; i < 12; ++i) EXPECT_EQ(back.class_counts[i], 100 - i);
  EXPECT_EQ(back.class_counts[12], 0u);
  ASSERT_EQ(back.channels, 3);
  EXPECT_EQ(back.input_count, 1200u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(back.input_sum[c], m.input_sum[c]);
    EXPECT_EQ(back.input_sumsq[c], m.input_sumsq[c]);
  }
  EXPECT_EQ(back.latency_hist[9], 700u);
  EXPECT_EQ(back.latency_hist[10], 500u);
  EXPECT_EQ(back.active_us, 1'020'000u);
  EXPECT_EQ(back.flags, kTelemetryEnergyMeasured);
  EXPECT_EQ(back.energy_measured_uj, 41234.5);
  EXPECT_EQ(back.energy_modelled_uj, 3.125 * 1200);
  EXPECT_EQ(encoded_telemetry(back), bytes);
}

TEST(TelemetryMessage, LargestWindowFitsItsBound) {
  TelemetryMessage m = sample_telemetry_v2();
  m.classes = kTelemetryMaxClasses;
  m.channels = kTelemetryMaxChannels;
  for (auto& n : m.class_counts) n = 1;
  EXPECT_EQ(encoded_telemetry(m).size(), kTelemetryMaxBytes);
  std::vector<uint8_t> small(kTelemetryMaxBytes - 1);
  size_t n = 0;
  EXPECT_EQ(encode_telemetry(m, small.data(), small.size(), &n).error, WireError::kNoRoom);
}

TEST(TelemetryMessage, LatencyBuckets) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(1), 0u);
  EXPECT_EQ(latency_bucket(2), 1u);
  EXPECT_EQ(latency_bucket(3), 1u);
  EXPECT_EQ(latency_bucket(4), 2u);
  EXPECT_EQ(latency_bucket(1023), 9u);
  EXPECT_EQ(latency_bucket(1024), 10u);
  EXPECT_EQ(latency_bucket(uint64_t{1} << 23), 23u);
  EXPECT_EQ(latency_bucket(UINT64_MAX), kTelemetryLatencyBuckets - 1);
}

TEST(TelemetryMessage, EveryTruncationAndWrongHeaderRefused) {
  for (uint8_t version : {1, 2}) {
    TelemetryMessage t = sample_telemetry_v2();
    t.version = version;
    const auto bytes = encoded_telemetry(t);
    every_truncation_refused<decltype(&decode_telemetry), TelemetryMessage>(bytes,
                                                                            &decode_telemetry);
    TelemetryMessage m;
    auto bad = bytes;
    bad[3] = kTelemetryVersion + 1;
    EXPECT_EQ(decode_telemetry(bad.data(), bad.size(), &m).error, WireError::kUnknownVersion);
    bad[3] = 0;
    EXPECT_EQ(decode_telemetry(bad.data(), bad.size(), &m).error, WireError::kUnknownVersion);
    bad = bytes;
    bad[2] = static_cast<uint8_t>(MessageKind::kStatus);
    EXPECT_EQ(decode_telemetry(bad.data(), bad.size(), &m).error, WireError::kWrongKind);
    bad = bytes;
    bad[1] = 'G';
    EXPECT_EQ(decode_telemetry(bad.data(), bad.size(), &m).error, WireError::kBadMagic);
    bad = bytes;
    bad.push_back(0);
    const size_t body = bad.size() - kHeaderBytes;
    bad[4] = static_cast<uint8_t>(body);
    bad[5] = static_cast<uint8_t>(body >> 8);
    EXPECT_EQ(decode_telemetry(bad.data(), bad.size(), &m).error, WireError::kTrailingBytes);
  }
  // A version-2 window labelled version 1 has bytes after version 1's fields.
  auto bytes = encoded_telemetry(sample_telemetry_v2());
  bytes[3] = 1;
  TelemetryMessage m;
  EXPECT_EQ(decode_telemetry(bytes.data(), bytes.size(), &m).error, WireError::kTrailingBytes);
}

TEST(TelemetryMessage, CountsThatCannotBeRefused) {
  struct Case {
    const char* field;
    void (*spoil)(TelemetryMessage&);
  };
  const Case cases[] = {
      {"telemetry.probes_correct", [](TelemetryMessage& t) { t.probes_correct = t.probes + 1; }},
      {"telemetry.shadow_agree", [](TelemetryMessage& t) { t.shadow_agree = t.shadow + 1; }},
      {"telemetry.class_counts", [](TelemetryMessage& t) { t.class_counts[0] += 67; }},
      {"telemetry.latency_hist", [](TelemetryMessage& t) { t.latency_hist[0] = 1; }},
      {"telemetry.input_count", [](TelemetryMessage& t) { t.input_count = 0; }},
      {"telemetry.input_sum", [](TelemetryMessage& t) { t.input_sum[2] = INFINITY; }},
      {"telemetry.input_sum", [](TelemetryMessage& t) { t.input_sum[0] = NAN; }},
      {"telemetry.input_sumsq", [](TelemetryMessage& t) { t.input_sumsq[1] = -0.5; }},
      {"telemetry.flags", [](TelemetryMessage& t) { t.flags = 2; }},
      {"telemetry.energy_measured_uj", [](TelemetryMessage& t) { t.energy_measured_uj = -1; }},
      {"telemetry.energy_measured_uj",
       [](TelemetryMessage& t) {
         t.flags = 0;  // absent, yet a value
       }},
      {"telemetry.energy_modelled_uj", [](TelemetryMessage& t) { t.energy_modelled_uj = NAN; }},
  };
  ASSERT_TRUE(decoded(sample_telemetry_v2()).ok());
  for (const auto& c : cases) {
    TelemetryMessage t = sample_telemetry_v2();
    c.spoil(t);
    const auto s = decoded(t);
    EXPECT_EQ(s.error, WireError::kBadValue) << c.field;
    EXPECT_STREQ(s.field, c.field);
  }
  // Over the bounds: the class and channel counts as bytes on the wire.
  auto bytes = encoded_telemetry(sample_telemetry_v2());
  const size_t classes_at = kTelemetryV1Bytes + 4;
  ASSERT_EQ(bytes[classes_at], 12);
  bytes[classes_at] = kTelemetryMaxClasses + 1;
  TelemetryMessage m;
  auto s = decode_telemetry(bytes.data(), bytes.size(), &m);
  EXPECT_EQ(s.error, WireError::kTooLong);
  EXPECT_STREQ(s.field, "telemetry.classes");
  bytes = encoded_telemetry(sample_telemetry_v2());
  const size_t channels_at = classes_at + 1 + 4 * 12;
  ASSERT_EQ(bytes[channels_at], 3);
  bytes[channels_at] = 255;
  s = decode_telemetry(bytes.data(), bytes.size(), &m);
  EXPECT_EQ(s.error, WireError::kTooLong);
  EXPECT_STREQ(s.field, "telemetry.channels");
}

TEST(PresenceMessage, RoundTripAndRefusals) {
  for (Presence p : {Presence::kOffline, Presence::kOnline}) {
    uint8_t out[kPresenceBytes];
    size_t n = 0;
    ASSERT_TRUE(encode_presence({p}, out, sizeof out, &n).ok());
    ASSERT_EQ(n, kPresenceBytes);
    PresenceMessage back;
    back.presence = p == Presence::kOnline ? Presence::kOffline : Presence::kOnline;
    ASSERT_TRUE(decode_presence(out, n, &back).ok());
    EXPECT_EQ(back.presence, p);
    std::vector<uint8_t> bytes(out, out + n);
    every_truncation_refused<decltype(&decode_presence), PresenceMessage>(bytes, &decode_presence);
    bytes[kHeaderBytes] = 2;
    EXPECT_EQ(decode_presence(bytes.data(), bytes.size(), &back).error, WireError::kBadValue);
    bytes[kHeaderBytes] = 1;
    bytes[3] = 9;
    EXPECT_EQ(decode_presence(bytes.data(), bytes.size(), &back).error, WireError::kUnknownVersion);
  }
}
