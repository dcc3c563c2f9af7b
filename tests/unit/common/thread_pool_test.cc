#include "common/thread_pool.h"

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace triplane::common {
namespace {

TEST(ThreadPoolTest, RunsEveryTask) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(3, "test");
    EXPECT_EQ(pool.size(), 3);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(pool.Submit([&count] { ++count; }));
    pool.Shutdown();
    EXPECT_EQ(count.load(), 1000);
  }
}

TEST(ThreadPoolTest, NonPositiveSizeMeansAtLeastOneThread) {
  ThreadPool pool(0, "auto");
  EXPECT_GE(pool.size(), 1);
}

TEST(ThreadPoolTest, RunsTasksConcurrently) {
  constexpr int kThreads = 4;
  ThreadPool pool(kThreads, "conc");
  absl::Mutex mu;
  int started = 0;
  std::atomic<int> saw_all{0};
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(pool.Submit([&] {
      absl::MutexLock lock(&mu);
      ++started;
      // Every task waits until all have started: only possible on distinct threads.
      if (mu.AwaitWithTimeout(absl::Condition(
                                  +[](int* n) { return *n == kThreads; }, &started),
                              absl::Seconds(10))) {
        ++saw_all;
      }
    }));
  }
  pool.Shutdown();
  EXPECT_EQ(saw_all.load(), kThreads);
}

TEST(ThreadPoolTest, ShutdownRunsQueuedTasksFirst) {
  ThreadPool pool(1, "drain");
  absl::Notification release;
  std::atomic<int> count{0};
  ASSERT_TRUE(pool.Submit([&] { release.WaitForNotification(); }));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.Submit([&count] { ++count; }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release.Notify();
  });
  pool.Shutdown();  // waits for the blocked task and the 50 behind it
  releaser.join();
  EXPECT_EQ(count.load(), 50);
}

TEST(ThreadPoolTest, SubmitFailsAfterShutdown) {
  ThreadPool pool(2, "closed");
  pool.Shutdown();
  bool ran = false;
  EXPECT_FALSE(pool.Submit([&ran] { ran = true; }));
  EXPECT_FALSE(ran);
}

TEST(ThreadPoolTest, ShutdownIsIdempotentAndConcurrent) {
  ThreadPool pool(2, "twice");
  std::atomic<int> count{0};
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.Submit([&count] { ++count; }));
  std::thread other([&pool] { pool.Shutdown(); });
  pool.Shutdown();
  other.join();
  pool.Shutdown();
  EXPECT_EQ(count.load(), 100);
}

TEST(ThreadPoolTest, DestructorRunsQueuedTasks) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(2, "dtor");
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.Submit([&count] { ++count; }));
  }
  EXPECT_EQ(count.load(), 100);
}

TEST(ThreadPoolTest, ThrowingTaskDoesNotStopTheWorker) {
  ThreadPool pool(1, "throws");
  std::atomic<int> count{0};
  ASSERT_TRUE(pool.Submit([] { throw std::runtime_error("boom"); }));
  ASSERT_TRUE(pool.Submit([&count] { ++count; }));
  pool.Shutdown();
  EXPECT_EQ(count.load(), 1);
}

TEST(ThreadPoolTest, TasksMaySubmitMoreTasks) {
  ThreadPool pool(2, "nested");
  std::atomic<int> count{0};
  absl::Notification done;
  ASSERT_TRUE(pool.Submit([&] {
    ++count;
    ASSERT_TRUE(pool.Submit([&] {
      ++count;
      done.Notify();
    }));
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  pool.Shutdown();
  EXPECT_EQ(count.load(), 2);
}

}  // namespace
}  // namespace triplane::common
