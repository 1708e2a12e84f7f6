#pragma once

// How a simulated device of fleet-sim reaches the broker (--sessions):
//   paho      the Linux port (MqttAgentPort): Paho, MQTT 5 or 3.1.1, TLS, broker fallback;
//             Paho's threads poll every session's socket.
//   firmware  the firmware's MQTT 3.1.1 client and agent outbox (firmware/src) over a
//             non-blocking TCP socket: no thread, a device costs nothing while its socket
//             is quiet. Plain tcp:// to one broker; telemetry at QoS 0, as on a device.
// The loop sleeps in one Waker until a session has something for its agent.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::device_agent {
class UpdateAgent;
}

namespace tinyfleet::fleet_sim {

// Wakes fleet-sim's loop: a Paho session's thread calls wake(); a firmware session's
// socket is watched for bytes to read (epoll, level-triggered), which sets its flag.
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  void wake();  // any thread
  // Sets *readable whenever fd has bytes to read (or is hung up). Closing fd ends it.
  void watch(int fd, std::atomic<bool>* readable);
  // Until wake(), a watched socket is readable (its flag set) or `at_most` passed.
  void sleep(std::chrono::milliseconds at_most);

 private:
  int epoll_ = -1;
  int event_ = -1;  // eventfd that wake() writes
};

struct SessionConfig {
  std::string broker;                 // tcp://host:port, ssl://host:port (paho only)
  std::vector<std::string> fallback;  // further broker URIs (paho only)
  std::string ca;                     // with ssl:// (paho only)
  bool mqtt_v311 = false;
  std::string fleet, device, password;
};

class SimSession {
 public:
  virtual ~SimSession() = default;
  virtual device_agent::Outbox& outbox() = 0;
  virtual void attach(device_agent::UpdateAgent* agent) = 0;
  virtual void start() = 0;  // connects in the background
  // Hands what arrived to the agent and runs its timers; > 0 when something arrived.
  // `readable`: the device's flag was set since the last pump (a firmware session reads
  // its socket only then, until it finds it empty: no recv() on a timer's pump).
  virtual int pump(bool readable) = 0;
  virtual bool connected() = 0;
  // Ends the session before it is destroyed: `clean`, it says "offline" and waits for the
  // broker's acknowledgement (up to 2 s); otherwise it drops the link and the broker
  // publishes its will ("offline" too). Paho's sessions always end cleanly.
  virtual void stop(bool clean) { (void)clean; }
};

// `woken` is the device's flag: set (then the Waker woken) when pump() has work.
std::unique_ptr<SimSession> paho_session(const SessionConfig& config, Waker& waker,
                                         std::atomic<bool>& woken);
// nullptr with *why when the config does not suit the firmware client.
std::unique_ptr<SimSession> firmware_session(const SessionConfig& config, Waker& waker,
                                             std::atomic<bool>& woken, std::string* why);

}  // namespace tinyfleet::fleet_sim
