#pragma once

// The firmware MQTT client's transport port (firmware/include/tinyfleet/firmware/mqtt_client.h)
// over a host TCP socket: the firmware tests run the client against the stack's broker with
// it, and fleet-sim's --sessions firmware runs one simulated device per socket. Reads and
// writes never block; open() connects either blocking (bounded by the kernel's connect
// timeout; a refused connection fails at once) or, with set_nonblocking_connect(), returns
// at once and the client's first write or read finds out (a process with 1,000 sockets
// must not wait for each SYN-ACK in turn).
#include <cstdint>
#include <functional>
#include <string>

#include "tinyfleet/firmware/mqtt_client.h"

namespace tinyfleet::device_agent::linux_port {

class TcpTransport final : public firmware::mqtt::Transport {
 public:
  // host: an IPv4 address ("127.0.0.1").
  TcpTransport(std::string host, uint16_t port);
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  void set_nonblocking_connect(bool on) { nonblocking_connect_ = on; }
  // Called with each new socket once open() made it (a poller watches it for reads); a
  // socket is closed by close() or the next open(), which also ends an epoll watch of it.
  void set_on_open(std::function<void(int fd)> on_open) { on_open_ = std::move(on_open); }

  // With a poller (fleet-sim's epoll): read() calls recv() only after mark_readable()
  // (the poller saw bytes) until a recv() finds none, so a pump on a timer costs no
  // system call (1,000 sessions pumped every 50 ms were 20,000 recv() calls a second,
  // nearly all finding nothing). Off by default: every read() calls recv().
  void set_read_when_marked(bool on) { read_when_marked_ = on; }
  void mark_readable() { readable_ = true; }

  bool open() override;
  void close() override;
  int write(const uint8_t* data, size_t size) override;
  int read(uint8_t* out, size_t capacity) override;
  uint32_t now_ms() override;

  int fd() const { return fd_; }
  int opens() const { return opens_; }

 private:
  std::string host_;
  uint16_t port_;
  int fd_ = -1;
  int opens_ = 0;
  bool nonblocking_connect_ = false;
  bool read_when_marked_ = false;
  bool readable_ = true;
  std::function<void(int)> on_open_;
};

}  // namespace tinyfleet::device_agent::linux_port
