#include "tinyfleet/device_agent/update_agent.h"

#include <cstdio>
#include <cstring>

#include "tinyfleet/update/agent_reasons.h"

namespace tinyfleet::device_agent {

namespace {

constexpr const char* kRecordName = "agent-state";
constexpr const char* kOfferName = "offer";
constexpr const char* kDeferredName = "deferred-offer";  // empty: none
constexpr const char* kRootName = "trusted-root";

// The detail of a refusal, a delta's or a root's failure: its name, or in a build that
// sends codes (update/agent_reasons.h) none (the refusal code names it) or "#dNN"/"#rNN".
#if TINYFLEET_AGENT_REASON_CODES
const char* refusal_detail(update::OfferStatus) { return ""; }
template <typename Status>
const char* status_detail(Status status, char kind, char (&buf)[5]) {
  update::format_detail_code(buf, kind, static_cast<uint8_t>(status));
  return buf;
}
#else
const char* refusal_detail(update::OfferStatus status) { return update::to_string(status); }
template <typename Status>
const char* status_detail(Status status, char, char (&)[5]) {
  return update::to_string(status);
}
#endif

uint32_t crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t record_crc(const AgentRecord& r) {
  return crc32(reinterpret_cast<const uint8_t*>(&r), offsetof(AgentRecord, crc));
}

// Version 1 of the record (before highest_release), as devices wrote it: read once at
// boot and written as version 2 by the next transition.
struct AgentRecordV1 {
  uint32_t magic;
  uint16_t version;
  UpdateState state;
  uint8_t active_slot;
  uint64_t installed_release;
  uint8_t installed_sha256[32];
  uint64_t installed_size;
  uint8_t previous_slot;
  uint64_t previous_release;
  uint8_t previous_sha256[32];
  uint64_t previous_size;
  uint64_t pending_release;
  uint8_t pending_sha256[32];
  uint64_t pending_size;
  uint64_t failed_release;
  uint32_t probation_left;
  char reason[96];
  uint32_t crc;
};

bool from_v1(const uint8_t* bytes, long size, AgentRecord* out) {
  AgentRecordV1 v;
  if (size != static_cast<long>(sizeof v)) return false;
  std::memcpy(&v, bytes, sizeof v);
  if (v.magic != AgentRecord{}.magic || v.version != 1 ||
      v.crc != crc32(reinterpret_cast<const uint8_t*>(&v), offsetof(AgentRecordV1, crc))) {
    return false;
  }
  // Assigned in place rather than built in a local: GCC clears an assigned record but
  // copies a local's defaults from a 280 B image in flash (docs/firmware.md, Footprint).
  AgentRecord& r = *out;  // `bytes` may be *out: v holds the copy read above
  r = AgentRecord{};
  r.state = v.state;
  r.active_slot = v.active_slot;
  r.installed_release = v.installed_release;
  std::memcpy(r.installed_sha256, v.installed_sha256, 32);
  r.installed_size = v.installed_size;
  r.previous_slot = v.previous_slot;
  r.previous_release = v.previous_release;
  std::memcpy(r.previous_sha256, v.previous_sha256, 32);
  r.previous_size = v.previous_size;
  r.pending_release = v.pending_release;
  std::memcpy(r.pending_sha256, v.pending_sha256, 32);
  r.pending_size = v.pending_size;
  r.failed_release = v.failed_release;
  r.probation_left = v.probation_left;
  std::memcpy(r.reason, v.reason, sizeof r.reason);
  r.reason[sizeof r.reason - 1] = '\0';
  // The highest release it can have accepted: what it ran, tried or failed.
  r.highest_release = v.installed_release;
  if (v.pending_release > r.highest_release) r.highest_release = v.pending_release;
  if (v.failed_release > r.highest_release) r.highest_release = v.failed_release;
  r.crc = record_crc(r);
  return true;
}

// The persisted trusted root (root_metadata.h), checksummed like the agent record.
struct RootRecord {
  uint64_t magic = 0x52544654;  // "TFTR" (8 bytes: no padding before the root)
  update::TrustedRoot root;
  uint32_t crc = 0;
};

uint32_t root_crc(const RootRecord& r) {
  return crc32(reinterpret_cast<const uint8_t*>(&r), offsetof(RootRecord, crc));
}

void copy_reason(char (&out)[96], const char* reason) {
  std::snprintf(out, sizeof out, "%s", reason ? reason : "");
}

// Streams decoder output into a slot.
class SlotSink final : public update::SlotWriter {
 public:
  SlotSink(SlotStore& slots, int slot) : slots_(slots), slot_(slot) {}
  bool write(const uint8_t* data, size_t size) override {
    return slots_.append_slot(slot_, data, size);
  }

