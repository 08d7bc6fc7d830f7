// Schema migrations on open: a database written by an older kakehashi is brought to the current
// schema version (gateway/src/store/sql_session.hpp) and keeps answering the same searches.
#include "kakehashi/gateway/store/store.hpp"
#include "store/sql_session.hpp"

#include "old_schema.hpp"
#include "test_support.hpp"

#include <sqlite3.h>
#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif

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

// The rows kakehashi wrote at schema version 2 (after SchemaV1 and SchemaV2): combo-code rows
// beside the code rows, a duplicate status row, a string value with its prefixes.
std::vector<std::string> Version2Rows() {
  return {
      "INSERT INTO resources (type, id, version, last_updated, deleted, json) VALUES "
      "('Observation', 'o1', 1, 1000, 0, '{\"resourceType\":\"Observation\",\"id\":\"o1\"}'), "
      "('Patient', 'p1', 1, 900, 0, '{\"resourceType\":\"Patient\",\"id\":\"p1\"}')",
      "INSERT INTO history (type, id, version, last_updated, deleted, json) SELECT type, id, "
      "version, last_updated, deleted, json FROM resources",
      "INSERT INTO idx_token VALUES ('Observation', 'o1', 'code', 'http://loinc.org', "
      "'2345-7'), ('Observation', 'o1', 'combo-code', 'http://loinc.org', '2345-7'), "
      "('Observation', 'o1', 'status', '', 'final'), ('Observation', 'o1', 'status', '', "
      "'final')",
      "INSERT INTO idx_ref VALUES ('Observation', 'o1', 'subject', 'Patient', 'p1'), "
      "('Observation', 'o1', 'patient', 'Patient', 'p1')",
      "INSERT INTO idx_quantity VALUES ('Observation', 'o1', 'value-quantity', 5.4, '', "
      "'mg/dL'), ('Observation', 'o1', 'combo-value-quantity', 5.4, '', 'mg/dL')",
      "INSERT INTO idx_string VALUES ('Patient', 'p1', 'family', 'やまだ')",
      "INSERT INTO idx_string_prefix VALUES ('Patient', 'p1', 'family', 'や', 900), ('Patient', "
      "'p1', 'family', 'やま', 900), ('Patient', 'p1', 'family', 'やまだ', 900)",
  };
}

