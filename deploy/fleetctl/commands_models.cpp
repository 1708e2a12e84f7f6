// fleetctl models, versions, compiles.
#include <sodium.h>

#include <cstdio>

#include "cli.h"
#include "listing.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"
#include "tinyfleet/v1/model_registry.grpc.pb.h"

namespace tinyfleet::fleetctl {

namespace {

std::string sha256_hex(const std::string& data) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char out[2 * sizeof d + 1];
  sodium_bin2hex(out, sizeof out, d, sizeof d);
  return out;
}

nlohmann::json artifact_json(const v1::Artifact& x) {
  return {{"class", x.device_class()},
          {"status", v1::ArtifactStatus_Name(x.status())},
          {"sha256", x.sha256()},
          {"size", x.size()},
          {"refusal", x.refusal_reason()}};
}

nlohmann::json version_json(const v1::ModelVersion& v) {
  nlohmann::json arts = nlohmann::json::array();
  for (const auto& x : v.artifacts()) arts.push_back(artifact_json(x));
  return {{"model", v.model()},
          {"version", v.version()},
          {"format", v.format() == v1::MODEL_FORMAT_TFLITE ? "tflite" : "onnx"},
          {"created_at", v.created_at()},
          {"artifacts", arts}};
}

// Every class fleetd knows (versions create compiles for all of them by default).
std::vector<std::string> all_classes(const Connection& c, grpc::Status* s) {
  auto stub = v1::DeviceRegistry::NewStub(c.channel());
  v1::ListDeviceClassesResponse resp;
  *s = stub->ListDeviceClasses(c.context().get(), {}, &resp);
  std::vector<std::string> out;
  for (const auto& k : resp.classes()) out.push_back(k.name());
  return out;
}

void print_artifacts(const google::protobuf::RepeatedPtrField<v1::Artifact>& artifacts) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& x : artifacts) {
    const auto report = nlohmann::json::parse(x.report_json(), nullptr, false);
    std::string acc, lat;
    if (report.is_object() && report.contains("validation")) {
      char b[32];
      std::snprintf(b, sizeof b, "%.4f", report["validation"].value("int8_top1", 0.0));
      acc = b;
    }
    if (report.is_object() && report.contains("latency_ms")) {
      char b[32];
      std::snprintf(b, sizeof b, "%.2f ms", report.value("latency_ms", 0.0));
      lat = b;
    }
    rows.push_back({x.device_class(), v1::ArtifactStatus_Name(x.status()).substr(16),
                    x.sha256().substr(0, 12), x.size() ? std::to_string(x.size()) : "", acc, lat,
                    x.refusal_reason()});
  }
  print_table({"CLASS", "STATUS", "SHA256", "BYTES", "INT8 TOP1", "LATENCY", "REFUSAL"}, rows);
}

// Follows a compile until it ends; 0 when every class compiled, kFailed otherwise.
int watch(const Connection& c, const std::string& id) {
  auto stub = v1::ModelRegistry::NewStub(c.channel());
  v1::WatchOperationRequest req;
  req.set_id(id);
  auto ctx = c.context();
  auto reader = stub->WatchOperation(ctx.get(), req);
  v1::Operation op;
  while (reader->Read(&op)) {
    if (!c.json) {
      std::printf("compile %s: %s %u/%u %s\n", op.id().c_str(),
                  v1::OperationState_Name(op.state()).substr(16).c_str(), op.done(), op.total(),
                  op.message().c_str());
      std::fflush(stdout);
    }
  }
  auto s = reader->Finish();
  if (!s.ok()) return report(s, "watch compile " + id);
  bool all = op.state() == v1::OPERATION_STATE_SUCCEEDED;
  for (const auto& x : op.artifacts()) all = all && x.status() == v1::ARTIFACT_STATUS_COMPILED;
  if (c.json) {
    nlohmann::json arts = nlohmann::json::array();
    for (const auto& x : op.artifacts()) {
      arts.push_back(artifact_json(x));
    }
    std::printf("%s\n", nlohmann::json{{"operation", op.id()},
                                       {"state", v1::OperationState_Name(op.state())},
                                       {"artifacts", arts}}
                            .dump()
                            .c_str());
  } else {
    print_artifacts(op.artifacts());
  }
  return all ? kOk : kFailed;
}

