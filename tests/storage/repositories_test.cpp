#include <gtest/gtest.h>

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

namespace {

class Repositories : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ok = db().transact([&](pqxx::work& w) {
      device_classes::upsert(w, {"cortex-m4-256k", R"({"ram_bytes": 262144})"});
      models::create(w, "kws", "keyword spotting");
      onnx_sha_ = PgBlobStore::put(w, "onnx bytes v1");
      return Done{};
    });
    ASSERT_TRUE(ok) << ok.error().message;
  }

  Database& db() { return scratch_.db(); }

  int64_t count(const std::string& table) {
    return db()
        .transact([&](pqxx::work& w) {
          return w.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
        })
        .value();
  }

  template <class Body>
  Error expect_error(Body body) {
    auto r = db().transact([&](pqxx::work& w) {
      body(w);
      return Done{};
    });
    EXPECT_FALSE(r);
    return r ? Error{ErrorCode::kInternal, "no error"} : r.error();
  }

  ModelVersionRecord make_version(int32_t number = 0) {
    return db()
        .transact([&](pqxx::work& w) {
          return models::create_version(w, {"kws", number, onnx_sha_, {}, {}, {"cortex-m4-256k"}});
        })
        .value();
  }

  ScratchDatabase scratch_;
  std::string onnx_sha_;
};

TEST_F(Repositories, DeviceClassesUpsertFindAndList) {
  auto r = db().transact([](pqxx::work& w) {
    device_classes::upsert(w, {"cortex-m7-512k", R"({"ram_bytes": 524288})"});
    device_classes::upsert(w, {"cortex-m7-512k", R"({"ram_bytes": 1})"});
    return device_classes::list(w);
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].name, "cortex-m7-512k");
  EXPECT_EQ((*r)[1].spec_json, R"({"ram_bytes": 1})");
  auto missing = expect_error([](pqxx::work& w) { device_classes::get(w, "z80-1k"); });
  EXPECT_EQ(missing.code, ErrorCode::kNotFound);
  EXPECT_NE(missing.message.find("'z80-1k'"), std::string::npos);
}

TEST_F(Repositories, ModelsCreateGetAndRefuseDuplicates) {
  auto got = db().transact([](pqxx::work& w) { return models::get(w, "kws"); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->description, "keyword spotting");
  auto dup = expect_error([](pqxx::work& w) { models::create(w, "kws", "again"); });
  EXPECT_EQ(dup.code, ErrorCode::kAlreadyExists);
  auto bad = expect_error([](pqxx::work& w) { models::create(w, "Bad Name!", ""); });
  EXPECT_EQ(bad.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(count("models"), 1);
}

TEST_F(Repositories, VersionsAreNumberedListedAndPaginated) {
  EXPECT_EQ(make_version().version, 1);
  EXPECT_EQ(make_version().version, 2);
  EXPECT_EQ(make_version(7).version, 7);
  auto page = db().transact([](pqxx::work& w) { return models::list_versions(w, "kws", 1, 1); });
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].version, 2);
  EXPECT_EQ((*page)[0].target_classes, std::vector<std::string>{"cortex-m4-256k"});
  auto v7 = db().transact([](pqxx::work& w) { return models::get_version(w, "kws", 7); });
  ASSERT_TRUE(v7);
  EXPECT_EQ(v7->onnx_sha256, onnx_sha_);
}

TEST_F(Repositories, AVersionForAnUnknownModelIsRefusedAndNothingWritten) {
  auto e = expect_error([&](pqxx::work& w) {
    models::create_version(w, {"no-such-model", 0, onnx_sha_, {}, {}, {}});
  });
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_NE(e.message.find("model 'no-such-model' does not exist"), std::string::npos);
  EXPECT_EQ(count("model_versions"), 0);
}

TEST_F(Repositories, ADuplicateVersionNumberIsRefused) {
  make_version(3);
  auto e = expect_error([&](pqxx::work& w) {
    models::create_version(w, {"kws", 3, onnx_sha_, {}, {}, {}});
  });
  EXPECT_EQ(e.code, ErrorCode::kAlreadyExists);
  EXPECT_NE(e.message.find("already has version 3"), std::string::npos);
  EXPECT_EQ(count("model_versions"), 1);
}

