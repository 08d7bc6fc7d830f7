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

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
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
  PgSession(PgStore& store, PGconn* conn, std::shared_ptr<const ParamKeys> keys,
            std::int64_t search_threshold, bool bulk)
      : SqlSession(Dialect::kPostgres, std::move(keys), search_threshold),
        store_(store),
        conn_(conn),
        bulk_(bulk) {
    if (bulk) copy_rows_ = kCopyRows;
  }
  ~PgSession() override;
  void ConnectionLost();

  // BEGIN and the transaction's id in one round trip (decision 0023): txid_current() assigns
  // the id that the transaction's first write would assign anyway, and after a COMMIT whose
  // answer was lost PgStore::ResolveCommit asks another connection what became of it.
  Result<void> Begin() override {
    locked_.clear();
    for (int attempt = 0;; ++attempt) {
      auto r = Check(PQexec(conn_, "BEGIN; SELECT txid_current()"));
      if (r) {
        const bool one = PQntuples(*r) == 1;
        if (one) txid_ = std::strtoll(PQgetvalue(*r, 0, 0), nullptr, 10);
        PQclear(*r);
        if (!one) {
          PQclear(PQexec(conn_, "ROLLBACK"));
          return make_error_code(errc::kQueryFailed);
        }
        in_tx_ = true;
        return {};
      }
      if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        PQclear(PQexec(conn_, "ROLLBACK"));  // BEGIN ran, the SELECT failed
      }
      // A broken pooled connection: nothing began, so BEGIN runs once more on a new one.
      if (r.error() != errc::kUnavailable || attempt > 0 || !Reconnect()) return r.error();
    }
  }
  Result<void> Commit() override;
  void Rollback() noexcept override {
    DropPending();
    locked_.clear();
    if (!in_tx_) return;
    if (deferred_ > 0) (void)Pipeline(nullptr, nullptr);  // read (and drop) what was sent
    poisoned_.reset();
    in_tx_ = false;
    PGresult* res = PQexec(conn_, "ROLLBACK");
    PQclear(res);
  }
  Result<std::optional<ResourceRow>> LockAndRead(std::string_view type,
                                                 std::string_view id) override {
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    // Locked and read by LockMany: its lock is held, so the row is still current (a Write of
    // it in this transaction, or a rollback to a savepoint, forgets it).
    if (auto it = locked_.find(std::pair(std::string(type), std::string(id)));
        it != locked_.end()) {
      std::optional<ResourceRow> row = std::move(it->second);
      locked_.erase(it);
      return row;
    }
    std::string key(type);
    key += '/';
    key += id;
    KAKEHASHI_TRY_VOID(Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", {key}));
    return Read(type, id);
  }
  Result<void> LockMany(std::span<const ResourceKey> keys) override;
  Result<void> Write(const ResourceRow& row, const IndexEntries& index) override {
    if (!locked_.empty()) locked_.erase(std::pair(row.type, row.id));
    return SqlSession::Write(row, index);
  }

  // Store::ReadCurrentMany on this pooled session (outside a transaction), decision 0040.
  void ReadMany(std::span<const Store::ReadKey> keys, Store::ReadSink& sink);

 protected:
  bool InTransaction() const override { return in_tx_; }

  // A statement's result, or its failure classified (the result is then cleared): a broken
  // connection (server restart, backend terminated, network: SQLSTATE class 08, 57P01-03, or
  // libpq's own loss of the connection, logged as 08006 connection_failure) is
  // errc::kUnavailable and no transaction survives it; the pool then replaces this connection
  // and every one opened before it (a restart ends them all, but each shows it only when next
  // used). Only the SQLSTATE is logged, never the message (it can quote values).
  Result<PGresult*> Check(PGresult* res) {
    const auto status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
    // Copy the SQLSTATE before PQclear frees the result it points into.
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const std::string code = state != nullptr ? state : "";
    PQclear(res);
    if (PQstatus(conn_) == CONNECTION_BAD || code.starts_with("08") || code == "57P01" ||
        code == "57P02" || code == "57P03") {
      LogDbState("store.postgres.connection_lost", code.empty() ? "08006" : code);
      ConnectionLost();
      return make_error_code(errc::kUnavailable);
    }
    // 23505 unique_violation: decision 0023 (never a race between gateways that the advisory
    // locks let through; retried once, then 409).
    if (code == "23505") {
      LogDbState("store.postgres.duplicate_key", code);
      return make_error_code(errc::kDuplicateKey);
    }
    // 40001 serialization_failure, 40P01 deadlock_detected.
    if (code == "40001" || code == "40P01") return make_error_code(errc::kConflict);
    LogDbState("store.postgres.statement_failed", code);
    return make_error_code(errc::kQueryFailed);
  }

  // Text values of a statement's parameters for libpq (numbers formatted, strings pointed at).
  struct Values {
    explicit Values(const std::vector<Param>& params) : text(params.size()), values(params.size()) {
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
    }
    int Count() const { return static_cast<int>(values.size()); }
    std::vector<std::string> text;
    std::vector<const char*> values;
  };

  // A statement outside a transaction (a read, the checkpoint tables' creation) whose pooled
  // connection turns out broken runs once more on a new connection: it changed nothing. Inside
  // a transaction, statements deferred by Exec are sent first, in the same round trip
  // (Pipeline).
  Result<PGresult*> Run(std::string_view sql, const std::vector<Param>& params) {
    if (poisoned_) return *poisoned_;
    Sent(sql);
    const Values values(params);
    const std::string numbered = Numbered(sql);
    if (deferred_ > 0) return Pipeline(&numbered, &values);
    for (int attempt = 0;; ++attempt) {
      auto r = Check(PQexecParams(conn_, numbered.c_str(), values.Count(), nullptr,
                                  values.values.data(), nullptr, nullptr, 0));
      if (r || r.error() != errc::kUnavailable || in_tx_ || attempt > 0 || !Reconnect()) {
        return r;
      }
    }
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

  // Inside a transaction a statement whose rows nobody reads (the queued INSERTs, DELETEs of
  // index rows, advisory locks, SAVEPOINT, RELEASE) is only sent, in libpq's pipeline mode
  // (decision 0028): its result is read with the next statement that needs an answer (a
  // Query, ReleaseSavepoint, RollbackToSavepoint, Commit), so a request's statements cost one
  // round trip instead of one each. A failure is then reported by that call.
  Result<void> Exec(std::string_view sql, const std::vector<Param>& params) override;

  // Savepoints with pipelined statements: SAVEPOINT is only sent; RELEASE and ROLLBACK TO read
  // every result sent before them, so a part's failure is reported to the call that ends it.
  Result<void> Savepoint(std::string_view name) override {
    auto r = SqlSession::Savepoint(name);
    if (r && deferred_ > 0) savepoint_at_ = deferred_ - 1;
    return r;
  }
  Result<void> ReleaseSavepoint(std::string_view name) override {
    KAKEHASHI_TRY_VOID(SqlSession::ReleaseSavepoint(name));
    return Sync();
  }
  Result<void> RollbackToSavepoint(std::string_view name) override {
    DropPending();
    locked_.clear();
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    // A failure among the statements still unread belongs to the part being undone (those sent
    // after its SAVEPOINT); one at or before a SAVEPOINT sent with them poisons the session.
    if (deferred_ > 0) (void)Sync();
    KAKEHASHI_TRY_VOID(SqlSession::RollbackToSavepoint(name));
    return Sync();
  }

 private:
  // COMMIT, its answer read separately so that the test hook can break the connection at
  // either side of it (StoreOptions::postgres_commit_hook).
  Result<void> SendCommit();
  // This session's connection is replaced by a new one (its broken one is closed). False when
  // none could be opened (the broken one is kept; the pool will not hand it out again).
  bool Reconnect();

  // Pipeline mode (decision 0028). Defer sends a statement without reading its result;
  // Pipeline sends `sql` (if given) after the deferred ones, then a sync, reads every result in
  // order and returns `sql`'s result (nullptr without `sql`) or the first failure; Sync reads
  // the deferred ones alone.
  Result<void> Defer(std::string_view sql, const std::vector<Param>& params);
  Result<PGresult*> Pipeline(const std::string* sql, const Values* values);
  Result<void> Sync() {
    if (poisoned_) return *poisoned_;
    if (deferred_ == 0) return {};
    KAKEHASHI_TRY_VOID(Pipeline(nullptr, nullptr));
    return {};
  }
  static constexpr int kMaxDeferred = 256;  // statements sent before their results are read
  // StoreOptions::postgres_bulk: index rows of one table copied from this many on.
  static constexpr std::size_t kCopyRows = 256;

  std::optional<Result<void>> CopyRows(std::string_view table_columns,
                                       const std::vector<Param>& params, std::size_t rows) override;
  void Sent(std::string_view sql);  // StoreOptions::postgres_statement_hook

  PgStore& store_;
  PGconn* conn_;
  bool in_tx_ = false;
  std::int64_t txid_ = 0;  // of the open transaction (Begin)
  int deferred_ = 0;       // statements sent in pipeline mode, results not read yet
  int savepoint_at_ = -1;  // index among them of the last SAVEPOINT, -1: none
  // A deferred statement failed at or before a SAVEPOINT sent after it: the caller was told
  // that the savepoint exists, so every later call of the transaction fails with this error
  // (the commit queue then runs the group's requests alone, decision 0016).
  std::optional<ErrorCode> poisoned_;
  bool bulk_;  // StoreOptions::postgres_bulk
  // Rows read by LockMany whose LockAndRead has not come yet, by (type, id); nullopt: none.
  std::map<std::pair<std::string, std::string>, std::optional<ResourceRow>> locked_;
};

class PgStore final : public Store {
  static constexpr const char* kResolveConnectTimeout = "2";  // seconds (libpq connect_timeout)
  static constexpr const char* kResolveStatementTimeout = "-c statement_timeout=2000";  // ms

 public:
  PgStore(std::string url, int max_connections, std::string schema,
          std::function<void(bool, int, int)> commit_hook, bool pipeline, bool bulk,
          std::function<void(std::string_view)> statement_hook)
      : url_(std::move(url)),
        max_connections_(max_connections),
        schema_(std::move(schema)),
        commit_hook_(std::move(commit_hook)),
        pipeline_(pipeline),
        bulk_(bulk),
        statement_hook_(std::move(statement_hook)) {}
  ~PgStore() override {
    for (PGconn* c : free_) PQfinish(c);
  }

  // `bounded`: the connections that resolve a lost COMMIT (ResolveCommit) give up connecting
  // after kResolveConnectTimeout seconds and their statements after kResolveStatementTimeoutMs,
  // so that a network partition does not hold the commit thread for libpq's/TCP's own timeouts
  // (decision 0023); settings in the URL come after these and win.
  Result<PGconn*> Connect(bool bounded = false) {
    PGconn* conn = nullptr;
    if (bounded) {
      const char* keys[] = {"connect_timeout", "options", "dbname", nullptr};
      const char* values[] = {kResolveConnectTimeout, kResolveStatementTimeout, url_.c_str(),
                              nullptr};
      conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    } else {
      conn = PQconnectdb(url_.c_str());
    }
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
    return PQstatus(conn) == CONNECTION_OK && PQpipelineStatus(conn) == PQ_PIPELINE_OFF &&
           it != born_.end() && it->second == lost_;
  }
  void Discard(PGconn* conn) {
    {
      std::lock_guard lock(mutex_);
      born_.erase(conn);
    }
    PQfinish(conn);
  }

  // The pg_trgm GIN indexes of idx_text (decision 0041), inside Migrate's transaction, tried on
  // every open until they exist: pg_trgm is a trusted extension (PostgreSQL 13+), so a database
  // owner may create it, but a server without the contrib package or a role without CREATE on
  // the database cannot. Then `_text`/`_content` read every idx_text row; one log line (the
  // SQLSTATE, nothing else) says so. Installed into `public` when it can be, so stores in other
  // schemas of the database (postgres_schema) share it; the operator class is named with the
  // schema the extension is in.
  void EnsureTextIndexes(PGconn* conn) {
    auto query = [conn](const char* sql, std::string* value, std::string* sqlstate) {
      PGresult* res = PQexec(conn, sql);
      const auto status = PQresultStatus(res);
      const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
      if (ok && value != nullptr && PQntuples(res) == 1) *value = PQgetvalue(res, 0, 0);
      if (!ok && sqlstate != nullptr) {
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        *sqlstate = state != nullptr ? state : "";
      }
      PQclear(res);
      return ok;
    };
    std::string have;
    if (!query("SELECT to_regclass('idx_text_content_trgm') IS NOT NULL AND "
               "to_regclass('idx_text_narrative_trgm') IS NOT NULL",
               &have, nullptr) ||
        have == "t") {
      return;
    }
    std::string sqlstate;
    if (!query("SAVEPOINT text_trgm", nullptr, &sqlstate)) return;
    bool ok =
        query("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public", nullptr, &sqlstate);
    if (!ok) {
      query("ROLLBACK TO SAVEPOINT text_trgm", nullptr, nullptr);
      ok = query("CREATE EXTENSION IF NOT EXISTS pg_trgm", nullptr, &sqlstate);
    }
    std::string ext_schema;
    if (ok) {
      ok = query(
               "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid "
               "= e.extnamespace WHERE e.extname = 'pg_trgm'",
               &ext_schema, &sqlstate) &&
           !ext_schema.empty();
    }
    if (ok) {
      for (const std::string& sql : TextIndexSql(ext_schema + ".gin_trgm_ops")) {
        if (!query(sql.c_str(), nullptr, &sqlstate)) {
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      query("RELEASE SAVEPOINT text_trgm", nullptr, nullptr);
      return;
    }
    query("ROLLBACK TO SAVEPOINT text_trgm", nullptr, nullptr);
    query("RELEASE SAVEPOINT text_trgm", nullptr, nullptr);
    // A warning: the store works, only `_text`/`_content` searches are slower.
    LogDbState("store.postgres.text_trigram_index_unavailable", sqlstate, LogLevel::kWarn);
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
      // Statements go as one simple-query string where no answer is needed in between: one
      // round trip instead of one per statement (a new database runs ~60; PQexec's result is
      // the first failing statement's, else the last one's). Fixed lock key: one migrator at a
      // time across processes.
      KAKEHASHI_TRY_VOID(
          exec("BEGIN; SELECT pg_advisory_xact_lock(7401746); "
               "CREATE TABLE IF NOT EXISTS kakehashi_migrations (version INTEGER PRIMARY KEY, "
               "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
      PGresult* res = PQexec(conn, "SELECT COALESCE(MAX(version), 0) FROM kakehashi_migrations");
      int version = 0;
      if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        version = std::atoi(PQgetvalue(res, 0, 0));
      }
      PQclear(res);
      std::string migrations;
      for (int v = version + 1; v <= kSchemaVersion; ++v) {
        for (const auto& sql : Schema(v, Dialect::kPostgres)) migrations += sql + ";\n";
        migrations +=
            "INSERT INTO kakehashi_migrations (version) VALUES (" + std::to_string(v) + ");\n";
      }
      // Schema version 5 runs the same key sync: not run twice on a new database.
      if (version >= 5) migrations += SyncParamKeysSql() + ";\n";
      for (const auto& sql : IndexStateSql()) migrations += sql + ";\n";
      KAKEHASHI_TRY_VOID(exec(migrations));
      EnsureTextIndexes(conn);
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
    return std::unique_ptr<Session>(
        std::make_unique<PgSession>(*this, conn, keys_, search_threshold, bulk_));
  }

  void Release(PGconn* conn) {
    std::lock_guard lock(mutex_);
    free_.push_back(conn);
    cv_.notify_one();
  }

  std::string_view Backend() const override { return "postgresql"; }

  // The reads in one round trip on one pooled connection (decision 0040); without pipeline
  // mode (StoreOptions::postgres_pipeline off), or for one key, one round trip each.
  void ReadCurrentMany(std::span<const ReadKey> keys, ReadSink& sink) override {
    if (keys.size() < 2 || !pipeline_) {
      Store::ReadCurrentMany(keys, sink);
      return;
    }
    auto session = OpenSession();
    if (!session) {
      for (std::size_t i = 0; i < keys.size(); ++i) sink.Read(i, session.error());
      return;
    }
    static_cast<PgSession&>(**session).ReadMany(keys, sink);
  }

  const std::function<void(bool, int, int)>& CommitHook() const { return commit_hook_; }
  bool PipelineMode() const { return pipeline_; }
  const std::function<void(std::string_view)>& StatementHook() const { return statement_hook_; }

  // After a COMMIT whose answer was lost (decision 0023): what became of transaction `txid`,
  // asked on new connections with txid_status(). Success: committed. errc::kUnavailable:
  // rolled back, nothing of it is stored (the caller may run it again). errc::kCommitUnknown:
  // no final answer within kResolveAttempts tries (about 1.3 s of waits), or the id is too old
  // for the server to know (NULL). While the transaction is "in progress" its server process
  // still holds it (COMMIT did not reach it yet and it has not noticed the broken connection, or
  // it is still committing): that process is terminated, if it still runs this transaction, so
  // that the outcome becomes final (a COMMIT already under way completes, anything else is
  // rolled back) and its locks are freed, then the status is asked again.
  Result<void> ResolveCommit(std::int64_t txid, int backend_pid) {
    constexpr int kResolveAttempts = 8;
    if (txid <= 0) return make_error_code(errc::kCommitUnknown);
    const std::string id = std::to_string(txid);
    // pg_stat_activity.backend_xid is the 32-bit xid: the low half of the 64-bit txid.
    const std::string xid = std::to_string(static_cast<std::uint64_t>(txid) & 0xffffffffu);
    const std::string pid = std::to_string(backend_pid);
    auto wait = std::chrono::milliseconds(10);
    for (int attempt = 1; attempt <= kResolveAttempts; ++attempt) {
      if (attempt > 1) {
        std::this_thread::sleep_for(wait);
        wait *= 2;
      }
      auto made = Connect(/*bounded=*/true);
      if (!made) continue;
      PGconn* conn = *made;
      const char* status_params[] = {id.c_str()};
      PGresult* res = PQexecParams(conn, "SELECT txid_status($1::bigint)", 1, nullptr,
                                   status_params, nullptr, nullptr, 0);
      const bool answered = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
      const bool null = answered && PQgetisnull(res, 0, 0) != 0;
      const std::string status = answered && !null ? PQgetvalue(res, 0, 0) : "";
      PQclear(res);
      if (status == "in progress") {
        const char* kill_params[] = {pid.c_str(), xid.c_str()};
        PQclear(PQexecParams(conn,
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE pid = $1::int AND backend_xid::text = $2",
                             2, nullptr, kill_params, nullptr, nullptr, 0));
      }
      Discard(conn);
      if (status == "committed") return {};
      if (status == "aborted") return make_error_code(errc::kUnavailable);
      if (null) break;
    }
    LogDbState("store.postgres.commit_unknown", "08006");
    return make_error_code(errc::kCommitUnknown);
  }

 private:
  std::string url_;
  int max_connections_;
  std::string schema_;
  std::function<void(bool, int, int)> commit_hook_;  // StoreOptions::postgres_commit_hook
  bool pipeline_;                                    // StoreOptions::postgres_pipeline
  bool bulk_;                                        // StoreOptions::postgres_bulk
  std::function<void(std::string_view)> statement_hook_;
  std::shared_ptr<const ParamKeys> keys_;  // set by Migrate
 public:
  std::int64_t search_threshold = 0;  // StoreOptions::search_threshold

 private:
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

Result<void> PgSession::Commit() {
  if (!in_tx_) return make_error_code(errc::kNotInTransaction);
  auto f = FlushPending();
  if (f) f = Sync();
  if (!f) {
    Rollback();
    return f.error();
  }
  in_tx_ = false;
  const int backend_pid = PQbackendPID(conn_);
  auto r = SendCommit();
  if (r || r.error() != errc::kUnavailable) return r;
  // The connection broke while COMMIT was in flight: the server may have committed before it
  // broke. Another connection tells: committed (success), rolled back (errc::kUnavailable:
  // nothing of it is stored, the caller may run it again) or still unknown
  // (errc::kCommitUnknown: the caller must not run the writes again).
  return store_.ResolveCommit(txid_, backend_pid);
}

Result<void> PgSession::SendCommit() {
  const auto& hook = store_.CommitHook();
  if (hook) hook(false, PQbackendPID(conn_), PQsocket(conn_));
  if (PQsendQuery(conn_, "COMMIT") == 0) return Check(nullptr).error();  // could not send
  if (hook) hook(true, PQbackendPID(conn_), PQsocket(conn_));
  // The first failed result, else the last one (COMMIT has one; nullptr ends the results).
  PGresult* failed = nullptr;
  PGresult* last = nullptr;
  while (PGresult* res = PQgetResult(conn_)) {
    const auto status = PQresultStatus(res);
    if (failed == nullptr && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      failed = res;
    } else {
      PQclear(last);
      last = res;
    }
  }
  if (failed != nullptr) {
    PQclear(last);
    last = failed;
  }
  KAKEHASHI_TRY(PGresult * res, Check(last));
  PQclear(res);
  return {};
}

Result<void> PgSession::Exec(std::string_view sql, const std::vector<Param>& params) {
  if (in_tx_ && store_.PipelineMode()) return Defer(sql, params);
  KAKEHASHI_TRY(PGresult * res, Run(sql, params));
  PQclear(res);
  return {};
}

Result<void> PgSession::Defer(std::string_view sql, const std::vector<Param>& params) {
  if (poisoned_) return *poisoned_;
  Sent(sql);
  if (deferred_ == 0 && PQpipelineStatus(conn_) == PQ_PIPELINE_OFF &&
      PQenterPipelineMode(conn_) == 0) {
    return Check(nullptr).error();  // a connection that cannot even enter the mode is broken
  }
  const Values values(params);
  const std::string numbered = Numbered(sql);
  if (PQsendQueryParams(conn_, numbered.c_str(), values.Count(), nullptr, values.values.data(),
                        nullptr, nullptr, 0) == 0) {
    // Not sent (the connection broke): read what was, so the failure is classified.
    const auto r = Pipeline(nullptr, nullptr);
    if (!r) return r.error();
    return Check(nullptr).error();
  }
  if (++deferred_ >= kMaxDeferred) return Sync();
  return {};
}

Result<PGresult*> PgSession::Pipeline(const std::string* sql, const Values* values) {
  const int sent = deferred_;
  const int savepoint_at = savepoint_at_;
  deferred_ = 0;
  savepoint_at_ = -1;
  if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) == 0) {
    return Check(nullptr).error();
  }
  int total = sent;
  bool ok = true;
  if (sql != nullptr) {
    ok = PQsendQueryParams(conn_, sql->c_str(), values->Count(), nullptr, values->values.data(),
                           nullptr, nullptr, 0) != 0;
    if (ok) ++total;
  }
  ok = PQpipelineSync(conn_) != 0 && ok;
  // Each statement's results end with nullptr; after a failure the rest are
  // PGRES_PIPELINE_ABORTED; the sync's result comes last. A lost connection ends the reading.
  PGresult* wanted = nullptr;
  std::optional<ErrorCode> failure;
  int failed_at = -1;
  bool broken = false;
  for (int i = 0; i < total && !broken; ++i) {
    bool any = false;
    while (PGresult* res = PQgetResult(conn_)) {
      any = true;
      const auto status = PQresultStatus(res);
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        if (sql != nullptr && i == total - 1 && failure == std::nullopt) {
          PQclear(wanted);
          wanted = res;
        } else {
          PQclear(res);
        }
      } else if (status == PGRES_PIPELINE_ABORTED || failure) {
        PQclear(res);
      } else {
        failure = Check(res).error();  // clears it
        failed_at = i;
      }
      if (PQstatus(conn_) == CONNECTION_BAD) {
        broken = true;
        break;
      }
    }
    if (!any && PQstatus(conn_) == CONNECTION_BAD) broken = true;
  }
  if (!broken) {
    while (PGresult* res = PQgetResult(conn_)) {  // the sync (PGRES_PIPELINE_SYNC)
      const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
      PQclear(res);
      if (sync) break;
    }
  }
  if (PQexitPipelineMode(conn_) == 0 && !failure) {
    // Still results to read, or a broken connection: the connection is not used again.
    failure = Check(nullptr).error();
  }
  if (!failure && (broken || !ok)) failure = Check(nullptr).error();
  if (failure) {
    PQclear(wanted);
    // A failure that a SAVEPOINT sent after it did not survive: nobody can be told in time.
    if (failed_at >= 0 && failed_at <= savepoint_at) poisoned_ = failure;
    if (failed_at < 0 || broken) poisoned_ = failure;
    return *failure;
  }
  return wanted;
}

void PgSession::ReadMany(std::span<const Store::ReadKey> keys, Store::ReadSink& sink) {
  // The statement of SqlSession::Read, sent once per key in pipeline mode with one sync: a
  // failed read aborts those after it (PGRES_PIPELINE_ABORTED), which are then read again one
  // at a time, as is every read whose answer a broken connection lost (Read reconnects).
  static constexpr const char* kSql =
      "SELECT type, id, version, last_updated, deleted, json FROM resources WHERE type = $1 AND "
      "id = $2";
  std::vector<char> again(keys.size(), 1);  // not answered yet
  std::size_t sent = 0;
  if (!in_tx_ && deferred_ == 0 && PQenterPipelineMode(conn_) != 0) {
    for (const Store::ReadKey& key : keys) {
      const std::string type(key.type);
      const std::string id(key.id);
      const char* values[] = {type.c_str(), id.c_str()};
      if (PQsendQueryParams(conn_, kSql, 2, nullptr, values, nullptr, nullptr, 0) == 0) break;
      ++sent;
    }
    bool broken = sent == 0 || PQpipelineSync(conn_) == 0;
    for (std::size_t i = 0; i < sent && !broken; ++i) {
      if (PQisBusy(conn_) != 0) sink.Waiting();  // the next answer is not here yet
      std::optional<Result<std::optional<ResourceRow>>> answer;
      bool any = false;
      while (PGresult* res = PQgetResult(conn_)) {
        any = true;
        const auto status = PQresultStatus(res);
        if (answer || status == PGRES_PIPELINE_ABORTED) {
          PQclear(res);
        } else if (status == PGRES_TUPLES_OK) {
          std::optional<ResourceRow> row;
          if (PQntuples(res) > 0 && PQnfields(res) == 6) {
            auto text = [res](int c) {
              return std::string(PQgetvalue(res, 0, c),
                                 static_cast<std::size_t>(PQgetlength(res, 0, c)));
            };
            auto number = [&text](int c) {
              const std::string v = text(c);
              std::int64_t n = 0;
              std::from_chars(v.data(), v.data() + v.size(), n);
              return n;
            };
            ResourceRow r;
            r.type = text(0);
            r.id = text(1);
            r.version = number(2);
            r.last_updated_us = number(3);
            const std::string deleted = text(4);
            r.deleted = deleted == "1" || deleted == "t";
            r.json = text(5);
            row = std::move(r);
          }
          PQclear(res);
          answer.emplace(std::move(row));
        } else {
          auto failed = Check(res);  // classifies, logs the SQLSTATE and clears it
          if (PQstatus(conn_) != CONNECTION_BAD) answer.emplace(failed.error());
        }
        if (PQstatus(conn_) == CONNECTION_BAD) {
          broken = true;
          break;
        }
      }
      if (!any && PQstatus(conn_) == CONNECTION_BAD) broken = true;
      if (answer && !broken) {
        again[i] = 0;
        sink.Read(i, std::move(*answer));
      }
    }
    if (!broken) {
      while (PGresult* res = PQgetResult(conn_)) {  // the sync (PGRES_PIPELINE_SYNC)
        const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (sync) break;
      }
    }
    if (PQexitPipelineMode(conn_) == 0 || broken) {
      // Results left unread, or a broken connection: this one is not used again (a broken
      // one also retires the pool's older connections, as Check does).
      if (PQstatus(conn_) == CONNECTION_BAD) ConnectionLost();
      if (!Reconnect()) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
          if (again[i] != 0) sink.Read(i, make_error_code(errc::kUnavailable));
        }
        return;
      }
    }
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (again[i] == 0) continue;
    sink.Waiting();
    sink.Read(i, Read(keys[i].type, keys[i].id));
  }
}

