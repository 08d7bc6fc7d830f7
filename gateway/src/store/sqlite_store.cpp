// SQLite backend: WAL journal (readers never block the writer), a pool of connections, prepared
// statements cached per connection. Writers take BEGIN IMMEDIATE, which serialises them on the
// database's write lock, so LockAndRead needs nothing more.
#include "store/backends.hpp"
#include "store/sql_session.hpp"
#include "store/sqlite_nowait.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kakehashi::gateway::store::detail {

namespace {

std::atomic<void (*)()> reaper_ending_hook{nullptr};  // SetReaperEndingHookForTesting

// Statement cache keyed by SQL text, looked up by string_view (no key copy per call).
struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view sql) const noexcept {
    return std::hash<std::string_view>{}(sql);
  }
};

struct Connection {
  sqlite3* db = nullptr;
  using Statements = std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>>;
  Statements statements;  // never erased from while the connection lives
  // Entries of `statements` by the address of the text last looked up there: most statements
  // are static strings (the multi-row INSERTs of the commit thread, ~1,000 bytes each) whose
  // hash was computed per execution. A hit is checked against the entry's text (an address can
  // hold another text later), which costs a memcmp instead of hashing it; cleared when it has
  // kByAddressMax entries (addresses of texts built per request).
  static constexpr std::size_t kByAddressMax = 256;
  std::unordered_map<const char*, Statements::value_type*> by_address;
  ~Connection() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    if (db != nullptr) sqlite3_close_v2(db);
  }
};

// Store::ReadCurrent's connection of one thread: its read statement prepared once, an 8 MB page
// cache and no mmap (see OpenReader), and a read transaction kept open while the caller's DbState
// is the one it began under (walformat §2.1: the WAL-index header changes with every commit, so an
// unchanged header means the open snapshot is the newest one). That saves per read the
// BEGIN/COMMIT of an autocommit statement: the shared lock on the database file and the read
// mark lock on the -shm (fcntl, behind process-wide SQLite mutexes the io threads contend for),
// the fstat and the WAL-index header check. `mutex`: the owning thread and the reaper, which
// ends transactions older than kSnapshotAge so that checkpoints are not held back. A thread
// that must not wait (an io thread, Store::TryReadCurrent) has a second reader of its own on the
// nowait VFS (decision 0051), kept and reaped the same way.
struct Reader {
  std::mutex mutex;
  std::unique_ptr<Connection> conn;
  sqlite3_stmt* read = nullptr;  // owned by conn->statements
  bool in_tx = false;
  DbState state;
  std::chrono::steady_clock::time_point began;

  void End() noexcept {
    if (!in_tx) return;
    in_tx = false;
    sqlite3_exec(conn->db, "COMMIT", nullptr, nullptr, nullptr);
  }
};

class SqliteStore;

class SqliteSession final : public SqlSession {
 public:
  SqliteSession(SqliteStore& store, std::unique_ptr<Connection> conn,
                std::shared_ptr<const ParamKeys> keys, std::int64_t search_threshold)
      : SqlSession(Dialect::kSqlite, std::move(keys), search_threshold),
        store_(store),
        conn_(std::move(conn)) {}
  ~SqliteSession() override;

