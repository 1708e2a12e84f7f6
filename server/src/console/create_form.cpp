#include "console/create_form.h"

#include <limits>

#include <nlohmann/json.hpp>

namespace tinyfleet::server::console {

namespace {

using nlohmann::json;
using storage::Error;
using storage::ErrorCode;

struct Refused {
  std::string message;
};

[[noreturn]] void refuse(const std::string& message) { throw Refused{message}; }

std::string text(const json& v, const std::string& field) {
  if (!v.is_string()) refuse(field + " must be a string");
  auto s = v.get<std::string>();
  if (s.size() > kMaxFormString) {
    refuse(field + " is longer than " + std::to_string(kMaxFormString) + " bytes");
  }
  return s;
}

uint32_t whole(const json& v, const std::string& field) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
      (v.is_number_unsigned() && v.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) ||
      (!v.is_number_unsigned() && v.get<int64_t>() > std::numeric_limits<uint32_t>::max())) {
    refuse(field + " must be a whole number 0.." +
           std::to_string(std::numeric_limits<uint32_t>::max()));
  }
  return static_cast<uint32_t>(v.get<uint64_t>());
}

std::vector<std::string> texts(const json& v, const std::string& field) {
  if (!v.is_array()) refuse(field + " must be a list of strings");
  if (v.size() > kMaxFormList) {
    refuse(field + " has more than " + std::to_string(kMaxFormList) + " entries");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(text(v[i], field + "[" + std::to_string(i) + "]"));
  }
  return out;
}

std::vector<std::pair<uint32_t, uint32_t>> phases(const json& v) {
  if (!v.is_array()) refuse("phases must be a list of {\"percent\", \"bake_seconds\"}");
  if (v.size() > kMaxFormPhases) {
    refuse("phases has more than " + std::to_string(kMaxFormPhases) + " entries");
  }
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = "phases[" + std::to_string(i) + "]";
    if (!v[i].is_object()) refuse(at + " must be {\"percent\", \"bake_seconds\"}");
    std::pair<uint32_t, uint32_t> p;
    for (const auto& [key, value] : v[i].items()) {
      if (key == "percent") {
        p.first = whole(value, at + ".percent");
      } else if (key == "bake_seconds") {
        p.second = whole(value, at + ".bake_seconds");
      } else {
        refuse(at + " has an unknown field '" + key.substr(0, 40) + "'");
      }
    }
    if (!v[i].contains("percent")) refuse(at + " needs percent");
    out.push_back(p);
  }
  return out;
}

CreateForm form_of(const json& doc) {
  if (!doc.is_object()) refuse("the body must be a JSON object");
  CreateForm f;
  for (const auto& [key, v] : doc.items()) {
    if (key == "name")
      f.name = text(v, key);
    else if (key == "model")
      f.model = text(v, key);
    else if (key == "version")
      f.version = whole(v, key);
    else if (key == "fleet")
      f.fleet = text(v, key);
    else if (key == "device_classes")
      f.device_classes = texts(v, key);
    else if (key == "tags")
      f.tags = texts(v, key);
    else if (key == "device_ids")
      f.device_ids = texts(v, key);
    else if (key == "phases")
      f.phases = phases(v);
    else if (key == "gates")
      f.gates = text(v, key);
    else if (key == "on_gate_failure")
      f.on_gate_failure = text(v, key);
    else if (key == "rate_per_minute")
      f.rate_per_minute = whole(v, key);
    else
      refuse("unknown field '" + key.substr(0, 40) + "'");
  }
  for (const char* needed : {"name", "model", "version"}) {
    if (!doc.contains(needed)) refuse(std::string("the form needs ") + needed);
  }
  return f;
}

}  // namespace

storage::Expected<CreateForm> parse_create_form(const std::string& body) {
  if (body.size() > kMaxFormBytes) {
    return Error{ErrorCode::kInvalidArgument,
                 "the body is larger than " + std::to_string(kMaxFormBytes) + " bytes"};
  }
  const auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Error{ErrorCode::kInvalidArgument, "the body is not JSON"};
  try {
    return form_of(doc);
  } catch (const Refused& r) {
    return Error{ErrorCode::kInvalidArgument, r.message};
  }
}

}  // namespace tinyfleet::server::console
