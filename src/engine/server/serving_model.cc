#include "engine/server/serving_model.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"
#include "common/strings.h"
#include "engine/tokenizer/vocab_loader.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::engine::server {
namespace {

absl::Status Annotate(const absl::Status& status, std::string_view what) {
  return absl::Status(status.code(), fmt::format("{}: {}", what, common::ToStd(status.message())));
}

std::string TokenText(const Vocab& vocab, TokenId id) {
  return id >= 0 && static_cast<size_t>(id) < vocab.tokens.size()
             ? vocab.tokens[static_cast<size_t>(id)]
             : std::string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServingModel>> ServeModel(std::unique_ptr<Model> model,
                                                         EngineConfig config) {
  auto serving = std::make_unique<ServingModel>();
  absl::StatusOr<Vocab> vocab = LoadVocab(model->file());
  if (!vocab.ok()) return Annotate(vocab.status(), "tokenizer");
  const std::string bos = TokenText(*vocab, vocab->bos);
  const std::string eos = TokenText(*vocab, vocab->eos);
  config.eog_tokens.assign(vocab->eog.begin(), vocab->eog.end());  // the engine stops there itself
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(*std::move(vocab));
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), "tokenizer");
  serving->tokenizer = *std::move(tokenizer);

  const std::optional<std::string_view> source = model->file().GetString("tokenizer.chat_template");
  serving->chat_template_from_model = source.has_value() && !source->empty();
  absl::StatusOr<chat::ChatTemplate> tmpl = chat::ChatTemplate::Create(
      serving->chat_template_from_model ? *source : chat::ChatTemplate::ChatMlSource(), bos, eos);
  if (!tmpl.ok() && serving->chat_template_from_model) {
    // A template we cannot parse should not make the model unusable for completions.
    spdlog::warn("the model's chat template does not parse ({}); using ChatML",
                 common::ToStd(tmpl.status().message()));
    serving->chat_template_from_model = false;
    tmpl = chat::ChatTemplate::Create(chat::ChatTemplate::ChatMlSource(), bos, eos);
  }
  if (!tmpl.ok()) return Annotate(tmpl.status(), "chat template");
  serving->chat_template.emplace(*std::move(tmpl));

  const int64_t trained = model->config().context_length;
  if (trained > 0 && config.ctx > trained) {
    spdlog::info("context capped at the model's trained length: {} tokens (asked for {})", trained,
                 config.ctx);
    config.ctx = trained;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(*model, config);
  if (!engine.ok()) return engine.status();  // its messages begin "engine: "
  serving->model = std::move(model);
  serving->engine = *std::move(engine);
  return serving;
}

absl::StatusOr<std::unique_ptr<ServingModel>> LoadServingModel(const ServingModelOptions& options) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.path, options.load);
  if (!model.ok()) return Annotate(model.status(), options.path);
  return ServeModel(*std::move(model), options.engine);
}

}  // namespace triplane::engine::server