 private:
  SlotStore& slots_;
  int slot_;
};

// The active slot as the base of a delta.
class SlotBase final : public update::BaseReader {
 public:
  SlotBase(SlotStore& slots, int slot, uint64_t size) : slots_(slots), slot_(slot), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, uint8_t* out, size_t size) override {
    return offset <= size_ && size <= size_ - offset && slots_.read_slot(slot_, offset, out, size);
  }
  const uint8_t* contiguous() const override { return slots_.map_slot(slot_); }

 private:
  SlotStore& slots_;
  int slot_;
  uint64_t size_;
};

}  // namespace

UpdateAgent::UpdateAgent(const AgentConfig& config, RecordStore& records, SlotStore& slots,
                         Clock& clock, Outbox& outbox, const update::SignatureVerifier& verifier,
                         update::Sha256& sha, ModelRunner& active, ModelRunner& candidate,
                         uint8_t* workspace, size_t workspace_bytes)
    : config_(config),
      records_(records),
      slots_(slots),
      clock_(clock),
      outbox_(outbox),
      verifier_(verifier),
      sha_(sha),
      active_(&active),
      candidate_(&candidate),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes) {
  if (config_.root_public_key) update::pin_root(config_.root_public_key, &root_);
}

void UpdateAgent::load_trusted_root() {
  RootRecord r;
  const long n = records_.load(kRootName, reinterpret_cast<uint8_t*>(&r), sizeof r);
  // A record the device wrote after walking from its pinned key; anything else is ignored.
  if (n == static_cast<long>(sizeof r) && r.magic == RootRecord{}.magic && r.crc == root_crc(r) &&
      r.root.version > root_.version) {
    root_ = r.root;
  }
}

bool UpdateAgent::take_root_chain(const uint8_t* data, size_t size) {
  bool advanced = false;
  update::RootStatus why = update::RootStatus::kOk;
  const auto status = update::apply_offer_root_chain(data, size, root_, verifier_, &advanced, &why);
  if (advanced) {
    RootRecord r;
    r.root = root_;
    r.crc = root_crc(r);
    if (!records_.save(kRootName, reinterpret_cast<const uint8_t*>(&r), sizeof r)) {
      report(update::StatusEvent::kError, TF_AGENT_REASON(RootNotStored));
    }
    // A revocation applies at once: an update in flight under a key the root no longer
    // lists is abandoned (not marked failed: the release may come again under a listed key).
    const bool busy =
        record_.state >= UpdateState::kOffered && record_.state <= UpdateState::kPatching;
    const auto* held = offer_size_ > 0 ? update::GetSignedOffer(offer_)->certificate() : nullptr;
    if (busy && held && held->public_key() &&
        !update::allows_targets_key(root_, held->public_key()->data())) {
      slots_.staging_clear();
      request_outstanding_ = false;
      // Its acceptance does not count for anti-rollback: the same release may come again,
      // re-signed. Every release accepted before it was lower, so the highest left is the
      // installed or failed one.
      if (record_.highest_release == record_.pending_release) {
        uint64_t highest = record_.installed_release;
        if (record_.failed_release > highest) highest = record_.failed_release;
        record_.highest_release = highest;
      }
      persist(UpdateState::kIdle, TF_AGENT_REASON(TargetsKeyRevoked));
    }
  }
  if (status == update::OfferStatus::kOk) return true;
  char code[5];
  report(update::StatusEvent::kOfferRefused,
         status == update::OfferStatus::kRootRejected ? status_detail(why, 'r', code)
                                                      : refusal_detail(status),
         status);
  return false;
}

