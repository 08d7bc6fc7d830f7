// Reverse chaining (_has), chains of several links and their limits, reference :identifier and
// identifier :of-type (decision 0044), over the handler on both backends.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "json_support.hpp"
#include "store/sql_session.hpp"
#include "test_support.hpp"

#include <memory>
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

// Decision 0042: a chain is read by value (its matches' ids whole) when PlanChains counts few
// matches, per resource in result order when many. Both plans find the same resources in the
// same order and pages: the store's threshold is set so that every chain is "few" (a huge one),
// "common" (2) or either, by its own counts (6).
void ChainPlans(Backend backend) {
  ChainFixture f(backend);
  f.Put("Organization", "ga", R"("name":"Group A")");
  f.Put("Organization", "gb", R"("name":"Group B")");
  const char* org_names[] = {"Alpha", "Beta", "Gamma"};
  for (int o = 0; o < 3; ++o) {
    f.Put("Organization", "o" + std::to_string(o),
          std::string(R"("name":")") + org_names[o] + R"(","partOf":{"reference":"Organization/)" +
              (o < 2 ? "ga" : "gb") + "\"}");
  }
  constexpr int kPatients = 24;
  for (int i = 0; i < kPatients; ++i) {
    f.Put("Patient", "p" + std::to_string(i),
          R"("identifier":[{"system":"urn:mrn","value":"m)" + std::to_string(i) +
              R"("}],"name":[{"family":"F)" + std::to_string(i % 3) + R"("}],"gender":")" +
              (i % 4 == 0 ? "male" : "female") +
              R"(","managingOrganization":{"reference":"Organization/o)" + std::to_string(i % 3) +
              "\"}");
  }
  constexpr int kObservations = 48;
  for (int j = 0; j < kObservations; ++j) {
    f.Put("Observation", "x" + std::to_string(j),
          R"("status":"final","code":{"coding":[{"system":"http://loinc.org","code":"c)" +
              std::to_string(j % 2) + R"("}]},"subject":{"reference":"Patient/p)" +
              std::to_string(j % kPatients) + "\"}");
  }
  // The observations whose patient p<i> satisfies `keep`, in the order written (the default
  // order: lastUpdated, then id).
  auto observations = [&](auto keep, int code = -1) {
    V ids;
    for (int j = 0; j < kObservations; ++j) {
      if (keep(j % kPatients) && (code < 0 || j % 2 == code))
        ids.push_back("x" + std::to_string(j));
    }
    return ids;
  };
  struct Case {
    std::string search;
    V expected;
  };
  const std::vector<Case> cases = {
      {"Observation?patient.family=F1", observations([](int i) { return i % 3 == 1; })},
      {"Observation?subject:Patient.gender=male", observations([](int i) { return i % 4 == 0; })},
      {"Observation?patient.family=F1,F2", observations([](int i) { return i % 3 != 0; })},
      {"Observation?patient.family=F1&code=c0", observations([](int i) { return i % 3 == 1; }, 0)},
      {"Observation?patient.family=F2&patient.gender=male",
       observations([](int i) { return i % 3 == 2 && i % 4 == 0; })},
      {"Observation?patient.identifier=urn:mrn|m5", observations([](int i) { return i == 5; })},
      {"Observation?patient.organization.name=Beta",
       observations([](int i) { return i % 3 == 1; })},
      {"Observation?patient.organization.partof.name=Group%20A",
       observations([](int i) { return i % 3 != 2; })},
      {"Observation?patient.organization.partof.name=Group%20B&patient.gender=female",
       observations([](int i) { return i % 3 == 2 && i % 4 != 0; })},
      {"Observation?patient.organization.partof.name=Nobody", {}},
      {"Patient?organization.name=Gamma",
       [&] {
         V ids;
         for (int i = 0; i < kPatients; ++i) {
           if (i % 3 == 2) ids.push_back("p" + std::to_string(i));
         }
         return ids;
       }()},
  };
  for (const std::int64_t threshold : {std::int64_t{1} << 40, std::int64_t{2}, std::int64_t{6}}) {
    f.t->options.search_threshold = threshold;
    auto store = f.t->OpenAnother();
    Handler h(*store, {});
    for (const Case& c : cases) {
      INFO("threshold " << threshold << ": " << c.search);
      V all;
      std::string next = "/fhir/" + c.search + "&_count=4";
      for (int page = 0; page < 20 && !next.empty(); ++page) {
        Response r = h.Handle(Req("GET", next));
        INFO(next << " -> " << r.body);
        REQUIRE(r.status == 200);
        const Json b = Parse(r.body);
        if (const Json* e = b.Find("entry")) {
          for (const Json& entry : e->Items()) all.emplace_back(entry.Find("resource")->Str("id"));
        }
        next.clear();
        for (const Json& l : b.Find("link")->Items()) {
          if (l.Str("relation") == "next") {
            next = std::string(l.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
          }
        }
      }
      CHECK(all == c.expected);
    }
  }
}
KAKEHASHI_BACKEND_TEST("search: chains read by value or per resource find the same pages",
                       "[handler]", ChainPlans)

