// fleetctl as an operator and a script use it: every command's --help from the command
// table, --version, unknown or incomplete options refused with exit 2, unknown config
// keys refused, bash completion, and --json on every command against a real fleetd
// (PostgreSQL, gRPC): models list, versions create compiling for every class by
// default, classes list in readable units, status.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "command_table.h"
#include "fleetd_fixture.h"
#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using fleetctl::command_table;

// fleetctl with no fleetd, no config: exit code and stdout + stderr.
CommandResult offline(const std::string& args, const std::string& env = "") {
  return run_command(env + " FLEETCTL_CONFIG=/nonexistent " + std::string(TINYFLEET_FLEETCTL) +
                     " " + args + " 2>&1");
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FleetctlCli, EveryCommandHasItsOwnHelpListingItsOptions) {
  int commands = 0;
  for (const auto& g : command_table()) {
    for (const auto& v : g.verbs) {
      const std::string cmd = std::string(g.name) + (*v.name ? std::string(" ") + v.name : "");
      const auto r = offline(cmd + " --help");
      EXPECT_EQ(r.exit, 0) << cmd << ": " << r.out;
      EXPECT_NE(r.out.find("Usage: fleetctl " + cmd), std::string::npos) << r.out;
      for (const auto& o : v.options) {
        EXPECT_NE(r.out.find(std::string("--") + o.name), std::string::npos)
            << cmd << " --help does not list --" << o.name;
      }
      ++commands;
    }
  }
  EXPECT_GE(commands, 25);
  // `fleetctl help GROUP VERB` is the same page.
  EXPECT_EQ(offline("help rollouts create").out, offline("rollouts create --help").out);
  const auto none = offline("");
  EXPECT_EQ(none.exit, 2);
  EXPECT_NE(none.out.find("Subcommands:"), std::string::npos);
}

TEST(FleetctlCli, VersionPrintsTheProjectVersion) {
  const auto r = offline("--version");
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(r.out, std::string(TINYFLEET_VERSION) + "\n");
}

TEST(FleetctlCli, WrongCommandLinesAreRefusedNamingWhatIsWrong) {
  struct Case {
    const char* args;
    const char* names;
  } cases[] = {
      {"rollouts list --activ", "--activ"},
      {"devices list --tag", "--tag"},
      {"rollouts create r1 --model m --version two", "takes a number, not 'two'"},
      {"versions get digits x", "takes a number, not 'x'"},
      {"rollouts get", "NAME is required"},
      {"rollouts frobnicate x", "frobnicate"},
      {"frobnicate", "frobnicate"},
      {"versions", "subcommand"},
      {"telemetry --since", "--since"},
      {"rollouts promote r1 --skip-gates", "--skip-gates --reason TEXT"},
  };
  for (const auto& c : cases) {
    const auto r = offline(c.args);
    EXPECT_EQ(r.exit, 2) << c.args << ": " << r.out;
    EXPECT_NE(r.out.find(c.names), std::string::npos) << c.args << ": " << r.out;
  }
}

