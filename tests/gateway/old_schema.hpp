// Old stores for the migration tests: the statements that create an SQLite database as schema
// `version` left it (every migration 1..version and its kakehashi_migrations row).
#pragma once

#include "store/sql_session.hpp"

#include <string>
#include <vector>

namespace kakehashi::gateway::testing {

inline std::vector<std::string> SqliteSchemaStatements(int version, const std::string& applied_at) {
  std::vector<std::string> statements = {
      "CREATE TABLE kakehashi_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"};
  for (int v = 1; v <= version; ++v) {
    for (auto& sql : store::detail::Schema(v, store::detail::Dialect::kSqlite)) {
      statements.push_back(sql);
    }
    statements.push_back("INSERT INTO kakehashi_migrations VALUES (" + std::to_string(v) + ", '" +
                         applied_at + "')");
  }
  return statements;
}

}  // namespace kakehashi::gateway::testing
