#pragma once

// Everything one engine process serves, loaded from a GGUF file: the model, its
// tokenizer and chat template, and the Engine running it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/chat/chat_template.h"
#include "engine/model/model.h"
#include "engine/runtime/engine.h"
#include "engine/tokenizer/tokenizer.h"

namespace triplane::engine::server {

// Owns the loaded pieces. Members are destroyed in reverse order: the engine (which
// cancels what still runs and joins its thread) before the model it reads.
struct ServingModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<chat::ChatTemplate> chat_template;  // always set once loaded
  bool chat_template_from_model = false;            // false: the ChatML fallback
  std::unique_ptr<Engine> engine;
};

struct ServingModelOptions {
  std::string path;     // GGUF file
  EngineConfig engine;  // ctx is capped at the model's trained context
  ModelLoadOptions load;
};

// Loads the model, builds its tokenizer and chat template (the GGUF's
// `tokenizer.chat_template`, or ChatML when there is none) and starts an Engine.
// Errors name the file and what failed. Cost: reading the whole model.
[[nodiscard]] absl::StatusOr<std::unique_ptr<ServingModel>> LoadServingModel(
    const ServingModelOptions& options);

// Builds the serving pieces around an already loaded model (tests).
[[nodiscard]] absl::StatusOr<std::unique_ptr<ServingModel>> ServeModel(std::unique_ptr<Model> model,
                                                                       EngineConfig config);

}  // namespace triplane::engine::server
