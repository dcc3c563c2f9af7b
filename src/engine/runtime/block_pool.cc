#include "engine/runtime/block_pool.h"

namespace triplane::engine {

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

BlockPool::BlockPool(int64_t num_blocks)
    : refs_(static_cast<size_t>(num_blocks), 0), meta_(static_cast<size_t>(num_blocks)) {
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

uint64_t BlockPool::ChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = Mix(parent ^ 0x9e3779b97f4a7c15ULL);
  for (int32_t t : tokens) h = Mix(h + static_cast<uint32_t>(t) + 0x9e3779b97f4a7c15ULL);
  return h == 0 ? 1 : h;  // 0 is the chain's start
}

int32_t BlockPool::Allocate() {
  int32_t block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    block = lru_.front();
    lru_.pop_front();
    Cached& m = meta_[static_cast<size_t>(block)];
    by_hash_.erase(m.hash);
    m.has_hash = false;
  } else {
    return -1;
  }
  refs_[static_cast<size_t>(block)] = 1;
  return block;
}

int32_t BlockPool::Lookup(uint64_t hash) {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t block = it->second;
  if (refs_[static_cast<size_t>(block)]++ == 0) lru_.erase(meta_[static_cast<size_t>(block)].lru);
  return block;
}

void BlockPool::Publish(int32_t block, uint64_t hash) {
  Cached& m = meta_[static_cast<size_t>(block)];
  if (m.has_hash || by_hash_.contains(hash)) return;
  m.hash = hash;
  m.has_hash = true;
  by_hash_.emplace(hash, block);
}

void BlockPool::Release(int32_t block) {
  if (--refs_[static_cast<size_t>(block)] > 0) return;
  Cached& m = meta_[static_cast<size_t>(block)];
  if (m.has_hash) {
    m.lru = lru_.insert(lru_.end(), block);
  } else {
    free_.push_back(block);
  }
}

}  // namespace triplane::engine
