#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tinyfleet/server/config.h"

using tinyfleet::server::load_config;

namespace {

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/fleetd-config.XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(ServerConfig, FileThenEnvironmentThenFlags) {
  const auto file = write_temp(
      R"({"database": {"uri": "postgresql://file"}, "mqtt": {"port": 1000, "host": "broker", "ca_file": "ca.pem"},
          "compile": {"workers": 3}})");
  auto c = load_config(
      {"--config", file, "--mqtt.port=3000"},
      {{"TINYFLEET_MQTT_PORT", "2000"}, {"TINYFLEET_DATABASE_URI", "postgresql://env"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->database_uri, "postgresql://env");  // environment over file
  EXPECT_EQ(c->mqtt_port, 3000);                   // flag over environment
  EXPECT_EQ(c->mqtt_host, "broker");               // file over default
  EXPECT_EQ(c->compile_workers, 3);
  std::remove(file.c_str());
}

// Plaintext leaves the machine only with insecure=true (gRPC, MQTT, the optimizer link).
TEST(ServerConfig, PlaintextOffLoopbackNeedsTheInsecureSetting) {
  const std::map<std::string, std::string> env = {{"TINYFLEET_PG_URI", "postgresql://x"}};
  for (const std::string listen : {"0.0.0.0:7443", "[::]:7443", "192.168.1.20:7443"}) {
    auto refused = load_config({"--listen=" + listen}, env);
    ASSERT_FALSE(refused) << listen;
    EXPECT_NE(refused.error().message.find("listen " + listen + " is not a loopback address"),
              std::string::npos)
        << refused.error().message;
    EXPECT_NE(refused.error().message.find("insecure=true"), std::string::npos);
    EXPECT_TRUE(load_config({"--listen=" + listen, "--insecure=true"}, env)) << listen;
    EXPECT_TRUE(
        load_config({"--listen=" + listen, "--tls.cert_file=c.pem", "--tls.key_file=k.pem"}, env))
        << listen;
  }
  for (const std::string listen : {"127.0.0.1:0", "localhost:7443", "[::1]:7443", "unix:/run/f"}) {
    auto allowed = load_config({"--listen=" + listen}, env);
    EXPECT_TRUE(allowed) << listen << ": " << allowed.error().message;
  }
  auto malformed = load_config({"--listen=0.0.0.0"}, env);
  ASSERT_FALSE(malformed);
  EXPECT_NE(malformed.error().message.find("listen '0.0.0.0': needs host:port"), std::string::npos)
      << malformed.error().message;

  auto mqtt = load_config({"--mqtt.host=broker.lan"}, env);
  ASSERT_FALSE(mqtt);
  EXPECT_NE(mqtt.error().message.find("mqtt.host broker.lan is not a loopback address"),
            std::string::npos)
      << mqtt.error().message;
  EXPECT_TRUE(load_config({"--mqtt.host=broker.lan", "--mqtt.ca_file=ca.pem"}, env));
  EXPECT_TRUE(load_config({"--mqtt.host=broker.lan", "--insecure=true"}, env));

  const std::vector<std::string> remote = {"--compile.mode=remote",
                                           "--compile.optimizer_address=10.0.0.5:7450"};
  auto optimizer = load_config(remote, env);
  ASSERT_FALSE(optimizer);
  EXPECT_NE(optimizer.error().message.find("compile.optimizer_address 10.0.0.5:7450"),
            std::string::npos)
      << optimizer.error().message;
  auto with_tls = remote;
  with_tls.push_back("--compile.optimizer_ca_file=ca.pem");
  auto half = load_config(with_tls, env);
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().message.find("go together (mutual TLS)"), std::string::npos);
  with_tls.push_back("--compile.optimizer_cert_file=c.pem");
  with_tls.push_back("--compile.optimizer_key_file=k.pem");
  EXPECT_TRUE(load_config(with_tls, env));
}

// The other nodes of a broker cluster (mqtt.fallback): host:port each, at most 8, the
// plaintext rule for each; a mistake names the setting and the entry.
TEST(ServerConfig, BrokerFallbackIsAListOfNodes) {
  const std::map<std::string, std::string> env = {{"TINYFLEET_PG_URI", "postgresql://x"}};
  auto ok = load_config({"--mqtt.fallback=127.0.0.1:1884,localhost:1885,[::1]:1886"}, env);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->mqtt_fallback, "127.0.0.1:1884,localhost:1885,[::1]:1886");
  EXPECT_TRUE(load_config({}, env));  // empty: mqtt.host only
  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"127.0.0.1", "mqtt.fallback '127.0.0.1': needs host:port"},
      {"127.0.0.1:1884,", "mqtt.fallback '': needs host:port"},
      {"127.0.0.1:0", "port 0 in '127.0.0.1:0'"},
      {"127.0.0.1:99999", "the port must be a number 0..65535"},
      {"1.2.3.4:1883", "mqtt.fallback 1.2.3.4 is not a loopback address"},
      {"a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9", "more than 8 addresses"},
      {std::string(5000, 'x'), "longer than 4096 characters"}};
  for (const auto& [list, why] : wrong) {
    auto refused = load_config({"--mqtt.fallback=" + list, "--mqtt.ca_file="}, env);
    ASSERT_FALSE(refused) << list;
    EXPECT_NE(refused.error().message.find(why), std::string::npos) << refused.error().message;
  }
  EXPECT_TRUE(load_config({"--mqtt.fallback=1.2.3.4:8883", "--mqtt.ca_file=ca.pem"}, env));
}

