#include "control/store/audit_chain.h"

#include <utility>

#include "common/sha256.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

void AppendField(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
  out += ',';
}

}  // namespace

std::string AuditRowHash(const StoredAuditRow& row) {
  std::string canonical = "triplane-audit-v1,";
  AppendField(canonical, std::to_string(row.id));
  AppendField(canonical, std::to_string(row.time_us));
  AppendField(canonical, row.actor);
  AppendField(canonical, row.action);
  AppendField(canonical, row.target);
  AppendField(canonical, row.before_json);
  AppendField(canonical, row.after_json);
  AppendField(canonical, row.prev_hash);
  return common::Sha256Hex(canonical);
}

void AuditChainVerifier::Fail(int64_t id, std::string problem) {
  result_.ok = false;
  result_.first_bad_id = id;
  result_.problem = std::move(problem);
}

bool AuditChainVerifier::Add(const StoredAuditRow& row) {
  if (!result_.ok) return false;
  ++result_.rows_checked;
  const int64_t expected_id = last_id_ + 1;
  if (row.id != expected_id) {
    if (row.id > expected_id) {
      Fail(row.id, row.id == expected_id + 1
                       ? fmt::format("row {} is missing (deleted)", expected_id)
                       : fmt::format("rows {}..{} are missing (deleted)", expected_id, row.id - 1));
    } else {
      Fail(row.id, fmt::format("row {} is out of order after row {}", row.id, last_id_));
    }
    return false;
  }
  if (row.prev_hash != last_hash_) {
    Fail(row.id, fmt::format("row {} does not follow row {}: prev_hash differs (a row was deleted, "
                             "reordered or edited)",
                             row.id, last_id_));
    return false;
  }
  if (AuditRowHash(row) != row.hash) {
    Fail(row.id, fmt::format("row {} was edited: its content does not match its hash", row.id));
    return false;
  }
  last_id_ = row.id;
  last_hash_ = row.hash;
  return true;
}

AuditVerification AuditChainVerifier::Finish(int64_t head_last_id,
                                             std::string_view head_last_hash) {
  if (!result_.ok) return result_;
  if (head_last_id > last_id_) {
    Fail(last_id_ + 1, fmt::format("rows {}..{} are missing at the end of the log (deleted)",
                                   last_id_ + 1, head_last_id));
  } else if (head_last_id < last_id_) {
    Fail(head_last_id + 1,
         fmt::format("the log goes on to row {} but its head records row {} (rows "
                     "inserted behind the store's back, or the head edited)",
                     last_id_, head_last_id));
  } else if (head_last_hash != last_hash_) {
    Fail(last_id_,
         fmt::format("row {} is not the row the head records (replaced, or the head edited)",
                     last_id_));
  }
  return result_;
}

}  // namespace triplane::control
