#pragma once

// What a name of each kind may look like; checked before anything is stored.
#include <regex>
#include <string>

namespace tinyfleet::server::names {

inline bool model(const std::string& s) {
  static const std::regex re("[a-z0-9][a-z0-9_-]{0,62}");
  return std::regex_match(s, re);
}
inline bool device(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return std::regex_match(s, re);
}
inline bool device_class(const std::string& s) {
  static const std::regex re("[a-z0-9][a-z0-9_-]{0,62}");
  return std::regex_match(s, re);
}
inline bool token(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return std::regex_match(s, re);
}
inline bool sha256(const std::string& s) {
  static const std::regex re("[0-9a-f]{64}");
  return std::regex_match(s, re);
}

}  // namespace tinyfleet::server::names
