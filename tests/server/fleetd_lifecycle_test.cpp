// fleetd as a process: restarts keep everything, SIGTERM is graceful, TLS and the
// health service work.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/generic/generic_stub.h>
#include <nlohmann/json.hpp>

#include "fleetd_fixture.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Lifecycle : public FleetdTest {};

TEST_F(Lifecycle, KilledAndRestartedKeepsEverything) {
  v1::DeviceClass cls, cls_out;
  cls.set_name("cortex-m4-256k");
  cls.set_spec_json(R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000})");
  ASSERT_TRUE(devices_->CreateDeviceClass(context_with_token(admin_).get(), cls, &cls_out).ok());
  v1::CreateModelRequest req;
  req.set_name("digits");
  v1::Model model;
  ASSERT_TRUE(models_->CreateModel(context_with_token(admin_).get(), req, &model).ok());
  const auto onnx = read_fixture("models/digits_cnn.onnx");
  v1::ModelVersion version;
  ASSERT_TRUE(upload(admin_, "digits", onnx, {"cortex-m4-256k"}, &version).ok());
  const auto viewer = make_token("viewer", v1::ROLE_VIEWER);
  // A device and a refused compile as provisioning and the compile step store them.
  ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
    storage::devices::create(w, {"dev-1", "default", "cortex-m4-256k", {"lab"}, "hash"});
    storage::NewArtifact a;
    a.version_id = storage::models::get_version(w, "digits", 1).id;
    a.device_class = "cortex-m4-256k";
    a.status = storage::ArtifactStatus::kRefused;
    a.refusal_reason = "arena 300000 B + runtime 12000 B > RAM 262144 B";
    storage::artifacts::store(w, a);
    return storage::Done{};
  }));

  fleetd_->kill_hard();
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  connect();

  v1::GetVersionRequest get;
  get.set_model("digits");
  get.set_version(1);
  v1::ModelVersion again;
  auto s = models_->GetVersion(context_with_token(viewer).get(), get, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.onnx_sha256(), version.onnx_sha256());
  ASSERT_EQ(again.artifacts_size(), 1);
  EXPECT_EQ(again.artifacts(0).status(), v1::ARTIFACT_STATUS_REFUSED);
  EXPECT_EQ(again.artifacts(0).refusal_reason(), "arena 300000 B + runtime 12000 B > RAM 262144 B");
  v1::GetDeviceRequest dev;
  dev.set_id("dev-1");
  v1::Device device;
  ASSERT_TRUE(devices_->GetDevice(context_with_token(viewer).get(), dev, &device).ok());
  EXPECT_EQ(device.device_class(), "cortex-m4-256k");
  EXPECT_EQ(count_rows("api_tokens"), 2);  // the bootstrap admin was not made twice
}

TEST_F(Lifecycle, SigtermShutsDownCleanly) {
  EXPECT_EQ(fleetd_->terminate(), 0);
  const auto log = fleetd_->log();
  EXPECT_NE(log.find("\"event\":\"fleetd.shutdown\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"fleetd.stopped\""), std::string::npos) << log;
}

// Every line fleetd wrote is one JSON object (gRPC's own lines included).
void expect_json_lines(const std::string& log) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("event")) << "not a JSON log line: " << line;
  }
}

TEST_F(Lifecycle, ASecondFleetdOnTheTakenPortFailsInsteadOfSharingIt) {
  const auto r = run_command(std::string(TINYFLEET_FLEETD_PATH) +
                             " --listen=127.0.0.1:" + std::to_string(fleetd_->port()) +
                             " --database.uri='" + scratch_.uri() + "' 2>&1");
  EXPECT_EQ(r.exit, 1) << r.out;
  EXPECT_NE(r.out.find("cannot listen on 127.0.0.1:" + std::to_string(fleetd_->port())),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"event\":\"grpc\""), std::string::npos) << r.out;  // bind's error
  expect_json_lines(r.out);
  // The first fleetd still answers on it.
  v1::ListDeviceClassesResponse classes;
  EXPECT_TRUE(devices_->ListDeviceClasses(context_with_token(admin_).get(), {}, &classes).ok());
}