void PgSession::Sent(std::string_view sql) {
  if (const auto& hook = store_.StatementHook()) hook(sql);
}

namespace {

// A PostgreSQL array literal of `values` ("{"a","b"}"; every element quoted, '"' and '\\'
// escaped), for CAST(? AS TEXT[]).
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// One value of a COPY text row (PostgreSQL docs, COPY "Text Format"): a backslash, tab,
// newline or carriage return in a string is escaped; numbers as the INSERT path sends them.
void AppendCopyValue(const Param& value, std::string& out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    for (char c : *s) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default: out += c;
      }
    }
    return;
  }
  char buf[64];
  std::to_chars_result written{};
  if (const auto* v = std::get_if<std::int64_t>(&value)) {
    written = std::to_chars(buf, buf + sizeof buf, *v);
  } else {
    written = std::to_chars(buf, buf + sizeof buf, std::get<double>(value));
  }
  out.append(buf, written.ptr);
}

}  // namespace

Result<void> PgSession::LockMany(std::span<const ResourceKey> keys) {
  if (!in_tx_) return make_error_code(errc::kNotInTransaction);
  if (!bulk_ || keys.size() < 2) return {};
  // The transaction's own queued rows first, so that the read sees them.
  KAKEHASHI_TRY_VOID(FlushPending());
  std::vector<std::string> names;  // "Type/id", LockAndRead's lock key
  std::vector<std::string> types;
  std::vector<std::string> ids;
  names.reserve(keys.size());
  for (const ResourceKey& k : keys) {
    std::string name(k.type);
    name += '/';
    name += k.id;
    names.push_back(std::move(name));
    types.emplace_back(k.type);
    ids.emplace_back(k.id);
  }
  // In key order, so that two bulk writers of overlapping keys do not deadlock each other.
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  // The read is a statement of its own, after the locks: its snapshot then shows every
  // version committed before they were granted (READ COMMITTED takes one per statement).
  KAKEHASHI_TRY_VOID(
      Exec("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM "
           "unnest(CAST(? AS TEXT[])) WITH ORDINALITY AS u(k, n) ORDER BY n",
           {TextArray(names)}));
  KAKEHASHI_TRY(Rows rows,
                Query("SELECT type, id, version, last_updated, deleted, json FROM resources WHERE "
                      "(type, id) IN (SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])))",
                      {TextArray(types), TextArray(ids)}));
  for (std::size_t i = 0; i < types.size(); ++i) {
    locked_.emplace(std::pair(std::move(types[i]), std::move(ids[i])), std::nullopt);
  }
  for (auto& cols : rows) {
    if (cols.size() != 6) return make_error_code(errc::kQueryFailed);
    ResourceRow row;
    row.type = std::move(cols[0]);
    row.id = std::move(cols[1]);
    row.version = std::strtoll(cols[2].c_str(), nullptr, 10);
    row.last_updated_us = std::strtoll(cols[3].c_str(), nullptr, 10);
    row.deleted = cols[4] == "1" || cols[4] == "t";
    row.json = std::move(cols[5]);
    auto key = std::pair(row.type, row.id);
    locked_[std::move(key)] = std::move(row);
  }
  return {};
}

