// The rollout module's pure rules, without a database: the transition table, the
// selection and its stable rank, gate decisions and status report parsing.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <set>

#include "rollouts/api_input.h"
#include "rollouts/gates.h"
#include "rollouts/phase_gates.h"
#include "rollouts/selection.h"
#include "rollouts/states.h"
#include "rollouts/status_report.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/status_message.h"

namespace tinyfleet::server::rollouts {
namespace {

using E = RolloutEvent;
using R = RolloutState;

const std::vector<R> kAll = {R::kRunning,    R::kPaused,   R::kCompleted, R::kRollingBack,
                             R::kRolledBack, R::kAborting, R::kAborted};
const std::vector<E> kEvents = {E::kPhasePassed,     E::kLastPhasePassed,
                                E::kGateFailedPause, E::kGateFailedRollback,
                                E::kRevertsDone,     E::kPause,
                                E::kResume,          E::kPromote,
                                E::kPromoteLast,     E::kAbort};

TEST(RolloutStates, EveryAllowedTransition) {
  const std::vector<Transition> expected = {
      {R::kRunning, E::kPhasePassed, R::kRunning},
      {R::kRunning, E::kLastPhasePassed, R::kCompleted},
      {R::kRunning, E::kGateFailedPause, R::kPaused},
      {R::kRunning, E::kGateFailedRollback, R::kRollingBack},
      {R::kRollingBack, E::kRevertsDone, R::kRolledBack},
      {R::kAborting, E::kRevertsDone, R::kAborted},
      {R::kRunning, E::kPause, R::kPaused},
      {R::kPaused, E::kResume, R::kRunning},
      {R::kRunning, E::kPromote, R::kRunning},
      {R::kRunning, E::kPromoteLast, R::kCompleted},
      {R::kRunning, E::kAbort, R::kAborting},
      {R::kPaused, E::kAbort, R::kAborting},
      {R::kRollingBack, E::kAbort, R::kAborting},
  };
  for (const auto& t : expected) {
    EXPECT_EQ(next_state(t.from, t.event), t.to)
        << to_string(t.from) << " --" << to_string(t.event) << "-->";
  }
  // And nothing else: every other (state, event) pair is refused.
  size_t allowed = 0;
  for (R from : kAll) {
    for (E e : kEvents) allowed += next_state(from, e).has_value();
  }
  EXPECT_EQ(allowed, expected.size());
}

TEST(RolloutStates, ForbiddenTransitions) {
  EXPECT_FALSE(next_state(R::kPaused, E::kPromote));      // promote only while running
  EXPECT_FALSE(next_state(R::kPaused, E::kPromoteLast));  //
  EXPECT_FALSE(next_state(R::kPaused, E::kPause));        // pause only from running
  EXPECT_FALSE(next_state(R::kRunning, E::kResume));      // resume only from paused
  EXPECT_FALSE(next_state(R::kRollingBack, E::kResume));
  EXPECT_FALSE(next_state(R::kAborting, E::kAbort));  // already aborting
  EXPECT_FALSE(next_state(R::kAborting, E::kResume));
  EXPECT_FALSE(next_state(R::kPaused, E::kPhasePassed));    // the engine does not pass a
  EXPECT_FALSE(next_state(R::kAborting, E::kPhasePassed));  // phase of a stopped rollout
  EXPECT_FALSE(next_state(R::kRunning, E::kRevertsDone));
  for (R final_state : {R::kCompleted, R::kRolledBack, R::kAborted}) {
    EXPECT_TRUE(is_final(final_state));
    for (E e : kEvents) EXPECT_FALSE(next_state(final_state, e)) << to_string(final_state);
  }
}

TEST(RolloutStates, OperatorEventsAndMessages) {
  for (E e : {E::kPause, E::kResume, E::kPromote, E::kPromoteLast, E::kAbort}) {
    EXPECT_TRUE(by_operator(e));
  }
  for (E e : {E::kPhasePassed, E::kLastPhasePassed, E::kGateFailedPause, E::kGateFailedRollback,
              E::kRevertsDone}) {
    EXPECT_FALSE(by_operator(e));
  }
  EXPECT_EQ(allowed_from(E::kPromote), "running");
  EXPECT_EQ(allowed_from(E::kResume), "paused");
  EXPECT_EQ(allowed_from(E::kAbort), "running, paused or rolling_back");
}

TEST(RolloutStates, StringsRoundTripAndMatchTheSchema) {
  std::set<std::string> names;
  for (R s : kAll) {
    names.insert(to_string(s));
    EXPECT_EQ(rollout_state_from(to_string(s)), s);
  }
  EXPECT_EQ(names, (std::set<std::string>{"running", "paused", "completed", "rolling_back",
                                          "rolled_back", "aborting", "aborted"}));
  for (PhaseState s : {PhaseState::kPending, PhaseState::kActive, PhaseState::kBaking,
                       PhaseState::kPassed, PhaseState::kFailed}) {
    EXPECT_EQ(phase_state_from(to_string(s)), s);
  }
  for (DeviceState s : {DeviceState::kPending, DeviceState::kOffered, DeviceState::kUpdated,
                        DeviceState::kFailed, DeviceState::kReverting, DeviceState::kRolledBack}) {
    EXPECT_EQ(device_state_from(to_string(s)), s);
  }
  EXPECT_FALSE(rollout_state_from("created"));
  EXPECT_FALSE(device_state_from("admitted"));
  EXPECT_EQ(sql_list(is_driven), "('running', 'rolling_back', 'aborting')");
  EXPECT_EQ(sql_list(is_active), "('running', 'paused', 'rolling_back', 'aborting')");
}

std::vector<Candidate> fleet(int n) {
  std::vector<Candidate> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        {"dev-" + std::to_string(1000 + i), i % 3 == 0 ? "esp32s3-512k" : "cortex-m4",
         i % 2 == 0 ? std::vector<std::string>{"eu", "canary"} : std::vector<std::string>{"us"}});
  }
  return out;
}

