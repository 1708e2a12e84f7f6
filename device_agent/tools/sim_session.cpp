// fleet-sim's sessions (see sim_session.h).
#include "sim_session.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/device_agent/linux/tcp_transport.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/mqtt_outbox.h"
#include "tinyfleet/update/offer.h"

namespace tinyfleet::fleet_sim {

Waker::Waker() : epoll_(epoll_create1(EPOLL_CLOEXEC)), event_(eventfd(0, EFD_NONBLOCK)) {
  if (epoll_ < 0 || event_ < 0) throw std::runtime_error("fleet-sim: no epoll or eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the eventfd
  epoll_ctl(epoll_, EPOLL_CTL_ADD, event_, &ev);
}

Waker::~Waker() {
  close(event_);
  close(epoll_);
}

void Waker::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(event_, &one, sizeof one);
}

void Waker::watch(int fd, std::atomic<bool>* readable) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = readable;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
}

void Waker::sleep(std::chrono::milliseconds at_most) {
  epoll_event events[256];
  const int n = epoll_wait(epoll_, events, 256, static_cast<int>(at_most.count()));
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t r = read(event_, &count, sizeof count);
    } else {
      static_cast<std::atomic<bool>*>(events[i].data.ptr)->store(true);
    }
  }
}

namespace {

class PahoSession final : public SimSession {
 public:
  PahoSession(const SessionConfig& c, Waker& waker, std::atomic<bool>& woken)
      : port_(c.broker, c.fleet, c.device, c.password) {
    port_.set_ca_file(c.ca);
    port_.set_fallback_uris(c.fallback);
    port_.set_mqtt_v311(c.mqtt_v311);
    port_.set_wakeup([&waker, &woken] {
      woken = true;
      waker.wake();
    });
  }
  device_agent::Outbox& outbox() override { return port_; }
  void attach(device_agent::UpdateAgent* agent) override { port_.attach(agent); }
  void start() override { port_.connect(/*wait=*/false); }
  int pump(bool) override { return port_.pump(0); }
  bool connected() override { return port_.connected(); }

 private:
  device_agent::linux_port::MqttAgentPort port_;
};

// Buffers as a roomy device has them: chunk answers up to ~8 KB (the agent's requests are
// cut to fit kRx), an offer of any size streamed into its own buffer.
constexpr size_t kTx = 2048, kRx = 8192;

class FirmwareSession final : public SimSession {
 public:
  FirmwareSession(const SessionConfig& c, const std::string& host, uint16_t port, Waker& waker,
                  std::atomic<bool>& woken)
      : device_(c.device),
        password_(c.password),
        transport_(host, port),
        offer_(update::kMaxOfferBytes),
        outbox_(transport_, offer_.data(), offer_.size()) {
    transport_.set_nonblocking_connect(true);
    transport_.set_read_when_marked(true);
    transport_.set_on_open([&waker, &woken](int fd) { waker.watch(fd, &woken); });
    options_.connect.client_id = device_.c_str();
    options_.connect.username = device_.c_str();
    options_.connect.password = password_.c_str();
    options_.connect_timeout_ms = 10000;
    options_.backoff_initial_ms = 500;
    options_.backoff_max_ms = 5000;
  }
  void stop(bool clean) override {
    if (clean && connected()) {
      transport_.set_read_when_marked(false);  // disconnect() polls for the PUBACK itself
      outbox_.disconnect();                    // "offline", acknowledged (MqttOutbox)
    } else {
      transport_.close();  // the broker publishes the will
    }
  }
  FirmwareSession(const FirmwareSession&) = delete;
  FirmwareSession& operator=(const FirmwareSession&) = delete;
  bool configure(const std::string& fleet) {
    return outbox_.configure(fleet.c_str(), device_.c_str());
  }
  device_agent::Outbox& outbox() override { return outbox_; }
  void attach(device_agent::UpdateAgent* agent) override { outbox_.attach(agent); }
  void start() override { outbox_.start(options_); }
  int pump(bool readable) override {
    if (readable) transport_.mark_readable();
    const uint32_t before = outbox_.client().counters().received;
    outbox_.poll();
    return static_cast<int>(outbox_.client().counters().received - before);
  }
  bool connected() override {
    return outbox_.client().state() == firmware::mqtt::ClientState::kConnected;
  }

 private:
  std::string device_, password_;
  device_agent::linux_port::TcpTransport transport_;
  std::vector<uint8_t> offer_;
  firmware::StaticMqttOutbox<kTx, kRx> outbox_;
  firmware::mqtt::ClientOptions options_;
};

}  // namespace

std::unique_ptr<SimSession> paho_session(const SessionConfig& config, Waker& waker,
                                         std::atomic<bool>& woken) {
  return std::make_unique<PahoSession>(config, waker, woken);
}

std::unique_ptr<SimSession> firmware_session(const SessionConfig& c, Waker& waker,
                                             std::atomic<bool>& woken, std::string* why) {
  const std::string scheme = "tcp://";
  const size_t colon = c.broker.rfind(':');
  if (c.broker.rfind(scheme, 0) != 0 || colon <= scheme.size() || !c.fallback.empty()) {
    *why = "--sessions firmware takes one tcp://HOST:PORT broker, not '" + c.broker + "'";
    return nullptr;
  }
  std::string host = c.broker.substr(scheme.size(), colon - scheme.size());
  if (host == "localhost") host = "127.0.0.1";
  in_addr address{};
  if (inet_pton(AF_INET, host.c_str(), &address) != 1) {
    *why = "--sessions firmware needs an IPv4 address, not '" + host + "'";
    return nullptr;
  }
  char* end = nullptr;
  const unsigned long port = std::strtoul(c.broker.c_str() + colon + 1, &end, 10);
  if (!end || *end != '\0' || port == 0 || port > 65535) {
    *why = "no port in the broker URI '" + c.broker + "'";
    return nullptr;
  }
  auto s = std::make_unique<FirmwareSession>(c, host, static_cast<uint16_t>(port), waker, woken);
  if (!s->configure(c.fleet)) {
    *why = "fleet '" + c.fleet + "' and device '" + c.device + "' do not make a topic";
    return nullptr;
  }
  return s;
}

}  // namespace tinyfleet::fleet_sim
