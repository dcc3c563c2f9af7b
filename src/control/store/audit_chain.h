#pragma once

// The audit log's hash chain, independent of the database. Row n stores prev_hash (row
// n-1's hash; 64 zeros for row 1) and hash = SHA-256 over a canonical, unambiguous
// encoding of (id, time, actor, action, target, before, after, prev_hash): each field as
// a netstring "<length>:<bytes>,". before/after are hashed as the exact JSON text stored,
// so verification never depends on how a database or JSON library re-serialises values.
// A chain head (last id and hash, updated with every append) catches deleted tail rows.

#include <cstdint>
#include <string>
#include <string_view>

#include "control/store/store_types.h"

namespace triplane::control {

inline constexpr std::string_view kAuditGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// A row exactly as stored.
struct StoredAuditRow {
  int64_t id = 0;
  int64_t time_us = 0;  // microseconds since the Unix epoch
  std::string actor;
  std::string action;
  std::string target;
  std::string before_json;
  std::string after_json;
  std::string prev_hash;
  std::string hash;
};

// The hash `row` must carry, from its content and prev_hash (row.hash is ignored).
std::string AuditRowHash(const StoredAuditRow& row);

// Checks rows fed in id order; remembers the first failure. Thread-compatible.
class AuditChainVerifier {
 public:
  // Feeds the next row read in ascending id order. Returns false once a row has failed
  // (further rows are ignored).
  bool Add(const StoredAuditRow& row);

  // Compares the end of the chain with the head the store recorded and returns the
  // verdict for all rows fed.
  AuditVerification Finish(int64_t head_last_id, std::string_view head_last_hash);

 private:
  void Fail(int64_t id, std::string problem);

  int64_t last_id_ = 0;
  std::string last_hash_{kAuditGenesisHash};
  AuditVerification result_;
};

}  // namespace triplane::control