TEST_F(Repositories, AVersionNamingAMissingBlobOrClassIsRefused) {
  auto blob = expect_error([](pqxx::work& w) {
    models::create_version(w, {"kws", 0, std::string(64, 'f'), {}, {}, {}});
  });
  EXPECT_EQ(blob.code, ErrorCode::kNotFound);
  EXPECT_NE(blob.message.find("onnx blob"), std::string::npos);
  auto cls = expect_error([&](pqxx::work& w) {
    models::create_version(w, {"kws", 0, onnx_sha_, {}, {}, {"z80-1k"}});
  });
  EXPECT_EQ(cls.code, ErrorCode::kNotFound);
  EXPECT_EQ(count("model_versions"), 0);
}

TEST_F(Repositories, ArtifactsStoreCompiledAndRefusedOutcomes) {
  auto v = make_version();
  auto r = db().transact([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, std::string(4096, '\x7f'));
    artifacts::store(w, {v.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha,
                         R"({"arena_bytes": 1024})", ""});
    return artifacts::list_for_version(w, v.id);
  });
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].size_bytes, 4096);
  EXPECT_EQ((*r)[0].report_json, R"({"arena_bytes": 1024})");

  // A refused outcome is stored, and a later compile replaces it.
  auto v2 = make_version();
  auto refused = db().transact([&](pqxx::work& w) {
    return artifacts::store(w, {v2.id, "cortex-m4-256k", ArtifactStatus::kRefused, std::nullopt,
                                "{}", "arena 300000 B exceeds RAM 262144 B"});
  });
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_EQ(refused->status, ArtifactStatus::kRefused);
  EXPECT_EQ(refused->refusal_reason, "arena 300000 B exceeds RAM 262144 B");
  auto compiled = db().transact([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, std::string(2048, '\x11'));
    return artifacts::store(w, {v2.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha, "{}", ""});
  });
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_EQ(compiled->status, ArtifactStatus::kCompiled);
  EXPECT_EQ(count("artifacts"), 2);
}

TEST_F(Repositories, ACompiledArtifactIsNeverOverwritten) {
  auto v = make_version();
  ArtifactOutputs o;
  o.self_tests = {{"in", "out"}};
  o.modelled_cycles = 7;
  o.arena_bytes = 16;
  auto first = db().transact([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, std::string(4096, '\x7f'));
    return artifacts::store(w,
                            {v.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha, "{}", "", o});
  });
  ASSERT_TRUE(first) << first.error().message;
  // A recompile with other bytes, or a refused one, is refused and changes nothing.
  auto other = expect_error([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, std::string(4096, '\x01'));
    artifacts::store(w, {v.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha, "{}", ""});
  });
  EXPECT_EQ(other.code, ErrorCode::kAlreadyExists);
  EXPECT_NE(other.message.find("immutable"), std::string::npos) << other.message;
  auto refused = expect_error([&](pqxx::work& w) {
    artifacts::store(w,
                     {v.id, "cortex-m4-256k", ArtifactStatus::kRefused, std::nullopt, "{}", "x"});
  });
  EXPECT_EQ(refused.code, ErrorCode::kAlreadyExists);
  // The same bytes again are no change at all.
  auto same = db().transact([&](pqxx::work& w) {
    return artifacts::store(w, {v.id, "cortex-m4-256k", ArtifactStatus::kCompiled,
                                first->artifact_sha256, R"({"other": 1})", ""});
  });
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(same->id, first->id);
  EXPECT_EQ(same->report_json, first->report_json);
  EXPECT_EQ(same->created_at, first->created_at);
  // A row stored without outputs (compiled before they were kept) gets them from a
  // recompile of the same bytes; once it has them, they stay.
  auto old = make_version();
  auto completed = db().transact([&](pqxx::work& w) {
    artifacts::store(
        w, {old.id, "cortex-m4-256k", ArtifactStatus::kCompiled, first->artifact_sha256, "{}", ""});
    auto a = artifacts::store(w, {old.id, "cortex-m4-256k", ArtifactStatus::kCompiled,
                                  first->artifact_sha256, "{}", "", o});
    auto again = o;
    again.modelled_cycles = 8;
    artifacts::store(w, {old.id, "cortex-m4-256k", ArtifactStatus::kCompiled,
                         first->artifact_sha256, "{}", "", again});
    return artifacts::outputs(w, a.id);
  });
  ASSERT_TRUE(completed) << completed.error().message;
  ASSERT_TRUE(completed->has_value());
  EXPECT_EQ((*completed)->modelled_cycles, 7);
  // Nor can any other writer change or delete it: the schema refuses.
  auto direct = db().transact([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, std::string(4096, '\x02'));
    w.exec_params("UPDATE artifacts SET artifact_sha256 = $1 WHERE id = $2", sha, first->id);
    return Done{};
  });
  ASSERT_FALSE(direct);
  EXPECT_NE(direct.error().message.find("immutable"), std::string::npos) << direct.error().message;
  auto deleted = db().transact([&](pqxx::work& w) {
    w.exec_params("DELETE FROM artifacts WHERE id = $1", first->id);
    return Done{};
  });
  ASSERT_FALSE(deleted);
  auto now = db().transact([&](pqxx::work& w) {
    return std::make_pair(artifacts::list_for_version(w, v.id),
                          artifacts::outputs(w, first->id)->modelled_cycles);
  });
  ASSERT_TRUE(now);
  ASSERT_EQ(now->first.size(), 1u);
  EXPECT_EQ(now->first[0].artifact_sha256, first->artifact_sha256);
  EXPECT_EQ(now->second, 7);
}

