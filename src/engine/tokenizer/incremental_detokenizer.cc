#include "engine/tokenizer/incremental_detokenizer.h"

#include "engine/tokenizer/unicode.h"

namespace triplane::engine {

std::string IncrementalDetokenizer::Push(TokenId id) {
  if (options_.skip_special && tokenizer_->IsSpecial(id)) return {};
  pending_.append(tokenizer_->TokenPiece(id));
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const Utf8Sequence seq = ReadUtf8(pending_, pos);
    if (seq.kind == Utf8Sequence::Kind::kIncomplete) break;  // wait for the next token
    if (seq.kind == Utf8Sequence::Kind::kValid) {
      out.append(pending_, pos, seq.size);
    } else {
      AppendUtf8(kReplacementChar, out);
    }
    pos += seq.size;
  }
  pending_.erase(0, pos);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  if (!pending_.empty()) AppendUtf8(kReplacementChar, out);
  pending_.clear();
  return out;
}

}  // namespace triplane::engine
