#include "engine/model/huge_page_buffer.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "engine/model/kv_cache.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// The "THPeligible:" value of the mapping that contains `p`, from /proc/self/smaps
// (1 when the kernel may back it with huge pages), or -1 when not found.
int ThpEligible(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= addr && addr < end;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return std::stoi(line.substr(12));
  }
  return -1;
}

// False when the kernel has transparent huge pages switched off ("[never]").
bool ThpAvailable() {
  std::ifstream enabled("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  return std::getline(enabled, modes) && modes.find("[never]") == std::string::npos;
}

TEST(HugePageBufferTest, AlignedRoundedZeroedAndAdvised) {
  HugePageBuffer buffer(3 * kHugePage + 100, /*populate=*/true);
  ASSERT_FALSE(buffer.empty());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % kHugePage, 0u);
  EXPECT_EQ(buffer.size(), 4 * kHugePage);
  for (size_t i = 0; i < buffer.size(); i += 4096) ASSERT_EQ(buffer.data()[i], std::byte{0}) << i;
  EXPECT_EQ(buffer.data()[buffer.size() - 1], std::byte{0});
  if (ThpAvailable()) {
    EXPECT_EQ(ThpEligible(buffer.data()), 1);
  }
}

TEST(HugePageBufferTest, MovesOwnership) {
  HugePageBuffer a(100);
  ASSERT_FALSE(a.empty());
  std::byte* data = a.data();
  data[99] = std::byte{7};
  HugePageBuffer b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.data(), data);
  HugePageBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), data);
  EXPECT_EQ(c.data()[99], std::byte{7});
  EXPECT_TRUE(HugePageBuffer(0).empty());
}

TEST(HugePageBufferTest, KvCacheArraysLiveInHugePages) {
  ModelConfig config;
  config.layers = 2;
  config.heads = config.kv_heads = 2;
  config.head_dim = 64;
  config.embedding = 128;
  if (!ThpAvailable()) GTEST_SKIP() << "transparent huge pages are off";
  for (KvType type : {KvType::kF16, KvType::kQ8_0}) {
    PagedKvCache cache(config, 64, type);
    EXPECT_EQ(cache.bytes(), static_cast<uint64_t>(PagedKvCache::BytesPerBlock(config, type) * 64));
    const void* keys = type == KvType::kF16 ? static_cast<const void*>(cache.K(0, 0)) : cache.KQ8(0, 0);
    const void* values = type == KvType::kF16 ? static_cast<const void*>(cache.V(1, 63)) : cache.VQ8(1, 63);
    EXPECT_EQ(ThpEligible(keys), 1);
    EXPECT_EQ(ThpEligible(values), 1);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(keys) % 64, 0u);
  }
}

}  // namespace
}  // namespace triplane::engine