// A token parameter's alternatives (`code=a,b`, `code:in`): on PostgreSQL one index condition
// over idx_token (decision 0042) when all are codes with a system or all without; the same
// resources on both backends, whichever form.
void TokenAlternatives(Backend backend) {
  ChainFixture f(backend);
  Populate(f);
  f.Put("Observation", "o1",
        R"("status":"final","code":{"coding":[{"system":"http://other","code":"9999-9"}]})");
  f.Put("Observation", "o2", R"("status":"final","code":{"coding":[{"code":"1234-5"}]})");
  CHECK(f.Ids("/fhir/Observation?code=1234-5,9999-9") == V{"a1", "a2", "b1", "c1", "o1", "o2"});
  CHECK(f.Ids("/fhir/Observation?code=http://loinc.org|1234-5,http://loinc.org|9999-9") ==
        V{"a1", "a2", "b1", "c1"});
  CHECK(f.Ids("/fhir/Observation?code=http://loinc.org|1234-5,http://other|9999-9") ==
        V{"a1", "b1", "o1"});
  CHECK(f.Ids("/fhir/Observation?code=http://other|1234-5,http://loinc.org|9999-9") ==
        V{"a2", "c1"});
  CHECK(f.Ids("/fhir/Observation?code=%7C1234-5,http://other|9999-9") == V{"o1", "o2"});
  CHECK(f.Ids("/fhir/Observation?code=1234-5,http://loinc.org|9999-9") ==
        V{"a1", "a2", "b1", "c1", "o2"});
  CHECK(f.Ids("/fhir/Observation?code=nope,9999-9&status=final,preliminary") ==
        V{"a2", "c1", "o1"});
  CHECK(f.Ids("/fhir/Observation?code=nope,other").empty());
  std::string next;
  CHECK(f.Ids("/fhir/Observation?code=1234-5,9999-9&_count=4", &next) == V{"a1", "a2", "b1", "c1"});
  CHECK(f.Ids(next, &next) == V{"o1", "o2"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:patient:code=http://loinc.org|1234-5,"
              "http://loinc.org|9999-9") == V{"pa", "pb", "pc"});
  Response r = f.Do("GET", "/fhir/Observation?code=1234-5,9999-9&_summary=count");
  REQUIRE(r.status == 200);
  CHECK(Parse(r.body).Find("total")->Text() == "6");
}
KAKEHASHI_BACKEND_TEST("search: a token parameter's alternatives", "[handler]", TokenAlternatives)

TEST_CASE("search: a token's alternatives are one index condition on PostgreSQL", "[detail]") {
  using store::detail::Dialect;
  using store::detail::Param;
  const store::detail::ParamKeys keys(store::detail::Rows{{"7", "Observation", "code"}});
  store::SearchQuery q;
  q.type = "Observation";
  std::vector<store::Predicate> any;
  for (const char* code : {"a", "b"}) {
    store::Predicate p;
    p.kind = store::Predicate::Kind::kToken;
    p.param = "code";
    p.system = "http://s";
    p.value = code;
    any.push_back(p);
  }
  q.where = {any};
  std::string sql;
  std::vector<Param> params;
  store::detail::SearchSql(q, Dialect::kPostgres, keys, sql, params);
  CHECK(sql.find("(r.rk IN (SELECT x0.rk FROM idx_token x0 WHERE (x0.pid = ?) AND x0.code IN (?, "
                 "?) AND (x0.code, x0.system) IN (VALUES (?, ?), (?, ?))))") != std::string::npos);
  CHECK(params == std::vector<Param>{std::string("Observation"), std::int64_t{7}, std::string("a"),
                                     std::string("b"), std::string("a"), std::string("http://s"),
                                     std::string("b"), std::string("http://s"), std::int64_t{20},
                                     std::int64_t{0}});
  // Without systems: the codes alone.
  for (auto& p : q.where[0]) p.system.reset();
  store::detail::SearchSql(q, Dialect::kPostgres, keys, sql, params);
  CHECK(sql.find("x0.code IN (?, ?))") != std::string::npos);
  CHECK(sql.find("VALUES") == std::string::npos);
  // Mixed, negated, or SQLite (its planner ORs one index probe per code): one IN per code.
  q.where[0][0].system = "http://s";
  store::detail::SearchSql(q, Dialect::kPostgres, keys, sql, params);
  CHECK(sql.find("x0.code IN") == std::string::npos);
  q.where[0][0].system.reset();
  store::detail::SearchSql(q, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("x0.code IN") == std::string::npos);
}

// The statements of the two chain forms, and PlanChains' choice from its counts.
TEST_CASE("search: a chain's plan by its counted matches (decision 0042)", "[detail]") {
  using store::detail::Dialect;
  using store::detail::Param;
  using store::detail::Rows;
  const store::detail::ParamKeys keys(Rows{});
  // Observation?patient.organization.name=X
  auto org = std::make_shared<store::Conjunction>();
  store::Predicate name;
  name.kind = store::Predicate::Kind::kString;
  name.param = "name";
  name.value = "x";
  org->push_back({name});
  store::Predicate organization;
  organization.kind = store::Predicate::Kind::kReference;
  organization.param = "organization";
  organization.chain_type = "Organization";
  organization.chain = org;
  auto patient = std::make_shared<store::Conjunction>();
  patient->push_back({organization});
  store::Predicate chain;
  chain.kind = store::Predicate::Kind::kReference;
  chain.param = "patient";
  chain.chain_type = "Patient";
  chain.chain = patient;
  store::SearchQuery q;
  q.type = "Observation";
  q.where = {{chain}};
  // The counts: the organizations' names (no idx_ref), the patients referencing them (one
  // idx_ref), the observations referencing those (two).
  std::int64_t names = 0;
  std::int64_t patients = 0;
  std::int64_t observations = 0;
  std::vector<std::string> seen;
  const store::detail::RunQuery run = [&](std::string_view sql,
                                          const std::vector<Param>&) -> Result<Rows> {
    seen.emplace_back(sql);
    if (sql.find("MAX(rk)") != std::string_view::npos) return Rows{{"1000000"}};
    std::size_t refs = 0;
    for (std::size_t at = sql.find("idx_ref"); at != std::string_view::npos;
         at = sql.find("idx_ref", at + 1)) {
      ++refs;
    }
    const std::int64_t n = refs == 0 ? names : refs == 1 ? patients : observations;
    return Rows{{std::to_string(n)}};
  };
  auto plan = [&](std::int64_t threshold, std::int64_t drive = 0) {
    seen.clear();
    auto planned = store::detail::PlanChains(q, Dialect::kSqlite, keys, run, threshold, drive);
    REQUIRE(planned);
    REQUIRE(*planned);
    return **planned;
  };
  auto inner = [](const store::SearchQuery& s) { return (*s.where[0][0].chain)[0][0]; };
  // Few at every link: read by value, the query driven from the matches.
  names = 1;
  patients = 5;
  observations = 9;
  store::SearchQuery few = plan(10);
  CHECK(seen.size() == 3);
  CHECK(few.where[0][0].few);
  CHECK(!few.where[0][0].probe);
  CHECK(inner(few).few);
  std::string sql;
  std::vector<Param> params;
  store::detail::SearchSql(few, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("+r.type = ?") != std::string::npos);
  CHECK(sql.find("EXISTS") == std::string::npos);
  // Under the threshold but not under the drive threshold (3): by value in result order, the
  // top link not counted when the patients already reach the drive threshold.
  store::SearchQuery by_value = plan(10, 3);
  CHECK(seen.size() == 2);
  CHECK(!by_value.where[0][0].few);
  CHECK(!by_value.where[0][0].probe);
  CHECK(inner(by_value).few);
  store::detail::SearchSql(by_value, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("+r.type") == std::string::npos);
  CHECK(sql.find("EXISTS") == std::string::npos);
  patients = 2;
  by_value = plan(10, 3);
  CHECK(seen.size() == 3);
  CHECK(!by_value.where[0][0].few);
  CHECK(!by_value.where[0][0].probe);
  patients = 5;
  // The patients reach the threshold: both links per resource; the observations are not counted.
  patients = 10;
  store::SearchQuery common = plan(10);
  CHECK(seen.size() == 2);
  CHECK(common.where[0][0].probe);
  CHECK(inner(common).probe);
  store::detail::SearchSql(common, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("+r.type") == std::string::npos);
  CHECK(sql.find("EXISTS (SELECT 1 FROM idx_ref x0 INDEXED BY idx_ref_by_resource CROSS JOIN "
                 "resources c0 WHERE x0.rk = r.rk AND ") != std::string::npos);
  CHECK(sql.find("EXISTS (SELECT 1 FROM idx_ref x1 INDEXED BY idx_ref_by_resource CROSS JOIN "
                 "resources c1 WHERE x1.rk = c0.rk AND ") != std::string::npos);
  CHECK(sql.find("ORDER BY r.last_updated, r.id LIMIT ?") != std::string::npos);
  store::detail::SearchSql(common, Dialect::kPostgres, keys, sql, params);
  CHECK(sql.find("INDEXED BY") == std::string::npos);
  CHECK(sql.find(" OFFSET 0)") != std::string::npos);
  // Only the observations reach it: the inner link stays by value inside the per-row check.
  patients = 9;
  observations = 10;
  store::SearchQuery mixed = plan(10);
  CHECK(mixed.where[0][0].probe);
  CHECK(inner(mixed).few);
  // The organizations' names reach it: nothing else is counted.
  names = 10;
  store::SearchQuery names_common = plan(10);
  CHECK(seen.size() == 1);
  CHECK(names_common.where[0][0].probe);
  CHECK(inner(names_common).probe);
  // No chain, or a sort (every match is read): nothing planned, nothing counted.
  store::SearchQuery sorted = q;
  sorted.sort.push_back({"_id", store::Predicate::Kind::kId, false});
  seen.clear();
  auto none = store::detail::PlanChains(sorted, Dialect::kSqlite, keys, run, 10);
  REQUIRE(none);
  CHECK(!*none);
  CHECK(seen.empty());
  // The threshold: sqrt(0.5 resources page links), at least 50.
  CHECK(store::detail::ChainThreshold(0, 21, 1) == 50);
  CHECK(store::detail::ChainThreshold(200000, 21, 1) == 1449);
  CHECK(store::detail::ChainThreshold(200000, 21, 3) == 2509);
  CHECK(store::detail::ChainDriveThreshold(200000, 21) == 187);
  CHECK(store::detail::ChainDriveThreshold(0, 21) == 1);
}

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
