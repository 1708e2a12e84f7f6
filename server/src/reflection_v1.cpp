#include "reflection_v1.h"

#include <set>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

namespace tinyfleet::server {

namespace {

namespace pb = google::protobuf;
namespace v1 = grpc::reflection::v1;

// The file and every file it imports, each once, dependencies first (what clients need
// to build the descriptors).
void add_with_dependencies(const pb::FileDescriptor* file, std::set<std::string>* seen,
                           v1::FileDescriptorResponse* out) {
  if (!file || !seen->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    add_with_dependencies(file->dependency(i), seen, out);
  }
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
}

void error(v1::ServerReflectionResponse* r, grpc::StatusCode code, const std::string& what) {
  r->mutable_error_response()->set_error_code(static_cast<int32_t>(code));
  r->mutable_error_response()->set_error_message(what);
}

}  // namespace

v1::ServerReflectionResponse ReflectionV1::answer(const v1::ServerReflectionRequest& req) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  v1::ServerReflectionResponse r;
  r.set_valid_host(req.host());
  *r.mutable_original_request() = req;
  std::set<std::string> seen;
  switch (req.message_request_case()) {
    case v1::ServerReflectionRequest::kListServices:
      for (const auto& s : services_)
        r.mutable_list_services_response()->add_service()->set_name(s);
      break;
    case v1::ServerReflectionRequest::kFileByFilename: {
      const auto* file = pool->FindFileByName(req.file_by_filename());
      if (!file) {
        error(&r, grpc::StatusCode::NOT_FOUND, "file '" + req.file_by_filename() + "' not found");
      } else {
        add_with_dependencies(file, &seen, r.mutable_file_descriptor_response());
      }
      break;
    }
    case v1::ServerReflectionRequest::kFileContainingSymbol: {
      const auto* file = pool->FindFileContainingSymbol(req.file_containing_symbol());
      if (!file) {
        error(&r, grpc::StatusCode::NOT_FOUND,
              "symbol '" + req.file_containing_symbol() + "' not found");
      } else {
        add_with_dependencies(file, &seen, r.mutable_file_descriptor_response());
      }
      break;
    }
    case v1::ServerReflectionRequest::kFileContainingExtension: {
      const auto& e = req.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(e.containing_type());
      const auto* ext = type ? pool->FindExtensionByNumber(type, e.extension_number()) : nullptr;
      if (!ext) {
        error(&r, grpc::StatusCode::NOT_FOUND, "extension not found");
      } else {
        add_with_dependencies(ext->file(), &seen, r.mutable_file_descriptor_response());
      }
      break;
    }
    case v1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type = pool->FindMessageTypeByName(req.all_extension_numbers_of_type());
      if (!type) {
        error(&r, grpc::StatusCode::NOT_FOUND,
              "type '" + req.all_extension_numbers_of_type() + "' not found");
        break;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* out = r.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* f : extensions) out->add_extension_number(f->number());
      break;
    }
    default:
      error(&r, grpc::StatusCode::INVALID_ARGUMENT, "the request names no question");
  }
  return r;
}

grpc::Status ReflectionV1::ServerReflectionInfo(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<v1::ServerReflectionResponse, v1::ServerReflectionRequest>* stream) {
  v1::ServerReflectionRequest req;
  while (stream->Read(&req)) {
    if (!stream->Write(answer(req))) break;
  }
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
