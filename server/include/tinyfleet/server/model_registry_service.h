#pragma once

#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/server/compile_orchestrator.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/v1/model_registry.grpc.pb.h"

namespace tinyfleet::server {

// tinyfleet.v1.ModelRegistry: translates between protobuf and storage; the compile
// work itself is the CompileOrchestrator's.
class ModelRegistryService final : public v1::ModelRegistry::Service {
 public:
  ModelRegistryService(storage::Database& db, const Authenticator& auth,
                       CompileOrchestrator& compiles, int64_t max_upload_bytes)
      : db_(db), auth_(auth), compiles_(compiles), max_upload_bytes_(max_upload_bytes) {}

  grpc::Status CreateModel(grpc::ServerContext* ctx, const v1::CreateModelRequest* req,
                           v1::Model* out) override;
  grpc::Status GetModel(grpc::ServerContext* ctx, const v1::GetModelRequest* req,
                        v1::Model* out) override;
  grpc::Status CreateVersion(grpc::ServerContext* ctx,
                             grpc::ServerReader<v1::CreateVersionRequest>* reader,
                             v1::ModelVersion* out) override;
  grpc::Status GetVersion(grpc::ServerContext* ctx, const v1::GetVersionRequest* req,
                          v1::ModelVersion* out) override;
  grpc::Status ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest* req,
                          v1::ListModelsResponse* out) override;
  grpc::Status ListVersions(grpc::ServerContext* ctx, const v1::ListVersionsRequest* req,
                            v1::ListVersionsResponse* out) override;
  grpc::Status CompileVersion(grpc::ServerContext* ctx, const v1::CompileVersionRequest* req,
                              v1::Operation* out) override;
  grpc::Status WatchOperation(grpc::ServerContext* ctx, const v1::WatchOperationRequest* req,
                              grpc::ServerWriter<v1::Operation>* writer) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
                                grpc::ServerWriter<v1::ArtifactChunk>* writer) override;

 private:
  storage::Database& db_;
  const Authenticator& auth_;
  CompileOrchestrator& compiles_;
  int64_t max_upload_bytes_;
};

}  // namespace tinyfleet::server
