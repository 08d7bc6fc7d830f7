// PostgreSQL backend (libpq). Several gateway processes may share one database: writers of one
// resource serialise on pg_advisory_xact_lock(hash of type/id), taken before the current row is
// read, so If-Match checks cannot lose updates across processes; the lock ends with the
// transaction. Schema changes are recorded in kakehashi_migrations and applied under an advisory
// lock so two gateways starting together do not race.
#include "store/backends.hpp"
#include "store/sql_session.hpp"

#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <unordered_map>

namespace kakehashi::gateway::store::detail {

#ifdef KAKEHASHI_HAVE_POSTGRES

namespace {

// "?" placeholders -> "$1", "$2", … (the SQL builder never emits '?' inside literals).
std::string Numbered(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  for (char c : sql) {
    if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PgStore;

class PgSession final : public SqlSession {
 public:
  PgSession(PgStore& store, PGconn* conn, std::shared_ptr<const ParamKeys> keys)
      : SqlSession(Dialect::kPostgres, std::move(keys)), store_(store), conn_(conn) {}
  ~PgSession() override;
  void ConnectionLost();

  Result<void> Begin() override {
    KAKEHASHI_TRY_VOID(Exec("BEGIN", {}));
    in_tx_ = true;
    return {};
  }
  Result<void> Commit() override {
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    if (auto f = FlushPending(); !f) {
      Rollback();
      return f.error();
    }
    auto r = Exec("COMMIT", {});
    in_tx_ = false;
    // A COMMIT whose answer never came: the server may have committed before the connection
    // broke, so the caller must not run the writes again.
    if (!r && r.error() == errc::kUnavailable) return make_error_code(errc::kCommitUnknown);
    return r;
  }
  void Rollback() noexcept override {
    DropPending();
    if (!in_tx_) return;
    in_tx_ = false;
    PGresult* res = PQexec(conn_, "ROLLBACK");
    PQclear(res);
  }
  Result<std::optional<ResourceRow>> LockAndRead(std::string_view type,
                                                 std::string_view id) override {
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    std::string key(type);
    key += '/';
    key += id;
    KAKEHASHI_TRY_VOID(Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", {key}));
    return Read(type, id);
  }

 protected:
  bool InTransaction() const override { return in_tx_; }

  Result<PGresult*> Run(std::string_view sql, const std::vector<Param>& params) {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* s = std::get_if<std::string>(&params[i])) {
        values[i] = s->c_str();
        continue;
      }
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        text[i] = std::to_string(*v);
      } else {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, std::get<double>(params[i]));
        text[i].assign(buf, end);
      }
      values[i] = text[i].c_str();
    }
    PGresult* res = PQexecParams(conn_, Numbered(sql).c_str(), static_cast<int>(params.size()),
                                 nullptr, values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      // Copy the SQLSTATE before PQclear frees the result it points into.
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const std::string code = state != nullptr ? state : "";
      PQclear(res);
      // The connection broke (server restart, backend terminated, network): no transaction
      // survives it. The pool then replaces this connection and every one opened before it
      // (a restart ends them all, but each shows it only when next used).
      if (PQstatus(conn_) == CONNECTION_BAD || code.starts_with("08") || code == "57P01" ||
          code == "57P02" || code == "57P03") {
        LogDbError("store.postgres.connection_lost", 0);
        ConnectionLost();
        return make_error_code(errc::kUnavailable);
      }
      // 23505 unique_violation, 40001 serialization_failure, 40P01 deadlock_detected.
      if (code == "23505" || code == "40001" || code == "40P01") {
        return make_error_code(errc::kConflict);
      }
      int numeric = 0;
      std::from_chars(code.data(), code.data() + code.size(), numeric, 36);
      LogDbError("store.postgres.statement_failed", numeric);
      return make_error_code(errc::kQueryFailed);
    }
    return res;
  }

  Result<Rows> Query(std::string_view sql, const std::vector<Param>& params) override {
    KAKEHASHI_TRY(PGresult * res, Run(sql, params));
    Rows rows;
    const int n = PQntuples(res);
    const int cols = PQnfields(res);
    rows.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      std::vector<std::string> row(static_cast<std::size_t>(cols));
      for (int c = 0; c < cols; ++c) {
        row[static_cast<std::size_t>(c)].assign(PQgetvalue(res, r, c),
                                                static_cast<std::size_t>(PQgetlength(res, r, c)));
      }
      rows.push_back(std::move(row));
    }
    PQclear(res);
    return rows;
  }

  Result<void> Exec(std::string_view sql, const std::vector<Param>& params) override {
    KAKEHASHI_TRY(PGresult * res, Run(sql, params));
    PQclear(res);
    return {};
  }

 private:
  PgStore& store_;
  PGconn* conn_;
  bool in_tx_ = false;
};

class PgStore final : public Store {
 public:
  PgStore(std::string url, int max_connections, std::string schema)
      : url_(std::move(url)), max_connections_(max_connections), schema_(std::move(schema)) {}
  ~PgStore() override {
    for (PGconn* c : free_) PQfinish(c);
  }