bool UpdateAgent::persist(UpdateState next, const char* reason) {
  if (before_persist) before_persist(next);
  AgentRecord r = record_;
  r.state = next;
  copy_reason(r.reason, reason);
  r.crc = record_crc(r);
  if (!records_.save(kRecordName, reinterpret_cast<const uint8_t*>(&r), sizeof r)) return false;
  record_ = r;
  report(update::StatusEvent::kState, reason);
  return true;
}

void UpdateAgent::report(update::StatusEvent event, const char* detail, update::OfferStatus refusal,
                         uint64_t refused_release) {
  update::StatusMessage m;
  update::set_text(m.device_class, config_.device_class);
  m.event = event;
  m.state = record_.state;
  m.refusal = refusal;
  m.has_artifact = record_.active_slot != kNoSlot;
  m.release = record_.installed_release;
  if (m.has_artifact) std::memcpy(m.artifact_sha256, record_.installed_sha256, 32);
  // A refusal names the offer it refuses (docs/update-protocol.md: status), not the update
  // in progress: fleetd applies it to that release only.
  m.pending_release =
      event == update::StatusEvent::kOfferRefused ? refused_release : record_.pending_release;
  m.failed_release = record_.failed_release;
  update::set_text(m.detail, detail);
  uint8_t bytes[update::kMaxStatusBytes];
  size_t size = 0;
  if (update::encode_status(m, bytes, sizeof bytes, &size).ok()) {
    outbox_.publish_status(bytes, size);
  }
}

void UpdateAgent::announce() { report(update::StatusEvent::kHello); }

bool UpdateAgent::provision_empty() {
  record_ = AgentRecord{};
  return persist(UpdateState::kIdle, TF_AGENT_REASON(Provisioned));
}

const update::Manifest* UpdateAgent::manifest() const {
  if (offer_size_ == 0) return nullptr;
  return update::GetSignedOffer(offer_)->manifest_nested_root();
}

bool UpdateAgent::slot_matches(uint8_t slot, const uint8_t sha[32], uint64_t size) {
  if (slot == kNoSlot || slots_.slot_size(slot) != static_cast<long>(size)) return false;
  sha_.reset();
  uint8_t buf[1024];
  for (uint64_t off = 0; off < size; off += sizeof buf) {
    const size_t n = static_cast<size_t>(size - off < sizeof buf ? size - off : sizeof buf);
    if (!slots_.read_slot(slot, off, buf, n)) return false;
    sha_.update(buf, n);
  }
  uint8_t digest[32];
  sha_.finish(digest);
  return std::memcmp(digest, sha, 32) == 0;
}

bool UpdateAgent::install_factory(const uint8_t* artifact, size_t size) {
  if (!slots_.begin_slot(0) || !slots_.append_slot(0, artifact, size) || !slots_.commit_slot(0)) {
    return false;
  }
  record_ = AgentRecord{};  // (in place: see from_v1)
  record_.active_slot = 0;
  record_.installed_release = 0;
  record_.installed_size = size;
  sha_.reset();
  sha_.update(artifact, size);
  sha_.finish(record_.installed_sha256);
  return persist(UpdateState::kIdle, TF_AGENT_REASON(FactoryImage));
}

