// Operator input against a real fleetd (issue 20, point 3): a malformed data file is
// refused at upload; one stored before that check is a compile refusal with its reason
// and fleetd stays up; class specs are checked against the schema; upload sizes are
// bounded by max_upload_bytes; an operation that crashed fleetd kMaxAttempts times is
// failed at boot instead of resumed forever.
#include <gtest/gtest.h>
#include <signal.h>
#include <zlib.h>

#include <chrono>
#include <thread>

#include "fleetd_fixture.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::testing {
namespace {

const char* kClass = "cortex-m4-256k";
const char* kSpec = R"({"ram_bytes": 262144, "flash_bytes": 1048576, "clock_hz": 80000000})";

void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xffff));
  put16(s, static_cast<uint16_t>(v >> 16));
}

// An .npz with one stored entry x.npy whose header says `shape`; `declared` overrides the
// entry's uncompressed size (and marks it deflated) when non-zero.
std::string poisoned_npz(const std::string& shape, uint32_t declared = 0) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }\n";
  std::string npy = "\x93NUMPY\x01";
  npy += '\0';
  put16(npy, static_cast<uint16_t>(header.size()));
  npy += header + std::string(16, '\0');
  std::string zip;
  put32(zip, 0x04034b50);
  put16(zip, 20);
  put16(zip, 0);
  put16(zip, declared ? 8 : 0);
  put32(zip, 0);
  put32(zip,
        static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(npy.data()), npy.size())));
  put32(zip, static_cast<uint32_t>(npy.size()));
  put32(zip, declared ? declared : static_cast<uint32_t>(npy.size()));
  put16(zip, 5);
  put16(zip, 0);
  return zip + "x.npy" + npy;
}

class OperatorInput : public FleetdTest {
 protected:
  grpc::Status create_class(const std::string& name, const std::string& spec) {
    v1::DeviceClass req, out;
    req.set_name(name);
    req.set_spec_json(spec);
    return devices_->CreateDeviceClass(context_with_token(admin_).get(), req, &out);
  }

  void create_model() {
    ASSERT_TRUE(create_class(kClass, kSpec).ok());
    v1::CreateModelRequest cm;
    cm.set_name("digits");
    v1::Model model;
    ASSERT_TRUE(models_->CreateModel(context_with_token(admin_).get(), cm, &model).ok());
  }

