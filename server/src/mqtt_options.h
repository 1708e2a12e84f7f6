#pragma once

// fleetd's MQTT clients (the update publisher, the fleet listener) connect alike.
#include <mqtt/connect_options.h>

#include <string>
#include <vector>

namespace tinyfleet::server {

// MQTT 5, a clean start, the account, automatic reconnects; with `ca_file` set, TLS
// with the broker's certificate checked against that CA and its name against the URI's
// host (use an ssl:// URI). TLS failures are logged under `who`. `persistent_session`:
// MQTT 3.1.1 with clean session off instead, so the broker keeps the session (and queues
// QoS 1 messages) while the client is away.
// The MQTT version of fleetd's fresh (not persistent) sessions: MQTT 5 unless
// set_fleetd_mqtt_v311(true) was called at startup (a nats-server MQTT listener speaks
// only 3.1.1; then a clean session).
void set_fleetd_mqtt_v311(bool v311);
int fleetd_mqtt_version();

// The broker's URIs, the client's own first: with more than one, each connection (and
// each automatic reconnect) tries them in turn (mqtt.fallback). Set once at startup.
void set_fleetd_mqtt_servers(std::vector<std::string> uris);

mqtt::connect_options fleetd_connect_options(const std::string& who, const std::string& user,
                                             const std::string& password,
                                             const std::string& ca_file,
                                             bool persistent_session = false);

}  // namespace tinyfleet::server
