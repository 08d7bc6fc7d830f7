// Reverse chaining (_has), chains of several links and their limits, reference :identifier and
// identifier :of-type (decision 0044), over the handler on both backends.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
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
using V = std::vector<std::string>;

struct ChainFixture : testing::HandlerFixture {
  using HandlerFixture::Do;
  using HandlerFixture::HandlerFixture;
  Response Do(const std::string& method, const std::string& target,
              const std::string& body = {}) const {
    return h->Handle(Req(method, target, body));
  }
  void Put(const std::string& type, const std::string& id, const std::string& rest) const {
    PutBody(type, id,
            R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + (rest.empty() ? "" : ",") +
                rest + "}");
  }
  // The ids of a searchset page, and its next link (relative, empty: none).
  V Ids(const std::string& target, std::string* next = nullptr) const {
    Response r = Do("GET", target);
    INFO(target << " -> " << r.body);
    REQUIRE(r.status == 200);
    V ids;
    const Json b = Parse(r.body);
    if (const Json* e = b.Find("entry")) {
      for (const Json& entry : e->Items()) ids.emplace_back(entry.Find("resource")->Str("id"));
    }
    if (next != nullptr) {
      next->clear();
      for (const Json& l : b.Find("link")->Items()) {
        if (l.Str("relation") == "next") {
          *next = std::string(l.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
        }
      }
    }
    return ids;
  }
  // The status and issue code of a refused search.
  std::string Refused(const std::string& target) const {
    Response r = Do("GET", target);
    INFO(target << " -> " << r.body);
    if (r.status != 400) return std::to_string(r.status);
    const Json oo = Parse(r.body);
    return "400 " + std::string(oo.Find("issue")->Items()[0].Str("code"));
  }
};

// Organizations grp <- o1 (partOf), o2; patients pa (o1, Dr Ito), pb (o2), pc (none);
// observations: a1 (pa, 1234-5), a2 (pa, 9999-9), b1 (pb, 1234-5, preliminary), c1 (pc,
// 9999-9); a Provenance on a2 by Dr Ito.
void Populate(const ChainFixture& f) {
  f.Put("Practitioner", "doc", R"("name":[{"family":"Ito"}])");
  f.Put("Organization", "grp", R"("name":"Kakehashi Group")");
  f.Put("Organization", "o1",
        R"("name":"Kakehashi Hospital","partOf":{"reference":"Organization/grp"})");
  f.Put("Organization", "o2", R"("name":"Other Clinic")");
  f.Put(
      "Patient", "pa",
      R"("identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"A-1"},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"DL"}],"text":"licence"},"system":"urn:dl","value":"12345"}],"name":[{"family":"Aoki"}],"gender":"female","managingOrganization":{"reference":"Organization/o1"},"generalPractitioner":[{"reference":"Practitioner/doc"}])");
  f.Put(
      "Patient", "pb",
      R"("identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"12345"}],"name":[{"family":"Baba"}],"gender":"male","managingOrganization":{"reference":"Organization/o2"})");
  f.Put("Patient", "pc", R"("name":[{"family":"Chiba"}],"gender":"female")");
  auto obs = [&](const std::string& id, const std::string& patient, const std::string& code,
                 const std::string& status) {
    f.Put("Observation", id,
          R"("status":")" + status +
              R"(","code":{"coding":[{"system":"http://loinc.org","code":")" + code +
              R"("}]},"subject":{"reference":"Patient/)" + patient + R"("})");
  };
  obs("a1", "pa", "1234-5", "final");
  obs("a2", "pa", "9999-9", "final");
  obs("b1", "pb", "1234-5", "preliminary");
  obs("c1", "pc", "9999-9", "final");
  f.Put(
      "Provenance", "prov",
      R"("target":[{"reference":"Observation/a2"}],"recorded":"2024-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/doc"}}])");
}

