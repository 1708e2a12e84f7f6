#pragma once

// What a name of each kind may look like; checked before anything is stored.
#include <string>

namespace tinyfleet::server::names {

namespace detail {
// First character from `first`, then up to max_len - 1 characters from `rest`.
inline bool shaped(const std::string& s, size_t max_len, const char* first, const char* rest) {
  auto in = [](char c, const char* set) {
    for (const char* p = set; *p; ++p) {
      if (p[1] == '~' && p[2]) {  // a range like "a~z"
        if (c >= p[0] && c <= p[2]) return true;
        p += 2;
      } else if (c == *p) {
        return true;
      }
    }
    return false;
  };
  if (s.empty() || s.size() > max_len || !in(s[0], first)) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    if (!in(s[i], rest)) return false;
  }
  return true;
}
}  // namespace detail

// [a-z0-9][a-z0-9_-]{0,62}
inline bool model(const std::string& s) { return detail::shaped(s, 63, "a~z0~9", "a~z0~9_-"); }
// [a-z0-9][a-z0-9_-]{0,62}
inline bool device_class(const std::string& s) {
  return detail::shaped(s, 63, "a~z0~9", "a~z0~9_-");
}
// [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
inline bool device(const std::string& s) {
  return detail::shaped(s, 64, "A~Za~z0~9", "A~Za~z0~9_.-");
}
// [A-Za-z0-9_.-]{1,64}
inline bool token(const std::string& s) {
  return detail::shaped(s, 64, "A~Za~z0~9_.-", "A~Za~z0~9_.-");
}
// 64 lower-case hex digits
inline bool sha256(const std::string& s) {
  return s.size() == 64 && detail::shaped(s, 64, "0~9a~f", "0~9a~f");
}

}  // namespace tinyfleet::server::names
