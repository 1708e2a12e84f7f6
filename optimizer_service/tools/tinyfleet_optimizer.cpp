// tinyfleet-optimizer --listen 127.0.0.1:7450 [--port-file F]: a compile worker serving
// tinyfleet.v1.Optimizer (fleetd with compile.mode=remote sends it its compiles).
#include <csignal>
#include <fstream>
#include <iostream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/optimizer_service/optimizer_grpc_service.h"

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:7450", port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--listen")
      listen = argv[i + 1];
    else if (a == "--port-file")
      port_file = argv[i + 1];
    else {
      std::cerr << "usage: tinyfleet-optimizer [--listen host:port] [--port-file F]\n";
      return 2;
    }
  }
  tinyfleet::optimizer_service::OptimizerGrpcService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "tinyfleet-optimizer: cannot listen on " << listen << "\n";
    return 1;
  }
  if (!port_file.empty()) std::ofstream(port_file) << port << "\n";
  std::cerr << "{\"event\":\"optimizer.serving\",\"port\":" << port << "}\n";
  server->Wait();
  return 0;
}
