// fleetd: the tinyfleet server. Settings: `fleetd --help`, docs/configuration.md
// (fleetd --config fleetd.json --listen 0.0.0.0:7443 ...). SIGTERM or SIGINT shuts it
// down gracefully: in-flight calls finish, nothing is left half-written.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "tinyfleet/server/config.h"
#include "tinyfleet/server/fleet_server.h"
#include "tinyfleet/server/log.h"

int main(int argc, char** argv) {
  using namespace tinyfleet::server;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(settings_help(args.size() > 1 && args[1] == "markdown").c_str(), stdout);
    return 0;
  }
  log::route_grpc_logs();
  auto config = load_config(args, process_environment());
  if (!config) {
    log::error("fleetd.config", {{"error", config.error().message}});
    return 2;
  }
  // One event loop for signals now, and for timers and the MQTT side as they land.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  auto server = FleetServer::start(*config);
  if (!server) {
    log::error("fleetd.start", {{"error", server.error().message}});
    return 1;
  }
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    log::info("fleetd.shutdown", {{"signal", signal}});
    (*server)->shutdown(std::chrono::seconds(config->shutdown_grace_seconds));
    io.stop();
  });
  io.run();
  return 0;
}
