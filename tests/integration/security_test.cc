// Security promises of `triplane serve`, checked against the real process: admin routes
// refuse user keys, no CORS by default, loopback-only by default, no keys in URLs, no
// raw keys in logs, the store or error bodies, and HTTPS with --tls-cert/--tls-key.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/serve_process.h"
#include "testing/test_pki.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpMethod;
using common::HttpResponse;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

// Every admin API route of src/control/admin (plus the gateway feed and the config
// watch registered next to them), with path parameters filled in.
struct AdminRoute {
  HttpMethod method;
  const char* path;
};
constexpr AdminRoute kAdminRoutes[] = {
    {HttpMethod::kGet, "/admin/v1/keys"},
    {HttpMethod::kPost, "/admin/v1/keys"},
    {HttpMethod::kDelete, "/admin/v1/keys/key_x"},
    {HttpMethod::kGet, "/admin/v1/teams"},
    {HttpMethod::kPost, "/admin/v1/teams"},
    {HttpMethod::kDelete, "/admin/v1/teams/t"},
    {HttpMethod::kGet, "/admin/v1/audit"},
    {HttpMethod::kGet, "/admin/v1/audit/verify"},
    {HttpMethod::kGet, "/admin/v1/backends"},
    {HttpMethod::kPut, "/admin/v1/backends/b"},
    {HttpMethod::kDelete, "/admin/v1/backends/b"},
    {HttpMethod::kGet, "/admin/v1/config"},
    {HttpMethod::kGet, "/admin/v1/config/a/b"},
    {HttpMethod::kPut, "/admin/v1/config/a/b"},
    {HttpMethod::kDelete, "/admin/v1/config/a/b"},
    {HttpMethod::kGet, "/admin/v1/config/watch?timeout=0"},
    {HttpMethod::kGet, "/admin/v1/overview"},
    {HttpMethod::kGet, "/admin/v1/deployments"},
    {HttpMethod::kPost, "/admin/v1/deployments"},
    {HttpMethod::kGet, "/admin/v1/deployments/d"},
    {HttpMethod::kPatch, "/admin/v1/deployments/d"},
    {HttpMethod::kDelete, "/admin/v1/deployments/d"},
    {HttpMethod::kPost, "/admin/v1/deployments/d/wake"},
    {HttpMethod::kGet, "/admin/v1/instances"},
    {HttpMethod::kGet, "/admin/v1/metrics/deployments"},
    {HttpMethod::kGet, "/admin/v1/metrics/deployments/d"},
    {HttpMethod::kGet, "/admin/v1/metrics/instances/i"},
    {HttpMethod::kGet, "/admin/v1/models"},
    {HttpMethod::kPost, "/admin/v1/models"},
    {HttpMethod::kGet, "/admin/v1/models/m"},
    {HttpMethod::kDelete, "/admin/v1/models/m"},
    {HttpMethod::kPost, "/admin/v1/models/m/versions"},
    {HttpMethod::kGet, "/admin/v1/models/m/versions/1"},
    {HttpMethod::kDelete, "/admin/v1/models/m/versions/1"},
    {HttpMethod::kPost, "/admin/v1/pulls"},
    {HttpMethod::kGet, "/admin/v1/pulls"},
    {HttpMethod::kGet, "/admin/v1/pulls/p"},
    {HttpMethod::kDelete, "/admin/v1/pulls/p"},
    {HttpMethod::kGet, "/admin/v1/deployments/d/rollout"},
    {HttpMethod::kPost, "/admin/v1/deployments/d/rollout"},
    {HttpMethod::kPost, "/admin/v1/deployments/d/rollout/promote"},
    {HttpMethod::kPost, "/admin/v1/deployments/d/rollout/abort"},
    {HttpMethod::kPost, "/admin/v1/deployments/d/rollback"},
    {HttpMethod::kGet, "/admin/v1/deployments/d/events"},
    {HttpMethod::kGet, "/admin/v1/events"},
    {HttpMethod::kGet, "/admin/v1/usage"},
    {HttpMethod::kGet, "/admin/v1/usage/records"},
    {HttpMethod::kPost, "/admin/v1/usage"},
    {HttpMethod::kGet, "/admin/v1/gateway/state"},
};

