// Import checkpoints (store.hpp Session::ReadCheckpoints/WriteCheckpoint) and
// Handler::Transaction: a checkpoint commits or rolls back together with the Bundle's resources.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "test_support.hpp"

#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

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

}  // namespace
}  // namespace kakehashi::gateway