TEST_F(Lifecycle, RefusedCallsAreLoggedWithMethodAndReason) {
  const std::string viewer = make_token("looker", v1::ROLE_VIEWER);
  v1::CreateModelRequest req;
  req.set_name("m");
  v1::Model out;
  EXPECT_EQ(models_->CreateModel(context_with_token(viewer).get(), req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(models_->CreateModel(context_with_token("tf_wrong").get(), req, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const std::string log = fleetd_->log();
  EXPECT_NE(
      log.find(
          R"("code":"PERMISSION_DENIED","event":"auth.denied","level":"warn","method":"CreateModel")"),
      std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("token":"looker")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("reason":"the token is unknown or revoked")"), std::string::npos) << log;
  expect_json_lines(log);
}

TEST(FleetdHelp, ListsEverySettingAndExitsZero) {
  const auto r = run_command(std::string(TINYFLEET_FLEETD_PATH) + " --help");
  EXPECT_EQ(r.exit, 0);
  EXPECT_NE(r.out.find("--database.uri"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--listen (default 127.0.0.1:7443)"), std::string::npos) << r.out;
  const auto bad = run_command(std::string(TINYFLEET_FLEETD_PATH) + " --no.such=1 2>&1");
  EXPECT_EQ(bad.exit, 2);
  EXPECT_NE(bad.out.find("unknown setting 'no.such'"), std::string::npos) << bad.out;
}

TEST_F(Lifecycle, HealthServiceAnswersServing) {
  auto channel = fleetd_->channel();
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest.
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1);
  grpc::ByteBuffer resp;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status: SERVING (1)} is the two bytes 08 01.
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(Lifecycle, ReflectionListsTheServices) {
  // grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo, bidirectional, with a
  // hand-encoded ServerReflectionRequest{list_services: "*"} (field 7).
  grpc::GenericStub stub(fleetd_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int want) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(want));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  const std::string request("\x3a\x01*", 3);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  for (const char* service : {"tinyfleet.v1.ModelRegistry", "tinyfleet.v1.DeviceRegistry",
                              "tinyfleet.v1.Admin", "grpc.health.v1.Health"}) {
    EXPECT_NE(bytes.find(service), std::string::npos) << service;
  }
}

TEST_F(Lifecycle, ReflectionV1DescribesEveryServiceCompletely) {
  namespace r1 = grpc::reflection::v1;
  auto stub = r1::ServerReflection::NewStub(fleetd_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  auto ask = [&](const r1::ServerReflectionRequest& q) {
    r1::ServerReflectionResponse a;
    EXPECT_TRUE(stream->Write(q));
    EXPECT_TRUE(stream->Read(&a));
    return a;
  };
  r1::ServerReflectionRequest q;
  q.set_list_services("");
  auto a = ask(q);
  std::set<std::string> services;
  for (const auto& s : a.list_services_response().service()) services.insert(s.name());
  for (const char* s : {"tinyfleet.v1.Rollouts", "tinyfleet.v1.Telemetry", "tinyfleet.v1.Admin",
                        "grpc.reflection.v1.ServerReflection"}) {
    EXPECT_TRUE(services.count(s)) << s;
  }
  // Every service's file, with its imports, builds a pool in which its methods resolve.
  google::protobuf::DescriptorPool pool;
  for (const auto& name : services) {
    if (name.rfind("tinyfleet.", 0) != 0) continue;
    q.set_file_containing_symbol(name);
    a = ask(q);
    ASSERT_TRUE(a.has_file_descriptor_response()) << name << ": " << a.DebugString();
    for (const auto& bytes : a.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      if (!pool.FindFileByName(file.name())) {
        ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
      }
    }
    ASSERT_NE(pool.FindServiceByName(name), nullptr) << name;
  }
  EXPECT_NE(pool.FindMethodByName("tinyfleet.v1.Rollouts.CreateRollout"), nullptr);
  EXPECT_NE(pool.FindMessageTypeByName("tinyfleet.v1.CreateRolloutRequest"), nullptr);
  q.set_file_containing_symbol("tinyfleet.v1.NoSuchThing");
  a = ask(q);
  EXPECT_EQ(a.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

class Tls : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"tls.cert_file", require_env("TINYFLEET_TLS_CERT")},
            {"tls.key_file", require_env("TINYFLEET_TLS_KEY")}};
  }
};

TEST_F(Tls, ClientsTrustingTheCaGetIn) {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = read_text(require_env("TINYFLEET_TLS_CA"));
  auto channel = grpc::CreateChannel("localhost:" + std::to_string(fleetd_->port()),
                                     grpc::SslCredentials(opts));
  auto admin = v1::Admin::NewStub(channel);
  v1::ListTokensRequest req;
  v1::ListTokensResponse resp;
  auto s = admin->ListTokens(context_with_token(admin_).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.tokens_size(), 1);

  // Plaintext is not answered.
  auto plain = v1::Admin::NewStub(fleetd_->channel());
  auto ctx = context_with_token(admin_);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  EXPECT_FALSE(plain->ListTokens(ctx.get(), req, &resp).ok());
}

// Plaintext on every address needs insecure=true; with it, fleetd serves (here reached
// over loopback). Without it fleetd exits naming the setting (config_test has the cases).
class InsecureOnEveryAddress : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"listen", "0.0.0.0:0"}, {"insecure", "true"}};
  }
};

TEST_F(InsecureOnEveryAddress, ServesOnlyWithTheInsecureSetting) {
  v1::ListTokensRequest req;
  v1::ListTokensResponse resp;
  auto s = admin_api_->ListTokens(context_with_token(admin_).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(fleetd_->log().find("\"listen\":\"0.0.0.0:0\""), std::string::npos);

  const auto refused = run_command(
      std::string(TINYFLEET_FLEETD_PATH) +
      " --listen=0.0.0.0:0 --metrics.listen= --database.uri=" + scratch_.uri() + " 2>&1");
  EXPECT_EQ(refused.exit, 2) << refused.out;
  EXPECT_NE(refused.out.find("listen 0.0.0.0:0 is not a loopback address"), std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find("insecure=true"), std::string::npos) << refused.out;
}

// fleetd pins mqtt.ca_file: the fixture's fleetd reached the broker over TLS; one given
// another CA refuses the broker's certificate and does not start.
class BrokerCa : public FleetdUpdatesTest {};

TEST_F(BrokerCa, FleetdRefusesABrokerItsCaDidNotCertify) {
  auto settings = update_settings();
  settings["mqtt.ca_file"] = require_env("TINYFLEET_TLS_ROGUE_CERT");
  std::string command = std::string(TINYFLEET_FLEETD_PATH) +
                        " --listen=127.0.0.1:0 --metrics.listen= --database.uri=" + scratch_.uri();
  for (const auto& [k, v] : settings) command += " '--" + k + "=" + v + "'";
  const auto refused = run_command(command + " 2>&1");
  EXPECT_EQ(refused.exit, 1) << refused.out;
  EXPECT_NE(refused.out.find("cannot connect the update publisher to ssl://"), std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find("certificate verify failed"), std::string::npos) << refused.out;
}

}  // namespace
}  // namespace tinyfleet::testing
