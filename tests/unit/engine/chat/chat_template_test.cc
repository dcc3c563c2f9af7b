#include "engine/chat/chat_template.h"

#include <string>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine::chat {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string ErrorOf(const absl::Status& status) { return std::string(common::ToStd(status.message())); }

TEST(ChatTemplateTest, RendersChatMl) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(ChatTemplate::ChatMlSource(), "", "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const json messages = json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "什么是"}, {"type": "image"}, {"type": "text", "text": "量子计算?"}]},
    {"role": "assistant", "content": null}
  ])");
  absl::StatusOr<std::string> text = tmpl->Render(messages, {});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n什么是量子计算?<|im_end|>\n"
            "<|im_start|>assistant\n<|im_end|>\n"
            "<|im_start|>assistant\n");
  text = tmpl->Render(json::array({{{"role", "user"}, {"content", "hi"}}}), {.add_generation_prompt = false});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplateTest, PassesTokensAndExtraContext) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(
      "{{ bos_token }}{{ messages|length }}{{ tools is none }}{{ enable_thinking }}{{ strftime_now('%Y') }}"
      "{{ eos_token }}",
      "<s>", "</s>");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> text =
      tmpl->Render(json::array(), {.extra_context = {{"enable_thinking", false}},
                                   .now = std::chrono::system_clock::from_time_t(1721995200)});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "<s>0TrueFalse2024</s>");
}

TEST(ChatTemplateTest, ReportsSyntaxErrorsAtCreate) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create("{% for m in messages %}\n{{ m.content ", "", "");
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf(tmpl.status()), HasSubstr("line 2"));
  EXPECT_FALSE(ChatTemplate::Create("\xff\xfe", "", "").ok());
}

TEST(ChatTemplateTest, RaiseExceptionBecomesInvalidArgument) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}",
      "", "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> text = tmpl->Render(json::array({{{"role", "assistant"}, {"content", "x"}}}), {});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf(text.status()), HasSubstr("first message must be from the user"));
}

TEST(ChatTemplateTest, RejectsBadArguments) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create("x", "", "");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE(tmpl->Render(json::object(), {}).ok());
  EXPECT_FALSE(tmpl->Render(json::array(), {.extra_context = json::array()}).ok());
}

TEST(ChatTemplateTest, CopiesRenderConcurrently) {
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}{% endfor %}"
      "{{ ns.n }}",
      "", "");
  ASSERT_TRUE(tmpl.ok());
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t, copy = *tmpl] {
      json messages = json::array();
      for (int i = 0; i <= t; ++i) messages.push_back({{"role", "user"}, {"content", std::to_string(i)}});
      for (int round = 0; round < 50; ++round) {
        absl::StatusOr<std::string> text = copy.Render(messages, {});
        results[t] = text.ok() ? *text : ErrorOf(text.status());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) {
    std::string expected;
    for (int i = 0; i <= t; ++i) expected += std::to_string(i);
    EXPECT_EQ(results[t], expected + std::to_string(t + 1));
  }
}

}  // namespace
}  // namespace triplane::engine::chat
