// fleetd's UpdatePublisher against the stack's Mosquitto, with device accounts asking for
// chunks (issue 19, point 7): a device asking as fast as it can
// is held to its own bucket and another device is still answered; the payloads kept are
// bounded in bytes (least recently used evicted), and an evicted payload is loaded again
// when its device asks for it, once; an unknown release costs one lookup (then the
// negative cache and the device's lookup bucket hold it back), and a replica that never
// offered answers from the loader (issue 21). And Paho's queue of unsent publishes, full of
// chunk answers while the broker does not read: answers beyond it are dropped and
// counted, and offers wait for room instead of failing.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"
#include "tinyfleet/update/chunk_framing.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet {
namespace {

using namespace std::chrono_literals;
using testing::require_env;

struct Account {
  std::string user, password;
};

std::vector<Account> test_devices(int first, int count) {
  std::vector<Account> out;
  for (const auto& a : tinyfleet::testing::test_devices(first, count)) {
    out.push_back({a.user, a.password});
  }
  return out;
}

std::string uri(const char* port) {
  return "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env(port);
}

const std::string kFleet = "pb" + std::to_string(getpid());

std::string topic(const std::string& device, update::TopicKind kind) {
  char out[update::kMaxTopicBytes];
  EXPECT_TRUE(update::device_topic(kFleet.c_str(), device.c_str(), kind, out, sizeof out).ok());
  return out;
}

// A device: subscribed to its chunk answers, asking for chunks.
struct Device {
  explicit Device(const Account& a) : account(a) {
    // fleetd's listener with a client id of this process's own: the devices' listener
    // would make it the user name, and ctest runs tests using these accounts in parallel.
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    client = std::make_unique<mqtt::async_client>(
        uri("TINYFLEET_MQTT_PORT"), a.user + "-" + std::to_string(getpid()) + "-" + test->name(),
        mqtt::create_options(MQTTVERSION_5));
    client->set_message_callback([this](mqtt::const_message_ptr) { ++answers; });
    client
        ->connect(mqtt::connect_options_builder()
                      .mqtt_version(MQTTVERSION_5)
                      .clean_start(true)
                      .user_name(a.user)
                      .password(a.password)
                      .finalize())
        ->wait();
    client->subscribe(topic(a.user, update::TopicKind::kChunk), 1)->wait();
  }
  ~Device() {
    try {
      client->disconnect()->wait_for(2s);
    } catch (const mqtt::exception&) {
    }
  }
  void ask(uint64_t release, uint64_t offset, uint32_t length) {
    uint8_t req[update::kChunkRequestBytes];
    ASSERT_TRUE(update::encode_chunk_request({release, offset, length}, req, sizeof req).ok());
    client
        ->publish(topic(account.user, update::TopicKind::kChunkRequest), req, sizeof req, 1, false)
        ->wait();
  }
  Account account;
  std::unique_ptr<mqtt::async_client> client;
  std::atomic<int> answers{0};
};

std::unique_ptr<server::UpdatePublisher> publisher(const std::string& name,
                                                   const server::UpdatePublisher::Limits& limits,
                                                   server::UpdatePublisher::PayloadLoader loader) {
  auto p = std::make_unique<server::UpdatePublisher>(
      uri("TINYFLEET_MQTT_PORT"), require_env("TINYFLEET_MQTT_SERVER_USER"),
      require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), name + kFleet, 0, "g-" + name + kFleet);
  p->set_limits(limits);
  if (loader) p->set_payload_loader(std::move(loader));
  if (!p->start()) return nullptr;
  return p;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds within = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

TEST(PublisherBounds, AFloodingDeviceIsHeldToItsOwnBucket) {
  auto accounts = test_devices(15, 2);
  ASSERT_GE(accounts.size(), 2u);
  server::UpdatePublisher::Limits limits;
  limits.device_bytes_per_second = 10000;  // 2 answers of 4 KiB at once, then ~2.4 a second
  auto pub = publisher("pb-bucket-", limits, nullptr);
  ASSERT_TRUE(pub);
  const std::string payload(100000, 'p');
  Device flooder(accounts[0]), other(accounts[1]);
  ASSERT_TRUE(pub->offer(kFleet, flooder.account.user, 1, "offer", payload));
  ASSERT_TRUE(pub->offer(kFleet, other.account.user, 1, "offer", payload));

  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) flooder.ask(1, 4096u * i, 4096);
  other.ask(1, 0, 4096);
  EXPECT_TRUE(eventually([&] { return other.answers.load() == 1; }));
  std::this_thread::sleep_for(300ms);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // At most the burst plus what the rate refilled meanwhile.
  EXPECT_LE(flooder.answers.load(), 2 + static_cast<int>(seconds * 10000 / 4116) + 1);
  EXPECT_GE(flooder.answers.load(), 2);
  EXPECT_GE(pub->requests_deferred_device(), 15u);
  EXPECT_EQ(other.answers.load(), 1);
}

