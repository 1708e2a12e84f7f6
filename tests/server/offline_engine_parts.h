// What a RolloutEngine needs besides its database, for tests whose engine publishes
// nothing: a targets key made in a scratch folder (valid 100 years from 2023-11-14), the
// database's blob store, an offer builder over them, and an update publisher that is never
// started (its broker, tcp://127.0.0.1:1, is unreachable). Declare it before the engine
// (which holds references to it) and stop the engine first.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {

class OfflineEngineParts {
 public:
  ~OfflineEngineParts() {
    if (!keys_.empty()) std::filesystem::remove_all(keys_);
  }
  // `name` names the key folder (tf-<name>-<pid>), the publisher's client and share group;
  // fails the test when the key cannot be made.
  void set_up(storage::Database& db, const std::string& name) {
    keys_ =
        std::filesystem::temp_directory_path() / ("tf-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(keys_);
    auto key = update::init_keys(keys_.string(), 1700000000, 36500);
    ASSERT_TRUE(key) << key.error().message;
    blobs_ = std::make_unique<storage::PgBlobStore>(db);
    builder_ = std::make_unique<server::OfferBuilder>(db, *blobs_, *key);
    publisher_ = std::make_unique<server::UpdatePublisher>("tcp://127.0.0.1:1", "", "",
                                                           name + "-updates", 0.0, name);
  }
  server::OfferBuilder& builder() { return *builder_; }
  server::UpdatePublisher& publisher() { return *publisher_; }

 private:
  std::filesystem::path keys_;
  std::unique_ptr<storage::PgBlobStore> blobs_;
  std::unique_ptr<server::OfferBuilder> builder_;
  std::unique_ptr<server::UpdatePublisher> publisher_;
};

}  // namespace tinyfleet::testing
