#include "engine/engine_options.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

using ::testing::HasSubstr;

EngineOptions Valid() { return {.model = "/models/tiny.gguf"}; }

std::string ErrorOf(const EngineOptions& options) {
  const absl::Status status = options.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(EngineOptionsTest, DefaultsWithAModelAreValid) {
  const EngineOptions options = Valid();
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.host, "127.0.0.1");
  EXPECT_EQ(options.port, 8081);
  EXPECT_EQ(options.ctx, 4096);
  EXPECT_EQ(options.max_batch_tokens, 512);
  EXPECT_EQ(options.max_seqs, 64);
  EXPECT_DOUBLE_EQ(options.drain_timeout_s, 30);
}

TEST(EngineOptionsTest, RequiresAModel) { EXPECT_THAT(ErrorOf({}), HasSubstr("model")); }

TEST(EngineOptionsTest, AcceptsAutomaticSettings) {
  EngineOptions options = Valid();
  options.threads = 0;
  options.kv_memory_bytes = 0;
  options.port = 0;
  options.drain_timeout_s = 0;
  EXPECT_TRUE(options.Validate().ok());
  options.kv_type = "q8_0";
  EXPECT_TRUE(options.Validate().ok());
}

TEST(EngineOptionsTest, RejectsEachBadField) {
  const struct {
    const char* field;
    void (*mutate)(EngineOptions&);
  } kCases[] = {
      {"host", [](EngineOptions& o) { o.host = ""; }},
      {"threads", [](EngineOptions& o) { o.threads = -1; }},
      {"ctx", [](EngineOptions& o) { o.ctx = 0; }},
      {"ctx", [](EngineOptions& o) { o.ctx = (1 << 20) + 1; }},
      {"kv-memory", [](EngineOptions& o) { o.kv_memory_bytes = -1; }},
      {"kv-type", [](EngineOptions& o) { o.kv_type = "q4_0"; }},
      {"kv-type", [](EngineOptions& o) { o.kv_type = ""; }},
      {"max-batch-tokens", [](EngineOptions& o) { o.max_batch_tokens = 0; }},
      {"max-seqs", [](EngineOptions& o) { o.max_seqs = 0; }},
      {"served-model-name", [](EngineOptions& o) { o.served_model_name = "has space"; }},
      {"served-model-name", [](EngineOptions& o) { o.served_model_name = std::string(257, 'm'); }},
      {"drain-timeout", [](EngineOptions& o) { o.drain_timeout_s = -1; }},
      {"drain-timeout", [](EngineOptions& o) { o.drain_timeout_s = NAN; }},
      {"drain-timeout", [](EngineOptions& o) { o.drain_timeout_s = INFINITY; }},
  };
  for (const auto& test_case : kCases) {
    SCOPED_TRACE(test_case.field);
    EngineOptions options = Valid();
    test_case.mutate(options);
    EXPECT_THAT(ErrorOf(options), HasSubstr(test_case.field));
  }
}

TEST(EngineOptionsTest, AcceptsAServedModelName) {
  EngineOptions options = Valid();
  options.served_model_name = "qwen3-0.6b:q8_0";
  EXPECT_TRUE(options.Validate().ok());
}

}  // namespace
}  // namespace triplane::engine
