#pragma once

// Which devices a rollout takes and in which phase, as pure functions: the selector
// match, a stable rank (who is in the canary), and the phase of each rank.
#include <set>
#include <string>
#include <vector>

namespace tinyfleet::server::rollouts {

struct Selector {
  std::set<std::string> classes;  // any of these (empty: every class)
  std::set<std::string> tags;     // all of these
  std::set<std::string> ids;      // only these (empty: no restriction)
};

struct Candidate {
  std::string id, device_class;
  std::vector<std::string> tags;
};

bool matches(const Selector& s, const Candidate& d);

// A stable pseudo-random key for the device in this rollout (BLAKE2b of
// "<rollout>/<device>"): the same whoever computes it, different per rollout.
std::string rank_key(const std::string& rollout, const std::string& device);

struct Placement {
  std::string id, device_class;
  int rank = 0;   // 0 .. n-1 in rank_key order
  int phase = 0;  // the first phase whose cumulative share covers the rank
};

// `percents`: cumulative, increasing, ending at 100. The device of rank r is in the
// first phase p with r < ceil(percents[p] * n / 100).
std::vector<Placement> place(const std::string& rollout, const std::vector<Candidate>& selected,
                             const std::vector<int>& percents);

}  // namespace tinyfleet::server::rollouts
