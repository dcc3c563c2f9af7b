#include "engine/server/choice_decoder.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab_loader.h"
#include "gtest/gtest.h"
#include "testing/llama_cpp_source.h"

namespace triplane::engine::server {
namespace {

class ChoiceDecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = GgufFile::Open(::triplane::testing::LlamaCppVocabPath("llama-bpe").string());
    ASSERT_TRUE(file.ok()) << file.status();
    auto vocab = LoadVocab(**file);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    auto tokenizer = Tokenizer::Create(*std::move(vocab));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  std::vector<int32_t> Encode(std::string_view text) const {
    return tokenizer_->Encode(text, {.add_special = false});
  }
  int32_t Eos() const { return tokenizer_->vocab().eos; }

  static TokenEvent Token(int32_t id, float logprob = -0.5f) {
    return {.token = id, .logprob = logprob, .top = {{id, logprob}, {0, -3.0f}}};
  }
  static TokenEvent Final(FinishReason finish, int32_t id = -1) {
    return {.token = id,
            .finish = finish,
            .prompt_tokens = 7,
            .cached_prompt_tokens = 3,
            .generated_tokens = 99};
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* ChoiceDecoderTest::tokenizer_ = nullptr;

TEST_F(ChoiceDecoderTest, TextOfAllTokensThenStopOnEndOfGeneration) {
  ChoiceDecoder decoder(*tokenizer_, {});
  const std::string text = "Hello world, this is a test";
  std::string out;
  for (int32_t id : Encode(text)) out += decoder.Consume(Token(id)).text;
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kStop, Eos()));
  out += last.text;
  EXPECT_EQ(out, text);
  EXPECT_EQ(last.finish, ChoiceFinish::kStop);
  EXPECT_EQ(decoder.completion_tokens(), static_cast<int64_t>(Encode(text).size()) + 1);
  EXPECT_EQ(decoder.prompt_tokens(), 7);
  EXPECT_EQ(decoder.cached_prompt_tokens(), 3);
  // Events after the end are ignored.
  EXPECT_EQ(decoder.Consume(Token(Encode("x")[0])).text, "");
}

TEST_F(ChoiceDecoderTest, EndOfGenerationTokenAsItsOwnEventGivesNoText) {
  ChoiceDecoder decoder(*tokenizer_, {});
  EXPECT_EQ(decoder.Consume(Token(Encode("Hi")[0])).text, "Hi");
  EXPECT_EQ(decoder.Consume(Token(Eos())).text, "");
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kStop));
  EXPECT_EQ(last.finish, ChoiceFinish::kStop);
  EXPECT_EQ(decoder.completion_tokens(), 2);
}

TEST_F(ChoiceDecoderTest, StopStringSpanningTokensEndsTheChoiceBeforeIt) {
  ChoiceDecoder decoder(*tokenizer_, {.stop = {"is a"}});
  const std::vector<int32_t> ids = Encode("Hello world, this is a test");
  std::string out;
  size_t matched_at = ids.size();
  for (size_t i = 0; i < ids.size(); ++i) {
    ChoiceDelta delta = decoder.Consume(Token(ids[i]));
    out += delta.text;
    if (delta.stop_string_matched) {
      EXPECT_EQ(matched_at, ids.size()) << "matched twice";
      matched_at = i;
    }
  }
  ASSERT_LT(matched_at, ids.size());
  EXPECT_FALSE(decoder.finished());  // until the engine confirms the cancellation
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kCancelled));
  out += last.text;
  EXPECT_EQ(out, "Hello world, this ");
  EXPECT_EQ(last.finish, ChoiceFinish::kStop);
  EXPECT_EQ(decoder.completion_tokens(), static_cast<int64_t>(matched_at) + 1);
}

TEST_F(ChoiceDecoderTest, StopStringInTheLastHeldTextMatchesAtTheEnd) {
  ChoiceDecoder decoder(*tokenizer_, {.stop = {"world!"}});
  std::string out;
  for (int32_t id : Encode("Hello world")) out += decoder.Consume(Token(id)).text;
  EXPECT_EQ(out, "Hello ");  // "world" might become "world!"
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kLength));
  EXPECT_EQ(out + last.text, "Hello world");
  EXPECT_EQ(last.finish, ChoiceFinish::kLength);
}

