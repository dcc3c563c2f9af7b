// The store suite, part 1: every entity's CRUD and its rules, migrations, opening.
// Each TEST_P runs on SQLite and on PostgreSQL (store_test_fixture.h).

#include <sys/stat.h>

#include <string>
#include <vector>

#include "control/store/migrations.h"
#include "gmock/gmock.h"
#include "unit/control/store/store_test_fixture.h"
#include "testing/status_message.h"

namespace triplane::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using triplane::testing::Message;

TEST_P(StoreTest, CreatesGetsListsAndDeletesModels) {
  absl::StatusOr<Model> created =
      store_->CreateModel({.name = "qwen3", .description = "Qwen 3"}, kAdmin);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GT(created->created_at, absl::FromUnixSeconds(1767225600));
  ASSERT_TRUE(store_->CreateModel({.name = "Llama-3.1/8b_q4"}, kNoAudit).ok());

  absl::StatusOr<Model> got = store_->GetModel("qwen3");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->description, "Qwen 3");
  EXPECT_EQ(got->created_at, created->created_at);

  absl::StatusOr<std::vector<Model>> models = store_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "Llama-3.1/8b_q4");  // byte order: upper case first
  EXPECT_EQ((*models)[1].name, "qwen3");

  TP_EXPECT_OK(store_->DeleteModel("qwen3", kAdmin));
  EXPECT_EQ(store_->GetModel("qwen3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteModel("qwen3", kAdmin).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, RejectsDuplicateAndBadModelNames) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  const absl::Status duplicate = store_->CreateModel({.name = "m"}, kNoAudit).status();
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Message(duplicate), HasSubstr("model 'm' already exists"));
  for (const char* bad : {"", "../etc", "a:b", "/abs", "a b", ".hidden", "a//b", "x/"}) {
    EXPECT_EQ(store_->CreateModel({.name = bad}, kNoAudit).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(store_->GetModel("missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, NumbersVersionsAndKeepsEveryField) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  absl::StatusOr<ModelVersion> v1 = store_->CreateModelVersion(MakeVersion("m"), kAdmin);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->version, "1");
  EXPECT_EQ(v1->number, 1);
  absl::StatusOr<ModelVersion> named =
      store_->CreateModelVersion(MakeVersion("m", "v2-q8"), kAdmin);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->version, "v2-q8");
  EXPECT_EQ(named->number, 2);

  absl::StatusOr<ModelVersion> got = store_->GetModelVersion("m", "v2-q8");
  ASSERT_TRUE(got.ok()) << got.status();
  const ModelVersion expected = MakeVersion("m", "v2-q8");
  EXPECT_EQ(got->file_path, expected.file_path);
  EXPECT_EQ(got->size_bytes, expected.size_bytes);
  EXPECT_EQ(got->sha256, expected.sha256);
  EXPECT_EQ(got->source, expected.source);
  EXPECT_EQ(got->gguf, expected.gguf);
  EXPECT_EQ(got->created_at, named->created_at);

  // Numbers are never reused, even after a delete.
  TP_ASSERT_OK(store_->DeleteModelVersion("m", "v2-q8", kAdmin));
  absl::StatusOr<ModelVersion> v3 = store_->CreateModelVersion(MakeVersion("m"), kAdmin);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->version, "3");

  absl::StatusOr<std::vector<ModelVersion>> versions = store_->ListModelVersions("m");
  ASSERT_TRUE(versions.ok()) << versions.status();
  std::vector<std::string> names;
  for (const auto& v : *versions) names.push_back(v.version);
  EXPECT_THAT(names, ElementsAre("1", "3"));
  EXPECT_EQ(store_->ListModelVersions("nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateModel({.name = "a"}, kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("a"), kNoAudit).ok());
  absl::StatusOr<std::vector<ModelVersion>> all = store_->ListModelVersions("");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].model, "a");
}

TEST_P(StoreTest, RejectsBadOrDuplicateVersions) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  EXPECT_EQ(store_->CreateModelVersion(MakeVersion("other"), kNoAudit).status().code(),
            absl::StatusCode::kNotFound);
  ModelVersion bad_sha = MakeVersion("m");
  bad_sha.sha256 = "ABC";
  EXPECT_EQ(store_->CreateModelVersion(bad_sha, kNoAudit).status().code(),
            absl::StatusCode::kInvalidArgument);
  ModelVersion no_path = MakeVersion("m");
  no_path.file_path.clear();
  EXPECT_EQ(store_->CreateModelVersion(no_path, kNoAudit).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).ok());
  EXPECT_EQ(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetModelVersion("m", "v9").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, VersionInUseCannotBeDeleted) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v2"), kNoAudit).ok());
  ASSERT_TRUE(store_->CreateDeployment("chat", {.model = "m", .version = "v1"}, kAdmin).ok());

  const absl::Status in_use = store_->DeleteModelVersion("m", "v1", kAdmin);
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(in_use), HasSubstr("deployment 'chat'"));
  EXPECT_EQ(store_->DeleteModel("m", kAdmin).code(), absl::StatusCode::kFailedPrecondition);
  TP_EXPECT_OK(store_->DeleteModelVersion("m", "v2", kAdmin));  // unused: fine

  // An instance still running the version (its deployment gone) also holds it.
  ASSERT_TRUE(store_
                  ->PutInstance({.id = "chat-0",
                                 .deployment = "chat",
                                 .model = "m",
                                 .version = "v1",
                                 .provider = "local"})
                  .ok());
  TP_ASSERT_OK(store_->DeleteDeployment("chat", kAdmin));
  const absl::Status instance_in_use = store_->DeleteModelVersion("m", "v1", kAdmin);
  EXPECT_EQ(instance_in_use.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(instance_in_use), HasSubstr("instance 'chat-0'"));
  TP_ASSERT_OK(store_->DeleteInstance("chat-0"));
  TP_EXPECT_OK(store_->DeleteModel("m", kAdmin));
  EXPECT_EQ(store_->GetModelVersion("m", "v1").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, DeploymentSpecBumpsGenerationAndStatusDoesNot) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v2"), kNoAudit).ok());
  const DeploymentSpec spec{.model = "m",
                            .version = "v1",
                            .replicas = 2,
                            .engine = {.threads = 4,
                                       .context_length = 2048,
                                       .kv_memory_bytes = int64_t{3} << 30,
                                       .max_batch_tokens = 512,
                                       .kv_type = "q8_0"}};
  DeploymentSpec bad_kv = spec;
  bad_kv.engine.kv_type = "q4_0";
  EXPECT_EQ(store_->CreateDeployment("chat", bad_kv, kAdmin).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Deployment> created = store_->CreateDeployment("chat", spec, kAdmin);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->generation, 1);
  EXPECT_EQ(created->status.phase, DeploymentPhase::kPending);

  absl::StatusOr<Deployment> got = store_->GetDeployment("chat");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec, spec);
  EXPECT_EQ(got->created_at, created->created_at);

  DeploymentSpec scaled = spec;
  scaled.replicas = 3;
  scaled.version = "v2";
  scaled.engine.kv_type = "";
  absl::StatusOr<Deployment> updated = store_->UpdateDeploymentSpec("chat", scaled, 1, kAdmin);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->generation, 2);
  EXPECT_EQ(updated->spec, scaled);
  // Same spec again: nothing changes.
  absl::StatusOr<Deployment> same = store_->UpdateDeploymentSpec("chat", scaled, 0, kAdmin);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->generation, 2);
  // A stale generation loses.
  scaled.replicas = 5;
  EXPECT_EQ(store_->UpdateDeploymentSpec("chat", scaled, 1, kAdmin).status().code(),
            absl::StatusCode::kAborted);

  const DeploymentStatus status{.phase = DeploymentPhase::kDegraded,
                                .reason = "1 of 3 replicas does not fit: needs 4 cores, 2 free",
                                .ready_replicas = 2,
                                .observed_generation = 2};
  absl::StatusOr<Deployment> observed = store_->SetDeploymentStatus("chat", status);
  ASSERT_TRUE(observed.ok()) << observed.status();
  EXPECT_EQ(observed->status, status);
  EXPECT_EQ(observed->generation, 2);
  got = store_->GetDeployment("chat");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, status);
  EXPECT_EQ(got->spec.replicas, 3);
}

