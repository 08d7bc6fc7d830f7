// SQLite's `_text`/`_content` trigram index fed per flush (decision 0048): idx_text_fts holds
// exactly the idx_text rows at every commit, whatever savepoints were rolled back and searches
// run inside the transaction; a schema-7 store (session 12, insert trigger, docsize rows) is
// migrated and its rows stay searchable.
#include "kakehashi/gateway/store/store.hpp"
#include "store/sql_session.hpp"

#include "old_schema.hpp"
#include "test_support.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <set>
#include <string>

namespace kakehashi::gateway::store {
namespace {

using Set = std::set<std::string>;

// Runs `sql` on the raw database; returns the first column of the first row ("" when none) and
// the result code in `rc`.
std::string Raw(const std::filesystem::path& file, const std::string& sql, int* rc = nullptr) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  int code = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (code == SQLITE_OK) {
    code = sqlite3_step(stmt);
    if (code == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (rc != nullptr) *rc = code;
  return out;
}

// FTS5's check of an external-content table against its content (rank 1: every idx_text row
// must be in the index with its values, and nothing else).
void CheckFtsMatchesContent(const std::filesystem::path& file) {
  int rc = 0;
  Raw(file, "INSERT INTO idx_text_fts (idx_text_fts, rank) VALUES ('integrity-check', 1)", &rc);
  CHECK(rc == SQLITE_DONE);
}

ResourceRow Patient(const std::string& id, const std::string& family, std::int64_t version = 1) {
  return {
      "Patient",
      id,
      version,
      1000 + version,
      false,
      R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":")" + family + R"("}]})"};
}

void Put(Session& s, const ResourceRow& row) {
  IndexEntries entries;
  REQUIRE(DefaultIndexDefinition().extract(row, entries));
  REQUIRE(!entries.content.empty());
  REQUIRE(s.Write(row, entries));
}

// Patients whose `_content` has `term` (3+ characters: narrowed through idx_text_fts).
Set Content(Session& s, const std::string& term) {
  SearchQuery q;
  q.type = "Patient";
  q.count = 100;
  Predicate p;
  p.kind = Predicate::Kind::kText;
  p.param = "_content";
  p.terms = {term};
  q.where = {{p}};
  auto rows = s.Search(q);
  REQUIRE(rows);
  Set ids;
  for (const auto& r : *rows) ids.insert(r.id);
  return ids;
}

TEST_CASE("store: idx_text_fts keeps every committed idx_text row across savepoints (SQLite)",
          "[store][text]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  auto session = t->store->OpenSession();
  REQUIRE(session);
  Session& s = **session;
  REQUIRE(s.Begin());
  Put(s, Patient("a", "alphaname"));
  REQUIRE(s.Savepoint("outer"));
  Put(s, Patient("b", "betaname"));
  // A search inside the transaction sees its writes (the FTS rows are given to FTS5 first) …
  CHECK(Content(s, "alphaname") == Set{"a"});
  CHECK(Content(s, "betaname") == Set{"b"});
  REQUIRE(s.Savepoint("inner"));
  Put(s, Patient("c", "gammaname"));
  CHECK(Content(s, "gammaname") == Set{"c"});
  REQUIRE(s.ReleaseSavepoint("inner"));
  Put(s, Patient("d", "deltaname"));
  // … and rolling back to a savepoint that began before such a search undoes its FTS rows,
  // also those of "a", written before the savepoint: they must be given again.
  REQUIRE(s.RollbackToSavepoint("outer"));
  CHECK(Content(s, "betaname").empty());
  CHECK(Content(s, "alphaname") == Set{"a"});
  REQUIRE(s.Savepoint("next"));
  Put(s, Patient("e", "epsilonname"));
  REQUIRE(s.RollbackToSavepoint("next"));
  REQUIRE(s.Savepoint("next"));
  Put(s, Patient("f", "zetaname"));
  REQUIRE(s.ReleaseSavepoint("next"));
  REQUIRE(s.Commit());
  CheckFtsMatchesContent(t->file);
  CHECK(Raw(t->file, "SELECT COUNT(*) FROM idx_text") == "2");
  CHECK(Content(s, "alphaname") == Set{"a"});
  CHECK(Content(s, "zetaname") == Set{"f"});
  for (const char* gone : {"betaname", "gammaname", "deltaname", "epsilonname"}) {
    INFO(gone);
    CHECK(Content(s, gone).empty());
  }
  // An update in the same transaction as the first version, and a transaction rolled back.
  REQUIRE(s.Begin());
  Put(s, Patient("g", "firstversion"));
  Put(s, Patient("g", "secondversion", 2));
  Put(s, Patient("a", "iotaname", 2));
  REQUIRE(s.Commit());
  REQUIRE(s.Begin());
  Put(s, Patient("h", "kappaname"));
  CHECK(Content(s, "kappaname") == Set{"h"});
  s.Rollback();
  CheckFtsMatchesContent(t->file);
  CHECK(Content(s, "firstversion").empty());
  CHECK(Content(s, "secondversion") == Set{"g"});
  CHECK(Content(s, "alphaname").empty());
  CHECK(Content(s, "iotaname") == Set{"a"});
  CHECK(Content(s, "kappaname").empty());
  // The next transaction does not give FTS5 the rolled-back one's rows.
  REQUIRE(s.Begin());
  Put(s, Patient("i", "lambdaname"));
  REQUIRE(s.Commit());
  CheckFtsMatchesContent(t->file);
  CHECK(Content(s, "lambdaname") == Set{"i"});
}

TEST_CASE("store: a schema-7 SQLite store's text index is migrated (decision 0048)",
          "[store][text][migration]") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kakehashi-v7-" + testing::RandomSuffix() + ".sqlite");
  {
    // Written as session 12 did: schema 7, its insert trigger filling idx_text_fts.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    std::vector<std::string> statements =
        testing::SqliteSchemaStatements(7, "2026-12-02T00:00:00Z");
    statements.push_back(
        "INSERT INTO resources (type, id, version, last_updated, deleted, json, rk) VALUES "
        "('Patient', 'old', 1, 1000, 0, "
        "'{\"resourceType\":\"Patient\",\"id\":\"old\",\"name\":[{\"family\":\"oldname\"}]}', 1)");
    statements.push_back(
        "INSERT INTO history (type, id, version, last_updated, deleted, json) SELECT type, id, "
        "version, last_updated, deleted, json FROM resources");
    statements.push_back("INSERT INTO idx_text (rk, narrative, content) VALUES (1, '', 'oldname')");
    for (const auto& sql : statements) {
      INFO(sql);
      REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_close(db);
  }
  CHECK(Raw(file, "SELECT COUNT(*) FROM idx_text_fts_docsize") == "1");
  {
    StoreOptions options;
    options.reindex_on_open = false;  // the migration alone makes the old row searchable
    auto store = OpenStore("sqlite:" + file.string(), options);
    REQUIRE(store);
    CHECK(Raw(file, "SELECT MAX(version) FROM kakehashi_migrations") ==
          std::to_string(detail::kSchemaVersion));
    CHECK(Raw(file, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'idx_text_ai'") == "0");
    CHECK(Raw(file, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'idx_text_ad'") == "1");
    CHECK(Raw(file, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'idx_text_fts_docsize'") ==
          "0");
    CheckFtsMatchesContent(file);
    auto session = (*store)->OpenSession();
    REQUIRE(session);
    Session& s = **session;
    CHECK(Content(s, "oldname") == Set{"old"});
    // Written after the migration: one FTS row each (no trigger adding a second).
    REQUIRE(s.Begin());
    Put(s, Patient("old", "renamed", 2));
    Put(s, Patient("new", "newname"));
    REQUIRE(s.Commit());
    CheckFtsMatchesContent(file);
    CHECK(Content(s, "oldname").empty());
    CHECK(Content(s, "renamed") == Set{"old"});
    CHECK(Content(s, "newname") == Set{"new"});
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

}  // namespace
}  // namespace kakehashi::gateway::store