  Result<void> Begin() override {
    // One writer per process at a time, queued on a mutex: SQLite's busy handler would otherwise
    // poll with sleeps of up to 100 ms while another connection of this pool holds the write
    // lock. The busy timeout still covers writers in other processes.
    write_lock_ = std::unique_lock<std::mutex>(WriteMutex());
    // Every write runs on the store's one writer connection: a connection's page cache is
    // dropped whenever another connection has committed, so alternating pooled connections
    // re-read the B-tree pages a transaction touches from the file each time.
    auto writer = AcquireWriter();
    if (!writer) {
      write_lock_ = {};
      return writer.error();
    }
    std::swap(conn_, **writer);
    ResetTextIndex();
    auto r = Exec("BEGIN IMMEDIATE", {});
    if (!r) {
      EndWrite();
      return r.error();
    }
    in_tx_ = true;
    return {};
  }
  Result<void> Commit() override {
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    auto r = FlushPending();
    if (r) r = Exec("COMMIT", {});
    if (!r) {
      Rollback();
      return r.error();
    }
    in_tx_ = false;
    EndWrite();
    return {};
  }
  void Rollback() noexcept override {
    DropPending();
    ResetTextIndex();
    if (!in_tx_) return;
    in_tx_ = false;
    sqlite3_exec(conn_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    EndWrite();
  }
  Result<std::optional<ResourceRow>> LockAndRead(std::string_view type,
                                                 std::string_view id) override {
    if (!in_tx_) return make_error_code(errc::kNotInTransaction);
    return Read(type, id);
  }

 protected:
  bool InTransaction() const override { return in_tx_; }

  // The cached statement of `sql`, reset; its bindings are those of its last execution (Bind
  // sets them all).
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    if (auto a = conn_->by_address.find(sql.data());
        a != conn_->by_address.end() && a->second->first == sql) {
      sqlite3_reset(a->second->second);
      return a->second->second;
    }
    auto it = conn_->statements.find(sql);
    if (it != conn_->statements.end()) {
      if (conn_->by_address.size() >= Connection::kByAddressMax) conn_->by_address.clear();
      conn_->by_address[sql.data()] = &*it;
      sqlite3_reset(it->second);
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(conn_->db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
        SQLITE_OK) {
      LogDbError("store.sqlite.prepare_failed", sqlite3_extended_errcode(conn_->db));
      return make_error_code(errc::kQueryFailed);
    }
    conn_->statements.emplace(std::string(sql), stmt);
    return stmt;
  }

  // Text is bound SQLITE_STATIC: `params` outlives every step of the statement (Query and Exec
  // reset it before returning).
  Result<sqlite3_stmt*> Bind(std::string_view sql, const std::vector<Param>& params) {
    KAKEHASHI_TRY(sqlite3_stmt * stmt, Prepare(sql));
    // Parameters beyond `params` are NULL, not the last execution's values (SQLITE_STATIC text
    // of a vector gone since); every statement here binds all of its parameters, so this clears
    // nothing in practice.
    if (std::cmp_less(params.size(), sqlite3_bind_parameter_count(stmt))) {
      sqlite3_clear_bindings(stmt);
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int n = static_cast<int>(i + 1);
      if (const auto* s = std::get_if<std::string>(&params[i])) {
        sqlite3_bind_text(stmt, n, s->data(), static_cast<int>(s->size()), SQLITE_STATIC);
      } else if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        sqlite3_bind_int64(stmt, n, *v);
      } else {
        sqlite3_bind_double(stmt, n, std::get<double>(params[i]));
      }
    }
    return stmt;
  }

