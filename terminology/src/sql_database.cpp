#include "sql_database.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <sqlite3.h>

#include <filesystem>

namespace kakehashi::terminology {
namespace {

// Portable DDL: TEXT everywhere, composite primary keys, no AUTOINCREMENT/SERIAL, no
// dialect-specific types. Runs on SQLite >= 3.24 and PostgreSQL >= 9.5. The one dialect difference:
// SQLite gets "WITHOUT ROWID" after each table with a composite key (the primary key is then the
// table's only b-tree: ~15% faster master loads); TerminologySchemaSql(kPostgres) drops it.
constexpr std::string_view kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS term_concept (
  system TEXT NOT NULL,
  code TEXT NOT NULL,
  display TEXT NOT NULL,
  active TEXT NOT NULL,
  version TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (system, code, source)
){WITHOUT_ROWID};
CREATE TABLE IF NOT EXISTS term_property (
  system TEXT NOT NULL,
  code TEXT NOT NULL,
  property TEXT NOT NULL,
  value TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (system, code, property, value, source)
){WITHOUT_ROWID};
CREATE TABLE IF NOT EXISTS term_mapping (
  map_url TEXT NOT NULL,
  source_system TEXT NOT NULL,
  source_code TEXT NOT NULL,
  target_system TEXT NOT NULL,
  target_code TEXT NOT NULL,
  target_display TEXT NOT NULL,
  equivalence TEXT NOT NULL,
  version TEXT NOT NULL,
  comment TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (map_url, source_system, source_code, target_system, target_code, version)
){WITHOUT_ROWID};
CREATE TABLE IF NOT EXISTS term_load (
  source TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  file TEXT NOT NULL,
  version TEXT NOT NULL,
  concepts TEXT NOT NULL,
  mappings TEXT NOT NULL,
  loaded_at TEXT NOT NULL
);
)SQL";

}  // namespace

std::string TerminologySchemaSql(SqlDialect dialect) {
  constexpr std::string_view kMarker = "{WITHOUT_ROWID}";
  std::string out(kSchema);
  std::string_view replacement = dialect == SqlDialect::kSqlite ? " WITHOUT ROWID" : "";
  for (auto pos = out.find(kMarker); pos != std::string::npos; pos = out.find(kMarker, pos)) {
    out.replace(pos, kMarker.size(), replacement);
  }
  return out;
}

SqlStatement::~SqlStatement() {
  sqlite3_finalize(stmt_);
}

Result<int> SqlStatement::Run(std::initializer_list<std::string_view> params) {
  int index = 1;
  for (std::string_view p : params) {
    if (sqlite3_bind_text(stmt_, index++, p.data(), static_cast<int>(p.size()), SQLITE_STATIC) !=
        SQLITE_OK) {
      sqlite3_reset(stmt_);
      return errc::kDatabase;
    }
  }
  int rc;
  while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
  }
  int changes = sqlite3_changes(sqlite3_db_handle(stmt_));
  sqlite3_reset(stmt_);
  if (rc != SQLITE_DONE) return errc::kDatabase;
  return changes;
}

Result<std::unique_ptr<SqlDatabase>> SqlDatabase::Open(std::string_view url) {
  constexpr std::string_view kPrefix = "sqlite:";
  if (url.substr(0, kPrefix.size()) != kPrefix) return errc::kUnsupportedDb;
  std::string path(url.substr(kPrefix.size()));
  if (path.empty()) return errc::kUnsupportedDb;
  if (path != ":memory:") {
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return errc::kDatabase;
  }
  std::unique_ptr<SqlDatabase> out(new SqlDatabase(db));
  sqlite3_busy_timeout(db, 5000);
  // SQLite-only tuning, outside the portable schema: WAL lets readers (the gateway) continue
  // during a master load; NORMAL sync is safe with WAL; a 64 MiB page cache keeps the primary-key
  // indexes in memory while a 100,000-row master is inserted.
  if (path != ":memory:") {
    (void)out->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  }
  (void)out->Exec("PRAGMA cache_size=-65536");
  KAKEHASHI_TRY_VOID(out->Exec(TerminologySchemaSql(SqlDialect::kSqlite)));
  return out;
}

SqlDatabase::~SqlDatabase() {
  sqlite3_close(db_);
}

Result<void> SqlDatabase::Exec(std::string_view sql) {
  std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return errc::kDatabase;
  }
  return {};
}

Result<std::unique_ptr<SqlStatement>> SqlDatabase::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return errc::kDatabase;
  }
  return std::unique_ptr<SqlStatement>(new SqlStatement(stmt));
}

Result<void> SqlDatabase::Query(
    std::string_view sql, const std::vector<std::string_view>& params,
    const std::function<void(const std::vector<std::string_view>&)>& row) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return errc::kDatabase;
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].data(),
                      static_cast<int>(params[i].size()), SQLITE_STATIC);
  }
  std::vector<std::string_view> columns;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    int n = sqlite3_column_count(stmt);
    columns.clear();
    for (int i = 0; i < n; ++i) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      int len = sqlite3_column_bytes(stmt, i);
      columns.emplace_back(text == nullptr ? "" : text, static_cast<std::size_t>(len));
    }
    row(columns);
  }
  sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? Result<void>() : Result<void>(errc::kDatabase);
}

}  // namespace kakehashi::terminology
