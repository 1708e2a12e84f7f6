// tinyfleet-optimizer --listen 127.0.0.1:7450 [--port-file F]
//                     [--tls-cert PEM --tls-key PEM --client-ca PEM] [--insecure]
// A compile worker serving tinyfleet.v1.Optimizer (fleetd with compile.mode=remote sends
// it its compiles). With the three TLS files: mutual TLS, and only a client whose
// certificate chains to --client-ca (fleetd's compile.optimizer_cert_file) is served.
// Without them it serves plaintext, on a loopback address only unless --insecure.
#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/optimizer_service/optimizer_grpc_service.h"

namespace {

int usage(const std::string& why) {
  std::cerr << "tinyfleet-optimizer: " << why
            << "\nusage: tinyfleet-optimizer [--listen host:port] [--port-file F] "
               "[--tls-cert PEM --tls-key PEM --client-ca PEM] [--insecure]\n";
  return 2;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

bool loopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0 ||
         listen.rfind("unix:", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:7450", port_file, cert_file, key_file, client_ca_file;
  bool insecure = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--insecure") {
      insecure = true;
      continue;
    }
    if (i + 1 >= argc) return usage(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--listen")
      listen = v;
    else if (a == "--port-file")
      port_file = v;
    else if (a == "--tls-cert")
      cert_file = v;
    else if (a == "--tls-key")
      key_file = v;
    else if (a == "--client-ca")
      client_ca_file = v;
    else
      return usage("unknown flag " + a);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  const int tls_files = !cert_file.empty() + !key_file.empty() + !client_ca_file.empty();
  if (tls_files == 3) {
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read_file(cert_file, &pair.cert_chain) || !read_file(key_file, &pair.private_key) ||
        !read_file(client_ca_file, &options.pem_root_certs)) {
      std::cerr << "tinyfleet-optimizer: cannot read --tls-cert, --tls-key or --client-ca\n";
      return 2;
    }
    options.pem_key_cert_pairs.push_back(pair);
    credentials = grpc::SslServerCredentials(options);
  } else if (tls_files != 0) {
    return usage("--tls-cert, --tls-key and --client-ca go together (mutual TLS)");
  } else if (!loopback(listen) && !insecure) {
    return usage("--listen " + listen +
                 " is not a loopback address and the link would be plaintext and "
                 "unauthenticated: give --tls-cert, --tls-key and --client-ca, or --insecure");
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  tinyfleet::optimizer_service::OptimizerGrpcService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "tinyfleet-optimizer: cannot listen on " << listen << "\n";
    return 1;
  }
  if (!port_file.empty()) std::ofstream(port_file) << port << "\n";
  std::cerr << "{\"event\":\"optimizer.serving\",\"port\":" << port
            << ",\"tls\":" << (tls_files == 3 ? "true" : "false") << "}\n";
  server->Wait();
  return 0;
}
