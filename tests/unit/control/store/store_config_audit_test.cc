// The store suite, part 2: the config center (revisions, changes, watch) and the audit
// log (chaining, verification, tampering). Runs on SQLite and PostgreSQL.

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "unit/control/store/store_test_fixture.h"

namespace triplane::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_P(StoreTest, ConfigChangesBumpTheRevisionByOne) {
  EXPECT_EQ(store_->ConfigRevision().value_or(-1), 0);
  absl::StatusOr<ConfigEntry> a = store_->SetConfig("limits.default", {{"rpm", 60}}, kAdmin);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->revision, 1);
  EXPECT_EQ(a->updated_by, "key_admin");
  ASSERT_EQ(
      store_->SetConfig("prices/qwen3", {{"prompt", 0.1}, {"completion", 0.4}}, kAdmin)->revision,
      2);
  ASSERT_EQ(store_->SetConfig("limits.default", {{"rpm", 120}}, kAdmin)->revision, 3);
  // Setting the value a key already has is not a change.
  absl::StatusOr<ConfigEntry> same = store_->SetConfig("limits.default", {{"rpm", 120}}, kAdmin);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->revision, 3);
  EXPECT_EQ(store_->ConfigRevision().value_or(-1), 3);

  absl::StatusOr<ConfigEntry> got = store_->GetConfig("limits.default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, nlohmann::json({{"rpm", 120}}));
  EXPECT_EQ(got->revision, 3);

  absl::StatusOr<ConfigSnapshot> limits = store_->ListConfig("limits.");
  ASSERT_TRUE(limits.ok());
  EXPECT_EQ(limits->revision, 3);
  ASSERT_EQ(limits->entries.size(), 1u);
  EXPECT_EQ(store_->ListConfig("")->entries.size(), 2u);

  absl::StatusOr<int64_t> deleted = store_->DeleteConfig("prices/qwen3", kAdmin);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 4);
  EXPECT_EQ(store_->GetConfig("prices/qwen3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteConfig("prices/qwen3", kAdmin).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetConfig("bad key", 1, kAdmin).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ConfigRevision().value_or(-1), 4);
}

TEST_P(StoreTest, ChangesSinceGivesTheLastChangeOfEachKey) {
  ASSERT_TRUE(store_->SetConfig("a", 1, kNoAudit).ok());     // 1
  ASSERT_TRUE(store_->SetConfig("b", "x", kNoAudit).ok());   // 2
  ASSERT_TRUE(store_->SetConfig("a", 2, kNoAudit).ok());     // 3
  ASSERT_TRUE(store_->DeleteConfig("b", kNoAudit).ok());     // 4
  ASSERT_TRUE(store_->SetConfig("c", true, kNoAudit).ok());  // 5

  absl::StatusOr<ConfigChanges> all = store_->ConfigChangesSince(0);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->revision, 5);
  ASSERT_EQ(all->changes.size(), 3u);
  EXPECT_EQ(all->changes[0].key, "a");
  EXPECT_EQ(all->changes[0].revision, 3);
  EXPECT_EQ(all->changes[0].value, nlohmann::json(2));
  EXPECT_EQ(all->changes[1].key, "b");
  EXPECT_FALSE(all->changes[1].value.has_value());  // deleted
  EXPECT_EQ(all->changes[2].key, "c");

  absl::StatusOr<ConfigChanges> recent = store_->ConfigChangesSince(3);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->changes.size(), 2u);
  EXPECT_EQ(recent->changes[0].revision, 4);
  EXPECT_TRUE(store_->ConfigChangesSince(5)->changes.empty());
  EXPECT_EQ(store_->ConfigChangesSince(6).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_P(StoreTest, WaitForConfigChangeWakesOnWritesAndTimesOut) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<int64_t> idle = store_->WaitForConfigChange(0, absl::Milliseconds(150));
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ(*idle, 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));

  // A write through this Store wakes the waiter long before the timeout.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(store_->SetConfig("k", 1, kNoAudit).ok());
  });
  const auto before = std::chrono::steady_clock::now();
  absl::StatusOr<int64_t> woken = store_->WaitForConfigChange(0, absl::Seconds(20));
  writer.join();
  ASSERT_TRUE(woken.ok()) << woken.status();
  EXPECT_EQ(*woken, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10));

  // A write by another process (another Store) is seen by polling.
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  std::thread remote([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(other->SetConfig("k", 2, kNoAudit).ok());
  });
  absl::StatusOr<int64_t> polled = store_->WaitForConfigChange(1, absl::Seconds(20));
  remote.join();
  ASSERT_TRUE(polled.ok()) << polled.status();
  EXPECT_EQ(*polled, 2);
}

