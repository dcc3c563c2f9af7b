// The management plane with real processes: `triplane serve` (control plane + forwarding
// of /v1 + local engines), the admin CLI against it, engines killed and restarted, the
// serve process itself killed and restarted on the same data dir, pulls over HTTP, and
// the audit chain catching an edited row.

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <map>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "testing/file_server.h"
#include "testing/loopback_name.h"
#include "testing/postgres_server.h"
#include "testing/redis_server.h"
#include "testing/control_plane_fixture.h"
#include "testing/engine_process.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpClient;
using common::Subprocess;
using nlohmann::json;
using ::testing::HasSubstr;

using testing::ReadWholeFile;

using testing::Alive;
using testing::CliResult;
using testing::ControlPlaneTest;

TEST_F(ControlPlaneTest, FirstStartMakesAnAdminKeyAndServesTheDemoModel) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  // The key is printed once, kept only in admin.key (0600), and works.
  ASSERT_THAT(printed_key_, ::testing::StartsWith("tp-"));
  EXPECT_EQ(AdminKey(), printed_key_);
  struct stat st {};
  ASSERT_EQ(::stat((data_dir_ / "admin.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(ReadWholeFile(serve_log_), ::testing::Not(HasSubstr(printed_key_)));

  const json answer = ChatUntilAnswered("demo");
  EXPECT_EQ(answer["model"], "demo");
  EXPECT_EQ(answer["usage"]["completion_tokens"], 8);
  Instances("demo");

  common::HttpClientRequest list{.url = url_ + "/v1/models"};
  list.headers.Set("x-api-key", printed_key_);
  auto models = http_.Send(list);
  ASSERT_TRUE(models.ok());
  EXPECT_THAT(models->body, HasSubstr("\"demo\""));

  // Streaming passes through chunk by chunk and ends with [DONE].
  auto stream = Post("/v1/chat/completions",
                     {{"model", "demo"}, {"stream", true}, {"max_tokens", 4},
                      {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  EXPECT_EQ(stream.status, 200);
  EXPECT_THAT(stream.headers.Get("content-type").value_or(""), HasSubstr("text/event-stream"));
  EXPECT_THAT(stream.body, HasSubstr("data: [DONE]"));

  EXPECT_EQ(Post("/v1/chat/completions", {{"model", "nope"}, {"messages", json::array()}}).status, 404);
  EXPECT_EQ(Post("/v1/chat/completions", json::array()).status, 400);

  // The admin API wants the admin key.
  auto anonymous = http_.Send({.url = url_ + "/admin/v1/overview"});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  common::HttpClientRequest overview{.url = url_ + "/admin/v1/overview"};
  overview.headers.Set("authorization", "Bearer " + printed_key_);
  auto with_key = http_.Send(overview);
  ASSERT_TRUE(with_key.ok());
  EXPECT_EQ(with_key->status, 200) << with_key->body;

  // A second serve on the same data dir refuses at once, in one line.
  auto second = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--data-dir", data_dir_.string()},
                                   .stdout_path = (dir_ / "second.out").string(),
                                   .stderr_path = (dir_ / "second.out").string()});
  ASSERT_TRUE(second.ok());
  auto second_status = (*second)->Wait(60s);
  ASSERT_TRUE(second_status.has_value());
  EXPECT_EQ(second_status->code, 1);
  EXPECT_THAT(ReadWholeFile(dir_ / "second.out"), HasSubstr("in use by another triplane process"));

  // SIGTERM drains the engines too.
  StopServe(SIGTERM);
  for (int64_t pid : engine_pids_) EXPECT_FALSE(Alive(pid)) << pid;
}

TEST_F(ControlPlaneTest, CliDeploysScalesRestartsAndSurvivesARestartOfServe) {
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo", "--local-cores", "8"}));
  const std::string model = WriteModel("tiny.gguf");

  CliResult added = Cli({"models", "add", "tiny", model});
  ASSERT_EQ(added.code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr("added tiny:1 (llama Q8_0"));
  json models = CliJson({"models", "ls"});
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["versions"][0]["gguf"]["has_chat_template"], true);

  CliResult deployed = Cli({"deploy", "web", "--model", "tiny:1", "--replicas", "1", "--wait", "--timeout", "120"});
  ASSERT_EQ(deployed.code, 0) << deployed.err;
  EXPECT_THAT(deployed.out, HasSubstr("1/1 ready, running"));
  ChatUntilAnswered("tiny");

  // 1 → 3: three ready engines on three ports.
  ASSERT_EQ(Cli({"scale", "web", "3", "--wait", "--timeout", "120"}).code, 0);
  json three = Instances("web");
  ASSERT_EQ(three.size(), 3u) << three.dump();
  std::set<int> ports;
  for (const json& i : three) {
    EXPECT_EQ(i["state"], "ready");
    ports.insert(i["port"].get<int>());
  }
  EXPECT_EQ(ports.size(), 3u);
  // Requests spread over them, once the gateway's routes have all three (a reconciler
  // pass and a feed refresh after they are ready).
  std::set<std::string> served_by;
  // (Different prompts: one prompt prefix would stick to one instance.)
  for (int i = 0; i < 500 && served_by.size() < 3; ++i) {
    common::HttpResponse r =
        Post("/v1/completions", {{"model", "tiny"}, {"prompt", "p" + std::to_string(i)}, {"max_tokens", 1}});
    EXPECT_EQ(r.status, 200);
    served_by.insert(std::string(r.headers.Get("x-triplane-instance").value_or("")));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(served_by.size(), 3u);
  // One session sticks to one instance (its prefix cache) while load allows.
  std::set<std::string> session_served_by;
  for (int i = 0; i < 6; ++i) {
    common::HttpClientRequest request{.method = common::HttpMethod::kPost, .url = url_ + "/v1/completions",
                                      .body = json{{"model", "tiny"}, {"prompt", "a"}, {"max_tokens", 1}}.dump()};
    request.headers.Set("authorization", "Bearer " + AdminKey());
    request.headers.Set("x-session-id", "session-7");
    auto r = http_.Send(request);
    ASSERT_TRUE(r.ok());
    session_served_by.insert(std::string(r->headers.Get("x-triplane-instance").value_or("")));
  }
  EXPECT_EQ(session_served_by.size(), 1u);

  // 3 → 1: the surplus engines drain and exit.
  ASSERT_EQ(Cli({"scale", "web", "1", "--wait", "--timeout", "120"}).code, 0);
  json one = Instances("web");
  ASSERT_EQ(one.size(), 1u) << one.dump();
  for (const json& i : three) {
    if (i["id"] != one[0]["id"]) {
      EXPECT_FALSE(Alive(i["pid"].get<int64_t>()));
    }
  }

  // kill -9 the engine: it is replaced, with the restart counted.
  const int64_t killed = one[0]["pid"].get<int64_t>();
  ASSERT_EQ(::kill(static_cast<pid_t>(killed), SIGKILL), 0);
  json replaced;
  for (int i = 0; i < 600 && replaced.is_null(); ++i) {
    for (const json& instance : Instances("web")) {
      if (instance["state"] == "ready" && instance["pid"] != killed) replaced = instance;
    }
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(replaced.is_null());
  EXPECT_GE(replaced["restarts"].get<int>(), 1);
  ChatUntilAnswered("tiny");

  // A version in use cannot be deleted; a deployment that does not fit stays pending.
  CliResult rm = Cli({"models", "rm", "tiny:1"});
  EXPECT_EQ(rm.code, 1);
  EXPECT_EQ(std::count(rm.err.begin(), rm.err.end(), '\n'), 1) << rm.err;
  ASSERT_EQ(Cli({"deploy", "huge", "--model", "tiny", "--threads", "64"}).code, 0);
  json pending;
  for (int i = 0; i < 100; ++i) {
    pending = CliJson({"ps", "huge"});
    if (!pending["status"]["reason"].get<std::string>().empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(pending["status"]["phase"], "pending");
  EXPECT_THAT(pending["status"]["reason"].get<std::string>(), HasSubstr("core"));
  EXPECT_TRUE(pending["instances"].empty());
  ASSERT_EQ(Cli({"undeploy", "huge"}).code, 0);

  // kill -9 serve, start it again: state is intact and the engine is adopted, not restarted.
  StopServe(SIGKILL);
  ASSERT_TRUE(Alive(replaced["pid"].get<int64_t>()));
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo", "--local-cores", "8"}));
  EXPECT_TRUE(printed_key_.empty() || printed_key_ == AdminKey());
  json adopted = Instances("web");
  ASSERT_EQ(adopted.size(), 1u) << adopted.dump();
  EXPECT_EQ(adopted[0]["pid"], replaced["pid"]);
  ChatUntilAnswered("tiny");

  // Every change is in the audit log, and the chain verifies — until a row is edited.
  json audit = CliJson({"audit", "ls", "--limit", "100"});
  std::set<std::string> actions;
  for (const json& row : audit["data"]) actions.insert(row["action"].get<std::string>());
  EXPECT_TRUE(actions.contains("deployment.create")) << audit.dump();
  CliResult verified = Cli({"audit", "verify"});
  EXPECT_EQ(verified.code, 0) << verified.out << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("intact"));

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data_dir_ / "triplane.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE audit_log SET actor = 'mallory' WHERE id = 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  CliResult tampered = Cli({"audit", "verify"});
  EXPECT_EQ(tampered.code, 1);
  EXPECT_THAT(tampered.out, HasSubstr("row 2"));

  StopServe(SIGTERM);
  for (int64_t pid : engine_pids_) EXPECT_FALSE(Alive(pid)) << pid;
}

TEST_F(ControlPlaneTest, PullsOverHttpWithResumeAndRefusesABadChecksum) {
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo"}));
  testing::FileServer files(ReadWholeFile(WriteModel("remote.gguf")));
  files.DropAfter(100'000, 1);  // the first connection breaks mid-file

  CliResult pulled = Cli({"models", "pull", "remote", files.url()});
  ASSERT_EQ(pulled.code, 0) << pulled.err;
  EXPECT_THAT(pulled.out, HasSubstr("pulled remote:1"));
  EXPECT_GE(files.ranges().size(), 1u);  // it resumed with a Range request

  CliResult bad = Cli({"models", "pull", "remote", files.url(), "--version", "2", "--sha256", std::string(64, 'a')});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("checksum mismatch"));
  json versions = CliJson({"models", "inspect", "remote"});
  EXPECT_EQ(versions["versions"].size(), 1u);

  CliResult scheme = Cli({"models", "pull", "remote", "ftp://example.com/x.gguf"});
  EXPECT_EQ(scheme.code, 1);
  EXPECT_EQ(std::count(scheme.err.begin(), scheme.err.end(), '\n'), 1) << scheme.err;
}

TEST_F(ControlPlaneTest, ServeKeepsItsStateInPostgreSql) {
  absl::StatusOr<testing::PostgresServer*> postgres = testing::PostgresServer::Shared();
  ASSERT_TRUE(postgres.ok()) << postgres.status();
  absl::StatusOr<std::string> store = (*postgres)->CreateDatabase(fmt::format("serve{}", ::getpid()));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo", "--store", *store}));
  ASSERT_EQ(Cli({"models", "add", "tiny", WriteModel("tiny.gguf")}).code, 0);
  CliResult deployed = Cli({"deploy", "pg", "--model", "tiny", "--wait", "--timeout", "120"});
  ASSERT_EQ(deployed.code, 0) << deployed.err;
  ChatUntilAnswered("tiny");
  Instances("pg");
  ASSERT_EQ(Cli({"config", "set", "limits.default", "{\"rpm\": 60}"}).code, 0);

  // A clean restart: the engines stop with serve and start again from the stored state.
  StopServe(SIGTERM);
  std::filesystem::remove(data_dir_ / "triplane.db");  // nothing may come from SQLite
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo", "--store", *store}));
  EXPECT_EQ(CliJson({"config", "get", "limits.default"})["value"]["rpm"], 60);
  ChatUntilAnswered("tiny");
  EXPECT_EQ(Instances("pg").size(), 1u);
  EXPECT_EQ(Cli({"audit", "verify"}).code, 0);
  EXPECT_FALSE(std::filesystem::exists(data_dir_ / "triplane.db"));
}

TEST_F(ControlPlaneTest, GatewayChecksKeysAndModelsAndHidesUsageNobodyAskedFor) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  // ignore_eos: a random model may end early; these answers are exactly 3 tokens.
  const json chat = {{"model", "demo"}, {"max_tokens", 3}, {"ignore_eos", true},
                     {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto call = [&](const std::string& key, const json& body = nullptr) {
    common::HttpClientRequest request{.method = common::HttpMethod::kPost,
                                      .url = url_ + "/v1/chat/completions",
                                      .body = (body.is_null() ? chat : body).dump()};
    if (!key.empty()) request.headers.Set("authorization", "Bearer " + key);
    auto response = http_.Send(request);
    EXPECT_TRUE(response.ok());
    return response.ok() ? *response : common::HttpResponse{};
  };
  EXPECT_EQ(call("").status, 401);
  EXPECT_EQ(call("tp-" + std::string(43, 'x')).status, 401);

  // A user key for other models only: 403; for demo: 200.
  json other = CliJson({"keys", "create", "other", "--models", "elsewhere"});
  EXPECT_EQ(call(other["key"]).status, 403);
  json user = CliJson({"keys", "create", "alice"});
  const std::string key = user["key"];
  EXPECT_EQ(call(key).status, 200);

  // Streams carry usage only when asked for (the gateway always asks the engine).
  json stream = chat;
  stream["stream"] = true;
  common::HttpResponse plain = call(key, stream);
  EXPECT_EQ(plain.status, 200);
  EXPECT_THAT(plain.body, HasSubstr("data: [DONE]"));
  EXPECT_THAT(plain.body, ::testing::Not(HasSubstr("usage")));
  stream["stream_options"] = {{"include_usage", true}};
  common::HttpResponse with_usage = call(key, stream);
  EXPECT_THAT(with_usage.body, HasSubstr("\"usage\":{\"completion_tokens\":3"));

  // A revoked key stops working within a second.
  ASSERT_EQ(Cli({"keys", "revoke", user["id"]}).code, 0);
  int status = 200;
  for (int i = 0; i < 100 && status == 200; ++i) {
    status = call(key).status;
    if (status == 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 401);

  // Every answered request is in the usage ledger with the tokens the client saw.
  const std::string alice = user["id"];
  json row;
  for (int i = 0; i < 100; ++i) {
    json totals = CliJson({"usage", "--by", "key", "--key", alice});
    if (!totals["data"].empty() && totals["data"][0]["requests"] == 3) {
      row = totals["data"][0];
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["completion_tokens"], 9);  // three answers of max_tokens 3
  EXPECT_GT(row["prompt_tokens"].get<int>(), 0);
  CliResult csv = Cli({"usage", "--by", "model", "--csv"});
  EXPECT_EQ(csv.code, 0);
  EXPECT_THAT(csv.out, ::testing::StartsWith("model,requests,errors,prompt_tokens"));
  EXPECT_THAT(csv.out, HasSubstr("\ndemo,"));

  // The key's secret is nowhere: not in the log, the database, nor any error body.
  StopServe(SIGTERM);
  const std::string log = ReadWholeFile(serve_log_);
  EXPECT_THAT(log, ::testing::Not(HasSubstr(key)));
  // The request log: one line per request, answered or refused, naming the key by id.
  EXPECT_THAT(log, HasSubstr("request endpoint=chat.completions key=" + alice + " team=- model=demo status=200 instance="));
  EXPECT_THAT(log, HasSubstr("completion_tokens=3"));
  EXPECT_THAT(log, HasSubstr("request endpoint=chat.completions key=- team=- model=- status=401"));
  EXPECT_THAT(log, HasSubstr("key=" + other["id"].get<std::string>() + " team=- model=demo status=403"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(other["key"].get<std::string>())));
  for (const char* file : {"triplane.db", "triplane.db-wal"}) {
    EXPECT_THAT(ReadWholeFile(data_dir_ / file), ::testing::Not(HasSubstr(key))) << file;
  }
}

TEST_F(ControlPlaneTest, LimitsFromTheConfigAnswer429WithRetryAfter) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "limited"});
  const std::string key = user["key"];
  ASSERT_EQ(Cli({"config", "set", "limits.key." + user["id"].get<std::string>(),
                 "{\"requests_per_minute\": 2, \"tokens_per_minute\": 100000}"}).code, 0);
  const json body = {{"model", "demo"}, {"prompt", "a"}, {"max_tokens", 2}};
  common::HttpResponse first = Post("/v1/completions", body, key);
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.Get("x-ratelimit-limit-requests").value_or(""), "2");
  EXPECT_EQ(first.headers.Get("x-ratelimit-remaining-requests").value_or(""), "1");
  EXPECT_EQ(Post("/v1/completions", body, key).status, 200);
  common::HttpResponse third = Post("/v1/completions", body, key);
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_THAT(third.body, HasSubstr("requests_per_minute"));
  const int retry_after = std::stoi(std::string(third.headers.Get("retry-after").value_or("0")));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 60);
  // Other keys are not affected; a request larger than a limit is a 400, not a 429.
  EXPECT_EQ(Post("/v1/completions", body).status, 200);
  ASSERT_EQ(Cli({"config", "set", "limits.default", "{\"tokens_per_minute\": 10}"}).code, 0);
  json small = CliJson({"keys", "create", "small"});
  common::HttpResponse big = Post("/v1/completions", {{"model", "demo"}, {"prompt", "a"}, {"max_tokens", 50}}, small["key"]);
  EXPECT_EQ(big.status, 400) << big.body;
  EXPECT_THAT(big.body, HasSubstr("tokens_per_minute"));

  auto metrics = http_.Send({.url = url_ + "/metrics"});
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("triplane_gateway_rate_limited_total{limit=\"requests_per_minute\"} 1"));
  EXPECT_THAT(metrics->body, HasSubstr("triplane_gateway_requests_total{model=\"demo\",status=\"429\"} 1"));
  EXPECT_THAT(metrics->body, HasSubstr("triplane_gateway_admission_seconds_count"));
}

TEST_F(ControlPlaneTest, ADailyTokenBudgetSurvivesARestart) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "budgeted"});
  const std::string key = user["key"];
  ASSERT_EQ(Cli({"config", "set", "limits.key." + user["id"].get<std::string>(), "{\"tokens_per_day\": 60}"}).code, 0);
  const json body = {{"model", "demo"}, {"prompt", "a"}, {"max_tokens", 10}, {"ignore_eos", true}};
  int answered = 0;
  int status = 200;
  for (; answered < 10 && status == 200; ++answered) status = Post("/v1/completions", body, key).status;
  ASSERT_EQ(status, 429);
  ASSERT_GE(answered, 3);
  // The budget is spent for today: a restart (the ledger seeds the counters) keeps it so.
  StopServe(SIGTERM);
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  EXPECT_EQ(Post("/v1/completions", body, key).status, 429);
}

