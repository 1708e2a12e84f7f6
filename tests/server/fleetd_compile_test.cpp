// Register, upload, compile in fleetd's process, download: the artifact that comes
// back is the stored one (sha256) and runs on the kernels' runtime; a class it does not
// fit and a broken model are stored as refusals with their reasons.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "fleetd_fixture.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/optimizer_grpc_service.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/v1/optimizer.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

class Compiling : public FleetdTest {
 protected:
  void create_class(const std::string& name, const std::string& spec) {
    v1::DeviceClass req, out;
    req.set_name(name);
    req.set_spec_json(spec);
    auto s = devices_->CreateDeviceClass(context_with_token(admin_).get(), req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // The classes `cortex-m4-256k` (`m4_spec`) and `tiny-2k` (512 B of RAM: nothing fits)
  // and the model "digits" made; `onnx` uploaded and compiled: the finished operation.
  void compile_for_two_classes(const std::string& onnx, v1::Operation* op,
                               const std::string& m4_spec = kM4Spec,
                               v1::ModelVersion* uploaded = nullptr) {
    ASSERT_NO_FATAL_FAILURE(create_class("cortex-m4-256k", m4_spec));
    ASSERT_NO_FATAL_FAILURE(create_class(
        "tiny-2k", R"({"ram_bytes": 512, "flash_bytes": 65536, "clock_hz": 16000000})"));
    v1::CreateModelRequest cm;
    cm.set_name("digits");
    v1::Model model;
    ASSERT_TRUE(models_->CreateModel(context_with_token(admin_).get(), cm, &model).ok());
    v1::ModelVersion version;
    const auto up = upload_all(onnx, &version);
    ASSERT_TRUE(up.ok()) << up.error_message();
    *op = compile_and_wait(version.version());
    if (uploaded) *uploaded = version;
  }
  static constexpr const char* kM4Spec =
      R"({"ram_bytes": 262144, "flash_bytes": 1048576, "clock_hz": 80000000})";

  // Uploads ONNX + calibration + validation files.
  grpc::Status upload_all(const std::string& onnx, v1::ModelVersion* out) {
    const std::string calib = read_fixture("data/digits_calib.npz");
    const std::string val = read_fixture("data/digits_val.npz");
    auto ctx = context_with_token(admin_);
    auto writer = models_->CreateVersion(ctx.get(), out);
    v1::CreateVersionRequest header;
    auto* h = header.mutable_header();
    h->set_model("digits");
    h->add_target_classes("cortex-m4-256k");
    h->add_target_classes("tiny-2k");
    const std::pair<v1::FileKind, const std::string*> files[] = {
        {v1::FILE_KIND_ONNX, &onnx},
        {v1::FILE_KIND_CALIBRATION, &calib},
        {v1::FILE_KIND_VALIDATION, &val}};
    for (const auto& [kind, bytes] : files) {
      auto* f = h->add_files();
      f->set_kind(kind);
      f->set_size(bytes->size());
      f->set_sha256(storage::sha256_hex(*bytes));
    }
    writer->Write(header);
    for (const auto& [kind, bytes] : files) {
      for (size_t off = 0; off < bytes->size(); off += 16384) {
        v1::CreateVersionRequest part;
        part.mutable_chunk()->set_kind(kind);
        part.mutable_chunk()->set_offset(off);
        part.mutable_chunk()->set_data(bytes->substr(off, 16384));
        writer->Write(part);
      }
    }
    writer->WritesDone();
    return writer->Finish();
  }
};

TEST_F(Compiling, RegisterUploadCompileDownload) {
  std::ifstream catalog(TINYFLEET_DEVICE_CLASS_CATALOG);
  const auto classes = nlohmann::json::parse(catalog);
  v1::Operation op;
  v1::ModelVersion version;
  ASSERT_NO_FATAL_FAILURE(compile_for_two_classes(read_fixture("models/digits_cnn.onnx"), &op,
                                                  classes.at("cortex-m4-256k").dump(), &version));
  ASSERT_EQ(op.state(), v1::OPERATION_STATE_SUCCEEDED) << op.message() << "\n" << fleetd_->log();
  EXPECT_EQ(op.done(), 2u);
  EXPECT_EQ(op.message(), "1 compiled, 1 refused");

  v1::GetVersionRequest get;
  get.set_model("digits");
  get.set_version(version.version());
  v1::ModelVersion got;
  ASSERT_TRUE(models_->GetVersion(context_with_token(admin_).get(), get, &got).ok());
  ASSERT_EQ(got.artifacts_size(), 2);
  const auto& m4 =
      got.artifacts(0).device_class() == "cortex-m4-256k" ? got.artifacts(0) : got.artifacts(1);
  const auto& tiny =
      got.artifacts(0).device_class() == "tiny-2k" ? got.artifacts(0) : got.artifacts(1);
  ASSERT_EQ(m4.status(), v1::ARTIFACT_STATUS_COMPILED) << m4.refusal_reason();
  ASSERT_EQ(tiny.status(), v1::ARTIFACT_STATUS_REFUSED);
  EXPECT_NE(tiny.refusal_reason().find("does not fit tiny-2k"), std::string::npos)
      << tiny.refusal_reason();
  EXPECT_NE(tiny.refusal_reason().find("exceeds RAM 512 B"), std::string::npos)
      << tiny.refusal_reason();
  const auto report = nlohmann::json::parse(m4.report_json());
  const double drop = report.at("validation").at("drop").get<double>();
  EXPECT_LE(drop, 1.0);
  EXPECT_GT(report.at("latency_ms").get<double>(), 0.0);

  v1::DownloadArtifactRequest dl;
  dl.set_model("digits");
  dl.set_version(version.version());
  dl.set_device_class("cortex-m4-256k");
  auto ctx = context_with_token(admin_);
  auto reader = models_->DownloadArtifact(ctx.get(), dl);
  v1::ArtifactChunk chunk;
  std::string bytes;
  while (reader->Read(&chunk)) bytes += chunk.data();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(storage::sha256_hex(bytes), m4.sha256());
  EXPECT_EQ(bytes.size(), m4.size());
  // And it is a model the runtime accepts.
  std::vector<uint8_t> aligned(bytes.size() + 16);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                       ~uintptr_t{15});
  std::memcpy(a, bytes.data(), bytes.size());
  kernels::Interpreter interp;
  EXPECT_EQ(interp.load(a, bytes.size()).status, kernels::LoadStatus::kOk);
}

TEST_F(Compiling, ABrokenModelIsStoredAsARefusal) {
  ASSERT_NO_FATAL_FAILURE(create_class(
      "cortex-m4-256k", R"({"ram_bytes": 262144, "flash_bytes": 1048576, "clock_hz": 80000000})"));
  ASSERT_NO_FATAL_FAILURE(
      create_class("tiny-2k", R"({"ram_bytes": 512, "flash_bytes": 65536, "clock_hz": 16000000})"));
  v1::CreateModelRequest cm;
  cm.set_name("digits");
  v1::Model model;
  ASSERT_TRUE(models_->CreateModel(context_with_token(admin_).get(), cm, &model).ok());
  std::string broken = read_fixture("models/digits_cnn.onnx");
  broken.resize(broken.size() / 2);
  v1::ModelVersion version;
  ASSERT_TRUE(upload_all(broken, &version).ok());
  const auto op = compile_and_wait(version.version());
  ASSERT_EQ(op.state(), v1::OPERATION_STATE_SUCCEEDED) << op.message();
  EXPECT_EQ(op.message(), "0 compiled, 2 refused");
  ASSERT_EQ(op.artifacts_size(), 2);
  EXPECT_NE(op.artifacts(0).refusal_reason().find("not an ONNX model"), std::string::npos)
      << op.artifacts(0).refusal_reason();
  EXPECT_EQ(count_rows("model_versions"), 1);  // the version itself stays
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The same with compiles sent to an Optimizer worker over gRPC, with mutual TLS as
// tinyfleet-optimizer serves it: the worker shows the stack's server certificate (or
// `worker_cert`'s) and serves only clients with a certificate from the stack's CA;
// fleetd pins that CA and shows its client certificate.
class RemoteCompiling : public Compiling {
 protected:
  void SetUp() override {
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = read_text(require_env("TINYFLEET_TLS_CA"));
    tls.pem_key_cert_pairs.push_back(
        {read_text(require_env(worker_key())), read_text(require_env(worker_cert()))});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(tls), &worker_port_);
    builder.SetMaxReceiveMessageSize(64 << 20);
    builder.RegisterService(&worker_);
    worker_server_ = builder.BuildAndStart();
    ASSERT_GT(worker_port_, 0);
    Compiling::SetUp();
  }
  void TearDown() override { worker_server_->Shutdown(); }
  virtual const char* worker_cert() { return "TINYFLEET_TLS_CERT"; }
  virtual const char* worker_key() { return "TINYFLEET_TLS_KEY"; }
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"compile.mode", "remote"},
            {"compile.optimizer_address", "127.0.0.1:" + std::to_string(worker_port_)},
            {"compile.optimizer_ca_file", require_env("TINYFLEET_TLS_CA")},
            {"compile.optimizer_cert_file", require_env("TINYFLEET_TLS_CLIENT_CERT")},
            {"compile.optimizer_key_file", require_env("TINYFLEET_TLS_CLIENT_KEY")}};
  }
  // A Compile call to the worker with `credentials`: its status.
  grpc::Status call_worker(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto stub = v1::Optimizer::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(worker_port_), credentials));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CompileRequest request;
    v1::CompileResponse response;
    return stub->Compile(&ctx, request, &response);
  }
  optimizer_service::OptimizerGrpcService worker_;
  std::unique_ptr<grpc::Server> worker_server_;
  int worker_port_ = 0;
};

