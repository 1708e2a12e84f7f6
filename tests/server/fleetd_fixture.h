#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "fleetd_process.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/v1/admin.grpc.pb.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"
#include "tinyfleet/v1/model_registry.grpc.pb.h"

namespace tinyfleet::testing {

// A scratch database and a real fleetd over it, with stubs for each service and
// an admin token; tokens of other roles on request.
class FleetdTest : public ::testing::Test {
 protected:
  void SetUp() override;
  virtual std::map<std::string, std::string> fleetd_settings() { return {}; }
  void connect();  // (re)creates the stubs for the current fleetd port

  // A new token of `role` made through the Admin API.
  std::string make_token(const std::string& name, v1::Role role);
  // Uploads `onnx` as a new version; stops after `cut_at` bytes when >= 0 (then
  // closes the stream, or cancels it when `cancel`).
  grpc::Status upload(const std::string& token, const std::string& model, const std::string& onnx,
                      std::vector<std::string> classes, v1::ModelVersion* out, long cut_at = -1,
                      bool cancel = false, uint32_t version = 0);
  int64_t count_rows(const std::string& table);
  // CompileVersion for model "digits" `version`, then WatchOperation until it ends: the
  // operation as it ended (the calls are expected to succeed).
  v1::Operation compile_and_wait(uint32_t version);

  static std::string read_fixture(const std::string& relative);

  const std::string admin_ = "tf_test_admin_secret_0123456789";
  ScratchDatabase scratch_;
  std::unique_ptr<FleetdProcess> fleetd_;
  std::unique_ptr<v1::ModelRegistry::Stub> models_;
  std::unique_ptr<v1::DeviceRegistry::Stub> devices_;
  std::unique_ptr<v1::Admin::Stub> admin_api_;
};

// A fleetd that publishes updates: fleetd's broker account, a share group of the test's
// own, signing keys made for the test (removed after it) and a 50 ms engine tick.
// Subclasses add settings to what update_settings() returns.
class FleetdUpdatesTest : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override { return update_settings(); }
  std::map<std::string, std::string> update_settings();
  void TearDown() override;

  std::filesystem::path keys_;
};

}  // namespace tinyfleet::testing
