#include "rollouts/selection.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>

namespace tinyfleet::server::rollouts {

bool matches(const Selector& s, const Candidate& d) {
  if (!s.classes.empty() && !s.classes.count(d.device_class)) return false;
  if (!s.ids.empty() && !s.ids.count(d.id)) return false;
  size_t have = 0;
  for (const auto& t : s.tags) {
    have += std::find(d.tags.begin(), d.tags.end(), t) != d.tags.end();
  }
  return have == s.tags.size();
}

std::string rank_key(const std::string& rollout, const std::string& device) {
  unsigned char h[16];
  const std::string in = rollout + "/" + device;
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

std::vector<Placement> place(const std::string& rollout, const std::vector<Candidate>& selected,
                             const std::vector<int>& percents) {
  std::vector<std::pair<std::string, const Candidate*>> keyed;
  keyed.reserve(selected.size());
  for (const auto& d : selected) keyed.emplace_back(rank_key(rollout, d.id), &d);
  // Ties (never in practice: 128-bit keys) fall back to the id, so the order is total.
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->id < b.second->id;
  });
  const size_t n = keyed.size();
  std::vector<Placement> out;
  out.reserve(n);
  size_t phase = 0;
  for (size_t rank = 0; rank < n; ++rank) {
    while (phase + 1 < percents.size() &&
           rank >= static_cast<size_t>(std::ceil(percents[phase] * n / 100.0))) {
      ++phase;
    }
    out.push_back({keyed[rank].second->id, keyed[rank].second->device_class, static_cast<int>(rank),
                   static_cast<int>(phase)});
  }
  return out;
}

}  // namespace tinyfleet::server::rollouts