TEST(ServerConfig, StackVariableNamesTheDatabase) {
  auto c = load_config({}, {{"TINYFLEET_PG_URI", "postgresql://stack"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->database_uri, "postgresql://stack");
}

TEST(ServerConfig, MistakesAreNamed) {
  const std::map<std::string, std::string> env = {{"TINYFLEET_PG_URI", "postgresql://x"}};
  auto unknown = load_config({"--mqtt.prot=1"}, env);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown setting 'mqtt.prot'"), std::string::npos);

  auto bad_number = load_config({"--mqtt.port", "70000"}, env);
  ASSERT_FALSE(bad_number);
  EXPECT_NE(bad_number.error().message.find("bad value '70000' for setting 'mqtt.port'"),
            std::string::npos);

  auto bad_mode = load_config({"--compile.mode=gpu"}, env);
  ASSERT_FALSE(bad_mode);
  EXPECT_NE(bad_mode.error().message.find("compile.mode"), std::string::npos);

  auto no_value = load_config({"--listen"}, env);
  ASSERT_FALSE(no_value);
  EXPECT_NE(no_value.error().message.find("--listen needs a value"), std::string::npos);

  auto no_db = load_config({}, {});
  ASSERT_FALSE(no_db);
  EXPECT_NE(no_db.error().message.find("database.uri"), std::string::npos);

  auto half_tls = load_config({"--tls.cert_file=/x.pem"}, env);
  ASSERT_FALSE(half_tls);
  EXPECT_NE(half_tls.error().message.find("tls.key_file"), std::string::npos);

  const auto broken = write_temp("{not json");
  auto bad_file = load_config({"--config=" + broken}, env);
  ASSERT_FALSE(bad_file);
  EXPECT_NE(bad_file.error().message.find("is not valid JSON"), std::string::npos);
  std::remove(broken.c_str());

  const auto typo = write_temp(R"({"databse": {"uri": "x"}})");
  auto typo_file = load_config({"--config=" + typo}, env);
  ASSERT_FALSE(typo_file);
  EXPECT_NE(typo_file.error().message.find("unknown setting 'databse.uri'"), std::string::npos);
  std::remove(typo.c_str());
}

}  // namespace

namespace {

std::string between(const std::string& text, const std::string& begin, const std::string& end) {
  const auto b = text.find(begin);
  const auto e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  const auto start = text.find('\n', b) + 1;
  return text.substr(start, e - start);
}

TEST(ServerConfig, HelpListsEverySettingWithItsDefault) {
  const std::string help = tinyfleet::server::settings_help(false);
  for (const char* s : {"--listen (default 127.0.0.1:7443)", "--database.pool (default 8)",
                        "--updates.deltas (default true)", "--mqtt.share_group (default fleetd)",
                        "--compile.mode (default in_process)", "TINYFLEET_ROLLOUTS_TICK_MS",
                        "--shutdown_grace_seconds (default 10)"}) {
    EXPECT_NE(help.find(s), std::string::npos) << "fleetd --help lacks '" << s << "'";
  }
  // Every line of the markdown table names a setting load_config accepts.
  const std::string md = tinyfleet::server::settings_help(true);
  size_t rows = 0;
  for (size_t at = md.find("| `"); at != std::string::npos; at = md.find("| `", at + 1)) {
    const auto key = md.substr(at + 3, md.find('`', at + 3) - at - 3);
    if (md.compare(at - 1, 1, "\n") != 0) continue;  // only the first column
    ++rows;
    auto c = load_config({"--database.uri=x", "--" + key + "=1"}, {});
    EXPECT_EQ(c ? std::string::npos : c.error().message.find("unknown setting"), std::string::npos)
        << key << ": " << c.error().message;
  }
  EXPECT_GE(rows, 25u);
}

TEST(ServerConfig, TheDocsTableIsTheHelpTable) {
  std::ifstream in(std::string(TINYFLEET_SOURCE_DIR) + "/docs/configuration.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(between(doc, "<!-- settings table: begin -->", "<!-- settings table: end -->"),
            tinyfleet::server::settings_help(true))
      << "docs/configuration.md is stale: paste `fleetd --help markdown` between the markers";
}

}  // namespace
