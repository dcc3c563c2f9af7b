#include "gateway/limits/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>
#include <string>
#include <utility>

#include "fmt/format.h"

namespace triplane::gateway {
namespace {

constexpr std::string_view kScheme = "redis://";

absl::Status BadUrl(std::string_view why) {
  return absl::InvalidArgumentError(fmt::format("invalid Redis URL: {}", why));
}

// Parses a decimal in [min, max] into *out; false on anything else.
bool ParseInt(std::string_view text, int min, int max, int* out) {
  if (text.empty()) return false;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return false;
  }
  *out = value;
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (user names and passwords may hold ':' or '@').
absl::StatusOr<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return BadUrl("truncated %-escape");
    const int hi = HexDigit(text[i + 1]);
    const int lo = HexDigit(text[i + 2]);
    if (hi < 0 || lo < 0) return BadUrl("bad %-escape");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

RedisValue Convert(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      value.type = RedisValue::Type::kString;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = RedisValue::Type::kStatus;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::kError;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      value.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i)
        value.elements.push_back(Convert(*reply.element[i]));
      break;
    default:
      value.type = RedisValue::Type::kNil;
      break;
  }
  return value;
}

// Runs one command on `context`. nullptr-reply (I/O error, timeout) becomes Unavailable.
absl::StatusOr<RedisValue> Run(redisContext* context, std::span<const std::string> argv,
                               const std::string& address) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  void* raw = redisCommandArgv(context, static_cast<int>(args.size()), args.data(), lengths.data());
  if (raw == nullptr) {
    return absl::UnavailableError(
        fmt::format("redis {}: {}", address, context->err != 0 ? context->errstr : "no reply"));
  }
  redisReply* reply = static_cast<redisReply*>(raw);
  RedisValue value = Convert(*reply);
  freeReplyObject(reply);
  return value;
}

}  // namespace

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url) {
  if (!url.starts_with(kScheme)) return BadUrl("must start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  std::string_view authority = rest;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, 0, 1 << 20, &out.db)) {
      return BadUrl("the database after '/' must be a number");
    }
  }
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) return BadUrl("credentials must be [USER]:PASSWORD@");
    absl::StatusOr<std::string> user = PercentDecode(userinfo.substr(0, colon));
    if (!user.ok()) return user.status();
    absl::StatusOr<std::string> password = PercentDecode(userinfo.substr(colon + 1));
    if (!password.ok()) return password.status();
    out.user = *std::move(user);
    out.password = *std::move(password);
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl("unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return BadUrl("expected ':PORT' after ']'");
      port = after.substr(1);
      if (port.empty()) return BadUrl("empty port");
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    out.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
    if (port.empty()) return BadUrl("empty port");
  } else {
    out.host = std::string(authority);
  }
  if (out.host.empty()) return BadUrl("no host");
  if (!port.empty() && !ParseInt(port, 1, 65535, &out.port)) {
    return BadUrl("the port must be a number from 1 to 65535");
  }
  return out;
}

void RedisClient::ContextDeleter::operator()(redisContext* context) const { redisFree(context); }

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Create(std::string_view url,
                                                                 RedisClientOptions options) {
  absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(url);
  if (!parsed.ok()) return parsed.status();
  return std::unique_ptr<RedisClient>(new RedisClient(*std::move(parsed), options));
}

RedisClient::RedisClient(RedisUrl url, RedisClientOptions options)
    : url_(std::move(url)),
      options_(options),
      address_(fmt::format("{}:{}/{}", url_.host, url_.port, url_.db)) {}

RedisClient::~RedisClient() = default;

absl::StatusOr<RedisValue> RedisClient::Command(std::span<const std::string> argv) {
  absl::StatusOr<Context> context = Acquire();
  if (!context.ok()) return context.status();
  absl::StatusOr<RedisValue> reply = Run(context->get(), argv, address_);
  if (!reply.ok()) {
    DropIdle();  // `context` closes as it goes out of scope
    return reply;
  }
  Release(*std::move(context));
  return reply;
}

absl::StatusOr<RedisClient::Context> RedisClient::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      Context context = std::move(idle_.back());
      idle_.pop_back();
      return context;
    }
    if (absl::Now() < connect_not_before_) {
      return absl::UnavailableError(
          fmt::format("redis {}: not reachable (retrying shortly)", address_));
    }
  }
  absl::StatusOr<Context> context = Connect();
  if (!context.ok()) {
    absl::MutexLock lock(&mu_);
    connect_not_before_ = absl::Now() + options_.reconnect_backoff;
  }
  return context;
}

absl::StatusOr<RedisClient::Context> RedisClient::Connect() {
  Context context(redisConnectWithTimeout(url_.host.c_str(), url_.port,
                                          absl::ToTimeval(options_.connect_timeout)));
  if (context == nullptr) {
    return absl::UnavailableError(fmt::format("redis {}: cannot allocate a connection", address_));
  }
  if (context->err != 0) {
    return absl::UnavailableError(fmt::format("redis {}: {}", address_, context->errstr));
  }
  if (redisSetTimeout(context.get(), absl::ToTimeval(options_.command_timeout)) != REDIS_OK) {
    return absl::UnavailableError(fmt::format("redis {}: cannot set the timeout", address_));
  }
  (void)redisEnableKeepAlive(context.get());
  if (!url_.password.empty()) {
    const std::vector<std::string> auth =
        url_.user.empty() ? std::vector<std::string>{"AUTH", url_.password}
                          : std::vector<std::string>{"AUTH", url_.user, url_.password};
    absl::StatusOr<RedisValue> reply = Run(context.get(), auth, address_);
    if (!reply.ok()) return reply.status();
    if (reply->type == RedisValue::Type::kError) {
      return absl::UnavailableError(fmt::format("redis {}: AUTH failed: {}", address_, reply->str));
    }
  }
  if (url_.db != 0) {
    const std::vector<std::string> select = {"SELECT", std::to_string(url_.db)};
    absl::StatusOr<RedisValue> reply = Run(context.get(), select, address_);
    if (!reply.ok()) return reply.status();
    if (reply->type == RedisValue::Type::kError) {
      return absl::UnavailableError(
          fmt::format("redis {}: SELECT failed: {}", address_, reply->str));
    }
  }
  return context;
}

void RedisClient::Release(Context context) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < options_.max_idle_connections) {
    idle_.push_back(std::move(context));
  }
}

void RedisClient::DropIdle() {
  std::vector<Context> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(idle_);
  }
}

}  // namespace triplane::gateway