  grpc::Status upload_with_calibration(const std::string& calib) {
    const std::string onnx = read_fixture("models/digits_cnn.onnx");
    v1::ModelVersion out;
    auto ctx = context_with_token(admin_);
    auto writer = models_->CreateVersion(ctx.get(), &out);
    v1::CreateVersionRequest header;
    header.mutable_header()->set_model("digits");
    header.mutable_header()->add_target_classes(kClass);
    for (const auto& [kind, bytes] :
         {std::pair{v1::FILE_KIND_ONNX, &onnx}, std::pair{v1::FILE_KIND_CALIBRATION, &calib}}) {
      auto* f = header.mutable_header()->add_files();
      f->set_kind(kind);
      f->set_size(bytes->size());
    }
    writer->Write(header);
    for (const auto& [kind, bytes] :
         {std::pair{v1::FILE_KIND_ONNX, &onnx}, std::pair{v1::FILE_KIND_CALIBRATION, &calib}}) {
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

  // A version whose calibration blob went in before uploads were checked.
  void store_version_with_calibration(const std::string& calib) {
    const std::string onnx = read_fixture("models/digits_cnn.onnx");
    ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
      storage::NewModelVersion v;
      v.model_name = "digits";
      v.onnx_sha256 = storage::PgBlobStore::put(w, onnx);
      v.calib_sha256 = storage::PgBlobStore::put(w, calib);
      v.target_classes = {kClass};
      return storage::models::create_version(w, v);
    }));
  }

  void expect_fleetd_serving() {
    EXPECT_EQ(::kill(fleetd_->pid(), 0), 0) << "fleetd is gone:\n" << fleetd_->log();
    v1::GetModelRequest get;
    get.set_name("digits");
    v1::Model m;
    auto s = models_->GetModel(context_with_token(admin_).get(), get, &m);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  int64_t insert_operation(const std::string& params, int attempts, const std::string& message) {
    auto id = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "INSERT INTO operations (kind, object, params, state, total, message, "
              "attempts) VALUES ('compile', 'model/digits/versions/1', $1::jsonb, "
              "'running', 1, $2, $3) RETURNING id",
              params, message, attempts)[0]
          .as<int64_t>();
    });
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }

  storage::OperationRecord wait_ended(int64_t id) {
    storage::OperationRecord op;
    for (int i = 0; i < 200; ++i) {
      auto r =
          scratch_.db().transact([&](pqxx::work& w) { return storage::operations::get(w, id); });
      if (r) op = *r;
      if (op.state == "succeeded" || op.state == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return op;
  }
};

TEST_F(OperatorInput, AMalformedDataFileIsRefusedAtUploadNamingTheProblem) {
  ASSERT_NO_FATAL_FAILURE(create_model());
  auto s = upload_with_calibration(poisoned_npz("(a,)"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("the calibration file: npz entry x header has a bad shape (a,)"),
            std::string::npos)
      << s.error_message();
  auto bomb = upload_with_calibration(poisoned_npz("(4,)", 0xfffffff0u));
  EXPECT_EQ(bomb.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bomb.error_message().find("declares 4294967280 bytes"), std::string::npos)
      << bomb.error_message();
  EXPECT_EQ(count_rows("model_versions"), 0);
  expect_fleetd_serving();
}

TEST_F(OperatorInput, APoisonedStoredNpzIsACompileRefusalAndFleetdStaysUp) {
  ASSERT_NO_FATAL_FAILURE(create_model());
  ASSERT_NO_FATAL_FAILURE(store_version_with_calibration(poisoned_npz("(a,)")));
  const auto op = compile_and_wait(1);
  ASSERT_EQ(op.state(), v1::OPERATION_STATE_SUCCEEDED) << op.message() << "\n" << fleetd_->log();
  EXPECT_EQ(op.message(), "0 compiled, 1 refused");
  ASSERT_EQ(op.artifacts_size(), 1);
  EXPECT_NE(op.artifacts(0).refusal_reason().find("calibration data: npz entry x header has a "
                                                  "bad shape (a,)"),
            std::string::npos)
      << op.artifacts(0).refusal_reason();
  expect_fleetd_serving();
}

TEST_F(OperatorInput, AnOperationThatCrashedFleetdRepeatedlyIsFailedAtBoot) {
  ASSERT_EQ(fleetd_->terminate(), 0);
  const std::string params = R"({"model":"digits","version":1,"classes":["cortex-m4-256k"]})";
  // Found running after 3 starts: fleetd died in it each time.
  const auto crashed = insert_operation(params, 3, "compiling for cortex-m4-256k");
  // Found running after 1 start: resumed (and fails here for its own reason: no model).
  const auto resumed = insert_operation(params, 1, "compiling for cortex-m4-256k");
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  connect();
  const auto a = wait_ended(crashed);
  EXPECT_EQ(a.state, "failed");
  EXPECT_EQ(a.message,
            "crashed the compile worker 3 times; not resumed (last: compiling for cortex-m4-256k)");
  EXPECT_EQ(a.attempts, 3);
  const auto b = wait_ended(resumed);
  EXPECT_EQ(b.state, "failed");
  EXPECT_EQ(b.attempts, 2);
  EXPECT_EQ(b.message.find("crashed"), std::string::npos) << b.message;
  EXPECT_NE(fleetd_->log().find("\"failed_as_crashed\":1"), std::string::npos) << fleetd_->log();
}

TEST_F(OperatorInput, ACleanShutdownIsNotCountedAsACrash) {
  ASSERT_EQ(fleetd_->terminate(), 0);
  const std::string params = R"({"model":"digits","version":1,"classes":["cortex-m4-256k"]})";
  const auto id = insert_operation(params, 3, "compiling for cortex-m4-256k");
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    storage::operations::pause(w, id, "paused at shutdown before cortex-m4-256k");
    return storage::Done{};
  }));
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  const auto op = wait_ended(id);
  EXPECT_EQ(op.attempts, 1);  // picked up again as a first attempt
  EXPECT_EQ(op.message.find("crashed"), std::string::npos) << op.message;
}

TEST_F(OperatorInput, ClassSpecsAreCheckedAgainstTheSchema) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"simd":[1]})", "'simd' entry"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"active_mw":"x"})", "'active_mw'"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"ramm_bytes":1})",
       "unknown field 'ramm_bytes'"},
  };
  for (const auto& [spec, field] : cases) {
    auto s = create_class("c1", spec);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << spec;
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(count_rows("device_classes"), 0);
}

class SmallUploads : public OperatorInput {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"max_upload_bytes", "4096"}};
  }
};

TEST_F(SmallUploads, AFileOverMaxUploadBytesIsRefusedBeforeItsBytes) {
  ASSERT_NO_FATAL_FAILURE(create_model());
  v1::ModelVersion out;
  auto s = upload(admin_, "digits", read_fixture("models/digits_cnn.onnx"), {kClass}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("is outside 1..4096 bytes"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(count_rows("model_versions"), 0);
}

}  // namespace
}  // namespace tinyfleet::testing
