// The store suite, part 4: the usage ledger (appends, idempotent retries, paging,
// filters, summaries, concurrent appenders). Runs on SQLite and PostgreSQL.

#include <cmath>
#include <iostream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "unit/control/store/store_test_fixture.h"

namespace triplane::control {

// Failed expectations show records and totals as JSON.
void PrintTo(const UsageRecord& record, std::ostream* os) { *os << ToJson(record).dump(); }
void PrintTo(const UsageTotals& totals, std::ostream* os) { *os << ToJson(totals).dump(); }

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// 2026-12-05 12:00:00 UTC.
const absl::Time kNoon =
    absl::FromCivil(absl::CivilSecond(2026, 12, 5, 12, 0, 0), absl::UTCTimeZone());

// A successful chat completion by `key` of `team`, `minutes` after kNoon.
UsageRecord Usage(std::string request_id, std::string key = "key_a", std::string team = "team_a",
                  std::string model = "llama3", int minutes = 0) {
  return UsageRecord{.request_id = std::move(request_id),
                     .time = kNoon + absl::Minutes(minutes),
                     .key_id = std::move(key),
                     .team = std::move(team),
                     .model = std::move(model),
                     .version = "3",
                     .deployment = "chat",
                     .instance = "chat-0",
                     .endpoint = "chat.completions",
                     .prompt_tokens = 10,
                     .completion_tokens = 20,
                     .cached_tokens = 4,
                     .latency_seconds = 1.5,
                     .ttft_seconds = 0.25,
                     .cost_micros = 300};
}

std::vector<std::string> RequestIds(const std::vector<UsageRecord>& records) {
  std::vector<std::string> ids;
  for (const UsageRecord& r : records) ids.push_back(r.request_id);
  return ids;
}

// Every record, by id.
std::vector<UsageRecord> AllUsage(Store& store) {
  absl::StatusOr<std::vector<UsageRecord>> all = store.ListUsage({.limit = 100000});
  EXPECT_TRUE(all.ok()) << all.status();
  return all.value_or(std::vector<UsageRecord>{});
}

TEST_P(StoreTest, AppendsUsageAndSkipsRequestIdsAlreadyStored) {
  UsageRecord streamed = Usage("req-2");
  streamed.stream = true;
  streamed.status = 429;
  streamed.error = "rate limited";
  const std::vector<UsageRecord> batch = {Usage("req-1"), streamed, Usage("req-3")};
  EXPECT_EQ(store_->AppendUsage(batch).value_or(-1), 3);

  std::vector<UsageRecord> stored = AllUsage(*store_);
  ASSERT_THAT(stored, SizeIs(3));
  for (size_t i = 0; i < stored.size(); ++i) {
    UsageRecord expected = batch[i];
    expected.id = static_cast<int64_t>(i) + 1;
    EXPECT_EQ(stored[i], expected) << ToJson(stored[i]).dump();
  }

  // A retried batch inserts nothing; a batch overlapping the stored rows (and repeating
  // an id within itself) inserts only what is new, with the next id.
  EXPECT_EQ(store_->AppendUsage(batch).value_or(-1), 0);
  const std::vector<UsageRecord> overlapping = {Usage("req-3"), Usage("req-4"), Usage("req-4")};
  EXPECT_EQ(store_->AppendUsage(overlapping).value_or(-1), 1);
  stored = AllUsage(*store_);
  EXPECT_THAT(RequestIds(stored), ElementsAre("req-1", "req-2", "req-3", "req-4"));
  EXPECT_EQ(stored.back().id, 4);

  EXPECT_EQ(store_->AppendUsage({}).value_or(-1), 0);
  // Data, not admin actions: nothing is audited.
  absl::StatusOr<std::vector<AuditRecord>> audit = store_->ListAudit({});
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_THAT(*audit, IsEmpty());
}

TEST_P(StoreTest, UsageRecordsHaveAJsonForm) {
  UsageRecord r = Usage("req-1");
  r.id = 7;
  const nlohmann::json json = ToJson(r);
  EXPECT_EQ(json["id"], 7);
  EXPECT_EQ(json["request_id"], "req-1");
  EXPECT_EQ(json["time"], "2026-12-05T12:00:00.000000Z");
  EXPECT_EQ(json["latency_seconds"], 1.5);
  EXPECT_EQ(json["cost_micros"], 300);
  EXPECT_EQ(ToJson(UsageTotals{.group = "key_a", .requests = 2, .errors = 1})["errors"], 1);
  for (UsageGroupBy g : {UsageGroupBy::kAll, UsageGroupBy::kKey, UsageGroupBy::kTeam,
                         UsageGroupBy::kModel, UsageGroupBy::kDay}) {
    EXPECT_EQ(ParseUsageGroupBy(ToString(g)).value_or(UsageGroupBy::kAll), g);
  }
  EXPECT_EQ(ParseUsageGroupBy("week").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, AppendsABatchOfAThousandInOneCall) {
  std::vector<UsageRecord> batch;
  for (int i = 0; i < 1000; ++i) {
    batch.push_back(Usage(fmt::format("req-{:04}", i)));
    batch.back().prompt_tokens = i;
  }
  const absl::Time start = absl::Now();
  EXPECT_EQ(store_->AppendUsage(batch).value_or(-1), 1000);
  std::cout << "appended 1000 usage records in " << absl::Now() - start << "\n";

  const std::vector<UsageRecord> stored = AllUsage(*store_);
  ASSERT_THAT(stored, SizeIs(1000));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(stored[i].id, i + 1);
    EXPECT_EQ(stored[i].request_id, fmt::format("req-{:04}", i));
  }
  absl::StatusOr<std::vector<UsageTotals>> totals = store_->SummarizeUsage({}, UsageGroupBy::kAll);
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_THAT(*totals, ElementsAre(UsageTotals{.group = "",
                                               .requests = 1000,
                                               .errors = 0,
                                               .prompt_tokens = 999 * 1000 / 2,
                                               .completion_tokens = 20 * 1000,
                                               .cached_tokens = 4 * 1000,
                                               .cost_micros = 300 * 1000}));
}

TEST_P(StoreTest, RejectsABatchWithAnInvalidRecordAndWritesNoneOfIt) {
  std::vector<UsageRecord> bad;
  bad.push_back(Usage(""));
  for (int64_t UsageRecord::*tokens :
       {&UsageRecord::prompt_tokens, &UsageRecord::completion_tokens, &UsageRecord::cached_tokens,
        &UsageRecord::cost_micros}) {
    bad.push_back(Usage("negative"));
    bad.back().*tokens = -1;
  }
  bad.push_back(Usage("no-time"));
  bad.back().time = absl::InfinitePast();
  bad.push_back(Usage("nan-latency"));
  bad.back().latency_seconds = std::nan("");
  bad.push_back(Usage("negative-ttft"));
  bad.back().ttft_seconds = -0.5;
  bad.push_back(Usage("infinite-latency"));
  bad.back().latency_seconds = std::numeric_limits<double>::infinity();

  for (const UsageRecord& record : bad) {
    // The invalid record comes last, after valid ones.
    const std::vector<UsageRecord> batch = {Usage("ok-1"), Usage("ok-2"), record};
    absl::StatusOr<int64_t> appended = store_->AppendUsage(batch);
    EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument)
        << ToJson(record).dump();
  }
  EXPECT_THAT(AllUsage(*store_), IsEmpty());
  // The ledger still works, and its ids start at 1.
  EXPECT_EQ(store_->AppendUsage(std::vector<UsageRecord>{Usage("ok-1")}).value_or(-1), 1);
  EXPECT_EQ(AllUsage(*store_).at(0).id, 1);
}

