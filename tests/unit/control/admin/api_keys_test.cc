#include "control/admin/api_keys.h"

#include <set>

#include "common/sha256.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

bool IsBase62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

TEST(ApiKeysTest, KeysAreTpFollowedBy43Base62Characters) {
  const std::string key = GenerateApiKey();
  ASSERT_EQ(key.size(), 3u + 43u);
  EXPECT_EQ(key.substr(0, 3), "tp-");
  for (char c : key.substr(3)) EXPECT_TRUE(IsBase62(c)) << key;
  EXPECT_TRUE(LooksLikeApiKey(key));
}

TEST(ApiKeysTest, KeysAndIdsDoNotRepeat) {
  std::set<std::string> keys, ids;
  for (int i = 0; i < 1000; ++i) {
    keys.insert(GenerateApiKey());
    ids.insert(GenerateKeyId());
  }
  EXPECT_EQ(keys.size(), 1000u);
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(ApiKeysTest, EveryBase62CharacterTurnsUp) {
  // 62 symbols over ~43,000 draws: a missing one would mean a broken alphabet or range.
  std::set<char> seen;
  for (int i = 0; i < 1000; ++i) {
    for (char c : GenerateApiKey().substr(3)) seen.insert(c);
  }
  EXPECT_EQ(seen.size(), 62u);
}

TEST(ApiKeysTest, KeyIdsArePublicLookingNames) {
  const std::string id = GenerateKeyId();
  ASSERT_EQ(id.size(), 4u + 12u);
  EXPECT_EQ(id.substr(0, 4), "key-");
  EXPECT_FALSE(LooksLikeApiKey(id));
}

TEST(ApiKeysTest, LooksLikeApiKeyChecksPrefixLengthAndAlphabet) {
  EXPECT_TRUE(LooksLikeApiKey("tp-" + std::string(32, 'a')));
  EXPECT_FALSE(LooksLikeApiKey("tp-" + std::string(31, 'a')));
  EXPECT_FALSE(LooksLikeApiKey("sk-" + std::string(43, 'a')));
  EXPECT_FALSE(LooksLikeApiKey("tp-" + std::string(42, 'a') + "-"));
  EXPECT_FALSE(LooksLikeApiKey(""));
}

TEST(ApiKeysTest, TheDigestIsTheKeysSha256) {
  const std::string key = GenerateApiKey();
  EXPECT_EQ(ApiKeyDigest(key), common::Sha256Hex(key));
  EXPECT_EQ(ApiKeyDigest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace triplane::control
