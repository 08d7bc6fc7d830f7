// Conditional references in Bundles and conditional update/delete (R4 http.html 3.1.0.4.3,
// 3.1.0.7.1, 3.1.0.11.2 "Conditional References"), on SQLite and PostgreSQL.
#include "kakehashi/gateway/handler.hpp"

#include "detail/json.hpp"
#include "json_support.hpp"
#include "test_support.hpp"

#include <string>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;

std::string Tx(const std::string& type, const std::string& entries) {
  return R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)" + entries + "]}";
}

std::size_t Count(const Handler& h, const std::string& search) {
  Response r = h.Handle(Req("GET", search));
  INFO(search << " -> " << r.body);
  REQUIRE(r.status == 200);
  const Json* entries = Parse(r.body).Find("entry");
  return entries == nullptr ? 0 : entries->Items().size();
}

// The id in a transaction-response entry's location ("Type/id/_history/n").
std::string LocationId(const Json& entry) {
  std::string location(entry.Find("response")->Str("location"));
  location = location.substr(location.find('/') + 1);
  return location.substr(0, location.find('/'));
}

void ConditionalReferences(Backend backend) {
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  auto put = [&](const std::string& type, const std::string& id, const std::string& body) {
    Response r = h.Handle(Req("PUT", "/fhir/" + type + "/" + id, body));
    INFO(r.body);
    REQUIRE(r.status == 201);
  };
  put("Patient", "cr-1",
      R"({"resourceType":"Patient","id":"cr-1","identifier":[{"system":"urn:mrn","value":"CR-1"}]})");
  put("Patient", "dup-a",
      R"({"resourceType":"Patient","id":"dup-a","identifier":[{"system":"urn:mrn","value":"DUP"}]})");
  put("Patient", "dup-b",
      R"({"resourceType":"Patient","id":"dup-b","identifier":[{"system":"urn:mrn","value":"DUP"}]})");
  put("Organization", "o1",
      R"({"resourceType":"Organization","id":"o1","identifier":[{"system":"urn:org","value":"O1"}]})");

  // Resolved after the transaction's writes (R4 step 5): the Observation's performer names the
  // Patient this Bundle creates, which itself holds a conditional reference to an Organization;
  // the same criteria twice resolve alike.
  const std::string tx = Tx(
      "transaction",
      R"({"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},)"
      R"("subject":{"reference":"Patient?identifier=urn:mrn|CR-1"},)"
      R"("focus":[{"reference":"Patient?identifier=urn%3Amrn%7CCR-1"}],)"
      R"("performer":[{"reference":"Patient?identifier=urn:mrn|CR-NEW"}]},)"
      R"("request":{"method":"POST","url":"Observation"}},)"
      R"({"resource":{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"CR-NEW"}],)"
      R"("managingOrganization":{"reference":"Organization?identifier=urn:org|O1"}},)"
      R"("request":{"method":"POST","url":"Patient"}})");
  Response r = h.Handle(Req("POST", "/fhir", tx));
  INFO(r.body);
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  const auto& e = b.Find("entry")->Items();
  REQUIRE(e.size() == 2);
  const std::string obs_id = LocationId(e[0]);
  const std::string new_patient = LocationId(e[1]);
  Json obs = Parse(h.Handle(Req("GET", "/fhir/Observation/" + obs_id)).body);
  CHECK(obs.Find("subject")->Str("reference") == "Patient/cr-1");
  CHECK(obs.Find("focus")->Items()[0].Str("reference") == "Patient/cr-1");
  CHECK(obs.Find("performer")->Items()[0].Str("reference") == "Patient/" + new_patient);
  CHECK(obs.Find("meta")->Str("versionId") == "1");
  Json pat = Parse(h.Handle(Req("GET", "/fhir/Patient/" + new_patient)).body);
  CHECK(pat.Find("managingOrganization")->Str("reference") == "Organization/o1");
  CHECK(pat.Find("meta")->Str("versionId") == "1");
  // The index holds the resolved references (searches find them); one version each.
  CHECK(Count(h, "/fhir/Observation?subject=Patient/cr-1") == 1);
  CHECK(Count(h, "/fhir/Observation?performer=Patient/" + new_patient) == 1);
  CHECK(Count(h, "/fhir/Patient?organization=Organization/o1") == 1);
  CHECK(Count(h, "/fhir/Patient/" + new_patient + "/_history") == 1);

  // No match (404), several (412), criteria that are no filtering search (400): the
  // transaction fails unwritten; the outcome locates the element and does not repeat the
  // criteria (an identifier may be patient data).
  auto fails = [&](const std::string& reference, int status, const std::string& code) {
    const std::string bad = Tx(
        "transaction",
        R"({"resource":{"resourceType":"Patient","id":"cr-x"},"request":{"method":"PUT","url":"Patient/cr-x"}},)"
        R"({"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},)"
        R"("subject":{"reference":")" +
            reference + R"("}},"request":{"method":"POST","url":"Observation"}})");
    Response failed = h.Handle(Req("POST", "/fhir", bad));
    INFO(reference << " -> " << failed.body);
    CHECK(failed.status == status);
    Json oo = Parse(failed.body);
    REQUIRE(oo.Str("resourceType") == "OperationOutcome");
    const Json& issue = oo.Find("issue")->Items()[0];
    CHECK(issue.Str("code") == code);
    CHECK(issue.Str("diagnostics").find("nothing was stored") != std::string_view::npos);
    REQUIRE(issue.Find("expression") != nullptr);
    CHECK(issue.Find("expression")->Items()[0].Text() ==
          "Bundle.entry[1].resource.subject.reference");
    CHECK(failed.body.find("NOSUCH") == std::string::npos);
    CHECK(failed.body.find("DUP") == std::string::npos);
    CHECK(h.Handle(Req("GET", "/fhir/Patient/cr-x")).status == 404);
  };
  fails("Patient?identifier=urn:mrn|NOSUCH", 404, "not-found");
  fails("Patient?identifier=urn:mrn|DUP", 412, "multiple-matches");
  fails("Patient?nosuch=1", 400, "invalid");
  fails("Patient?_count=1", 400, "invalid");
  CHECK(Count(h, "/fhir/Observation") == 1);

  // A batch: each entry resolves against what the batch's earlier entries left; a failing
  // resolution fails its entry alone.
  const std::string batch = Tx(
      "batch",
      R"({"resource":{"resourceType":"Observation","id":"cb-1","status":"final","code":{"text":"x"},)"
      R"("subject":{"reference":"Patient?identifier=urn:mrn|CR-1"}},"request":{"method":"PUT","url":"Observation/cb-1"}},)"
      R"({"resource":{"resourceType":"Observation","id":"cb-2","status":"final","code":{"text":"x"},)"
      R"("subject":{"reference":"Patient?identifier=urn:mrn|DUP"}},"request":{"method":"PUT","url":"Observation/cb-2"}})");
  Response br = h.Handle(Req("POST", "/fhir", batch));
  INFO(br.body);
  REQUIRE(br.status == 200);
  Json bb = Parse(br.body);
  const auto& be = bb.Find("entry")->Items();
  REQUIRE(be.size() == 2);
  CHECK(be[0].Find("response")->Str("status") == "201 Created");
  CHECK(be[1].Find("response")->Str("status") == "412");
  CHECK(be[1]
            .Find("response")
            ->Find("outcome")
            ->Find("issue")
            ->Items()[0]
            .Find("expression")
            ->Items()[0]
            .Text() == "Bundle.entry[1].resource.subject.reference");
  CHECK(Parse(h.Handle(Req("GET", "/fhir/Observation/cb-1")).body)
            .Find("subject")
            ->Str("reference") == "Patient/cr-1");
  CHECK(h.Handle(Req("GET", "/fhir/Observation/cb-2")).status == 404);
}
KAKEHASHI_BACKEND_TEST("handler: conditional references in transactions and batches",
                       "[handler][conditional]", ConditionalReferences)

