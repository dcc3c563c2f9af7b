#pragma once

// A minimal synchronous Redis client on hiredis: a pool of connections to one server,
// commands as argument vectors (binary-safe), replies copied into RedisValue. Used by
// RedisCounters; knows nothing about limits.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;  // hiredis; kept out of this header

namespace triplane::gateway {

// Where a Redis is: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], HOST a name, an IPv4
// address or a bracketed IPv6 address; PORT defaults to 6379 and DB to 0.
struct RedisUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // empty: the default user (AUTH PASSWORD)
  std::string password;  // empty: no AUTH
};

// Parses `url`; InvalidArgument naming the problem (the password is never echoed).
[[nodiscard]] absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url);

// A reply. Error replies are values (kError, message in `str`), not statuses: they come
// from a server that works.
struct RedisValue {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;                   // kString, kStatus, kError
  std::vector<RedisValue> elements;  // kArray
};

struct RedisClientOptions {
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration command_timeout = absl::Seconds(1);
  int max_idle_connections = 16;  // connections kept open between commands
  // After a failed connect, commands fail fast (Unavailable) for this long instead of
  // each paying for a connect attempt.
  absl::Duration reconnect_backoff = absl::Milliseconds(200);
};

// Thread-safe: each command borrows a pooled connection (or opens one: connect, AUTH,
// SELECT) and returns it afterwards; the mutex guards only the pool. A connection that
// fails is closed, with every idle one (the server likely restarted), and the next
// command reconnects.
class RedisClient {
 public:
  // Validates the URL; does not connect.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RedisClient>> Create(
      std::string_view url, RedisClientOptions options = {});
  ~RedisClient();

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends `argv` and returns the reply. Unavailable (with host:port and the reason) when
  // the server cannot be reached or does not answer within the command timeout.
  // REQUIRES: !argv.empty(). Cost: one round trip (plus a connect when none is idle).
  [[nodiscard]] absl::StatusOr<RedisValue> Command(std::span<const std::string> argv);

  // "HOST:PORT/DB", for messages.
  const std::string& address() const { return address_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;

  RedisClient(RedisUrl url, RedisClientOptions options);

  [[nodiscard]] absl::StatusOr<Context> Acquire();
  [[nodiscard]] absl::StatusOr<Context> Connect();
  void Release(Context context);
  // Closes the idle connections after a failure.
  void DropIdle();

  const RedisUrl url_;
  const RedisClientOptions options_;
  const std::string address_;

  absl::Mutex mu_;
  std::vector<Context> idle_ ABSL_GUARDED_BY(mu_);
  absl::Time connect_not_before_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace triplane::gateway
