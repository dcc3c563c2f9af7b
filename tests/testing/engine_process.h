#pragma once

// A real `triplane engine` process for integration tests: a random-weight model written
// by `triplane gguf random`, the engine started on a free 127.0.0.1 port, and the URL it
// prints on stdout once ready.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "testing/server_process_util.h"

namespace triplane::testing {

// Writes a tiny random llama model with `vocab`'s tokenizer to `out`; fails the test on error.
inline void WriteTinyModel(const std::filesystem::path& vocab, const std::filesystem::path& out) {
  const std::filesystem::path log = out.string() + ".log";
  auto child = common::Subprocess::Spawn(
      {.argv = {TRIPLANE_BINARY, "gguf", "random", "--arch", "llama", "--size", "tiny", "--type",
                "q8_0", "--vocab-from", vocab.string(), "--seed", "1", "--out", out.string()},
       .stdout_path = log.string(),
       .stderr_path = log.string()});
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = (*child)->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(status.has_value() && status->ok()) << ReadWholeFile(log);
}

class EngineProcess {
 public:
  // Starts `triplane engine --model model --port 0 <extra>` and waits (up to a minute)
  // for the URL line on stdout. Null (with a test failure) when it does not come.
  static std::unique_ptr<EngineProcess> Start(const std::filesystem::path& dir,
                                              const std::filesystem::path& model,
                                              const std::vector<std::string>& extra = {}) {
    static int counter = 0;
    auto process = std::unique_ptr<EngineProcess>(new EngineProcess());
    const std::string tag = "engine-" + std::to_string(++counter);
    process->stdout_path_ = dir / (tag + ".out");
    process->stderr_path_ = dir / (tag + ".err");
    std::vector<std::string> argv = {TRIPLANE_BINARY,  "engine", "--model",   model.string(),
                                     "--port",         "0",      "--threads", "1",
                                     "--http-threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = common::Subprocess::Spawn({.argv = argv,
                                            .stdout_path = process->stdout_path_.string(),
                                            .stderr_path = process->stderr_path_.string()});
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return nullptr;
    }
    process->child_ = std::move(*child);
    for (int i = 0; i < 6000; ++i) {
      const std::string out = ReadWholeFile(process->stdout_path_);
      if (out.find('\n') != std::string::npos) {
        process->url_ = out.substr(0, out.find('\n'));
        return process;
      }
      if (process->child_->Poll().has_value()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the engine did not start: " << ReadWholeFile(process->stderr_path_);
    return nullptr;
  }

  ~EngineProcess() {
    if (child_ != nullptr) child_->Terminate(std::chrono::seconds(10));
  }

  const std::string& url() const { return url_; }
  common::Subprocess& child() { return *child_; }
  std::string log() const { return ReadWholeFile(stderr_path_); }

 private:
  EngineProcess() = default;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  std::unique_ptr<common::Subprocess> child_;
  std::string url_;
};

}  // namespace triplane::testing