TEST_F(ControlPlaneTest, AnEngineKilledMidStreamEndsTheStreamWithAnErrorAndAFailedUsageRow) {
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo"}));
  const std::string path = (dir_ / "m15.gguf").string();
  auto writer = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "gguf", "random", "--size", "15m", "--type", "q8_0",
                                            "--out", path}});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Wait(120s).value_or(common::ExitStatus{}).ok());
  ASSERT_EQ(Cli({"models", "add", "m15", path}).code, 0);
  ASSERT_EQ(Cli({"deploy", "m15", "--model", "m15", "--wait", "--timeout", "120"}).code, 0);
  ChatUntilAnswered("m15");
  const int64_t pid = Instances("m15")[0]["pid"].get<int64_t>();
  // Requests answered 503 while the routes caught up are in the ledger too: count from here.
  auto errors = [&] {
    json totals = CliJson({"usage", "--by", "all", "--model", "m15"});
    return totals["data"][0]["errors"].get<int>();
  };
  int before = errors();
  for (int i = 0; i < 20; ++i) {  // rows still queued for the ledger land within ~200 ms
    std::this_thread::sleep_for(50ms);
    before = errors();
  }

  // A long stream; the engine is killed as soon as the first piece arrives.
  common::HttpClientRequest request{
      .method = common::HttpMethod::kPost,
      .url = url_ + "/v1/completions",
      .body = json{{"model", "m15"}, {"prompt", "a"}, {"max_tokens", 1900}, {"ignore_eos", true}, {"stream", true}}.dump()};
  request.headers.Set("authorization", "Bearer " + AdminKey());
  std::mutex mu;
  std::condition_variable done_cv;
  std::string body;
  bool done = false, killed = false;
  int status = 0;
  auto handle = http_.Stream(std::move(request),
                             {.on_head = [&](int s, const common::HttpHeaders&) { status = s; },
                              .on_data = [&](std::string_view data) {
                                std::lock_guard lock(mu);
                                body.append(data);
                                if (!killed) killed = ::kill(static_cast<pid_t>(pid), SIGKILL) == 0;
                                return true;
                              },
                              .on_done = [&](absl::Status) {
                                std::lock_guard lock(mu);
                                done = true;
                                done_cv.notify_all();
                              }});
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(done_cv.wait_for(lock, 60s, [&] { return done; }));
  }
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(killed);
  EXPECT_THAT(body, HasSubstr("\"error\""));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("[DONE]")));

  // The ledger records the request as failed.
  int after = before;
  for (int i = 0; i < 100 && after == before; ++i) {
    std::this_thread::sleep_for(50ms);
    after = errors();
  }
  EXPECT_EQ(after, before + 1);
}