TEST_P(StoreTest, CanariesRememberThePreviousVersionAndEventsAreKept) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  for (const char* v : {"v1", "v2", "v3"}) ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", v), kNoAudit).ok());
  DeploymentSpec spec{.model = "m", .version = "v1"};
  ASSERT_TRUE(store_->CreateDeployment("chat", spec, kAdmin).ok());
  spec.canary_version = "v2";
  spec.canary_percent = 10;
  absl::StatusOr<Deployment> canary = store_->UpdateDeploymentSpec("chat", spec, 0, kAdmin);
  ASSERT_TRUE(canary.ok()) << canary.status();
  EXPECT_EQ(canary->spec.canary_version, "v2");
  EXPECT_EQ(canary->previous_version, "");
  // Promoted: the version changes and the old one is remembered for a rollback.
  spec.version = "v2";
  spec.canary_version.clear();
  spec.canary_percent = 0;
  ASSERT_TRUE(store_->UpdateDeploymentSpec("chat", spec, 0, kAdmin).ok());
  absl::StatusOr<Deployment> got = store_->GetDeployment("chat");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->spec.version, "v2");
  EXPECT_EQ(got->previous_version, "v1");
  EXPECT_TRUE(got->spec.canary_version.empty());

  DeploymentSpec bad = spec;
  bad.canary_version = "v2";  // the deployed one
  bad.canary_percent = 5;
  EXPECT_EQ(store_->UpdateDeploymentSpec("chat", bad, 0, kAdmin).status().code(), absl::StatusCode::kInvalidArgument);
  bad.canary_version = "v3";
  bad.canary_percent = 100;
  EXPECT_EQ(store_->UpdateDeploymentSpec("chat", bad, 0, kAdmin).status().code(), absl::StatusCode::kInvalidArgument);
  bad.canary_version = "v9";
  bad.canary_percent = 5;
  EXPECT_EQ(store_->UpdateDeploymentSpec("chat", bad, 0, kAdmin).status().code(), absl::StatusCode::kNotFound);

  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<DeploymentEvent> e =
        store_->AppendEvent({.deployment = i == 1 ? "other" : "chat", .kind = "scaled", .message = fmt::format("#{}", i)});
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->id, i + 1);
  }
  absl::StatusOr<std::vector<DeploymentEvent>> events = store_->ListEvents("chat", 0, 100);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].message, "#2");
  EXPECT_EQ(store_->ListEvents("", 1, 100)->size(), 2u);
  EXPECT_EQ(store_->ListEvents("chat", 0, 1)->size(), 1u);
  EXPECT_EQ(store_->AppendEvent({.deployment = "chat"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, DeploymentRulesAreClearErrors) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).ok());
  const absl::Status missing =
      store_->CreateDeployment("d", {.model = "m", .version = "v9"}, kAdmin).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing), HasSubstr("m:v9"));
  EXPECT_EQ(store_->CreateDeployment("d", {.model = "m", .version = "v1", .replicas = -1}, kAdmin)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->CreateDeployment("d", {.model = "m", .version = "v1"}, kAdmin).ok());
  EXPECT_EQ(store_->CreateDeployment("d", {.model = "m", .version = "v1"}, kAdmin).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      store_->UpdateDeploymentSpec("d", {.model = "m", .version = "v7"}, 0, kAdmin).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(
      store_->UpdateDeploymentSpec("x", {.model = "m", .version = "v1"}, 0, kAdmin).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetDeploymentStatus("x", {}).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateDeployment("e", {.model = "m", .version = "v1"}, kAdmin).ok());
  absl::StatusOr<std::vector<Deployment>> all = store_->ListDeployments();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "d");
  TP_EXPECT_OK(store_->DeleteDeployment("d", kAdmin));
  EXPECT_EQ(store_->DeleteDeployment("d", kAdmin).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, InstancesAreUpsertedListedAndDeleted) {
  Instance instance{.id = "chat-1",
                    .deployment = "chat",
                    .model = "m",
                    .version = "v1",
                    .provider = "local",
                    .host = "127.0.0.1",
                    .port = 41234,
                    .pid = 4242,
                    .state = InstanceState::kStarting,
                    .provider_data = {{"log", "/data/logs/chat-1.log"}}};
  absl::StatusOr<Instance> first = store_->PutInstance(instance);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->created_at, first->updated_at);
  instance.state = InstanceState::kReady;
  instance.restarts = 2;
  instance.last_error = "exit code 1";
  absl::StatusOr<Instance> second = store_->PutInstance(instance);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->created_at, first->created_at);
  EXPECT_GT(second->updated_at, first->updated_at);
  ASSERT_TRUE(
      store_->PutInstance({.id = "other-1", .deployment = "other", .provider = "local"}).ok());

  absl::StatusOr<std::vector<Instance>> of_chat = store_->ListInstances("chat");
  ASSERT_TRUE(of_chat.ok()) << of_chat.status();
  ASSERT_EQ(of_chat->size(), 1u);
  EXPECT_EQ((*of_chat)[0].state, InstanceState::kReady);
  EXPECT_EQ((*of_chat)[0].restarts, 2);
  EXPECT_EQ((*of_chat)[0].port, 41234);
  EXPECT_EQ((*of_chat)[0].pid, 4242);
  EXPECT_EQ((*of_chat)[0].provider_data["log"], "/data/logs/chat-1.log");
  EXPECT_EQ(store_->ListInstances("")->size(), 2u);
  TP_EXPECT_OK(store_->DeleteInstance("chat-1"));
  EXPECT_EQ(store_->GetInstance("chat-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteInstance("chat-1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->PutInstance({.id = "x", .deployment = "d", .provider = "local", .port = 70000})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, KeysKeepDigestsOnlyAndBelongToTeams) {
  ASSERT_TRUE(store_->CreateTeam({.name = "research", .description = "R&D"}, kAdmin).ok());
  EXPECT_EQ(store_->CreateTeam({.name = "research"}, kAdmin).status().code(),
            absl::StatusCode::kAlreadyExists);
  const std::string secret = "tp-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
  const ApiKey key{.id = "key_1",
                   .name = "ci",
                   .digest = Sha256Hex(secret),
                   .role = KeyRole::kUser,
                   .team = "research",
                   .allowed_models = {"qwen3", "llama"},
                   .expires_at = absl::FromUnixSeconds(1800000000)};
  absl::StatusOr<ApiKey> created = store_->CreateApiKey(key, kAdmin);
  ASSERT_TRUE(created.ok()) << created.status();

  absl::StatusOr<ApiKey> by_digest = store_->GetApiKeyByDigest(Sha256Hex(secret));
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->id, "key_1");
  EXPECT_EQ(by_digest->team, "research");
  EXPECT_THAT(by_digest->allowed_models, ElementsAre("qwen3", "llama"));
  EXPECT_EQ(by_digest->expires_at, key.expires_at);
  EXPECT_FALSE(by_digest->revoked_at.has_value());

  // A secret passed where a digest belongs is refused and not echoed.
  ApiKey clear = key;
  clear.id = "key_2";
  clear.digest = secret;
  const absl::Status refused = store_->CreateApiKey(clear, kAdmin).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(refused), Not(HasSubstr(secret)));
  clear.digest = Sha256Hex(secret);
  EXPECT_EQ(store_->CreateApiKey(clear, kAdmin).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateApiKey(key, kAdmin).status().code(), absl::StatusCode::kAlreadyExists);
  ApiKey orphan = key;
  orphan.id = "key_3";
  orphan.digest = Sha256Hex("another");
  orphan.team = "nobody";
  EXPECT_EQ(store_->CreateApiKey(orphan, kAdmin).status().code(), absl::StatusCode::kNotFound);
  orphan.team.clear();
  orphan.role = KeyRole::kAdmin;
  ASSERT_TRUE(store_->CreateApiKey(orphan, kAdmin).ok());

  absl::StatusOr<ApiKey> revoked = store_->RevokeApiKey("key_1", kAdmin);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  ASSERT_TRUE(revoked->revoked_at.has_value());
  EXPECT_EQ(store_->GetApiKey("key_1")->revoked_at, revoked->revoked_at);
  EXPECT_EQ(store_->RevokeApiKey("nope", kAdmin).status().code(), absl::StatusCode::kNotFound);

  absl::StatusOr<std::vector<ApiKey>> keys = store_->ListApiKeys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1].role, KeyRole::kAdmin);
  EXPECT_EQ(store_->DeleteTeam("research", kAdmin).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->CreateTeam({.name = "empty"}, kAdmin).ok());
  TP_EXPECT_OK(store_->DeleteTeam("empty", kAdmin));
  EXPECT_EQ(store_->ListTeams()->size(), 1u);

  // The audit log never carries the digest (nor, of course, the secret).
  absl::StatusOr<std::vector<AuditRecord>> audit = store_->ListAudit({.limit = 1000});
  ASSERT_TRUE(audit.ok());
  for (const AuditRecord& r : *audit) {
    EXPECT_THAT(r.after.dump() + r.before.dump(), Not(HasSubstr(Sha256Hex(secret))));
  }
}