TEST_P(StoreTest, ListsUsagePageByPage) {
  std::vector<UsageRecord> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(Usage(fmt::format("req-{:02}", i)));
  ASSERT_EQ(store_->AppendUsage(batch).value_or(-1), 25);

  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<UsageRecord>> page =
        store_->ListUsage({.after_id = after, .limit = 10});
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    page_sizes.push_back(page->size());
    for (const UsageRecord& r : *page) seen.push_back(r.request_id);
    after = page->back().id;
  }
  EXPECT_THAT(page_sizes, ElementsAre(10, 10, 5));
  EXPECT_EQ(seen, RequestIds(batch));

  EXPECT_EQ(store_->ListUsage({.limit = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListUsage({.limit = 100001}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const UsageQuery backwards{.from = kNoon, .to = kNoon - absl::Seconds(1)};
  EXPECT_EQ(store_->ListUsage(backwards).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SummarizeUsage(backwards, UsageGroupBy::kAll).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, FiltersUsageByKeyTeamModelAndTimeRange) {
  ASSERT_EQ(store_
                ->AppendUsage(std::vector<UsageRecord>{
                    Usage("a1", "key_a", "team_a", "llama3", 0),
                    Usage("a2", "key_a", "team_a", "qwen3", 10),
                    Usage("b1", "key_b", "team_a", "llama3", 20),
                    Usage("c1", "key_c", "team_c", "qwen3", 30),
                    Usage("d1", "key_d", "", "llama3", 40),
                })
                .value_or(-1),
            5);
  auto ids = [&](const UsageQuery& query) {
    absl::StatusOr<std::vector<UsageRecord>> found = store_->ListUsage(query);
    EXPECT_TRUE(found.ok()) << found.status();
    return RequestIds(found.value_or(std::vector<UsageRecord>{}));
  };
  EXPECT_THAT(ids({.key_id = "key_a"}), ElementsAre("a1", "a2"));
  EXPECT_THAT(ids({.team = "team_a"}), ElementsAre("a1", "a2", "b1"));
  EXPECT_THAT(ids({.model = "qwen3"}), ElementsAre("a2", "c1"));
  EXPECT_THAT(ids({.team = "team_a", .model = "llama3"}), ElementsAre("a1", "b1"));
  EXPECT_THAT(ids({.key_id = "nobody"}), IsEmpty());
  // [from, to): a record at `from` is in, one at `to` is out.
  EXPECT_THAT(ids({.from = kNoon + absl::Minutes(10), .to = kNoon + absl::Minutes(30)}),
              ElementsAre("a2", "b1"));
  EXPECT_THAT(ids({.from = kNoon + absl::Minutes(30)}), ElementsAre("c1", "d1"));
  EXPECT_THAT(ids({.to = kNoon + absl::Minutes(1)}), ElementsAre("a1"));
  EXPECT_THAT(ids({.from = kNoon + absl::Minutes(5), .team = "team_a"}), ElementsAre("a2", "b1"));
  EXPECT_THAT(ids({.model = "llama3", .after_id = 2}), ElementsAre("b1", "d1"));
}

TEST_P(StoreTest, SummarizesUsageByEachGroupingWithExactSums) {
  const absl::Time last_second_of_day = kNoon + absl::Hours(12) - absl::Microseconds(1);
  std::vector<UsageRecord> batch = {
      Usage("a1", "key_a", "team_a", "llama3", 0),  Usage("a2", "key_a", "team_a", "qwen3", 0),
      Usage("b1", "key_b", "team_a", "llama3", 0),  Usage("c1", "key_c", "team_c", "qwen3", 0),
      Usage("d1", "key_d", "", "llama3", 12 * 60),
  };
  batch[1].status = 429;  // errors: status >= 400 …
  batch[2].status = 500;
  batch[3].status = 399;  // … and nothing below
  batch[3].time = last_second_of_day;
  batch[4].prompt_tokens = 1000;
  batch[4].completion_tokens = 0;
  batch[4].cached_tokens = 0;
  batch[4].cost_micros = 7;
  ASSERT_EQ(store_->AppendUsage(batch).value_or(-1), 5);

  auto summary = [&](UsageGroupBy group_by, const UsageQuery& query = {}) {
    absl::StatusOr<std::vector<UsageTotals>> totals = store_->SummarizeUsage(query, group_by);
    EXPECT_TRUE(totals.ok()) << totals.status();
    return totals.value_or(std::vector<UsageTotals>{});
  };
  // `n` standard records (10/20/4 tokens, 300 micros) and `errors` of them failed.
  auto standard = [](std::string group, int64_t n, int64_t errors) {
    return UsageTotals{.group = std::move(group),
                       .requests = n,
                       .errors = errors,
                       .prompt_tokens = 10 * n,
                       .completion_tokens = 20 * n,
                       .cached_tokens = 4 * n,
                       .cost_micros = 300 * n};
  };
  const UsageTotals d1{.group = "key_d", .requests = 1, .prompt_tokens = 1000, .cost_micros = 7};
  auto renamed = [](UsageTotals t, std::string group) {
    t.group = std::move(group);
    return t;
  };

  EXPECT_THAT(summary(UsageGroupBy::kKey),
              ElementsAre(standard("key_a", 2, 1), standard("key_b", 1, 1),
                          standard("key_c", 1, 0), d1));
  EXPECT_THAT(summary(UsageGroupBy::kTeam),
              ElementsAre(renamed(d1, ""), standard("team_a", 3, 2), standard("team_c", 1, 0)));
  EXPECT_THAT(summary(UsageGroupBy::kModel),
              ElementsAre(UsageTotals{.group = "llama3",
                                      .requests = 3,
                                      .errors = 1,
                                      .prompt_tokens = 1020,
                                      .completion_tokens = 40,
                                      .cached_tokens = 8,
                                      .cost_micros = 607},
                          standard("qwen3", 2, 1)));
  // The last microsecond of 5 December and midnight UTC fall on different days.
  EXPECT_THAT(summary(UsageGroupBy::kDay),
              ElementsAre(standard("2026-12-05", 4, 2), renamed(d1, "2026-12-06")));
  EXPECT_THAT(summary(UsageGroupBy::kAll), ElementsAre(UsageTotals{.group = "",
                                                                   .requests = 5,
                                                                   .errors = 2,
                                                                   .prompt_tokens = 1040,
                                                                   .completion_tokens = 80,
                                                                   .cached_tokens = 16,
                                                                   .cost_micros = 1207}));

  // Filters apply: e.g. a key's budget so far today, or nothing at all.
  EXPECT_THAT(summary(UsageGroupBy::kKey, {.from = kNoon, .key_id = "key_a"}),
              ElementsAre(standard("key_a", 2, 1)));
  EXPECT_THAT(summary(UsageGroupBy::kTeam, {.from = kNoon + absl::Hours(1)}),
              ElementsAre(renamed(d1, ""), standard("team_c", 1, 0)));
  EXPECT_THAT(summary(UsageGroupBy::kKey, {.key_id = "nobody"}), IsEmpty());
  EXPECT_THAT(summary(UsageGroupBy::kAll, {.key_id = "nobody"}), ElementsAre(UsageTotals{}));
}

TEST_P(StoreTest, ConcurrentOverlappingAppendsStoreEachRequestOnce) {
  // Four appenders, two per Store (as two processes would be); appender t sends requests
  // [50t, 50t + 100) in batches of 20, so each request but the first and last 50 is sent
  // twice, concurrently.
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  constexpr int kAppenders = 4;
  std::vector<int64_t> inserted(kAppenders, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *store_ : *other;
      for (int first = 50 * t; first < 50 * t + 100; first += 20) {
        std::vector<UsageRecord> batch;
        for (int i = first; i < first + 20; ++i) batch.push_back(Usage(fmt::format("req-{}", i)));
        absl::StatusOr<int64_t> n = store.AppendUsage(batch);
        EXPECT_TRUE(n.ok()) << n.status();
        inserted[t] += n.value_or(0);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int kDistinct = 50 * (kAppenders + 1);
  EXPECT_EQ(inserted[0] + inserted[1] + inserted[2] + inserted[3], kDistinct);
  const std::vector<UsageRecord> stored = AllUsage(*store_);
  ASSERT_THAT(stored, SizeIs(kDistinct));
  std::set<std::string> unique;
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].id, static_cast<int64_t>(i) + 1);  // ids without gaps
    unique.insert(stored[i].request_id);
  }
  EXPECT_THAT(unique, SizeIs(kDistinct));
  EXPECT_EQ(store_->SummarizeUsage({}, UsageGroupBy::kAll)->at(0).requests, kDistinct);
}

}  // namespace
}  // namespace triplane::control