void ReverseChaining(Backend backend) {
  ChainFixture f(backend);
  Populate(f);
  // R4 search.html "Reverse Chaining": patients that an Observation with this code refers to.
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5") == V{"pa", "pb"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=http://loinc.org|9999-9") ==
        V{"pa", "pc"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:subject:status=preliminary") == V{"pb"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=0000-0").empty());
  // Alternatives are ORed; two _has parameters are ANDed (each by its own Observation).
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5,9999-9") == V{"pa", "pb", "pc"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5"
              "&_has:Observation:patient:code=9999-9") == V{"pa"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5&gender=male") == V{"pb"});
  // The inner criterion keeps its modifiers: an Observation of pa is not 1234-5 (a2).
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code:not=1234-5") == V{"pa", "pc"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:_id=b1") == V{"pb"});
  // Nested: patients with an Observation that a Provenance by Dr Ito targets.
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:_has:Provenance:target:agent="
              "Practitioner/doc") == V{"pa"});
  // Through another type, and a chain inside _has.
  CHECK(f.Ids("/fhir/Organization?_has:Patient:organization:_has:Observation:patient:code="
              "1234-5") == V{"o1", "o2"});
  CHECK(f.Ids("/fhir/Organization?_has:Patient:organization:_has:Observation:patient:code="
              "9999-9") == V{"o1"});
  CHECK(f.Ids("/fhir/Practitioner?_has:Patient:general-practitioner:gender=female") == V{"doc"});
  CHECK(f.Ids("/fhir/Organization?_has:Patient:organization:general-practitioner:Practitioner."
              "name=Ito") == V{"o1"});
  // _summary=count, _count paging and _sort over a _has.
  {
    Response r = f.Do("GET", "/fhir/Patient?_has:Observation:patient:status=final&_summary=count");
    REQUIRE(r.status == 200);
    CHECK(Parse(r.body).Find("total")->Text() == "2");
  }
  std::string next;
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5,9999-9&_count=2", &next) ==
        V{"pa", "pb"});
  REQUIRE(!next.empty());
  CHECK(f.Ids(next, &next) == V{"pc"});
  CHECK(next.empty());
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5,9999-9&_sort=-family&_count=2",
              &next) == V{"pc", "pb"});
  REQUIRE(!next.empty());
  CHECK(f.Ids(next, &next) == V{"pa"});
  // Bound values, never SQL: a quote finds nothing and breaks nothing.
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1'%20OR%20'1'='1").empty());
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=x%22)%20OR%201=1--").empty());
  CHECK(f.Ids("/fhir/Patient").size() == 3);
  // A deleted Observation no longer counts.
  REQUIRE(f.Do("DELETE", "/fhir/Observation/b1").status / 100 == 2);
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:status=preliminary").empty());
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=1234-5") == V{"pa"});

  // Malformed: 400 with "invalid"; unknown parameters too.
  for (const char* bad :
       {"/fhir/Patient?_has:Observation:patient=1234-5", "/fhir/Patient?_has:Observation=1",
        "/fhir/Patient?_has=1", "/fhir/Patient?_has::patient:code=1",
        "/fhir/Patient?_has:Observation::code=1", "/fhir/Patient?_has:Observation:patient:=1",
        "/fhir/Patient?_has:Nope:patient:code=1", "/fhir/Patient?_has:Observation:code:code=1",
        "/fhir/Patient?_has:Observation:encounter:code=1",
        "/fhir/Patient?_has:Observation:patient:nope=1",
        "/fhir/Patient?_has:Observation:patient:code="}) {
    INFO(bad);
    CHECK(f.Refused(bad).starts_with("400 "));
  }
  CHECK(f.Refused("/fhir/Patient?_has:Observation:encounter:code=1") == "400 invalid");
  // Three references crossed is the limit (decision 0044): _has levels and chain links together.
  CHECK(f.Ids("/fhir/Organization?_has:Patient:organization:_has:Observation:patient:"
              "_has:Provenance:target:agent=Practitioner/doc") == V{"o1"});
  CHECK(f.Refused("/fhir/Organization?_has:Patient:organization:_has:Observation:patient:"
                  "_has:Provenance:target:_has:Provenance:target:agent=x") == "400 not-supported");
  CHECK(f.Refused("/fhir/Organization?_has:Patient:organization:_has:Observation:patient:"
                  "patient.organization.name=x") == "400 not-supported");
}
KAKEHASHI_BACKEND_TEST("search: reverse chaining _has (nested, paged, sorted, refused)",
                       "[handler]", ReverseChaining)