bool UpdateAgent::load_active() {
  const char* why = "";
  model_ready_ = false;
  if (record_.active_slot == kNoSlot) return false;
  if (!slot_matches(record_.active_slot, record_.installed_sha256, record_.installed_size)) {
    // Never run a model that is not the one recorded; fall back to the previous one.
    if (slot_matches(record_.previous_slot, record_.previous_sha256, record_.previous_size)) {
      record_.active_slot = record_.previous_slot;
      record_.installed_release = record_.previous_release;
      std::memcpy(record_.installed_sha256, record_.previous_sha256, 32);
      record_.installed_size = record_.previous_size;
      record_.previous_slot = kNoSlot;
      persist(UpdateState::kRolledBack, TF_AGENT_REASON(ActiveSlotMismatch));
    } else {
      report(update::StatusEvent::kError, TF_AGENT_REASON(NoSlotMatches));
      return false;
    }
  }
  char name[16];
  std::snprintf(name, sizeof name, "model-info-%u", record_.active_slot);
  info_ = ModelInfo{};
  if (records_.load(name, reinterpret_cast<uint8_t*>(&info_), sizeof info_) !=
          static_cast<long>(sizeof info_) ||
      info_.magic != ModelInfo{}.magic) {
    info_ = ModelInfo{};  // a factory image: no baseline
  }
  const uint8_t* mapped = slots_.map_slot(record_.active_slot);
  if (!mapped || !active_->load(mapped, record_.installed_size, &why)) {
    report(update::StatusEvent::kError, why);
    return false;
  }
  model_ready_ = true;
  return true;
}

bool UpdateAgent::boot() {
  AgentRecord r = record_;  // overwritten by the load (a copy, not a default: see from_v1)
  const long n = records_.load(kRecordName, reinterpret_cast<uint8_t*>(&r), sizeof r);
  const bool valid = n == static_cast<long>(sizeof r) && r.magic == AgentRecord{}.magic &&
                     r.version == AgentRecord{}.version && r.crc == record_crc(r);
  if (!valid && !from_v1(reinterpret_cast<const uint8_t*>(&r), n, &r)) {
    report(update::StatusEvent::kError, TF_AGENT_REASON(NoRecord));
    return false;
  }
  record_ = r;
  const bool hung = watchdog_ && watchdog_->caused_reset();
  load_trusted_root();
  const long offer = records_.load(kOfferName, offer_, sizeof offer_);
  offer_size_ = offer > 0 ? static_cast<size_t>(offer) : 0;
  // An offer on disk was checked when it arrived; check its structure again anyway.
  if (offer_size_ > 0) {
    flatbuffers::Verifier v(offer_, offer_size_, 16, 4096);
    if (!update::VerifySignedOfferBuffer(v)) offer_size_ = 0;
  }
  switch (record_.state) {
    case UpdateState::kOffered:
    case UpdateState::kDownloading:
    case UpdateState::kVerifying:
    case UpdateState::kPatching:
      if (offer_size_ == 0) {
        fail_update(TF_AGENT_REASON(OfferLostAcrossRestart));
        break;
      }
      if (record_.state == UpdateState::kOffered) persist(UpdateState::kDownloading);
      break;
    case UpdateState::kSelfTest:
      // Power was lost (or the new model crashed or hung) during the self-test.
      fail_update(hung ? TF_AGENT_REASON(SelfTestHung) : TF_AGENT_REASON(SelfTestCrashed));
      break;
    case UpdateState::kCommitted:
      // The device restarted before the new model proved itself: treat it as a crash.
      if (record_.probation_left > 0) {
        roll_back(hung ? TF_AGENT_REASON(ProbationHung) : TF_AGENT_REASON(ProbationRestarted));
        return model_ready_;
      }
      break;
    default:
      if (hung) report(update::StatusEvent::kError, TF_AGENT_REASON(ModelHung));
      break;
  }
  const bool ready = load_active();
  if (record_.state == UpdateState::kDownloading) request_next_chunk();
  if (record_.state == UpdateState::kVerifying || record_.state == UpdateState::kPatching) {
    install();
  }
  return ready;
}

void UpdateAgent::withdraw() {
  records_.save(kDeferredName, offer_, 0);  // an offer waiting for probation is withdrawn too
  const bool busy =
      record_.state >= UpdateState::kOffered && record_.state <= UpdateState::kPatching;
  if (!busy) return;  // nothing in flight: the cleared retained offer is not news
  slots_.staging_clear();
  record_.failed_release = record_.pending_release;  // a stale copy is not taken later
  request_outstanding_ = false;
  persist(UpdateState::kIdle, TF_AGENT_REASON(OfferWithdrawn));
}

void UpdateAgent::refuse(update::OfferStatus why, uint64_t release) {
  report(update::StatusEvent::kOfferRefused, refusal_detail(why), why, release);
}

