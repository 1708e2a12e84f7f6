// DeviceRegistry over real gRPC: classes, provisioning onto the real Mosquitto,
// filtered and paginated listing.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <sodium.h>

#include <fstream>

#include "fleetd_fixture.h"
#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/server/broker_password.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"

using namespace std::chrono_literals;

namespace tinyfleet::testing {
namespace {

// One connection attempt to the stack's broker; true when it accepts the account.
bool broker_accepts(const std::string& user, const std::string& password) {
  const std::string uri =
      "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env("TINYFLEET_MQTT_PORT");
  mqtt::async_client client(uri, user, mqtt::create_options(MQTTVERSION_5));
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .user_name(user)
                  .password(password)
                  .connect_timeout(5s)
                  .finalize();
  try {
    client.connect(opts)->wait();
    client.disconnect()->wait();
    return true;
  } catch (const mqtt::exception&) {
    return false;
  }
}

// Polls until the broker (reloading its password file on SIGHUP) agrees: accepts the
// account when `accepted`, refuses it otherwise.
bool broker_eventually(const std::string& user, const std::string& password, bool accepted) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (broker_accepts(user, password) == accepted) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::string passwd_entry(const std::string& user) {
  std::ifstream in(require_env("TINYFLEET_MQTT_PASSWD_FILE"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(user + ":", 0) == 0) return line.substr(user.size() + 1);
  }
  return "";
}

const char* kM4 = R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000})";
const char* kM7 = R"({"ram_bytes":524288,"flash_bytes":2097152,"clock_hz":216000000})";

class Devices : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    EXPECT_EQ(sodium_init() >= 0, true);
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(root_pk_, sk);
    key_file_ = "/tmp/fleetd-root-" + std::to_string(getpid()) + ".pub";
    std::ofstream(key_file_, std::ios::binary)
        .write(reinterpret_cast<const char*>(root_pk_), sizeof root_pk_);
    return {{"keys.root_public_key_file", key_file_},
            {"mqtt.host", require_env("TINYFLEET_MQTT_HOST")},
            {"mqtt.port", require_env("TINYFLEET_MQTT_PORT")},
            {"mqtt.passwd_file", require_env("TINYFLEET_MQTT_PASSWD_FILE")},
            {"mqtt.pid", require_env("TINYFLEET_MQTT_PID")}};
  }
  void TearDown() override { std::remove(key_file_.c_str()); }

  grpc::Status create_class(const std::string& name, const std::string& spec) {
    v1::DeviceClass req, out;
    req.set_name(name);
    req.set_spec_json(spec);
    return devices_->CreateDeviceClass(context_with_token(admin_).get(), req, &out);
  }

  grpc::Status provision(const std::string& id, const std::string& cls,
                         std::vector<std::string> tags, v1::ProvisionDeviceResponse* out) {
    v1::ProvisionDeviceRequest req;
    req.set_id(id);
    req.set_device_class(cls);
    for (const auto& t : tags) req.add_tags(t);
    return devices_->ProvisionDevice(context_with_token(admin_).get(), req, out);
  }

  std::vector<std::string> list_all(const std::string& cls, const std::string& tag,
                                    uint32_t page_size, int* pages) {
    std::vector<std::string> ids;
    std::string token;
    *pages = 0;
    do {
      v1::ListDevicesRequest req;
      req.set_device_class(cls);
      req.set_tag(tag);
      req.set_page_size(page_size);
      req.set_page_token(token);
      v1::ListDevicesResponse resp;
      auto s = devices_->ListDevices(context_with_token(admin_).get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      for (const auto& d : resp.devices()) ids.push_back(d.id());
      token = resp.next_page_token();
      ++*pages;
    } while (!token.empty());
    return ids;
  }

  unsigned char root_pk_[crypto_sign_PUBLICKEYBYTES];
  std::string key_file_;
};