// keys init leaves the root secret only in --root-dir, never in the folder fleetd reads:
// the same folder for both, a missing --root-dir, or a --dir that holds a root.key are
// refused; rotate signs with the root key from --root-dir.
TEST(FleetctlCli, KeysKeepTheRootSecretOutOfFleetdsFolder) {
  const fs::path dir = fs::temp_directory_path() / ("tf-keys-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string online = (dir / "online").string(), root = (dir / "root").string();
  auto r = offline("keys init --dir " + online);
  EXPECT_EQ(r.exit, 2) << r.out;
  EXPECT_NE(r.out.find("--root-dir"), std::string::npos) << r.out;
  r = offline("keys init --dir " + online + " --root-dir " + online + "/.");
  EXPECT_EQ(r.exit, 4) << r.out;
  EXPECT_NE(r.out.find("must not be in"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(fs::path(online) / "root.key"));

  r = offline("keys init --dir " + online + " --root-dir " + root + " --days 30");
  ASSERT_EQ(r.exit, 0) << r.out;
  EXPECT_TRUE(fs::exists(fs::path(root) / "root.key"));
  EXPECT_FALSE(fs::exists(fs::path(online) / "root.key"));
  for (const char* f : {"targets.key", "targets.cert", "root.pub"}) {
    EXPECT_TRUE(fs::exists(fs::path(online) / f)) << f;
  }
  EXPECT_EQ(read_text(fs::path(online) / "root.pub"), read_text(fs::path(root) / "root.pub"));
  const auto before = read_text(fs::path(online) / "targets.cert");
  r = offline("keys rotate --dir " + online + " --root-dir " + root);
  ASSERT_EQ(r.exit, 0) << r.out;
  EXPECT_NE(read_text(fs::path(online) / "targets.cert"), before);

  fs::copy_file(fs::path(root) / "root.key", fs::path(online) / "root.key");
  r = offline("keys rotate --dir " + online + " --root-dir " + root);
  EXPECT_EQ(r.exit, 4) << "a root.key left in fleetd's folder is refused: " << r.out;
  fs::remove_all(dir);
}

// The root side of root metadata, offline: rotate the targets key and revoke the old one,
// bound the release step, rotate the root to 3 keys needing 2; each writes root-vN.meta to
// both folders and keeps every root secret out of fleetd's.
TEST(FleetctlCli, KeysRotateTheRootAndRevokeATargetsKey) {
  const fs::path dir = fs::temp_directory_path() / ("tf-root-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string online = (dir / "online").string(), root = (dir / "root").string();
  const std::string folders = " --dir " + online + " --root-dir " + root;
  ASSERT_EQ(offline("keys init" + folders).exit, 0);
  auto r = offline("--json keys rotate" + folders);
  ASSERT_EQ(r.exit, 0) << r.out;
  r = offline("--json keys revoke --targets-key " + std::string(64, '0') + folders);
  EXPECT_EQ(r.exit, 4) << "a key the root does not list: " << r.out;
  EXPECT_NE(r.out.find("does not list"), std::string::npos) << r.out;
  r = offline("keys revoke --targets-key xyz" + folders);
  EXPECT_EQ(r.exit, 2) << r.out;
  r = offline("keys release-step --step 0" + folders);
  EXPECT_EQ(r.exit, 2) << r.out;
  r = offline("--json keys release-step --step 1000" + folders);
  ASSERT_EQ(r.exit, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["root_version"], 3);  // v1 init, v2 rotate, v3 the step
  EXPECT_EQ(j["max_release_step"], 1000);
  ASSERT_EQ(j["targets_keys"].size(), 2u);  // the new key and the previous one
  const std::string previous = j["targets_keys"][0];
  r = offline("--json keys revoke --targets-key " + previous + folders);
  ASSERT_EQ(r.exit, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["targets_keys"].size(), 1u);
  r = offline("--json keys rotate-root --root-keys 3 --threshold 2" + folders);
  ASSERT_EQ(r.exit, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["root_version"], 5);
  EXPECT_EQ(j["threshold"], 2);
  EXPECT_EQ(j["root_keys"].size(), 3u);
  for (int v = 1; v <= 5; ++v) {
    const std::string name = "root-v" + std::to_string(v) + ".meta";
    EXPECT_EQ(read_text(fs::path(online) / name), read_text(fs::path(root) / name)) << name;
  }
  for (const char* f : {"root.key", "root-2.key", "root-3.key"}) {
    EXPECT_TRUE(fs::exists(fs::path(root) / f)) << f;
    EXPECT_FALSE(fs::exists(fs::path(online) / f)) << f;
  }
  EXPECT_TRUE(fs::exists(fs::path(root) / "retired" / "v4-root.key"));
  EXPECT_EQ(offline("keys rotate-root --root-keys 2 --threshold 3" + folders).exit, 2);
  fs::remove_all(dir);
}

TEST(FleetctlCli, ConfigFileKeysAreChecked) {
  const fs::path dir = fs::temp_directory_path() / ("tf-cli-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "typo.json") << R"({"endpoint": "127.0.0.1:1", "tokn": "x"})";
  std::ofstream(dir / "number.json") << R"({"endpoint": 7443})";
  auto r = offline("--config " + (dir / "typo.json").string() + " rollouts list");
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.out.find("unknown key 'tokn'"), std::string::npos) << r.out;
  r = offline("--config " + (dir / "number.json").string() + " rollouts list");
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.out.find("endpoint is not a string"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

// Runs the generated completion function for a partial command line.
std::set<std::string> complete(const std::string& script, const std::string& line) {
  const fs::path file = fs::temp_directory_path() / ("tf-comp-" + std::to_string(getpid()));
  std::ofstream(file) << script;
  const std::string cmd = "bash -c 'source " + file.string() + "; COMP_WORDS=(" + line +
                          "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _fleetctl; "
                          "printf \"%s\\n\" \"${COMPREPLY[@]}\"'";
  const auto r = run_command(cmd);
  fs::remove(file);
  std::set<std::string> words;
  std::istringstream in(r.out);
  for (std::string w; in >> w;) words.insert(w);
  return words;
}

TEST(FleetctlCli, BashCompletionComesFromTheCommandTable) {
  const auto r = offline("completion bash");
  ASSERT_EQ(r.exit, 0) << r.out;
  EXPECT_EQ(complete(r.out, "fleetctl roll"), (std::set<std::string>{"rollouts"}));
  EXPECT_EQ(complete(r.out, "fleetctl rollouts p"), (std::set<std::string>{"pause", "promote"}));
  EXPECT_EQ(complete(r.out, "fleetctl rollouts create r1 --ph"),
            (std::set<std::string>{"--phases"}));
  EXPECT_EQ(complete(r.out, "fleetctl telemetry --si"), (std::set<std::string>{"--since"}));
  EXPECT_EQ(complete(r.out, "fleetctl devices list --js"), (std::set<std::string>{"--json"}));
}

TEST(FleetctlCli, TheDocsListEveryCommand) {
  const std::string doc = read_text(fs::path(TINYFLEET_SOURCE_DIR) / "docs" / "fleetctl.md");
  ASSERT_FALSE(doc.empty());
  for (const auto& g : command_table()) {
    for (const auto& v : g.verbs) {
      const std::string cmd =
          std::string("fleetctl ") + g.name + (*v.name ? std::string(" ") + v.name : "");
      EXPECT_NE(doc.find(cmd), std::string::npos) << "docs/fleetctl.md lacks '" << cmd << "'";
      for (const auto& o : v.options) {
        EXPECT_NE(doc.find(std::string("--") + o.name), std::string::npos)
            << "docs/fleetctl.md lacks --" << o.name << " of " << cmd;
      }
    }
  }
}

class FleetctlOnline : public FleetdTest {
 protected:
  // Provisioning writes broker accounts, and fleetd pins a root key.
  std::map<std::string, std::string> fleetd_settings() override {
    EXPECT_GE(sodium_init(), 0);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    key_file_ = fs::temp_directory_path() / ("tf-cli-root-" + std::to_string(getpid()) + ".pub");
    std::ofstream(key_file_, std::ios::binary).write(reinterpret_cast<const char*>(pk), sizeof pk);
    return {{"keys.root_public_key_file", key_file_.string()},
            {"mqtt.host", require_env("TINYFLEET_MQTT_HOST")},
            {"mqtt.port", require_env("TINYFLEET_MQTT_PORT")},
            {"mqtt.passwd_file", require_env("TINYFLEET_MQTT_PASSWD_FILE")},
            {"mqtt.pid", require_env("TINYFLEET_MQTT_PID")}};
  }
  void TearDown() override { fs::remove(key_file_); }
  CommandResult fleetctl(const std::string& args) {
    return run_command("FLEETCTL_ENDPOINT=127.0.0.1:" + std::to_string(fleetd_->port()) +
                       " FLEETCTL_TOKEN=" + admin_ + " FLEETCTL_CONFIG=/nonexistent " +
                       TINYFLEET_FLEETCTL + " " + args + " 2>/dev/null");
  }
  // Runs with --json; the parsed output (the test fails if it is not one JSON value).
  json json_of(const std::string& args, int exit_code = 0) {
    const auto r = fleetctl(args + " --json");
    EXPECT_EQ(r.exit, exit_code) << args << ": " << r.out;
    const auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << args << " --json printed: " << r.out;
    return j;
  }
  fs::path key_file_;
};

// fleetd serving TLS: fleetctl gets in with its CA, and without it (or with another CA)
// says the failure is about TLS, not only "Socket closed".
class FleetctlTls : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"tls.cert_file", require_env("TINYFLEET_TLS_CERT")},
            {"tls.key_file", require_env("TINYFLEET_TLS_KEY")}};
  }
  CommandResult fleetctl(const std::string& args) {
    return run_command("FLEETCTL_ENDPOINT=localhost:" + std::to_string(fleetd_->port()) +
                       " FLEETCTL_TOKEN=" + admin_ + " FLEETCTL_CONFIG=/nonexistent " +
                       TINYFLEET_FLEETCTL + " " + args + " 2>&1");
  }
};

TEST_F(FleetctlTls, ATlsProblemIsNamedAsOne) {
  auto r = fleetctl("classes list --ca-file " + require_env("TINYFLEET_TLS_CA"));
  EXPECT_EQ(r.exit, 0) << r.out;
  r = fleetctl("classes list");
  EXPECT_NE(r.exit, 0) << r.out;
  EXPECT_NE(r.out.find("it probably serves TLS; give its CA with --ca-file"), std::string::npos)
      << r.out;
  r = fleetctl("classes list --ca-file " + require_env("TINYFLEET_TLS_ROGUE_CERT"));
  EXPECT_NE(r.exit, 0) << r.out;
  EXPECT_NE(r.out.find("TLS handshake with fleetd failed"), std::string::npos) << r.out;
}

TEST_F(FleetctlOnline, EveryCommandPrintsJsonAndVersionsCompileForEveryClass) {
  auto j = json_of(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  const size_t classes = j["imported"].size();
  EXPECT_GE(classes, 3u);
  j = json_of("classes list");
  ASSERT_EQ(j.size(), classes);
  EXPECT_TRUE(j[0]["spec"].contains("ram_bytes"));
  // Readable units: a Linux class has gigabytes of flash, not "0 KB".
  const auto table = fleetctl("classes list").out;
  EXPECT_NE(table.find(" GB"), std::string::npos) << table;
  EXPECT_NE(table.find("256 KB"), std::string::npos) << table;

  EXPECT_EQ(json_of("models create zeta --description last")["name"], "zeta");
  EXPECT_EQ(json_of("models create alpha")["name"], "alpha");
  j = json_of("models list");
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "alpha");  // by name
  EXPECT_EQ(json_of("models get zeta")["description"], "last");
  EXPECT_EQ(fleetctl("models get nosuch").exit, 3);

  // No --classes: compiled (or refused, with a reason) for every class fleetd knows.
  const auto made =
      fleetctl("versions create alpha --onnx " + fixture_path("models/digits_cnn.onnx") +
               " --calibration " + fixture_path("data/digits_calib.npz") + " --json");
  EXPECT_TRUE(made.exit == 0 || made.exit == 1) << made.out;
  j = json_of("versions get alpha 1");
  EXPECT_EQ(j["artifacts"].size(), classes) << j.dump();
  int compiled = 0;
  for (const auto& a : j["artifacts"]) {
    compiled += a["status"] == "ARTIFACT_STATUS_COMPILED";
    if (a["status"] != "ARTIFACT_STATUS_COMPILED") {
      EXPECT_NE(a["refusal"], "") << a.dump();
    }
  }
  EXPECT_GE(compiled, 1);
  EXPECT_EQ(made.exit, compiled == static_cast<int>(classes) ? 0 : 1);
  j = json_of("versions create zeta --no-compile --onnx " + fixture_path("models/digits_cnn.onnx"));
  EXPECT_EQ(j["version"], 1);
  EXPECT_TRUE(j["artifacts"].empty());
  EXPECT_EQ(json_of("versions list alpha").size(), 1u);

  j = json_of("devices provision d-1 --class cortex-m4-256k --tags a");
  EXPECT_EQ(j["id"], "d-1");
  EXPECT_FALSE(j["password"].get<std::string>().empty());
  EXPECT_EQ(json_of("devices get d-1")["class"], "cortex-m4-256k");
  EXPECT_EQ(json_of("devices list --tag a").size(), 1u);
  EXPECT_EQ(json_of("tokens list").size(), 1u);  // the bootstrap admin token

  j = json_of("status");
  EXPECT_EQ(j["models"], 2);
  EXPECT_EQ(j["devices"]["cortex-m4-256k"]["provisioned"], 1) << j.dump();
  EXPECT_TRUE(j["active_rollouts"].empty());
  const auto screen = fleetctl("status").out;
  EXPECT_NE(screen.find("devices: 1   models: 2   active rollouts: 0"), std::string::npos)
      << screen;

  // Tokens expire; devices get new credentials and are deprovisioned.
  j = json_of("tokens create ci --role operator --ttl-days 7");
  EXPECT_FALSE(j["expires_at"].get<std::string>().empty()) << j.dump();
  EXPECT_EQ(fleetctl("tokens create never --ttl-days 0").exit, 2);
  j = json_of("tokens list");
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["name"], "ci");
  EXPECT_EQ(j[1]["expired"], false);
  EXPECT_NE(fleetctl("tokens list").out.find("EXPIRES"), std::string::npos);
  const std::string first = json_of("devices rotate d-1")["password"];
  EXPECT_FALSE(first.empty());
  EXPECT_NE(json_of("devices rotate d-1")["password"], first);
  EXPECT_EQ(json_of("devices deprovision d-1")["status"], "deprovisioned");
  EXPECT_TRUE(json_of("devices list").empty());
  EXPECT_EQ(json_of("devices list --status deprovisioned").size(), 1u);
  EXPECT_EQ(fleetctl("devices rotate d-1").exit, 3);  // not found: deprovisioned
}

