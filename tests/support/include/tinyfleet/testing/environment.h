#pragma once

#include <string>

namespace tinyfleet::testing {

// A variable exported by deploy/local/stack.sh; fails the test with a message
// saying how to run the suite when it is missing.
std::string require_env(const char* name);

// The fixtures committed under tests/fixtures/ (models, data).
std::string fixture_path(const std::string& relative);

}  // namespace tinyfleet::testing
