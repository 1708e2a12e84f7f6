#include "tinyfleet/firmware/provisioning.h"

#include <cstring>

namespace tinyfleet::firmware {
namespace {

struct Span {
  const char* p;
  size_t n;
  bool is(const char* s) const { return std::strlen(s) == n && std::memcmp(p, s, n) == 0; }
};

bool copy_text(Span v, char* out, size_t min) {
  if (v.n < min || v.n >= Provisioning::kMaxText) return false;
  for (size_t i = 0; i < v.n; ++i) {
    if (static_cast<unsigned char>(v.p[i]) < 0x21 || v.p[i] == 0x7F) return false;
  }
  std::memcpy(out, v.p, v.n);
  out[v.n] = '\0';
  return true;
}

bool number(Span v, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (v.n == 0 || v.n > 20) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < v.n; ++i) {
    if (v.p[i] < '0' || v.p[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(v.p[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool hex32(Span v, uint8_t* out) {
  if (v.n != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = hex_digit(v.p[2 * i]), lo = hex_digit(v.p[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

// One `key=value` line; an error message (static text) or nullptr.
const char* apply(Span key, Span v, Provisioning* p) {
  uint64_t x = 0;
  if (key.is("user"))
    return copy_text(v, p->user, 1) ? nullptr : "user: 1..63 printable characters";
  if (key.is("password")) {
    return copy_text(v, p->password, 1) ? nullptr : "password: 1..63 printable characters";
  }
  if (key.is("fleet"))
    return copy_text(v, p->fleet, 1) ? nullptr : "fleet: 1..63 printable characters";
  if (key.is("device")) {
    return copy_text(v, p->device, 1) ? nullptr : "device: 1..63 printable characters";
  }
  if (key.is("offer_fleet")) {
    return copy_text(v, p->offer_fleet, 1) ? nullptr : "offer_fleet: 1..63 printable characters";
  }
  if (key.is("root_key")) {
    p->has_root_key = hex32(v, p->root_key);
    return p->has_root_key ? nullptr : "root_key: 64 hex digits";
  }
  if (key.is("now")) {
    if (!number(v, 0, UINT64_MAX / 2, &x)) return "now: not a Unix time";
    p->now = x;
    return nullptr;
  }
  if (key.is("factory")) {
    if (!number(v, 0, 1, &x)) return "factory: 0 or 1";
    p->factory = x == 1;
    return nullptr;
  }
  if (key.is("mode")) {
    if (!v.is("once") && !v.is("run")) return "mode: once or run";
    p->run = v.is("run");
    return nullptr;
  }
  if (key.is("rate_ms")) {
    if (!number(v, 10, 60000, &x)) return "rate_ms: 10..60000";
    p->rate_ms = static_cast<uint32_t>(x);
    return nullptr;
  }
  if (key.is("window_s")) {
    if (!number(v, 1, 3600, &x)) return "window_s: 1..3600";
    p->window_s = static_cast<uint32_t>(x);
    return nullptr;
  }
  return "unknown key";
}

// "line N: problem", cut to fit (no printf: the agent's libraries stay small).
void write_error(int line, const char* problem, char* out, size_t capacity) {
  if (capacity == 0) return;
  char text[128] = "line ";
  size_t n = 5;
  char digits[12];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + line % 10);
    line /= 10;
  } while (line > 0 && d < sizeof digits);
  while (d > 0) text[n++] = digits[--d];
  text[n++] = ':';
  text[n++] = ' ';
  for (size_t i = 0; problem[i] != '\0' && n + 1 < sizeof text; ++i) text[n++] = problem[i];
  text[n] = '\0';
  const size_t copy = n < capacity - 1 ? n : capacity - 1;
  std::memcpy(out, text, copy);
  out[copy] = '\0';
}

}  // namespace

bool parse_provisioning(const char* text, size_t size, Provisioning* out, char* error,
                        size_t error_capacity) {
  Provisioning p;
  const char* problem = nullptr;
  int line = 0;
  size_t pos = 0;
  while (pos < size && problem == nullptr) {
    ++line;
    size_t end = pos;
    while (end < size && text[end] != '\n') ++end;
    size_t stop = end;
    if (stop > pos && text[stop - 1] == '\r') --stop;
    if (stop > pos && text[pos] != '#') {
      const void* eq = std::memchr(text + pos, '=', stop - pos);
      if (eq == nullptr) {
        problem = "no '='";
      } else {
        const size_t k = static_cast<size_t>(static_cast<const char*>(eq) - (text + pos));
        problem = apply({text + pos, k}, {text + pos + k + 1, stop - pos - k - 1}, &p);
      }
    }
    pos = end + 1;
  }
  if (problem == nullptr && (p.user[0] == '\0' || p.password[0] == '\0')) {
    line = 0;
    problem = "user and password are required";
  }
  if (problem != nullptr) {
    write_error(line, problem, error, error_capacity);
    return false;
  }
  if (p.device[0] == '\0') std::memcpy(p.device, p.user, sizeof p.device);
  if (p.offer_fleet[0] == '\0') std::memcpy(p.offer_fleet, p.fleet, sizeof p.fleet);
  *out = p;
  return true;
}

}  // namespace tinyfleet::firmware