nlohmann::json model_json(const v1::Model& m) {
  return {{"name", m.name()}, {"description", m.description()}, {"created_at", m.created_at()}};
}

int list_models(const Connection& c) {
  std::vector<v1::Model> models;
  if (auto s = list_all_models(c, &models); !s.ok()) return report(s, "list models");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : models) {
    rows.push_back({m.name(), m.created_at(), m.description()});
    out.push_back(model_json(m));
  }
  if (c.json) {
    print_json(out);
  } else {
    print_table({"MODEL", "CREATED", "DESCRIPTION"}, rows);
  }
  return kOk;
}

}  // namespace

int cmd_models(const Args& a, const Connection& c) {
  auto stub = v1::ModelRegistry::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "list";
  if (verb == "list") return list_models(c);
  if (a.positional.size() < 3) usage_error("models create|get NAME");
  v1::Model m;
  if (verb == "create") {
    v1::CreateModelRequest req;
    req.set_name(a.positional[2]);
    req.set_description(a.get("description"));
    auto s = stub->CreateModel(c.context().get(), req, &m);
    if (!s.ok()) return report(s, "create model " + a.positional[2]);
  } else if (verb == "get") {
    v1::GetModelRequest req;
    req.set_name(a.positional[2]);
    auto s = stub->GetModel(c.context().get(), req, &m);
    if (!s.ok()) return report(s, "get model " + a.positional[2]);
  } else {
    usage_error("models takes create, list or get");
  }
  if (c.json) {
    print_json(model_json(m));
  } else if (verb == "create") {
    std::printf("model %s\n", m.name().c_str());
  } else {
    print_table({"MODEL", "CREATED", "DESCRIPTION"}, {{m.name(), m.created_at(), m.description()}});
  }
  return kOk;
}