TEST(PublisherBounds, PayloadsAreBoundedInBytesAndAnEvictedOneIsLoadedAgain) {
  auto accounts = test_devices(17, 1);
  server::UpdatePublisher::Limits limits;
  limits.device_bytes_per_second = 0;
  limits.payload_cache_bytes = 250000;
  std::atomic<int> loads{0};
  const std::string payload(100000, 'q');
  auto pub = publisher("pb-lru-", limits,
                       [&](const std::string& fleet, const std::string& device,
                           uint64_t release) -> std::shared_ptr<const std::string> {
                         // The publisher hears every fleet's chunk requests on the stack's
                         // broker: a test running beside this one is not counted.
                         if (fleet != kFleet) return nullptr;
                         ++loads;
                         // What the database holds: only accounts[0]'s offer of release 1.
                         if (device != accounts[0].user || release != 1) {
                           return nullptr;
                         }
                         return std::make_shared<const std::string>(payload);
                       });
  ASSERT_TRUE(pub);
  ASSERT_TRUE(pub->offer(kFleet, accounts[0].user, 1, "offer", payload));
  ASSERT_TRUE(pub->offer(kFleet, "dev-b", 1, "offer", payload));
  EXPECT_EQ(pub->payloads_evicted(), 0u);
  ASSERT_TRUE(pub->offer(kFleet, "dev-c", 1, "offer", payload));
  EXPECT_EQ(pub->payloads_evicted(), 1u);  // accounts[0]'s, the least recently used
  EXPECT_LE(pub->payload_bytes(), limits.payload_cache_bytes);

  Device device(accounts[0]);
  device.ask(1, 0, 1024);
  ASSERT_TRUE(eventually([&] { return device.answers.load() == 1; }));
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(pub->payloads_loaded(), 1u);
  EXPECT_LE(pub->payload_bytes(), limits.payload_cache_bytes);
  // Kept again: the next chunk needs no load.
  device.ask(1, 1024, 1024);
  ASSERT_TRUE(eventually([&] { return device.answers.load() == 2; }));
  EXPECT_EQ(loads.load(), 1);
  // A release the database does not hold costs one lookup and gets no answer; asked
  // again, no lookup (the negative cache).
  device.ask(2, 0, 1024);
  ASSERT_TRUE(eventually([&] { return loads.load() == 2; }));
  device.ask(2, 0, 1024);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(device.answers.load(), 2);
  EXPECT_EQ(loads.load(), 2);
  // A device naming release after release: lookups stop at its bucket (a burst of
  // kLookupBurst, two of it spent above, then 0.5 a second).
  for (uint64_t release = 3; release < 23; ++release) device.ask(release, 0, 1024);
  std::this_thread::sleep_for(500ms);
  EXPECT_LE(loads.load(), 2 + 1 + 1);
  EXPECT_GE(pub->lookups_refused(), 17u);
  EXPECT_EQ(device.answers.load(), 2);

  // Another replica of the same share group, which never offered anything, answers the
  // device from the loader (the offer in the database), then from what it loaded.
  pub.reset();
  loads = 0;
  auto follower = publisher("pb-lru-", limits,
                            [&](const std::string& fleet, const std::string& id,
                                uint64_t release) -> std::shared_ptr<const std::string> {
                              if (fleet != kFleet) return nullptr;  // another test's device
                              ++loads;
                              if (id != accounts[0].user || release != 1) return nullptr;
                              return std::make_shared<const std::string>(payload);
                            });
  ASSERT_TRUE(follower);
  device.ask(1, 2048, 1024);
  ASSERT_TRUE(eventually([&] { return device.answers.load() == 3; }));
  device.ask(1, 3072, 1024);
  ASSERT_TRUE(eventually([&] { return device.answers.load() == 4; }));
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(follower->payloads_loaded(), 1u);
}

