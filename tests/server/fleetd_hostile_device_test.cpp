// A hostile device against a real fleetd, PostgreSQL and Mosquitto (issue 19, point 1):
// `mosquitto_pub` with a provisioned device's credentials sends garbage, truncated and
// oversized messages, values out of range and a retained poison status. fleetd counts
// each per device (metrics, one log line per device and interval), drops it, stays up
// (also when restarted onto the retained poison), keeps applying the other devices'
// reports, and the rollout of the other devices completes. The device's row stays small.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "fleetd_fixture.h"
#include "rollout_seed.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/status_message.h"
#include "tinyfleet/update/telemetry_message.h"
#include "tinyfleet/update/update_keys.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

struct Account {
  std::string user, password;
};

Account test_device(int index) {
  const auto a = tinyfleet::testing::test_devices(index, 1).front();
  return {a.user, a.password};
}

std::string bytes(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

std::string status_bytes(const update::StatusMessage& m) {
  uint8_t out[update::kMaxStatusBytes];
  size_t n = 0;
  EXPECT_TRUE(update::encode_status(m, out, sizeof out, &n).ok());
  return bytes(out, n);
}

std::string telemetry_bytes(const update::TelemetryMessage& m) {
  uint8_t out[update::kTelemetryMaxBytes];
  size_t n = 0;
  EXPECT_TRUE(update::encode_telemetry(m, out, sizeof out, &n).ok());
  return bytes(out, n);
}

void hex_to(const std::string& hex, uint8_t* out) {
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out[i / 2] = static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16));
  }
}

// The value of the metric line starting with `series` (-1 when absent).
double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

class HostileDevice : public FleetdUpdatesTest {
 protected:
  void SetUp() override {
    FleetdTest::SetUp();
    rollouts_ = v1::Rollouts::NewStub(fleetd_->channel());
    hostile_ = test_device(account_index());
    auto f = scratch_.db().transact([&](pqxx::work& w) {
      auto fleet = seed_fleet(w, 3, true);
      storage::devices::create(w, {hostile_.user, "default", kSeedClass, {"h"}, "hash"});
      return fleet;
    });
    ASSERT_TRUE(f) << f.error().message;
    fleet_ = *f;
  }
  void TearDown() override {
    publish(hostile_, topic(hostile_.user, "status"), "", true);  // the poison goes
    FleetdUpdatesTest::TearDown();
  }

