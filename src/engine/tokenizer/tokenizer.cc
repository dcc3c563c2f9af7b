#include "engine/tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <queue>

#include "absl/status/status.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

// The byte of a SentencePiece byte token "<0xAB>", or -1.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

uint64_t PairKey(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

bool IsTextType(TokenType type) {
  return type == TokenType::kNormal || type == TokenType::kUndefined || type == TokenType::kUnused;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(Vocab vocab) {
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer(std::move(vocab)));
  if (absl::Status status = tokenizer->Build(); !status.ok()) return status;
  return tokenizer;
}

TokenType Tokenizer::TypeOf(TokenId id) const {
  return vocab_.types.empty() ? TokenType::kNormal : vocab_.types[static_cast<size_t>(id)];
}

absl::Status Tokenizer::Build() {
  const size_t n = vocab_.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) return absl::InvalidArgumentError("vocabulary too large");
  if (!vocab_.scores.empty() && vocab_.scores.size() != n) {
    return absl::InvalidArgumentError(
        fmt::format("vocabulary has {} tokens but {} scores", n, vocab_.scores.size()));
  }
  if (!vocab_.types.empty() && vocab_.types.size() != n) {
    return absl::InvalidArgumentError(
        fmt::format("vocabulary has {} tokens but {} token types", n, vocab_.types.size()));
  }
  for (TokenType type : vocab_.types) {
    if (static_cast<int32_t>(type) < 0 || static_cast<int32_t>(type) > 6) {
      return absl::InvalidArgumentError(
          fmt::format("unknown token type {}", static_cast<int32_t>(type)));
    }
  }
  auto in_range = [&](TokenId id) { return id >= 0 && static_cast<size_t>(id) < n; };
  const std::pair<std::string_view, TokenId> named[] = {{"bos", vocab_.bos}, {"eos", vocab_.eos},
                                                        {"unk", vocab_.unk}, {"eot", vocab_.eot},
                                                        {"eom", vocab_.eom}, {"pad", vocab_.pad}};
  for (const auto& [name, id] : named) {
    if (id != kNoToken && !in_range(id)) {
      return absl::InvalidArgumentError(
          fmt::format("{} token id {} out of range [0, {})", name, id, n));
    }
  }
  if (vocab_.add_bos && vocab_.bos == kNoToken) {
    return absl::InvalidArgumentError("vocabulary asks for a BOS token but has none");
  }
  if (vocab_.add_eos && vocab_.eos == kNoToken) {
    return absl::InvalidArgumentError("vocabulary asks for an EOS token but has none");
  }

  eog_.assign(n, false);
  for (TokenId id : vocab_.eog) {
    if (!in_range(id))
      return absl::InvalidArgumentError(fmt::format("end-of-generation token {} out of range", id));
    eog_[static_cast<size_t>(id)] = true;
  }
  for (TokenId id : {vocab_.eos, vocab_.eot, vocab_.eom}) {
    if (id != kNoToken) eog_[static_cast<size_t>(id)] = true;
  }

  const bool spm = vocab_.type == VocabType::kSentencePiece;
  token_ids_.reserve(n);
  pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string& text = vocab_.tokens[i];
    const TokenType type = TypeOf(id);
    token_ids_.insert_or_assign(text, id);
    // As in SentencePiece, merges only produce plain pieces: never control, unknown,
    // byte or unused ones, so that "<s>" or "<0x41>" in user text stay text.
    if (spm && (type == TokenType::kNormal || type == TokenType::kUndefined ||
                type == TokenType::kUserDefined)) {
      mergeable_ids_.insert_or_assign(text, id);
    }
    if (type == TokenType::kByte && ParseByteToken(text) >= 0) {
      pieces_[i] = std::string(1, static_cast<char>(ParseByteToken(text)));
    } else if (!IsTextType(type)) {
      pieces_[i] = text;
    } else if (spm) {
      pieces_[i] = ReplaceAll(text, kSpmSpace, " ");
    } else {
      pieces_[i] = ByteLevelDecode(text);
    }
    if ((type == TokenType::kControl || type == TokenType::kUserDefined ||
         type == TokenType::kUnknown) &&
        !text.empty()) {
      specials_by_first_byte_[static_cast<uint8_t>(text[0])].push_back(id);
    }
  }
  for (auto& candidates : specials_by_first_byte_) {
    // Longest first, so that the first hit at a position is the longest match there.
    std::stable_sort(candidates.begin(), candidates.end(), [&](TokenId a, TokenId b) {
      return vocab_.tokens[static_cast<size_t>(a)].size() >
             vocab_.tokens[static_cast<size_t>(b)].size();
    });
  }

  for (int b = 0; b < 256; ++b) {
    std::string text =
        spm ? fmt::format("<0x{:02X}>", b) : ByteLevelEncode(std::string(1, static_cast<char>(b)));
    auto it = token_ids_.find(text);
    if (spm && (it == token_ids_.end() || TypeOf(it->second) != TokenType::kByte)) {
      it = token_ids_.find(std::string(1, static_cast<char>(b)));
    }
    byte_tokens_[static_cast<size_t>(b)] = it == token_ids_.end() ? vocab_.unk : it->second;
  }

  if (!spm) {
    merges_.reserve(vocab_.merges.size());
    std::string merged;
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
      const std::string_view merge = vocab_.merges[rank];
      // The left part is at least one character, so a space in first place belongs to it.
      const size_t split = merge.find(' ', 1);
      if (split == std::string_view::npos) {
        return absl::InvalidArgumentError(fmt::format("merge {} '{}' has no space", rank, merge));
      }
      const auto left = token_ids_.find(merge.substr(0, split));
      const auto right = token_ids_.find(merge.substr(split + 1));
      merged.assign(merge.substr(0, split));
      merged.append(merge.substr(split + 1));
      const auto result = token_ids_.find(merged);
      // A merge whose parts or result are not tokens can never apply to token symbols.
      if (left == token_ids_.end() || right == token_ids_.end() || result == token_ids_.end())
        continue;
      merges_.emplace(PairKey(left->second, right->second),
                      Merge{static_cast<int32_t>(rank), result->second});
    }
  }
  return absl::OkStatus();
}

