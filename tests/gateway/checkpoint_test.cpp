// Import checkpoints (store.hpp Session::ReadCheckpoints/WriteCheckpoint) and
// Handler::Transaction: a checkpoint commits or rolls back together with the Bundle's resources.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "test_support.hpp"

#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kakehashi::gateway {
namespace {

using testing::Backend;
using testing::Req;

std::string PatientBundle(const std::string& id) {
  return R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":")" +
         id + R"(","gender":"male"},"request":{"method":"PUT","url":"Patient/)" + id + R"("}}]})";
}

void CheckpointsCommitWithResources(Backend backend) {
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});

  {
    auto s = t->store->OpenSession();
    REQUIRE(s);
    auto none = (*s)->ReadCheckpoints("ssmix2:/root");
    REQUIRE(none);
    CHECK(none->empty());
    // Outside a transaction a checkpoint cannot be written.
    CHECK((*s)->WriteCheckpoint("ssmix2:/root", "000/000/0000001", "f1").error() ==
          store::errc::kNotInTransaction);
  }

  // A successful transaction stores resource and checkpoint.
  Response ok = h.Transaction(Req("POST", "/fhir", PatientBundle("p1")), [](store::Session& s) {
    return s.WriteCheckpoint("ssmix2:/root", "000/000/0000001", "f1");
  });
  INFO(ok.body);
  REQUIRE(ok.status == 200);
  CHECK(h.Handle(Req("GET", "/fhir/Patient/p1")).status == 200);

  // A failing hook rolls the resources back too.
  Response bad = h.Transaction(Req("POST", "/fhir", PatientBundle("p2")), [](store::Session&) {
    return Result<void>(make_error_code(store::errc::kQueryFailed));
  });
  CHECK(bad.status == 500);
  CHECK(h.Handle(Req("GET", "/fhir/Patient/p2")).status == 404);

  // A failing entry (resource id differs from the URL) rolls the checkpoint back.
  std::string mismatched = PatientBundle("p3");
  mismatched.replace(mismatched.find("Patient/p3"), 10, "Patient/p4");
  bool called = false;
  Response rejected = h.Transaction(Req("POST", "/fhir", mismatched), [&](store::Session& s) {
    called = true;
    return s.WriteCheckpoint("ssmix2:/root", "000/000/0000003", "f3");
  });
  CHECK(rejected.status == 400);
  CHECK_FALSE(called);

  // Re-writing a unit replaces its fingerprint.
  Response again = h.Transaction(Req("POST", "/fhir", PatientBundle("p1")), [](store::Session& s) {
    return s.WriteCheckpoint("ssmix2:/root", "000/000/0000001", "f2");
  });
  REQUIRE(again.status == 200);

  auto s = t->store->OpenSession();
  REQUIRE(s);
  auto rows = (*s)->ReadCheckpoints("ssmix2:/root");
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].first == "000/000/0000001");
  CHECK((*rows)[0].second == "f2");
  auto other = (*s)->ReadCheckpoints("ssmix2:/elsewhere");
  REQUIRE(other);
  CHECK(other->empty());
  // A second store on the same database sees the committed checkpoints.
  auto another = t->OpenAnother();
  auto s2 = another->OpenSession();
  REQUIRE(s2);
  auto rows2 = (*s2)->ReadCheckpoints("ssmix2:/root");
  REQUIRE(rows2);
  CHECK(rows2->size() == 1);
}
KAKEHASHI_BACKEND_TEST("store: import checkpoints commit and roll back with their transaction",
                       "[store][checkpoint]", CheckpointsCommitWithResources)