TEST(RolloutSelection, SelectorMatchesClassesTagsAndIds) {
  const Candidate d{"dev-1", "cortex-m4", {"eu", "canary"}};
  EXPECT_TRUE(matches({}, d));
  EXPECT_TRUE(matches({{"cortex-m4", "x"}, {}, {}}, d));
  EXPECT_FALSE(matches({{"esp32s3-512k"}, {}, {}}, d));
  EXPECT_TRUE(matches({{}, {"eu", "canary"}, {}}, d));
  EXPECT_FALSE(matches({{}, {"eu", "lab"}, {}}, d));  // every tag is needed
  EXPECT_TRUE(matches({{}, {}, {"dev-1", "dev-2"}}, d));
  EXPECT_FALSE(matches({{}, {}, {"dev-2"}}, d));
  EXPECT_FALSE(matches({{"cortex-m4"}, {"us"}, {}}, d));
}

TEST(RolloutSelection, RankIsStableAndDependsOnTheRollout) {
  ASSERT_GE(sodium_init(), 0);
  auto devices = fleet(200);
  const auto a = place("v2", devices, {1, 10, 50, 100});
  std::reverse(devices.begin(), devices.end());  // input order does not matter
  const auto b = place("v2", devices, {1, 10, 50, 100});
  ASSERT_EQ(a.size(), 200u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].rank, static_cast<int>(i));
    EXPECT_EQ(a[i].phase, b[i].phase);
  }
  EXPECT_EQ(rank_key("v2", "dev-1000"), rank_key("v2", "dev-1000"));
  EXPECT_NE(rank_key("v2", "dev-1000"), rank_key("v3", "dev-1000"));
  // Another rollout draws another canary.
  const auto c = place("v3", devices, {1, 10, 50, 100});
  std::set<std::string> canary_a, canary_c;
  for (size_t i = 0; i < 20; ++i) canary_a.insert(a[i].id), canary_c.insert(c[i].id);
  EXPECT_NE(canary_a, canary_c);
}

TEST(RolloutSelection, PhasesTakeTheirCumulativeShare) {
  ASSERT_GE(sodium_init(), 0);
  const auto placed = place("r", fleet(200), {1, 10, 50, 100});
  std::vector<int> per_phase(4, 0);
  for (const auto& p : placed) ++per_phase[p.phase];
  EXPECT_EQ(per_phase, (std::vector<int>{2, 18, 80, 100}));
  for (size_t i = 1; i < placed.size(); ++i) EXPECT_LE(placed[i - 1].phase, placed[i].phase);
  // A share that rounds up: 3 devices at 10% still give the canary one device.
  const auto small = place("r", fleet(3), {10, 100});
  EXPECT_EQ(small[0].phase, 0);
  EXPECT_EQ(small[1].phase, 1);
  EXPECT_EQ(small[2].phase, 1);
  EXPECT_TRUE(place("r", {}, {100}).empty());
}

std::vector<GateClause> gates(const std::string& text) {
  auto g = parse_gates(text);
  EXPECT_TRUE(g) << g.error().message;
  return g ? *g : std::vector<GateClause>{};
}