const Tokenizer::Merge* Tokenizer::FindMerge(TokenId left, TokenId right) const {
  const auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::vector<TokenId> Tokenizer::Encode(std::string_view text, EncodeOptions options) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_special && vocab_.add_bos) out.push_back(vocab_.bos);

  // Special tokens split the text; SentencePiece adds its space prefix at the start and
  // after each special token.
  bool after_special = true;
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    TokenId hit = kNoToken;
    for (TokenId id : specials_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      if (!options.parse_special && TypeOf(id) != TokenType::kUserDefined) continue;
      if (text.substr(pos).starts_with(vocab_.tokens[static_cast<size_t>(id)])) {
        hit = id;
        break;
      }
    }
    if (hit == kNoToken) {
      ++pos;
      continue;
    }
    if (start < pos) EncodeText(text.substr(start, pos - start), after_special, out);
    out.push_back(hit);
    after_special = true;
    pos += vocab_.tokens[static_cast<size_t>(hit)].size();
    start = pos;
  }
  if (start < text.size()) EncodeText(text.substr(start), after_special, out);

  if (options.add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

void Tokenizer::EncodeText(std::string_view text, bool after_special,
                           std::vector<TokenId>& out) const {
  if (vocab_.type == VocabType::kSentencePiece) {
    EncodeSentencePiece(text, vocab_.add_space_prefix && after_special, out);
    return;
  }
  if (vocab_.normalize_nfc) {
    std::string normalized;
    AppendNfc(text, normalized);
    for (std::string_view word : PreTokenize(normalized, vocab_.pre))
      EncodeByteLevelWord(word, out);
    return;
  }
  for (std::string_view word : PreTokenize(text, vocab_.pre)) EncodeByteLevelWord(word, out);
}

void Tokenizer::AppendBytes(std::string_view bytes, std::vector<TokenId>& out) const {
  for (char c : bytes) {
    const TokenId id = byte_tokens_[static_cast<uint8_t>(c)];
    if (id != kNoToken) out.push_back(id);
  }
}

// SentencePiece BPE: start from characters and repeatedly merge the adjacent pair whose
// merged text is the highest-scoring token (leftmost on ties); characters that end up
// as no token fall back to byte tokens. A heap with lazy invalidation keeps it
// O(n log n) on long inputs.
void Tokenizer::EncodeSentencePiece(std::string_view raw, bool space_prefix,
                                    std::vector<TokenId>& out) const {
  std::string text = space_prefix ? std::string(kSpmSpace) : std::string();
  text += ReplaceAll(raw, " ", kSpmSpace);

  struct Symbol {
    uint32_t offset;
    uint32_t size;  // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t size = ReadUtf8(text, pos).size;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(pos), size, index - 1, index + 1});
    pos += size;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;  // bytes of the merged text, to detect stale candidates
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const uint32_t size = l.size + symbols[static_cast<size_t>(right)].size;
    const auto it = mergeable_ids_.find(std::string_view(text).substr(l.offset, size));
    if (it == mergeable_ids_.end()) return;
    const float score =
        vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(it->second)];
    queue.push({score, left, right, size});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    Symbol& right = symbols[static_cast<size_t>(top.right)];
    if (left.size == 0 || right.size == 0 || left.next != top.right ||
        left.size + right.size != top.size)
      continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece = std::string_view(text).substr(s.offset, s.size);
    const auto it = mergeable_ids_.find(piece);
    if (it != mergeable_ids_.end()) {
      out.push_back(it->second);
    } else {
      AppendBytes(piece, out);
    }
  }
}

