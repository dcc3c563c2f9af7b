#pragma once

// A real `triplane serve` for integration tests: started on a free 127.0.0.1 port with
// its own data dir, its admin key read from DATA_DIR/admin.key, plain JSON calls to its
// admin and public APIs, and SIGTERM (then a wait) when it goes away.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/engine_process.h"

namespace triplane::testing {

class ServeProcess {
 public:
  // Starts `triplane serve --port 0 --data-dir DIR/data <extra>` and waits (up to a
  // minute) for its URL line (http:// or, with --tls-cert, https://). Null, with a test
  // failure, when it does not come. Call() uses a client with `client` options (a CA
  // file for https://); `env` ("NAME=value") is added to serve's environment.
  static std::unique_ptr<ServeProcess> Start(const std::filesystem::path& dir,
                                             const std::vector<std::string>& extra = {},
                                             const common::HttpClientOptions& client = {},
                                             const std::vector<std::string>& env = {}) {
    auto serve = std::unique_ptr<ServeProcess>(new ServeProcess());
    serve->client_ = std::make_unique<common::HttpClient>(client);
    serve->dir_ = dir;
    serve->log_ = dir / "serve.log";
    const std::filesystem::path out = dir / "serve.out";
    std::vector<std::string> argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--data-dir",
                                     (dir / "data").string(), "--drain-timeout", "10"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = common::Subprocess::Spawn(
        {.argv = argv, .env = env, .stdout_path = out.string(), .stderr_path = serve->log_.string()});
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return nullptr;
    }
    serve->child_ = std::move(*child);
    for (int i = 0; i < 6000 && serve->url_.empty(); ++i) {
      std::istringstream lines(ReadWholeFile(out));
      std::string line;
      while (std::getline(lines, line)) {
        if (line.starts_with("http://") || line.starts_with("https://")) serve->url_ = line;
      }
      if (serve->child_->Poll().has_value()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (serve->url_.empty()) {
      ADD_FAILURE() << "serve did not start: " << serve->log();
      return nullptr;
    }
    const std::string key = ReadWholeFile(dir / "data" / "admin.key");
    serve->admin_key_ = key.substr(0, key.find('\n'));
    return serve;
  }

  ~ServeProcess() {
    child_->Signal(SIGTERM);
    auto status = child_->Wait(std::chrono::seconds(60));
    EXPECT_TRUE(status.has_value() && status->code == 0) << log();
  }

  const std::string& url() const { return url_; }
  const std::string& admin_key() const { return admin_key_; }
  std::string log() const { return ReadWholeFile(log_); }

  // A JSON call with `key` (the admin key when empty); the response as it came.
  common::HttpResponse Call(common::HttpMethod method, const std::string& path,
                            const nlohmann::json& body = nullptr, const std::string& key = "") {
    common::HttpClientRequest request{.method = method, .url = url_ + path};
    if (!body.is_null()) request.body = body.dump();
    request.headers.Set("authorization", "Bearer " + (key.empty() ? admin_key_ : key));
    request.headers.Set("content-type", "application/json");
    auto response = client_->Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : common::HttpResponse{.status = 0};
  }

  // Polls a one-token chat to `model` until it is answered (engines take a moment to
  // start); false, with a test failure, after `attempts` tries 200 ms apart.
  bool WaitUntilAnswers(const std::string& model, int attempts = 900) {
    const nlohmann::json request = {{"model", model},
                                    {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                    {"max_tokens", 1}};
    for (int i = 0; i < attempts; ++i) {
      common::HttpResponse response = Call(common::HttpMethod::kPost, "/v1/chat/completions", request);
      if (response.status == 200) return true;
      if (response.status != 503 && response.status != 404) {
        ADD_FAILURE() << response.status << " " << response.body;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "no answer from " << model << ": " << log();
    return false;
  }

 private:
  ServeProcess() = default;

  std::filesystem::path dir_, log_;
  std::unique_ptr<common::Subprocess> child_;
  std::string url_, admin_key_;
  std::unique_ptr<common::HttpClient> client_;
};

}  // namespace triplane::testing
