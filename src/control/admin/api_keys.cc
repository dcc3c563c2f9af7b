#include "control/admin/api_keys.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/sha256.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

constexpr std::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kKeyPrefix = "tp-";
constexpr size_t kKeyChars = 43;  // 62^43 > 2^256
constexpr size_t kMinKeyChars = 32;
constexpr size_t kKeyIdChars = 12;

// Fills `out` from the kernel's CSPRNG. getrandom(2) blocks only until the pool is
// initialised at boot; EINTR is retried. Without a working random source no key may be
// made at all, so failure aborts rather than returning something guessable.
void FillRandom(std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::critical("getrandom failed (errno {}): cannot make API keys", errno);
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

// `count` characters of base62. Bytes >= 248 (= 4 * 62) are rejected instead of reduced
// modulo 62, so every character is uniform.
std::string RandomBase62(size_t count) {
  std::string text;
  text.reserve(count);
  std::array<std::byte, 64> pool;
  while (text.size() < count) {
    FillRandom(pool);
    for (std::byte b : pool) {
      const auto value = static_cast<unsigned>(b);
      if (value >= 4 * kAlphabet.size()) continue;
      text.push_back(kAlphabet[value % kAlphabet.size()]);
      if (text.size() == count) break;
    }
  }
  return text;
}

bool IsBase62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

}  // namespace

std::string GenerateApiKey() { return std::string(kKeyPrefix) + RandomBase62(kKeyChars); }

bool LooksLikeApiKey(std::string_view key) {
  if (!key.starts_with(kKeyPrefix)) return false;
  key.remove_prefix(kKeyPrefix.size());
  if (key.size() < kMinKeyChars) return false;
  for (char c : key) {
    if (!IsBase62(c)) return false;
  }
  return true;
}

std::string ApiKeyDigest(std::string_view key) { return common::Sha256Hex(key); }

std::string GenerateKeyId() { return "key-" + RandomBase62(kKeyIdChars); }

}  // namespace triplane::control