TEST_F(ControlPlaneTest, ARequestToADeadInstanceIsRetriedOnAnother) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  ASSERT_EQ(Cli({"scale", "demo", "2", "--wait", "--timeout", "120"}).code, 0);
  json instances = Instances("demo");
  ASSERT_EQ(instances.size(), 2u);
  // Both are routed to before one dies (the gateway follows within ~250 ms).
  std::set<std::string> served;
  for (int i = 0; i < 200 && served.size() < 2; ++i) {
    common::HttpResponse r = Post("/v1/completions", {{"model", "demo"}, {"prompt", fmt::format("p{}", i)}, {"max_tokens", 1}});
    if (r.status == 200) served.insert(std::string(r.headers.Get("x-triplane-instance").value_or("")));
  }
  ASSERT_EQ(served.size(), 2u);
  const std::string dead = instances[0]["id"];
  ASSERT_EQ(::kill(static_cast<pid_t>(instances[0]["pid"].get<int64_t>()), SIGKILL), 0);
  // Until the control plane notices, the gateway still lists the dead instance: requests
  // that pick it fail to connect, before any answer, and go to the other one.
  for (int i = 0; i < 20; ++i) {
    common::HttpResponse r = Post("/v1/completions", {{"model", "demo"}, {"prompt", fmt::format("q{}", i)}, {"max_tokens", 1}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.headers.Get("x-triplane-instance").value_or(""), dead);
  }
}