// Checks that `response` is `status` with an OpenAI-style error body.
void ExpectOpenAiError(const HttpResponse& response, int status, const std::string& what) {
  EXPECT_EQ(response.status, status) << what << ": " << response.body;
  const json body = json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object() && body.contains("error")) << what << ": " << response.body;
  const json& error = body["error"];
  EXPECT_TRUE(error.contains("message") && error["message"].is_string()) << what;
  EXPECT_TRUE(error.contains("type") && error["type"].is_string()) << what;
  EXPECT_TRUE(error.contains("param")) << what;
  EXPECT_TRUE(error.contains("code")) << what;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-security-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    serve_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A request to serve with `headers`, no key unless given; the response as it came.
  HttpResponse Send(HttpMethod method, const std::string& path, const std::string& key = "",
                    const std::vector<std::pair<std::string, std::string>>& headers = {},
                    const std::string& body = "") {
    common::HttpClientRequest request{.method = method, .url = serve_->url() + path, .body = body};
    if (!key.empty()) request.headers.Set("authorization", "Bearer " + key);
    for (const auto& [name, value] : headers) request.headers.Set(name, value);
    if (!body.empty()) request.headers.Set("content-type", "application/json");
    absl::StatusOr<HttpResponse> response = client_.Send(std::move(request));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{.status = 0};
  }

  // Creates a user API key with the admin key; returns {id, secret}.
  std::pair<std::string, std::string> CreateUserKey(const std::string& name) {
    HttpResponse created = serve_->Call(HttpMethod::kPost, "/admin/v1/keys",
                                        {{"name", name}, {"role", "user"}});
    EXPECT_EQ(created.status, 201) << created.body;
    const json body = json::parse(created.body, nullptr, false);
    if (!body.is_object() || !body.contains("key")) return {};
    return {body["id"].get<std::string>(), body["key"].get<std::string>()};
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::ServeProcess> serve_;
  common::HttpClient client_;
};

TEST_F(SecurityTest, UserKeyIsRefusedOnEveryAdminRoute) {
  serve_ = testing::ServeProcess::Start(dir_, {"--no-demo"});
  ASSERT_NE(serve_, nullptr);
  const auto [id, user_key] = CreateUserKey("user");
  ASSERT_FALSE(user_key.empty());
  ASSERT_GE(std::size(kAdminRoutes), 20u);
  for (const AdminRoute& route : kAdminRoutes) {
    const std::string what = std::string(common::HttpMethodName(route.method)) + " " + route.path;
    const std::string body = route.method == HttpMethod::kGet || route.method == HttpMethod::kDelete
                                 ? ""
                                 : R"({"name":"x","model":"m","version":"1","replicas":1})";
    ExpectOpenAiError(Send(route.method, route.path, user_key, {}, body), 403, what + " (user key)");
    ExpectOpenAiError(Send(route.method, route.path, "", {}, body), 401, what + " (no key)");
  }
  // The refusals changed nothing: the user key is still the only key besides the admin's.
  HttpResponse keys = serve_->Call(HttpMethod::kGet, "/admin/v1/keys");
  ASSERT_EQ(keys.status, 200) << keys.body;
  EXPECT_THAT(keys.body, HasSubstr(id));
  HttpResponse teams = serve_->Call(HttpMethod::kGet, "/admin/v1/teams");
  ASSERT_EQ(teams.status, 200);
  EXPECT_EQ(json::parse(teams.body)["data"].size(), 0u) << teams.body;
}