void UpdateAgent::fail_update(const char* reason) {
  slots_.staging_clear();
  record_.failed_release = record_.pending_release;
  request_outstanding_ = false;
  // A first install that failed leaves the device running nothing: say so.
  persist(record_.active_slot == kNoSlot ? UpdateState::kNoModel : UpdateState::kRolledBack,
          reason);
}

void UpdateAgent::drop_model(uint64_t release, const char* reason) {
  slots_.staging_clear();
  request_outstanding_ = false;
  record_.active_slot = kNoSlot;
  record_.installed_release = release;
  std::memset(record_.installed_sha256, 0, 32);
  record_.installed_size = 0;
  record_.previous_slot = kNoSlot;
  record_.probation_left = 0;
  if (release > record_.highest_release) record_.highest_release = release;
  model_ready_ = false;
  shadow_ready_ = false;
  persist(UpdateState::kNoModel, reason);
}

bool UpdateAgent::defer(const uint8_t* data, size_t size) {
  if (!records_.save(kDeferredName, data, size)) return false;
  report(update::StatusEvent::kOfferDeferred, refusal_detail(update::OfferStatus::kOnProbation),
         update::OfferStatus::kOnProbation);
  return true;
}

void UpdateAgent::take_deferred() {
  const long n = records_.load(kDeferredName, offer_, sizeof offer_);
  if (n <= 0) return;
  records_.save(kDeferredName, offer_, 0);
  // offer_ holds it now; on_offer copies it onto itself (memmove) if it is taken.
  on_offer(offer_, static_cast<size_t>(n));
  if (record_.state < UpdateState::kOffered || record_.state > UpdateState::kPatching) {
    const long offer = records_.load(kOfferName, offer_, sizeof offer_);  // not taken
    offer_size_ = offer > 0 ? static_cast<size_t>(offer) : 0;
  }
}

void UpdateAgent::on_offer(const uint8_t* data, size_t size) {
  if (size == 0) {
    withdraw();
    return;
  }
  if (!take_root_chain(data, size)) return;
  const uint64_t floor = record_.highest_release > record_.installed_release
                             ? record_.highest_release
                             : record_.installed_release;
  update::DeviceIdentity id{config_.fleet,           config_.device_class, floor,
                            config_.root_public_key, config_.device_id,    &root_};
  const auto checked = update::check_offer(data, size, id, clock_.now_unix(), verifier_);
  if (checked.status != update::OfferStatus::kOk) {
    // A retained offer we already installed comes back on every reconnect: not news.
    if (checked.status != update::OfferStatus::kNotNewer) refuse(checked.status, checked.release);
    return;
  }
  const auto* m = checked.manifest;
  const bool busy =
      record_.state >= UpdateState::kOffered && record_.state <= UpdateState::kPatching;
  if (busy && m->release_seq() == record_.pending_release) return;  // the one in progress
  if (m->release_seq() == record_.failed_release) return;           // failed here before; reported
  if (m->kind() == update::OfferKind_NoModel) {
    // Urgent (a rollout's revert): taken even on probation or over a download in flight.
    if (busy) record_.failed_release = record_.pending_release;
    drop_model(m->release_seq(), TF_AGENT_REASON(NoModelOffered));
    return;
  }
  // On probation the other slot holds the fallback: an update would overwrite it. The
  // offer waits (stored) until probation ends, then is taken or refused as usual.
  if (record_.state == UpdateState::kCommitted && record_.probation_left > 0) {
    if (!defer(data, size)) refuse(update::OfferStatus::kNotStored, m->release_seq());
    return;
  }
  if (m->codec() != update::DeltaCodec_Full &&
      std::memcmp(m->base_sha256()->data(), record_.installed_sha256, 32) != 0) {
    refuse(update::OfferStatus::kBaseMismatch, m->release_seq());
    return;
  }
  if (!records_.save(kOfferName, data, size)) {
    refuse(update::OfferStatus::kNotStored, m->release_seq());
    return;
  }
  const uint64_t release = m->release_seq();
  std::memmove(offer_, data, size);  // take_deferred() passes offer_ itself
  offer_size_ = size;
  m = manifest();
  // The shadow is the previous model in the slot this update is about to rewrite.
  shadow_ready_ = false;
  slots_.staging_clear();
  record_.pending_release = release;
  if (release > record_.highest_release) record_.highest_release = release;
  std::memcpy(record_.pending_sha256, m->target_sha256()->data(), 32);
  record_.pending_size = m->target_size();
  if (!persist(UpdateState::kOffered)) return;
  if (!persist(UpdateState::kDownloading)) return;
  request_next_chunk();
}

