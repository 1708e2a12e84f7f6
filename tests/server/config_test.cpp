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
      R"({"database": {"uri": "postgresql://file"}, "mqtt": {"port": 1000, "host": "broker"},
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