TEST_F(Repositories, ArtifactOutputsRoundTripTyped) {
  auto v = make_version();
  ArtifactOutputs o;
  o.self_tests = {{std::string("\x80\x00\x7f", 3), std::string("\x01\xff", 2)},
                  {std::string(300, '\x05'), std::string(10, '\0')}};
  o.class_histogram = {0.1f, 0.25f, 0.65f, 1.0f / 3.0f};
  o.mean_top1_confidence = 0.875f;
  o.channel_mean = {0.304f, -1.5e-7f};
  o.channel_std = {0.376f, 3.0e38f};
  o.modelled_cycles = 12345678901;
  o.arena_bytes = 576;
  o.buffers = {{"input", 0, 64, -1, 0}, {"conv1", 64, 512, 0, 1}, {"logits", 0, 10, 3, 4}};
  auto r = db().transact([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, "an artifact");
    auto stored =
        artifacts::store(w, {v.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha, "{}", "", o});
    return std::make_pair(artifacts::outputs(w, stored.id), artifacts::outputs_by_sha256(w, sha));
  });
  ASSERT_TRUE(r) << r.error().message;
  for (const auto& got : {r->first, r->second}) {
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->self_tests.size(), 2u);
    EXPECT_EQ(got->self_tests[0].input, o.self_tests[0].input);
    EXPECT_EQ(got->self_tests[0].output, o.self_tests[0].output);
    EXPECT_EQ(got->self_tests[1].input, o.self_tests[1].input);
    EXPECT_EQ(got->class_histogram, o.class_histogram);  // bit for bit
    EXPECT_EQ(got->mean_top1_confidence, o.mean_top1_confidence);
    EXPECT_EQ(got->channel_mean, o.channel_mean);
    EXPECT_EQ(got->channel_std, o.channel_std);
    EXPECT_EQ(got->modelled_cycles, o.modelled_cycles);
    EXPECT_EQ(got->arena_bytes, 576);
    ASSERT_EQ(got->buffers.size(), 3u);
    EXPECT_EQ(got->buffers[0].tensor, "input");
    EXPECT_EQ(got->buffers[0].first_step, -1);
    EXPECT_EQ(got->buffers[1].offset, 64);
    EXPECT_EQ(got->buffers[1].size, 512);
    EXPECT_EQ(got->buffers[2].last_step, 4);
  }
  // The columns are typed: PostgreSQL itself reads them.
  auto typed = db().transact([&](pqxx::work& w) {
    return w.exec(
        "SELECT modelled_cycles, array_length(drift_class_histogram, 1), "
        "(SELECT sum(length(input)) FROM artifact_self_tests) FROM artifacts")[0];
  });
  ASSERT_TRUE(typed);
  EXPECT_EQ((*typed)[0].as<int64_t>(), 12345678901);
  EXPECT_EQ((*typed)[1].as<int>(), 4);
  EXPECT_EQ((*typed)[2].as<int>(), 303);

  // A buffer past the arena is refused.
  auto outside = o;
  outside.buffers[1].size = 1024;
  auto fresh = make_version();
  auto e = expect_error([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, "an artifact");
    artifacts::store(
        w, {fresh.id, "cortex-m4-256k", ArtifactStatus::kCompiled, sha, "{}", "", outside});
  });
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(e.message.find("'conv1'"), std::string::npos);
  EXPECT_EQ(count("artifact_buffers"), 3);  // only the first artifact's
}