void UpdateAgent::request_next_chunk() {
  const auto* m = manifest();
  if (!m) return;
  const long have = slots_.staging_size();
  const uint64_t offset = have > 0 ? static_cast<uint64_t>(have) : 0;
  if (offset >= m->payload_size()) {
    install();
    return;
  }
  const uint64_t left = m->payload_size() - offset;
  const uint32_t length = static_cast<uint32_t>(left < m->chunk_size() ? left : m->chunk_size());
  request_outstanding_ = outbox_.request_chunk(record_.pending_release, offset, length);
  requested_at_ms_ = clock_.monotonic_ms();
}

void UpdateAgent::on_reconnect() {
  announce();
  if (record_.state == UpdateState::kDownloading) request_next_chunk();
}

void UpdateAgent::poll() {
  if (record_.state == UpdateState::kDownloading &&
      clock_.monotonic_ms() - requested_at_ms_ > config_.chunk_timeout_ms) {
    ++chunk_retries_;
    if (++retries_in_row_ > retries_in_row_max_) retries_in_row_max_ = retries_in_row_;
    request_next_chunk();
  }
}

void UpdateAgent::on_chunk(uint64_t release, uint64_t offset, const uint8_t* data, size_t size) {
  if (record_.state != UpdateState::kDownloading || release != record_.pending_release) return;
  const auto* m = manifest();
  const long have = slots_.staging_size();
  if (!m || have < 0 || offset != static_cast<uint64_t>(have)) return;  // duplicate or stale
  if (offset + size > m->payload_size()) {
    fail_update(TF_AGENT_REASON(PayloadTooLong));
    return;
  }
  if (!slots_.staging_append(offset, data, size)) {
    fail_update(TF_AGENT_REASON(StagingNotWritten));
    return;
  }
  request_outstanding_ = false;
  retries_in_row_ = 0;
  request_next_chunk();
}

// Verify, patch and self-test, each called from here: no step's buffers (the 1 KB reads,
// the delta decoder) are on the stack under the next, and the self-test, which runs the
// new model (the deepest stack), starts from this frame.
void UpdateAgent::install() {
  if (record_.state != UpdateState::kPatching && !verify_payload()) return;
  if (patch()) self_test();
}

bool UpdateAgent::failed(const char* reason) {
  fail_update(reason);
  return false;
}

bool UpdateAgent::verify_payload() {
  const auto* m = manifest();
  if (!m) return failed(TF_AGENT_REASON(OfferLost));
  if (record_.state != UpdateState::kVerifying && !persist(UpdateState::kVerifying)) return false;
  sha_.reset();
  uint8_t buf[1024];
  const uint64_t size = m->payload_size();
  if (slots_.staging_size() != static_cast<long>(size))
    return failed(TF_AGENT_REASON(PayloadIncomplete));
  for (uint64_t off = 0; off < size; off += sizeof buf) {
    const size_t n = static_cast<size_t>(size - off < sizeof buf ? size - off : sizeof buf);
    if (!slots_.staging_read(off, buf, n)) return failed(TF_AGENT_REASON(StagingNotRead));
    sha_.update(buf, n);
  }
  uint8_t digest[32];
  sha_.finish(digest);
  if (std::memcmp(digest, m->payload_sha256()->data(), 32) != 0) {
    return failed(TF_AGENT_REASON(PayloadMismatch));
  }
  return true;
}

