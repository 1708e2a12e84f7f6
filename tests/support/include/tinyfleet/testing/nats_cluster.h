#pragma once

// A 3-node nats-server cluster of the test's own on free loopback ports: routes between
// the nodes, JetStream on each (the MQTT streams replicated on all three:
// `stream_replicas: 3`), an MQTT 3.1.1 listener per node, and accounts: every node
// includes one accounts file (accounts_file(), what fleetd's nats.accounts_file names) in
// its `authorization` block, holding the server account (everything) at first; device
// accounts, each touching only its own subjects, are added to it by fleetd's provisioning
// (or by set_devices). A test can kill (SIGKILL) and restart one node.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tinyfleet::testing {

// True if an MQTT 3.1.1 CONNECT (clean session) with this user and password gets CONNACK
// code 0 from the listener on 127.0.0.1:port (5 s at most).
bool mqtt311_accepts(int port, const std::string& user, const std::string& password,
                     const std::string& client_id);
// The same CONNECT, the session kept: the socket (to close), or -1 if refused.
int mqtt311_connect(int port, const std::string& user, const std::string& password,
                    const std::string& client_id, int keepalive_seconds);

class NatsCluster {
 public:
  static constexpr int kNodes = 3;
  // `server_user`/`server_password`: the account with every permission (fleetd's).
  NatsCluster(std::string server_user, std::string server_password);
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // Starts every node; true once each one's MQTT listener accepts the server account
  // (JetStream up: 60 s at most).
  bool start();
  // Device accounts ("id", "password"), all in fleet `fleet`: written into every node's
  // configuration and reloaded (SIGHUP). True once a device can connect on every node.
  bool set_devices(const std::vector<std::pair<std::string, std::string>>& devices,
                   const std::string& fleet = "default");
  // The accounts file every node includes: `users = [`, one entry a line, `]`.
  std::filesystem::path accounts_file() const { return dir_ / "accounts.conf"; }
  // True once every running node accepts this account's MQTT CONNECT (`seconds` at most).
  bool accepted_everywhere(const std::string& user, const std::string& password, int seconds) const;
  void kill(int node);     // SIGKILL: a crash
  bool restart(int node);  // starts it again with its JetStream store; true once up
  void stop();             // SIGTERM to every node
  pid_t pid(int node) const { return nodes_[node].pid; }
  int mqtt_port(int node) const { return nodes_[node].mqtt; }
  std::string mqtt_uri(int node) const {
    return "tcp://127.0.0.1:" + std::to_string(nodes_[node].mqtt);
  }
  // "nats://127.0.0.1:A,nats://127.0.0.1:B,nats://127.0.0.1:C" (fleetd's nats.servers).
  std::string nats_servers() const;
  std::string log(int node) const;  // the node's log file

 private:
  struct Node {
    int client = 0, route = 0, mqtt = 0;
    pid_t pid = -1;
  };
  void write_config(int node) const;
  void write_accounts() const;
  bool launch(int node);
  bool mqtt_accepts(int node, const std::string& user, const std::string& password) const;

  std::filesystem::path dir_;
  std::string user_, password_;
  std::vector<std::pair<std::string, std::string>> devices_;
  std::string fleet_ = "default";
  Node nodes_[kNodes];
};

}  // namespace tinyfleet::testing