void ConditionalUpdateDelete(Backend backend) {
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  const std::string cu1 = "/fhir/Patient?identifier=urn:mrn|CU-1";
  // No match, no id: created with a new id.
  Response created = h.Handle(
      Req("PUT", cu1,
          R"({"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"CU-1"}]})"));
  INFO(created.body);
  REQUIRE(created.status == 201);
  const std::string id(Parse(created.body).Str("id"));
  CHECK(created.Header("Location").ends_with("/Patient/" + id + "/_history/1"));
  // One match: updated (no id in the body, or the matching one).
  Response updated = h.Handle(Req(
      "PUT", cu1,
      R"({"resourceType":"Patient","active":true,"identifier":[{"system":"urn:mrn","value":"CU-1"}]})"));
  INFO(updated.body);
  REQUIRE(updated.status == 200);
  CHECK(Parse(updated.body).Str("id") == id);
  CHECK(updated.Header("ETag") == "W/\"2\"");
  Response same_id = h.Handle(Req("PUT", cu1,
                                  R"({"resourceType":"Patient","id":")" + id +
                                      R"(","identifier":[{"system":"urn:mrn","value":"CU-1"}]})"));
  CHECK(same_id.status == 200);
  CHECK(same_id.Header("ETag") == "W/\"3\"");
  // One match, another id in the body: 400; If-Match is honoured on the match.
  CHECK(h.Handle(Req("PUT", cu1, R"({"resourceType":"Patient","id":"other"})")).status == 400);
  CHECK(h.Handle(Req("PUT", cu1, R"({"resourceType":"Patient"})", {{"If-Match", "W/\"1\""}}))
            .status == 412);
  // No match, an id in the body: update as create with that id.
  Response upsert = h.Handle(Req(
      "PUT", "/fhir/Patient?identifier=urn:mrn|CU-2",
      R"({"resourceType":"Patient","id":"cu-two","identifier":[{"system":"urn:mrn","value":"CU-2"}]})"));
  CHECK(upsert.status == 201);
  CHECK(Parse(upsert.body).Str("id") == "cu-two");
  // Criteria that are no filtering search: 400, nothing written.
  for (const char* target : {"/fhir/Patient?_count=1", "/fhir/Patient?nosuch=1",
                             "/fhir/Patient?identifier=urn:mrn|CU-9&_offset=1"}) {
    INFO(target);
    CHECK(h.Handle(Req("PUT", target, R"({"resourceType":"Patient"})")).status == 400);
    CHECK(h.Handle(Req("DELETE", target)).status == 400);
  }
  CHECK(h.Handle(Req("PUT", "/fhir/Patient", R"({"resourceType":"Patient"})")).status == 405);
  // Several matches: 412 for both.
  REQUIRE(
      h.Handle(
           Req("POST", "/fhir/Patient",
               R"({"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"CU-1"}]})"))
          .status == 201);
  CHECK(h.Handle(Req("PUT", cu1, R"({"resourceType":"Patient"})")).status == 412);
  Response many = h.Handle(Req("DELETE", cu1));
  CHECK(many.status == 412);
  CHECK(Parse(many.body).Find("issue")->Items()[0].Str("code") == "multiple-matches");
  CHECK(Count(h, cu1) == 2);
  // Delete: one match is deleted, none is 204 too.
  Response deleted = h.Handle(Req("DELETE", "/fhir/Patient?identifier=urn:mrn|CU-2"));
  CHECK(deleted.status == 204);
  CHECK(deleted.Header("ETag") == "W/\"2\"");
  CHECK(h.Handle(Req("GET", "/fhir/Patient/cu-two")).status == 410);
  CHECK(h.Handle(Req("DELETE", "/fhir/Patient?identifier=urn:mrn|CU-2")).status == 204);

  // In a transaction: a conditional update's fullUrl is rewritten to the id it resolves to; a
  // conditional delete removes its match.
  REQUIRE(
      h
          .Handle(Req(
              "PUT", "/fhir/Patient/tx-del",
              R"({"resourceType":"Patient","id":"tx-del","identifier":[{"system":"urn:mrn","value":"TX-DEL"}]})"))
          .status == 201);
  const std::string tx = Tx(
      "transaction",
      R"({"fullUrl":"urn:uuid:7c1f8a9e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient",)"
      R"("identifier":[{"system":"urn:mrn","value":"TX-1"}]},"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|TX-1"}},)"
      R"({"resource":{"resourceType":"Observation","id":"tx-obs","status":"final","code":{"text":"x"},)"
      R"("subject":{"reference":"urn:uuid:7c1f8a9e-0000-4000-8000-000000000001"}},"request":{"method":"PUT","url":"Observation/tx-obs"}},)"
      R"({"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|TX-DEL"}})");
  Response tr = h.Handle(Req("POST", "/fhir", tx));
  INFO(tr.body);
  REQUIRE(tr.status == 200);
  Json tb = Parse(tr.body);
  const auto& te = tb.Find("entry")->Items();
  REQUIRE(te.size() == 3);
  CHECK(te[0].Find("response")->Str("status") == "201 Created");
  const std::string tx1 = LocationId(te[0]);
  CHECK(Parse(h.Handle(Req("GET", "/fhir/Observation/tx-obs")).body)
            .Find("subject")
            ->Str("reference") == "Patient/" + tx1);
  CHECK(te[2].Find("response")->Str("status") == "204 No Content");
  CHECK(h.Handle(Req("GET", "/fhir/Patient/tx-del")).status == 410);
  // The same transaction again: the conditional update now matches and updates (version 2).
  Response again = h.Handle(Req("POST", "/fhir", tx));
  REQUIRE(again.status == 200);
  CHECK(LocationId(Parse(again.body).Find("entry")->Items()[0]) == tx1);
  CHECK(Parse(again.body).Find("entry")->Items()[0].Find("response")->Str("status") == "200 OK");
  // A conditional delete resolving to a resource another entry writes: 400, nothing stored.
  const std::string overlap =
      Tx("transaction",
         R"({"resource":{"resourceType":"Patient","id":")" + tx1 +
             R"(","active":true},"request":{"method":"PUT","url":"Patient/)" + tx1 +
             R"("}},{"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|TX-1"}})");
  Response ov = h.Handle(Req("POST", "/fhir", overlap));
  INFO(ov.body);
  CHECK(ov.status == 400);
  CHECK(ov.body.find("nothing was stored") != std::string::npos);
  CHECK(h.Handle(Req("GET", "/fhir/Patient/" + tx1)).Header("ETag") == "W/\"2\"");
  // Several matches fail the transaction (412).
  Response multi = h.Handle(
      Req("POST", "/fhir",
          Tx("transaction",
             R"({"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|CU-1"}})")));
  CHECK(multi.status == 412);
  CHECK(Count(h, cu1) == 2);

  // The CapabilityStatement says so.
  Json cs = Parse(h.Handle(Req("GET", "/fhir/metadata")).body);
  const Json& res = cs.Find("rest")->Items()[0].Find("resource")->Items()[0];
  CHECK(res.Find("conditionalUpdate")->AsBool());
  CHECK(res.Str("conditionalDelete") == "single");
  CHECK(res.Str("conditionalRead") == "not-match");  // If-None-Match → 304
}
KAKEHASHI_BACKEND_TEST("handler: conditional update and delete (PUT/DELETE Type?criteria)",
                       "[handler][conditional]", ConditionalUpdateDelete)

}  // namespace
}  // namespace kakehashi::gateway