TEST_F(Repositories, AnArtifactForAnUnknownDeviceClassIsRefused) {
  auto v = make_version();
  auto e = expect_error([&](pqxx::work& w) {
    auto sha = PgBlobStore::put(w, "artifact");
    artifacts::store(w, {v.id, "z80-1k", ArtifactStatus::kCompiled, sha, "{}", ""});
  });
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_NE(e.message.find("device class 'z80-1k' does not exist"), std::string::npos);
  EXPECT_EQ(count("artifacts"), 0);
  EXPECT_EQ(count("blobs"), 1);  // only the onnx blob from SetUp: the transaction rolled back
}

TEST_F(Repositories, DevicesCreateFilterPaginateAndUpdate) {
  auto r = db().transact([](pqxx::work& w) {
    for (int i = 0; i < 5; ++i) {
      devices::create(
          w, {"dev-" + std::to_string(i), "f1", "cortex-m4-256k",
              i % 2 ? std::vector<std::string>{"canary", "eu"} : std::vector<std::string>{"eu"},
              "hash"});
    }
    devices::record_seen(w, "dev-3", "online");
    devices::set_current_artifact(w, "dev-3", std::string(64, 'c'));
    DeviceFilter canary;
    canary.tag = "canary";
    auto tagged = devices::list(w, canary);
    DeviceFilter page;
    page.limit = 2;
    page.after_id = "dev-1";
    auto second_page = devices::list(w, page);
    DeviceFilter online;
    online.status = "online";
    return std::make_tuple(tagged, second_page, devices::list(w, online), devices::get(w, "dev-3"));
  });
  ASSERT_TRUE(r) << r.error().message;
  auto& [tagged, second_page, online, dev3] = *r;
  ASSERT_EQ(tagged.size(), 2u);
  EXPECT_EQ(tagged[0].id, "dev-1");
  EXPECT_EQ(tagged[1].id, "dev-3");
  ASSERT_EQ(second_page.size(), 2u);
  EXPECT_EQ(second_page[0].id, "dev-2");
  ASSERT_EQ(online.size(), 1u);
  EXPECT_TRUE(dev3.last_seen.has_value());
  EXPECT_EQ(dev3.current_artifact_sha256, std::string(64, 'c'));
  EXPECT_EQ(dev3.tags, (std::vector<std::string>{"canary", "eu"}));
}

