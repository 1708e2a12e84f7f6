#include "tinyfleet/server/model_registry_service.h"

#include <map>

#include <nlohmann/json.hpp>

#include "convert.h"
#include "names.h"
#include "tinyfleet/server/grpc_status.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server {

namespace {

using storage::Role;

const char* file_name(v1::FileKind k) {
  switch (k) {
    case v1::FILE_KIND_ONNX:
      return "onnx";
    case v1::FILE_KIND_CALIBRATION:
      return "calibration";
    case v1::FILE_KIND_VALIDATION:
      return "validation";
    default:
      return "unspecified";
  }
}

// The model file's format as stored: the declared one, or (UNSPECIFIED) the bytes' own:
// TFLite's FlatBuffer identifier "TFL3" at offset 4, else ONNX. Empty: the bytes are not
// in the declared format.
std::string model_format(v1::ModelFormat declared, const std::string& bytes) {
  const bool tflite = bytes.size() >= 8 && bytes.compare(4, 4, "TFL3") == 0;
  if (declared == v1::MODEL_FORMAT_UNSPECIFIED) return tflite ? "tflite" : "onnx";
  if ((declared == v1::MODEL_FORMAT_TFLITE) != tflite) return "";
  return tflite ? "tflite" : "onnx";
}

std::string version_name(const std::string& model, uint32_t version) {
  return "model '" + model + "' version " + std::to_string(version);
}

struct UploadFile {
  uint64_t declared = 0;
  std::string sha256;
  std::string bytes;
};

}  // namespace

