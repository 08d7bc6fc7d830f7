// The bulk-write API of handler.hpp (Handler::PrepareWrite / WritePrepared / WriteDelete, used by
// `kakehashi import`) and the per-unit resource lists of store.hpp (WriteUnitResources,
// ReadUnitResources, DeleteCheckpoint): problems come back as Issues, writes happen inside the
// caller's transaction, an unchanged resource gets no new version.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace kakehashi::gateway {
namespace {

using testing::Backend;
using testing::Req;

const char* kPatient = R"({"resourceType":"Patient","id":"p1","gender":"male"})";

void BulkWrites(Backend backend) {
  auto t = testing::MakeStore(backend);
  HandlerOptions options;
  // A validator that refuses female patients, with a code of its own.
  options.validator = [](std::string_view json, IssueSink& issues) {
    if (json.find("\"female\"") != std::string_view::npos) {
      issues.Error("test.refused", {}, "refused by the test");
    }
    issues.Info("test.seen", {}, "validated");
  };
  Handler h(*t->store, options);

  // Problems as Issues: structural ones as gateway.write.invalid, the validator's as reported.
  CollectingSink bad_json;
  CHECK_FALSE(h.PrepareWrite("Patient", "p1", "{not json", bad_json));
  REQUIRE(bad_json.Issues().size() == 1);
  CHECK(bad_json.Issues()[0].code == "gateway.write.invalid");
  CHECK(bad_json.Issues()[0].severity == Severity::kError);
  CollectingSink wrong_id;
  CHECK_FALSE(h.PrepareWrite("Patient", "p2", kPatient, wrong_id));
  CHECK(wrong_id.Counts().ByCode().count("gateway.write.invalid") == 1);
  CollectingSink wrong_type;
  CHECK_FALSE(h.PrepareWrite("Observation", "p1", kPatient, wrong_type));
  CHECK(wrong_type.Counts().ByCode().count("gateway.write.invalid") == 1);
  CollectingSink refused;
  CHECK_FALSE(h.PrepareWrite("Patient", "p1",
                             R"({"resourceType":"Patient","id":"p1","gender":"female"})", refused));
  CHECK(refused.Counts().ByCode().count("test.refused") == 1);
  CHECK(refused.Counts().ByCode().count("gateway.write.invalid") == 0);
  CollectingSink fine;
  auto prepared = h.PrepareWrite("Patient", "p1", kPatient, fine);
  REQUIRE(prepared);
  CHECK(fine.Counts().Errors() == 0);
  CHECK(prepared->Type() == "Patient");
  CHECK(prepared->Id() == "p1");

  auto session = h.OpenSession();
  REQUIRE(session);
  store::Session& s = **session;
  // Outside a transaction nothing is written.
  CHECK_FALSE(h.WritePrepared(s, std::move(*prepared)));

  auto write = [&](const std::string& json) {
    CollectingSink issues;
    auto p = h.PrepareWrite("Patient", "p1", json, issues);
    REQUIRE(p);
    REQUIRE(s.Begin());
    auto outcome = h.WritePrepared(s, std::move(*p));
    REQUIRE(outcome);
    REQUIRE(s.Commit());
    return *outcome;
  };
  CHECK(write(kPatient) == WriteOutcome::kCreated);
  Response read = h.Handle(Req("GET", "/fhir/Patient/p1"));
  CHECK(read.status == 200);
  CHECK(read.Header("ETag") == "W/\"1\"");
  CHECK(read.body.find("\"versionId\":\"1\"") != std::string::npos);
  CHECK(read.body.find("\"lastUpdated\":\"20") != std::string::npos);
  // The same content again: no new version.
  CHECK(write(kPatient) == WriteOutcome::kUnchanged);
  CHECK(h.Handle(Req("GET", "/fhir/Patient/p1")).Header("ETag") == "W/\"1\"");
  // Other content: version 2, as a PUT; the REST view agrees.
  CHECK(write(R"({"resourceType":"Patient","id":"p1","gender":"other"})") ==
        WriteOutcome::kUpdated);
  read = h.Handle(Req("GET", "/fhir/Patient/p1"));
  CHECK(read.Header("ETag") == "W/\"2\"");
  CHECK(read.body.find("\"other\"") != std::string::npos);
  CHECK(h.Handle(Req("GET", "/fhir/Patient?gender=other")).body.find("Patient/p1") !=
        std::string::npos);

  // Deletes; a rolled-back write leaves nothing.
  REQUIRE(s.Begin());
  auto deleted = h.WriteDelete(s, "Patient", "p1");
  REQUIRE(deleted);
  CHECK(*deleted == WriteOutcome::kDeleted);
  auto again = h.WriteDelete(s, "Patient", "p1");
  REQUIRE(again);
  CHECK(*again == WriteOutcome::kAbsent);
  REQUIRE(s.Commit());
  CHECK(h.Handle(Req("GET", "/fhir/Patient/p1")).status == 410);
  CollectingSink issues;
  auto p = h.PrepareWrite("Patient", "p1", kPatient, issues);
  REQUIRE(p);
  REQUIRE(s.Begin());
  auto recreated = h.WritePrepared(s, std::move(*p));
  REQUIRE(recreated);
  CHECK(*recreated == WriteOutcome::kCreated);  // after a delete
  s.Rollback();
  CHECK(h.Handle(Req("GET", "/fhir/Patient/p1")).status == 410);

  // Unit resource lists live and die with their checkpoint.
  auto listed = s.ReadUnitResources("ssmix2:/root", "000/000/1");
  REQUIRE(listed);
  CHECK(listed->empty());
  CHECK(s.WriteUnitResources("ssmix2:/root", "000/000/1", "Patient/p1\n").error() ==
        store::errc::kNotInTransaction);
  REQUIRE(s.Begin());
  REQUIRE(s.WriteCheckpoint("ssmix2:/root", "000/000/1", "f1"));
  REQUIRE(s.WriteUnitResources("ssmix2:/root", "000/000/1", "Patient/p1\n"));
  REQUIRE(s.WriteUnitResources("ssmix2:/root", "000/000/1", "Patient/p1\nCondition/c1\n"));
  REQUIRE(s.WriteCheckpoint("ssmix2:/root", "000/000/2", "f2"));
  REQUIRE(s.Commit());
  listed = s.ReadUnitResources("ssmix2:/root", "000/000/1");
  REQUIRE(listed);
  CHECK(*listed == "Patient/p1\nCondition/c1\n");
  REQUIRE(s.Begin());
  REQUIRE(s.DeleteCheckpoint("ssmix2:/root", "000/000/1"));
  REQUIRE(s.Commit());
  listed = s.ReadUnitResources("ssmix2:/root", "000/000/1");
  REQUIRE(listed);
  CHECK(listed->empty());
  auto rows = s.ReadCheckpoints("ssmix2:/root");
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].first == "000/000/2");
}
KAKEHASHI_BACKEND_TEST("handler: bulk writes report Issues, version like PUT, skip unchanged",
                       "[handler][bulk]", BulkWrites)

}  // namespace
}  // namespace kakehashi::gateway