#ifdef KAKEHASHI_HAVE_POSTGRES
TEST_CASE("store: two first imports create the checkpoint tables at once [postgresql]",
          "[store][checkpoint][.postgres]") {
  // s1 creates the tables in its open transaction; s2, on another store, wants them too before
  // s1 commits. Before decision 0028 s2's CREATE TABLE IF NOT EXISTS did not see s1's tables,
  // waited on the catalog's unique index and failed with 23505 once s1 committed; now s2 waits
  // on the creators' advisory lock and then finds the tables.
  auto t = testing::MakeStore(Backend::kPostgres);
  auto other = t->OpenAnother();
  auto s1 = t->store->OpenSession();
  auto s2 = other->OpenSession();
  REQUIRE(s1);
  REQUIRE(s2);
  REQUIRE((*s1)->Begin());
  REQUIRE((*s1)->WriteCheckpoint("src", "u1", "f1"));
  REQUIRE((*s1)->ReadCheckpoints("src"));  // a query: everything sent before it has run
  std::optional<ErrorCode> second;         // s2's outcome (no Catch assertions in the thread)
  std::thread creator([&] {
    ErrorCode e;
    if (auto b = (*s2)->Begin(); !b) {
      e = b.error();
    } else if (auto w = (*s2)->WriteCheckpoint("src", "u2", "f2"); !w) {
      e = w.error();
      (*s2)->Rollback();
    } else if (auto c = (*s2)->Commit(); !c) {
      e = c.error();
    }
    second = e;
  });
  // Wait (without a time limit on the outcome) until s2 waits on a lock.
  PGconn* admin = PQconnectdb(t->url.c_str());
  bool waiting = false;
  for (int i = 0; i < 4000 && !waiting; ++i) {
    PGresult* r = PQexec(admin,
                         "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND wait_event_type = 'Lock' AND query LIKE '%import_checkpoints%'");
    waiting = PQresultStatus(r) == PGRES_TUPLES_OK && std::string(PQgetvalue(r, 0, 0)) != "0";
    PQclear(r);
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  PQfinish(admin);
  CHECK(waiting);
  REQUIRE((*s1)->Commit());
  creator.join();
  REQUIRE(second);
  INFO(second->message());
  CHECK_FALSE(*second);
  auto rows = (*s1)->ReadCheckpoints("src");
  REQUIRE(rows);
  CHECK(rows->size() == 2);
}
#endif

// The point reads (ReadCheckpoint, CheckpointSources, CountCheckpoints) see what a transaction
// wrote and what another store committed.
void CheckpointPointReads(Backend backend) {
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  auto& session = **s;
  auto none = session.ReadCheckpoint("ssmix2:/a", "000/000/0000001");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  REQUIRE(session.Begin());
  REQUIRE(session.WriteCheckpoint("ssmix2:/b", "000/000/0000001", "fb"));
  REQUIRE(session.WriteCheckpoint("ssmix2:/a", "000/000/0000001", "fa"));
  REQUIRE(session.WriteCheckpoint("ssmix2:/a", "000/000/0000002", "fa2"));
  REQUIRE(session.WriteCheckpoint("import:patients", "000/000/0000001", ""));
  // Inside the transaction, before its commit.
  auto sources = session.CheckpointSources("000/000/0000001");
  REQUIRE(sources);
  CHECK(*sources == std::vector<std::string>{"import:patients", "ssmix2:/a", "ssmix2:/b"});
  REQUIRE(session.Commit());
  auto fingerprint = session.ReadCheckpoint("ssmix2:/a", "000/000/0000002");
  REQUIRE(fingerprint);
  CHECK(*fingerprint == std::optional<std::string>("fa2"));
  auto count = session.CountCheckpoints("ssmix2:/a");
  REQUIRE(count);
  CHECK(*count == 2);
  auto zero = session.CountCheckpoints("ssmix2:/c");
  REQUIRE(zero);
  CHECK(*zero == 0);
  auto one = session.CheckpointSources("000/000/0000002");
  REQUIRE(one);
  CHECK(*one == std::vector<std::string>{"ssmix2:/a"});
  REQUIRE(session.Begin());
  REQUIRE(session.DeleteCheckpoint("ssmix2:/b", "000/000/0000001"));
  REQUIRE(session.Commit());
  auto another = t->OpenAnother();
  auto s2 = another->OpenSession();
  REQUIRE(s2);
  auto after = (*s2)->CheckpointSources("000/000/0000001");
  REQUIRE(after);
  CHECK(*after == std::vector<std::string>{"import:patients", "ssmix2:/a"});
}
KAKEHASHI_BACKEND_TEST("store: import checkpoints are read point by point", "[store][checkpoint]",
                       CheckpointPointReads)

// ReadCheckpointsAfter pages through one source in unit order (bytewise on both backends), so
// that the importer never holds a large source (one row per tracked key) as query rows at once.
void CheckpointPages(Backend backend) {
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  auto& session = **s;
  REQUIRE(session.Begin());
  // Written out of order; "Z" < "a" < "\xc3\xa9" bytewise (a case-folding or locale collation
  // would order them otherwise).
  for (const char* unit : {"a/2", "\xc3\xa9/1", "Z/9", "a/10", "a/1"}) {
    REQUIRE(session.WriteCheckpoint("import:deletes", unit, ""));
  }
  REQUIRE(session.WriteCheckpoint("ssmix2:/other", "a/3", "f"));
  REQUIRE(session.Commit());
  std::vector<std::vector<std::string>> pages;
  std::string after;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = session.ReadCheckpointsAfter("import:deletes", after, 2);
    REQUIRE(page);
    std::vector<std::string> units;
    for (const auto& [unit, fingerprint] : *page) {
      CHECK(fingerprint.empty());
      units.push_back(unit);
    }
    pages.push_back(units);
    if (page->size() < 2) break;
    after = page->back().first;
  }
  CHECK(pages ==
        std::vector<std::vector<std::string>>{{"Z/9", "a/1"}, {"a/10", "a/2"}, {"\xc3\xa9/1"}});
  // The same rows as the whole read, in the same order.
  auto whole = session.ReadCheckpoints("import:deletes");
  REQUIRE(whole);
  REQUIRE(whole->size() == 5);
  CHECK((*whole)[0].first == "Z/9");
  CHECK((*whole)[4].first == "\xc3\xa9/1");
  auto empty = session.ReadCheckpointsAfter("import:nothing", "", 100);
  REQUIRE(empty);
  CHECK(empty->empty());
}
KAKEHASHI_BACKEND_TEST("store: import checkpoints are read a page at a time", "[store][checkpoint]",
                       CheckpointPages)

