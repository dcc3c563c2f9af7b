#pragma once

// API key secrets: made here, shown once, stored only as their SHA-256 digest.

#include <string>
#include <string_view>

namespace triplane::control {

// "tp-" followed by 43 base62 characters: 256 bits from the OS's random source.
std::string GenerateApiKey();

// True for the form GenerateApiKey makes ("tp-" + 32 or more base62 characters).
bool LooksLikeApiKey(std::string_view key);

// SHA-256 of the key, 64 lowercase hex digits: what the store keeps.
std::string ApiKeyDigest(std::string_view key);

// A public key id: "key-" + 12 base62 characters (not secret; shown in lists and audit).
std::string GenerateKeyId();

}  // namespace triplane::control