int cmd_versions(const Args& a, const Connection& c) {
  auto stub = v1::ModelRegistry::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  if (a.positional.size() < 3) usage_error("versions create|list|get MODEL ...");
  const std::string model = a.positional[2];
  if (verb == "create") {
    // Upload the ONNX model with its calibration and validation sets, then compile
    // for the classes (and wait, unless --no-wait).
    if (!a.has("onnx") && !a.has("model"))
      usage_error(
          "versions create MODEL --model F [--format auto|onnx|tflite] [--calibration F] "
          "[--validation F] --classes a,b");
    const std::string format = a.get("format", "auto");
    v1::ModelFormat declared = v1::MODEL_FORMAT_UNSPECIFIED;
    if (format == "onnx") {
      declared = v1::MODEL_FORMAT_ONNX;
    } else if (format == "tflite") {
      declared = v1::MODEL_FORMAT_TFLITE;
    } else if (format != "auto") {
      usage_error("--format " + format + ": one of auto, onnx, tflite");
    }
    auto classes = a.list("classes");
    if (!a.has("classes") && !a.has("no-compile")) {
      grpc::Status listed;
      classes = all_classes(c, &listed);
      if (!listed.ok()) return report(listed, "list classes to compile for");
      if (classes.empty()) usage_error("fleetd knows no device class: import some first");
    }
    std::vector<std::pair<v1::FileKind, std::string>> files = {
        {v1::FILE_KIND_ONNX, read_file_or_die(a.has("model") ? a.get("model") : a.get("onnx"))}};
    if (a.has("calibration")) {
      files.emplace_back(v1::FILE_KIND_CALIBRATION, read_file_or_die(a.get("calibration")));
    }
    if (a.has("validation")) {
      files.emplace_back(v1::FILE_KIND_VALIDATION, read_file_or_die(a.get("validation")));
    }
    auto ctx = c.context();
    v1::ModelVersion version;
    auto writer = stub->CreateVersion(ctx.get(), &version);
    v1::CreateVersionRequest header;
    header.mutable_header()->set_model(model);
    header.mutable_header()->set_version(static_cast<uint32_t>(a.number("version", 0)));
    header.mutable_header()->set_metadata_json(a.get("metadata", "{}"));
    header.mutable_header()->set_format(declared);
    for (const auto& k : classes) header.mutable_header()->add_target_classes(k);
    for (const auto& [kind, bytes] : files) {
      auto* f = header.mutable_header()->add_files();
      f->set_kind(kind);
      f->set_size(bytes.size());
      f->set_sha256(sha256_hex(bytes));
    }
    writer->Write(header);
    for (const auto& [kind, bytes] : files) {
      for (size_t off = 0; off < bytes.size(); off += 64 * 1024) {
        v1::CreateVersionRequest part;
        part.mutable_chunk()->set_kind(kind);
        part.mutable_chunk()->set_offset(off);
        part.mutable_chunk()->set_data(bytes.substr(off, 64 * 1024));
        if (!writer->Write(part)) break;
      }
    }
    writer->WritesDone();
    auto s = writer->Finish();
    if (!s.ok()) return report(s, "upload a version of " + model);
    if (a.has("no-compile") || classes.empty()) {
      if (c.json) print_json(version_json(version));
      if (!c.json) std::printf("version %s/%u uploaded\n", model.c_str(), version.version());
      return kOk;
    }
    if (!c.json) std::printf("version %s/%u uploaded\n", model.c_str(), version.version());
    v1::CompileVersionRequest req;
    req.set_model(model);
    req.set_version(version.version());
    v1::Operation op;
    s = stub->CompileVersion(c.context().get(), req, &op);
    if (!s.ok()) return report(s, "compile " + model);
    if (a.has("no-wait")) {
      if (c.json)
        print_json({{"model", model}, {"version", version.version()}, {"operation", op.id()}});
      if (!c.json) std::printf("%s\n", op.id().c_str());
      return kOk;
    }
    return watch(c, op.id());
  }
  if (verb == "list") {
    v1::ListVersionsRequest req;
    req.set_model(model);
    req.set_page_size(500);
    v1::ListVersionsResponse resp;
    auto s = stub->ListVersions(c.context().get(), req, &resp);
    if (!s.ok()) return report(s, "list versions of " + model);
    if (c.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : resp.versions()) out.push_back(version_json(v));
      print_json(out);
      return kOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& v : resp.versions()) {
      std::string classes;
      for (const auto& x : v.artifacts()) {
        classes += (classes.empty() ? "" : " ") + x.device_class() + ":" +
                   v1::ArtifactStatus_Name(x.status()).substr(16);
      }
      rows.push_back({std::to_string(v.version()), v.created_at(), classes});
    }
    print_table({"VERSION", "CREATED", "ARTIFACTS"}, rows);
    return kOk;
  }
  if (verb != "get" || a.positional.size() < 4) usage_error("versions get MODEL N");
  v1::GetVersionRequest req;
  req.set_model(model);
  req.set_version(static_cast<uint32_t>(std::stoul(a.positional[3])));
  v1::ModelVersion v;
  auto s = stub->GetVersion(c.context().get(), req, &v);
  if (!s.ok()) return report(s, "get version");
  if (c.json) {
    print_json(version_json(v));
  } else {
    print_artifacts(v.artifacts());
  }
  return kOk;
}

int cmd_compiles(const Args& a, const Connection& c) {
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  if (verb == "watch" && a.positional.size() >= 3) return watch(c, a.positional[2]);
  if (verb == "start" && a.positional.size() >= 4) {
    auto stub = v1::ModelRegistry::NewStub(c.channel());
    v1::CompileVersionRequest req;
    req.set_model(a.positional[2]);
    req.set_version(static_cast<uint32_t>(std::stoul(a.positional[3])));
    for (const auto& k : a.list("classes")) req.add_device_classes(k);
    v1::Operation op;
    auto s = stub->CompileVersion(c.context().get(), req, &op);
    if (!s.ok()) return report(s, "compile");
    return watch(c, op.id());
  }
  usage_error("compiles start MODEL N [--classes a,b] | compiles watch OPERATION");
}

}  // namespace tinyfleet::fleetctl