void DeeperChains(Backend backend) {
  ChainFixture f(backend);
  Populate(f);
  // R4 search.html "Chained parameters": two and three links.
  CHECK(f.Ids("/fhir/Observation?subject:Patient.organization.name=Kakehashi%20Hospital") ==
        V{"a1", "a2"});
  CHECK(f.Ids("/fhir/Observation?patient.organization.name=other") == V{"b1"});
  CHECK(f.Ids("/fhir/Observation?patient.organization:Organization.name=other") == V{"b1"});
  CHECK(f.Ids("/fhir/Observation?patient.organization._id=o2,o1") == V{"a1", "a2", "b1"});
  CHECK(f.Ids("/fhir/Observation?patient.organization.partof.name=Kakehashi") == V{"a1", "a2"});
  CHECK(f.Ids("/fhir/Observation?patient.organization.partof.name=Other").empty());
  CHECK(f.Ids("/fhir/Observation?patient.general-practitioner:Practitioner.name=Ito") ==
        V{"a1", "a2"});
  // A chain ending in _has: observations of patients that have some 9999-9 Observation.
  CHECK(f.Ids("/fhir/Observation?patient._has:Observation:patient:code=9999-9") ==
        V{"a1", "a2", "c1"});
  // With other criteria, _count paging and _sort.
  CHECK(f.Ids("/fhir/Observation?patient.organization.name=Kakehashi,Other&code=1234-5") ==
        V{"a1", "b1"});
  std::string next;
  CHECK(f.Ids("/fhir/Observation?patient.organization.name=Kakehashi,Other&_sort=-_id&_count=2",
              &next) == V{"b1", "a2"});
  REQUIRE(!next.empty());
  CHECK(f.Ids(next, &next) == V{"a1"});
  CHECK(f.Ids("/fhir/Observation?patient.organization.name=x'%20OR%20'1'='1").empty());
  // Ambiguous: general-practitioner can reference Organization, Practitioner or PractitionerRole,
  // Observation.subject many types; R4 lets the server refuse a chain without the type.
  CHECK(f.Refused("/fhir/Observation?patient.general-practitioner.name=Ito") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?subject.name=Aoki") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?subject:Nope.name=Aoki") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?patient.gender.name=x") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?patient.nope=x") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?patient.organization.=x") == "400 invalid");
  // The limit: three links, a fourth is refused.
  CHECK(f.Refused("/fhir/Observation?patient.organization.partof.partof.name=x") ==
        "400 not-supported");
}
KAKEHASHI_BACKEND_TEST("search: chains of two and three links, ambiguity and the limit",
                       "[handler]", DeeperChains)

void IdentifierAndOfType(Backend backend) {
  ChainFixture f(backend);
  Populate(f);
  // Reference.identifier, with and without a reference, and on another parameter.
  f.Put(
      "Observation", "i1",
      R"("status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pa","identifier":{"system":"urn:mrn","value":"A-1"}})");
  f.Put(
      "Observation", "i2",
      R"("status":"final","code":{"text":"x"},"subject":{"identifier":{"system":"urn:mrn","value":"B-2"}})");
  f.Put(
      "Observation", "i3",
      R"("status":"final","code":{"text":"x"},"performer":[{"identifier":{"system":"urn:npi","value":"A-1"}}])");
  // R4 search.html "identifier": the Reference's identifier, not the referenced resource's (a1
  // and a2 reference pa, whose own identifier is urn:mrn|A-1, without one).
  CHECK(f.Ids("/fhir/Observation?subject:identifier=urn:mrn|A-1") == V{"i1"});
  CHECK(f.Ids("/fhir/Observation?subject:identifier=A-1") == V{"i1"});
  CHECK(f.Ids("/fhir/Observation?subject:identifier=urn:mrn|") == V{"i1", "i2"});
  CHECK(f.Ids("/fhir/Observation?subject:identifier=urn:mrn|A-1,urn:mrn|B-2") == V{"i1", "i2"});
  CHECK(f.Ids("/fhir/Observation?subject:identifier=urn:other|A-1").empty());
  CHECK(f.Ids("/fhir/Observation?performer:identifier=A-1") == V{"i3"});
  // patient (subject restricted to Patient) reads the subject's identifiers.
  CHECK(f.Ids("/fhir/Observation?patient:identifier=urn:mrn|B-2") == V{"i2"});
  {
    Response r = f.Do("GET", "/fhir/Observation?subject:identifier=urn:mrn|&_summary=count");
    REQUIRE(r.status == 200);
    CHECK(Parse(r.body).Find("total")->Text() == "2");
  }
  CHECK(f.Ids("/fhir/Observation?subject:identifier=x'%20OR%20'1'='1").empty());
  CHECK(f.Refused("/fhir/Observation?subject:identifier=") == "400 invalid");
  CHECK(f.Refused("/fhir/Observation?subject:identifier=%7C") == "400 invalid");
  // R4 search.html "of-type": the type Coding's system|code and the value, of one Identifier.
  const std::string mr = "http://terminology.hl7.org/CodeSystem/v2-0203|MR|";
  const std::string dl = "http://terminology.hl7.org/CodeSystem/v2-0203|DL|";
  CHECK(f.Ids("/fhir/Patient?identifier=12345") == V{"pa", "pb"});
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "12345") == V{"pb"});
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + dl + "12345") == V{"pa"});
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "A-1") == V{"pa"});
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + dl + "A-1").empty());
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=http://other|MR|12345").empty());
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "12345," + dl + "12345") == V{"pa", "pb"});
  CHECK(f.Ids("/fhir/Observation?subject:Patient.identifier:of-type=" + mr + "12345") == V{"b1"});
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "12345&_sort=-family") == V{"pb"});
  for (const char* bad :
       {"MR|12345", "|MR|12345", "http://x||12345", "http://x|MR|", "http://x|MR|1|2", ""}) {
    INFO(bad);
    CHECK(f.Refused(std::string("/fhir/Patient?identifier:of-type=") + bad) == "400 invalid");
  }
  // An update drops the old rows: pb's MR identifier changes.
  f.Put(
      "Patient", "pb",
      R"("identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"99999"}])");
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "12345").empty());
  CHECK(f.Ids("/fhir/Patient?identifier:of-type=" + mr + "99999") == V{"pb"});
}
KAKEHASHI_BACKEND_TEST("search: reference :identifier and identifier :of-type", "[handler]",
                       IdentifierAndOfType)

