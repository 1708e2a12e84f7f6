// The MQTT client's transport port over a host TCP socket (tests): open() connects
// (blocking, bounded), then every read and write is non-blocking.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

#include "tinyfleet/firmware/mqtt_client.h"

namespace tinyfleet::firmware_test {

class TcpTransport final : public firmware::mqtt::Transport {
 public:
  TcpTransport(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}
  ~TcpTransport() override { close(); }

  bool open() override {
    close();
    ++opens;
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    if (::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    return true;
  }
  void close() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int write(const uint8_t* data, size_t size) override {
    if (fd_ < 0) return -1;
    const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    return static_cast<int>(n);
  }
  int read(uint8_t* out, size_t capacity) override {
    if (fd_ < 0) return -1;
    if (capacity == 0) return 0;
    const ssize_t n = ::recv(fd_, out, capacity, 0);
    if (n == 0) return -1;  // the broker closed the connection
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    return static_cast<int>(n);
  }
  uint32_t now_ms() override {
    return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

  int opens = 0;

 private:
  std::string host_;
  uint16_t port_;
  int fd_ = -1;
};

}  // namespace tinyfleet::firmware_test