// `n` devices each with `correct` of `total` probes right, 20 inferences spread over
// classes 0..3 (class 0 twice as often when `skewed`).
std::vector<DeviceStats> probed(int n, uint64_t correct, uint64_t total, bool skewed = false) {
  std::vector<DeviceStats> v;
  for (int i = 0; i < n; ++i) {
    DeviceStats d;
    d.device_id = "d" + std::to_string(i);
    d.probe_correct = correct + (i % 3);  // devices differ a little
    d.probe_total = total;
    d.inferences = 400;
    d.class_counts = skewed ? std::vector<uint64_t>{160, 80, 80, 80}
                            : std::vector<uint64_t>{100 + static_cast<uint64_t>(i % 2), 100, 100,
                                                    100 - static_cast<uint64_t>(i % 2)};
    v.push_back(d);
  }
  return v;
}

TEST(RolloutGates, PassFailAndWaitWithTheStatistics) {
  const auto clauses = gates("accuracy_drop <= 0.1 && psi < 0.5 && min_reporting >= 0.5");
  PhaseCounts p{0, 0, 20, 0, 20};
  CohortStats c;
  c.canary = probed(20, 900, 1000);
  c.control = probed(20, 930, 1000);
  GatePolicy policy;
  auto d = decide_phase(clauses, p, c, 0, 1, 0, policy);
  EXPECT_EQ(d.verdict, Verdict::kPass) << d.reason;
  ASSERT_EQ(d.report.size(), 3u);
  const auto& drop = d.report[0];
  EXPECT_NEAR(drop["value"].get<double>(), 0.03, 1e-9);
  EXPECT_EQ(drop["verdict"], "pass");
  EXPECT_TRUE(drop["passed"].get<bool>());
  EXPECT_LT(drop["lo"].get<double>(), 0.03);
  EXPECT_GT(drop["hi"].get<double>(), 0.03);
  EXPECT_EQ(drop["canary"]["devices"], 20);
  EXPECT_EQ(drop["reference"]["group"], "control");
  EXPECT_NEAR(drop["reference"]["value"].get<double>(), 0.931, 1e-3);
  EXPECT_EQ(d.report[2].count("reference"), 0u);  // min_reporting: the canary alone
  EXPECT_EQ(d.report[2]["verdict"], "pass");

  c.canary = probed(20, 700, 1000);  // a 23-point drop
  d = decide_phase(clauses, p, c, 2, 1, 0, policy);
  EXPECT_EQ(d.verdict, Verdict::kFail);
  EXPECT_EQ(d.reason.rfind("gate 'accuracy_drop <= 0.1' failed in phase 2: 0.23", 0), 0u)
      << d.reason;
  EXPECT_EQ(d.report[0]["verdict"], "fail");
  EXPECT_FALSE(d.report[0]["timed_out"].get<bool>());

  c.canary = probed(3, 900, 1000);  // too few devices: wait, do not fail
  d = decide_phase(clauses, {0, 0, 3, 0, 3}, c, 0, 1, 0, policy);
  EXPECT_EQ(d.verdict, Verdict::kWait);
  EXPECT_EQ(d.reason, "phase 0 waits for telemetry: accuracy_drop, psi");
  EXPECT_TRUE(d.report[0]["known"].get<bool>());
  EXPECT_TRUE(d.report[0]["lo"].is_null());
  // ... until the last look, then the timeout action (fail by default, or pass).
  d = decide_phase(clauses, {0, 0, 3, 0, 3}, c, 0, policy.max_looks, policy.max_wait_seconds,
                   policy);
  EXPECT_EQ(d.verdict, Verdict::kFail);
  EXPECT_TRUE(d.timed_out);
  EXPECT_TRUE(d.report[0]["timed_out"].get<bool>());
  policy.fail_on_timeout = false;
  EXPECT_EQ(decide_phase(clauses, {0, 0, 3, 0, 3}, c, 0, 12, 4 * 3600, policy).verdict,
            Verdict::kPass);
  // While baking (look 0) nothing times out.
  EXPECT_EQ(decide_phase(clauses, {0, 0, 3, 0, 3}, c, 0, 0, 1e9, policy).verdict, Verdict::kWait);
}