bool UpdateAgent::patch() {
  const auto* m = manifest();
  if (!m) return failed(TF_AGENT_REASON(OfferLost));
  if (record_.state != UpdateState::kPatching && !persist(UpdateState::kPatching)) return false;
  const int target = record_.active_slot == 0 ? 1 : 0;
  if (!slots_.begin_slot(target)) return failed(TF_AGENT_REASON(SlotNotOpened));
  SlotSink sink(slots_, target);
  SlotBase base(slots_, record_.active_slot, record_.installed_size);
  update::DeltaDecoder decoder(m->codec(), m->target_size(), config_.window_log, workspace_,
                               workspace_bytes_, record_.active_slot == kNoSlot ? nullptr : &base,
                               &sink);
  decoder.set_hasher(&sha_);  // free while patching: the range codec recomputes content hashes
  auto status = decoder.start();
  uint8_t buf[1024];
  const uint64_t size = m->payload_size();
  for (uint64_t off = 0; status == update::DeltaStatus::kOk && off < size; off += sizeof buf) {
    const size_t n = static_cast<size_t>(size - off < sizeof buf ? size - off : sizeof buf);
    if (!slots_.staging_read(off, buf, n)) return failed(TF_AGENT_REASON(StagingNotRead));
    status = decoder.feed(buf, n);
  }
  if (status == update::DeltaStatus::kOk) status = decoder.finish();
  char code[5];
  if (status != update::DeltaStatus::kOk) return failed(status_detail(status, 'd', code));
  if (!slots_.commit_slot(target)) return failed(TF_AGENT_REASON(SlotNotCommitted));
  if (!save_model_info(target, *m)) return failed(TF_AGENT_REASON(BaselineNotStored));
  if (!slot_matches(static_cast<uint8_t>(target), m->target_sha256()->data(), m->target_size())) {
    return failed(TF_AGENT_REASON(PatchedMismatch));
  }
  return true;
}

bool UpdateAgent::save_model_info(int slot, const update::Manifest& m) {
  ModelInfo info;
  if (const auto* b = m.drift_baseline()) {
    if (b->class_histogram() && b->class_histogram()->size() <= kMaxClasses) {
      info.classes = static_cast<uint8_t>(b->class_histogram()->size());
      for (uint32_t i = 0; i < info.classes; ++i)
        info.class_histogram[i] = b->class_histogram()->Get(i);
    }
    if (b->channel_mean() && b->channel_std() &&
        b->channel_mean()->size() == b->channel_std()->size() &&
        b->channel_mean()->size() <= kMaxChannels) {
      info.channels = static_cast<uint8_t>(b->channel_mean()->size());
      for (uint32_t i = 0; i < info.channels; ++i) {
        info.channel_mean[i] = b->channel_mean()->Get(i);
        info.channel_std[i] = b->channel_std()->Get(i);
      }
    }
  }
  info.modelled_cycles = m.modelled_cycles();
  char name[16];
  std::snprintf(name, sizeof name, "model-info-%d", slot);
  return records_.save(name, reinterpret_cast<const uint8_t*>(&info), sizeof info);
}

void UpdateAgent::inference_starting() {
  if (watchdog_) watchdog_->arm(config_.watchdog_timeout_ms);
}

void UpdateAgent::inference_done(bool ok, uint64_t elapsed_ms) {
  if (watchdog_) watchdog_->disarm();
  if (record_.state != UpdateState::kCommitted || record_.probation_left == 0) return;
  if (!ok) {
    roll_back(TF_AGENT_REASON(ModelFailed));
    return;
  }
  if (elapsed_ms > config_.inference_timeout_ms) {
    roll_back(TF_AGENT_REASON(InferenceTooSlow));
    return;
  }
  if (--record_.probation_left == 0 &&
      persist(UpdateState::kCommitted, TF_AGENT_REASON(ProbationPassed))) {
    take_deferred();
  }
}

