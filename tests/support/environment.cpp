#include "tinyfleet/testing/environment.h"

#include <cstdlib>
#include <stdexcept>

namespace tinyfleet::testing {

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the suite through deploy/local/run-tests.sh, "
                             "which starts PostgreSQL and Mosquitto and exports it");
  }
  return v;
}

std::string fixture_path(const std::string& relative) {
  return std::string(TINYFLEET_FIXTURES_DIR) + "/" + relative;
}

}  // namespace tinyfleet::testing