TEST(RolloutGates, ReferenceIsControlThenBaselineThenTheManifest) {
  const auto clauses = gates("accuracy_drop <= 0.1");
  PhaseCounts p{0, 0, 20, 0, 20};
  CohortStats c;
  c.canary = probed(20, 900, 1000);
  c.baseline = probed(20, 920, 1000);
  auto d = decide_phase(clauses, p, c, 0, 1, 0, {});
  EXPECT_EQ(d.report[0]["reference"]["group"], "baseline");
  c.baseline.clear();
  c.baseline_accuracy = 0.95;
  d = decide_phase(clauses, p, c, 0, 1, 0, {});
  EXPECT_EQ(d.report[0]["reference"]["group"], "manifest");
  EXPECT_EQ(d.report[0]["reference"]["value"], 0.95);
  EXPECT_NEAR(d.report[0]["value"].get<double>(), 0.049, 1e-3);
}

TEST(RolloutGates, QuorumWaitsThenFails) {
  const auto clauses = gates("min_reporting >= 0.75");
  PhaseCounts p{0, 0, 4, 0, 4};
  CohortStats c;
  c.canary = probed(2, 900, 1000);
  EXPECT_EQ(decide_phase(clauses, p, c, 1, 1, 60, {}).verdict, Verdict::kWait);
  const auto d = decide_phase(clauses, p, c, 1, 2, kQuorumGraceSeconds, {});
  EXPECT_EQ(d.verdict, Verdict::kFail);
  EXPECT_EQ(d.reason, "gate 'min_reporting >= 0.75' failed in phase 1: 0.5 (2 of 4 devices)");
}

TEST(RolloutGates, LooksAreSpreadOverTheWait) {
  GatePolicy g;
  g.max_looks = 5;
  g.max_wait_seconds = 400;
  EXPECT_EQ(look_due(0, g), 1);
  EXPECT_EQ(look_due(99, g), 1);
  EXPECT_EQ(look_due(100, g), 2);
  EXPECT_EQ(look_due(399, g), 4);
  EXPECT_EQ(look_due(400, g), 5);
  EXPECT_EQ(look_due(1e9, g), 5);
  g.max_looks = 1;
  EXPECT_EQ(look_due(0, g), 1);
}

TEST(RolloutGates, FailureRateDecidesEarlyAndSettling) {
  const auto clauses = gates("failure_rate <= 0.25 && min_reporting >= 0.5");
  EXPECT_FALSE(early_failure(clauses, {0, 4, 0, 0, 4}, 0));  // nobody finished
  EXPECT_FALSE(early_failure(clauses, {0, 0, 3, 1, 4}, 0));  // 0.25 passes
  const auto why = early_failure(clauses, {0, 0, 1, 2, 4}, 3);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why,
            "gate 'failure_rate <= 0.25' failed in phase 3: 0.667 (2 of 3 devices failed to "
            "update)");
  EXPECT_FALSE(settled(clauses, {1, 0, 3, 0, 4}));  // one not admitted yet
  EXPECT_FALSE(settled(clauses, {0, 3, 1, 0, 4}));  // 1 of 4 finished, 2 needed
  EXPECT_TRUE(settled(clauses, {0, 2, 2, 0, 4}));
  EXPECT_FALSE(settled(gates(""), {0, 1, 3, 0, 4}));  // without a quorum gate: all
  EXPECT_TRUE(settled(gates(""), {0, 0, 3, 1, 4}));
  EXPECT_FALSE(settled(gates(""), {0, 0, 0, 0, 0}));
}

TEST(RolloutGates, PromoteNeedsEveryGateToPassWithConfidence) {
  const auto clauses = gates("failure_rate <= 0.05 && accuracy >= 0.8");
  PhaseCounts p{0, 0, 20, 0, 20};
  CohortStats c;
  EXPECT_EQ(promote_refusal(clauses, p, c, {}), "gate 'accuracy >= 0.8' has no data yet");
  c.canary = probed(20, 500, 1000);
  const auto why = promote_refusal(clauses, p, c, {});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->rfind("gate 'accuracy >= 0.8' does not pass: 0.50", 0), 0u) << *why;
  c.canary = probed(20, 850, 1000);
  EXPECT_FALSE(promote_refusal(clauses, p, c, {}));
  EXPECT_EQ(promote_refusal(clauses, {0, 0, 18, 2, 20}, c, {}),
            "gate 'failure_rate <= 0.05' does not pass: 0.1 (2 of 20 devices)");
  EXPECT_FALSE(promote_refusal({}, p, {}, {}));  // no gates: nothing to wait for
}

std::string encoded(const update::StatusMessage& m) {
  uint8_t buf[update::kMaxStatusBytes];
  size_t n = 0;
  EXPECT_TRUE(update::encode_status(m, buf, sizeof buf, &n).ok());
  return std::string(reinterpret_cast<const char*>(buf), n);
}