bool UpdateAgent::roll_back(const char* reason) {
  if (record_.previous_slot == kNoSlot ||
      !slot_matches(record_.previous_slot, record_.previous_sha256, record_.previous_size)) {
    // A first install (or a fallback that no longer verifies): run nothing rather than
    // a model that failed, and never boot-loop on it.
    record_.failed_release = record_.installed_release;
    drop_model(0, reason);
    take_deferred();
    return false;
  }
  AgentRecord next = record_;
  next.failed_release = record_.installed_release;
  next.active_slot = record_.previous_slot;
  next.installed_release = record_.previous_release;
  std::memcpy(next.installed_sha256, record_.previous_sha256, 32);
  next.installed_size = record_.previous_size;
  next.previous_slot = kNoSlot;
  next.probation_left = 0;
  const AgentRecord before = record_;
  record_ = next;
  if (!persist(UpdateState::kRolledBack, reason)) {
    record_ = before;
    return false;
  }
  shadow_ready_ = false;
  const bool ready = load_active();
  take_deferred();  // a delta against the rejected model is refused (base), fleetd re-offers
  return ready;
}

void UpdateAgent::self_test() {
  const auto* m = manifest();
  const int target = record_.active_slot == 0 ? 1 : 0;
  if (!persist(UpdateState::kSelfTest)) return;
  const char* why = "";
  const uint8_t* mapped = slots_.map_slot(target);
  if (!mapped || !candidate_->load(mapped, m->target_size(), &why)) {
    return fail_update(why && *why ? why : TF_AGENT_REASON(ModelNotLoaded));
  }
  const auto* tests = m->self_tests();
  for (uint32_t i = 0; tests && i < tests->size(); ++i) {
    const auto* t = tests->Get(i);
    if (!t->input() || !t->expected_output() || t->input()->size() != candidate_->input_bytes() ||
        t->expected_output()->size() != candidate_->output_bytes() || !workspace_ ||
        candidate_->output_bytes() > workspace_bytes_) {
      return fail_update(TF_AGENT_REASON(SelfTestMisfit));
    }
    // The output goes to the delta workspace, idle once the patch is done (not the stack).
    auto* out = reinterpret_cast<int8_t*>(workspace_);
    const uint64_t t0 = clock_.monotonic_ms();
    if (watchdog_) watchdog_->arm(config_.watchdog_timeout_ms);  // a hang resets: boot fails it
    const bool ran = candidate_->run(t->input()->data(), out);
    if (watchdog_) watchdog_->disarm();
    if (!ran) return fail_update(TF_AGENT_REASON(ModelFailed));
    if (clock_.monotonic_ms() - t0 > config_.self_test_timeout_ms) {
      return fail_update(TF_AGENT_REASON(SelfTestTooSlow));
    }
    for (size_t k = 0; k < candidate_->output_bytes(); ++k) {
      const int diff = out[k] - t->expected_output()->Get(static_cast<uint32_t>(k));
      if (diff > m->self_test_tolerance() || -diff > m->self_test_tolerance()) {
        return fail_update(TF_AGENT_REASON(SelfTestDiffers));
      }
    }
  }
  // Switch: the record names the new slot as active and the old as previous.
  AgentRecord next = record_;
  next.previous_slot = record_.active_slot;
  next.previous_release = record_.installed_release;
  std::memcpy(next.previous_sha256, record_.installed_sha256, 32);
  next.previous_size = record_.installed_size;
  next.active_slot = static_cast<uint8_t>(target);
  next.installed_release = record_.pending_release;
  std::memcpy(next.installed_sha256, record_.pending_sha256, 32);
  next.installed_size = record_.pending_size;
  next.probation_left = config_.probation_inferences;
  const AgentRecord before = record_;
  record_ = next;
  if (!persist(UpdateState::kCommitted)) {
    record_ = before;
    return fail_update(TF_AGENT_REASON(SwitchNotStored));
  }
  slots_.staging_clear();
  ModelRunner* old = active_;
  active_ = candidate_;
  candidate_ = old;
  shadow_ready_ = model_ready_;  // the old model, still loaded, becomes the shadow
  model_ready_ = true;
  char name[16];
  std::snprintf(name, sizeof name, "model-info-%d", target);
  if (records_.load(name, reinterpret_cast<uint8_t*>(&info_), sizeof info_) !=
      static_cast<long>(sizeof info_)) {
    info_ = ModelInfo{};
  }
}

}  // namespace tinyfleet::device_agent
