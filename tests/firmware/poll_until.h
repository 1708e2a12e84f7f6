// The host tests' wait on the firmware's MQTT client (mqtt_client_test, mqtt_outbox_test):
// nothing runs unless polled, so a test polls and checks until what it waits for happened.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace tinyfleet::firmware_test {

// Calls `poll` then `done` every millisecond until `done` is true or `limit` has passed;
// true if done.
inline bool poll_until(const std::function<void()>& poll, const std::function<bool()>& done,
                       std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    poll();
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace tinyfleet::firmware_test
