// The telemetry spool (server/src/telemetry_spool.cpp) on a real folder: what one
// process appended and did not remove is replayed, in order, by the next; removed
// segments are not; a record cut short by a crash ends its segment without harm.
#include "tinyfleet/server/telemetry_spool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <tuple>
#include <vector>

namespace tinyfleet::server {
namespace {

namespace fs = std::filesystem;
using Seen = std::vector<std::tuple<std::string, std::string, std::string>>;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-spool-" + std::to_string(getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  Seen replay() {
    TelemetrySpool next(dir_.string());
    EXPECT_TRUE(next.open());
    Seen seen;
    next.replay([&](const std::string& f, const std::string& d, const std::string& p) {
      seen.emplace_back(f, d, p);
    });
    return seen;
  }
  fs::path dir_;
};

TEST_F(SpoolTest, WhatWasNotRemovedIsReplayedInOrderOnce) {
  {
    TelemetrySpool spool(dir_.string());
    ASSERT_TRUE(spool.open());
    spool.append("default", "d1", std::string("\0\1\2", 3));
    const uint64_t stored = spool.seal();
    spool.append("default", "d2", "second");
    spool.seal();  // taken by a batch that never committed
    spool.append("default", "d3", "third");
    spool.remove({stored});  // committed
  }                          // killed: nothing else happens
  const Seen seen = replay();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0],
            std::make_tuple(std::string("default"), std::string("d2"), std::string("second")));
  EXPECT_EQ(seen[1],
            std::make_tuple(std::string("default"), std::string("d3"), std::string("third")));
  EXPECT_TRUE(replay().empty()) << "a replayed segment is replayed again";
}

TEST_F(SpoolTest, ARecordCutShortEndsItsSegment) {
  {
    TelemetrySpool spool(dir_.string());
    ASSERT_TRUE(spool.open());
    spool.append("default", "d1", "whole");
    spool.append("default", "d2", "cut short");
  }
  const auto segment = fs::directory_iterator(dir_)->path();
  fs::resize_file(segment, fs::file_size(segment) - 3);
  const Seen seen = replay();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(std::get<2>(seen[0]), "whole");
}

TEST_F(SpoolTest, AFolderThatCannotBeMadeSpoolsNothing) {
  TelemetrySpool spool("/proc/no-such-folder/spool");
  EXPECT_FALSE(spool.open());
  spool.append("default", "d1", "x");
  EXPECT_EQ(spool.seal(), 0u);
}

}  // namespace
}  // namespace tinyfleet::server