TEST_P(StoreTest, AuditsEveryMutationWithAnActorAndNothingElse) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kAdmin).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kAdmin).ok());
  ASSERT_TRUE(store_->CreateDeployment("chat", {.model = "m", .version = "v1"}, kAdmin).ok());
  ASSERT_TRUE(
      store_
          ->UpdateDeploymentSpec("chat", {.model = "m", .version = "v1", .replicas = 3}, 0, kAdmin)
          .ok());
  ASSERT_TRUE(store_->SetDeploymentStatus("chat", {.phase = DeploymentPhase::kRunning})
                  .ok());  // not audited
  ASSERT_TRUE(store_->SetConfig("limits", {{"rpm", 1}}, kAdmin).ok());
  ASSERT_TRUE(store_->SetConfig("internal", 1, kNoAudit).ok());  // not audited
  ASSERT_TRUE(store_
                  ->AppendAudit({.actor = "autoscaler",
                                 .action = "deployment.scale_decision",
                                 .target = "deployment/chat",
                                 .after = {{"reason", "queue depth 9 > 4"}}})
                  .ok());

  absl::StatusOr<std::vector<AuditRecord>> rows = store_->ListAudit({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<std::string> actions;
  for (const auto& r : *rows) actions.push_back(r.action);
  EXPECT_THAT(actions, ElementsAre("model.create", "model_version.create", "deployment.create",
                                   "deployment.update", "config.set", "deployment.scale_decision"));
  const AuditRecord& update = (*rows)[3];
  EXPECT_EQ(update.id, 4);
  EXPECT_EQ(update.actor, "key_admin");
  EXPECT_EQ(update.target, "deployment/chat");
  EXPECT_EQ(update.before["replicas"], 1);
  EXPECT_EQ(update.after["replicas"], 3);
  EXPECT_EQ(update.prev_hash, (*rows)[2].hash);
  EXPECT_TRUE((*rows)[0].before.is_null());
  EXPECT_EQ((*rows)[0].prev_hash, kAuditGenesisHash);

  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_TRUE(verdict->ok) << verdict->problem;
  EXPECT_EQ(verdict->rows_checked, 6);

  // Filters and paging.
  absl::StatusOr<std::vector<AuditRecord>> chat =
      store_->ListAudit({.limit = 2, .newest_first = true, .target = "deployment/chat"});
  ASSERT_TRUE(chat.ok());
  ASSERT_EQ(chat->size(), 2u);
  EXPECT_EQ((*chat)[0].action, "deployment.scale_decision");
  EXPECT_EQ((*chat)[1].action, "deployment.update");
  absl::StatusOr<std::vector<AuditRecord>> page =
      store_->ListAudit({.after_id = 2, .before_id = 5});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, 3);
  EXPECT_EQ(store_->ListAudit({.actor = "autoscaler"})->size(), 1u);
  EXPECT_EQ(store_->ListAudit({.limit = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AppendAudit({.action = "x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Five audited changes, rows 1..5.
void FillAudit(Store& store) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store.SetConfig(fmt::format("k{}", i), i, {.actor = "key_admin"}).ok());
  }
}

TEST_P(StoreTest, VerifyAuditFindsAnEditedRow) {
  FillAudit(*store_);
  ASSERT_TRUE(store_->VerifyAudit()->ok);
  TP_ASSERT_OK(ExecRaw("UPDATE audit_log SET after_json = '999' WHERE id = 3"));
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_FALSE(verdict->ok);
  EXPECT_EQ(verdict->first_bad_id, 3);
  EXPECT_THAT(verdict->problem, HasSubstr("edited"));
}

TEST_P(StoreTest, VerifyAuditFindsAnEditedRowWhoseHashWasRecomputed) {
  FillAudit(*store_);
  // Someone who rewrites row 2 and gives it a matching hash still breaks row 3's link.
  StoredAuditRow row{.id = 2,
                     .time_us = 0,
                     .actor = "mallory",
                     .action = "config.set",
                     .target = "config/k1",
                     .before_json = "null",
                     .after_json = "1"};
  const absl::StatusOr<std::vector<AuditRecord>> rows = store_->ListAudit({});
  ASSERT_TRUE(rows.ok());
  row.prev_hash = (*rows)[0].hash;
  row.hash = AuditRowHash(row);
  TP_ASSERT_OK(ExecRaw("UPDATE audit_log SET actor = $1, time_us = $2, hash = $3 WHERE id = 2",
                       {row.actor, row.time_us, row.hash}));
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok());
  EXPECT_FALSE(verdict->ok);
  EXPECT_EQ(verdict->first_bad_id, 3);
}

TEST_P(StoreTest, VerifyAuditFindsDeletedRows) {
  FillAudit(*store_);
  TP_ASSERT_OK(ExecRaw("DELETE FROM audit_log WHERE id = 2"));
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_FALSE(verdict->ok);
  EXPECT_EQ(verdict->first_bad_id, 3);
  EXPECT_THAT(verdict->problem, HasSubstr("row 2 is missing"));
}

TEST_P(StoreTest, VerifyAuditFindsADeletedLastRow) {
  FillAudit(*store_);
  TP_ASSERT_OK(ExecRaw("DELETE FROM audit_log WHERE id = 5"));
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok());
  EXPECT_FALSE(verdict->ok);
  EXPECT_EQ(verdict->first_bad_id, 5);
  EXPECT_THAT(verdict->problem, HasSubstr("missing at the end"));
}

TEST_P(StoreTest, VerifyAuditFindsReorderedRows) {
  FillAudit(*store_);
  // Swap rows 2 and 3 by id.
  TP_ASSERT_OK(ExecRaw(
      "UPDATE audit_log SET id = 100 WHERE id = 2; UPDATE audit_log SET id = 2 WHERE id = 3; "
      "UPDATE audit_log SET id = 3 WHERE id = 100"));
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok());
  EXPECT_FALSE(verdict->ok);
  EXPECT_EQ(verdict->first_bad_id, 2);
}

TEST_P(StoreTest, AuditChainGoesOnAcrossReopen) {
  FillAudit(*store_);
  std::unique_ptr<Store> again = OpenAnother();
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->SetConfig("after-reopen", 1, kAdmin).ok());
  absl::StatusOr<AuditVerification> verdict = store_->VerifyAudit();
  ASSERT_TRUE(verdict.ok());
  EXPECT_TRUE(verdict->ok) << verdict->problem;
  EXPECT_EQ(verdict->rows_checked, 6);
}

}  // namespace
}  // namespace triplane::control
