// RequestHolder: a held request is released once its model has an upstream (its
// deployments woken meanwhile), answered 503 with Retry-After after the hold timeout,
// and answered 503 on Close.

#include "gateway/request_holder.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace triplane::gateway {
namespace {

using namespace std::chrono_literals;

class FakeResponder final : public common::Responder {
 public:
  const common::HttpRequest& request() const override { return request_; }
  void Send(common::HttpResponse response) override {
    std::lock_guard lock(mu_);
    sent_ = std::move(response);
  }
  void StartStream(int, common::HttpHeaders) override {}
  bool Write(std::string) override { return true; }
  void Finish() override {}
  bool IsCancelled() const override { return false; }
  void OnCancel(std::function<void()>) override {}

  std::optional<common::HttpResponse> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  common::HttpRequest request_;
  std::mutex mu_;
  std::optional<common::HttpResponse> sent_;
};

// Polls `done` every 10 ms for up to 10 s.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

void SetUpstreams(GatewayState& state, std::vector<Upstream> upstreams) {
  auto snapshot = std::make_shared<GatewaySnapshot>();
  snapshot->models["m"] = std::move(upstreams);
  snapshot->wake["m"] = {"d"};
  state.Set(snapshot);
}

TEST(RequestHolderTest, ReleasesOnceTheModelHasAnUpstreamAndWakesMeanwhile) {
  GatewayState state;
  SetUpstreams(state, {});
  std::mutex mu;
  std::set<std::string> woken;
  RequestHolder holder(state, {.timeout = absl::Seconds(60), .wake = [&](const std::string& d) {
                                 std::lock_guard lock(mu);
                                 woken.insert(d);
                               }});
  auto responder = std::make_shared<FakeResponder>();
  std::atomic<bool> released{false};
  holder.Hold("m", {"d"}, responder, [&] { released = true; });
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return woken.contains("d");
  }));
  EXPECT_FALSE(released);
  EXPECT_EQ(holder.held(), 1u);
  SetUpstreams(state, {{.id = "i-1", .url = "http://127.0.0.1:1"}});
  EXPECT_TRUE(Eventually([&] { return released.load(); }));
  EXPECT_EQ(holder.held(), 0u);
  EXPECT_FALSE(responder->sent().has_value()) << "released requests are answered by the gateway";
}

TEST(RequestHolderTest, AnswersServiceUnavailableWithRetryAfterAfterTheTimeout) {
  GatewayState state;
  SetUpstreams(state, {});
  RequestHolder holder(state, {.timeout = absl::Milliseconds(50)});
  auto responder = std::make_shared<FakeResponder>();
  bool released = false;
  holder.Hold("m", {"d"}, responder, [&] { released = true; });
  ASSERT_TRUE(Eventually([&] { return responder->sent().has_value(); }));
  EXPECT_EQ(responder->sent()->status, 503);
  EXPECT_EQ(responder->sent()->headers.Get("retry-after").value_or(""), "5");
  EXPECT_NE(responder->sent()->body.find("scaled to zero"), std::string::npos) << responder->sent()->body;
  EXPECT_FALSE(released);
}

TEST(RequestHolderTest, CloseAnswersWhatIsHeldAndRefusesMore) {
  GatewayState state;
  SetUpstreams(state, {});
  RequestHolder holder(state, {.timeout = absl::Seconds(60)});
  auto held = std::make_shared<FakeResponder>();
  holder.Hold("m", {"d"}, held, [] {});
  holder.Close();
  ASSERT_TRUE(held->sent().has_value());
  EXPECT_EQ(held->sent()->status, 503);
  auto late = std::make_shared<FakeResponder>();
  holder.Hold("m", {"d"}, late, [] {});
  ASSERT_TRUE(late->sent().has_value());
  EXPECT_EQ(late->sent()->status, 503);
}

}  // namespace
}  // namespace triplane::gateway