TEST_F(Devices, ProvisionedCredentialsWorkOnTheBrokerForOwnTopics) {
  ASSERT_TRUE(create_class("cortex-m4-256k", kM4).ok());
  const std::string id = "dev-" + std::to_string(getpid());
  v1::ProvisionDeviceResponse p;
  auto s = provision(id, "cortex-m4-256k", {"lab", "eu"}, &p);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << fleetd_->log();
  EXPECT_EQ(p.device().status(), "provisioned");
  EXPECT_EQ(p.mqtt().username(), id);
  EXPECT_EQ(p.mqtt().topic_prefix(), "tinyfleet/v1/default/" + id + "/");
  EXPECT_EQ(p.root_public_key(), std::string(reinterpret_cast<char*>(root_pk_), 32));
  // Only a hash of the password is kept.
  auto hash = scratch_.db().transact([&](pqxx::work& w) {
    return w.exec_params1("SELECT credential_hash FROM devices WHERE id = $1", id)[0]
        .as<std::string>();
  });
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->find(p.mqtt().password()), std::string::npos);

  // The broker reloads its password file on SIGHUP; give it a moment.
  const std::string uri = "tcp://" + p.mqtt().host() + ":" + std::to_string(p.mqtt().port());
  mqtt::async_client client(uri, id, mqtt::create_options(MQTTVERSION_5));
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .user_name(p.mqtt().username())
                  .password(p.mqtt().password())
                  .connect_timeout(5s)
                  .finalize();
  bool connected = false;
  for (int attempt = 0; attempt < 50 && !connected; ++attempt) {
    try {
      client.connect(opts)->wait();
      connected = true;
    } catch (const mqtt::exception&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  ASSERT_TRUE(connected) << "the broker never accepted the provisioned credentials";
  auto own = client.publish(p.mqtt().topic_prefix() + "status", "hello", 1, false);
  own->wait();
  EXPECT_LT(own->get_reason_code(), 0x80);
  int foreign_rc = 0;
  try {
    auto foreign = client.publish("tinyfleet/v1/default/someone-else/status", "x", 1, false);
    foreign->wait();
    foreign_rc = foreign->get_reason_code();
  } catch (const mqtt::exception& e) {
    foreign_rc = e.get_reason_code() ? e.get_reason_code() : 0x80;
  }
  EXPECT_GE(foreign_rc, 0x80) << "a device published on another device's topic";
  client.disconnect()->wait();

  // A wrong password is refused by the broker.
  mqtt::async_client intruder(uri, id + "-x", mqtt::create_options(MQTTVERSION_5));
  auto bad = mqtt::connect_options_builder()
                 .mqtt_version(MQTTVERSION_5)
                 .user_name(id)
                 .password(std::string("not-the-password"))
                 .connect_timeout(5s)
                 .finalize();
  EXPECT_THROW(intruder.connect(bad)->wait(), mqtt::exception);
}

TEST_F(Devices, UnknownClassesAndBadIdsAreRefusedAndStoreNothing) {
  ASSERT_TRUE(create_class("cortex-m4-256k", kM4).ok());
  v1::ProvisionDeviceResponse p;
  auto unknown = provision("dev-a", "cortex-m9", {}, &p);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("cortex-m9"), std::string::npos);
  auto bad_id = provision("bad id/with slash", "cortex-m4-256k", {}, &p);
  EXPECT_EQ(bad_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(count_rows("devices"), 0);

  auto bad_spec = create_class("cortex-m0plus-32k", R"({"ram_bytes": 32768})");
  EXPECT_EQ(bad_spec.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad_spec.error_message().find("flash_bytes"), std::string::npos);
  EXPECT_EQ(create_class("x", "[1,2]").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::GetDeviceRequest get;
  get.set_id("ghost");
  v1::Device d;
  auto ghost = devices_->GetDevice(context_with_token(admin_).get(), get, &d);
  EXPECT_EQ(ghost.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(ghost.error_message().find("'ghost'"), std::string::npos);
}

TEST_F(Devices, ListingRefusesAnUnknownStatusOrClassNameInsteadOfListingNothing) {
  for (const auto& [status, cls] :
       {std::pair<std::string, std::string>{"bogus", ""}, {"Online", ""}, {"", "Not A Class"}}) {
    v1::ListDevicesRequest req;
    req.set_status(status);
    req.set_device_class(cls);
    v1::ListDevicesResponse resp;
    const auto s = devices_->ListDevices(context_with_token(admin_).get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status << cls;
    EXPECT_NE(s.error_message().find(status.empty() ? cls : status), std::string::npos)
        << s.error_message();
  }
  v1::ListDevicesRequest ok;
  ok.set_status("offline");
  v1::ListDevicesResponse resp;
  EXPECT_TRUE(devices_->ListDevices(context_with_token(admin_).get(), ok, &resp).ok());
}

TEST_F(Devices, ListingFiltersByClassAndTagAcrossPages) {
  ASSERT_TRUE(create_class("cortex-m4-256k", kM4).ok());
  ASSERT_TRUE(create_class("cortex-m7-512k", kM7).ok());
  // Many devices: insert them directly (provisioning each would also edit the broker).
  ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
    for (int i = 0; i < 250; ++i) {
      storage::NewDevice d;
      char id[16];
      std::snprintf(id, sizeof id, "d%04d", i);
      d.id = id;
      d.device_class = i % 2 ? "cortex-m7-512k" : "cortex-m4-256k";
      if (i % 5 == 0) d.tags = {"canary"};
      d.credential_hash = "x";
      storage::devices::create(w, d);
    }
    return storage::Done{};
  }));
  int pages = 0;
  auto m4 = list_all("cortex-m4-256k", "", 40, &pages);
  EXPECT_EQ(m4.size(), 125u);
  EXPECT_EQ(pages, 4);
  EXPECT_TRUE(std::is_sorted(m4.begin(), m4.end()));
  auto canary_m7 = list_all("cortex-m7-512k", "canary", 1000, &pages);
  EXPECT_EQ(canary_m7.size(), 25u);  // odd multiples of 5 below 250
  EXPECT_EQ(pages, 1);
  auto all = list_all("", "", 0, &pages);
  EXPECT_EQ(all.size(), 250u);
  EXPECT_EQ(pages, 3);  // default page of 100
}

TEST_F(Devices, ProvisioningNeverTakesOverTheServersOrAnyNonDeviceBrokerAccount) {
  ASSERT_TRUE(create_class("cortex-m4-256k", kM4).ok());
  // A broker account that is not a device (a service of the deployment's own).
  const std::string svc = "svc-" + std::to_string(getpid());
  server::BrokerAccounts accounts(require_env("TINYFLEET_MQTT_PASSWD_FILE"),
                                  std::stoi(require_env("TINYFLEET_MQTT_PID")));
  ASSERT_TRUE(accounts.add(svc, "svc-password"));
  struct Cleanup {
    server::BrokerAccounts& a;
    std::string name;
    ~Cleanup() { a.remove(name); }
  } cleanup{accounts, svc};
  const std::string server_user = require_env("TINYFLEET_MQTT_SERVER_USER");
  const std::string server_entry = passwd_entry(server_user);
  ASSERT_FALSE(server_entry.empty());

  v1::ProvisionDeviceResponse p;
  auto server = provision(server_user, "cortex-m4-256k", {}, &p);
  EXPECT_EQ(server.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(server.error_message().find("reserved"), std::string::npos) << server.error_message();
  EXPECT_TRUE(p.mqtt().password().empty());
  auto other = provision(svc, "cortex-m4-256k", {}, &p);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(other.error_message().find("not a device"), std::string::npos) << other.error_message();
  EXPECT_TRUE(p.mqtt().password().empty());
  EXPECT_EQ(count_rows("devices"), 0);  // the refusal rolled the device row back

  // fleetd's own entry is untouched and still the server's password; the other account
  // still logs in to the real broker with its own password.
  EXPECT_EQ(passwd_entry(server_user), server_entry);
  const auto salt_end = server_entry.find('$', 7);
  std::string salt(64, '\0');
  size_t salt_len = 0;
  ASSERT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(salt.data()), salt.size(),
                              server_entry.data() + 7, salt_end - 7, nullptr, &salt_len, nullptr,
                              sodium_base64_VARIANT_ORIGINAL),
            0);
  salt.resize(salt_len);
  EXPECT_EQ(
      server::mosquitto_password_hash(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), salt, 101),
      server_entry);
  EXPECT_TRUE(broker_eventually(svc, "svc-password", true));
}

