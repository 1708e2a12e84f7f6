// ModelRegistry and Admin over real gRPC against a real fleetd and PostgreSQL.
#include <gtest/gtest.h>

#include "fleetd_fixture.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::testing {
namespace {

class Models : public FleetdTest {
 protected:
  void SetUp() override {
    FleetdTest::SetUp();
    ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
      storage::device_classes::upsert(
          w,
          {"cortex-m4-256k", R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000})"});
      return storage::Done{};
    }));
    onnx_ = read_fixture("models/digits_cnn.onnx");
    ASSERT_GT(onnx_.size(), 1000u);
  }

  grpc::Status create_model(const std::string& token, const std::string& name) {
    v1::CreateModelRequest req;
    req.set_name(name);
    req.set_description("handwritten digits");
    v1::Model out;
    return models_->CreateModel(context_with_token(token).get(), req, &out);
  }

  std::string onnx_;
};

TEST_F(Models, AuthorizationMatrix) {
  const auto viewer = make_token("viewer-1", v1::ROLE_VIEWER);
  const auto op = make_token("operator-1", v1::ROLE_OPERATOR);

  auto none = create_model("", "digits");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(none.error_message().find("needs a token"), std::string::npos);

  auto wrong = create_model("tf_not_a_real_token", "digits");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  auto viewer_writes = create_model(viewer, "digits");
  EXPECT_EQ(viewer_writes.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(viewer_writes.error_message().find("needs role operator"), std::string::npos);

  v1::CreateTokenRequest req;
  req.set_name("sneaky");
  req.set_role(v1::ROLE_ADMIN);
  v1::CreateTokenResponse resp;
  auto op_tokens = admin_api_->CreateToken(context_with_token(op).get(), req, &resp);
  EXPECT_EQ(op_tokens.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  EXPECT_TRUE(create_model(op, "digits").ok());
  v1::GetModelRequest get;
  get.set_name("digits");
  v1::Model model;
  EXPECT_TRUE(models_->GetModel(context_with_token(viewer).get(), get, &model).ok());
  EXPECT_EQ(model.description(), "handwritten digits");

  // A revoked token stops working at once.
  v1::RevokeTokenRequest revoke;
  revoke.set_name("viewer-1");
  v1::Token revoked;
  ASSERT_TRUE(admin_api_->RevokeToken(context_with_token(admin_).get(), revoke, &revoked).ok());
  EXPECT_TRUE(revoked.revoked());
  EXPECT_EQ(models_->GetModel(context_with_token(viewer).get(), get, &model).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(count_rows("api_tokens"), 3);  // bootstrap admin, viewer, operator; no "sneaky"
}

TEST_F(Models, UploadStoresTheBytesAndListsVersionsInPages) {
  ASSERT_TRUE(create_model(admin_, "digits").ok());
  v1::ModelVersion v1_;
  auto s = upload(admin_, "digits", onnx_, {"cortex-m4-256k"}, &v1_);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(v1_.version(), 1u);
  EXPECT_EQ(v1_.onnx_sha256(), storage::sha256_hex(onnx_));
  ASSERT_EQ(v1_.artifacts_size(), 1);
  EXPECT_EQ(v1_.artifacts(0).status(), v1::ARTIFACT_STATUS_PENDING);

  // The stored blob is the uploaded file, byte for byte.
  auto stored = storage::PgBlobStore(scratch_.db()).get(v1_.onnx_sha256());
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored, onnx_);

  for (int i = 0; i < 4; ++i) {
    v1::ModelVersion v;
    ASSERT_TRUE(upload(admin_, "digits", onnx_ + std::string(i + 1, ' '), {}, &v).ok());
  }
  std::vector<uint32_t> seen;
  std::string token;
  do {
    v1::ListVersionsRequest req;
    req.set_model("digits");
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListVersionsResponse resp;
    ASSERT_TRUE(models_->ListVersions(context_with_token(admin_).get(), req, &resp).ok());
    for (const auto& v : resp.versions()) seen.push_back(v.version());
    token = resp.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(seen, (std::vector<uint32_t>{1, 2, 3, 4, 5}));
}

TEST_F(Models, BadRequestsAreNamedAndStoreNothing) {
  ASSERT_TRUE(create_model(admin_, "digits").ok());
  v1::ModelVersion out;
  ASSERT_TRUE(upload(admin_, "digits", onnx_, {}, &out).ok());
  const auto versions = count_rows("model_versions");
  const auto blobs = count_rows("blobs");

  auto unknown_model = upload(admin_, "nope", onnx_, {}, &out);
  EXPECT_EQ(unknown_model.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown_model.error_message().find("'nope'"), std::string::npos);

  auto duplicate = upload(admin_, "digits", onnx_ + "x", {}, &out, -1, false, 1);
  EXPECT_EQ(duplicate.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  auto unknown_class = upload(admin_, "digits", onnx_ + "y", {"cortex-m9"}, &out);
  EXPECT_EQ(unknown_class.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown_class.error_message().find("cortex-m9"), std::string::npos);

  auto bad_name = create_model(admin_, "Bad Name!");
  EXPECT_EQ(bad_name.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad_name.error_message().find("'Bad Name!'"), std::string::npos);
  EXPECT_EQ(create_model(admin_, "digits").error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // Cut off halfway: closed early, and cancelled.
  auto closed = upload(admin_, "digits", onnx_ + "z", {}, &out, 3000);
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(closed.error_message().find("upload incomplete"), std::string::npos);
  auto cancelled = upload(admin_, "digits", onnx_ + "w", {}, &out, 3000, true);
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::CANCELLED);

  v1::GetVersionRequest get;
  get.set_model("digits");
  get.set_version(7);
  v1::ModelVersion missing;
  auto not_there = models_->GetVersion(context_with_token(admin_).get(), get, &missing);
  EXPECT_EQ(not_there.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(not_there.error_message().find("has no version 7"), std::string::npos);

  v1::ListVersionsRequest list;
  list.set_model("digits");
  list.set_page_token("seven");
  v1::ListVersionsResponse page;
  EXPECT_EQ(models_->ListVersions(context_with_token(admin_).get(), list, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(count_rows("model_versions"), versions);
  EXPECT_EQ(count_rows("blobs"), blobs);
}

TEST_F(Models, DownloadStreamsTheStoredArtifact) {
  ASSERT_TRUE(create_model(admin_, "digits").ok());
  v1::ModelVersion v;
  ASSERT_TRUE(upload(admin_, "digits", onnx_, {"cortex-m4-256k"}, &v).ok());
  // An artifact as the compile step stores it (the compiler itself is tested in
  // optimizer_service/); 200 KB so the download spans several chunks.
  std::string artifact(200 * 1024, '\0');
  for (size_t i = 0; i < artifact.size(); ++i) artifact[i] = static_cast<char>(i * 131 + 7);
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    auto ver = storage::models::get_version(w, "digits", 1);
    storage::NewArtifact a;
    a.version_id = ver.id;
    a.device_class = "cortex-m4-256k";
    a.artifact_sha256 = storage::PgBlobStore::put(w, artifact);
    storage::artifacts::store(w, a);
    return storage::Done{};
  }));

  v1::DownloadArtifactRequest req;
  req.set_model("digits");
  req.set_version(1);
  req.set_device_class("cortex-m4-256k");
  req.set_chunk_size(64 * 1024);
  auto ctx = context_with_token(admin_);
  auto reader = models_->DownloadArtifact(ctx.get(), req);
  v1::ArtifactChunk chunk;
  std::string got, sha;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    if (chunks++ == 0) sha = chunk.sha256();
    EXPECT_EQ(chunk.offset(), got.size());
    got += chunk.data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(chunks, 4);
  EXPECT_EQ(got, artifact);
  EXPECT_EQ(storage::sha256_hex(got), sha);

  req.set_device_class("cortex-m7-512k");
  auto ctx2 = context_with_token(admin_);
  auto none = models_->DownloadArtifact(ctx2.get(), req);
  while (none->Read(&chunk)) {
  }
  auto status = none->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("cortex-m7-512k"), std::string::npos);
}

// fleetd set to compile remotely but given no worker address.
class NoCompiler : public Models {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"compile.mode", "remote"}};
  }
};

TEST_F(NoCompiler, CompileFailsNamingTheSetting) {
  ASSERT_TRUE(create_model(admin_, "digits").ok());
  v1::ModelVersion v;
  ASSERT_TRUE(upload(admin_, "digits", onnx_, {"cortex-m4-256k"}, &v).ok());

  v1::CompileVersionRequest req;
  req.set_model("digits");
  req.set_version(1);
  req.add_device_classes("esp32s3-512k");
  v1::Operation op;
  auto unknown = models_->CompileVersion(context_with_token(admin_).get(), req, &op);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);

  req.clear_device_classes();
  ASSERT_TRUE(models_->CompileVersion(context_with_token(admin_).get(), req, &op).ok());
  EXPECT_EQ(op.total(), 1u);
  v1::WatchOperationRequest watch;
  watch.set_id(op.id());
  auto ctx = context_with_token(admin_);
  auto reader = models_->WatchOperation(ctx.get(), watch);
  v1::Operation last;
  while (reader->Read(&last)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.state(), v1::OPERATION_STATE_FAILED);
  EXPECT_NE(last.message().find("compile.optimizer_address"), std::string::npos);
  EXPECT_EQ(count_rows("artifacts"), 0);
}

}  // namespace
}  // namespace tinyfleet::testing
