#include "listing.h"

namespace tinyfleet::fleetctl {

grpc::Status list_all_models(const Connection& c, std::vector<v1::Model>* out) {
  auto stub = v1::ModelRegistry::NewStub(c.channel());
  v1::ListModelsRequest req;
  req.set_page_size(500);
  do {
    v1::ListModelsResponse resp;
    auto s = stub->ListModels(c.context().get(), req, &resp);
    if (!s.ok()) return s;
    out->insert(out->end(), resp.models().begin(), resp.models().end());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return grpc::Status::OK;
}

grpc::Status list_all_devices(const Connection& c, v1::ListDevicesRequest req,
                              std::vector<v1::Device>* out) {
  auto stub = v1::DeviceRegistry::NewStub(c.channel());
  req.set_page_size(1000);
  req.clear_page_token();
  do {
    v1::ListDevicesResponse resp;
    auto s = stub->ListDevices(c.context().get(), req, &resp);
    if (!s.ok()) return s;
    out->insert(out->end(), resp.devices().begin(), resp.devices().end());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return grpc::Status::OK;
}

}  // namespace tinyfleet::fleetctl
