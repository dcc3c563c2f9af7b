#pragma once

// Ownership of the paged KV cache's blocks, with automatic prefix caching.
//
// A block is free, referenced (by one or more sequences) or cached (unreferenced, but
// holding the keys and values of a known full block of tokens, kept for reuse). A full
// block is identified by the hash chain of its tokens: hash(previous block's hash,
// its kBlockTokens token ids), so equal hashes mean equal prefixes up to and including
// the block. Lookup of a cached hash references the block again; allocation takes a free
// block first and otherwise evicts the least recently released cached block.
// Thread-compatible: the engine thread owns it.

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace triplane::engine {

class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  // The hash of a full block of tokens following the block whose hash is `parent`
  // (0 for the first block).
  static uint64_t ChainHash(uint64_t parent, std::span<const int32_t> tokens);

  int64_t total() const { return static_cast<int64_t>(refs_.size()); }
  // Blocks an Allocate() can return: free plus cached.
  int64_t available() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t used() const { return total() - available(); }
  int64_t cached() const { return static_cast<int64_t>(lru_.size()); }

  // A block with one reference and no hash, or -1 when every block is referenced.
  int32_t Allocate();

  // The block cached or in use under `hash`, with one more reference; -1 when none.
  int32_t Lookup(uint64_t hash);

  // Records that `block` (referenced, full) holds the tokens of `hash`, so that later
  // lookups find it. No effect when another block already holds that hash.
  void Publish(int32_t block, uint64_t hash);

  // Drops one reference; at zero the block becomes cached (if published) or free.
  void Release(int32_t block);

 private:
  struct Cached {
    uint64_t hash = 0;
    bool has_hash = false;
    std::list<int32_t>::iterator lru;  // valid while cached (refs 0, has_hash)
  };
  std::vector<int32_t> refs_;
  std::vector<Cached> meta_;
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;  // cached blocks, least recently released first
  std::unordered_map<uint64_t, int32_t> by_hash_;
};

}  // namespace triplane::engine