// A .tflite through fleetctl and fleetd's gRPC API: detected (no --format) or declared,
// stored with the version, handed to the compiler; an int8 model needs no calibration
// and compiles for the classes; a declared format the bytes are not in is refused.
TEST_F(FleetctlOnline, UploadsTfliteDeclaredOrDetectedAndCompilesIt) {
  json_of(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  json_of("models create hello");
  const std::string tflite = fixture_path("models/thirdparty/tflite_micro/hello_world_int8.tflite");
  auto j = json_of("versions create hello --model " + tflite + " --classes cortex-m4-256k");
  EXPECT_EQ(j["state"], "OPERATION_STATE_SUCCEEDED") << j.dump();
  j = json_of("versions get hello 1");
  EXPECT_EQ(j["format"], "tflite") << j.dump();
  ASSERT_EQ(j["artifacts"].size(), 1u) << j.dump();
  EXPECT_EQ(j["artifacts"][0]["status"], "ARTIFACT_STATUS_COMPILED") << j.dump();
  EXPECT_GT(j["artifacts"][0]["size"].get<uint64_t>(), 0u);
  j = json_of("versions create hello --format tflite --onnx " + tflite +
              " --classes cortex-m4-256k,cortex-m7-512k");
  EXPECT_EQ(j["state"], "OPERATION_STATE_SUCCEEDED") << j.dump();
  j = json_of("versions get hello 2");
  EXPECT_EQ(j["format"], "tflite");
  for (const auto& a : j["artifacts"]) EXPECT_EQ(a["status"], "ARTIFACT_STATUS_COMPILED") << a;
  // The bytes are not in the declared format: refused at upload, nothing stored.
  const auto wrong = fleetctl("versions create hello --format onnx --model " + tflite);
  EXPECT_NE(wrong.exit, 0);
  const auto onnx_as_tflite = fleetctl("versions create hello --format tflite --model " +
                                       fixture_path("models/digits_cnn.onnx"));
  EXPECT_NE(onnx_as_tflite.exit, 0);
  EXPECT_EQ(json_of("versions list hello").size(), 2u);
  EXPECT_EQ(fleetctl("versions create hello --format caffe --model " + tflite).exit, 2);
  // An ONNX upload without --format is stored as ONNX.
  json_of("versions create hello --no-compile --model " + fixture_path("models/digits_cnn.onnx"));
  EXPECT_EQ(json_of("versions get hello 3")["format"], "onnx");
}

TEST_F(FleetctlOnline, ListModelsPagesByName) {
  for (const char* m : {"m-c", "m-a", "m-b"}) {
    v1::CreateModelRequest req;
    req.set_name(m);
    v1::Model out;
    ASSERT_TRUE(models_->CreateModel(context_with_token(admin_).get(), req, &out).ok());
  }
  v1::ListModelsRequest req;
  req.set_page_size(2);
  v1::ListModelsResponse page;
  ASSERT_TRUE(models_->ListModels(context_with_token(admin_).get(), req, &page).ok());
  ASSERT_EQ(page.models_size(), 2);
  EXPECT_EQ(page.models(0).name(), "m-a");
  EXPECT_EQ(page.next_page_token(), "m-b");
  req.set_page_token(page.next_page_token());
  v1::ListModelsResponse last;
  ASSERT_TRUE(models_->ListModels(context_with_token(admin_).get(), req, &last).ok());
  ASSERT_EQ(last.models_size(), 1);
  EXPECT_EQ(last.models(0).name(), "m-c");
  EXPECT_TRUE(last.next_page_token().empty());
  req.set_page_token("NOT A NAME");
  EXPECT_EQ(models_->ListModels(context_with_token(admin_).get(), req, &last).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(models_->ListModels(context_with_token("").get(), {}, &last).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace tinyfleet::testing