// Byte-level BPE on one pre-tokenized word: start from one symbol per byte and repeatedly
// apply the lowest-ranked merge among adjacent pairs (leftmost on ties). Symbols are
// token ids, so a merge is one hash lookup; a heap with lazy invalidation keeps long
// words O(n log n).
void Tokenizer::EncodeByteLevelWord(std::string_view word, std::vector<TokenId>& out) const {
  if (vocab_.ignore_merges) {
    const auto it = token_ids_.find(ByteLevelEncode(word));
    if (it != token_ids_.end() && IsTextType(TypeOf(it->second))) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    AppendBytes(word, out);
    return;
  }

  struct Symbol {
    TokenId id;  // kNoToken once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    symbols[i] = {byte_tokens_[static_cast<uint8_t>(word[i])], static_cast<int32_t>(i) - 1,
                  static_cast<int32_t>(i) + 1};
  }
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    TokenId left_id;
    TokenId right_id;
    TokenId result;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const TokenId l = symbols[static_cast<size_t>(left)].id;
    const TokenId r = symbols[static_cast<size_t>(right)].id;
    if (l == kNoToken || r == kNoToken) return;
    if (const Merge* merge = FindMerge(l, r))
      queue.push({merge->rank, left, right, l, r, merge->result});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    Symbol& right = symbols[static_cast<size_t>(top.right)];
    if (left.id != top.left_id || right.id != top.right_id || left.next != top.right) continue;
    left.id = top.result;
    right.id = kNoToken;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    const TokenId id = symbols[static_cast<size_t>(i)].id;
    if (id != kNoToken) out.push_back(id);
  }
}

std::string_view Tokenizer::TokenPiece(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return {};
  return pieces_[static_cast<size_t>(id)];
}

bool Tokenizer::IsEog(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < eog_.size() && eog_[static_cast<size_t>(id)];
}

bool Tokenizer::IsSpecial(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return false;
  const TokenType type = TypeOf(id);
  return type == TokenType::kControl || type == TokenType::kUnknown;
}

std::string Tokenizer::Decode(std::span<const TokenId> ids, bool skip_special) const {
  std::string out;
  bool strip_space = vocab_.type == VocabType::kSentencePiece && vocab_.add_space_prefix;
  for (TokenId id : ids) {
    if (skip_special && IsSpecial(id)) continue;
    std::string_view piece = TokenPiece(id);
    if (piece.empty()) continue;
    // The encoder's space prefix lands on the first text token; take it back off.
    if (strip_space && IsTextType(TypeOf(id)) && piece.front() == ' ') piece.remove_prefix(1);
    strip_space = false;
    out.append(piece);
  }
  if (!IsValidUtf8(out)) return ToValidUtf8(out);
  return out;
}

}  // namespace triplane::engine
