// The console in headless Chromium (chromium-driver, WebDriver through python3-selenium)
// against a real fleetd, PostgreSQL and Mosquitto: console_browser.py logs in, finds the
// failed canary with its gate's value and a canary drawn against its control group, is
// refused a pause and a create with a viewer token, pauses a rollout and creates one
// through the form with an operator token; screenshots land in the build directory.
#include <gtest/gtest.h>

#include <filesystem>

#include "console_stack.h"

namespace tinyfleet::testing {
namespace {

class ConsoleBrowser : public ConsoleStack {};

TEST_F(ConsoleBrowser, FindsTheFailedCanaryAndPausesARollout) {
  const std::string out = TINYFLEET_CONSOLE_SCREENSHOTS;
  std::filesystem::create_directories(out);
  const std::string command =
      std::string(TINYFLEET_CONSOLE_PYTHON) + " " + TINYFLEET_CONSOLE_BROWSER_SCRIPT +
      " --url http://127.0.0.1:" + std::to_string(fleetd_->console_port()) + "/ --viewer " +
      viewer_ + " --operator " + operator_ + " --out " + out + " 2>&1";
  const auto r = run_command(command);
  std::cout << r.out;
  EXPECT_EQ(r.exit, 0) << r.out;
  // What the browser did reached fleetd: the viewer's pause was refused and logged, the
  // operator's paused the rollout.
  EXPECT_NE(fleetd_->log().find("\"method\":\"console.pause\""), std::string::npos);
  EXPECT_EQ(rollout_state("steady"), "paused");
  EXPECT_EQ(rollout_state("canary-bad"), "rolled_back");
  EXPECT_NE(fleetd_->log().find("\"method\":\"console.create\""), std::string::npos);
  EXPECT_EQ(rollout_state("from-form"), "running");
  for (const char* shot : {"fleet.png", "rollout.png", "canary-control.png", "rollout-create.png",
                           "compile-report.png"}) {
    const auto path = out + "/" + shot;
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_GT(std::filesystem::file_size(path), 1000u) << path;
  }
}

}  // namespace
}  // namespace tinyfleet::testing
