#pragma once

// How the rollout engine's gates decide with the gate statistics (settings gates.*,
// docs/rollouts.md "Gate statistics"): the confidence, the looks and the wait after the
// bake, the devices a decision needs, what happens when it stays undecided, and how
// devices are pooled.
#include <cstdint>

namespace tinyfleet::server {

struct GatePolicy {
  double alpha = 0.01;                   // false-decision probability per gate, all looks
  int max_looks = 12;                    // looks after the bake, spread over max_wait
  double max_wait_seconds = 4 * 3600.0;  // undecided this long after the bake: timeout
  int min_devices = 5;                   // fewer reporting devices in a group: wait
  bool fail_on_timeout = true;           // the timeout action: fail (else pass)
  uint64_t device_cap = 0;               // trials one device counts at most; 0: median
  double winsorize = 0.05;               // per-device rates clipped to these quantiles
};

}  // namespace tinyfleet::server