  static std::string topic(const std::string& device, const std::string& kind) {
    return "tinyfleet/v1/default/" + device + "/" + kind;
  }
  // mosquitto_pub as `who`: the payload from a file (binary, any size).
  // Returns mosquitto_pub's exit code; expects 0 unless `may_fail`.
  int publish(const Account& who, const std::string& topic, const std::string& payload,
              bool retain = false, bool may_fail = false) {
    const std::string file =
        (fs::temp_directory_path() / ("tf-hostile-" + std::to_string(getpid()) + ".bin")).string();
    std::ofstream(file, std::ios::binary) << payload;
    const auto r = run_command(
        "mosquitto_pub -h " + require_env("TINYFLEET_MQTT_HOST") + " -p " +
        require_env("TINYFLEET_MQTT_PORT") + " -u '" + who.user + "' -P '" + who.password +
        "' -i 'hostile-" + std::to_string(getpid()) + "' -q 1 -t '" + topic + "' " +
        (payload.empty() ? std::string("-n") : "-f " + file) + (retain ? " -r" : "") + " 2>&1");
    fs::remove(file);
    if (!may_fail) {
      EXPECT_EQ(r.exit, 0) << topic << ": " << r.out;
    }
    return r.exit;
  }
  // Polls fleetd's metrics until `series` reaches `at_least` (or 20 s pass).
  double wait_metric(const std::string& series, double at_least) {
    double v = -1;
    const auto deadline = steady_clock::now() + std::chrono::seconds(20);
    while (steady_clock::now() < deadline) {
      v = metric(fleetd_->scrape_metrics(), series);
      if (v >= at_least) return v;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << series << " is " << v << ", expected >= " << at_least << "\n"
                  << fleetd_->log().substr(0, 6000);
    return v;
  }
  bool alive() const { return ::kill(fleetd_->pid(), 0) == 0; }
  // The device account of this fixture's tests (tinyfleet::testing::test_devices): tests
  // of two fixtures run at once and must not clear each other's retained messages.
  virtual int account_index() const { return 18; }

  SeededFleet fleet_;
  Account hostile_;
  std::unique_ptr<v1::Rollouts::Stub> rollouts_;
};

const std::string kStatusRejects = R"(tinyfleet_device_messages_rejected_total{kind="status"})";
const std::string kTelemetryRejects =
    R"(tinyfleet_device_messages_rejected_total{kind="telemetry"})";
const std::string kChunkRejects =
    R"(tinyfleet_device_messages_rejected_total{kind="chunk_request"})";

TEST_F(HostileDevice, MalformedMessagesAreCountedDroppedAndTheRolloutCompletes) {
  const std::string status = topic(hostile_.user, "status");
  const std::string telemetry = topic(hostile_.user, "telemetry");
  const std::string megabyte(1 << 20, 'A');
  const std::string large(60000, 'B');  // under the broker's max_packet_size

  update::StatusMessage good;
  update::set_text(good.device_class, kSeedClass);
  good.event = update::StatusEvent::kHello;
  good.has_artifact = true;
  hex_to(fleet_.artifact, good.artifact_sha256);
  good.release = 1;
  const std::string valid = status_bytes(good);

  // Statuses that do not parse: JSON of the old protocol (wrong types), truncated, a
  // wrong magic, an enum out of range, trailing bytes, an over-long string, a huge
  // number, 60 kB; the first one retained. A
  // 1 MB status never reaches fleetd: the broker drops the connection (max_packet_size).
  publish(hostile_, status, R"({"release":"x"})", true);
  publish(hostile_, status, R"({"event":1})");
  publish(hostile_, status, valid.substr(0, valid.size() / 2));
  publish(hostile_, status, "TX" + valid.substr(2));
  std::string bad_state = valid;
  bad_state[6 + 1 + std::strlen(kSeedClass) + 1] = 99;  // the state byte
  publish(hostile_, status, bad_state);
  publish(hostile_, status, valid + "x");
  // An over-long detail (200 bytes where 95 is the bound; lengths made consistent) and a
  // release beyond INT64_MAX.
  std::string long_detail = valid;
  ASSERT_EQ(long_detail.back(), '\0');  // the empty detail's length byte
  long_detail.back() = static_cast<char>(200);
  long_detail += std::string(200, 'd');
  const size_t body = long_detail.size() - 6;
  long_detail[4] = static_cast<char>(body & 0xff);
  long_detail[5] = static_cast<char>(body >> 8);
  publish(hostile_, status, long_detail);
  update::StatusMessage huge_release = good;
  huge_release.release = ~uint64_t{0};
  publish(hostile_, status, status_bytes(huge_release));
  publish(hostile_, status, large);
  EXPECT_NE(publish(hostile_, status, megabyte, false, true), 0);
  // A refusal whose detail is not UTF-8 parses (the detail is cut to printable ASCII):
  // PostgreSQL would refuse the bytes and fail every report of the batch.
  update::StatusMessage refusal = good;
  refusal.event = update::StatusEvent::kOfferRefused;
  refusal.refusal = update::OfferStatus::kBaseMismatch;
  update::set_text(refusal.detail, "\xff\xfe\x01 not utf-8");
  publish(hostile_, status, status_bytes(refusal));
  // Another device's report in the same stream is applied.
  update::StatusMessage other = good;
  const Account server{require_env("TINYFLEET_MQTT_SERVER_USER"),
                       require_env("TINYFLEET_MQTT_SERVER_PASSWORD")};
  publish(server, topic(fleet_.devices[0], "status"), status_bytes(other));

  // Telemetry: garbage, 60 kB (1 MB is refused by the broker), and windows that decode with values
  // out of range.
  update::TelemetryMessage window;
  window.seq = 1;
  window.inferences = 20;
  window.output_psi = 0.1f;
  window.input_drift = 0.1f;
  window.probes = 10;
  window.probes_correct = 9;
  publish(hostile_, telemetry, "garbage");
  publish(hostile_, telemetry, large);
  EXPECT_NE(publish(hostile_, telemetry, megabyte, false, true), 0);
  auto nan = window;
  nan.latency_p50_us = std::nanf("");
  publish(hostile_, telemetry, telemetry_bytes(nan));
  auto inf = window;
  inf.energy_uj = INFINITY;
  publish(hostile_, telemetry, telemetry_bytes(inf));
  auto huge = window;
  huge.inferences = 0xffffffffu;
  publish(hostile_, telemetry, telemetry_bytes(huge));
  auto impossible = window;
  impossible.probes_correct = 1000;
  publish(hostile_, telemetry, telemetry_bytes(impossible));
  auto negative = window;
  negative.output_psi = -5;
  publish(hostile_, telemetry, telemetry_bytes(negative));
  // A chunk request that does not parse.
  publish(hostile_, topic(hostile_.user, "chunk/req"), "TFCR");

  wait_metric(kStatusRejects, 9);
  wait_metric(kTelemetryRejects, 7);
  wait_metric(kChunkRejects, 1);
  ASSERT_TRUE(alive());

  // The other device's report was applied, and so was the refusal (no rows to change).
  auto seen = scratch_.db().transact([&](pqxx::work& w) {
    return w
        .exec_params1("SELECT count(*) FROM devices WHERE id = $1 AND last_seen IS NOT NULL",
                      fleet_.devices[0])[0]
        .as<int>();
  });
  ASSERT_TRUE(seen);
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (steady_clock::now() < deadline) {
    seen = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1("SELECT count(*) FROM devices WHERE id = $1 AND last_seen IS NOT NULL",
                        fleet_.devices[0])[0]
          .as<int>();
    });
    if (seen && *seen == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(*seen, 1) << fleetd_->log().substr(0, 6000);
  EXPECT_EQ(fleetd_->log().find("rollouts.status\""), std::string::npos)
      << "a batch of reports failed:\n"
      << fleetd_->log().substr(0, 6000);

  // The rollout of the other devices completes.
  v1::CreateRolloutRequest req;
  req.set_name("h1");
  req.set_model("digits");
  req.set_version(1);
  req.mutable_selector()->add_tags("t");
  req.add_phases()->set_percent(100);
  v1::Rollout r;
  ASSERT_TRUE(rollouts_->CreateRollout(context_with_token(admin_).get(), req, &r).ok());
  const auto until = steady_clock::now() + std::chrono::seconds(30);
  while (steady_clock::now() < until && r.state() != "completed") {
    publish(hostile_, status, R"({"event":1})");  // and the device keeps at it
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    v1::RolloutRef ref;
    ref.set_name("h1");
    ASSERT_TRUE(rollouts_->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
  }
  EXPECT_EQ(r.state(), "completed") << r.reason() << "\n" << fleetd_->log().substr(0, 6000);

  // One log line for the device in this interval, naming it and a reason.
  const std::string log = fleetd_->log();
  size_t lines = 0;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"device.message_rejected\"") != std::string::npos &&
        line.find("\"device\":\"" + hostile_.user + "\"") != std::string::npos &&
        line.find("\"fleet\":\"default\"") != std::string::npos) {
      ++lines;
      EXPECT_NE(line.find("\"reason\":\"status report: "), std::string::npos) << line;
    }
  }
  EXPECT_EQ(lines, 1u) << log.substr(0, 6000);

  // The device's row holds what fleetd wrote, bounded whatever the device sent.
  auto row = scratch_.db().transact([&](pqxx::work& w) {
    return w
        .exec_params1("SELECT octet_length(d::text) FROM devices d WHERE id = $1", hostile_.user)[0]
        .as<int>();
  });
  ASSERT_TRUE(row);
  EXPECT_LT(*row, 512);

  // Restarted onto the retained poison, fleetd counts it again and stays up.
  EXPECT_EQ(fleetd_->terminate(), 0);
  fleetd_->start();
  connect();
  rollouts_ = v1::Rollouts::NewStub(fleetd_->channel());
  wait_metric(kStatusRejects, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(alive());
  v1::RolloutRef ref;
  ref.set_name("h1");
  EXPECT_TRUE(rollouts_->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
}

}  // namespace
}  // namespace tinyfleet::testing

