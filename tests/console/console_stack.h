#pragma once

// A fleetd with its console on a loopback port, over a scratch database holding what
// the console shows: 6 devices of one class running digits v1 (whose artifact has a
// compile report and a memory plan), a rollout whose canary failed its accuracy gate
// and was rolled back ("canary-bad"), a running rollout ("steady"), and a paused one
// ("canary-control", 2 devices) whose gate history and current gate report have the
// statistical gates' shape: per clause the canary against a concurrent control group,
// the compared value's interval [lo, hi] and a pass/fail/wait verdict.
#include <map>
#include <string>

#include "fleetd_fixture.h"
#include "rollout_seed.h"

namespace tinyfleet::testing {

class ConsoleStack : public FleetdUpdatesTest {
 protected:
  void SetUp() override;
  // Two canary devices: the gates decide on the point value (alpha 0.5 over one look
  // puts the interval at the estimate) once two devices report.
  std::map<std::string, std::string> fleetd_settings() override {
    auto s = update_settings();
    s["gates.min_devices"] = "2";
    s["gates.alpha"] = "0.5";
    s["gates.max_looks"] = "1";
    return s;
  }

  // Waits (30 s at most) until the rollout is in `state`; false otherwise.
  bool wait_for_canary_updated(const std::string& rollout, int devices);
  bool wait_for_state(const std::string& rollout, const std::string& state);
  std::string rollout_state(const std::string& rollout);

  // The canary-control rollout's synthetic history: kControlLooks evaluations a minute
  // apart; accuracy_drop (canary against control) waits, then fails at the last look with
  // the canary at 0.81 against the control's 0.95; failure_rate (no reference) passes.
  static constexpr int kControlLooks = 6;
  void insert_canary_control_history();

  SeededFleet fleet_;
  std::string viewer_, operator_;
};

}  // namespace tinyfleet::testing
