// The device-class spec schema: every field is typed and bounded, unknown fields and
// unknown operator kinds are refused, and each error names the field.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tinyfleet/optimizer_service/device_class.h"

using namespace tinyfleet::optimizer_service;

namespace {

const std::string kBase = R"("ram_bytes":1024,"flash_bytes":4096,"clock_hz":16000000)";

std::string refusal(const std::string& extra) {
  auto c = parse_device_class("x", "{" + kBase + (extra.empty() ? "" : "," + extra) + "}");
  return c ? "" : c.error().message;
}

TEST(DeviceClassSchema, AnUnknownFieldIsRefusedByName) {
  EXPECT_EQ(refusal(R"("ram_byts":1)"),
            "device class 'x' has an unknown field 'ram_byts' (see docs/optimizer.md, \"Device "
            "classes\")");
  EXPECT_NE(refusal(R"("cycles_per_mac":{"conv":1,"matmul":2})").find("cycles_per_mac.matmul"),
            std::string::npos);
}

TEST(DeviceClassSchema, EveryFieldIsTypedAndBounded) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("simd":[1])", "'simd' entry"},
      {R"("simd":[""])", "'simd' entry"},
      {R"("active_mw":"x")", "'active_mw' (a number in 0..10000000)"},
      {R"("idle_mw":1e300)", "'idle_mw'"},
      {R"("active_mw":null)", "'active_mw'"},
      {R"("clock_hz":1e13)", "'clock_hz' (an integer in 1..1000000000000)"},
      {R"("cycles_per_mac":{"conv":"fast"})", "'cycles_per_mac.conv'"},
      {R"("cycles_per_mac":[1])", "'cycles_per_mac'"},
      {R"("description":7)", "'description'"},
      {R"("runtime_ram_bytes":true)", "'runtime_ram_bytes'"},
  };
  for (const auto& [extra, field] : cases) {
    // clock_hz repeats a base key: the later value is the one checked.
    EXPECT_NE(refusal(extra).find(field), std::string::npos) << extra << ": " << refusal(extra);
  }
  auto zero = parse_device_class("x", R"({"ram_bytes":0,"flash_bytes":1,"clock_hz":1})");
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message.find("'ram_bytes'"), std::string::npos);
}

TEST(DeviceClassSchema, TheShippedCatalogParses) {
  std::ifstream in(TINYFLEET_DEVICE_CLASS_CATALOG);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  auto all = parse_catalog(text);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), 5u);
  auto ok = parse_device_class(
      "x", "{" + kBase + R"(,"simd":["dsp"],"cycles_per_mac":{"conv":0.5},"description":"d"})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->cycles_per_mac.at("conv"), 0.5);
  EXPECT_EQ(ok->cycles_per_mac.at("other"), 1.0);
  EXPECT_EQ(ok->simd, (std::vector<std::string>{"dsp"}));
}

}  // namespace
