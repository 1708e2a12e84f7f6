// The firmware's provisioning record parser (firmware/src/provisioning.cpp) on the host:
// the record fleetctl's credentials become, its defaults, and each malformed line refused
// with the line and what is wrong.
#include "tinyfleet/firmware/provisioning.h"

#include <gtest/gtest.h>

#include <string>

namespace tinyfleet::firmware {
namespace {

struct Parsed {
  bool ok = false;
  Provisioning p;
  std::string error;
};

Parsed parse(const std::string& text) {
  Parsed r;
  char error[96] = {};
  r.ok = parse_provisioning(text.data(), text.size(), &r.p, error, sizeof error);
  r.error = error;
  return r;
}

TEST(Provisioning, AFullRecord) {
  const std::string key(64, 'a');
  auto r =
      parse("# device fw-0001\r\nuser=fw-0001\r\npassword=s3cret\nfleet=plant\nroot_key=" + key +
            "\nnow=1795305600\nfactory=0\nmode=run\nrate_ms=250\nwindow_s=3\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_STREQ(r.p.user, "fw-0001");
  EXPECT_STREQ(r.p.password, "s3cret");
  EXPECT_STREQ(r.p.fleet, "plant");
  EXPECT_STREQ(r.p.device, "fw-0001");     // default: the account
  EXPECT_STREQ(r.p.offer_fleet, "plant");  // default: the topics' fleet
  EXPECT_TRUE(r.p.has_root_key);
  EXPECT_EQ(r.p.root_key[0], 0xaa);
  EXPECT_EQ(r.p.root_key[31], 0xaa);
  EXPECT_EQ(r.p.now, 1795305600u);
  EXPECT_FALSE(r.p.factory);
  EXPECT_TRUE(r.p.run);
  EXPECT_EQ(r.p.rate_ms, 250u);
  EXPECT_EQ(r.p.window_s, 3u);
}

TEST(Provisioning, DefaultsAndOverrides) {
  auto r = parse("user=u\npassword=p\ndevice=m4-0001\noffer_fleet=default\nfleet=fwref1");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_STREQ(r.p.device, "m4-0001");
  EXPECT_STREQ(r.p.offer_fleet, "default");
  EXPECT_STREQ(r.p.fleet, "fwref1");
  EXPECT_FALSE(r.p.has_root_key);
  EXPECT_EQ(r.p.now, 0u);
  EXPECT_TRUE(r.p.factory);
  EXPECT_FALSE(r.p.run);
}

TEST(Provisioning, MalformedLinesAreNamed) {
  const std::string base = "user=u\npassword=p\n";
  const std::pair<std::string, std::string> cases[] = {
      {"", "line 0: user and password are required"},
      {"user=u\n", "line 0: user and password are required"},
      {base + "colour=red\n", "line 3: unknown key"},
      {base + "no equals\n", "line 3: no '='"},
      {base + "user=" + std::string(64, 'x') + "\n", "line 3: user: 1..63 printable characters"},
      {base + "user=\n", "line 3: user: 1..63 printable characters"},
      {base + "fleet=a b\n", "line 3: fleet: 1..63 printable characters"},
      {base + "root_key=" + std::string(63, '0') + "\n", "line 3: root_key: 64 hex digits"},
      {base + "root_key=" + std::string(63, '0') + "g\n", "line 3: root_key: 64 hex digits"},
      {base + "now=-1\n", "line 3: now: not a Unix time"},
      {base + "now=99999999999999999999999\n", "line 3: now: not a Unix time"},
      {base + "factory=2\n", "line 3: factory: 0 or 1"},
      {base + "mode=forever\n", "line 3: mode: once or run"},
      {base + "rate_ms=5\n", "line 3: rate_ms: 10..60000"},
      {base + "window_s=0\n", "line 3: window_s: 1..3600"},
  };
  for (const auto& [text, error] : cases) {
    const auto r = parse(text);
    EXPECT_FALSE(r.ok) << text;
    EXPECT_EQ(r.error, error) << text;
  }
}

TEST(Provisioning, AnErrorIsCutToTheCallersBuffer) {
  char error[8];
  Provisioning p;
  const std::string text = "user=u\npassword=p\nmode=x\n";
  EXPECT_FALSE(parse_provisioning(text.data(), text.size(), &p, error, sizeof error));
  EXPECT_STREQ(error, "line 3:");
}

}  // namespace
}  // namespace tinyfleet::firmware
