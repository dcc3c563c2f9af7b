#pragma once

// The store suite's fixture: every TEST_P(StoreTest, …) runs once on SQLite (a file in a
// temp dir) and once on PostgreSQL (a fresh database on a real server started by
// testing::PostgresServer). Instantiated in store_test.cc.

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "control/store/audit_chain.h"
#include "control/store/postgres_store.h"
#include "control/store/sql_backend.h"
#include "control/store/sqlite_store.h"
#include "control/store/store.h"
#include "control/store/store_factory.h"
#include "gtest/gtest.h"
#include "testing/postgres_server.h"

#define TP_ASSERT_OK(expr)                       \
  do {                                           \
    const ::absl::Status tp_s_ = (expr);         \
    ASSERT_TRUE(tp_s_.ok()) << tp_s_.ToString(); \
  } while (false)
#define TP_EXPECT_OK(expr)                       \
  do {                                           \
    const ::absl::Status tp_s_ = (expr);         \
    EXPECT_TRUE(tp_s_.ok()) << tp_s_.ToString(); \
  } while (false)

namespace triplane::control {

using common::Sha256Hex;

enum class BackendKind { kSqlite, kPostgres };

inline void PrintTo(BackendKind kind, std::ostream* os) {
  *os << (kind == BackendKind::kSqlite ? "SQLite" : "PostgreSQL");
}

inline std::string BackendName(const ::testing::TestParamInfo<BackendKind>& info) {
  return info.param == BackendKind::kSqlite ? "SQLite" : "PostgreSQL";
}

class StoreTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    // Injected clock: a fixed start, one microsecond per reading, shared by every Store.
    options_.clock = [ticks = ticks_] {
      return absl::FromUnixSeconds(1767225600) + absl::Microseconds(++*ticks);
    };
    options_.config_poll_interval = absl::Milliseconds(50);
    if (GetParam() == BackendKind::kSqlite) {
      url_ = "sqlite:" + (dir_ / "triplane.db").string();
    } else {
      absl::StatusOr<testing::PostgresServer*> server = testing::PostgresServer::Shared();
      ASSERT_TRUE(server.ok()) << "the PostgreSQL half of the store suite needs a real server: "
                               << server.status().ToString();
      static std::atomic<int> counter{0};
      absl::StatusOr<std::string> url =
          (*server)->CreateDatabase(fmt::format("t{}_{}", ::getpid(), ++counter));
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
    }
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_, dir_.string(), options_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = *std::move(store);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Another Store on the same database, as another process would open it.
  std::unique_ptr<Store> OpenAnother() {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_, dir_.string(), options_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // A raw SQL connection to the same database that bypasses the store (to tamper with it).
  absl::Status ExecRaw(std::string_view sql) {
    return WithRawSql([&](sql::Transaction& txn) { return txn.ExecScript(sql); });
  }
  absl::Status ExecRaw(std::string_view sql, std::initializer_list<sql::Param> params) {
    return WithRawSql([&](sql::Transaction& txn) { return txn.Exec(sql, params).status(); });
  }
  absl::Status WithRawSql(const std::function<absl::Status(sql::Transaction&)>& body) {
    absl::StatusOr<std::unique_ptr<sql::Backend>> raw =
        GetParam() == BackendKind::kSqlite ? OpenSqliteBackend(url_.substr(7), options_)
                                           : OpenPostgresBackend(url_, options_);
    if (!raw.ok()) return raw.status();
    return (*raw)->Transact(sql::TxnMode::kWrite, body);
  }

  // A version of `model` with a made-up file and GGUF summary.
  static ModelVersion MakeVersion(std::string_view model, std::string_view version = "") {
    ModelVersion v;
    v.model = std::string(model);
    v.version = std::string(version);
    v.file_path = fmt::format("/models/{}/{}.gguf", model, version.empty() ? "auto" : version);
    v.size_bytes = 123456789;
    v.sha256 = Sha256Hex(v.file_path);
    v.source = "hf://org/repo/file.gguf";
    v.gguf = GgufSummary{.architecture = "llama",
                         .parameter_count = 110000000,
                         .file_type = "Q4_K",
                         .tensor_types = {"F32", "Q4_K", "Q6_K"},
                         .context_length = 4096,
                         .has_chat_template = true,
                         .extra = {{"block_count", 12}, {"rope.freq_base", 10000.5}}};
    return v;
  }

  const WriteOptions kAdmin{.actor = "key_admin"};
  const WriteOptions kNoAudit{};

  std::shared_ptr<std::atomic<int64_t>> ticks_ = std::make_shared<std::atomic<int64_t>>(0);
  StoreOptions options_;
  std::string url_;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace triplane::control
