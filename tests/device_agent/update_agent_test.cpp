// The update state machine over the Linux port's file-backed slots, with real
// signatures and real deltas: updates commit, tampering and failed self-tests roll
// back, downloads resume, and a process killed at any point comes back on a valid model.
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <random>

#include "stand_in_runner.h"
#include "tinyfleet/device_agent/linux/file_stores.h"
#include "tinyfleet/device_agent/linux/process_watchdog.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
using device_agent::UpdateState;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kNow = 1795305600;

using tinyfleet::testing::sha256;

std::string random_bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct TestClock : device_agent::Clock {
  uint64_t now_unix() override { return kNow; }
  uint64_t monotonic_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
};

// What the agent sent: chunk requests (served by the test) and status messages (decoded).
struct Mailbox : device_agent::Outbox {
  bool publish_status(const uint8_t* message, size_t size) override {
    update::StatusMessage m;
    EXPECT_TRUE(update::decode_status(message, size, &m).ok());
    statuses.push_back(m);
    return true;
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    requests.push_back({release, offset, length});
    return true;
  }
  struct Request {
    uint64_t release, offset;
    uint32_t length;
  };
  std::deque<Request> requests;
  std::vector<update::StatusMessage> statuses;
};

// One device: its folder, stores and agent; a new Device on the same folder is the
// same device after a reboot.
struct Device {
  Device(const fs::path& dir, const std::string& root_pk)
      : records(dir.string()), slots(dir.string()), root(root_pk) {
    config.device_class = "cortex-m4-256k";
    config.root_public_key = reinterpret_cast<const uint8_t*>(root.data());
    config.window_log = 17;
    config.device_id = tinyfleet::testing::kTestDeviceId;
    config.watchdog_timeout_ms = 200;  // used where a test sets a watchdog
    workspace.resize(update::DeltaDecoder::workspace_size(config.window_log));
    agent = std::make_unique<device_agent::UpdateAgent>(config, records, slots, clock, mail,
                                                        verifier, sha, runner_a, runner_b,
                                                        workspace.data(), workspace.size());
  }
  // Answers chunk requests from `payload` until none is left (or `max` answered).
  int serve(const std::string& payload, uint64_t release, int max = 1 << 30) {
    int served = 0;
    while (!mail.requests.empty() && served < max) {
      auto r = mail.requests.front();
      mail.requests.pop_front();
      if (r.release != release || r.offset >= payload.size()) continue;
      const auto n = std::min<size_t>(r.length, payload.size() - r.offset);
      agent->on_chunk(release, r.offset,
                      reinterpret_cast<const uint8_t*>(payload.data()) + r.offset, n);
      ++served;
    }
    return served;
  }
  // Runs the new model's probation to its end (each inference fine and fast).
  void pass_probation() {
    for (uint32_t i = 0; i < config.probation_inferences; ++i) agent->inference_done(true, 1);
  }
  std::string active_artifact() {
    const auto& rec = agent->record();
    std::string s(static_cast<size_t>(slots.slot_size(rec.active_slot)), '\0');
    slots.read_slot(rec.active_slot, 0, reinterpret_cast<uint8_t*>(s.data()), s.size());
    return s;
  }

  device_agent::linux_port::FileRecordStore records;
  device_agent::linux_port::FileSlotStore slots;
  std::string root;
  device_agent::AgentConfig config;
  TestClock clock;
  Mailbox mail;
  update::SodiumVerifier verifier;
  update::SodiumSha256 sha;
  tinyfleet::testing::StandInRunner runner_a, runner_b;
  std::vector<uint8_t> workspace;
  std::unique_ptr<device_agent::UpdateAgent> agent;
};

class UpdateAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() /
           ("tf-agent-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "device");
    key_ = update::init_keys((dir_ / "keys").string(), kNow, 30).value();
    root_pk_ = update::load_root_public_key((dir_ / "keys").string()).value();
    base_ = random_bytes(1, 6000);
    target_ = base_;
    for (int i = 0; i < 40; ++i) target_[1000 + i * 97] ^= 0x11;  // fine-tuned weights
    auto d = update::encode_tensor_delta(base_, target_, {}, {}, {});
    ASSERT_TRUE(d);
    delta_ = *d;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Device> device() { return std::make_unique<Device>(dir_ / "device", root_pk_); }

  update::ManifestFields manifest(uint64_t release = 1) const {
    auto f = tinyfleet::testing::manifest_for(base_, target_, delta_, release, 256, kNow + 3600);
    f.self_tests = {tinyfleet::testing::StandInRunner::vector_for(target_)};
    return f;
  }
  void offer(Device& d, const update::ManifestFields& f) {
    const auto bytes = update::sign_offer(f, key_);
    d.agent->on_offer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  // As fleetd sends it: signed with `key`, carrying the keys folder's root chain.
  void offer_with_chain(Device& d, const update::ManifestFields& f, const update::TargetsKey& key) {
    update::SodiumSigner signer(key.secret_key);
    const auto chain = update::load_root_chain((dir_ / "keys").string()).value();
    const auto bytes = update::sign_offer(f, key, signer, chain).value();
    d.agent->on_offer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

  fs::path dir_;
  update::TargetsKey key_;
  std::string root_pk_, base_, target_;
  update::Delta delta_;
};

TEST_F(UpdateAgentTest, AnUpdateCommitsAndSurvivesAReboot) {
  {
    auto d = device();
    ASSERT_TRUE(
        d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    ASSERT_TRUE(d->agent->boot());
    offer(*d, manifest());
    EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
    const int chunks = d->serve(delta_.payload, 1);
    EXPECT_EQ(chunks, static_cast<int>((delta_.payload.size() + 255) / 256));
    EXPECT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
    EXPECT_EQ(d->agent->record().installed_release, 1u);
    EXPECT_TRUE(d->active_artifact() == target_);
    ASSERT_NE(d->agent->shadow(), nullptr);  // the old model, for shadow comparison
    EXPECT_TRUE(d->runner_b.artifact_ == target_);
    d->pass_probation();  // trusted now: a restart keeps it
  }
  auto again = device();
  ASSERT_TRUE(again->agent->boot());
  EXPECT_EQ(again->agent->record().installed_release, 1u);
  EXPECT_TRUE(again->active_artifact() == target_);
  // The retained offer arrives again after the reboot: nothing happens.
  offer(*again, manifest());
  EXPECT_TRUE(again->mail.requests.empty());
}

// fleetd clears the retained offer (an empty message) when the rollout ends without the
// device: the download in flight is abandoned, the old model keeps running, nothing more
// is requested, a stale copy of that offer is not taken, and after a reboot too.
TEST_F(UpdateAgentTest, AWithdrawnOfferIsAbandoned) {
  {
    auto d = device();
    ASSERT_TRUE(
        d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    ASSERT_TRUE(d->agent->boot());
    d->agent->on_offer(nullptr, 0);  // nothing in flight: no news, no status
    const size_t statuses = d->mail.statuses.size();
    auto f = manifest();
    f.chunk_size = 16;
    offer(*d, f);
    d->serve(delta_.payload, 1, 2);
    ASSERT_EQ(d->agent->state(), UpdateState::kDownloading);
    d->mail.requests.clear();
    d->agent->on_offer(nullptr, 0);
    EXPECT_EQ(d->agent->state(), UpdateState::kIdle);
    EXPECT_STREQ(d->agent->record().reason, "offer withdrawn by fleetd");
    EXPECT_TRUE(d->active_artifact() == base_);
    EXPECT_GT(d->mail.statuses.size(), statuses);
    offer(*d, f);  // a stale retained copy
    EXPECT_TRUE(d->mail.requests.empty());
    EXPECT_EQ(d->agent->state(), UpdateState::kIdle);
  }
  auto d = device();
  ASSERT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kIdle);
  EXPECT_TRUE(d->active_artifact() == base_);
  EXPECT_TRUE(d->mail.requests.empty());
  offer(*d, manifest(2));  // a newer release is taken as usual
  EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
}

TEST_F(UpdateAgentTest, TamperingIsRefusedAndTheOldModelKeepsRunning) {
  auto d = device();
  ASSERT_TRUE(
      d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
  ASSERT_TRUE(d->agent->boot());
  // Refusals travel as a typed code (what fleetd acts on) with a human detail.
  auto expect_refused = [&](const update::ManifestFields& f, update::OfferStatus why) {
    d->mail.statuses.clear();
    offer(*d, f);
    EXPECT_TRUE(d->mail.requests.empty()) << update::to_string(why);
    ASSERT_FALSE(d->mail.statuses.empty()) << update::to_string(why);
    const update::StatusMessage& s = d->mail.statuses.back();
    EXPECT_EQ(s.event, update::StatusEvent::kOfferRefused);
    EXPECT_EQ(s.refusal, why) << s.detail;
    EXPECT_STREQ(s.detail, update::to_string(why));
    // It names the refused offer's release (fleetd applies it to that offer only).
    EXPECT_EQ(s.pending_release, f.release_seq) << update::to_string(why);
    EXPECT_TRUE(s.has_artifact);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(s.artifact_sha256), 32), sha256(base_));
    EXPECT_TRUE(d->active_artifact() == base_);
  };
  auto f = manifest();
  f.device_class = "cortex-m7-512k";
  expect_refused(f, update::OfferStatus::kWrongClass);
  f = manifest();
  f.expires_at = kNow - 10;
  expect_refused(f, update::OfferStatus::kExpired);
  f = manifest();
  f.base_sha256 = sha256("something else");
  expect_refused(f, update::OfferStatus::kBaseMismatch);

  // A flipped byte in the delta: downloaded, refused at verification, rolled back.
  auto tampered = delta_;
  tampered.payload[tampered.payload.size() / 3] ^= 0x01;
  offer(*d, manifest());
  d->serve(tampered.payload, 1);
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_STREQ(d->agent->record().reason, "payload sha256 mismatch");
  EXPECT_EQ(d->agent->record().installed_release, 0u);
  EXPECT_TRUE(d->active_artifact() == base_);
  EXPECT_TRUE(d->agent->model_ready());
  // The same release is not tried again; a new release is.
  offer(*d, manifest(1));
  EXPECT_TRUE(d->mail.requests.empty());
  offer(*d, manifest(2));
  d->serve(delta_.payload, 2);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted);
  // An older release than the installed one is refused silently (a retained old offer).
  offer(*d, manifest(1));
  EXPECT_TRUE(d->mail.requests.empty());
}

TEST_F(UpdateAgentTest, AFailedSelfTestRollsBack) {
  auto d = device();
  ASSERT_TRUE(
      d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
  ASSERT_TRUE(d->agent->boot());
  auto f = manifest();
  f.self_tests = {
      tinyfleet::testing::StandInRunner::vector_for(base_)};  // vectors of another model
  offer(*d, f);
  d->serve(delta_.payload, 1);
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_STREQ(d->agent->record().reason, "self-test output differs from the expected output");
  EXPECT_TRUE(d->active_artifact() == base_);
  EXPECT_TRUE(d->runner_a.artifact_ == base_);  // still the running model
}

TEST_F(UpdateAgentTest, ADownloadResumesWhereItStopped) {
  {
    auto d = device();
    ASSERT_TRUE(
        d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    ASSERT_TRUE(d->agent->boot());
    auto f = manifest();
    f.chunk_size = 16;
    offer(*d, f);
    ASSERT_GT(delta_.payload.size(), 5u * 16);
    d->serve(delta_.payload, 1, 3);  // three chunks, then the power goes
  }
  auto d = device();
  ASSERT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
  ASSERT_FALSE(d->mail.requests.empty());
  EXPECT_EQ(d->mail.requests.front().offset, 3u * 16);  // nothing fetched twice
  d->serve(delta_.payload, 1);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted);
  EXPECT_TRUE(d->active_artifact() == target_);
}

// Power cuts: the agent runs in a child process that SIGKILLs itself at the Nth
// persisted transition, or after the Nth write of any kind; the parent reboots the
// device and checks it runs the old or the new model, whole, then finishes.
struct KillSwitch {
  static inline int countdown = -1;
  static void tick() {
    if (countdown >= 0 && countdown-- == 0) raise(SIGKILL);
  }
};

struct KillingSlots : device_agent::linux_port::FileSlotStore {
  using FileSlotStore::FileSlotStore;
  bool append_slot(int s, const uint8_t* d, size_t n) override {
    KillSwitch::tick();
    return FileSlotStore::append_slot(s, d, n);
  }
  bool staging_append(uint64_t o, const uint8_t* d, size_t n) override {
    KillSwitch::tick();
    return FileSlotStore::staging_append(o, d, n);
  }
  bool commit_slot(int s) override {
    KillSwitch::tick();
    return FileSlotStore::commit_slot(s);
  }
};

TEST_F(UpdateAgentTest, PowerCutsAtEveryStepLeaveAValidModel) {
  std::mt19937 rng(2026);
  // Kill points: each of the first 12 transitions, then 200 random write counts.
  std::vector<std::pair<bool, int>> points;
  for (int i = 0; i < 12; ++i) points.push_back({true, i});
  for (int i = 0; i < 200; ++i) points.push_back({false, static_cast<int>(rng() % 60)});
  int old_model = 0, new_model = 0;
  for (const auto& [at_transition, n] : points) {
    fs::remove_all(dir_ / "device");
    fs::create_directories(dir_ / "device");
    {
      auto d = device();
      ASSERT_TRUE(
          d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    }
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      device_agent::linux_port::FileRecordStore records((dir_ / "device").string());
      KillingSlots slots((dir_ / "device").string());
      auto d = device();  // its config, clock, crypto and runners; its own agent stays idle
      KillSwitch::countdown = n;
      device_agent::UpdateAgent agent(d->config, records, slots, d->clock, d->mail, d->verifier,
                                      d->sha, d->runner_a, d->runner_b, d->workspace.data(),
                                      d->workspace.size());
      if (at_transition) agent.before_persist = [](UpdateState) { KillSwitch::tick(); };
      agent.boot();
      const auto bytes = update::sign_offer(manifest(), key_);
      agent.on_offer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      while (!d->mail.requests.empty()) {
        auto r = d->mail.requests.front();
        d->mail.requests.pop_front();
        const auto len = std::min<size_t>(r.length, delta_.payload.size() - r.offset);
        agent.on_chunk(1, r.offset,
                       reinterpret_cast<const uint8_t*>(delta_.payload.data()) + r.offset, len);
      }
      // Probation, with power cuts in it too (a cut before it ends returns to the old model).
      for (uint32_t i = 0; i < d->config.probation_inferences; ++i) agent.inference_done(true, 1);
      _exit(0);  // finished without being killed
    }
    int status = 0;
    waitpid(child, &status, 0);
    // Reboot: a valid, whole model, old or new.
    auto d = device();
    ASSERT_TRUE(d->agent->boot()) << "bricked at " << (at_transition ? "transition " : "write ")
                                  << n;
    const auto running = d->active_artifact();
    ASSERT_TRUE(running == base_ || running == target_)
        << "mixed model at " << (at_transition ? "transition " : "write ") << n;
    (running == base_ ? old_model : new_model)++;
    EXPECT_EQ(sha256(running),
              std::string(reinterpret_cast<const char*>(d->agent->record().installed_sha256), 32));
    // And the update still completes from there (unless it was refused for good).
    if (d->agent->state() != UpdateState::kRolledBack && running == base_) {
      offer(*d, manifest());
      d->serve(delta_.payload, 1);
      EXPECT_EQ(d->agent->state(), UpdateState::kCommitted)
          << "at " << (at_transition ? "transition " : "write ") << n << ": "
          << d->agent->record().reason;
    }
  }
  EXPECT_GT(old_model, 0);
  EXPECT_GT(new_model, 0);
}

// The root rotates and the targets key is stolen: the Linux agent walks the root chain
// from its pinned key, keeps the newest root across a reboot, refuses the old root's
// certificates and the revoked targets key (saying why), and takes the new key's offer.
TEST_F(UpdateAgentTest, RootRotationAndRevocationReachTheAgent) {
  const std::string keys = (dir_ / "keys").string();
  const auto old_root_cert = key_;                     // certified by the root the device pinned
  ASSERT_TRUE(update::rotate_root(keys, keys, 1, 1));  // v2: a new root key
  key_ = update::load_targets_key(keys).value();       // the same key, certified by the new root
  {
    auto d = device();
    ASSERT_TRUE(
        d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    ASSERT_TRUE(d->agent->boot());
    offer_with_chain(*d, manifest(), key_);
    EXPECT_EQ(d->agent->trusted_root().version, 2u);
    EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
    // Certified by the retired root: refused now.
    const auto old = update::sign_offer(manifest(), old_root_cert);
    d->agent->on_offer(reinterpret_cast<const uint8_t*>(old.data()), old.size());
    EXPECT_EQ(d->mail.statuses.back().refusal, update::OfferStatus::kBadCertificate);
  }
  auto d = device();
  ASSERT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->trusted_root().version, 2u);  // persisted
  EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
  const auto stolen = key_;
  ASSERT_TRUE(update::rotate_targets_key(keys, keys, kNow, 30));           // v3
  ASSERT_TRUE(update::revoke_targets_key(keys, keys, stolen.public_key));  // v4
  const auto fresh = update::load_targets_key(keys).value();
  offer_with_chain(*d, manifest(), fresh);  // carries v3, v4: the download restarts under it
  EXPECT_EQ(d->agent->trusted_root().version, 4u);
  EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);
  offer_with_chain(*d, manifest(2), stolen);
  EXPECT_EQ(d->mail.statuses.back().refusal, update::OfferStatus::kTargetsKeyRevoked);
  EXPECT_STREQ(d->mail.statuses.back().detail, "targets key revoked by the root metadata");
  EXPECT_EQ(d->agent->record().pending_release, 1u);  // still the legitimate download
  // A release far ahead (a freeze attempt) is refused too, whoever signed it: the step is
  // counted from the highest release the device accepted (1, downloading).
  offer_with_chain(*d, manifest(2 + update::kDefaultMaxReleaseStep), fresh);
  EXPECT_EQ(d->mail.statuses.back().refusal, update::OfferStatus::kReleaseStepTooLarge);
  d->serve(delta_.payload, 1);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
}

// A revocation applies at once: a download under the revoked key is abandoned when the
// root metadata arrives (not marked failed: the same release comes again, re-signed).
TEST_F(UpdateAgentTest, ARevocationAbandonsTheDownloadInFlight) {
  const std::string keys = (dir_ / "keys").string();
  auto d = device();
  ASSERT_TRUE(
      d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
  ASSERT_TRUE(d->agent->boot());
  auto f = manifest();
  f.chunk_size = 16;
  offer_with_chain(*d, f, key_);
  d->serve(delta_.payload, 1, 2);
  ASSERT_EQ(d->agent->state(), UpdateState::kDownloading);
  const auto stolen = key_;
  ASSERT_TRUE(update::rotate_targets_key(keys, keys, kNow, 30));
  ASSERT_TRUE(update::revoke_targets_key(keys, keys, stolen.public_key));
  const size_t before = d->mail.statuses.size();
  offer_with_chain(*d, f, update::load_targets_key(keys).value());
  bool abandoned = false;
  for (size_t i = before; i < d->mail.statuses.size(); ++i) {
    abandoned |= std::string(d->mail.statuses[i].detail) ==
                 "the update's targets key was revoked by the root metadata";
  }
  EXPECT_TRUE(abandoned);
  EXPECT_EQ(d->agent->record().failed_release, 0u);
  EXPECT_EQ(d->agent->state(), UpdateState::kDownloading);  // again, under the new key
  EXPECT_EQ(d->mail.requests.back().offset, 0u);
  d->serve(delta_.payload, 1);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
}
}  // namespace

// ---- Device safety (issue 19 point 6): watchdog, power cuts on probation, "no model",
// offers during probation, the shadow, device binding, anti-rollback.

// A second update: target_ -> target2_.
class SafetyTest : public UpdateAgentTest {
 protected:
  void SetUp() override {
    UpdateAgentTest::SetUp();
    target2_ = target_;
    for (int i = 0; i < 30; ++i) target2_[2000 + i * 53] ^= 0x22;
    auto d = update::encode_tensor_delta(target_, target2_, {}, {}, {});
    ASSERT_TRUE(d);
    delta2_ = *d;
    auto full = update::encode_full(target_, {});
    ASSERT_TRUE(full);
    full_ = *full;
  }
  update::ManifestFields manifest2(uint64_t release) const {
    auto f =
        tinyfleet::testing::manifest_for(target_, target2_, delta2_, release, 256, kNow + 3600);
    f.self_tests = {tinyfleet::testing::StandInRunner::vector_for(target2_)};
    return f;
  }
  // The whole target_ as a first install (a device provisioned without a model).
  update::ManifestFields first_install(uint64_t release = 1) const {
    auto f = tinyfleet::testing::manifest_for("", target_, full_, release, 256, kNow + 3600);
    f.self_tests = {tinyfleet::testing::StandInRunner::vector_for(target_)};
    return f;
  }
  update::ManifestFields no_model(uint64_t release) const {
    update::ManifestFields f;
    f.device_class = "cortex-m4-256k";
    f.device_id = tinyfleet::testing::kTestDeviceId;
    f.release_seq = release;
    f.expires_at = kNow + 3600;
    f.kind = update::OfferKind_NoModel;
    return f;
  }
  // Factory base_, then release 1 (target_) committed.
  std::unique_ptr<Device> updated_device() {
    auto d = device();
    EXPECT_TRUE(
        d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
    EXPECT_TRUE(d->agent->boot());
    offer(*d, manifest());
    d->serve(delta_.payload, 1);
    EXPECT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
    return d;
  }
  // Runs `body` in a child process that ends by a watchdog reset, a SIGKILL or _exit;
  // returns its wait status.
  template <class F>
  int in_child(F body) {
    const pid_t child = fork();
    if (child == 0) {
      body();
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return status;
  }

  std::string target2_;
  update::Delta delta2_, full_;
};

TEST_F(SafetyTest, ProbationIsOnByDefault) {
  EXPECT_GT(device_agent::AgentConfig{}.probation_inferences, 0u);
  auto d = updated_device();
  EXPECT_EQ(d->agent->record().probation_left, d->config.probation_inferences);
}

// A model that hangs in inference on probation: the watchdog resets the device (ends the
// process); after the restart the previous model runs and the status says why.
TEST_F(SafetyTest, AModelThatHangsOnProbationResetsTheDeviceAndRollsBack) {
  const int status = in_child([&] {
    auto d = updated_device();
    device_agent::linux_port::ProcessWatchdog watchdog((dir_ / "device").string());
    d->agent->set_watchdog(&watchdog);
    d->runner_a.hangs_on = d->runner_b.hangs_on = target_;
    d->agent->inference_starting();  // what the inference loop does around each run
    int8_t in[8] = {}, out[8];
    const bool ok = d->agent->model().run(in, out);  // never returns
    d->agent->inference_done(ok, 1);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), device_agent::linux_port::ProcessWatchdog::kResetExitCode);
  auto d = device();
  device_agent::linux_port::ProcessWatchdog watchdog((dir_ / "device").string());
  d->agent->set_watchdog(&watchdog);
  EXPECT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_STREQ(d->agent->record().reason, "new model hung on probation (watchdog reset)");
  EXPECT_EQ(d->agent->record().installed_release, 0u);
  EXPECT_EQ(d->agent->record().failed_release, 1u);
  EXPECT_TRUE(d->active_artifact() == base_);
  ASSERT_FALSE(d->mail.statuses.empty());
  EXPECT_EQ(d->mail.statuses.back().state, UpdateState::kRolledBack);
  EXPECT_STREQ(d->mail.statuses.back().detail, "new model hung on probation (watchdog reset)");
  EXPECT_FALSE(watchdog.caused_reset());  // the marker is consumed once
}

TEST_F(SafetyTest, AModelThatHangsInItsSelfTestIsNotTaken) {
  const int status = in_child([&] {
    auto d = device();
    device_agent::linux_port::ProcessWatchdog watchdog((dir_ / "device").string());
    d->agent->set_watchdog(&watchdog);
    d->runner_a.hangs_on = d->runner_b.hangs_on = target_;
    d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size());
    d->agent->boot();
    offer(*d, manifest());
    d->serve(delta_.payload, 1);  // the self-test hangs
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), device_agent::linux_port::ProcessWatchdog::kResetExitCode);
  auto d = device();
  device_agent::linux_port::ProcessWatchdog watchdog((dir_ / "device").string());
  d->agent->set_watchdog(&watchdog);
  EXPECT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_STREQ(d->agent->record().reason, "new model hung in its self-test (watchdog reset)");
  EXPECT_EQ(d->agent->record().failed_release, 1u);
  EXPECT_TRUE(d->active_artifact() == base_);
}

// The power goes (SIGKILL) while the new model is on probation: the restart returns to
// the previous model.
TEST_F(SafetyTest, APowerCutOnProbationRollsBackOnRestart) {
  const int status = in_child([&] {
    auto d = updated_device();
    d->agent->inference_done(true, 1);
    d->agent->inference_done(true, 1);
    raise(SIGKILL);
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  auto d = device();
  EXPECT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_STREQ(d->agent->record().reason, "restarted while the new model was on probation");
  EXPECT_EQ(d->agent->record().installed_release, 0u);
  EXPECT_TRUE(d->active_artifact() == base_);
  EXPECT_TRUE(d->runner_a.artifact_ == base_);
}

// A device provisioned without a model whose first model fails: "no model" (reported),
// not a boot loop; a later release is still taken.
TEST_F(SafetyTest, AFirstInstallThatFailsGoesToNoModel) {
  {
    auto d = device();
    ASSERT_TRUE(d->agent->provision_empty());
    auto f = first_install();
    f.self_tests = {tinyfleet::testing::StandInRunner::vector_for(base_)};  // fails
    offer(*d, f);
    d->serve(full_.payload, 1);
    EXPECT_EQ(d->agent->state(), UpdateState::kNoModel);
    EXPECT_FALSE(d->agent->model_ready());
    ASSERT_FALSE(d->mail.statuses.empty());
    EXPECT_EQ(d->mail.statuses.back().state, UpdateState::kNoModel);
    EXPECT_FALSE(d->mail.statuses.back().has_artifact);
    EXPECT_EQ(d->mail.statuses.back().failed_release, 1u);
  }
  {
    // A first model that passes its self-test, then crashes on probation (twice: no loop).
    auto d = device();
    EXPECT_FALSE(d->agent->boot());
    offer(*d, first_install(2));
    d->serve(full_.payload, 2);
    ASSERT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
    d->agent->inference_done(true, 1);
  }
  for (int boot = 0; boot < 2; ++boot) {
    auto d = device();
    EXPECT_FALSE(d->agent->boot());  // runs nothing, and says so
    EXPECT_EQ(d->agent->state(), UpdateState::kNoModel);
    EXPECT_FALSE(d->agent->model_ready());
    EXPECT_EQ(d->agent->record().failed_release, 2u);
    EXPECT_EQ(d->agent->record().active_slot, device_agent::kNoSlot);
    EXPECT_EQ(d->runner_a.runs + d->runner_b.runs, 0);
    if (boot == 0) {
      EXPECT_STREQ(d->agent->record().reason, "restarted while the new model was on probation");
      EXPECT_EQ(d->mail.statuses.back().state, UpdateState::kNoModel);
    }
  }
  auto d = device();
  d->agent->boot();
  offer(*d, first_install(3));
  d->serve(full_.payload, 3);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted);
  EXPECT_TRUE(d->agent->model_ready());
}

// An update arriving on probation would overwrite the fallback slot: it waits (reported
// as deferred, not refused) and is taken when probation passes.
TEST_F(SafetyTest, AnOfferOnProbationWaitsUntilProbationEnds) {
  auto d = updated_device();
  d->mail.statuses.clear();
  offer(*d, manifest2(2));
  EXPECT_TRUE(d->mail.requests.empty());
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted);
  ASSERT_FALSE(d->mail.statuses.empty());
  EXPECT_EQ(d->mail.statuses.back().event, update::StatusEvent::kOfferDeferred);
  EXPECT_EQ(d->mail.statuses.back().refusal, update::OfferStatus::kOnProbation);
  EXPECT_EQ(d->agent->record().previous_slot, 0);
  EXPECT_EQ(d->slots.slot_size(0), static_cast<long>(base_.size()));  // the fallback is whole
  d->pass_probation();
  EXPECT_FALSE(d->mail.requests.empty());  // taken now
  d->serve(delta2_.payload, 2);
  EXPECT_EQ(d->agent->state(), UpdateState::kCommitted) << d->agent->record().reason;
  EXPECT_EQ(d->agent->record().installed_release, 2u);
  EXPECT_TRUE(d->active_artifact() == target2_);
}

// The shadow (the previous model, in the other slot) stops when another update is
// accepted, before its patch rewrites that slot, and a rejected model never becomes it.
TEST_F(SafetyTest, TheShadowNeverRunsAReplacedOrRejectedModel) {
  auto d = updated_device();
  d->pass_probation();
  ASSERT_NE(d->agent->shadow(), nullptr);
  auto f = manifest2(2);
  f.self_tests = {tinyfleet::testing::StandInRunner::vector_for(base_)};  // will fail
  f.chunk_size = 16;
  offer(*d, f);
  EXPECT_EQ(d->agent->shadow(), nullptr);  // from the moment the offer is taken
  d->serve(delta2_.payload, 2);
  EXPECT_EQ(d->agent->state(), UpdateState::kRolledBack);
  EXPECT_EQ(d->agent->shadow(), nullptr);
  EXPECT_TRUE(d->agent->model().input_bytes() > 0);
  EXPECT_TRUE(d->active_artifact() == target_);
}

// An offer captured from another device (or one naming no device) is refused here.
TEST_F(SafetyTest, AnOfferForAnotherDeviceIsRefused) {
  auto d = device();
  ASSERT_TRUE(
      d->agent->install_factory(reinterpret_cast<const uint8_t*>(base_.data()), base_.size()));
  ASSERT_TRUE(d->agent->boot());
  for (const char* other : {"device-1", ""}) {
    auto f = manifest();
    f.device_id = other;
    d->mail.statuses.clear();
    offer(*d, f);
    EXPECT_TRUE(d->mail.requests.empty());
    ASSERT_FALSE(d->mail.statuses.empty());
    EXPECT_EQ(d->mail.statuses.back().refusal, update::OfferStatus::kWrongDevice);
    EXPECT_STREQ(d->mail.statuses.back().detail, "manifest for another device");
  }
  offer(*d, manifest());
  EXPECT_FALSE(d->mail.requests.empty());
}

// After a rollback the installed release is lower than the highest accepted one: the
// releases between them stay refused (persisted); a newer one (fleetd's revert or a
// new rollout: always a new, higher release) is taken.
TEST_F(SafetyTest, ARollbackDoesNotReopenReleasesBelowTheHighestSeen) {
  {
    auto d = updated_device();
    d->pass_probation();
    offer(*d, manifest2(5));
    d->serve(delta2_.payload, 5);
    ASSERT_EQ(d->agent->state(), UpdateState::kCommitted);
    d->agent->inference_done(false, 1);  // fails on probation
    ASSERT_EQ(d->agent->state(), UpdateState::kRolledBack);
    EXPECT_EQ(d->agent->record().installed_release, 1u);
    EXPECT_EQ(d->agent->record().highest_release, 5u);
  }
  auto d = device();
  ASSERT_TRUE(d->agent->boot());
  for (uint64_t between : {2u, 4u}) {
    offer(*d, manifest2(between));
    EXPECT_TRUE(d->mail.requests.empty()) << between;
  }
  offer(*d, manifest2(6));
  EXPECT_FALSE(d->mail.requests.empty());
}

// A signed "no model" offer (a rollout's revert of a device that had none before it):
// the device stops running the model and says so, across restarts.
TEST_F(SafetyTest, ANoModelOfferStopsInference) {
  {
    auto d = device();
    ASSERT_TRUE(d->agent->provision_empty());
    offer(*d, first_install(1));
    d->serve(full_.payload, 1);
    d->pass_probation();
    ASSERT_TRUE(d->agent->model_ready());
    auto other = no_model(2);
    other.device_id = "device-1";
    offer(*d, other);
    EXPECT_TRUE(d->agent->model_ready());  // not for this device
    offer(*d, no_model(2));
    EXPECT_EQ(d->agent->state(), UpdateState::kNoModel);
    EXPECT_FALSE(d->agent->model_ready());
    EXPECT_EQ(d->mail.statuses.back().state, UpdateState::kNoModel);
    EXPECT_FALSE(d->mail.statuses.back().has_artifact);
    EXPECT_EQ(d->mail.statuses.back().release, 2u);
  }
  auto d = device();
  EXPECT_FALSE(d->agent->boot());
  EXPECT_EQ(d->agent->state(), UpdateState::kNoModel);
  offer(*d, first_install(1));  // the rejected model's retained offer: not taken again
  EXPECT_TRUE(d->mail.requests.empty());
}

// A record written by the previous agent (version 1, without highest_release) is read:
// the device keeps its model and takes the highest release it can have accepted.
TEST_F(SafetyTest, AVersionOneRecordIsReadAndUpgraded) {
  {
    auto d = updated_device();
    d->pass_probation();
  }
  using device_agent::AgentRecord;
  std::string v2(sizeof(AgentRecord), '\0');
  auto* rec = reinterpret_cast<AgentRecord*>(v2.data());
  device_agent::linux_port::FileRecordStore store((dir_ / "device").string());
  ASSERT_EQ(store.load("agent-state", reinterpret_cast<uint8_t*>(v2.data()), v2.size()),
            static_cast<long>(v2.size()));
  rec->version = 1;
  // Version 1: the same fields without the 8 bytes of highest_release.
  std::string v1 = v2.substr(0, offsetof(AgentRecord, highest_release)) +
                   v2.substr(offsetof(AgentRecord, probation_left),
                             offsetof(AgentRecord, crc) - offsetof(AgentRecord, probation_left));
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : v1) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  v1.append(reinterpret_cast<const char*>(&crc), 4);
  v1.resize(sizeof(AgentRecord) - 8, '\0');
  ASSERT_TRUE(store.save("agent-state", reinterpret_cast<const uint8_t*>(v1.data()), v1.size()));
  auto d = device();
  ASSERT_TRUE(d->agent->boot());
  EXPECT_EQ(d->agent->record().installed_release, 1u);
  EXPECT_EQ(d->agent->record().highest_release, 1u);
  EXPECT_TRUE(d->active_artifact() == target_);
  offer(*d, manifest2(2));
  EXPECT_FALSE(d->mail.requests.empty());
}