// A firmware device's codes (update/agent_reasons.h) are stored named, as a Linux agent's
// text is; an older device's text is stored as it came (ParsedWithBounds).
TEST(StatusReports, FirmwareCodesStoredNamed) {
  update::StatusMessage m;
  m.event = update::StatusEvent::kState;
  m.state = update::UpdateState::kRolledBack;
  update::set_text(m.detail, "#21");
  auto r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->detail, "payload sha256 mismatch");
  update::set_text(m.detail, "#d04");
  r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->detail, update::to_string(update::DeltaStatus::kCorrupt));
  m.event = update::StatusEvent::kOfferRefused;
  m.refusal = update::OfferStatus::kWrongClass;
  update::set_text(m.detail, "");
  r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->detail, update::to_string(update::OfferStatus::kWrongClass));
  EXPECT_EQ(r->refusal, update::OfferStatus::kWrongClass);
}

TEST(StatusReports, ParsedWithBounds) {
  update::StatusMessage m;
  m.event = update::StatusEvent::kState;
  m.state = update::UpdateState::kRolledBack;
  m.release = 7;
  m.failed_release = 6;
  m.has_artifact = true;
  m.artifact_sha256[0] = 0xab;
  update::set_text(m.detail, "self-test failed");
  auto r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->event, update::StatusEvent::kState);
  EXPECT_EQ(r->state, update::UpdateState::kRolledBack);
  EXPECT_FALSE(r->updating());
  EXPECT_EQ(r->release, 7);
  EXPECT_EQ(r->failed_release, 6);
  EXPECT_EQ(r->artifact.substr(0, 4), "ab00");
  EXPECT_EQ(r->artifact.size(), 64u);
  EXPECT_EQ(r->detail, "self-test failed");
  EXPECT_EQ(r->refusal, update::OfferStatus::kOk);
  EXPECT_EQ(r->refused_release, 0);

  // A refusal's pending release is the release it refuses.
  m.event = update::StatusEvent::kOfferRefused;
  m.refusal = update::OfferStatus::kBaseMismatch;
  m.pending_release = 9;
  r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->event, update::StatusEvent::kOfferRefused);
  EXPECT_EQ(r->refusal, update::OfferStatus::kBaseMismatch);
  EXPECT_EQ(r->refused_release, 9);
  m.pending_release = uint64_t(INT64_MAX) + 1;
  EXPECT_FALSE(parse_status_report(encoded(m)));
  m.pending_release = 0;

  m.event = update::StatusEvent::kState;
  m.state = update::UpdateState::kDownloading;
  r = parse_status_report(encoded(m));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->updating());

  m.release = uint64_t(INT64_MAX) + 1;
  EXPECT_FALSE(parse_status_report(encoded(m)));

  const std::string good = encoded(m);
  const std::string bad[] = {
      "",
      "not a status message",
      R"({"release":"x"})",
      good.substr(0, good.size() - 1),
      "XY" + good.substr(2),
      good + "trailing",
      std::string(1 << 20, 'a'),
  };
  for (const auto& payload : bad) {
    auto e = parse_status_report(payload);
    ASSERT_FALSE(e) << payload.substr(0, 60);
    EXPECT_NE(e.error().message.find("status report: "), std::string::npos) << e.error().message;
  }
}

// ListRollouts' page token and size, SkipGates' reason (operator input, checked before
// any database work).
TEST(RolloutApiInput, PageTokensSizesAndSkipReasonsAreBounded) {
  EXPECT_EQ(parse_page_token(""), 0);
  EXPECT_EQ(parse_page_token("42"), 42);
  EXPECT_EQ(parse_page_token(page_token(123456789012345678)), 123456789012345678);
  for (const char* bad : {"-1", "4 2", "1a", "0x10", "1234567890123456789"}) {
    EXPECT_FALSE(parse_page_token(bad)) << bad;
  }
  EXPECT_EQ(page_size(0), kDefaultPageSize);
  EXPECT_EQ(page_size(7), 7);
  EXPECT_EQ(page_size(4000000000u), kMaxPageSize);
  EXPECT_FALSE(skip_gates_reason_error("hotfix for ticket 42"));
  EXPECT_FALSE(skip_gates_reason_error(std::string(500, 'x')));
  EXPECT_EQ(skip_gates_reason_error(""), "skipping the gates needs a reason");
  EXPECT_EQ(skip_gates_reason_error(std::string(501, 'x')),
            "the reason has 501 bytes; 500 at most");
  EXPECT_EQ(skip_gates_reason_error("a\tb"), "the reason holds a control character");
}

}  // namespace
}  // namespace tinyfleet::server::rollouts
