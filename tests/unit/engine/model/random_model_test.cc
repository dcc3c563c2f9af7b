// The built-in vocabulary of random-weight models (the demo model's): any text
// round-trips byte for byte, ChatML's special tokens are whole tokens, and the file
// carries a chat template.
#include "engine/model/random_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_loader.h"

namespace triplane::engine {
namespace {

TEST(RandomModelTest, BuiltinVocabularyRoundTripsAnyText) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("triplane-random-" + std::to_string(::getpid()) + ".gguf");
  ASSERT_TRUE(WriteRandomModel({.size = "tiny", .type = GgmlType::kQ8_0}, path.string()).ok());
  auto file = GgufFile::Open(path.string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->GetString("tokenizer.chat_template").has_value());
  auto vocab = LoadVocab(**file);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tokenizer = Tokenizer::Create(std::move(*vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  const std::string text = "Hello, world! 你好，世界 🙂\n\ttabs";
  const std::vector<TokenId> ids = (*tokenizer)->Encode(text, {.add_special = false});
  EXPECT_EQ(ids.size(), text.size());  // one token per byte: no merges
  EXPECT_EQ((*tokenizer)->Decode(ids, /*skip_special=*/true), text);

  const std::vector<TokenId> chat =
      (*tokenizer)->Encode("<|im_start|>user\nhi<|im_end|>",
                           {.add_special = false, .parse_special = true});
  ASSERT_EQ(chat.size(), 1u + 7u + 1u);  // <|im_start|>, the 7 bytes of "user\nhi", <|im_end|>
  EXPECT_EQ(chat.front(), 257);
  EXPECT_EQ(chat.back(), 258);
  EXPECT_EQ((*file)->GetInt("tokenizer.ggml.eos_token_id"), 258);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace triplane::engine