TEST_F(ControlPlaneTest, ASplitGatewayFollowsTheControlPlane) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  SplitGateway split = StartGateway();
  const std::string gateway_url = split.url;
  ASSERT_FALSE(gateway_url.empty());
  const std::string serve_url = url_;
  url_ = gateway_url;  // Post() goes to the gateway now
  const json answer = ChatUntilAnswered("demo");
  EXPECT_EQ(answer["model"], "demo");
  // A key made on the control plane works on the gateway as soon as it has followed.
  url_ = serve_url;
  json user = CliJson({"keys", "create", "bob"});
  url_ = gateway_url;
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = Post("/v1/completions", {{"model", "demo"}, {"prompt", "a"}, {"max_tokens", 1}, {"ignore_eos", true}},
                  user["key"]).status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200);
  // A backend whose address leads back to the split gateway (the control plane cannot
  // know its port) is refused by the gateway when it connects, not forwarded to itself.
  if (const std::string loop_name = testing::LoopbackHostName(); !loop_name.empty()) {
    url_ = serve_url;
    const std::string port = gateway_url.substr(gateway_url.rfind(':') + 1);
    ASSERT_EQ(Cli({"backends", "set", "loop", "--model", "gpt-loop", "--url",
                   "http://" + loop_name + ":" + port + "/v1"}).code, 0);
    url_ = gateway_url;
    common::HttpResponse looped;
    for (int i = 0; i < 100; ++i) {
      looped = Post("/v1/completions", {{"model", "gpt-loop"}, {"prompt", "a"}, {"max_tokens", 1}});
      if (looped.status != 404) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(looped.status, 502) << loop_name << ": " << looped.body;
    EXPECT_THAT(looped.body, HasSubstr("refused address")) << looped.body;
    url_ = serve_url;
    EXPECT_EQ(Cli({"backends", "rm", "loop"}).code, 0);
  }
  url_ = serve_url;
  split.process->Signal(SIGTERM);
  auto exit = split.process->Wait(30s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0);
  // Its usage rows reached the control plane's ledger (sent in batches, the rest at exit).
  json bob = CliJson({"usage", "--by", "key", "--key", user["id"]});
  ASSERT_EQ(bob["data"].size(), 1u) << bob.dump();
  EXPECT_EQ(bob["data"][0]["requests"], 1);
  EXPECT_EQ(bob["data"][0]["completion_tokens"], 1);
}