TEST_F(ChoiceDecoderTest, LogprobsFollowTheirTextAndStopAtTheStopString) {
  ChoiceDecoder decoder(*tokenizer_, {.stop = {" test"}, .logprobs = true});
  const std::vector<int32_t> ids = Encode("Hello world test again");
  std::vector<TokenLogprob> entries;
  std::string out;
  for (int32_t id : ids) {
    ChoiceDelta delta = decoder.Consume(Token(id, -0.25f));
    out += delta.text;
    // Each entry comes out once its text has.
    for (TokenLogprob& e : delta.logprobs) {
      EXPECT_LE(e.text_offset, out.size());
      entries.push_back(std::move(e));
    }
  }
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kCancelled));
  for (TokenLogprob& e : last.logprobs) entries.push_back(std::move(e));
  EXPECT_EQ(out + last.text, "Hello world");
  // "Hello", " world": the " test" token is the stop string, "again" never counted.
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].token, ids[0]);
  EXPECT_EQ(entries[0].text_offset, 0u);
  EXPECT_EQ(entries[1].token, ids[1]);
  EXPECT_EQ(entries[1].text_offset, 5u);
  EXPECT_FLOAT_EQ(entries[1].logprob, -0.25f);
  ASSERT_EQ(entries[1].top.size(), 2u);
}

TEST_F(ChoiceDecoderTest, IgnoreEosAndStopTokenIds) {
  const int32_t stop_id = Encode(".")[0];
  ChoiceDecoder decoder(*tokenizer_,
                        {.stop_token_ids = {stop_id}, .ignore_eos = true, .logprobs = true});
  ChoiceDelta a = decoder.Consume(Token(Encode("A")[0]));
  ChoiceDelta eos = decoder.Consume(Token(Eos()));  // ordinary (special, so no text)
  EXPECT_EQ(eos.logprobs.size(), 1u);
  ChoiceDelta dot = decoder.Consume(Token(stop_id));
  EXPECT_EQ(dot.text, "");
  EXPECT_TRUE(dot.logprobs.empty());
  ChoiceDelta last = decoder.Consume(Final(FinishReason::kStop));
  EXPECT_EQ(a.text + last.text, "A");
  EXPECT_EQ(last.finish, ChoiceFinish::kStop);
  EXPECT_EQ(decoder.completion_tokens(), 3);
}

TEST_F(ChoiceDecoderTest, ErrorsAndForeignCancellationsAreReported) {
  ChoiceDecoder failing(*tokenizer_, {});
  TokenEvent error = Final(FinishReason::kError);
  error.error = absl::InternalError("boom");
  EXPECT_EQ(failing.Consume(error).finish, ChoiceFinish::kError);
  EXPECT_EQ(failing.error().message(), "boom");
  EXPECT_EQ(FinishReasonName(failing.finish()), "error");

  ChoiceDecoder cancelled(*tokenizer_, {});
  EXPECT_EQ(cancelled.Consume(Final(FinishReason::kCancelled)).finish, ChoiceFinish::kCancelled);
  EXPECT_EQ(FinishReasonName(ChoiceFinish::kCancelled), "abort");
}

TEST_F(ChoiceDecoderTest, MultibyteCharactersCutAcrossTokensStreamWhole) {
  ChoiceDecoder decoder(*tokenizer_, {.stop = {"🦙!"}});
  const std::string text = "什么是量子计算? 🦙🦙 done";
  std::string out;
  for (int32_t id : Encode(text)) {
    const std::string chunk = decoder.Consume(Token(id)).text;
    EXPECT_TRUE(IsValidUtf8(chunk)) << "token " << id;  // never ends inside a character
    out += chunk;
  }
  out += decoder.Consume(Final(FinishReason::kLength)).text;
  EXPECT_EQ(out, text);
}

}  // namespace
}  // namespace triplane::engine::server
