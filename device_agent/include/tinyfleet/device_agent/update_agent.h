#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/device_agent/telemetry.h"
#include "tinyfleet/update/crypto.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/status_message.h"

namespace tinyfleet::device_agent {

// Named after what the device is doing (defined with the status message that carries
// it). Every transition is persisted before it takes effect, so a power cut resumes the
// step or rolls back, never leaving a half-written model active.
using update::UpdateState;

inline constexpr uint8_t kNoSlot = 0xff;

// The persisted record ("agent-state"), fixed size, checksummed.
struct AgentRecord {
  uint32_t magic = 0x41534654;  // "TFSA"
  uint16_t version = 2;
  UpdateState state = UpdateState::kIdle;
  uint8_t active_slot = kNoSlot;
  uint64_t installed_release = 0;
  uint8_t installed_sha256[32] = {};
  uint64_t installed_size = 0;
  uint8_t previous_slot = kNoSlot;  // what a rollback returns to
  uint64_t previous_release = 0;
  uint8_t previous_sha256[32] = {};
  uint64_t previous_size = 0;
  uint64_t pending_release = 0;
  uint8_t pending_sha256[32] = {};
  uint64_t pending_size = 0;
  uint64_t failed_release = 0;  // a release that failed here is not tried again
  // The highest release ever accepted here, kept apart from installed_release (which a
  // rollback lowers): an offer must be above it, so a rollback does not reopen the
  // releases between the installed and the highest one (anti-rollback).
  uint64_t highest_release = 0;
  uint32_t probation_left = 0;  // inferences the new model must run before it is trusted
  char reason[96] = {};
  uint32_t crc = 0;
};

struct AgentConfig {
  const char* fleet = "default";
  const char* device_class = "";
  const char* device_id = "";                // offers must name it (update.fbs Manifest.device_id)
  const uint8_t* root_public_key = nullptr;  // 32 bytes
  uint32_t window_log = 17;                  // decoder window this device affords
  uint32_t chunk_timeout_ms = 2000;          // re-request a chunk after this
  uint32_t self_test_timeout_ms = 1000;      // per self-test inference
  // After a switch, the new model is on probation for this many inferences: a crash or
  // a hang (the device restarts while on probation), a failed inference or one over the
  // time limit rolls back to the previous model (or, on a first install, to "no model").
  // 0 trusts the model once its self-test passes. An offer arriving on probation waits
  // until it ends (the fallback slot is not overwritten).
  uint32_t probation_inferences = 20;
  uint32_t inference_timeout_ms = 1000;
  // The watchdog's time (set_watchdog) for one self-test run or inference: a run that
  // has not returned by then resets the device.
  uint32_t watchdog_timeout_ms = 5000;
};

// The update state machine of one device. Single-threaded: the port calls it from
// one loop. Memory: the caller's workspace (delta decoder) and offer buffer.
class UpdateAgent {
 public:
  UpdateAgent(const AgentConfig& config, RecordStore& records, SlotStore& slots, Clock& clock,
              Outbox& outbox, const update::SignatureVerifier& verifier, update::Sha256& sha,
              ModelRunner& active, ModelRunner& candidate, uint8_t* workspace,
              size_t workspace_bytes);

  // The watchdog armed around each self-test run and inference (optional; see ports.h).
  void set_watchdog(Watchdog* watchdog) { watchdog_ = watchdog; }
  // Puts a first artifact into slot 0 as release 0 (provisioning, before any update).
  bool install_factory(const uint8_t* artifact, size_t size);
  // Provisions a device that ships without a model: its first offer must be a full one.
  bool provision_empty();
  // Publishes what the device runs (on every connect), so the server knows its base.
  void announce();
  // After power-up: restores the record, resumes or rolls back an update in flight,
  // checks the active slot's sha256 and loads its model.
  bool boot();
  // An offer (the retained message on the device's offer topic). An empty one means fleetd
  // withdrew the offer (its rollout ended without this device): a download of it in flight
  // is abandoned (the installed model keeps running) and the release is not taken later.
  void on_offer(const uint8_t* data, size_t size);
  void on_chunk(uint64_t release, uint64_t offset, const uint8_t* data, size_t size);
  void on_reconnect();  // announces itself and re-requests the chunk in flight
  void poll();          // chunk timeouts
  // The inference loop calls this just before each inference of the active model (it
  // arms the watchdog) and inference_done() after it: a failure or one over the time
  // limit while on probation rolls back; success counts down probation.
  void inference_starting();
  void inference_done(bool ok, uint64_t elapsed_ms);
  // Returns to the previous model (kept in the other slot) and reports why; with no
  // previous model (a first install) the device goes to kNoModel and runs nothing.
  bool roll_back(const char* reason);

