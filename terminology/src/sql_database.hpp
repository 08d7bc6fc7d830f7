// Private SQL layer of the terminology store. SQLite only in this build; every statement is
// portable SQL (TEXT columns, $n parameters, INSERT ... ON CONFLICT DO NOTHING/UPDATE) so the same
// text runs on PostgreSQL (docs/terminology.md "Database").
#pragma once

#include "kakehashi/common/result.hpp"

#include <functional>
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
  // Binds $1..$n as text (all columns are TEXT), runs to completion, resets.
  Result<void> Run(const std::vector<std::string_view>& params);

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

// The schema (portable DDL, idempotent).
std::string_view TerminologySchemaSql();

}  // namespace kakehashi::terminology
