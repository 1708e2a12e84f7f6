#include "tinyfleet/server/nats_subject.h"

namespace tinyfleet::server {

std::string mqtt_filter_to_subject(const std::string& filter) {
  std::string out;
  out.reserve(filter.size());
  for (size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    const bool whole_level =
        (i == 0 || filter[i - 1] == '/') && (i + 1 == filter.size() || filter[i + 1] == '/');
    if (c == '/') {
      out += '.';
    } else if (c == '.') {
      out += "//";
    } else if (c == '+' && whole_level) {
      out += '*';
    } else if (c == '#' && whole_level) {
      out += '>';
    } else {
      out += c;
    }
  }
  return out;
}

SubjectError subject_to_mqtt_topic(const char* subject, size_t size, size_t max_bytes,
                                   std::string* topic) {
  topic->clear();
  if (size == 0) return {"empty subject"};
  if (size > max_bytes) return {"subject longer than " + std::to_string(max_bytes) + " bytes"};
  bool level_empty = true;
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = static_cast<unsigned char>(subject[i]);
    if (c < 0x20 || c == 0x7f) return {"control character in subject"};
    if (c == '*' || c == '>' || c == '+' || c == '#') return {"wildcard in subject"};
    if (c == '/') {
      // nats-server writes a `.` inside an MQTT level as `//`; a lone `/` cannot come
      // from an MQTT topic.
      if (i + 1 >= size || subject[i + 1] != '/') return {"lone '/' in subject"};
      *topic += '.';
      ++i;
      level_empty = false;
      continue;
    }
    if (c == '.') {
      if (level_empty) return {"empty level in subject"};
      *topic += '/';
      level_empty = true;
      continue;
    }
    *topic += static_cast<char>(c);
    level_empty = false;
  }
  if (level_empty) return {"empty level in subject"};
  if (topic->size() > max_bytes) return {"topic longer than " + std::to_string(max_bytes)};
  return {};
}

}  // namespace tinyfleet::server
