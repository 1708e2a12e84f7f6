// CreateVersion (ONNX + calibration + validation upload) plus CompileVersion for two
// device classes, end to end over gRPC on loopback against the stack's PostgreSQL:
// the time from the first upload byte to the finished compile operation.
//   deploy/local/run-bench.sh bench_create_version_compile
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/server/fleet_server.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"
#include "tinyfleet/v1/model_registry.grpc.pb.h"

namespace {

const std::string kToken = "tf_bench_admin_token_0123456789";

std::string read(const std::string& rel) {
  std::ifstream in(tinyfleet::testing::fixture_path(rel), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<grpc::ClientContext> ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->AddMetadata("authorization", "Bearer " + kToken);
  return c;
}

void BM_CreateVersionAndCompile(benchmark::State& state, const char* model_file) {
  tinyfleet::testing::ScratchDatabase db(2);
  tinyfleet::server::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.database_uri = db.uri();
  config.bootstrap_admin_token = kToken;
  auto server = tinyfleet::server::FleetServer::start(config);
  if (!server) {
    state.SkipWithError(server.error().message.c_str());
    return;
  }
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto models = tinyfleet::v1::ModelRegistry::NewStub(channel);
  auto devices = tinyfleet::v1::DeviceRegistry::NewStub(channel);
  for (
      const auto& [name, spec] :
      {std::pair<std::string, std::string>{
           "cortex-m4-256k",
           R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"runtime_ram_bytes":4096,"runtime_flash_bytes":24576})"},
       {"cortex-m7-512k",
        R"({"ram_bytes":524288,"flash_bytes":2097152,"clock_hz":216000000,"runtime_ram_bytes":4096,"runtime_flash_bytes":24576})"}}) {
    tinyfleet::v1::DeviceClass c, out;
    c.set_name(name);
    c.set_spec_json(spec);
    devices->CreateDeviceClass(ctx().get(), c, &out);
  }
  tinyfleet::v1::CreateModelRequest cm;
  cm.set_name("bench");
  tinyfleet::v1::Model m;
  models->CreateModel(ctx().get(), cm, &m);
  const std::string onnx = read(std::string("models/") + model_file);
  const std::string calib = read("data/digits_calib.npz");
  const std::string val = read("data/digits_val.npz");
  for (auto _ : state) {
    tinyfleet::v1::ModelVersion version;
    auto c = ctx();
    auto writer = models->CreateVersion(c.get(), &version);
    tinyfleet::v1::CreateVersionRequest header;
    header.mutable_header()->set_model("bench");
    header.mutable_header()->add_target_classes("cortex-m4-256k");
    header.mutable_header()->add_target_classes("cortex-m7-512k");
    const std::pair<tinyfleet::v1::FileKind, const std::string*> files[] = {
        {tinyfleet::v1::FILE_KIND_ONNX, &onnx},
        {tinyfleet::v1::FILE_KIND_CALIBRATION, &calib},
        {tinyfleet::v1::FILE_KIND_VALIDATION, &val}};
    for (const auto& [kind, bytes] : files) {
      auto* f = header.mutable_header()->add_files();
      f->set_kind(kind);
      f->set_size(bytes->size());
    }
    writer->Write(header);
    for (const auto& [kind, bytes] : files) {
      for (size_t off = 0; off < bytes->size(); off += 65536) {
        tinyfleet::v1::CreateVersionRequest part;
        part.mutable_chunk()->set_kind(kind);
        part.mutable_chunk()->set_offset(off);
        part.mutable_chunk()->set_data(bytes->substr(off, 65536));
        writer->Write(part);
      }
    }
    writer->WritesDone();
    if (!writer->Finish().ok()) {
      state.SkipWithError("upload failed");
      break;
    }
    tinyfleet::v1::CompileVersionRequest req;
    req.set_model("bench");
    req.set_version(version.version());
    tinyfleet::v1::Operation op;
    models->CompileVersion(ctx().get(), req, &op);
    tinyfleet::v1::WatchOperationRequest watch;
    watch.set_id(op.id());
    auto wc = ctx();
    auto reader = models->WatchOperation(wc.get(), watch);
    tinyfleet::v1::Operation last;
    while (reader->Read(&last)) {
    }
    reader->Finish();
    if (last.state() != tinyfleet::v1::OPERATION_STATE_SUCCEEDED ||
        last.message() != "2 compiled, 0 refused") {
      state.SkipWithError(("compile: " + last.message()).c_str());
      break;
    }
  }
  (*server)->shutdown(std::chrono::seconds(1));
}

}  // namespace

BENCHMARK_CAPTURE(BM_CreateVersionAndCompile, digits_cnn, "digits_cnn.onnx")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CreateVersionAndCompile, digits_resnet, "digits_resnet.onnx")
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