  Result<Rows> Query(std::string_view sql, const std::vector<Param>& params) override {
    KAKEHASHI_TRY(sqlite3_stmt * stmt, Bind(sql, params));
    Rows rows;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        LogDbError("store.sqlite.query_failed", rc);
        sqlite3_reset(stmt);
        return make_error_code(rc == SQLITE_BUSY ? errc::kConflict : errc::kQueryFailed);
      }
      const int n = sqlite3_column_count(stmt);
      std::vector<std::string> cols(static_cast<std::size_t>(n));
      for (int c = 0; c < n; ++c) {
        const auto* text = sqlite3_column_text(stmt, c);
        if (text != nullptr) {
          cols[static_cast<std::size_t>(c)].assign(
              reinterpret_cast<const char*>(text),
              static_cast<std::size_t>(sqlite3_column_bytes(stmt, c)));
        }
      }
      rows.push_back(std::move(cols));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  Result<void> Exec(std::string_view sql, const std::vector<Param>& params) override {
    KAKEHASHI_TRY(sqlite3_stmt * stmt, Bind(sql, params));
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      if (rc != SQLITE_CONSTRAINT) LogDbError("store.sqlite.statement_failed", rc);
      // A constraint is a unique key taken (decision 0023: never a race here, as writers hold
      // the database's write lock; retried once by the commit queue, then 409).
      if (rc == SQLITE_CONSTRAINT) return make_error_code(errc::kDuplicateKey);
      return make_error_code(rc == SQLITE_BUSY ? errc::kConflict : errc::kQueryFailed);
    }
    return {};
  }

 private:
  std::mutex& WriteMutex();
  Result<std::unique_ptr<Connection>*> AcquireWriter();
  // Returns the writer connection to the store (swapping the pooled one back) and the lock.
  void EndWrite() noexcept;

  SqliteStore& store_;
  std::unique_ptr<Connection> conn_;
  bool in_tx_ = false;
  std::unique_lock<std::mutex> write_lock_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, int max_connections)
      : path_(std::move(path)),
        max_connections_(max_connections),
        // Files only: a "file:" URI is the shared in-memory database of ":memory:".
        nowait_(!path_.starts_with("file:") && NowaitVfsName() != nullptr) {}

  Result<std::unique_ptr<Connection>> Connect() {
    auto conn = std::make_unique<Connection>();
    const int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    if (sqlite3_open_v2(path_.c_str(), &conn->db, flags, nullptr) != SQLITE_OK) {
      LogDbError("store.sqlite.open_failed", conn->db != nullptr ? sqlite3_errcode(conn->db) : -1);
      return make_error_code(errc::kOpenFailed);
    }
    sqlite3_busy_timeout(conn->db, 10000);
    // WAL: concurrent readers with one writer; NORMAL sync is durable across process crashes
    // (not power loss of the last transactions), the usual trade-off for WAL. Checkpoints every
    // 10,000 pages (~40 MB of WAL): index-heavy writes touch pages all over the file, and each
    // checkpoint ends in an fsync, so fewer, larger checkpoints keep write throughput up.
    // temp_store=MEMORY: inside a transaction every INSERT that may fail on a constraint keeps a
    // statement journal (the pages it changes, to undo just that statement); on disk that was a
    // temp file written with ~870 pages per 100-resource transaction (3.5 MB, strace), 4x the
    // WAL itself. In memory it is a copy that is dropped when the statement ends.
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                               "PRAGMA foreign_keys=OFF", "PRAGMA cache_size=-32000",
                               "PRAGMA wal_autocheckpoint=10000", "PRAGMA temp_store=MEMORY"}) {
      if (sqlite3_exec(conn->db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return make_error_code(errc::kOpenFailed);
      }
    }
    return conn;
  }

  Result<void> Migrate() {
    KAKEHASHI_TRY(auto conn, Connect());
    sqlite3* db = conn->db;
    auto exec = [db](const std::string& sql) -> Result<void> {
      char* err = nullptr;
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        LogDbError("store.sqlite.migration_failed", -1);
        sqlite3_free(err);
        return make_error_code(errc::kOpenFailed);
      }
      return {};
    };
    KAKEHASHI_TRY_VOID(exec("BEGIN IMMEDIATE"));
    KAKEHASHI_TRY_VOID(
        exec("CREATE TABLE IF NOT EXISTS kakehashi_migrations (version INTEGER PRIMARY KEY, "
             "applied_at TEXT NOT NULL)"));
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM kakehashi_migrations", -1, &stmt,
                       nullptr);
    int version = 0;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    for (int v = version + 1; v <= kSchemaVersion; ++v) {
      for (const auto& sql : Schema(v, Dialect::kSqlite)) KAKEHASHI_TRY_VOID(exec(sql));
      KAKEHASHI_TRY_VOID(exec("INSERT INTO kakehashi_migrations VALUES (" + std::to_string(v) +
                              ", strftime('%Y-%m-%dT%H:%M:%SZ','now'))"));
    }
    KAKEHASHI_TRY_VOID(exec(SyncParamKeysSql()));
    for (const auto& sql : IndexStateSql()) KAKEHASHI_TRY_VOID(exec(sql));
    Rows keys;
    sqlite3_prepare_v2(db, "SELECT pid, type, param FROM search_keys", -1, &stmt, nullptr);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < 3; ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        row.emplace_back(text != nullptr ? text : "");
      }
      keys.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (keys.empty()) {
      (void)exec("ROLLBACK");
      return make_error_code(errc::kOpenFailed);
    }
    keys_ = std::make_shared<const ParamKeys>(keys);
    KAKEHASHI_TRY_VOID(exec("COMMIT"));
    // Keep this connection: for ":memory:"-style shared-cache URIs it keeps the database alive.
    Release(std::move(conn));
    return {};
  }

  Result<std::unique_ptr<Session>> OpenSession() override {
    std::unique_ptr<Connection> conn;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return !free_.empty() || open_ < max_connections_; });
      if (!free_.empty()) {
        conn = std::move(free_.back());
        free_.pop_back();
      } else {
        ++open_;
      }
    }
    if (!conn) {
      auto made = Connect();
      if (!made) {
        std::lock_guard lock(mutex_);
        --open_;
        cv_.notify_one();
        return made.error();
      }
      conn = std::move(*made);
    }
    return std::unique_ptr<Session>(
        std::make_unique<SqliteSession>(*this, std::move(conn), keys_, search_threshold));
  }

  void Release(std::unique_ptr<Connection> conn) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(conn));
    cv_.notify_one();
  }
  void CountInitial() {
    std::lock_guard lock(mutex_);
    ++open_;
  }

  std::string_view Backend() const override { return "sqlite"; }
  bool ReadsInProcess() const override { return true; }

  // The writer connection: checkpoints run on a background thread instead of inside the
  // committing request (they copy WAL pages into the database file and end in an fsync).
  Result<std::unique_ptr<Connection>> ConnectWriter() {
    KAKEHASHI_TRY(auto conn, Connect());
    if (sqlite3_exec(conn->db, "PRAGMA wal_autocheckpoint=0", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return make_error_code(errc::kOpenFailed);
    }
    sqlite3_wal_hook(conn->db, &SqliteStore::OnWalCommit, this);
    return conn;
  }

  ~SqliteStore() override {
    {
      std::lock_guard lock(checkpoint_mutex_);
      stopping_ = true;
    }
    checkpoint_cv_.notify_one();
    if (checkpointer_.joinable()) checkpointer_.join();
    {
      std::lock_guard lock(readers_mutex_);
      readers_stopping_ = true;
    }
    reaper_cv_.notify_one();
    if (reaper_.joinable()) reaper_.join();
  }

  Result<std::optional<ResourceRow>> ReadCurrent(std::string_view type, std::string_view id,
                                                 const std::optional<DbState>& seen) override {
    Reader* r = ThisThreadsReader(false);
    if (r == nullptr) return Store::ReadCurrent(type, id, seen);
    std::lock_guard lock(r->mutex);
    if (!r->conn) KAKEHASHI_TRY_VOID(OpenReader(*r));
    if (!Snapshot(*r, seen)) {
      LogDbError("store.sqlite.query_failed", sqlite3_extended_errcode(r->conn->db));
      return make_error_code(errc::kQueryFailed);
    }
    std::optional<ResourceRow> row;
    const int rc = StepRead(*r, type, id, row);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      LogDbError("store.sqlite.query_failed", rc);
      r->End();
      return make_error_code(rc == SQLITE_BUSY ? errc::kConflict : errc::kQueryFailed);
    }
    return row;
  }

  // The same read on this thread's nowait reader (decision 0051): every page it needs must be
  // in memory (SQLite's page cache or the kernel's: the nowait VFS's preadv2 RWF_NOWAIT) and
  // every lock free at once (no busy handler), else nullopt at the first obstacle. The kept read
  // transaction, its snapshot rule and the reaper are ReadCurrent's. An error is not logged:
  // the caller reads again with ReadCurrent, which logs what is wrong.
  std::optional<ResourceRow> TryReadCurrent(std::string_view type, std::string_view id,
                                            const DbState& seen) override {
    if (!nowait_) return std::nullopt;
    Reader* r = ThisThreadsReader(true);
    if (r == nullptr) return std::nullopt;
    std::unique_lock lock(r->mutex, std::try_to_lock);
    if (!lock.owns_lock()) return std::nullopt;  // the reaper is ending its transaction
    NowaitScope scope;
    if (!r->conn && !OpenNowaitReader(*r)) return std::nullopt;
    if (!Snapshot(*r, seen)) return std::nullopt;
    std::optional<ResourceRow> row;
    const int rc = StepRead(*r, type, id, row);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      r->End();  // an I/O error has already rolled it back (SQLite ends the transaction)
      return std::nullopt;
    }
    return row;
  }

  std::mutex write_mutex;
  std::unique_ptr<Connection> writer;  // guarded by write_mutex

 private:
  // After each commit of the writer (wal hook, under write_mutex): wakes the checkpointer once
  // the WAL holds kCheckpointFrames frames.
  static int OnWalCommit(void* self, sqlite3*, const char*, int frames) {
    auto* store = static_cast<SqliteStore*>(self);
    if (frames >= kCheckpointFrames) store->RequestCheckpoint();
    return SQLITE_OK;
  }

  void RequestCheckpoint() {
    std::lock_guard lock(checkpoint_mutex_);
    if (!checkpointer_.joinable()) {
      checkpointer_ = std::thread([this] { CheckpointLoop(); });
    }
    checkpoint_wanted_ = true;
    checkpoint_cv_.notify_one();
  }

  // PASSIVE checkpoints on a connection of their own: they never block readers or the writer;
  // SQLite restarts the WAL from the beginning once a checkpoint completed and readers moved on.
  void CheckpointLoop() {
    auto conn = Connect();
    std::unique_lock lock(checkpoint_mutex_);
    while (true) {
      checkpoint_cv_.wait(lock, [&] { return checkpoint_wanted_ || stopping_; });
      if (stopping_) return;
      checkpoint_wanted_ = false;
      lock.unlock();
      if (conn) {
        int log = 0;
        int done = 0;
        int rc =
            sqlite3_wal_checkpoint_v2((*conn)->db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        // A writer that commits while a PASSIVE checkpoint runs leaves frames behind it, and the
        // WAL only restarts from its beginning when a writer starts with every frame
        // backfilled: under a steady write load (serve --load, import) that never happened,
        // and the WAL grew to 2.8-3.3 GB for 100,000 patients, after which page reads went
        // through the WAL index of all those frames until the last checkpoint finished. Past
        // kFullCheckpointFrames, a RESTART checkpoint catches up between two transactions of
        // this process (holding write_mutex, so they wait instead of starving its busy
        // handler): it copies the few frames the PASSIVE pass left and waits for readers to
        // leave the WAL (at most ~100 ms for ReadCurrent's kept transactions), so the next
        // writer starts the WAL from its beginning. Its busy wait is bounded by 1 s (a long
        // read in another process): then it gives up (SQLITE_BUSY) until the next wake-up.
        if (rc == SQLITE_OK && log > kFullCheckpointFrames) {
          std::lock_guard writers(write_mutex);
          sqlite3_busy_timeout((*conn)->db, 1000);
          rc = sqlite3_wal_checkpoint_v2((*conn)->db, nullptr, SQLITE_CHECKPOINT_RESTART, &log,
                                         &done);
          sqlite3_busy_timeout((*conn)->db, 10000);
        }
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) LogDbError("store.sqlite.checkpoint_failed", rc);
      }
      lock.lock();
    }
  }

  // --- Store::ReadCurrent's readers (struct Reader)

  // This thread's reader (`nowait`: its reader on the nowait VFS); nullptr past kMaxReaders
  // threads (then a pooled session reads, or TryReadCurrent gives up).
  Reader* ThisThreadsReader(bool nowait) {
    thread_local std::uint64_t cached_store[2] = {0, 0};
    thread_local Reader* cached[2] = {nullptr, nullptr};
    const int kind = nowait ? 1 : 0;
    if (cached_store[kind] == serial_) return cached[kind];
    std::lock_guard lock(readers_mutex_);
    auto& readers = nowait ? nowait_readers_ : readers_;
    auto it = readers.find(std::this_thread::get_id());
    if (it == readers.end()) {
      if (readers.size() >= kMaxReaders) return nullptr;
      it = readers.emplace(std::this_thread::get_id(), std::make_unique<Reader>()).first;
    }
    cached_store[kind] = serial_;
    cached[kind] = it->second.get();
    return cached[kind];
  }

  // Ends r's kept transaction unless it began under `seen` less than kSnapshotAge ago, and
  // begins one at `seen` when there is a state to keep it for. False: BEGIN failed.
  bool Snapshot(Reader& r, const std::optional<DbState>& seen) {
    const auto now = std::chrono::steady_clock::now();
    if (r.in_tx && (!seen || !(r.state == *seen) || now - r.began >= kSnapshotAge)) r.End();
    if (!r.in_tx && seen) {
      // BEGIN (deferred) takes its snapshot at the first step: at `seen` or newer, and `seen`
      // is the same state as long as no commit moves the header.
      if (sqlite3_exec(r.conn->db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
      r.in_tx = true;
      r.state = *seen;
      r.began = now;
      WakeReaper();
    }
    return true;
  }

  // Steps r's read statement for type/id: SQLITE_ROW (`row` set), SQLITE_DONE, or the error.
  static int StepRead(Reader& r, std::string_view type, std::string_view id,
                      std::optional<ResourceRow>& row) {
    sqlite3_stmt* stmt = r.read;
    sqlite3_bind_text(stmt, 1, type.data(), static_cast<int>(type.size()), SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      row.emplace();
      row->type = type;
      row->id = id;
      row->version = sqlite3_column_int64(stmt, 0);
      row->last_updated_us = sqlite3_column_int64(stmt, 1);
      row->deleted = sqlite3_column_int64(stmt, 2) != 0;
      // The bytes as stored (UTF-8 TEXT): sqlite3_column_text would first copy them into a
      // buffer of SQLite's to add a NUL terminator (a malloc and a copy per read).
      if (const void* json = sqlite3_column_blob(stmt, 3); json != nullptr) {
        row->json.assign(static_cast<const char*>(json),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt, 3)));
      }
    }
    sqlite3_reset(stmt);
    return rc;
  }

  static constexpr std::string_view kRead =
      "SELECT version, last_updated, deleted, json FROM resources WHERE type = ? AND id = ?";

  // No mmap_size: it saves ~2 us per uncached read, but every page it touches (and the
  // kernel's fault-around neighbours) counts in the process's RSS, which went from 96 MB to
  // 1.2 GB after 200,000 random reads of a 680 MB database (docs/performance.md). An 8 MB
  // page cache instead of 32: the handler's read cache keeps what was read, so the reader's
  // cache serves the B-tree's inner pages and little else (random leaves miss either way).
  Result<void> OpenReader(Reader& r) {
    KAKEHASHI_TRY(auto conn, Connect());
    sqlite3_exec(conn->db, "PRAGMA cache_size=-8000", nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(conn->db, kRead.data(), static_cast<int>(kRead.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      LogDbError("store.sqlite.prepare_failed", sqlite3_extended_errcode(conn->db));
      return make_error_code(errc::kQueryFailed);
    }
    conn->statements.emplace(std::string(kRead), stmt);
    r.read = stmt;
    r.conn = std::move(conn);
    return {};
  }

  // A reader on the nowait VFS, opened inside the caller's NowaitScope: opening reads the file
  // header and preparing reads the schema, so a page not in memory fails it (false) and the
  // next TryReadCurrent tries again. No busy handler (a lock held elsewhere fails at once) and
  // no mmap (a mapped page that is not in memory would fault and wait). Its page cache is the
  // reader threads' 8 MB (OpenReader).
  bool OpenNowaitReader(Reader& r) {
    auto conn = std::make_unique<Connection>();
    if (sqlite3_open_v2(path_.c_str(), &conn->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NowaitVfsName()) != SQLITE_OK) {
      return false;
    }
    for (const char* pragma : {"PRAGMA mmap_size=0", "PRAGMA cache_size=-8000"}) {
      if (sqlite3_exec(conn->db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) return false;
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(conn->db, kRead.data(), static_cast<int>(kRead.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return false;
    }
    conn->statements.emplace(std::string(kRead), stmt);
    r.read = stmt;
    r.conn = std::move(conn);
    return true;
  }

  // Starts the reaper, or wakes it from its idle wait, after a reader began a transaction. The
  // reaper holds readers_mutex_ only to list the readers and to go to sleep, never while it ends
  // a transaction (a COMMIT, behind SQLite's process-wide mutexes): an io thread that begins a
  // transaction right after the reaper ended its last one (TryReadCurrent, decision 0051) would
  // otherwise wait here for the whole pass, and for as long as the reaper is preempted during
  // it (docs/performance.md, "io-thread reads: where the p99 went").
  void WakeReaper() {
    if (!reaper_idle_.exchange(false)) return;
    std::lock_guard lock(readers_mutex_);
    if (!reaper_.joinable()) reaper_ = std::thread([this] { ReaperLoop(); });
    reaper_wake_ = true;
    reaper_cv_.notify_one();
  }

  // Ends reader transactions older than kSnapshotAge; sleeps until woken when none is open.
  // Readers are never removed while the store lives, so the listed pointers stay valid.
  void ReaperLoop() {
    std::vector<Reader*> listed;
    std::unique_lock lock(readers_mutex_);
    while (!readers_stopping_) {
      // Idle first, then look: a reader that begins after it was looked at sees the flag set
      // and wakes this loop (WakeReaper).
      reaper_idle_.store(true);
      listed.clear();
      for (auto* readers : {&readers_, &nowait_readers_}) {
        for (auto& [thread, reader] : *readers) listed.push_back(reader.get());
      }
      lock.unlock();
      bool open = false;
      const auto now = std::chrono::steady_clock::now();
      for (Reader* reader : listed) {
        std::unique_lock reader_lock(reader->mutex, std::try_to_lock);
        if (!reader_lock.owns_lock()) {  // in use: look again at the next tick
          open = true;
          continue;
        }
        if (reader->in_tx && now - reader->began >= kSnapshotAge) {
          if (auto* hook = reaper_ending_hook.load()) hook();
          reader->End();
        }
        open = open || reader->in_tx;
      }
      lock.lock();
      if (open) {
        reaper_idle_.store(false);
        reaper_cv_.wait_for(lock, kSnapshotAge / 2, [&] { return readers_stopping_; });
      } else {
        reaper_cv_.wait(lock, [&] { return reaper_wake_ || readers_stopping_; });
      }
      reaper_wake_ = false;
    }
  }

  static constexpr std::chrono::milliseconds kSnapshotAge{100};
  static constexpr std::size_t kMaxReaders = 64;
  static inline std::atomic<std::uint64_t> next_serial_{1};
  const std::uint64_t serial_ = next_serial_.fetch_add(1);
  std::mutex readers_mutex_;  // readers_ (the map, not the readers) and the reaper's state
  std::unordered_map<std::thread::id, std::unique_ptr<Reader>> readers_;
  std::unordered_map<std::thread::id, std::unique_ptr<Reader>> nowait_readers_;
  std::condition_variable reaper_cv_;
  std::thread reaper_;
  std::atomic<bool> reaper_idle_{true};
  bool reaper_wake_ = false;
  bool readers_stopping_ = false;

  static constexpr int kCheckpointFrames = 10000;  // ~40 MB of WAL
  static constexpr int kFullCheckpointFrames = 4 * kCheckpointFrames;
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_cv_;
  std::thread checkpointer_;
  bool checkpoint_wanted_ = false;
  bool stopping_ = false;
  std::string path_;
  int max_connections_;
  const bool nowait_;  // TryReadCurrent reads (a database file, the nowait VFS registered)
  std::shared_ptr<const ParamKeys> keys_;  // set by Migrate
 public:
  std::int64_t search_threshold = 0;  // StoreOptions::search_threshold

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> free_;
  int open_ = 0;
};

std::mutex& SqliteSession::WriteMutex() {
  return store_.write_mutex;
}

Result<std::unique_ptr<Connection>*> SqliteSession::AcquireWriter() {
  if (!store_.writer) {
    KAKEHASHI_TRY(auto made, store_.ConnectWriter());
    store_.writer = std::move(made);
  }
  return &store_.writer;
}

void SqliteSession::EndWrite() noexcept {
  if (!write_lock_.owns_lock()) return;
  std::swap(conn_, store_.writer);
  write_lock_ = {};
}

SqliteSession::~SqliteSession() {
  Rollback();
  store_.Release(std::move(conn_));
}

}  // namespace

void SetReaperEndingHookForTesting(void (*hook)()) {
  reaper_ending_hook.store(hook);
}

// SQLite's memory statistics off, once, before SQLite initialises (a later call is refused and
// changes nothing): with them on, every sqlite3_malloc and sqlite3_free takes one process-wide
// mutex, which the io threads' own reads (decision 0051), the reader threads, the commit thread
// and the checkpointer all contend for; an io thread that found it held by a preempted thread
// waited for that thread's next time slice (docs/performance.md, "io-thread reads: where the
// p99 went"). SQLite recommends it off (https://www.sqlite.org/compile.html, "Recommended
// Compile-time Options", SQLITE_DEFAULT_MEMSTATUS=0; set at run time with
// SQLITE_CONFIG_MEMSTATUS, https://www.sqlite.org/c3ref/c_config_covering_index_scan.html).
// Nothing here uses what it turns off (sqlite3_memory_used, the soft and hard heap limits).
void ConfigureSqliteProcess() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

Result<std::unique_ptr<Store>> OpenSqliteStore(std::string_view path, const StoreOptions& options) {
  ConfigureSqliteProcess();
  std::string file(path);
  if (file.empty()) return make_error_code(errc::kBadUrl);
  if (file == ":memory:") {
    // One shared in-memory database for every pooled connection of this Store.
    static std::atomic<int> counter{0};
    file =
        "file:kakehashi_mem_" + std::to_string(counter.fetch_add(1)) + "?mode=memory&cache=shared";
  }
  auto store = std::make_unique<SqliteStore>(file, std::max(1, options.max_connections));
  store->search_threshold = options.search_threshold;
  store->CountInitial();
  KAKEHASHI_TRY_VOID(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace kakehashi::gateway::store::detail