std::optional<Result<void>> PgSession::CopyRows(std::string_view table_columns,
                                                const std::vector<Param>& params,
                                                std::size_t rows) {
  if (poisoned_) return Result<void>(*poisoned_);
  if (rows == 0 || params.size() % rows != 0)
    return Result<void>(make_error_code(errc::kQueryFailed));
  // COPY is not allowed in pipeline mode: the statements sent before it are read first.
  if (auto r = Sync(); !r) return r;
  const std::size_t columns = params.size() / rows;
  std::string sql = "COPY ";
  sql += table_columns;
  sql += " FROM STDIN";
  Sent(sql);
  PGresult* res = PQexec(conn_, sql.c_str());
  if (PQresultStatus(res) != PGRES_COPY_IN) {
    auto failed = Check(res);  // classifies and clears it
    if (failed) {              // not a failure, nor COPY_IN: unexpected
      PQclear(*failed);
      return Result<void>(make_error_code(errc::kQueryFailed));
    }
    return Result<void>(failed.error());
  }
  PQclear(res);
  std::string data;
  constexpr std::size_t kChunk = 1 << 20;
  bool sent = true;
  for (std::size_t r = 0; r < rows && sent; ++r) {
    for (std::size_t c = 0; c < columns; ++c) {
      if (c > 0) data += '\t';
      AppendCopyValue(params[r * columns + c], data);
    }
    data += '\n';
    if (data.size() >= kChunk || r + 1 == rows) {
      sent = PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1;
      data.clear();
    }
  }
  if (PQputCopyEnd(conn_, sent ? nullptr : "not sent") != 1) sent = false;
  // COPY's result, then nullptr; the first failure is the one reported.
  std::optional<ErrorCode> failure;
  while (PGresult* result = PQgetResult(conn_)) {
    if (failure) {
      PQclear(result);
      continue;
    }
    auto checked = Check(result);
    if (checked) {
      PQclear(*checked);
    } else {
      failure = checked.error();
    }
    if (PQstatus(conn_) == CONNECTION_BAD) break;
  }
  if (!failure && !sent) failure = Check(nullptr).error();
  if (failure) return Result<void>(*failure);
  return Result<void>();
}

bool PgSession::Reconnect() {
  auto made = store_.Connect();
  if (!made) return false;
  store_.Discard(conn_);
  conn_ = *made;
  return true;
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
                                         options.postgres_schema, options.postgres_commit_hook,
                                         options.postgres_pipeline, options.postgres_bulk,
                                         options.postgres_statement_hook);
  store->search_threshold = options.search_threshold;
  KAKEHASHI_TRY_VOID(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

#else

Result<std::unique_ptr<Store>> OpenPostgresStore(std::string_view, const StoreOptions&) {
  return make_error_code(errc::kUnsupported);
}

#endif

}  // namespace kakehashi::gateway::store::detail