TEST_P(StoreTest, BackendsAreReplacedInPlaceAndTheirKeysStayOutOfTheAudit) {
  const std::string secret = "sk-upstream-secret-0123456789";
  Backend backend{.name = "hosted", .model = "gpt-mini", .base_url = "https://api.example.com/v1",
                  .remote_model = "gpt-4o-mini", .api_key = secret};
  absl::StatusOr<Backend> created = store_->PutBackend(backend, kAdmin);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->api_key, secret);
  backend.base_url = "http://127.0.0.1:9/v1";
  backend.api_key.clear();
  absl::StatusOr<Backend> updated = store_->PutBackend(backend, kAdmin);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->created_at, created->created_at);
  absl::StatusOr<std::vector<Backend>> listed = store_->ListBackends();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ((*listed)[0].remote_model, "gpt-4o-mini");
  EXPECT_TRUE((*listed)[0].api_key.empty());

  for (const char* url : {"ftp://host/v1", "https://user:pw@host/v1", "https://host/v1?key=1", "host/v1", ""}) {
    backend.base_url = url;
    EXPECT_EQ(store_->PutBackend(backend, kAdmin).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
  backend.base_url = "https://api.example.com/v1";
  backend.name = "../etc";
  EXPECT_EQ(store_->PutBackend(backend, kAdmin).status().code(), absl::StatusCode::kInvalidArgument);

  TP_EXPECT_OK(store_->DeleteBackend("hosted", kAdmin));
  EXPECT_EQ(store_->DeleteBackend("hosted", kAdmin).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListBackends()->empty());
  absl::StatusOr<std::vector<AuditRecord>> audit = store_->ListAudit({.limit = 1000});
  ASSERT_TRUE(audit.ok());
  int backend_rows = 0;
  for (const AuditRecord& r : *audit) {
    if (r.target != "backend/hosted") continue;
    ++backend_rows;
    EXPECT_THAT(r.after.dump() + r.before.dump(), Not(HasSubstr(secret)));
  }
  EXPECT_EQ(backend_rows, 3);  // create, update, delete
}

TEST_P(StoreTest, MigrationsAreRecordedAndIdempotentOnReopen) {
  const int64_t latest = Migrations().back().version;
  EXPECT_EQ(store_->SchemaVersion().value_or(-1), latest);
  ASSERT_TRUE(store_->CreateModel({.name = "kept"}, kNoAudit).ok());
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<Store> again = OpenAnother();
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->SchemaVersion().value_or(-1), latest);
    EXPECT_TRUE(again->GetModel("kept").ok());
  }
  for (size_t i = 1; i < Migrations().size(); ++i) {
    EXPECT_EQ(Migrations()[i].version, Migrations()[i - 1].version + 1);
  }
}