  Result<PGconn*> Connect() {
    PGconn* conn = PQconnectdb(url_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      LogDbError("store.postgres.connect_failed", static_cast<int>(PQstatus(conn)));
      PQfinish(conn);
      return make_error_code(errc::kOpenFailed);
    }
    std::string setup = "SET client_min_messages = warning";
    if (!schema_.empty()) {
      setup += "; CREATE SCHEMA IF NOT EXISTS " + schema_ + "; SET search_path TO " + schema_;
    }
    PGresult* res = PQexec(conn, setup.c_str());
    const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
      LogDbError("store.postgres.schema_failed", 0);
      PQfinish(conn);
      return make_error_code(errc::kOpenFailed);
    }
    std::lock_guard lock(mutex_);
    born_[conn] = lost_;
    return conn;
  }

  // A session saw its connection break: connections opened before now are not used again.
  void ConnectionLost() {
    std::lock_guard lock(mutex_);
    ++lost_;
  }

  // A pooled connection that may be used: not broken, opened after the last loss seen.
  bool Usable(PGconn* conn) {
    std::lock_guard lock(mutex_);
    auto it = born_.find(conn);
    return PQstatus(conn) == CONNECTION_OK && it != born_.end() && it->second == lost_;
  }
  void Discard(PGconn* conn) {
    {
      std::lock_guard lock(mutex_);
      born_.erase(conn);
    }
    PQfinish(conn);
  }

  Result<void> Migrate() {
    KAKEHASHI_TRY(PGconn * conn, Connect());
    auto exec = [conn](const std::string& sql) -> Result<void> {
      PGresult* res = PQexec(conn, sql.c_str());
      const auto status = PQresultStatus(res);
      PQclear(res);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        LogDbError("store.postgres.migration_failed", static_cast<int>(status));
        return make_error_code(errc::kOpenFailed);
      }
      return {};
    };
    auto result = [&]() -> Result<void> {
      KAKEHASHI_TRY_VOID(exec("BEGIN"));
      // Fixed key: one migrator at a time across processes.
      KAKEHASHI_TRY_VOID(exec("SELECT pg_advisory_xact_lock(7401746)"));
      KAKEHASHI_TRY_VOID(
          exec("CREATE TABLE IF NOT EXISTS kakehashi_migrations (version INTEGER PRIMARY KEY, "
               "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
      PGresult* res = PQexec(conn, "SELECT COALESCE(MAX(version), 0) FROM kakehashi_migrations");
      int version = 0;
      if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        version = std::atoi(PQgetvalue(res, 0, 0));
      }
      PQclear(res);
      for (int v = version + 1; v <= kSchemaVersion; ++v) {
        for (const auto& sql : Schema(v, Dialect::kPostgres)) KAKEHASHI_TRY_VOID(exec(sql));
        KAKEHASHI_TRY_VOID(
            exec("INSERT INTO kakehashi_migrations (version) VALUES (" + std::to_string(v) + ")"));
      }
      KAKEHASHI_TRY_VOID(exec(SyncParamKeysSql()));
      res = PQexec(conn, "SELECT pid, type, param FROM search_keys");
      Rows keys;
      if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int r = 0; r < PQntuples(res); ++r) {
          keys.push_back({PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2)});
        }
      }
      PQclear(res);
      if (keys.empty()) return make_error_code(errc::kOpenFailed);
      keys_ = std::make_shared<const ParamKeys>(keys);
      return exec("COMMIT");
    }();
    if (!result) {
      PQfinish(conn);
      return result.error();
    }
    Release(conn);
    std::lock_guard lock(mutex_);
    ++open_;
    return {};
  }

  Result<std::unique_ptr<Session>> OpenSession() override {
    PGconn* conn = nullptr;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return !free_.empty() || open_ < max_connections_; });
      if (!free_.empty()) {
        conn = free_.back();
        free_.pop_back();
      } else {
        ++open_;
      }
    }
    if (conn != nullptr && !Usable(conn)) {
      // A new connection rather than PQreset: Connect() also sets the schema (search_path).
      Discard(conn);
      conn = nullptr;
    }
    if (conn == nullptr) {  // the slot counted in open_ gets a new connection, or is given back
      auto made = Connect();
      if (!made) {
        std::lock_guard lock(mutex_);
        --open_;
        cv_.notify_one();
        return made.error();
      }
      conn = *made;
    }
    return std::unique_ptr<Session>(std::make_unique<PgSession>(*this, conn, keys_));
  }

  void Release(PGconn* conn) {
    std::lock_guard lock(mutex_);
    free_.push_back(conn);
    cv_.notify_one();
  }

  std::string_view Backend() const override { return "postgresql"; }

 private:
  std::string url_;
  int max_connections_;
  std::string schema_;
  std::shared_ptr<const ParamKeys> keys_;  // set by Migrate
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<PGconn*> free_;
  int open_ = 0;
  std::uint64_t lost_ = 0;                           // connection losses seen by sessions
  std::unordered_map<PGconn*, std::uint64_t> born_;  // each connection: lost_ when it opened
};

void PgSession::ConnectionLost() {
  store_.ConnectionLost();
}

PgSession::~PgSession() {
  Rollback();
  store_.Release(conn_);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(std::string_view url,
                                                 const StoreOptions& options) {
  for (char c : options.postgres_schema) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return make_error_code(errc::kBadUrl);
    }
  }
  auto store = std::make_unique<PgStore>(std::string(url), std::max(1, options.max_connections),
                                         options.postgres_schema);
  KAKEHASHI_TRY_VOID(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

#else

Result<std::unique_ptr<Store>> OpenPostgresStore(std::string_view, const StoreOptions&) {
  return make_error_code(errc::kUnsupported);
}

#endif

}  // namespace kakehashi::gateway::store::detail