grpc::Status ModelRegistryService::CreateModel(grpc::ServerContext* ctx,
                                               const v1::CreateModelRequest* req, v1::Model* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateModel", &caller); !s.ok()) return s;
  if (!names::model(req->name())) {
    return invalid_argument("name '" + req->name() +
                            "' is not a model name: 1-63 of a-z, 0-9, '_' and '-', "
                            "starting with a letter or digit");
  }
  auto r = db_.transact([&](pqxx::work& w) {
    auto m = storage::models::create(w, req->name(), req->description());
    storage::audit_log::append(w, {caller.name, "model.create", "model/" + m.name, "{}"});
    return m;
  });
  if (!r) return to_status(r.error());
  convert::model(*r, out);
  log::info("model.created", {{"model", r->name}, {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::GetModel(grpc::ServerContext* ctx,
                                            const v1::GetModelRequest* req, v1::Model* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "GetModel", nullptr); !s.ok()) return s;
  auto r = db_.transact([&](pqxx::work& w) { return storage::models::get(w, req->name()); });
  if (!r) return to_status(r.error());
  convert::model(*r, out);
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::ListModels(grpc::ServerContext* ctx,
                                              const v1::ListModelsRequest* req,
                                              v1::ListModelsResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListModels", nullptr); !s.ok()) return s;
  const int page = req->page_size() == 0 ? 50 : static_cast<int>(std::min(req->page_size(), 500u));
  if (!req->page_token().empty() && !names::model(req->page_token())) {
    return invalid_argument("page_token '" + req->page_token() + "' is malformed");
  }
  auto r = db_.transact(
      [&](pqxx::work& w) { return storage::models::list(w, req->page_token(), page + 1); });
  if (!r) return to_status(r.error());
  for (size_t i = 0; i < r->size() && i < static_cast<size_t>(page); ++i) {
    convert::model((*r)[i], out->add_models());
  }
  if (r->size() > static_cast<size_t>(page)) out->set_next_page_token((*r)[page - 1].name);
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::CreateVersion(
    grpc::ServerContext* ctx, grpc::ServerReader<v1::CreateVersionRequest>* reader,
    v1::ModelVersion* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateVersion", &caller); !s.ok()) return s;
  v1::CreateVersionRequest msg;
  if (!reader->Read(&msg) || !msg.has_header()) {
    return invalid_argument("CreateVersion must start with a header naming the model and files");
  }
  const v1::VersionHeader header = msg.header();
  if (!names::model(header.model())) {
    return invalid_argument("header.model '" + header.model() + "' is not a model name");
  }
  std::map<v1::FileKind, UploadFile> files;
  for (const auto& f : header.files()) {
    if (f.kind() == v1::FILE_KIND_UNSPECIFIED || !v1::FileKind_IsValid(f.kind())) {
      return invalid_argument("header.files: a file has no kind");
    }
    if (files.count(f.kind())) {
      return invalid_argument(std::string("header.files: the ") + file_name(f.kind()) +
                              " file is declared twice");
    }
    if (f.size() == 0 || f.size() > static_cast<uint64_t>(max_upload_bytes_)) {
      return invalid_argument(std::string("header.files: the ") + file_name(f.kind()) +
                              " file's size " + std::to_string(f.size()) + " is outside 1.." +
                              std::to_string(max_upload_bytes_) + " bytes");
    }
    if (!f.sha256().empty() && !names::sha256(f.sha256())) {
      return invalid_argument(std::string("header.files: the ") + file_name(f.kind()) +
                              " file's sha256 is not 64 lower-case hex digits");
    }
    files[f.kind()] = UploadFile{f.size(), f.sha256(), {}};
  }
  if (!files.count(v1::FILE_KIND_ONNX)) {
    return invalid_argument("header.files: the ONNX model file is required");
  }
  if (header.format() != v1::MODEL_FORMAT_UNSPECIFIED && header.format() != v1::MODEL_FORMAT_ONNX &&
      header.format() != v1::MODEL_FORMAT_TFLITE) {
    return invalid_argument("header.format " + std::to_string(header.format()) +
                            " is not ONNX (1), TFLITE (2) or UNSPECIFIED (0: detected)");
  }
  if (!header.metadata_json().empty()) {
    auto meta = nlohmann::json::parse(header.metadata_json(), nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) {
      return invalid_argument("header.metadata_json is not a JSON object");
    }
  }
  // Fail fast, before the bytes arrive, for an unknown model.
  auto model = db_.transact([&](pqxx::work& w) { return storage::models::get(w, header.model()); });
  if (!model) return to_status(model.error());

  for (auto& [kind, f] : files) f.bytes.reserve(f.declared);
  while (reader->Read(&msg)) {
    if (msg.has_header()) return invalid_argument("CreateVersion got a second header");
    const auto& chunk = msg.chunk();
    auto it = files.find(chunk.kind());
    if (it == files.end()) {
      return invalid_argument(std::string("a chunk of the ") + file_name(chunk.kind()) +
                              " file, which the header did not declare");
    }
    auto& f = it->second;
    if (chunk.offset() != f.bytes.size()) {
      return invalid_argument(std::string("a chunk of the ") + file_name(chunk.kind()) +
                              " file at offset " + std::to_string(chunk.offset()) + ", expected " +
                              std::to_string(f.bytes.size()));
    }
    if (f.bytes.size() + chunk.data().size() > f.declared) {
      return invalid_argument(std::string("the ") + file_name(chunk.kind()) +
                              " file is longer than its declared " + std::to_string(f.declared) +
                              " bytes");
    }
    f.bytes += chunk.data();
  }
  if (ctx->IsCancelled()) {
    return {grpc::StatusCode::CANCELLED, "upload cancelled; nothing was stored"};
  }
  for (const auto& [kind, f] : files) {
    if (f.bytes.size() != f.declared) {
      return invalid_argument(std::string("upload incomplete: the ") + file_name(kind) +
                              " file has " + std::to_string(f.bytes.size()) + " of " +
                              std::to_string(f.declared) + " bytes; nothing was stored");
    }
    if (!f.sha256.empty() && storage::sha256_hex(f.bytes) != f.sha256) {
      return invalid_argument(std::string("the ") + file_name(kind) +
                              " file's sha256 differs from the declared one; nothing was stored");
    }
  }

  const std::string format = model_format(header.format(), files[v1::FILE_KIND_ONNX].bytes);
  if (format.empty()) {
    return invalid_argument(std::string("the model file was declared ") +
                            v1::ModelFormat_Name(header.format()) +
                            " but its bytes are not in that format (TFLite: identifier TFL3 at "
                            "offset 4); nothing was stored");
  }
  auto stored = db_.transact([&](pqxx::work& w) {
    storage::NewModelVersion v;
    v.model_format = format;
    v.model_name = header.model();
    v.version = static_cast<int32_t>(header.version());
    v.onnx_sha256 = storage::PgBlobStore::put(w, files[v1::FILE_KIND_ONNX].bytes);
    if (files.count(v1::FILE_KIND_CALIBRATION)) {
      v.calib_sha256 = storage::PgBlobStore::put(w, files[v1::FILE_KIND_CALIBRATION].bytes);
    }
    if (files.count(v1::FILE_KIND_VALIDATION)) {
      v.val_sha256 = storage::PgBlobStore::put(w, files[v1::FILE_KIND_VALIDATION].bytes);
    }
    v.target_classes.assign(header.target_classes().begin(), header.target_classes().end());
    if (!header.metadata_json().empty()) v.metadata_json = header.metadata_json();
    auto rec = storage::models::create_version(w, v);
    storage::audit_log::append(
        w, {caller.name, "version.create",
            "model/" + rec.model_name + "/versions/" + std::to_string(rec.version),
            nlohmann::json{{"onnx_sha256", rec.onnx_sha256}, {"model_format", rec.model_format}}
                .dump()});
    return rec;
  });
  if (!stored) return to_status(stored.error());
  convert::version(*stored, {}, out);
  log::info("version.created", {{"model", stored->model_name},
                                {"version", stored->version},
                                {"onnx_sha256", stored->onnx_sha256},
                                {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::GetVersion(grpc::ServerContext* ctx,
                                              const v1::GetVersionRequest* req,
                                              v1::ModelVersion* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "GetVersion", nullptr); !s.ok()) return s;
  auto r = db_.transact([&](pqxx::work& w) {
    auto v = storage::models::get_version(w, req->model(), static_cast<int32_t>(req->version()));
    return std::make_pair(v, storage::artifacts::list_for_version(w, v.id));
  });
  if (!r) return to_status(r.error());
  convert::version(r->first, r->second, out);
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::ListVersions(grpc::ServerContext* ctx,
                                                const v1::ListVersionsRequest* req,
                                                v1::ListVersionsResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListVersions", nullptr); !s.ok()) return s;
  const int page = req->page_size() == 0 ? 50 : static_cast<int>(std::min(req->page_size(), 500u));
  int32_t after = 0;
  if (!req->page_token().empty()) {
    try {
      size_t used = 0;
      after = std::stoi(req->page_token(), &used);
      if (used != req->page_token().size() || after < 0) throw std::invalid_argument("token");
    } catch (const std::exception&) {
      return invalid_argument("page_token '" + req->page_token() + "' is malformed");
    }
  }
  auto r = db_.transact([&](pqxx::work& w) {
    storage::models::get(w, req->model());  // kNotFound names the model
    std::vector<std::pair<storage::ModelVersionRecord, std::vector<storage::ArtifactRecord>>> rows;
    for (auto& v : storage::models::list_versions(w, req->model(), after, page + 1)) {
      auto a = storage::artifacts::list_for_version(w, v.id);
      rows.emplace_back(std::move(v), std::move(a));
    }
    return rows;
  });
  if (!r) return to_status(r.error());
  for (size_t i = 0; i < r->size() && i < static_cast<size_t>(page); ++i) {
    convert::version((*r)[i].first, (*r)[i].second, out->add_versions());
  }
  if (r->size() > static_cast<size_t>(page)) {
    out->set_next_page_token(std::to_string((*r)[page - 1].first.version));
  }
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::CompileVersion(grpc::ServerContext* ctx,
                                                  const v1::CompileVersionRequest* req,
                                                  v1::Operation* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CompileVersion", &caller); !s.ok()) {
    return s;
  }
  auto op = compiles_.submit(req->model(), static_cast<int32_t>(req->version()),
                             {req->device_classes().begin(), req->device_classes().end()});
  if (!op) return to_status(op.error());
  convert::operation(*op, out);
  log::info("compile.submitted",
            {{"operation", op->id}, {"object", op->object}, {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::WatchOperation(grpc::ServerContext* ctx,
                                                  const v1::WatchOperationRequest* req,
                                                  grpc::ServerWriter<v1::Operation>* writer) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "WatchOperation", nullptr); !s.ok()) return s;
  int64_t id = 0;
  try {
    size_t used = 0;
    id = std::stoll(req->id(), &used);
    if (used != req->id().size()) throw std::invalid_argument("id");
  } catch (const std::exception&) {
    return invalid_argument("operation id '" + req->id() + "' is malformed");
  }
  uint64_t seen = 0;
  std::string last;
  while (!ctx->IsCancelled()) {
    auto r = db_.transact([&](pqxx::work& w) {
      auto op = storage::operations::get(w, id);
      v1::Operation msg;
      convert::operation(op, &msg);
      const auto params = nlohmann::json::parse(op.params_json, nullptr, false);
      if (op.kind == "compile" && params.is_object() && params.contains("model")) {
        auto v = storage::models::find_version(w, params["model"].get<std::string>(),
                                               params["version"].get<int32_t>());
        if (v) {
          for (const auto& a : storage::artifacts::list_for_version(w, v->id)) {
            convert::artifact(a, msg.add_artifacts());
          }
        }
      }
      return msg;
    });
    if (!r) return to_status(r.error());
    const std::string now = r->SerializeAsString();
    if (now != last) {
      if (!writer->Write(*r)) return grpc::Status::OK;  // the client went away
      last = now;
    }
    if (r->state() == v1::OPERATION_STATE_SUCCEEDED || r->state() == v1::OPERATION_STATE_FAILED) {
      return grpc::Status::OK;
    }
    // Woken by a change in this process; the timeout covers other replicas.
    seen = compiles_.wait_for_change(seen, std::chrono::milliseconds(250));
  }
  return {grpc::StatusCode::CANCELLED, "the watch was cancelled"};
}

grpc::Status ModelRegistryService::DownloadArtifact(grpc::ServerContext* ctx,
                                                    const v1::DownloadArtifactRequest* req,
                                                    grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "DownloadArtifact", nullptr); !s.ok()) {
    return s;
  }
  const uint32_t chunk =
      req->chunk_size() == 0 ? 64 * 1024 : std::clamp(req->chunk_size(), 1024u, 1u << 20);
  auto r = db_.transact([&](pqxx::work& w) {
    auto v = storage::models::get_version(w, req->model(), static_cast<int32_t>(req->version()));
    auto a = storage::artifacts::find(w, v.id, req->device_class());
    const auto name = version_name(req->model(), req->version());
    if (!a) {
      storage::fail(storage::ErrorCode::kNotFound,
                    name + " has no artifact for device class '" + req->device_class() + "'");
    }
    if (a->status == storage::ArtifactStatus::kRefused) {
      storage::fail(storage::ErrorCode::kFailedPrecondition,
                    name + " was refused for device class '" + req->device_class() +
                        "': " + a->refusal_reason);
    }
    auto bytes = storage::PgBlobStore::get(w, *a->artifact_sha256);
    if (!bytes) storage::fail(storage::ErrorCode::kInternal, "artifact blob is missing");
    return std::make_pair(*a->artifact_sha256, std::move(*bytes));
  });
  if (!r) return to_status(r.error());
  const auto& [sha, bytes] = *r;
  for (size_t off = 0; off < bytes.size() || off == 0; off += chunk) {
    v1::ArtifactChunk msg;
    if (off == 0) {
      msg.set_sha256(sha);
      msg.set_size(bytes.size());
    }
    msg.set_offset(off);
    msg.set_data(bytes.substr(off, chunk));
    if (!writer->Write(msg)) return {grpc::StatusCode::CANCELLED, "the client went away"};
    if (bytes.empty()) break;
  }
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