TEST_F(ControlPlaneTest, AnExternalBackendGetsItsKeyAndNobodyElseSeesIt) {
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo"}));
  // The "hosted API": an engine of its own that wants a key, outside the control plane.
  const std::string secret = "sk-upstream-" + std::string(40, 'q');
  const std::filesystem::path engine_out = dir_ / "upstream.out";
  auto upstream = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "engine", "--model", WriteModel("up.gguf"), "--port", "0",
                                              "--served-model-name", "upstream-tiny", "--threads", "1"},
                                     .env = {"TRIPLANE_API_KEY=" + secret},
                                     .stdout_path = engine_out.string(),
                                     .stderr_path = (dir_ / "upstream.log").string()});
  ASSERT_TRUE(upstream.ok());
  std::string engine_url;
  for (int i = 0; i < 3000 && engine_url.empty(); ++i) {
    std::istringstream lines(ReadWholeFile(engine_out));
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("http://")) engine_url = line.substr(0, line.find(' '));
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(engine_url.empty()) << ReadWholeFile(dir_ / "upstream.log");
  auto engine_health = [&] { return http_.Send({.url = engine_url + "/health"}); };
  for (int i = 0; i < 600 && engine_health().value_or(common::HttpResponse{}).status != 200; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  // The engine itself refuses callers without its key.
  auto direct = http_.Send({.method = common::HttpMethod::kPost, .url = engine_url + "/v1/completions",
                            .body = R"({"model":"upstream-tiny","prompt":"a","max_tokens":1})"});
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->status, 401);

  const std::filesystem::path key_file = dir_ / "upstream.key";
  std::ofstream(key_file) << secret << "\n";
  CliResult set = Cli({"backends", "set", "hosted", "--model", "gpt-mini", "--url", engine_url + "/v1",
                       "--remote-model", "upstream-tiny", "--api-key-file", key_file.string()});
  ASSERT_EQ(set.code, 0) << set.err;
  EXPECT_THAT(set.out, HasSubstr("with an API key"));
  json listed = CliJson({"backends", "ls"});
  ASSERT_EQ(listed["data"].size(), 1u);
  EXPECT_EQ(listed["data"][0]["has_api_key"], true);

  const json body = {{"model", "gpt-mini"}, {"prompt", "a"}, {"max_tokens", 2}, {"ignore_eos", true}};
  common::HttpResponse answer;
  for (int i = 0; i < 100; ++i) {  // the gateway follows the new backend within ~250 ms
    answer = Post("/v1/completions", body);
    if (answer.status != 404) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.headers.Get("x-triplane-instance").value_or(""), "backend/hosted");
  EXPECT_EQ(json::parse(answer.body)["usage"]["completion_tokens"], 2);
  json stream_body = body;
  stream_body["stream"] = true;
  common::HttpResponse streamed = Post("/v1/completions", stream_body);
  EXPECT_EQ(streamed.status, 200);
  EXPECT_THAT(streamed.body, HasSubstr("data: [DONE]"));

  // A wrong key is the gateway's problem: 502 saying so, not the upstream's 401.
  std::ofstream(key_file) << "sk-wrong\n";
  ASSERT_EQ(Cli({"backends", "set", "hosted", "--model", "gpt-mini", "--url", engine_url + "/v1",
                 "--remote-model", "upstream-tiny", "--api-key-file", key_file.string()}).code, 0);
  common::HttpResponse refused;
  for (int i = 0; i < 100; ++i) {
    refused = Post("/v1/completions", body);
    if (refused.status != 200) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(refused.status, 502) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("refused the gateway's credentials"));
  EXPECT_EQ(Cli({"backends", "rm", "hosted"}).code, 0);
  EXPECT_NE(Cli({"backends", "set", "bad", "--model", "m", "--url", "file:///etc/passwd"}).code, 0);

  // A backend whose host name leads back to serve itself passes the admin API's literal
  // check; the gateway refuses the connection by the address it reached instead of
  // forwarding each request to itself.
  if (const std::string loop_name = testing::LoopbackHostName(); !loop_name.empty()) {
    const std::string port = url_.substr(url_.rfind(':') + 1);
    ASSERT_EQ(Cli({"backends", "set", "loop", "--model", "gpt-loop", "--url",
                   "http://" + loop_name + ":" + port + "/v1"}).code, 0);
    const json loop_body = {{"model", "gpt-loop"}, {"prompt", "a"}, {"max_tokens", 1}};
    common::HttpResponse looped;
    for (int i = 0; i < 100; ++i) {
      looped = Post("/v1/completions", loop_body);
      if (looped.status != 404) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(looped.status, 502) << loop_name << ": " << looped.body;
    EXPECT_THAT(looped.body, HasSubstr("refused address")) << looped.body;
    EXPECT_EQ(Cli({"backends", "rm", "loop"}).code, 0);
  }

  // The ledger names the backend as the instance.
  json rows = CliJson({"usage", "--by", "model", "--model", "gpt-mini"});
  ASSERT_EQ(rows["data"].size(), 1u);
  EXPECT_GE(rows["data"][0]["requests"].get<int>(), 2);

  // The key is in no answer, no audit row and no log line.
  const std::string audit = Cli({"audit", "ls", "--json"}).out;
  EXPECT_THAT(audit, HasSubstr("backend/hosted"));
  EXPECT_THAT(audit, ::testing::Not(HasSubstr(secret)));
  EXPECT_THAT(listed.dump(), ::testing::Not(HasSubstr(secret)));
  (*upstream)->Signal(SIGTERM);
  EXPECT_TRUE((*upstream)->Wait(30s).has_value());
  StopServe(SIGTERM);
  EXPECT_THAT(ReadWholeFile(serve_log_), HasSubstr("model=gpt-mini status=200 instance=backend/hosted"));
  EXPECT_THAT(ReadWholeFile(serve_log_), ::testing::Not(HasSubstr(secret)));
  EXPECT_THAT(ReadWholeFile(dir_ / "upstream.log"), ::testing::Not(HasSubstr(secret)));
}