TEST_F(Devices, RotatedCredentialsReplaceTheOldAndDeprovisionedDevicesCannotConnect) {
  ASSERT_TRUE(create_class("cortex-m4-256k", kM4).ok());
  const std::string id = "rot-" + std::to_string(getpid());
  v1::ProvisionDeviceResponse p;
  ASSERT_TRUE(provision(id, "cortex-m4-256k", {}, &p).ok());
  ASSERT_TRUE(broker_eventually(id, p.mqtt().password(), true)) << fleetd_->log();

  v1::RotateDeviceCredentialsRequest rot;
  rot.set_id(id);
  v1::ProvisionDeviceResponse rotated;
  auto s = devices_->RotateDeviceCredentials(context_with_token(admin_).get(), rot, &rotated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rotated.mqtt().username(), id);
  EXPECT_NE(rotated.mqtt().password(), p.mqtt().password());
  EXPECT_TRUE(broker_eventually(id, p.mqtt().password(), false)) << "the old password still works";
  EXPECT_TRUE(broker_eventually(id, rotated.mqtt().password(), true));
  auto hash = scratch_.db().transact([&](pqxx::work& w) {
    return w.exec_params1("SELECT credential_hash FROM devices WHERE id = $1", id)[0]
        .as<std::string>();
  });
  ASSERT_TRUE(hash);
  EXPECT_EQ(*hash, storage::sha256_hex(rotated.mqtt().password()));

  // A viewer can do neither.
  const std::string viewer = make_token("viewer-" + id, v1::ROLE_VIEWER);
  v1::DeprovisionDeviceRequest dep;
  dep.set_id(id);
  v1::Device d;
  EXPECT_EQ(devices_->DeprovisionDevice(context_with_token(viewer).get(), dep, &d).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(devices_->RotateDeviceCredentials(context_with_token(viewer).get(), rot, &rotated)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  s = devices_->DeprovisionDevice(context_with_token(admin_).get(), dep, &d);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(d.status(), "deprovisioned");
  EXPECT_TRUE(broker_eventually(id, rotated.mqtt().password(), false))
      << "a deprovisioned device still connects";
  EXPECT_TRUE(passwd_entry(id).empty());
  int pages = 0;
  EXPECT_TRUE(list_all("", "", 0, &pages).empty());
  v1::ListDevicesRequest gone;
  gone.set_status("deprovisioned");
  v1::ListDevicesResponse resp;
  ASSERT_TRUE(devices_->ListDevices(context_with_token(admin_).get(), gone, &resp).ok());
  ASSERT_EQ(resp.devices_size(), 1);
  EXPECT_EQ(resp.devices(0).id(), id);
  // Neither again: a deprovisioned device has no credentials to rotate.
  EXPECT_EQ(devices_->DeprovisionDevice(context_with_token(admin_).get(), dep, &d).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(devices_->RotateDeviceCredentials(context_with_token(admin_).get(), rot, &rotated)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(passwd_entry(id).empty());

  auto audit = scratch_.db().transact(
      [&](pqxx::work& w) { return storage::audit_log::for_object(w, "device/" + id); });
  ASSERT_TRUE(audit);
  std::vector<std::string> actions;
  for (const auto& e : *audit) actions.push_back(e.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"device.provision", "device.rotate_credentials",
                                               "device.deprovision"}));
}

}  // namespace
}  // namespace tinyfleet::testing
