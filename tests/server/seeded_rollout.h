#pragma once

// A running rollout written straight into a scratch database (rollout_seed.h's fleet):
// one phase over `devices` devices that already run the target, no bake, a gate that
// passes. Left alone, the engine completes it in a few ticks.
#include <cstdint>
#include <string>

#include <pqxx/pqxx>

namespace tinyfleet::testing {

int64_t seed_rollout(pqxx::work& w, const std::string& name, int devices);

}  // namespace tinyfleet::testing