TEST_F(ControlPlaneTest, TwoGatewaysOnOneRedisNeverOvershootADailyBudget) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_NO_FATAL_FAILURE(StartServe({"--limits", (*redis)->Url()}));
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "shared-budget"});
  const std::string key = user["key"], id = user["id"];
  constexpr int kBudget = 600;
  ASSERT_EQ(Cli({"config", "set", "limits.key." + id, fmt::format("{{\"tokens_per_day\": {}}}", kBudget)}).code, 0);
  SplitGateway a = StartGateway({"--limits", (*redis)->Url()});
  SplitGateway b = StartGateway({"--limits", (*redis)->Url()});
  ASSERT_FALSE(a.url.empty());
  ASSERT_FALSE(b.url.empty());

  // 8 clients per gateway spend one budget until both gateways refuse.
  const json body = {{"model", "demo"}, {"prompt", "hello"}, {"max_tokens", 8}, {"ignore_eos", true}};
  std::atomic<int64_t> seen_tokens{0};
  std::atomic<int> answered{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client;
      const std::string& url = (c % 2 == 0 ? a : b).url;
      for (int consecutive_429 = 0, i = 0; consecutive_429 < 3 && i < 400; ++i) {
        common::HttpClientRequest request{.method = common::HttpMethod::kPost, .url = url + "/v1/completions",
                                          .body = body.dump()};
        request.headers.Set("authorization", "Bearer " + key);
        auto response = client.Send(request);
        if (!response.ok()) {
          ++other;
          continue;
        }
        if (response->status == 200) {
          consecutive_429 = 0;
          ++answered;
          const json usage = json::parse(response->body, nullptr, false)["usage"];
          seen_tokens += usage.value("total_tokens", 0);
        } else if (response->status == 429) {
          ++consecutive_429, ++refused;
        } else if (response->status == 404 || response->status == 503) {
          std::this_thread::sleep_for(50ms);  // the gateway is still following
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(answered.load(), 0);
  EXPECT_GT(refused.load(), 0);
  // Never over: the tokens clients saw, and those the ledger recorded, fit the budget.
  EXPECT_LE(seen_tokens.load(), kBudget);
  for (SplitGateway* g : {&a, &b}) {
    g->process->Signal(SIGTERM);
    auto exit = g->process->Wait(30s);
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->code, 0) << ReadWholeFile(g->log);
  }
  json totals = CliJson({"usage", "--by", "key", "--key", id});
  ASSERT_EQ(totals["data"].size(), 1u);
  const int64_t ledger = totals["data"][0]["prompt_tokens"].get<int64_t>() + totals["data"][0]["completion_tokens"].get<int64_t>();
  EXPECT_EQ(ledger, seen_tokens.load());
  EXPECT_LE(ledger, kBudget);
  // And close to it: a request needs at most prompt + 8 tokens, so little is left unspent.
  EXPECT_GT(ledger, kBudget / 2);
}

TEST_F(ControlPlaneTest, RollingUpdateAndRollbackUnderLoadFailNoRequest) {
  ASSERT_NO_FATAL_FAILURE(StartServe({"--no-demo"}));
  for (int v = 1; v <= 2; ++v) {
    const std::string path = (dir_ / fmt::format("m{}.gguf", v)).string();
    auto writer = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "gguf", "random", "--size", "tiny", "--type", "q8_0",
                                              "--seed", std::to_string(v), "--out", path}});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Wait(120s).value_or(common::ExitStatus{}).ok());
    ASSERT_EQ(Cli({"models", "add", "m", path}).code, 0);  // versions 1 and 2
  }
  ASSERT_EQ(Cli({"deploy", "web", "--model", "m:1", "--replicas", "2", "--threads", "1", "--wait", "--timeout", "120"}).code, 0);
  ChatUntilAnswered("m");
  // Greedy answers: each version always gives its own one, alone or in a batch, so an
  // answer tells which version served it and that no request was served by a mixture.
  const json body = {{"model", "m"}, {"prompt", "the same prompt"}, {"max_tokens", 6}, {"temperature", 0},
                     {"ignore_eos", true}};
  auto text_of = [](const common::HttpResponse& r) {
    const json j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j["choices"][0].value("text", "") : std::string();
  };
  const std::string v1_answer = text_of(Post("/v1/completions", body));

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> answers;  // text -> count
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      HttpClient client;
      while (!stop) {
        common::HttpClientRequest request{.method = common::HttpMethod::kPost, .url = url_ + "/v1/completions",
                                          .body = body.dump()};
        request.headers.Set("authorization", "Bearer " + AdminKey());
        auto response = client.Send(request);
        std::lock_guard lock(mu);
        if (!response.ok() || response->status != 200) {
          failures.push_back(response.ok() ? fmt::format("{} {}", response->status, response->body)
                                           : response.status().ToString());
        } else {
          ++answers[text_of(*response)];
        }
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  CliResult rolled = Cli({"rollout", "web", "--version", "2", "--wait", "--timeout", "120"});
  EXPECT_EQ(rolled.code, 0) << rolled.err;
  std::this_thread::sleep_for(500ms);
  json d = CliJson({"ps", "web"});
  EXPECT_EQ(d["version"], "2");
  EXPECT_EQ(d["previous_version"], "1");
  CliResult back = Cli({"rollback", "web", "--wait", "--timeout", "120"});
  EXPECT_EQ(back.code, 0) << back.err;
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (std::thread& t : clients) t.join();

  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, e.g. " << failures.front();
  EXPECT_EQ(answers.size(), 2u);  // v1's answer and v2's, nothing else
  EXPECT_GT(answers[v1_answer], 0);
  for (const auto& [text, count] : answers) EXPECT_GT(count, 0) << text;
  EXPECT_EQ(CliJson({"ps", "web"})["version"], "1");
  const std::string events = Cli({"events", "web", "--limit", "1000"}).out;
  EXPECT_THAT(events, HasSubstr("rolling update from 1 to 2 started"));
  EXPECT_THAT(events, HasSubstr("rolling back from 2 to 1"));
  EXPECT_THAT(events, HasSubstr("draining instance"));

  // A canary: one instance of version 2 next to the one of version 1 (two cores here),
  // half the traffic.
  ASSERT_EQ(Cli({"scale", "web", "1", "--wait", "--timeout", "120"}).code, 0);
  CliResult canary = Cli({"rollout", "web", "--version", "2", "--strategy", "canary", "--canary-percent", "50",
                          "--wait", "--timeout", "120"});
  ASSERT_EQ(canary.code, 0) << canary.err;
  std::map<std::string, int> versions;
  for (const json& i : Instances("web")) ++versions[i["version"].get<std::string>()];
  EXPECT_EQ(versions["1"], 1);
  EXPECT_EQ(versions["2"], 1);
  std::map<std::string, int> split;
  for (int i = 0; i < 200 && (split.size() < 2 || split.begin()->second < 3); ++i) {
    ++split[text_of(Post("/v1/completions", body))];
  }
  EXPECT_EQ(split.size(), 2u);  // both versions answer
  json status = CliJson({"rollout", "status", "web"});
  EXPECT_EQ(status["canary"]["version"], "2");
  EXPECT_GT(status["versions"]["2"]["requests"].get<int>(), 0);
  EXPECT_EQ(Cli({"rollout", "web", "--version", "2"}).code, 1);  // one rollout at a time
  ASSERT_EQ(Cli({"rollout", "abort", "web", "--wait", "--timeout", "120"}).code, 0);
  for (const json& i : Instances("web")) EXPECT_EQ(i["version"], "1");
}

