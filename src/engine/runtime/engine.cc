#include "engine/runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <thread>
#include <unordered_set>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "engine/model/forward.h"
#include "engine/runtime/block_pool.h"
#include "engine/runtime/worker_team.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {

struct Sequence {
  Engine::RequestId id = 0;
  GenerationRequest request;
  Engine::Callback callback;
  Sampler sampler;
  std::vector<int32_t> tokens;  // prompt, then generated
  int64_t prompt_len = 0;
  int64_t computed = 0;            // leading positions whose keys and values are cached
  std::vector<int32_t> blocks;     // block table
  int64_t hashed_blocks = 0;       // leading full blocks in the prefix cache's hash chain
  uint64_t last_hash = 0;          // chain hash of block hashed_blocks - 1
  int64_t cached_prompt = -1;      // prompt tokens found cached at first admission
  int64_t generated = 0;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  double queue_seconds = -1;       // until the first event reports it

  Sequence(Engine::RequestId id_, GenerationRequest request_, Engine::Callback callback_, int64_t vocab)
      : id(id_),
        request(std::move(request_)),
        callback(std::move(callback_)),
        sampler(request.sampling, vocab),
        tokens(request.prompt),
        prompt_len(static_cast<int64_t>(request.prompt.size())) {}

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - computed; }
};

struct EmbedJob {
  std::vector<int32_t> tokens;
  std::promise<absl::StatusOr<std::vector<float>>> result;
};

}  // namespace