  UpdateState state() const { return record_.state; }
  // Chunk requests sent again after chunk_timeout_ms without an answer: in all, and the
  // most in a row for one chunk (at most 1: every chunk came by its first retry).
  uint32_t chunk_retries() const { return chunk_retries_; }
  uint32_t chunk_retries_in_row_max() const { return retries_in_row_max_; }
  const AgentRecord& record() const { return record_; }
  bool model_ready() const { return model_ready_; }
  ModelRunner& model() { return *active_; }
  // After a switch, the previous model (still loaded) for shadow comparison, or null;
  // null from the moment another update is accepted (its patch rewrites that slot).
  ModelRunner* shadow() { return shadow_ready_ ? candidate_ : nullptr; }
  void end_shadow() { shadow_ready_ = false; }
  const update::Manifest* manifest() const;  // of the offer in progress or last installed
  // The root metadata the device trusts: its pinned key (version 0) until an offer carries
  // a chain it can walk; persisted ("trusted-root") as soon as it advances.
  const update::TrustedRoot& trusted_root() const { return root_; }
  const ModelInfo& model_info() const { return info_; }  // of the active model

  // Test hook: called just before each transition is persisted (a test may kill the
  // process there to simulate a power cut).
  void (*before_persist)(UpdateState next) = nullptr;

 private:
  bool persist(UpdateState next, const char* reason = "");
  void withdraw();  // an empty offer: abandon the update in flight
  void drop_model(uint64_t release, const char* reason);  // to kNoModel
  bool defer(const uint8_t* data, size_t size);           // an offer during probation
  void take_deferred();                                   // ... once probation ended
  // Walks the root chain an offer carries; false when the offer is refused for it.
  bool take_root_chain(const uint8_t* data, size_t size);
  void load_trusted_root();
  // Reports the refusal naming the refused offer's release (0: not known, the offer did not
  // verify far enough to read it), so fleetd applies it to that offer only.
  void refuse(update::OfferStatus why, uint64_t release);
  void fail_update(const char* reason);
  void request_next_chunk();
  void install();  // verify_payload, patch and self_test in turn
  bool verify_payload();
  bool patch();
  void self_test();
  bool failed(const char* reason);  // fail_update, then false
  bool slot_matches(uint8_t slot, const uint8_t sha[32], uint64_t size);
  bool load_active();
  bool save_model_info(int slot, const update::Manifest& m);
  // A refusal's status carries `refused_release` as its pending release.
  void report(update::StatusEvent event, const char* detail = "",
              update::OfferStatus refusal = update::OfferStatus::kOk, uint64_t refused_release = 0);

  AgentConfig config_;
  RecordStore& records_;
  SlotStore& slots_;
  Clock& clock_;
  Outbox& outbox_;
  const update::SignatureVerifier& verifier_;
  update::Sha256& sha_;
  ModelRunner* active_;
  ModelRunner* candidate_;
  uint8_t* workspace_;
  size_t workspace_bytes_;
  AgentRecord record_;
  update::TrustedRoot root_;
  uint8_t offer_[update::kMaxOfferBytes];
  size_t offer_size_ = 0;
  bool model_ready_ = false;
  ModelInfo info_;
  bool shadow_ready_ = false;
  Watchdog* watchdog_ = nullptr;
  uint64_t requested_at_ms_ = 0;
  bool request_outstanding_ = false;
  uint32_t chunk_retries_ = 0, retries_in_row_ = 0, retries_in_row_max_ = 0;
};

}  // namespace tinyfleet::device_agent
