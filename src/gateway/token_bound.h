#pragma once

// How many tokens a public API request can use at most, from its JSON body alone: what
// the gateway reserves against a key's token limits before forwarding it. Kept apart
// from gateway.cc so that it can be tested and fuzzed without the HTTP stack.

#include <cstdint>

#include "nlohmann/json.hpp"

namespace triplane::gateway {

// An upper bound of the tokens a request can use: its text's bytes (a token is at least
// one byte) plus 16 per message for the chat template (8 for a plain prompt: BOS and the
// like), plus max_tokens (or max_completion_tokens) times n; `default_max_tokens` when it
// gives none (the gateway then puts that max_tokens in the forwarded body, so that the
// bound holds). Any JSON object is accepted: members of the wrong type count as absent
// (the engine rejects them), and the sum saturates at INT64_MAX instead of overflowing.
int64_t TokenUpperBound(nlohmann::json& body, bool chat, int64_t default_max_tokens);

}  // namespace triplane::gateway