// A broker that stops reading (SIGSTOP) while a device asks for 8 KiB chunks: the socket
// fills, then Paho's queue (kMaxQueuedPublishes); the answers past it are dropped and
// counted, and a batch of offers published meanwhile waits for room rather than failing.
// Once the broker reads again (SIGCONT) every offer is acknowledged.
TEST(PublisherBounds, OffersWaitForRoomWhileChunkAnswersFillPahosQueue) {
  testing::PrivateBroker broker(/*persistence=*/false);
  broker.start();
  server::UpdatePublisher pub(broker.uri(), require_env("TINYFLEET_MQTT_SERVER_USER"),
                              require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), "pb-room-" + kFleet, 0,
                              "");
  server::UpdatePublisher::Limits limits;
  limits.device_bytes_per_second = 0;
  pub.set_limits(limits);
  pub.set_requests_from_caller();  // the requests below come through handle_request()
  ASSERT_TRUE(pub.start());
  const std::string payload(65536, 'r');
  ASSERT_TRUE(pub.offer(kFleet, "dev-r", 1, "offer", payload));

  ASSERT_EQ(::kill(broker.pid(), SIGSTOP), 0);
  uint8_t req[update::kChunkRequestBytes];
  // 32 MB of answers: more than the socket's buffers take, and past those 1,000 answers
  // (8 MB) that the broker reads in well under the offers' 5 s once it runs again.
  ASSERT_TRUE(update::encode_chunk_request({1, 0, 8192}, req, sizeof req).ok());
  const std::string request(reinterpret_cast<const char*>(req), sizeof req);
  const std::string request_topic = topic("dev-r", update::TopicKind::kChunkRequest);
  for (int i = 0; i < 4000; ++i) pub.handle_request(request_topic, request);
  EXPECT_GT(pub.chunk_answers_dropped(), 0u);

  std::vector<std::string> offers(10, "signed-offer");
  std::vector<server::UpdatePublisher::Offer> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back({kFleet, "dev-w" + std::to_string(i), 2, &offers[i], "payload"});
  }
  std::thread resume([&] {
    std::this_thread::sleep_for(1s);
    ::kill(broker.pid(), SIGCONT);
  });
  const std::vector<bool> acked = pub.offer_all(std::move(batch));
  resume.join();
  EXPECT_GT(pub.offers_waited(), 0u);  // the first offer found the queue full
  for (size_t i = 0; i < acked.size(); ++i) EXPECT_TRUE(acked[i]) << i;
}

