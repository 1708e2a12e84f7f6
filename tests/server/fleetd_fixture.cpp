#include "fleetd_fixture.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {

void FleetdTest::SetUp() {
  fleetd_ = std::make_unique<FleetdProcess>(scratch_.uri(), admin_, fleetd_settings());
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  connect();
}

void FleetdTest::connect() {
  auto channel = fleetd_->channel();
  models_ = v1::ModelRegistry::NewStub(channel);
  devices_ = v1::DeviceRegistry::NewStub(channel);
  admin_api_ = v1::Admin::NewStub(channel);
}

std::string FleetdTest::make_token(const std::string& name, v1::Role role) {
  v1::CreateTokenRequest req;
  req.set_name(name);
  req.set_role(role);
  v1::CreateTokenResponse resp;
  auto status = admin_api_->CreateToken(context_with_token(admin_).get(), req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return resp.secret();
}

grpc::Status FleetdTest::upload(const std::string& token, const std::string& model,
                                const std::string& onnx, std::vector<std::string> classes,
                                v1::ModelVersion* out, long cut_at, bool cancel, uint32_t version) {
  auto ctx = context_with_token(token);
  auto writer = models_->CreateVersion(ctx.get(), out);
  v1::CreateVersionRequest header;
  header.mutable_header()->set_model(model);
  header.mutable_header()->set_version(version);
  for (const auto& c : classes) header.mutable_header()->add_target_classes(c);
  auto* file = header.mutable_header()->add_files();
  file->set_kind(v1::FILE_KIND_ONNX);
  file->set_size(onnx.size());
  writer->Write(header);
  const size_t limit = cut_at >= 0 ? static_cast<size_t>(cut_at) : onnx.size();
  const size_t chunk = 1024;
  for (size_t off = 0; off < limit; off += chunk) {
    v1::CreateVersionRequest part;
    part.mutable_chunk()->set_kind(v1::FILE_KIND_ONNX);
    part.mutable_chunk()->set_offset(off);
    part.mutable_chunk()->set_data(onnx.substr(off, std::min(chunk, limit - off)));
    if (!writer->Write(part)) break;
  }
  if (cancel) {
    ctx->TryCancel();
  } else {
    writer->WritesDone();
  }
  return writer->Finish();
}

int64_t FleetdTest::count_rows(const std::string& table) {
  return scratch_.db()
      .transact([&](pqxx::work& w) {
        return w.exec("SELECT count(*) FROM " + w.quote_name(table))[0][0].as<int64_t>();
      })
      .value();
}

std::string FleetdTest::read_fixture(const std::string& relative) {
  std::ifstream in(fixture_path(relative), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::Operation FleetdTest::compile_and_wait(uint32_t version) {
  v1::CompileVersionRequest req;
  req.set_model("digits");
  req.set_version(version);
  v1::Operation op;
  auto s = models_->CompileVersion(context_with_token(admin_).get(), req, &op);
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::WatchOperationRequest watch;
  watch.set_id(op.id());
  auto ctx = context_with_token(admin_);
  auto reader = models_->WatchOperation(ctx.get(), watch);
  v1::Operation last;
  while (reader->Read(&last)) {
  }
  auto status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << fleetd_->log();
  return last;
}

std::map<std::string, std::string> FleetdUpdatesTest::update_settings() {
  const auto tag = std::to_string(getpid());
  keys_ = std::filesystem::temp_directory_path() / ("tf-fleetd-keys-" + tag);
  std::filesystem::remove_all(keys_);
  const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  EXPECT_TRUE(update::init_keys(keys_.string(), now, 30));
  // fleetd reaches the broker over TLS, pinning the stack's CA.
  return {{"mqtt.port", require_env("TINYFLEET_MQTT_TLS_PORT")},
          {"mqtt.ca_file", require_env("TINYFLEET_TLS_CA")},
          {"mqtt.user", require_env("TINYFLEET_MQTT_SERVER_USER")},
          {"mqtt.password", require_env("TINYFLEET_MQTT_SERVER_PASSWORD")},
          {"mqtt.share_group", "t" + tag},
          {"keys.dir", keys_.string()},
          {"rollouts.tick_ms", "50"}};
}

void FleetdUpdatesTest::TearDown() { std::filesystem::remove_all(keys_); }

}  // namespace tinyfleet::testing
