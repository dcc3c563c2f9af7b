#include "engine/tokenizer/vocab_loader.h"

#include <fmt/format.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace triplane::engine {
namespace {

// A token id from metadata: absent keeps `fallback`; out of range is an error.
absl::StatusOr<TokenId> ReadTokenId(const GgufFile& file, std::string_view key, TokenId fallback,
                                    size_t vocab_size) {
  const std::optional<int64_t> value = file.GetInt(key);
  if (!value) {
    if (file.FindKey(key) != nullptr)
      return absl::InvalidArgumentError(fmt::format("{} is not an integer", key));
    return fallback >= 0 && static_cast<size_t>(fallback) < vocab_size ? fallback : kNoToken;
  }
  if (*value < 0 || static_cast<uint64_t>(*value) >= vocab_size) {
    return absl::InvalidArgumentError(
        fmt::format("{} = {} is outside the vocabulary of {} tokens", key, *value, vocab_size));
  }
  return static_cast<TokenId>(*value);
}

bool ReadFlag(const GgufFile& file, std::string_view key, bool fallback) {
  return file.GetBool(key).value_or(fallback);
}

absl::Status Annotate(const absl::Status& status, std::string_view key) {
  return absl::Status(status.code(), fmt::format("{}: {}", key, common::ToStd(status.message())));
}

}  // namespace

absl::StatusOr<Vocab> LoadVocab(const GgufFile& file) {
  Vocab vocab;
  const std::optional<std::string_view> model = file.GetString("tokenizer.ggml.model");
  if (!model)
    return absl::InvalidArgumentError(
        "tokenizer.ggml.model is missing: the file has no vocabulary");
  const std::string_view pre_name = file.GetString("tokenizer.ggml.pre").value_or("");
  PreTokenizerTraits traits;
  if (*model == "llama") {
    vocab.type = VocabType::kSentencePiece;
  } else if (*model == "gpt2") {
    vocab.type = VocabType::kByteLevelBpe;
    TP_ASSIGN_OR_RETURN(vocab.pre, ParsePreTokenizer(pre_name));
    traits = TraitsOfPreTokenizer(pre_name);
    vocab.ignore_merges = traits.ignore_merges;
    vocab.normalize_nfc = traits.normalize_nfc;
  } else {
    return absl::InvalidArgumentError(fmt::format("unsupported tokenizer.ggml.model '{}'", *model));
  }

  auto tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return Annotate(tokens.status(), "tokenizer.ggml.tokens");
  const size_t n = tokens->size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  vocab.tokens.reserve(n);
  for (std::string_view token : *tokens) vocab.tokens.emplace_back(token);

  if (file.FindKey("tokenizer.ggml.scores") != nullptr) {
    auto scores = file.GetFloatArray("tokenizer.ggml.scores");
    if (!scores.ok()) return Annotate(scores.status(), "tokenizer.ggml.scores");
    if (scores->size() != n) {
      return absl::InvalidArgumentError(
          fmt::format("tokenizer.ggml.scores has {} entries for {} tokens", scores->size(), n));
    }
    vocab.scores = *std::move(scores);
  }
  if (file.FindKey("tokenizer.ggml.token_type") != nullptr) {
    auto types = file.GetInt32Array("tokenizer.ggml.token_type");
    if (!types.ok()) return Annotate(types.status(), "tokenizer.ggml.token_type");
    if (types->size() != n) {
      return absl::InvalidArgumentError(
          fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens", types->size(), n));
    }
    vocab.types.reserve(n);
    for (int32_t type : *types) {
      // Unknown values are treated as undefined (plain text), as llama.cpp does.
      vocab.types.push_back(type >= 0 && type <= 6 ? static_cast<TokenType>(type)
                                                   : TokenType::kUndefined);
    }
  }
  if (vocab.type == VocabType::kByteLevelBpe) {
    auto merges = file.GetStringArray("tokenizer.ggml.merges");
    if (!merges.ok()) return Annotate(merges.status(), "tokenizer.ggml.merges");
    vocab.merges.reserve(merges->size());
    for (std::string_view merge : *merges) vocab.merges.emplace_back(merge);
  }

  const bool spm = vocab.type == VocabType::kSentencePiece;
  TP_ASSIGN_OR_RETURN(vocab.bos,
                      ReadTokenId(file, "tokenizer.ggml.bos_token_id", spm ? 1 : kNoToken, n));
  TP_ASSIGN_OR_RETURN(vocab.eos,
                      ReadTokenId(file, "tokenizer.ggml.eos_token_id", spm ? 2 : kNoToken, n));
  TP_ASSIGN_OR_RETURN(vocab.unk,
                      ReadTokenId(file, "tokenizer.ggml.unknown_token_id", spm ? 0 : kNoToken, n));
  TP_ASSIGN_OR_RETURN(vocab.eot, ReadTokenId(file, "tokenizer.ggml.eot_token_id", kNoToken, n));
  TP_ASSIGN_OR_RETURN(vocab.eom, ReadTokenId(file, "tokenizer.ggml.eom_token_id", kNoToken, n));
  TP_ASSIGN_OR_RETURN(vocab.pad, ReadTokenId(file, "tokenizer.ggml.padding_token_id", kNoToken, n));

  vocab.add_bos = ReadFlag(file, "tokenizer.ggml.add_bos_token", spm || traits.add_bos);
  vocab.add_eos = ReadFlag(file, "tokenizer.ggml.add_eos_token", false);
  vocab.add_space_prefix = spm && ReadFlag(file, "tokenizer.ggml.add_space_prefix", true);
  if (vocab.add_bos && vocab.bos == kNoToken) vocab.add_bos = false;
  if (vocab.add_eos && vocab.eos == kNoToken) vocab.add_eos = false;

  for (size_t i = 0; i < n; ++i) {
    if (IsEndOfGenerationText(vocab.tokens[i])) vocab.eog.push_back(static_cast<TokenId>(i));
  }
  for (TokenId id : {vocab.eos, vocab.eot, vocab.eom}) {
    if (id != kNoToken) vocab.eog.push_back(id);
  }
  return vocab;
}

}  // namespace triplane::engine