TEST_F(SecurityTest, NoCorsHeadersByDefault) {
  serve_ = testing::ServeProcess::Start(dir_, {"--no-demo"});
  ASSERT_NE(serve_, nullptr);
  const std::vector<std::pair<std::string, std::string>> preflight = {
      {"origin", "https://evil.example"},
      {"access-control-request-method", "POST"},
      {"access-control-request-headers", "authorization, content-type"}};
  const std::vector<std::pair<std::string, std::string>> cross_origin = {
      {"origin", "https://evil.example"}};
  for (const char* path : {"/v1/chat/completions", "/v1/models", "/admin/v1/models", "/health"}) {
    HttpResponse options = Send(HttpMethod::kOptions, path, "", preflight);
    EXPECT_NE(options.status, 0) << path;
    EXPECT_FALSE(options.headers.Get("access-control-allow-origin").has_value()) << path;
    EXPECT_FALSE(options.headers.Get("access-control-allow-credentials").has_value()) << path;
    EXPECT_FALSE(options.headers.Get("access-control-allow-methods").has_value()) << path;
    EXPECT_FALSE(options.headers.Get("access-control-allow-headers").has_value()) << path;
  }
  HttpResponse models = Send(HttpMethod::kGet, "/v1/models", serve_->admin_key(), cross_origin);
  EXPECT_EQ(models.status, 200) << models.body;
  EXPECT_FALSE(models.headers.Get("access-control-allow-origin").has_value());
  HttpResponse admin = Send(HttpMethod::kGet, "/admin/v1/models", serve_->admin_key(), cross_origin);
  EXPECT_EQ(admin.status, 200) << admin.body;
  EXPECT_FALSE(admin.headers.Get("access-control-allow-origin").has_value());
  HttpResponse health = Send(HttpMethod::kGet, "/health", "", cross_origin);
  EXPECT_EQ(health.status, 200);
  EXPECT_FALSE(health.headers.Get("access-control-allow-origin").has_value());
}

TEST_F(SecurityTest, ListensOnLoopbackOnlyByDefault) {
  serve_ = testing::ServeProcess::Start(dir_, {"--no-demo"});  // no --host
  ASSERT_NE(serve_, nullptr);
  ASSERT_THAT(serve_->url(), StartsWith("http://127.0.0.1:"));
  const int port = std::stoi(serve_->url().substr(serve_->url().rfind(':') + 1));
  const std::string port_hex = [port] {
    char buffer[8];
    std::snprintf(buffer, sizeof(buffer), "%04X", port);
    return std::string(buffer);
  }();
  // /proc/net/tcp{,6}: "sl local_address rem_address st ...", addresses as HEX_IP:HEX_PORT,
  // state 0A = LISTEN. The one listener on the port is 127.0.0.1 (0100007F).
  std::vector<std::string> listeners;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream lines(testing::ReadWholeFile(table));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state == "0A" && local.ends_with(":" + port_hex)) listeners.push_back(local);
    }
  }
  EXPECT_EQ(listeners, std::vector<std::string>{"0100007F:" + port_hex});
}

TEST_F(SecurityTest, KeyInTheQueryStringIsNotAccepted) {
  serve_ = testing::ServeProcess::Start(dir_, {"--no-demo"});
  ASSERT_NE(serve_, nullptr);
  const auto [id, user_key] = CreateUserKey("query");
  ASSERT_FALSE(user_key.empty());
  // The same keys work in a header.
  EXPECT_EQ(Send(HttpMethod::kGet, "/v1/models", user_key).status, 200);
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/models", serve_->admin_key()).status, 200);
  for (const std::string name : {"api_key", "key", "access_token"}) {
    ExpectOpenAiError(Send(HttpMethod::kGet, "/v1/models?" + name + "=" + user_key), 401,
                      "/v1/models?" + name);
    ExpectOpenAiError(Send(HttpMethod::kGet, "/admin/v1/models?" + name + "=" + serve_->admin_key()),
                      401, "/admin/v1/models?" + name);
  }
  ExpectOpenAiError(Send(HttpMethod::kPost, "/v1/chat/completions?api_key=" + user_key, "", {},
                         R"({"model":"demo","messages":[{"role":"user","content":"hi"}]})"),
                    401, "/v1/chat/completions?api_key");
}