// What a migrated store must answer, then a new resource and an update of a migrated one.
void CheckMigrated(Store& store) {
  auto session = store.OpenSession();
  REQUIRE(session);
  Session& s = **session;
  CHECK(CountMatches(s, "code", "2345-7") == 1);
  CHECK(CountMatches(s, "combo-code", "2345-7") == 1);
  CHECK(CountMatches(s, "combo-code", "9999-9") == 0);
  CHECK(CountMatches(s, "status", "final") == 1);
  CHECK(CountMatches(s, "patient", "p1", Predicate::Kind::kReference) == 1);
  CHECK(CountMatches(s, "patient", "p2", Predicate::Kind::kReference) == 0);
  CHECK(CountMatches(s, "subject", "p1", Predicate::Kind::kReference) == 1);
  {
    SearchQuery q;  // a string prefix search: driven by idx_string_prefix
    q.type = "Patient";
    Predicate p;
    p.kind = Predicate::Kind::kString;
    p.param = "family";
    p.value = "やま";
    q.where = {{p}};
    auto rows = s.Search(q);
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].id == "p1");
  }
  {
    SearchQuery q;  // a quantity: value-quantity=5.4
    q.type = "Observation";
    Predicate p;
    p.kind = Predicate::Kind::kQuantity;
    p.param = "value-quantity";
    p.number_low = 5.35;
    p.number_high = 5.45;
    q.where = {{p}};
    auto n = s.Count(q);
    REQUIRE(n);
    CHECK(*n == 1);
    q.where[0][0].param = "combo-value-quantity";
    n = s.Count(q);
    REQUIRE(n);
    CHECK(*n == 1);
  }
  auto read = s.Read("Observation", "o1");
  REQUIRE(read);
  REQUIRE(read->has_value());
  CHECK((*read)->json == R"({"resourceType":"Observation","id":"o1"})");
  // A new resource gets a key of its own; the update of o1 replaces o1's rows only.
  REQUIRE(s.Begin());
  IndexEntries o2;
  o2.tokens = {{"code", "http://loinc.org", "2345-7"}};
  REQUIRE(s.Write({"Observation", "o2", 1, 2000, false, R"({"resourceType":"Observation"})"}, o2));
  IndexEntries o1;
  o1.tokens = {{"code", "http://loinc.org", "1111-1"}};
  REQUIRE(s.Write({"Observation", "o1", 2, 2000, false, R"({"resourceType":"Observation"})"}, o1));
  REQUIRE(s.Commit());
  CHECK(CountMatches(s, "code", "2345-7") == 1);
  CHECK(CountMatches(s, "code", "1111-1") == 1);
  CHECK(CountMatches(s, "status", "final") == 0);
  CHECK(CountMatches(s, "subject", "p1", Predicate::Kind::kReference) == 0);
  // Schema 9: the migrated history keeps the replaced version's JSON (copied from resources by
  // the update) and the new one's.
  {
    auto v1 = s.ReadVersion("Observation", "o1", 1);
    REQUIRE(v1);
    REQUIRE(v1->has_value());
    CHECK((*v1)->json == R"({"resourceType":"Observation","id":"o1"})");
    auto v2 = s.ReadVersion("Observation", "o1", 2);
    REQUIRE(v2);
    REQUIRE(v2->has_value());
    CHECK((*v2)->json == R"({"resourceType":"Observation"})");
    HistoryQuery hq;
    hq.type = "Observation";
    hq.id = "o1";
    auto h = s.History(hq);
    REQUIRE(h);
    REQUIRE(h->size() == 2);
    CHECK((*h)[0].row.version == 2);
    CHECK((*h)[1].row.json == R"({"resourceType":"Observation","id":"o1"})");
  }
  SearchQuery q;
  q.type = "Observation";
  Predicate p;
  p.param = "code";
  p.value = "2345-7";
  p.kind = Predicate::Kind::kToken;
  q.where = {{p}};
  auto rows = s.Search(q);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].id == "o2");
}