// While the PUBACKs of a batch are awaited, offer_all runs the caller's `meanwhile` (the
// rollout engine applies status reports there) on the caller's thread, every
// kMeanwhileEvery, and the offers go on meanwhile: the first call waits until every offer
// was acknowledged, which never happens if the pipeline waits for it.
TEST(PublisherBounds, OfferAllRunsMeanwhileWhileItsPubacksAreAwaited) {
  testing::PrivateBroker broker(/*persistence=*/false);
  broker.start();
  server::UpdatePublisher pub(broker.uri(), require_env("TINYFLEET_MQTT_SERVER_USER"),
                              require_env("TINYFLEET_MQTT_SERVER_PASSWORD"),
                              "pb-meanwhile-" + kFleet, 0, "");
  ASSERT_TRUE(pub.start());
  constexpr size_t kOffers = 100;  // more than one window (kOfferWindow)
  std::vector<std::string> offers(kOffers, "signed-offer");
  std::vector<server::UpdatePublisher::Offer> batch;
  for (size_t i = 0; i < kOffers; ++i) {
    batch.push_back({kFleet, "dev-m" + std::to_string(i), 3, &offers[i], "payload"});
  }
  // No PUBACK until SIGCONT, 2 s later: the first `meanwhile` comes before it.
  ASSERT_EQ(::kill(broker.pid(), SIGSTOP), 0);
  std::thread resume([&] {
    std::this_thread::sleep_for(2s);
    ::kill(broker.pid(), SIGCONT);
  });
  int calls = 0;
  bool elsewhere = false;
  uint64_t acked_before = 0, acked_during = 0;
  const auto caller = std::this_thread::get_id();
  const std::vector<bool> acked = pub.offer_all(std::move(batch), [&] {
    elsewhere |= std::this_thread::get_id() != caller;
    if (++calls > 1) return;
    acked_before = pub.offers_acked();
    for (int i = 0; i < 1000 && pub.offers_acked() < kOffers; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    acked_during = pub.offers_acked();
  });
  resume.join();
  EXPECT_GE(calls, 1);
  EXPECT_FALSE(elsewhere);
  EXPECT_EQ(acked_before, 0u);  // the broker was stopped
  EXPECT_EQ(acked_during, kOffers);
  for (size_t i = 0; i < acked.size(); ++i) EXPECT_TRUE(acked[i]) << i;
}

// A phase's offers go out over the offer sessions (set_offer_sessions), each its own MQTT
// session, and every offer arrives retained on its device's topic; a reconnect of one of
// them counts in connections() (the engine re-publishes what is outstanding on it).
TEST(PublisherBounds, OffersGoOutOverTheOfferSessionsAndTheirReconnectsCount) {
  testing::PrivateBroker broker(/*persistence=*/false);
  broker.start();
  const std::string id = "pb-lanes-" + kFleet;
  server::UpdatePublisher pub(broker.uri(), require_env("TINYFLEET_MQTT_SERVER_USER"),
                              require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), id, 0, "");
  pub.set_offer_sessions(3);
  ASSERT_TRUE(pub.start());
  ASSERT_EQ(pub.connections(), 1u);
  constexpr size_t kOffers = 150;
  std::vector<std::string> offers;
  std::vector<server::UpdatePublisher::Offer> batch;
  for (size_t i = 0; i < kOffers; ++i) offers.push_back("signed-offer-" + std::to_string(i));
  for (size_t i = 0; i < kOffers; ++i) {
    batch.push_back({kFleet, "dev-l" + std::to_string(i), 4, &offers[i], "payload"});
  }
  const std::vector<bool> acked = pub.offer_all(std::move(batch));
  for (size_t i = 0; i < acked.size(); ++i) EXPECT_TRUE(acked[i]) << i;

  // Every device's offer is there, retained, with its own bytes.
  std::mutex mu;
  std::map<std::string, std::string> seen;
  auto connect = [&](const std::string& client_id) {
    auto c = std::make_unique<mqtt::async_client>(broker.uri(), client_id,
                                                  mqtt::create_options(MQTTVERSION_5));
    c->connect(mqtt::connect_options_builder()
                   .mqtt_version(MQTTVERSION_5)
                   .clean_start(true)
                   .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
                   .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"))
                   .finalize())
        ->wait();
    return c;
  };
  auto watcher = connect("pb-watch-" + kFleet);
  watcher->set_message_callback([&](mqtt::const_message_ptr m) {
    std::lock_guard<std::mutex> lock(mu);
    seen[m->get_topic()] = m->get_payload_str();
  });
  watcher->subscribe("tinyfleet/v1/" + kFleet + "/+/offer", 1)->wait();
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size() == kOffers;
  }));
  {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < kOffers; ++i) {
      EXPECT_EQ(seen[topic("dev-l" + std::to_string(i), update::TopicKind::kOffer)], offers[i]);
    }
  }
  // Another client taking offer session 2's client id disconnects it; it reconnects.
  auto intruder = connect(id + "-o2");
  EXPECT_TRUE(eventually([&] { return pub.connections() == 2; }, 10s)) << pub.connections();
  watcher->disconnect()->wait_for(2s);
}

}  // namespace
}  // namespace tinyfleet
