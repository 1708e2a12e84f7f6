// The firmware MQTT client's transport over a host TCP socket (see tcp_transport.h).
#include "tinyfleet/device_agent/linux/tcp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace tinyfleet::device_agent::linux_port {

TcpTransport::TcpTransport(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}

TcpTransport::~TcpTransport() { close(); }

bool TcpTransport::open() {
  close();
  ++opens_;
  readable_ = true;
  fd_ = ::socket(AF_INET, SOCK_STREAM | (nonblocking_connect_ ? SOCK_NONBLOCK : 0), 0);
  if (fd_ < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  if (::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1) {
    close();
    return false;
  }
  // A non-blocking connect goes on in the background (EINPROGRESS): until it completes, a
  // write or read finds nothing to do (EAGAIN), and a refused one fails them.
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      !(nonblocking_connect_ && errno == EINPROGRESS)) {
    close();
    return false;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  if (on_open_) on_open_(fd_);
  return true;
}

void TcpTransport::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int TcpTransport::write(const uint8_t* data, size_t size) {
  if (fd_ < 0) return -1;
  const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  return static_cast<int>(n);
}

int TcpTransport::read(uint8_t* out, size_t capacity) {
  if (fd_ < 0) return -1;
  if (capacity == 0) return 0;
  if (read_when_marked_ && !readable_) return 0;
  const ssize_t n = ::recv(fd_, out, capacity, 0);
  if (n == 0) return -1;  // the broker closed the connection
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    readable_ = false;  // until the poller sees bytes again
    return 0;
  }
  return static_cast<int>(n);
}

uint32_t TcpTransport::now_ms() {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace tinyfleet::device_agent::linux_port