TEST_F(ControlPlaneTest, ControlAloneServesTheAdminApiButNotThePublicOne) {
  const std::filesystem::path out = dir_ / "control.out";
  auto child = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "control", "--port", "0", "--data-dir", data_dir_.string()},
                                  .stdout_path = out.string(),
                                  .stderr_path = (dir_ / "control.log").string()});
  ASSERT_TRUE(child.ok());
  serve_ = std::move(*child);
  serve_log_ = dir_ / "control.log";
  for (int i = 0; i < 3000 && url_.empty(); ++i) {
    std::string text = ReadWholeFile(out);
    const size_t at = text.find("http://");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      url_ = text.substr(at, text.find('\n', at) - at);
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(url_.empty()) << ReadWholeFile(serve_log_);
  json overview = CliJson({"ps"});
  EXPECT_TRUE(overview["data"].empty());
  EXPECT_EQ(Post("/v1/chat/completions", {{"model", "demo"}}).status, 404);

  // The config center changes the running process: log.level=warn silences the access
  // log at once, deleting the key brings it back.
  auto health = [&](const std::string& id) {
    common::HttpClientRequest request{.url = url_ + "/health"};
    request.headers.Set("x-request-id", id);
    ASSERT_TRUE(http_.Send(request).ok());
  };
  CliResult bad = Cli({"config", "set", "log.level", "loud"});
  ASSERT_EQ(bad.code, 0) << bad.err;  // stored; the process says why it ignores it
  CliResult set = Cli({"config", "set", "log.level", "warn"});
  ASSERT_EQ(set.code, 0) << set.err;
  EXPECT_THAT(set.out, HasSubstr("log.level = \"warn\""));
  for (int i = 0; i < 200 && ReadWholeFile(serve_log_).find("config log.level: applying \"warn\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  health("quiet-request");
  ASSERT_EQ(Cli({"config", "rm", "log.level"}).code, 0);
  for (int i = 0; i < 200 && ReadWholeFile(serve_log_).find("config log.level: applying (default)") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  health("loud-request");
  // The access line is written just after the answer: give it a moment.
  for (int i = 0; i < 200 && ReadWholeFile(serve_log_).find("loud-request") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const std::string log = ReadWholeFile(serve_log_);
  EXPECT_THAT(log, HasSubstr("config log.level: ignored: log.level must be one of"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("quiet-request")));
  EXPECT_THAT(log, HasSubstr("loud-request"));
}

}  // namespace
}  // namespace triplane
