// What the host tests of the firmware's MQTT client share (mqtt_client_test,
// mqtt_outbox_test): a device account's client options, and the wait on the client
// (nothing runs unless polled, so a test polls and checks until what it waits for happened).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/testing/environment.h"

namespace tinyfleet::firmware_test {

// The client options of `account` connecting as `client_id` (the test's own: tests that
// ctest runs at once do not take over each other's session): a 30 s keep-alive, reconnects
// backing off from 200 ms to 1 s. The options point into the strings, which must outlive them.
inline firmware::mqtt::ClientOptions device_client_options(const std::string& client_id,
                                                           const testing::MqttAccount& account) {
  firmware::mqtt::ClientOptions o;
  o.connect.client_id = client_id.c_str();
  o.connect.username = account.user.c_str();
  o.connect.password = account.password.c_str();
  o.connect.keep_alive_s = 30;
  o.backoff_initial_ms = 200;
  o.backoff_max_ms = 1000;
  return o;
}

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
