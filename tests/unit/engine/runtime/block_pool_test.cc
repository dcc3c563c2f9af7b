#include "engine/runtime/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace triplane::engine {
namespace {

TEST(BlockPoolTest, AllocatesEveryBlockOnceThenRefuses) {
  BlockPool pool(3);
  std::vector<int32_t> got = {pool.Allocate(), pool.Allocate(), pool.Allocate()};
  EXPECT_EQ(pool.Allocate(), -1);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.used(), 3);
  pool.Release(got[1]);
  EXPECT_EQ(pool.available(), 1);
  EXPECT_EQ(pool.Allocate(), got[1]);
}

TEST(BlockPoolTest, ChainHashDependsOnTheWholePrefix) {
  const std::vector<int32_t> a = {1, 2, 3}, b = {1, 2, 4};
  EXPECT_EQ(BlockPool::ChainHash(0, a), BlockPool::ChainHash(0, a));
  EXPECT_NE(BlockPool::ChainHash(0, a), BlockPool::ChainHash(0, b));
  EXPECT_NE(BlockPool::ChainHash(BlockPool::ChainHash(0, a), a), BlockPool::ChainHash(BlockPool::ChainHash(0, b), a));
}

TEST(BlockPoolTest, PublishedBlocksAreSharedAndCachedUntilEvicted) {
  BlockPool pool(2);
  const int32_t a = pool.Allocate();
  pool.Publish(a, 42);
  EXPECT_EQ(pool.Lookup(42), a);  // shared: two references
  pool.Release(a);
  EXPECT_EQ(pool.cached(), 0);
  pool.Release(a);
  EXPECT_EQ(pool.cached(), 1);  // unreferenced but kept
  EXPECT_EQ(pool.available(), 2);
  EXPECT_EQ(pool.Lookup(42), a);  // reused from the cache
  EXPECT_EQ(pool.cached(), 0);
  pool.Release(a);
  // Allocation prefers free blocks, then evicts the least recently released cached one.
  const int32_t b = pool.Allocate();
  EXPECT_NE(b, a);
  EXPECT_EQ(pool.Allocate(), a);
  EXPECT_EQ(pool.Lookup(42), -1);  // evicted
}

TEST(BlockPoolTest, EvictsLeastRecentlyReleasedFirst) {
  BlockPool pool(3);
  const int32_t x = pool.Allocate(), y = pool.Allocate(), z = pool.Allocate();
  pool.Publish(x, 1);
  pool.Publish(y, 2);
  pool.Publish(z, 3);
  pool.Release(y);
  pool.Release(x);
  pool.Release(z);
  EXPECT_EQ(pool.Allocate(), y);
  EXPECT_EQ(pool.Allocate(), x);
  EXPECT_EQ(pool.Lookup(3), z);
}

TEST(BlockPoolTest, ADuplicateHashKeepsTheFirstBlock) {
  BlockPool pool(2);
  const int32_t a = pool.Allocate(), b = pool.Allocate();
  pool.Publish(a, 7);
  pool.Publish(b, 7);
  EXPECT_EQ(pool.Lookup(7), a);
  pool.Release(b);
  EXPECT_EQ(pool.cached(), 0);  // b was never published: free, not cached
  EXPECT_EQ(pool.available(), 1);
}

}  // namespace
}  // namespace triplane::engine