TEST_CASE("search: metadata declares _has, chains, :identifier and :of-type", "[handler]") {
  ChainFixture f(Backend::kSqlite);
  Response r = f.Do("GET", "/fhir/metadata");
  REQUIRE(r.status == 200);
  const Json cs = Parse(r.body);
  const Json* patient = nullptr;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") == "Patient") patient = &res;
  }
  REQUIRE(patient != nullptr);
  auto doc = [](const Json& res, std::string_view name) -> std::string {
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == name) {
        return std::string(p.Str("type")) + ": " + std::string(p.Str("documentation"));
      }
    }
    return "absent";
  };
  CHECK(doc(*patient, "_has").starts_with("special: _has:Type:reference:parameter"));
  CHECK(doc(*patient, "organization").find(":identifier") != std::string::npos);
  CHECK(doc(*patient, "organization").find("at most 3 references") != std::string::npos);
  CHECK(doc(*patient, "identifier").find(":of-type") != std::string::npos);
  CHECK(doc(*patient, "gender").find(":of-type") != std::string::npos);
  CHECK(doc(*patient, "name").find(":of-type") == std::string::npos);
}

// A database indexed before decision 0044 (no :identifier or :of-type rows, its own
// fingerprint) gets them by the re-index on open (decision 0037); kIndexerVersion 4 is what
// tells this kakehashi's definition from the one before.
void ReindexAddsIdentifierRows(Backend backend) {
  auto t = testing::MakeStore(backend);
  t->store.reset();
  store::IndexDefinition old = store::DefaultIndexDefinition();
  CHECK(old.fingerprint.starts_with("v4-"));
  auto extract = old.extract;
  old.fingerprint = "test-before-0044-" + old.fingerprint;
  old.extract = [extract](const store::ResourceRow& row, store::IndexEntries& out) {
    if (!extract(row, out)) return false;
    std::erase_if(out.tokens,
                  [](const store::TokenEntry& e) { return e.param.ends_with(":identifier"); });
    std::erase_if(out.composites,
                  [](const store::CompositeEntry& e) { return e.param.ends_with(":of-type"); });
    return true;
  };
  t->options.index = old;
  t->store = t->OpenAnother();
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    store::Session& s = **session;
    REQUIRE(s.Begin());
    const std::vector<store::ResourceRow> rows = {
        {"Patient", "pb", 1, 1001, false,
         R"({"resourceType":"Patient","id":"pb","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"12345"}]})"},
        {"Observation", "i2", 1, 1002, false,
         R"({"resourceType":"Observation","id":"i2","status":"final","code":{"text":"x"},"subject":{"identifier":{"system":"urn:mrn","value":"B-2"}}})"}};
    for (const store::ResourceRow& row : rows) {
      store::IndexEntries entries;
      REQUIRE(old.extract(row, entries));
      REQUIRE(s.LockAndRead(row.type, row.id));
      REQUIRE(s.Write(row, entries));
    }
    REQUIRE(s.Commit());
  }
  const std::string of_type =
      "/fhir/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345";
  const std::string identifier = "/fhir/Observation?subject:identifier=urn:mrn|B-2";
  auto ids = [&](const std::string& target) {
    Handler h(*t->store, HandlerOptions{});
    Response r = h.Handle(Req("GET", target));
    INFO(target << " -> " << r.body);
    REQUIRE(r.status == 200);
    V out;
    const Json b = Parse(r.body);
    if (const Json* e = b.Find("entry")) {
      for (const Json& entry : e->Items()) out.emplace_back(entry.Find("resource")->Str("id"));
    }
    return out;
  };
  CHECK(ids(of_type).empty());  // the old rows: none of either kind
  CHECK(ids(identifier).empty());
  t->store.reset();
  t->options.index.reset();  // this kakehashi's definition
  t->store = t->OpenAnother();
  CHECK(ids(of_type) == V{"pb"});
  CHECK(ids(identifier) == V{"i2"});
}
KAKEHASHI_BACKEND_TEST("search: the re-index on open adds the :identifier and :of-type rows",
                       "[handler]", ReindexAddsIdentifierRows)

}  // namespace
}  // namespace kakehashi::gateway
