// Private SQL layer of the terminology store. SQLite only in this build; every statement is
// portable SQL (TEXT columns, $n parameters, INSERT ... ON CONFLICT DO NOTHING/UPDATE) so the same
// text runs on PostgreSQL (docs/terminology.md "Database").
#pragma once

#include "kakehashi/common/result.hpp"

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace kakehashi::terminology {

class SqlStatement {
 public:
  ~SqlStatement();
  SqlStatement(const SqlStatement&) = delete;
  SqlStatement& operator=(const SqlStatement&) = delete;
  // Binds $1..$n as text (all columns are TEXT), runs to completion, resets. Returns the number
  // of rows changed (0 when ON CONFLICT DO NOTHING skipped the row).
  Result<int> Run(std::initializer_list<std::string_view> params);

 private:
  friend class SqlDatabase;
  explicit SqlStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* stmt_;
};

class SqlDatabase {
 public:
  // url: "sqlite::memory:" or "sqlite:PATH". errc::kUnsupportedDb for other schemes.
  static Result<std::unique_ptr<SqlDatabase>> Open(std::string_view url);
  ~SqlDatabase();
  SqlDatabase(const SqlDatabase&) = delete;
  SqlDatabase& operator=(const SqlDatabase&) = delete;

  Result<void> Exec(std::string_view sql);  // one or more statements, no parameters
  Result<std::unique_ptr<SqlStatement>> Prepare(std::string_view sql);
  // Runs a query; `row` receives the columns of each row as text (NULL -> "").
  Result<void> Query(std::string_view sql, const std::vector<std::string_view>& params,
                     const std::function<void(const std::vector<std::string_view>&)>& row);

 private:
  explicit SqlDatabase(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

enum class SqlDialect { kSqlite, kPostgres };
// The schema (idempotent DDL; identical for both dialects except SQLite's WITHOUT ROWID).
std::string TerminologySchemaSql(SqlDialect dialect);

// The write statements of TerminologyStore::Put ($n parameters, all text). Kept here so the
// PostgreSQL test (tests/terminology, [.postgres]) runs exactly these texts.
inline constexpr std::string_view kInsertConcept =
    "INSERT INTO term_concept (system, code, display, active, version, source) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (system, code, source) DO UPDATE SET "
    "display = excluded.display, active = excluded.active, version = excluded.version";
inline constexpr std::string_view kInsertProperty =
    "INSERT INTO term_property (system, code, property, value, source) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
inline constexpr std::string_view kInsertMapping =
    "INSERT INTO term_mapping (map_url, source_system, source_code, target_system, target_code, "
    "target_display, equivalence, version, comment, source) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING";
inline constexpr std::string_view kUpsertLoad =
    "INSERT INTO term_load (source, kind, file, version, concepts, mappings, loaded_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, "
    "file = excluded.file, version = excluded.version, concepts = excluded.concepts, "
    "mappings = excluded.mappings, loaded_at = excluded.loaded_at";
inline constexpr std::string_view kDeleteConcepts = "DELETE FROM term_concept WHERE source = $1";
inline constexpr std::string_view kDeleteProperties = "DELETE FROM term_property WHERE source = $1";
inline constexpr std::string_view kDeleteMappings = "DELETE FROM term_mapping WHERE source = $1";

}  // namespace kakehashi::terminology