namespace tinyfleet::testing {
namespace {

// Presence: a device's own online/offline messages (its will when the connection dies)
// and silence set its status; a malformed presence is counted.
class Presence : public HostileDevice {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    auto s = HostileDevice::fleetd_settings();
    s["devices.offline_after_seconds"] = "4";
    return s;
  }
  int account_index() const override { return 19; }
  std::string status_of(const std::string& device) {
    auto r = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params1("SELECT status FROM devices WHERE id = $1", device)[0]
          .as<std::string>();
    });
    return r ? *r : "";
  }
  // Seconds until the device's status is `want` (-1 if not within `limit_s`).
  double wait_status(const std::string& device, const std::string& want, double limit_s) {
    const auto t0 = steady_clock::now();
    while (std::chrono::duration<double>(steady_clock::now() - t0).count() < limit_s) {
      if (status_of(device) == want) {
        return std::chrono::duration<double>(steady_clock::now() - t0).count();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  static std::string presence(update::Presence p) {
    update::PresenceMessage m;
    m.presence = p;
    uint8_t out[update::kPresenceBytes];
    size_t n = 0;
    EXPECT_TRUE(update::encode_presence(m, out, sizeof out, &n).ok());
    return bytes(out, n);
  }
};

TEST_F(Presence, PresenceMessagesAndSilenceSetADevicesStatus) {
  const Account dev = hostile_;  // account 19, its device row made by SetUp
  const std::string t = topic(dev.user, "presence");
  EXPECT_EQ(status_of(dev.user), "provisioned");
  publish(dev, t, presence(update::Presence::kOnline));
  ASSERT_GE(wait_status(dev.user, "online", 10), 0);
  // Its own offline message, well before silence (4 s) could say so.
  publish(dev, t, presence(update::Presence::kOffline));
  const double by_message = wait_status(dev.user, "offline", 10);
  ASSERT_GE(by_message, 0);
  EXPECT_LT(by_message, 3.0);
  // Online again, then silence: offline after about 4 s, not before.
  publish(dev, t, presence(update::Presence::kOnline));
  ASSERT_GE(wait_status(dev.user, "online", 10), 0);
  const double by_silence = wait_status(dev.user, "offline", 15);
  ASSERT_GE(by_silence, 0);
  EXPECT_GT(by_silence, 2.0);
  // Garbage on the presence topic changes nothing and is counted.
  publish(dev, t, "not a presence message");
  wait_metric(R"(tinyfleet_device_messages_rejected_total{kind="presence"})", 1);
  EXPECT_EQ(status_of(dev.user), "offline");
  publish(dev, t, "", true);  // nothing retained stays behind
}

}  // namespace
}  // namespace tinyfleet::testing