bool HasUnitIndex(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.string().c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = "
                             "'import_checkpoints_unit'",
                             -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const bool found = sqlite3_column_int(stmt, 0) == 1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return found;
}

// A database whose checkpoint table was created before the index import_checkpoints_unit
// existed (session 8) gets it on first use, keeping its rows.
TEST_CASE("store: an import checkpoint table of an older database gets the unit index",
          "[store][checkpoint]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  {
    auto s = t->store->OpenSession();
    REQUIRE(s);
    REQUIRE((*s)->Begin());
    REQUIRE((*s)->WriteCheckpoint("ssmix2:/a", "000/000/0000001", "fa"));
    REQUIRE((*s)->Commit());
  }
  t->store.reset();
  REQUIRE(HasUnitIndex(t->file));
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(t->file.string().c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP INDEX import_checkpoints_unit", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
  }
  REQUIRE_FALSE(HasUnitIndex(t->file));
  auto again = t->OpenAnother();
  {
    auto s = again->OpenSession();
    REQUIRE(s);
    auto sources = (*s)->CheckpointSources("000/000/0000001");
    REQUIRE(sources);
    CHECK(*sources == std::vector<std::string>{"ssmix2:/a"});
  }
  again.reset();
  CHECK(HasUnitIndex(t->file));
}

#ifdef KAKEHASHI_HAVE_POSTGRES
// The number of indexes import_checkpoints_unit in the test's schema (0 or 1).
int PgUnitIndexes(const std::string& url, const std::string& schema) {
  PGconn* db = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(db) == CONNECTION_OK);
  const char* params[] = {schema.c_str()};
  PGresult* r = PQexecParams(db,
                             "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND "
                             "indexname = 'import_checkpoints_unit'",
                             1, nullptr, params, nullptr, nullptr, 0);
  const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  const int count = ok ? std::stoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(db);
  REQUIRE(ok);
  return count;
}

// The same on PostgreSQL: the index's absence alone opens decision 0028's creation block (the
// tables exist), which adds it under the advisory lock.
TEST_CASE(
    "store: an import checkpoint table of an older database gets the unit index "
    "[postgresql]",
    "[store][checkpoint][.postgres]") {
  auto t = testing::MakeStore(Backend::kPostgres);
  const std::string& schema = t->options.postgres_schema;
  {
    auto s = t->store->OpenSession();
    REQUIRE(s);
    REQUIRE((*s)->Begin());
    REQUIRE((*s)->WriteCheckpoint("ssmix2:/a", "000/000/0000001", "fa"));
    REQUIRE((*s)->Commit());
  }
  t->store.reset();
  REQUIRE(PgUnitIndexes(t->url, schema) == 1);
  {
    PGconn* db = PQconnectdb(t->url.c_str());
    REQUIRE(PQstatus(db) == CONNECTION_OK);
    const std::string drop = "DROP INDEX \"" + schema + "\".import_checkpoints_unit";
    PGresult* r = PQexec(db, drop.c_str());
    const bool dropped = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(db);
    REQUIRE(dropped);
  }
  REQUIRE(PgUnitIndexes(t->url, schema) == 0);
  auto again = t->OpenAnother();
  {
    auto s = again->OpenSession();
    REQUIRE(s);
    auto sources = (*s)->CheckpointSources("000/000/0000001");
    REQUIRE(sources);
    CHECK(*sources == std::vector<std::string>{"ssmix2:/a"});
    auto fingerprint = (*s)->ReadCheckpoint("ssmix2:/a", "000/000/0000001");
    REQUIRE(fingerprint);
    CHECK(*fingerprint == std::optional<std::string>("fa"));
  }
  again.reset();
  CHECK(PgUnitIndexes(t->url, schema) == 1);
}
#endif

}  // namespace
}  // namespace kakehashi::gateway