TEST_F(Repositories, ADeviceWithAnUnknownClassIsRefused) {
  auto e = expect_error([](pqxx::work& w) {
    devices::create(w, {"dev-x", "f1", "z80-1k", {}, "hash"});
  });
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_NE(e.message.find("device class 'z80-1k'"), std::string::npos);
  auto dup = expect_error([](pqxx::work& w) {
    devices::create(w, {"dev-y", "f1", "cortex-m4-256k", {}, "hash"});
    devices::create(w, {"dev-y", "f1", "cortex-m4-256k", {}, "hash"});
  });
  EXPECT_EQ(dup.code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(count("devices"), 0);
}

TEST_F(Repositories, AuditLogAppendsInOrder) {
  auto r = db().transact([](pqxx::work& w) {
    audit_log::append(w, {"admin", "model.create", "model/kws", R"({"by": "test"})"});
    audit_log::append(w, {"ops", "model.version", "model/kws", "{}"});
    return audit_log::for_object(w, "model/kws");
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].action, "model.create");
  EXPECT_EQ((*r)[1].actor, "ops");
}

TEST_F(Repositories, ApiTokensAreStoredHashedAndCanBeRevoked) {
  const std::string secret = "tf_0123456789abcdef0123456789abcdef";
  auto r = db().transact([&](pqxx::work& w) {
    api_tokens::create(w, "ci", Role::kOperator, secret);
    auto stored = w.exec("SELECT token_hash FROM api_tokens")[0][0].as<std::string>();
    EXPECT_EQ(stored.find(secret), std::string::npos);
    EXPECT_EQ(stored, sha256_hex(secret));
    auto found = api_tokens::authenticate(w, secret);
    EXPECT_FALSE(api_tokens::authenticate(w, secret + "x").has_value());
    api_tokens::revoke(w, "ci");
    EXPECT_FALSE(api_tokens::authenticate(w, secret).has_value());
    return found;
  });
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->role, Role::kOperator);
  auto again = expect_error([](pqxx::work& w) { api_tokens::revoke(w, "ci"); });
  EXPECT_EQ(again.code, ErrorCode::kNotFound);
}

TEST_F(Repositories, ApiTokensExpireAfterTheirLifetime) {
  const std::string secret = "tf_expiring_0123456789abcdef012345";
  auto r = db().transact([&](pqxx::work& w) {
    auto t = api_tokens::create(w, "short", Role::kViewer, secret, 3600);
    EXPECT_TRUE(t.expires_at.has_value());
    EXPECT_FALSE(t.expired);
    EXPECT_FALSE(api_tokens::authenticate(w, secret)->expired);
    w.exec("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short'");
    return api_tokens::authenticate(w, secret);
  });
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE((*r)->expired);
  for (int64_t ttl : {int64_t{0}, int64_t{-5}, api_tokens::kMaxTtlSeconds + 1}) {
    auto e = expect_error([&](pqxx::work& w) {
      api_tokens::create(w, "bad" + std::to_string(ttl), Role::kViewer, secret + "x", ttl);
    });
    EXPECT_EQ(e.code, ErrorCode::kInvalidArgument) << ttl;
  }
  auto forever = db().transact([&](pqxx::work& w) {
    return api_tokens::create(w, "boot", Role::kAdmin, secret + "y").expires_at.has_value();
  });
  ASSERT_TRUE(forever);
  EXPECT_FALSE(*forever);
}

}  // namespace

TEST(Operations, LifecycleAndResumeList) {
  ScratchDatabase scratch;
  auto& db = scratch.db();
  auto op = db.transact([](pqxx::work& w) {
                return operations::create(w, "compile", "model/kws/versions/1", R"({"a": 1})", 2);
              }).value();
  EXPECT_EQ(op.state, "pending");
  EXPECT_EQ(op.total, 2);

  auto running = db.transact([&](pqxx::work& w) {
    return operations::update(w, op.id, "running", 1, "cortex-m4-256k compiled");
  });
  ASSERT_TRUE(running) << running.error().message;
  EXPECT_EQ(running->done, 1);
  auto open = db.transact([](pqxx::work& w) { return operations::unfinished(w); }).value();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, op.id);

  ASSERT_TRUE(db.transact(
      [&](pqxx::work& w) { return operations::update(w, op.id, "succeeded", 2, "done"); }));
  EXPECT_TRUE(db.transact([](pqxx::work& w) { return operations::unfinished(w); })->empty());

  // An ended operation does not change again; an unknown one is named.
  auto late = db.transact(
      [&](pqxx::work& w) { return operations::update(w, op.id, "running", 0, "again"); });
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(late.error().message.find("already ended (succeeded)"), std::string::npos);
  auto unknown = db.transact([](pqxx::work& w) { return operations::get(w, 999999); });
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto bad =
      db.transact([&](pqxx::work& w) { return operations::update(w, op.id, "exploded", 0, ""); });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}