// Only a client with a certificate from the stack's CA is served: not plaintext, not TLS
// without a client certificate, not one with a certificate no CA vouches for.
TEST_F(RemoteCompiling, TheWorkerRefusesUnauthenticatedClients) {
  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = read_text(require_env("TINYFLEET_TLS_CA"));
  grpc::SslCredentialsOptions rogue = anonymous;
  rogue.pem_cert_chain = read_text(require_env("TINYFLEET_TLS_ROGUE_CERT"));
  rogue.pem_private_key = read_text(require_env("TINYFLEET_TLS_ROGUE_KEY"));
  grpc::SslCredentialsOptions fleetd = anonymous;
  fleetd.pem_cert_chain = read_text(require_env("TINYFLEET_TLS_CLIENT_CERT"));
  fleetd.pem_private_key = read_text(require_env("TINYFLEET_TLS_CLIENT_KEY"));

  EXPECT_EQ(call_worker(grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(call_worker(grpc::SslCredentials(anonymous)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(call_worker(grpc::SslCredentials(rogue)).error_code(), grpc::StatusCode::UNAVAILABLE);
  // fleetd's certificate gets an answer (an empty request is not a model).
  const auto served = call_worker(grpc::SslCredentials(fleetd));
  EXPECT_NE(served.error_code(), grpc::StatusCode::UNAVAILABLE) << served.error_message();
}

// A worker whose certificate the stack's CA did not issue (someone else on the network
// answering at the worker's address): fleetd sends it nothing, and the compile fails.
class RogueWorker : public RemoteCompiling {
 protected:
  const char* worker_cert() override { return "TINYFLEET_TLS_ROGUE_CERT"; }
  const char* worker_key() override { return "TINYFLEET_TLS_ROGUE_KEY"; }
};

TEST_F(RogueWorker, FleetdRefusesAWorkerItsCaDidNotCertify) {
  v1::Operation op;
  ASSERT_NO_FATAL_FAILURE(compile_for_two_classes(read_fixture("models/digits_dscnn.onnx"), &op));
  EXPECT_EQ(op.state(), v1::OPERATION_STATE_FAILED) << op.message();
  EXPECT_NE(op.message().find("optimizer service failed"), std::string::npos) << op.message();
  EXPECT_EQ(count_rows("artifacts"), 0);
}

TEST_F(RemoteCompiling, AWorkerCompilesForFleetd) {
  v1::Operation op;
  ASSERT_NO_FATAL_FAILURE(compile_for_two_classes(read_fixture("models/digits_dscnn.onnx"), &op));
  ASSERT_EQ(op.state(), v1::OPERATION_STATE_SUCCEEDED) << op.message() << "\n" << fleetd_->log();
  EXPECT_EQ(op.message(), "1 compiled, 1 refused");
  bool saw_refusal = false;
  for (const auto& a : op.artifacts()) {
    if (a.device_class() == "tiny-2k") {
      saw_refusal = true;
      EXPECT_NE(a.refusal_reason().find("does not fit tiny-2k"), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_refusal);
  // The worker's typed outputs crossed the wire and were stored with the artifact.
  auto stored = scratch_.db().transact([](pqxx::work& w) {
    const auto r =
        w.exec("SELECT a.id, a.device_class FROM artifacts a WHERE a.status = 'compiled'");
    EXPECT_EQ(r.size(), 1u);
    return storage::artifacts::outputs(w, r[0][0].as<int64_t>());
  });
  ASSERT_TRUE(stored) << stored.error().message;
  ASSERT_TRUE(stored->has_value());
  const auto& o = **stored;
  EXPECT_EQ(o.self_tests.size(), 2u);
  EXPECT_EQ(o.class_histogram.size(), 10u);
  EXPECT_GT(o.modelled_cycles, 0);
  EXPECT_GT(o.arena_bytes, 0);
  EXPECT_FALSE(o.buffers.empty());
  for (const auto& b : o.buffers) EXPECT_LE(b.offset + b.size, o.arena_bytes) << b.tensor;
}

}  // namespace
}  // namespace tinyfleet::testing