// Every regular file under `dir` except the model files and `except`, with its contents.
std::vector<std::pair<std::string, std::string>> FilesUnder(const std::filesystem::path& dir,
                                                            const std::filesystem::path& except) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path() == except) continue;
    if (entry.path().extension() == ".gguf" || entry.file_size() > (256u << 20)) continue;
    files.emplace_back(entry.path().string(), testing::ReadWholeFile(entry.path()));
  }
  return files;
}

TEST_F(SecurityTest, RawKeysAppearInNoLogStoreFileOrErrorBody) {
  serve_ = testing::ServeProcess::Start(dir_);  // with the demo model: real completions
  ASSERT_NE(serve_, nullptr);
  ASSERT_TRUE(serve_->WaitUntilAnswers("demo"));
  const auto [user_id, user_key] = CreateUserKey("session");
  const auto [revoked_id, revoked_key] = CreateUserKey("revoked");
  ASSERT_FALSE(user_key.empty());
  ASSERT_FALSE(revoked_key.empty());
  const HttpResponse revoked = serve_->Call(HttpMethod::kDelete, "/admin/v1/keys/" + revoked_id);
  ASSERT_EQ(revoked.status / 100, 2) << revoked.body;
  // Not a key the server knows, shaped like one.
  const std::string unknown_key = user_key.substr(0, user_key.size() - 4) +
                                  (user_key.ends_with("zzzz") ? "yyyy" : "zzzz");
  const std::vector<std::string> secrets = {serve_->admin_key(), user_key, revoked_key, unknown_key};

  const std::string chat = R"({"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":2})";
  std::vector<HttpResponse> responses;
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", user_key, {}, chat));
  EXPECT_EQ(responses.back().status, 200) << responses.back().body;
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", user_key, {},
                           R"({"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true})"));
  EXPECT_EQ(responses.back().status, 200) << responses.back().body;
  // Failures: unknown, revoked and malformed keys, a user key on admin routes, bad bodies.
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", unknown_key, {}, chat));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", revoked_key, {}, chat));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kGet, "/v1/models", "", {{"x-api-key", unknown_key}}));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kGet, "/v1/models", "", {{"authorization", "Basic " + user_key}}));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kGet, "/admin/v1/keys", user_key));
  EXPECT_EQ(responses.back().status, 403);
  responses.push_back(Send(HttpMethod::kGet, "/admin/v1/keys", revoked_key));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", user_key, {}, "{not json"));
  EXPECT_EQ(responses.back().status, 400);
  responses.push_back(Send(HttpMethod::kPost, "/v1/chat/completions", user_key, {},
                           R"({"model":"no-such-model","messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_EQ(responses.back().status, 404) << responses.back().body;
  responses.push_back(Send(HttpMethod::kGet, "/v1/models?api_key=" + user_key));
  EXPECT_EQ(responses.back().status, 401);
  responses.push_back(Send(HttpMethod::kPost, "/admin/v1/keys", serve_->admin_key(), {}, "{}"));
  EXPECT_EQ(responses.back().status, 400);
  responses.push_back(serve_->Call(HttpMethod::kGet, "/admin/v1/keys"));
  EXPECT_EQ(responses.back().status, 200);
  responses.push_back(serve_->Call(HttpMethod::kGet, "/admin/v1/audit?limit=1000"));
  EXPECT_EQ(responses.back().status, 200);
  responses.push_back(serve_->Call(HttpMethod::kGet, "/admin/v1/usage/records"));
  EXPECT_EQ(responses.back().status, 200);

  for (const HttpResponse& response : responses) {
    for (const std::string& secret : secrets) {
      EXPECT_EQ(response.body.find(secret), std::string::npos) << response.status << " " << response.body;
    }
  }
  // Stop serve so that everything it buffers (logs, the usage ledger, SQLite's WAL) is on disk.
  const std::string out = testing::ReadWholeFile(dir_ / "serve.out");
  serve_.reset();
  const std::string log = testing::ReadWholeFile(dir_ / "serve.log");
  ASSERT_THAT(log, HasSubstr("/v1/chat/completions"));  // the session was logged
  for (const std::string& secret : secrets) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "serve.log shows a key";
  }
  // The admin key is shown once on the terminal (stdout) and kept in DATA_DIR/admin.key
  // by design; every other file in the data dir (the SQLite store, instance logs) is scanned.
  EXPECT_THAT(out, HasSubstr(secrets[0]));
  const auto files = FilesUnder(dir_ / "data", dir_ / "data" / "admin.key");
  bool store_has_key_ids = false;
  for (const auto& [path, contents] : files) {
    for (const std::string& secret : secrets) {
      EXPECT_EQ(contents.find(secret), std::string::npos) << path << " holds a raw key";
    }
    if (path.find("triplane.db") != std::string::npos && contents.find(user_id) != std::string::npos) {
      store_has_key_ids = true;  // the scan sees what the store wrote
    }
  }
  EXPECT_TRUE(store_has_key_ids) << "no SQLite file in the data dir names key " << user_id;
}

TEST_F(SecurityTest, ServeAnswersHealthAndChatOverHttpsAlsoToTheOpenAiNodeClient) {
  testing::TestCa ca(dir_, "serve");
  const testing::TlsIdentity identity = ca.Issue("serve", "DNS:localhost,IP:127.0.0.1");
  serve_ = testing::ServeProcess::Start(
      dir_, {"--tls-cert", identity.cert_file, "--tls-key", identity.key_file},
      {.ca_file = ca.cert_file()});
  ASSERT_NE(serve_, nullptr);
  ASSERT_THAT(serve_->url(), StartsWith("https://127.0.0.1:"));
  common::HttpClient client({.ca_file = ca.cert_file()});
  absl::StatusOr<HttpResponse> health = client.Send({.url = serve_->url() + "/health"});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  EXPECT_THAT(health->body, HasSubstr("ready"));

  ASSERT_TRUE(serve_->WaitUntilAnswers("demo"));  // a chat completion over https
  const auto [id, user_key] = CreateUserKey("tls");
  ASSERT_FALSE(user_key.empty());
  common::HttpClientRequest request{
      .method = HttpMethod::kPost,
      .url = serve_->url() + "/v1/chat/completions",
      .body = R"({"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true})"};
  request.headers.Set("authorization", "Bearer " + user_key);
  request.headers.Set("content-type", "application/json");
  std::vector<std::string> events;
  absl::Status streamed = client.ReadSse(request, [&](const common::SseEvent& event) {
    events.push_back(event.data);
    return true;
  });
  ASSERT_TRUE(streamed.ok()) << streamed;
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_THAT(events.front(), HasSubstr("chat.completion.chunk"));

  // The official `openai` npm client over https, trusting the CA through Node's own
  // variable: the model list, a completion and a stream.
  const std::filesystem::path source = TRIPLANE_SOURCE_DIR;
  ASSERT_TRUE(std::filesystem::exists(source / "tests/node_modules/openai"))
      << "the openai npm package is missing: run scripts/setup (npm ci in tests/)";
  const std::string script = R"(
const { OpenAI } = require(process.argv[1]);
const client = new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: process.argv[3], maxRetries: 0 });
(async () => {
  const models = await client.models.list();
  if (!models.data.some((m) => m.id === 'demo')) throw new Error('no demo model');
  const chat = await client.chat.completions.create(
      { model: 'demo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
  if (chat.object !== 'chat.completion' || chat.usage.completion_tokens < 1) throw new Error('bad chat');
  let chunks = 0;
  const stream = await client.chat.completions.create(
      { model: 'demo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true });
  for await (const chunk of stream) chunks += chunk.object === 'chat.completion.chunk' ? 1 : 0;
  if (chunks < 1) throw new Error('no chunks');
  console.log(JSON.stringify({ ok: true, chunks }));
})().catch((e) => { console.log(String(e)); process.exit(1); });
)";
  const auto node_log = dir_ / "node.log";
  auto node = common::Subprocess::Spawn(
      {.argv = {"/usr/bin/env", "node", "-e", script, (source / "tests/node_modules/openai").string(),
                serve_->url(), user_key},
       .env = {"NODE_EXTRA_CA_CERTS=" + ca.cert_file()},
       .stdout_path = node_log.string(),
       .stderr_path = node_log.string()});
  ASSERT_TRUE(node.ok()) << node.status();
  auto node_status = (*node)->Wait(120s);
  ASSERT_TRUE(node_status.has_value()) << testing::ReadWholeFile(node_log);
  EXPECT_EQ(node_status->code, 0) << testing::ReadWholeFile(node_log);
  EXPECT_THAT(testing::ReadWholeFile(node_log), HasSubstr(R"("ok":true)"));

  // Plain HTTP on the HTTPS port: a 400 that says so, and the server carries on.
  const std::string plain_url = "http://" + serve_->url().substr(std::string("https://").size());
  absl::StatusOr<HttpResponse> plain = client_.Send({.url = plain_url + "/health"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  ExpectOpenAiError(*plain, 400, "plain HTTP to the HTTPS port");
  health = client.Send({.url = serve_->url() + "/health"});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  // Without the CA, the certificate is not trusted.
  common::HttpClient untrusting;
  EXPECT_FALSE(untrusting.Send({.url = serve_->url() + "/health"}).ok());
}

// TRIPLANE_TLS_CERT/KEY configure serve's own port, but the engines it starts stay plain
// HTTP on loopback (their environment clears both): the demo model still answers.
TEST_F(SecurityTest, TlsFromTheEnvironmentAppliesToServeButNotToItsEngines) {
  testing::TestCa ca(dir_, "serve");
  const testing::TlsIdentity identity = ca.Issue("serve", "IP:127.0.0.1");
  serve_ = testing::ServeProcess::Start(
      dir_, {}, {.ca_file = ca.cert_file()},
      {"TRIPLANE_TLS_CERT=" + identity.cert_file, "TRIPLANE_TLS_KEY=" + identity.key_file});
  ASSERT_NE(serve_, nullptr);
  ASSERT_THAT(serve_->url(), StartsWith("https://127.0.0.1:"));
  ASSERT_TRUE(serve_->WaitUntilAnswers("demo"));
  // Each engine printed its URL line (DATA_DIR/instances/ID.out): plain http.
  int engines = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "data" / "instances")) {
    if (entry.path().extension() != ".out") continue;
    ++engines;
    EXPECT_THAT(testing::ReadWholeFile(entry.path()), StartsWith("http://127.0.0.1:")) << entry.path();
  }
  EXPECT_GE(engines, 1);
}

TEST_F(SecurityTest, UnusableTlsFilesAreAOneLineErrorAndNonZeroExit) {
  testing::TestCa ca(dir_, "serve");
  const testing::TlsIdentity identity = ca.Issue("serve", "DNS:localhost,IP:127.0.0.1");
  const testing::TlsIdentity other = ca.Issue("other", "DNS:localhost");
  const std::string missing = (dir_ / "missing.key").string();
  struct Case {
    std::vector<std::string> flags;
    std::string expected;  // in the output
    bool one_line;         // false for a usage error, which adds a pointer to --help
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", identity.cert_file, "--tls-key", missing}, missing, true},
      {{"--tls-cert", identity.cert_file, "--tls-key", other.key_file}, other.key_file, true},
      {{"--tls-cert", identity.cert_file}, "--tls-key", false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::vector<std::string> argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--no-demo",
                                     "--data-dir", (dir_ / "data").string()};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    const auto output = dir_ / ("output-" + std::to_string(i) + ".log");
    auto child = common::Subprocess::Spawn(
        {.argv = argv, .stdout_path = output.string(), .stderr_path = output.string()});
    ASSERT_TRUE(child.ok()) << child.status();
    auto status = (*child)->Wait(60s);
    ASSERT_TRUE(status.has_value()) << c.expected;
    EXPECT_NE(status->code, 0) << c.expected;
    const std::string text = testing::ReadWholeFile(output);
    EXPECT_THAT(text, HasSubstr(c.expected));
    if (c.one_line) {
      EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    }
  }
}

}  // namespace
}  // namespace triplane