TEST_P(StoreTest, RefusesASchemaNewerThanTheBinary) {
  TP_ASSERT_OK(ExecRaw(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"));
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_, dir_.string(), options_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(store.status()), HasSubstr("9999"));
}

TEST_P(StoreTest, DescribesItselfWithoutThePassword) {
  EXPECT_EQ(store_->kind(), GetParam() == BackendKind::kSqlite ? "sqlite" : "postgres");
  EXPECT_THAT(store_->description(), Not(HasSubstr(testing::PostgresServer::kPassword)));
  TP_EXPECT_OK(store_->Ping());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(BackendKind::kSqlite, BackendKind::kPostgres),
                         BackendName);

// ---- Back-end specific ----

TEST(SqliteStoreTest, UsesWalAndAnOwnerOnlyFileInTheDataDir) {
  std::string pattern = (std::filesystem::temp_directory_path() / "triplane-store-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path data_dir = std::filesystem::path(pattern) / "new" / "data";
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite", data_dir.string());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->CreateModel({.name = "m"}, {}).ok());
  const std::filesystem::path file = data_dir / kSqliteFileName;
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(std::filesystem::exists(data_dir / "triplane.db-wal"));
  store->reset();
  std::filesystem::remove_all(pattern);
}

TEST(StoreFactoryTest, AcceptsSqliteAndPostgresUrlsOnly) {
  TP_EXPECT_OK(ValidateStoreUrl("sqlite"));
  TP_EXPECT_OK(ValidateStoreUrl(""));
  TP_EXPECT_OK(ValidateStoreUrl("sqlite:/var/lib/triplane/state.db"));
  TP_EXPECT_OK(ValidateStoreUrl("postgres://u:p@db:5432/triplane"));
  TP_EXPECT_OK(ValidateStoreUrl("postgresql://db/triplane"));
  EXPECT_EQ(ValidateStoreUrl("mysql://x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateStoreUrl("sqlite:").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("redis://x", "/tmp").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StoreFactoryTest, RedactsPostgresPasswords) {
  EXPECT_EQ(RedactPostgresUrl("postgres://user:s3cret@db:5432/tp"),
            "postgres://user:***@db:5432/tp");
  EXPECT_EQ(RedactPostgresUrl("postgres://user@db/tp"), "postgres://user@db/tp");
  EXPECT_EQ(RedactPostgresUrl("postgres://db/tp?user=u&password=s3cret&sslmode=require"),
            "postgres://db/tp?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactPostgresUrl("host=db password=s3cret dbname=tp"),
            "host=db password=*** dbname=tp");
}

TEST(PostgresStoreTest, UnreachableServerIsUnavailable) {
  StoreOptions options;
  options.connect_timeout = absl::Seconds(1);
  // Port 1 on loopback: nothing listens there.
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore("postgres://u:pw@127.0.0.1:1/db", "/tmp", options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(store.status()), Not(HasSubstr("pw@")));
}

}  // namespace
}  // namespace triplane::control