class Engine::Impl {
 public:
  Impl(const Model& model, EngineConfig config, PagedKvCache cache, std::vector<int32_t> eog)
      : model_(model),
        config_(config),
        eog_(eog.begin(), eog.end()),
        team_(config.threads),
        pass_(model, team_, config.max_batch_tokens),
        cache_(std::move(cache)),
        pool_(cache_.num_blocks()),
        logits_(static_cast<size_t>(config.max_seqs * model.config().vocab_size)) {
    stats_.kv_blocks_total = cache_.num_blocks();
    thread_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  const Model& model() const { return model_; }
  const EngineConfig& config() const { return config_; }

  absl::StatusOr<RequestId> Submit(GenerationRequest request, Callback callback) {
    const int64_t vocab = model_.config().vocab_size;
    const auto prompt = static_cast<int64_t>(request.prompt.size());
    if (prompt == 0) return absl::InvalidArgumentError("the prompt has no tokens");
    for (int32_t t : request.prompt) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(fmt::format("token id {} is outside the vocabulary [0, {})", t, vocab));
      }
    }
    if (request.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be at least 1");
    if (prompt + request.max_tokens > config_.ctx) {
      return absl::InvalidArgumentError(fmt::format(
          "the prompt ({} tokens) plus max_tokens ({}) exceeds the context length of {} tokens", prompt,
          request.max_tokens, config_.ctx));
    }
    if (request.top_logprobs > 20) return absl::InvalidArgumentError("top_logprobs must be at most 20");
    TP_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling, vocab));
    absl::MutexLock lock(&mu_);
    if (stop_) return absl::UnavailableError("the engine is shutting down");
    if (queued_ >= config_.max_waiting) {
      return absl::ResourceExhaustedError(
          fmt::format("the engine's waiting queue is full ({} requests)", config_.max_waiting));
    }
    const RequestId id = next_id_++;
    incoming_.push_back(std::make_unique<Sequence>(id, std::move(request), std::move(callback), vocab));
    ++queued_;
    return id;
  }

  void Cancel(RequestId id) {
    absl::MutexLock lock(&mu_);
    cancels_.push_back(id);
  }

  absl::StatusOr<std::vector<float>> Embed(std::span<const int32_t> tokens) {
    const int64_t vocab = model_.config().vocab_size;
    if (tokens.empty()) return absl::InvalidArgumentError("the input has no tokens");
    if (static_cast<int64_t>(tokens.size()) > config_.ctx) {
      return absl::InvalidArgumentError(
          fmt::format("the input ({} tokens) exceeds the context length of {} tokens", tokens.size(), config_.ctx));
    }
    for (int32_t t : tokens) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(fmt::format("token id {} is outside the vocabulary [0, {})", t, vocab));
      }
    }
    auto job = std::make_shared<EmbedJob>();
    job->tokens.assign(tokens.begin(), tokens.end());
    auto result = job->result.get_future();
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return absl::UnavailableError("the engine is shutting down");
      embeds_.push_back(job);
    }
    return result.get();
  }

  EngineStats Stats() const {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

  void SetStepObserver(std::function<void(int64_t)> observer) {
    absl::MutexLock lock(&mu_);
    step_observer_ = std::move(observer);
  }

 private:
  void Loop() {
    while (true) {
      std::deque<std::unique_ptr<Sequence>> incoming;
      std::vector<RequestId> cancels;
      std::deque<std::shared_ptr<EmbedJob>> embeds;
      bool stop;
      {
        absl::MutexLock lock(&mu_);
        const bool busy = !running_.empty() || !waiting_.empty();
        if (!busy) {
          mu_.Await(absl::Condition(
              +[](Impl* self) {
                return self->stop_ || !self->incoming_.empty() || !self->cancels_.empty() || !self->embeds_.empty();
              },
              this));
        }
        incoming.swap(incoming_);
        cancels.swap(cancels_);
        embeds.swap(embeds_);
        stop = stop_;
      }
      for (auto& seq : incoming) waiting_.push_back(std::move(seq));
      if (stop) {
        for (auto& job : embeds) job->result.set_value(absl::UnavailableError("the engine is shutting down"));
        while (!running_.empty()) Finish(*running_.back(), FinishReason::kCancelled, -1);
        while (!waiting_.empty()) Finish(*waiting_.back(), FinishReason::kCancelled, -1);
        PublishStats();
        return;
      }
      for (RequestId id : cancels) CancelById(id);
      for (auto& job : embeds) job->result.set_value(RunEmbed(job->tokens));
      Step();
      PublishStats();
    }
  }

  void CancelById(RequestId id) {
    for (auto& seq : running_) {
      if (seq->id == id) return Finish(*seq, FinishReason::kCancelled, -1);
    }
    for (auto& seq : waiting_) {
      if (seq->id == id) return Finish(*seq, FinishReason::kCancelled, -1);
    }
  }

  // Reports the final event and drops the sequence (from running_ or waiting_).
  void Finish(Sequence& seq, FinishReason reason, int32_t token, float logprob = 0.0f,
              std::vector<std::pair<int32_t, float>> top = {}, absl::Status error = absl::OkStatus()) {
    TokenEvent event;
    event.token = token;
    event.logprob = logprob;
    event.top = std::move(top);
    event.finish = reason;
    event.error = std::move(error);
    event.prompt_tokens = seq.prompt_len;
    event.cached_prompt_tokens = std::max<int64_t>(0, seq.cached_prompt);
    event.generated_tokens = seq.generated;
    event.queue_seconds = std::exchange(seq.queue_seconds, -1);
    ReleaseBlocks(seq);
    const RequestId id = seq.id;
    seq.callback(event);
    auto drop = [id](auto& list) {
      auto it = std::find_if(list.begin(), list.end(), [id](const auto& s) { return s->id == id; });
      if (it == list.end()) return false;
      list.erase(it);
      return true;
    };
    if (!drop(running_) && drop(waiting_)) {
      absl::MutexLock lock(&mu_);
      --queued_;
    }
  }

  void ReleaseBlocks(Sequence& seq) {
    for (int32_t b : seq.blocks) pool_.Release(b);
    seq.blocks.clear();
    seq.computed = 0;
    seq.hashed_blocks = 0;
    seq.last_hash = 0;
  }

  // Moves a running sequence back to the front of the queue; it recomputes later.
  void Preempt(Sequence& seq) {
    ReleaseBlocks(seq);
    auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == &seq; });
    waiting_.push_front(std::move(*it));
    running_.erase(it);
    {
      absl::MutexLock lock(&mu_);
      ++queued_;
    }
    ++preemptions_;
  }

  // References the cached blocks of the longest cached prefix of the sequence, leaving
  // at least one token to compute (its logits are needed).
  void LookupPrefix(Sequence& seq) {
    const int64_t max_blocks = (static_cast<int64_t>(seq.tokens.size()) - 1) / kBlockTokens;
    while (seq.hashed_blocks < max_blocks) {
      const auto first = seq.tokens.begin() + seq.hashed_blocks * kBlockTokens;
      const uint64_t hash = BlockPool::ChainHash(seq.last_hash, std::span(first, first + kBlockTokens));
      const int32_t block = pool_.Lookup(hash);
      if (block < 0) break;
      seq.blocks.push_back(block);
      seq.last_hash = hash;
      ++seq.hashed_blocks;
    }
    seq.computed = seq.hashed_blocks * kBlockTokens;
    if (seq.cached_prompt < 0) {  // count the first admission only
      seq.queue_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - seq.submitted).count();
      seq.cached_prompt = std::min(seq.computed, seq.prompt_len);
      prefix_queries_ += seq.prompt_len;
      prefix_hits_ += seq.cached_prompt;
    }
  }

  // Publishes every newly completed block of the sequence to the prefix cache.
  void PublishBlocks(Sequence& seq) {
    while ((seq.hashed_blocks + 1) * kBlockTokens <= seq.computed) {
      const auto first = seq.tokens.begin() + seq.hashed_blocks * kBlockTokens;
      const uint64_t hash = BlockPool::ChainHash(seq.last_hash, std::span(first, first + kBlockTokens));
      pool_.Publish(seq.blocks[static_cast<size_t>(seq.hashed_blocks)], hash);
      seq.last_hash = hash;
      ++seq.hashed_blocks;
    }
  }

  // Adds blocks until the sequence's table covers `positions`; false if the pool ran out
  // (the table keeps what it got).
  bool Reserve(Sequence& seq, int64_t positions) {
    while (static_cast<int64_t>(seq.blocks.size()) * kBlockTokens < positions) {
      const int32_t block = pool_.Allocate();
      if (block < 0) return false;
      seq.blocks.push_back(block);
    }
    return true;
  }

  void Step() {
    // Admission, oldest first, while there is room in the batch.
    while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < config_.max_seqs) {
      Sequence& seq = *waiting_.front();
      LookupPrefix(seq);
      // Admit only with room for the rest of its prompt, so that admitted prompts do not
      // preempt each other (chunked prefill still allocates step by step).
      const int64_t need = (static_cast<int64_t>(seq.tokens.size()) + kBlockTokens - 1) / kBlockTokens -
                           static_cast<int64_t>(seq.blocks.size());
      if (pool_.available() < need) {
        ReleaseBlocks(seq);  // try again when others have finished
        break;
      }
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      absl::MutexLock lock(&mu_);
      --queued_;
    }

    // Schedule: one token for every decoding sequence, then prompt chunks.
    struct Scheduled {
      Sequence* seq;
      int64_t count;
    };
    std::vector<Scheduled> scheduled;
    int64_t budget = config_.max_batch_tokens;
    for (size_t i = 0; i < running_.size() && budget > 0;) {
      Sequence& seq = *running_[i];
      if (seq.pending() != 1) {
        ++i;
        continue;
      }
      if (!Reserve(seq, seq.computed + 1)) {
        // Out of blocks: preempt the most recently admitted other sequence (or this one).
        Sequence& victim = *running_.back();
        std::erase_if(scheduled, [&](const Scheduled& s) { return s.seq == &victim; });
        Preempt(victim);
        continue;  // retry running_[i]: this one with the freed blocks, or the next if it was the victim
      }
      scheduled.push_back({&seq, 1});
      --budget;
      ++i;
    }
    for (auto& ptr : running_) {
      Sequence& seq = *ptr;
      if (budget == 0) break;
      if (seq.pending() <= 1) continue;
      int64_t count = std::min(seq.pending(), budget);
      if (!Reserve(seq, seq.computed + count)) {
        count = static_cast<int64_t>(seq.blocks.size()) * kBlockTokens - seq.computed;
      }
      if (count <= 0) continue;
      scheduled.push_back({&seq, count});
      budget -= count;
    }
    if (scheduled.empty()) {
      if (!running_.empty() && waiting_.empty()) {
        // Every block is held by sequences that cannot progress: recompute the newest.
        if (running_.size() > 1) Preempt(*running_.back());
      }
      return;
    }

    // One forward pass over every scheduled chunk.
    std::vector<int32_t> tokens;
    std::vector<SequenceChunk> chunks;
    std::vector<int64_t> logit_rows;
    std::vector<Sequence*> sampled;
    for (const Scheduled& s : scheduled) {
      const auto first = s.seq->tokens.begin() + s.seq->computed;
      tokens.insert(tokens.end(), first, first + s.count);
      chunks.push_back({.start = s.seq->computed, .count = s.count, .blocks = s.seq->blocks});
      if (s.count == s.seq->pending()) {
        logit_rows.push_back(static_cast<int64_t>(tokens.size()) - 1);
        sampled.push_back(s.seq);
      }
    }
    const int64_t vocab = model_.config().vocab_size;
    const absl::Status status =
        pass_.Run({.tokens = tokens, .sequences = chunks, .logit_rows = logit_rows},
                  cache_, std::span(logits_).first(logit_rows.size() * static_cast<size_t>(vocab)));
    ++steps_;
    {
      absl::MutexLock lock(&mu_);
      if (step_observer_) step_observer_(static_cast<int64_t>(tokens.size()));
    }
    if (!status.ok()) {
      for (const Scheduled& s : scheduled) Finish(*s.seq, FinishReason::kError, -1, 0.0f, {}, status);
      return;
    }
    for (const Scheduled& s : scheduled) {
      s.seq->computed += s.count;
      if (s.seq->computed <= s.seq->prompt_len) prompt_computed_ += s.count;
      PublishBlocks(*s.seq);
    }

    // Sample every sequence (each its own sampler and logits row: in parallel, a vocabulary
    // pass each), then report and finish in order.
    draws_.resize(sampled.size());
    team_.Run(static_cast<int64_t>(sampled.size()), [&](int64_t r, int) {
      Sequence& seq = *sampled[static_cast<size_t>(r)];
      std::span<float> row = std::span(logits_).subspan(static_cast<size_t>(r * vocab), static_cast<size_t>(vocab));
      Draw& draw = draws_[static_cast<size_t>(r)];
      draw.top.clear();
      std::vector<float> raw;
      if (seq.request.top_logprobs >= 0) {  // of the model's distribution, before sampling
        raw.assign(row.begin(), row.end());
        draw.top = TopLogprobs(raw, seq.request.top_logprobs);
      }
      draw.token = seq.sampler.Sample(row, seq.tokens);
      draw.logprob = raw.empty() ? 0.0f : TokenLogprob(raw, draw.token);
    });
    for (size_t r = 0; r < sampled.size(); ++r) {
      Sequence& seq = *sampled[r];
      const int32_t token = draws_[r].token;
      const float logprob = draws_[r].logprob;
      std::vector<std::pair<int32_t, float>> top = std::move(draws_[r].top);
      seq.tokens.push_back(token);
      ++seq.generated;
      ++generated_;
      FinishReason finish = FinishReason::kNone;
      const bool stop_token = std::find(seq.request.stop_token_ids.begin(), seq.request.stop_token_ids.end(),
                                        token) != seq.request.stop_token_ids.end();
      if ((eog_.contains(token) && !seq.request.ignore_eos) || stop_token) {
        finish = FinishReason::kStop;
      } else if (seq.generated >= seq.request.max_tokens ||
                 static_cast<int64_t>(seq.tokens.size()) >= config_.ctx) {
        finish = FinishReason::kLength;
      }
      if (finish != FinishReason::kNone) {
        Finish(seq, finish, token, logprob, std::move(top));
        continue;
      }
      TokenEvent event;
      event.token = token;
      event.logprob = logprob;
      event.top = std::move(top);
      event.queue_seconds = std::exchange(seq.queue_seconds, -1);
      seq.callback(event);
    }
  }

  absl::StatusOr<std::vector<float>> RunEmbed(const std::vector<int32_t>& tokens) {
    const auto n = static_cast<int64_t>(tokens.size());
    const int64_t emb = model_.config().embedding;
    Sequence scratch(0, {}, [](const TokenEvent&) {}, model_.config().vocab_size);
    if (!Reserve(scratch, n)) {
      ReleaseBlocks(scratch);
      return absl::ResourceExhaustedError("the KV cache has no room for this input now; retry later");
    }
    std::vector<double> sum(static_cast<size_t>(emb), 0.0);
    std::vector<float> hidden(static_cast<size_t>(config_.max_batch_tokens * emb));
    absl::Status status;
    for (int64_t done = 0; done < n && status.ok(); done += config_.max_batch_tokens) {
      const int64_t count = std::min(config_.max_batch_tokens, n - done);
      const SequenceChunk chunk{.start = done, .count = count, .blocks = scratch.blocks};
      status = pass_.Run({.tokens = std::span(tokens).subspan(static_cast<size_t>(done), static_cast<size_t>(count)),
                          .sequences = std::span(&chunk, 1),
                          .logit_rows = {},
                          .hidden = hidden.data()},
                         cache_, {});
      for (int64_t t = 0; t < count; ++t) {
        for (int64_t i = 0; i < emb; ++i) sum[static_cast<size_t>(i)] += hidden[static_cast<size_t>(t * emb + i)];
      }
    }
    ReleaseBlocks(scratch);
    TP_RETURN_IF_ERROR(status);
    double norm = 0;
    for (double& v : sum) {
      v /= static_cast<double>(n);
      norm += v * v;
    }
    norm = std::sqrt(norm);
    std::vector<float> out(static_cast<size_t>(emb));
    for (int64_t i = 0; i < emb; ++i) {
      out[static_cast<size_t>(i)] = norm > 0 ? static_cast<float>(sum[static_cast<size_t>(i)] / norm) : 0.0f;
    }
    return out;
  }

  void PublishStats() {
    int64_t queued;
    {
      absl::MutexLock lock(&mu_);
      queued = queued_;
    }
    absl::MutexLock lock(&stats_mu_);
    stats_.running = static_cast<int64_t>(running_.size());
    stats_.waiting = queued;
    stats_.kv_blocks_used = pool_.used();
    stats_.kv_blocks_cached = pool_.cached();
    stats_.prefix_cache_queries = prefix_queries_;
    stats_.prefix_cache_hits = prefix_hits_;
    stats_.preemptions = preemptions_;
    stats_.prompt_tokens = prompt_computed_;
    stats_.generated_tokens = generated_;
    stats_.steps = steps_;
  }

  const Model& model_;
  const EngineConfig config_;
  const std::unordered_set<int32_t> eog_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // submitted, not yet admitted (or preempted)
  std::deque<std::unique_ptr<Sequence>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestId> cancels_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<EmbedJob>> embeds_ ABSL_GUARDED_BY(mu_);
  std::function<void(int64_t)> step_observer_ ABSL_GUARDED_BY(mu_);

  // Engine thread only.
  WorkerTeam team_;
  ForwardPass pass_;
  PagedKvCache cache_;
  BlockPool pool_;
  std::vector<float> logits_;  // [max_seqs][vocab]
  struct Draw {                // one sequence's sampled token this step
    int32_t token = -1;
    float logprob = 0.0f;
    std::vector<std::pair<int32_t, float>> top;
  };
  std::vector<Draw> draws_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  int64_t prefix_queries_ = 0, prefix_hits_ = 0, preemptions_ = 0;
  int64_t prompt_computed_ = 0, generated_ = 0, steps_ = 0;

  mutable absl::Mutex stats_mu_;
  EngineStats stats_ ABSL_GUARDED_BY(stats_mu_);

  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const Model& model, EngineConfig config) {
  const ModelConfig& mc = model.config();
  if (config.threads < 1) return absl::InvalidArgumentError("engine: threads must be at least 1");
  if (config.ctx < 1) return absl::InvalidArgumentError("engine: ctx must be at least 1");
  if (config.max_seqs < 1) return absl::InvalidArgumentError("engine: max_seqs must be at least 1");
  if (config.max_batch_tokens < config.max_seqs) {
    return absl::InvalidArgumentError(fmt::format(
        "engine: max_batch_tokens ({}) must be at least max_seqs ({}): every running sequence decodes each step",
        config.max_batch_tokens, config.max_seqs));
  }
  if (config.max_waiting < 0) return absl::InvalidArgumentError("engine: max_waiting must not be negative");
  TP_RETURN_IF_ERROR(CheckKvType(mc, config.kv_type));
  const int64_t per_block = PagedKvCache::BytesPerBlock(mc, config.kv_type);
  const int64_t context_blocks = (config.ctx + kBlockTokens - 1) / kBlockTokens;
  const int64_t blocks = config.kv_memory_bytes > 0
                             ? config.kv_memory_bytes / per_block
                             : context_blocks * std::min<int64_t>(config.max_seqs, 4);
  if (blocks < context_blocks) {
    return absl::InvalidArgumentError(fmt::format(
        "engine: the KV cache ({} bytes, {} tokens) does not hold one context of {} tokens ({} bytes)",
        config.kv_memory_bytes, blocks * kBlockTokens, config.ctx, context_blocks * per_block));
  }
  for (int32_t t : config.eog_tokens) {
    if (t < 0 || t >= mc.vocab_size) return absl::InvalidArgumentError("engine: an eog token is outside the vocabulary");
  }
  PagedKvCache cache(mc, blocks, config.kv_type);
  if (!cache.allocated()) {
    return absl::ResourceExhaustedError(fmt::format(
        "engine: cannot allocate the KV cache ({} bytes, {} tokens): not enough memory; lower --kv-memory",
        blocks * per_block, blocks * kBlockTokens));
  }
  std::vector<int32_t> eog = config.eog_tokens;
  return std::unique_ptr<Engine>(
      new Engine(std::make_unique<Impl>(model, config, std::move(cache), std::move(eog))));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

absl::StatusOr<Engine::RequestId> Engine::Submit(GenerationRequest request, Callback callback) {
  return impl_->Submit(std::move(request), std::move(callback));
}
void Engine::Cancel(RequestId id) { impl_->Cancel(id); }
absl::StatusOr<std::vector<float>> Engine::Embed(std::span<const int32_t> tokens) { return impl_->Embed(tokens); }
EngineStats Engine::Stats() const { return impl_->Stats(); }
void Engine::SetStepObserver(std::function<void(int64_t)> observer) { impl_->SetStepObserver(std::move(observer)); }
const Model& Engine::model() const { return impl_->model(); }
const EngineConfig& Engine::config() const { return impl_->config(); }

}  // namespace triplane::engine