TEST_CASE(
    "store: a schema version 2 SQLite database is migrated to the current version when opened",
    "[store]") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kakehashi-gw-v2-" + testing::RandomSuffix() + ".sqlite");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    std::vector<std::string> statements = {
        "CREATE TABLE kakehashi_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT "
        "NULL)",
        "INSERT INTO kakehashi_migrations VALUES (1, '2026-11-30T00:00:00Z'), (2, "
        "'2026-12-01T00:00:00Z')"};
    for (auto& sql : detail::SchemaV1(detail::Dialect::kSqlite)) statements.push_back(sql);
    for (auto& sql : detail::SchemaV2(detail::Dialect::kSqlite)) statements.push_back(sql);
    for (auto& sql : Version2Rows()) statements.push_back(sql);
    for (const auto& sql : statements) {
      INFO(sql);
      REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_close(db);
  }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    CHECK(RawQuery(db, "SELECT rowid FROM resources WHERE id = 'p1'") == "2");
    sqlite3_close(db);
  }
  // The fixture's JSON does not hold its rows' values: the migration alone, no re-index.
  StoreOptions options;
  options.reindex_on_open = false;
  {
    auto store = OpenStore("sqlite:" + file.string(), options);
    REQUIRE(store);
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    CHECK(RawQuery(db, "SELECT MAX(version) FROM kakehashi_migrations") ==
          std::to_string(detail::kSchemaVersion));
    // v6: the composite rows' table (empty: the stored resources are not indexed again).
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'idx_composite'") == "1");
    // v7: the `_text`/`_content` rows, their FTS5 trigram index and its delete trigger
    // (decision 0041); v8: no insert trigger (decision 0048: the session feeds the index).
    CHECK(RawQuery(db,
                   "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('idx_text', "
                   "'idx_text_fts', 'idx_text_ad')") == "3");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'idx_text_ai'") == "0");
    // v5: keyed index tables of (pid, value…, rk), duplicates and derived rows gone; the
    // resources keep their rowid as rk.
    for (const char* table :
         {"idx_token", "idx_string", "idx_string_prefix", "idx_date", "idx_ref", "idx_quantity"}) {
      INFO(table);
      CHECK(RawQuery(db, std::string("SELECT sql LIKE '%WITHOUT ROWID' FROM sqlite_schema WHERE "
                                     "name = '") +
                             table + "'") == "1");
      CHECK(RawQuery(db, std::string("SELECT COUNT(*) FROM sqlite_schema WHERE name = '") + table +
                             "_by_resource'") == "1");
      CHECK(RawQuery(db, std::string("SELECT COUNT(*) FROM pragma_table_info('") + table +
                             "') WHERE name IN ('type', 'param')") == "0");
    }
    CHECK(RawQuery(db, "SELECT rk FROM resources WHERE id = 'p1'") == "2");
    CHECK(RawQuery(db,
                   "SELECT COUNT(*) FROM idx_token t JOIN search_keys k ON k.pid = t.pid "
                   "WHERE k.type = 'Observation' AND k.param = 'status'") == "1");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM search_keys WHERE param LIKE 'combo-%'") == "0");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_token") == "2");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_quantity") == "1");
    CHECK(RawQuery(db,
                   "SELECT group_concat(k.param) FROM idx_ref x JOIN search_keys k ON "
                   "k.pid = x.pid") == "subject");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM idx_string_prefix WHERE rk = 2 AND id = 'p1'") == "3");
    sqlite3_close(db);
    CheckMigrated(**store);
  }
  // Opened again: nothing to migrate, the keys are the same.
  {
    auto store = OpenStore("sqlite:" + file.string(), options);
    REQUIRE(store);
    auto session = (*store)->OpenSession();
    REQUIRE(session);
    CHECK(CountMatches(**session, "code", "1111-1") == 1);
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

TEST_CASE(
    "store: a schema version 7 SQLite history keeps every row, its seq and each version's JSON "
    "in schema 9",
    "[store]") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kakehashi-gw-v7-" + testing::RandomSuffix() + ".sqlite");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    std::vector<std::string> statements =
        testing::SqliteSchemaStatements(7, "2026-12-01T00:00:00Z");
    // What session 12 wrote: Patient/p1 updated once, Observation/o1, Patient/p2 deleted; the
    // history has every version with its JSON (the current ones twice), seq in write order.
    statements.push_back(
        "INSERT INTO resources (rk, type, id, version, last_updated, deleted, json) VALUES "
        "(1, 'Patient', 'p1', 2, 300, 0, '{\"id\":\"p1\",\"v\":2}'), "
        "(2, 'Observation', 'o1', 1, 200, 0, '{\"id\":\"o1\"}'), "
        "(3, 'Patient', 'p2', 2, 500, 1, '')");
    statements.push_back(
        "INSERT INTO history (seq, type, id, version, last_updated, deleted, json) VALUES "
        "(1, 'Patient', 'p1', 1, 100, 0, '{\"id\":\"p1\",\"v\":1}'), "
        "(2, 'Observation', 'o1', 1, 200, 0, '{\"id\":\"o1\"}'), "
        "(3, 'Patient', 'p1', 2, 300, 0, '{\"id\":\"p1\",\"v\":2}'), "
        "(4, 'Patient', 'p2', 1, 400, 0, '{\"id\":\"p2\"}'), "
        "(5, 'Patient', 'p2', 2, 500, 1, '')");
    for (const auto& sql : statements) {
      INFO(sql);
      REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_close(db);
  }
  StoreOptions options;
  options.reindex_on_open = false;  // no index rows: the history alone
  {
    auto store = OpenStore("sqlite:" + file.string(), options);
    REQUIRE(store);
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    CHECK(RawQuery(db, "SELECT MAX(version) FROM kakehashi_migrations") ==
          std::to_string(detail::kSchemaVersion));
    CHECK(RawQuery(db,
                   "SELECT group_concat(seq || ':' || rk || ':' || version, ',') FROM (SELECT * "
                   "FROM history ORDER BY seq)") == "1:1:1,2:2:1,3:1:2,4:3:1,5:3:2");
    // The current versions' JSON is resources.json only.
    CHECK(RawQuery(db,
                   "SELECT group_concat(seq, ',') FROM (SELECT seq FROM history WHERE json IS "
                   "NULL ORDER BY seq)") == "2,3,5");
    CHECK(RawQuery(db,
                   "SELECT COUNT(*) FROM pragma_table_info('history') WHERE name IN "
                   "('type', 'id')") == "0");
    CHECK(RawQuery(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'history_by_version'") ==
          "1");
    sqlite3_close(db);
    auto session = (*store)->OpenSession();
    REQUIRE(session);
    Session& s = **session;
    auto version = [&](const char* type, const char* id, std::int64_t v) {
      auto row = s.ReadVersion(type, id, v);
      REQUIRE(row);
      REQUIRE(row->has_value());
      CHECK((*row)->type == type);
      CHECK((*row)->id == id);
      CHECK((*row)->version == v);
      return **row;
    };
    CHECK(version("Patient", "p1", 1).json == R"({"id":"p1","v":1})");
    CHECK(version("Patient", "p1", 2).json == R"({"id":"p1","v":2})");
    CHECK(version("Observation", "o1", 1).json == R"({"id":"o1"})");
    CHECK(version("Patient", "p2", 2).deleted);
    auto none = s.ReadVersion("Patient", "p1", 3);
    REQUIRE(none);
    CHECK(!none->has_value());
    HistoryQuery all;
    auto h = s.History(all);
    REQUIRE(h);
    REQUIRE(h->size() == 5);
    CHECK((*h)[0].seq == 5);
    CHECK((*h)[0].row.deleted);
    CHECK((*h)[2].seq == 3);
    CHECK((*h)[2].row.json == R"({"id":"p1","v":2})");
    CHECK((*h)[4].row.json == R"({"id":"p1","v":1})");
    HistoryQuery patients;
    patients.type = "Patient";
    patients.before_seq = 5;
    patients.since_us = 200;
    h = s.History(patients);
    REQUIRE(h);
    REQUIRE(h->size() == 2);
    CHECK((*h)[0].row.id == "p2");
    CHECK((*h)[1].row.id == "p1");
    CHECK((*h)[1].row.version == 2);
    // An update: version 2's JSON moves to its history row; the next seq follows the migrated.
    REQUIRE(s.Begin());
    REQUIRE(s.Write({"Patient", "p1", 3, 600, false, R"({"id":"p1","v":3})"}, IndexEntries{}));
    REQUIRE(s.Commit());
    CHECK(version("Patient", "p1", 2).json == R"({"id":"p1","v":2})");
    CHECK(version("Patient", "p1", 3).json == R"({"id":"p1","v":3})");
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    CHECK(RawQuery(db, "SELECT json FROM history WHERE seq = 3") == R"({"id":"p1","v":2})");
    CHECK(RawQuery(db,
                   "SELECT seq || ':' || (json IS NULL) FROM history WHERE rk = 1 AND "
                   "version = 3") == "6:1");
    sqlite3_close(db);
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

TEST_CASE("store: a schema version 9 SQLite history gains the method column (schema 10)",
          "[store]") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kakehashi-gw-v9-" + testing::RandomSuffix() + ".sqlite");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    std::vector<std::string> statements =
        testing::SqliteSchemaStatements(9, "2026-12-02T00:00:00Z");
    // Patient/p1 written twice by session 13 (no method recorded).
    statements.push_back(
        "INSERT INTO resources (rk, type, id, version, last_updated, deleted, json) VALUES "
        "(1, 'Patient', 'p1', 2, 300, 0, '{\"id\":\"p1\",\"v\":2}')");
    statements.push_back(
        "INSERT INTO history (seq, rk, version, last_updated, deleted, json) VALUES "
        "(1, 1, 1, 100, 0, '{\"id\":\"p1\",\"v\":1}'), (2, 1, 2, 300, 0, NULL)");
    for (const auto& sql : statements) {
      INFO(sql);
      REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_close(db);
  }
  StoreOptions options;
  options.reindex_on_open = false;
  {
    auto store = OpenStore("sqlite:" + file.string(), options);
    REQUIRE(store);
    auto session = (*store)->OpenSession();
    REQUIRE(session);
    Session& s = **session;
    // The old rows say nothing (the handler infers POST/PUT from the version, as before).
    auto h = s.History(HistoryQuery{});
    REQUIRE(h);
    REQUIRE(h->size() == 2);
    CHECK((*h)[0].row.method == WriteMethod::kUnknown);
    CHECK((*h)[1].row.method == WriteMethod::kUnknown);
    CHECK((*h)[1].row.json == R"({"id":"p1","v":1})");
    // A new version records its method.
    REQUIRE(s.Begin());
    ResourceRow patched{"Patient", "p1", 3, 600, false, R"({"id":"p1","v":3})"};
    patched.method = WriteMethod::kPatch;
    REQUIRE(s.Write(patched, IndexEntries{}));
    REQUIRE(s.Commit());
    h = s.History(HistoryQuery{});
    REQUIRE(h);
    REQUIRE(h->size() == 3);
    CHECK((*h)[0].row.method == WriteMethod::kPatch);
    CHECK((*h)[0].row.version == 3);
    CHECK((*h)[1].row.method == WriteMethod::kUnknown);
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
    CHECK(RawQuery(db, "SELECT MAX(version) FROM kakehashi_migrations") ==
          std::to_string(detail::kSchemaVersion));
    CHECK(RawQuery(db,
                   "SELECT group_concat(COALESCE(method, 'NULL'), ',') FROM (SELECT method "
                   "FROM history ORDER BY seq)") == "NULL,NULL,PATCH");
    sqlite3_close(db);
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

#ifdef KAKEHASHI_HAVE_POSTGRES
TEST_CASE(
    "store: a schema version 4 PostgreSQL schema is migrated to the current version when opened",
    "[store][.postgres]") {
  const std::string url = testing::PostgresUrl();
  if (url.empty()) FAIL("no PostgreSQL: set KAKEHASHI_TEST_PG_URL or run via ctest");
  const std::string schema = "t_" + testing::RandomSuffix();
  PGconn* conn = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(conn) == CONNECTION_OK);
  auto exec = [conn](const std::string& sql) {
    INFO(sql);
    PGresult* res = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(res);
    std::string value;
    if (status == PGRES_TUPLES_OK && PQntuples(res) > 0) value = PQgetvalue(res, 0, 0);
    PQclear(res);
    REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
    return value;
  };
  exec("SET client_min_messages = warning");
  exec("CREATE SCHEMA " + schema);
  exec("SET search_path TO " + schema);
  exec(
      "CREATE TABLE kakehashi_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ "
      "NOT NULL DEFAULT now())");
  for (int v = 1; v <= 4; ++v) {
    for (const auto& sql : detail::Schema(v, detail::Dialect::kPostgres)) exec(sql);
    exec("INSERT INTO kakehashi_migrations (version) VALUES (" + std::to_string(v) + ")");
  }
  for (auto& sql : Version2Rows()) exec(sql);
  StoreOptions options;
  options.postgres_schema = schema;
  options.reindex_on_open = false;  // the fixture's JSON does not hold its rows' values
  auto store = OpenStore(url, options);
  REQUIRE(store);
  CHECK(exec("SELECT MAX(version) FROM kakehashi_migrations") ==
        std::to_string(detail::kSchemaVersion));
  CHECK(exec("SELECT COUNT(*) FROM idx_composite") == "0");
  CHECK(exec("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '" + schema +
             "' AND table_name LIKE 'idx\\_%' AND column_name IN ('type', 'param')") == "0");
  CHECK(exec("SELECT COUNT(DISTINCT rk) FROM resources") == "2");
  CHECK(exec("SELECT COUNT(*) FROM idx_ref") == "1");
  CheckMigrated(**store);
  // Sequence values continue after the migrated rows.
  CHECK(exec("SELECT COUNT(*) FROM resources WHERE id = 'o2' AND rk > (SELECT MAX(rk) FROM "
             "resources WHERE id <> 'o2')") == "1");
  exec("DROP SCHEMA " + schema + " CASCADE");
  PQfinish(conn);
}
#endif

}  // namespace
}  // namespace kakehashi::gateway::store
