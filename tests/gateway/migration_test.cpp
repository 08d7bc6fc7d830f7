// Schema migrations on open: a database written by an older kakehashi is brought to the current
// schema version (gateway/src/store/sql_session.hpp) and keeps answering the same searches.
#include "kakehashi/gateway/store/store.hpp"
#include "store/sql_session.hpp"

#include "test_support.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <string>

namespace kakehashi::gateway::store {
namespace {

// Runs `sql` on the raw database; returns the first column of the first row ("" when none).
std::string RawQuery(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::string out;
  const int rc = sqlite3_step(stmt);
  REQUIRE((rc == SQLITE_ROW || rc == SQLITE_DONE));
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return out;
}

std::int64_t CountMatches(Session& session, std::string param, std::string code,
                          Predicate::Kind kind = Predicate::Kind::kToken) {
  SearchQuery q;
  q.type = "Observation";
  Predicate p;
  p.kind = kind;
  p.param = std::move(param);
  p.value = std::move(code);
  q.where = {{p}};
  auto n = session.Count(q);
  REQUIRE(n);
  auto rows = session.Search(q);
  REQUIRE(rows);
  CHECK(static_cast<std::int64_t>(rows->size()) == *n);
  return *n;
}

TEST_CASE("store: a schema version 2 SQLite database is migrated to version 4 when opened",
          "[store]") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kakehashi-gw-v2-" + testing::RandomSuffix() + ".sqlite");
  {
    // What kakehashi wrote at schema version 2: combo-code rows beside the code rows.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    std::vector<std::string> statements = {
        "CREATE TABLE kakehashi_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT "
        "NULL)"};
    for (auto& sql : detail::SchemaV1(detail::Dialect::kSqlite)) statements.push_back(sql);
    for (auto& sql : detail::SchemaV2(detail::Dialect::kSqlite)) statements.push_back(sql);
    for (const char* sql :
         {"INSERT INTO kakehashi_migrations VALUES (1, '2026-11-30T00:00:00Z'), (2, "
          "'2026-12-01T00:00:00Z')",
          "INSERT INTO resources VALUES ('Observation', 'o1', 1, 1000, 0, "
          "'{\"resourceType\":\"Observation\",\"id\":\"o1\"}')",
          "INSERT INTO history (type, id, version, last_updated, deleted, json) SELECT type, id, "
          "version, last_updated, deleted, json FROM resources",
          "INSERT INTO idx_token VALUES ('Observation', 'o1', 'code', 'http://loinc.org', "
          "'2345-7'), ('Observation', 'o1', 'combo-code', 'http://loinc.org', '2345-7'), "
          "('Observation', 'o1', 'status', '', 'final'), ('Observation', 'o1', 'status', '', "
          "'final')",
          "INSERT INTO idx_ref VALUES ('Observation', 'o1', 'subject', 'Patient', 'p1'), "
          "('Observation', 'o1', 'patient', 'Patient', 'p1')",
          "INSERT INTO idx_quantity VALUES ('Observation', 'o1', 'value-quantity', 5.4, '', "
          "'mg/dL'), ('Observation', 'o1', 'combo-value-quantity', 5.4, '', 'mg/dL')"}) {
      statements.emplace_back(sql);
    }
    for (const auto& sql : statements) {
      INFO(sql);
      REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_close(db);
  }
  {
    auto store = OpenStore("sqlite:" + file.string());
    REQUIRE(store);
    auto session = (*store)->OpenSession();
    REQUIRE(session);
    CHECK(CountMatches(**session, "code", "2345-7") == 1);
    CHECK(CountMatches(**session, "combo-code", "2345-7") == 1);
    CHECK(CountMatches(**session, "combo-code", "9999-9") == 0);
    CHECK(CountMatches(**session, "patient", "p1", Predicate::Kind::kReference) == 1);
    CHECK(CountMatches(**session, "patient", "p2", Predicate::Kind::kReference) == 0);
    CHECK(CountMatches(**session, "subject", "p1", Predicate::Kind::kReference) == 1);
    auto read = (*session)->Read("Observation", "o1");
    REQUIRE(read);
    REQUIRE(read->has_value());
    CHECK((*read)->json == R"({"resourceType":"Observation","id":"o1"})");
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
  CHECK(RawQuery(db, "SELECT MAX(version) FROM kakehashi_migrations") == "4");
  // v4: the index tables are keyed by their rows, duplicates gone, the by-resource index kept.
  for (const char* table : {"idx_token", "idx_string", "idx_date", "idx_ref", "idx_quantity"}) {
    INFO(table);
    CHECK(RawQuery(db, std::string("SELECT sql LIKE '%WITHOUT ROWID' FROM sqlite_schema WHERE "
                                   "name = '") +
                           table + "'") == "1");
    CHECK(RawQuery(db, std::string("SELECT COUNT(*) FROM sqlite_schema WHERE name = '") + table +
                           "_by_resource'") == "1");
  }
  CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_token WHERE param = 'status'") == "1");
  CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_token WHERE param = 'combo-code'") == "0");
  CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_token WHERE param = 'code'") == "1");
  CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_quantity WHERE param = 'combo-value-quantity'") ==
        "0");
  CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_quantity") == "1");
  CHECK(RawQuery(db, "SELECT group_concat(param) FROM idx_ref") == "subject");
  sqlite3_close(db);
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

}  // namespace
}  // namespace kakehashi::gateway::store
