#include "engine/tokenizer/vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "absl/status/status.h"

namespace triplane::engine {
namespace {

struct PreTokenizerName {
  std::string_view name;
  PreTokenizerType type;
  PreTokenizerTraits traits;
};

constexpr PreTokenizerTraits kPlain{};
constexpr PreTokenizerTraits kLlama3{.ignore_merges = true, .add_bos = true};
constexpr PreTokenizerTraits kQwen{.normalize_nfc = true};

// GGUF converters name the pre-tokenizer after the model family; several families share
// one regex.
constexpr std::array kPreTokenizerNames = {
    PreTokenizerName{"default", PreTokenizerType::kDefault, kPlain},
    PreTokenizerName{"llama3", PreTokenizerType::kLlama3, kLlama3},
    PreTokenizerName{"llama-v3", PreTokenizerType::kLlama3, kLlama3},
    PreTokenizerName{"llama-bpe", PreTokenizerType::kLlama3, kLlama3},
    PreTokenizerName{"falcon3", PreTokenizerType::kLlama3, kLlama3},
    PreTokenizerName{"pixtral", PreTokenizerType::kLlama3, kLlama3},
    PreTokenizerName{"dbrx", PreTokenizerType::kLlama3, kPlain},
    PreTokenizerName{"smaug-bpe", PreTokenizerType::kLlama3, kPlain},
    PreTokenizerName{"qwen2", PreTokenizerType::kQwen2, kQwen},
    PreTokenizerName{"deepseek-r1-qwen", PreTokenizerType::kQwen2, kQwen},
    PreTokenizerName{"gpt-2", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"phi-2", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"mpt", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"olmo", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"jina-es", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"jina-de", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"jina-v2-es", PreTokenizerType::kGpt2, kPlain},
    PreTokenizerName{"jina-v2-de", PreTokenizerType::kGpt2, kPlain},
};

constexpr std::array<std::string_view, 14> kEndOfGenerationTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|return|>",
    "<|call|>",
    "<end_of_utterance>",
    "<｜end▁of▁sentence｜>",
    "</s>",
};

const PreTokenizerName* FindPreTokenizer(std::string_view name) {
  for (const PreTokenizerName& entry : kPreTokenizerNames) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<PreTokenizerType> ParsePreTokenizer(std::string_view name) {
  if (name.empty()) return PreTokenizerType::kDefault;
  if (const PreTokenizerName* entry = FindPreTokenizer(name)) return entry->type;
  return absl::InvalidArgumentError(
      fmt::format("unsupported pre-tokenizer '{}' (tokenizer.ggml.pre)", name));
}

PreTokenizerTraits TraitsOfPreTokenizer(std::string_view name) {
  const PreTokenizerName* entry = FindPreTokenizer(name);
  return entry != nullptr ? entry->traits : PreTokenizerTraits{};
}

bool IsEndOfGenerationText(std::string_view text) {
  return std::find(kEndOfGenerationTexts.begin(), kEndOfGenerationTexts.end(), text) !=
         kEndOfGenerationTexts.end();
}

}  // namespace triplane::engine
