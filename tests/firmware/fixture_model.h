// A small artifact (FullyConnected 64 -> 10, Softmax) in two versions, the second a
// fine-tune of the first (a tenth of the weights moved by one step), and the host
// runtime's output on an input: what the firmware check updates from and to.
#pragma once

#include <string>

namespace tinyfleet::firmware_test {

std::string fixture_artifact(int version);
std::string fixture_input();
// The host runtime's output bytes for `input`, or empty when the artifact does not run.
std::string run_on_host(const std::string& artifact, const std::string& input);

}  // namespace tinyfleet::firmware_test
