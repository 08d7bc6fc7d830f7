// _summary=true|text|data and _elements on search, read, vread and history; token :in / :not-in
// over the terminology module's value sets; token :above / :below refused (decision 0045).
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/terminology_ops.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "json_support.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/store.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;

struct Fixture : testing::HandlerFixture {
  std::unique_ptr<terminology::TerminologyStore> terms;
  explicit Fixture(Backend backend, bool with_terminology = true) : HandlerFixture(backend) {
    HandlerOptions o;
    if (with_terminology) {
      terminology::TerminologyStore::Options options;  // in memory: the built-in tables
      CollectingSink sink;
      auto store = terminology::TerminologyStore::Open(
          options, terminology::CodeSystemRegistry::Builtin(), sink);
      REQUIRE(store);
      terms = std::move(*store);
      o.type_operations = TerminologyOperations(*terms);
      o.value_set_codes = TerminologyValueSetCodes(*terms);
    }
    Reopen(std::move(o));
  }
  ~Fixture() { h.reset(); }  // before the terminology it reads
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;
  Json Get(const std::string& target, int status = 200) const {
    Response r = Do(Req("GET", target));
    INFO(target << " -> " << r.body);
    REQUIRE(r.status == status);
    return Parse(r.body);
  }
  std::set<std::string> Ids(const std::string& target) const {
    const std::vector<std::string> ids = HandlerFixture::Ids(target);
    return {ids.begin(), ids.end()};
  }
  void Put(const std::string& type, const std::string& id, const std::string& body) const {
    PutBody(type, id, body);
  }
  // An Observation with one code.coding (system, code) and, when given, a subject reference.
  void PutCoded(const std::string& id, const std::string& system, const std::string& code,
                const std::string& subject = "") const {
    Put("Observation", id,
        R"({"resourceType":"Observation","id":")" + id +
            R"(","status":"final","code":{"coding":[{"system":")" + system + R"(","code":")" +
            code + "\"}]}" +
            (subject.empty() ? "" : R"(,"subject":{"reference":")" + subject + "\"}") + "}");
  }
};

// The member names of an object, in order.
std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> out;
  for (const auto& [k, v] : object.Members()) out.push_back(k);
  return out;
}

// How many SUBSETTED tags meta.tag holds (0 when no meta or tag).
int Subsetted(const Json& resource) {
  const Json* meta = resource.Find("meta");
  const Json* tags = meta != nullptr ? meta->Find("tag") : nullptr;
  int n = 0;
  if (tags == nullptr) return 0;
  for (const Json& t : tags->Items()) {
    if (t.Str("system") == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" &&
        t.Str("code") == "SUBSETTED") {
      ++n;
    }
  }
  return n;
}

constexpr const char* kPatient =
    R"({"resourceType":"Patient","id":"p1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">山田 太郎</div>"},"extension":[{"url":"http://example.org/x","valueString":"x"}],"identifier":[{"system":"urn:mrn","value":"1"}],"active":true,"name":[{"family":"山田","given":["太郎"]}],"gender":"male","_gender":{"extension":[{"url":"http://example.org/g","valueString":"g"}]},"birthDate":"1980-04-01","maritalStatus":{"text":"既婚"},"contact":[{"name":{"family":"山田"}}],"communication":[{"language":{"text":"ja"}}],"link":[{"other":{"reference":"Patient/p2"},"type":"seealso"}]})";

constexpr const char* kObservation =
    R"({"resourceType":"Observation","id":"o1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">BP</div>"},"status":"final","category":[{"text":"vital-signs"}],"code":{"text":"BP"},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-02","note":[{"text":"n"}],"referenceRange":[{"text":"normal"}],"component":[{"code":{"text":"systolic"},"valueQuantity":{"value":120},"interpretation":[{"text":"H"}]}]})";

void Summary(Backend backend) {
  // R4 search.html "Summary": true = the isSummary elements of the type's StructureDefinition
  // (plus mandatory ones, id, meta), text = text, id, meta and top-level mandatory elements,
  // data = all but text; each marked SUBSETTED.
  Fixture f(backend);
  f.Put("Patient", "p1", kPatient);
  f.Put("Observation", "o1", kObservation);

  // _summary=true, on read. Patient: identifier, active, name, gender, birthDate, link are
  // isSummary; text, extension, maritalStatus, contact, communication are not.
  Json t = f.Get("/fhir/Patient/p1?_summary=true");
  CHECK(Keys(t) == std::vector<std::string>{"resourceType", "id", "meta", "identifier", "active",
                                            "name", "gender", "_gender", "birthDate", "link"});
  CHECK(Subsetted(t) == 1);
  CHECK(t.Find("meta")->Str("versionId") == "1");
  CHECK(t.Find("name")->Items()[0].Str("family") == "山田");
  // Inside a backbone element: Patient.link.other and type are isSummary.
  CHECK(Keys(t.Find("link")->Items()[0]) == std::vector<std::string>{"other", "type"});

  // Observation: status and code (min 1) and the isSummary ones; in Observation.component
  // code and value[x] are isSummary, interpretation is not; note and referenceRange are not.
  Json o = f.Get("/fhir/Observation/o1?_summary=true");
  // (R4 marks Observation.category not isSummary.)
  CHECK(Keys(o) == std::vector<std::string>{"resourceType", "id", "meta", "status", "code",
                                            "subject", "effectiveDateTime", "component"});
  CHECK(Keys(o.Find("component")->Items()[0]) == std::vector<std::string>{"code", "valueQuantity"});

  // _summary=text: text, id, meta and the mandatory top-level elements (Observation status, code).
  Json pt = f.Get("/fhir/Patient/p1?_summary=text");
  CHECK(Keys(pt) == std::vector<std::string>{"resourceType", "id", "meta", "text"});
  CHECK(Subsetted(pt) == 1);
  Json ot = f.Get("/fhir/Observation/o1?_summary=text");
  CHECK(Keys(ot) ==
        std::vector<std::string>{"resourceType", "id", "meta", "text", "status", "code"});

  // _summary=data: everything but text.
  Json pd = f.Get("/fhir/Patient/p1?_summary=data");
  CHECK(pd.Find("text") == nullptr);
  CHECK(pd.Find("contact") != nullptr);
  CHECK(pd.Find("extension") != nullptr);
  CHECK(pd.Str("gender") == "male");
  CHECK(Subsetted(pd) == 1);

  // _summary=false: the stored resource as it is.
  Response plain = f.Do(Req("GET", "/fhir/Patient/p1"));
  CHECK(f.Do(Req("GET", "/fhir/Patient/p1?_summary=false")).body == plain.body);
  CHECK(Subsetted(Parse(plain.body)) == 0);

  // Search: each entry subsetted; _summary=count still counts.
  Json s = f.Get("/fhir/Patient?_summary=true");
  REQUIRE(s.Find("entry")->Items().size() == 1);
  const Json& sr = *s.Find("entry")->Items()[0].Find("resource");
  CHECK(sr.Find("contact") == nullptr);
  CHECK(sr.Find("name") != nullptr);
  CHECK(Subsetted(sr) == 1);
  Json so = f.Get("/fhir/Observation?_summary=text&_include=Observation:subject");
  REQUIRE(so.Find("entry")->Items().size() == 2);
  for (const Json& e : so.Find("entry")->Items()) {
    CHECK(e.Find("resource")->Find("text") != nullptr);
    CHECK(e.Find("resource")->Find("subject") == nullptr);
    CHECK(e.Find("resource")->Find("name") == nullptr);
  }
  CHECK(f.Get("/fhir/Patient?_summary=count").Find("total")->Text() == "1");

  // vread and history.
  Json v = f.Get("/fhir/Patient/p1/_history/1?_summary=text");
  CHECK(Keys(v) == std::vector<std::string>{"resourceType", "id", "meta", "text"});
  Json h = f.Get("/fhir/Patient/p1/_history?_summary=true");
  const Json& hr = *h.Find("entry")->Items()[0].Find("resource");
  CHECK(hr.Find("contact") == nullptr);
  CHECK(hr.Find("gender") != nullptr);
  CHECK(Subsetted(hr) == 1);
  CHECK(h.Find("link")->Items()[0].Str("url").find("_summary=true") != std::string_view::npos);

  // Malformed: 400 with an OperationOutcome, on each interaction.
  for (const char* target :
       {"/fhir/Patient/p1?_summary=yes", "/fhir/Patient?_summary=", "/fhir/Patient?_summary=TRUE",
        "/fhir/Patient/p1/_history/1?_summary=count", "/fhir/Patient/p1/_history?_summary=count",
        "/fhir/Patient/p1?_summary=count", "/fhir/Patient?_summary=true&_elements=name",
        "/fhir/Patient/p1?_summary=text&_elements=name"}) {
    Json oo = f.Get(target, 400);
    CHECK(oo.Str("resourceType") == "OperationOutcome");
  }
}
KAKEHASHI_BACKEND_TEST("subset: _summary true, text, data on read, vread, history, search",
                       "[handler]", Summary)

void Elements(Backend backend) {
  // R4 search.html "_elements": the named elements, plus the mandatory ones, SUBSETTED once
  // (also when the stored resource already carries the tag); also on read, vread, history.
  Fixture f(backend);
  f.Put("Observation", "o1", kObservation);
  Json r = f.Get("/fhir/Observation/o1?_elements=subject");
  CHECK(Keys(r) ==
        std::vector<std::string>{"resourceType", "id", "meta", "status", "code", "subject"});
  CHECK(Subsetted(r) == 1);
  Json v = f.Get("/fhir/Observation/o1/_history/1?_elements=effective,note");
  CHECK(Keys(v) == std::vector<std::string>{"resourceType", "id", "meta", "status", "code",
                                            "effectiveDateTime", "note"});
  Json h = f.Get("/fhir/Observation/o1/_history?_elements=category");
  const Json& hr = *h.Find("entry")->Items()[0].Find("resource");
  CHECK(Keys(hr) ==
        std::vector<std::string>{"resourceType", "id", "meta", "status", "category", "code"});
  // A resource without meta gets one (after id), a stored SUBSETTED tag is not repeated.
  f.Put(
      "Patient", "p9",
      R"({"resourceType":"Patient","id":"p9","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"gender":"female"})");
  Json p = f.Get("/fhir/Patient/p9?_elements=gender");
  CHECK(Subsetted(p) == 1);
  CHECK(p.Str("gender") == "female");
}
KAKEHASHI_BACKEND_TEST("subset: _elements on read, vread, history; one SUBSETTED tag", "[handler]",
                       Elements)

void EverythingSubset(Backend backend) {
  // Patient/$everything answers a searchset Bundle, so the search result parameters _summary and
  // _elements (R4 search.html "Summary" §3.1.1.5.8, "Elements" §3.1.1.5.9) shape its entries as
  // on a search: each part (the Patient, its compartment, what they reference) subsetted and
  // tagged SUBSETTED once; _summary=count the total alone. Was 400 not-supported.
  Fixture f(backend);
  f.Put("Patient", "p1", kPatient);
  f.Put("Observation", "o1", kObservation);
  f.Put(
      "Practitioner", "d1",
      R"({"resourceType":"Practitioner","id":"d1","active":true,"name":[{"family":"医師"}],"gender":"female","qualification":[{"code":{"text":"MD"}}]})");
  f.Put(
      "Observation", "o2",
      R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"HR"},"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/d1"}],"note":[{"text":"n2"}]})");
  auto entries = [&](const Json& bundle) {
    std::vector<const Json*> out;
    for (const Json& e : bundle.Find("entry")->Items()) out.push_back(&e);
    return out;
  };
  Json t = f.Get("/fhir/Patient/p1/$everything?_summary=true");
  CHECK(t.Find("total")->Text() == "4");
  std::vector<std::string> seen;
  for (const Json* e : entries(t)) {
    const Json& r = *e->Find("resource");
    seen.push_back(std::string(r.Str("resourceType")) + "/" + std::string(r.Str("id")));
    CHECK(Subsetted(r) == 1);
    CHECK(!e->Str("fullUrl").empty());
    CHECK(r.Find("text") == nullptr);
    CHECK(r.Find("note") == nullptr);           // Observation.note is not isSummary
    CHECK(r.Find("contact") == nullptr);        // Patient.contact neither
    CHECK(r.Find("qualification") == nullptr);  // Practitioner.qualification neither
  }
  CHECK(seen == std::vector<std::string>{"Patient/p1", "Observation/o1", "Observation/o2",
                                         "Practitioner/d1"});
  CHECK(Keys(*entries(t)[0]->Find("resource")) ==
        std::vector<std::string>{"resourceType", "id", "meta", "identifier", "active", "name",
                                 "gender", "_gender", "birthDate", "link"});
  CHECK(entries(t)[3]->Find("search")->Str("mode") == "include");
  // _elements: the named elements plus the mandatory ones (Observation status, code).
  Json el = f.Get("/fhir/Patient/p1/$everything?_elements=subject,gender");
  for (const Json* e : entries(el)) {
    const Json& r = *e->Find("resource");
    CHECK(Subsetted(r) == 1);
    if (r.Str("resourceType") == "Observation") {
      CHECK(Keys(r) ==
            std::vector<std::string>{"resourceType", "id", "meta", "status", "code", "subject"});
    } else if (r.Str("resourceType") == "Patient") {
      CHECK(Keys(r) == std::vector<std::string>{"resourceType", "id", "meta", "gender", "_gender"});
    } else {
      CHECK(Keys(r) == std::vector<std::string>{"resourceType", "id", "meta", "gender"});
    }
  }
  // text and data; the paging links keep the parameter.
  Json tx = f.Get("/fhir/Patient/p1/$everything?_summary=text&_count=2");
  REQUIRE(entries(tx).size() == 2);
  CHECK(Keys(*entries(tx)[1]->Find("resource")) ==
        std::vector<std::string>{"resourceType", "id", "meta", "text", "status", "code"});
  std::string next;
  for (const Json& l : tx.Find("link")->Items()) {
    if (l.Str("relation") == "next") next = std::string(l.Str("url"));
  }
  CHECK(next.find("_summary=text") != std::string::npos);
  Json data = f.Get("/fhir/Patient/p1/$everything?_summary=data");
  CHECK(entries(data)[0]->Find("resource")->Find("contact") != nullptr);
  CHECK(entries(data)[0]->Find("resource")->Find("text") == nullptr);
  // count: the total of the three parts, no entries; with _type as filtered.
  Json count = f.Get("/fhir/Patient/p1/$everything?_summary=count");
  CHECK(count.Find("total")->Text() == "4");
  CHECK(count.Find("entry") == nullptr);
  CHECK(f.Get("/fhir/Patient/p1/$everything?_summary=count&_type=Observation")
            .Find("total")
            ->Text() == "2");
  // false: as without it.
  CHECK(f.Do(Req("GET", "/fhir/Patient/p1/$everything?_summary=false")).body.find("SUBSETTED") ==
        std::string::npos);
  // POST with a Parameters body.
  Request post = Req("POST", "/fhir/Patient/p1/$everything",
                     R"({"resourceType":"Parameters","parameter":[{"name":"_summary",)"
                     R"("valueCode":"count"}]})");
  Response pr = f.Do(post);
  INFO(pr.body);
  CHECK(pr.status == 200);
  CHECK(Parse(pr.body).Find("total")->Text() == "4");
  // Malformed or combined: 400 with an OperationOutcome.
  for (const char* bad : {"?_summary=yes", "?_summary=true&_elements=name"}) {
    CHECK(f.Get(std::string("/fhir/Patient/p1/$everything") + bad, 400).Str("resourceType") ==
          "OperationOutcome");
  }
  // The CapabilityStatement names the parameters on the operation.
  Json cs = f.Get("/fhir/metadata");
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != "Patient") continue;
    CHECK(res.Find("operation")->Items()[0].Str("documentation").find("_summary") !=
          std::string_view::npos);
  }
}
KAKEHASHI_BACKEND_TEST("subset: _summary and _elements on Patient/$everything", "[handler]",
                       EverythingSubset)

void ValueSetIn(Backend backend) {
  // Token :in / :not-in (R4 search.html "in", "not-in") by the terminology module's value sets
  // (the implicit value set of a code system, as ValueSet/$expand serves it).
  Fixture f(backend);
  const std::string v2_0078 = "http://terminology.hl7.org/CodeSystem/v2-0078";
  f.PutCoded("h", v2_0078, "H");
  f.PutCoded("l", v2_0078, "L");
  f.PutCoded("x", v2_0078, "NOT-A-CODE");            // the system, but not one of its codes
  f.PutCoded("o", "http://example.org/other", "H");  // the code, in another system
  f.Put("Observation", "none",
        R"({"resourceType":"Observation","id":"none","status":"final","code":{"text":"t"}})");
  // The value set: by the system URL (implicit value set) or its ValueSet twin.
  for (const std::string& vs :
       {v2_0078, std::string("http://terminology.hl7.org/ValueSet/v2-0078")}) {
    INFO(vs);
    CHECK(f.Ids("/fhir/Observation?code:in=" + vs) == std::set<std::string>{"h", "l"});
    CHECK(f.Ids("/fhir/Observation?code:not-in=" + vs) == std::set<std::string>{"x", "o", "none"});
  }
  // ANDed with another parameter, ORed over two value sets.
  CHECK(f.Ids("/fhir/Observation?code:in=" + v2_0078 + "&_id=l,o") == std::set<std::string>{"l"});
  CHECK(f.Ids("/fhir/Observation?code:in=" + v2_0078 +
              ",http://terminology.hl7.org/CodeSystem/v2-0085") == std::set<std::string>{"h", "l"});
  // Unknown value set, a ValueSet not stored, an empty value: 400 with an OperationOutcome.
  Json unknown = f.Get("/fhir/Observation?code:in=http://example.org/ValueSet/nothing", 400);
  CHECK(unknown.Find("issue")->Items()[0].Str("code") == "not-found");
  CHECK(f.Get("/fhir/Observation?code:in=ValueSet/123", 400).Str("resourceType") ==
        "OperationOutcome");
  CHECK(f.Get("/fhir/Observation?code:in=", 400).Str("resourceType") == "OperationOutcome");
  // Subsumption: the terminology has no hierarchy.
  for (const char* m : {"above", "below"}) {
    Json oo = f.Get(std::string("/fhir/Observation?code:") + m + "=" + v2_0078 + "|H", 400);
    CHECK(oo.Find("issue")->Items()[0].Str("code") == "not-supported");
    CHECK(oo.Find("issue")->Items()[0].Str("diagnostics").find("hierarchy") !=
          std::string_view::npos);
  }
  // _contained stays refused.
  CHECK(f.Get("/fhir/Observation?_contained=true", 400).Str("resourceType") == "OperationOutcome");

  // The CapabilityStatement says so on token parameters, and names the result parameters.
  Json cs = f.Get("/fhir/metadata");
  CHECK(cs.Find("rest")->Items()[0].Str("documentation").find("_summary (true, text, data") !=
        std::string_view::npos);
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != "Observation") continue;
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == "code") {
        CHECK(p.Str("documentation").find(":in and :not-in") != std::string_view::npos);
      }
    }
  }
}
KAKEHASHI_BACKEND_TEST("subset: token :in / :not-in by value set; :above / :below refused",
                       "[handler]", ValueSetIn)

void StoredValueSetIn(Backend backend) {
  // Token :in / :not-in by ValueSets stored on the server (R4 search.html "in": a reference to
  // a ValueSet resource or its canonical url; decision 0043): compose.include of explicit
  // concepts and of whole code systems the terminology knows, compose.exclude, expansion.
  Fixture f(backend);
  const std::string v2_0078 = "http://terminology.hl7.org/CodeSystem/v2-0078";
  auto vs = [&](const std::string& id, const std::string& body) {
    f.Put("ValueSet", id,
          R"({"resourceType":"ValueSet","id":")" + id + R"(","status":"active",)" + body + "}");
  };
  auto patient = [&](const std::string& id, const std::string& language) {
    f.Put("Patient", id,
          R"({"resourceType":"Patient","id":")" + id +
              R"(","communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":")" +
              language + R"("}]}}]})");
  };
  patient("pm", "ja");
  patient("pf", "en");
  f.PutCoded("h", v2_0078, "H", "Patient/pm");
  f.PutCoded("l", v2_0078, "L", "Patient/pf");
  f.PutCoded("x", v2_0078, "NOT-A-CODE");
  f.PutCoded("o", "http://example.org/other", "H");
  vs("hl", R"("url":"http://example.org/fhir/ValueSet/high","compose":{"include":[)"
           R"({"system":")" +
               v2_0078 +
               R"(","concept":[{"code":"H"}]},)"
               R"({"system":"http://example.org/other","concept":[{"code":"H"}]}]})");
  using S = std::set<std::string>;
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/hl") == S{"h", "o"});
  CHECK(f.Ids("/fhir/Observation?code:in=http://example.org/fhir/ValueSet/high") == S{"h", "o"});
  CHECK(f.Ids("/fhir/Observation?code:in=http://example.org/fhir/ValueSet/high|1.0") ==
        S{"h", "o"});
  CHECK(f.Ids("/fhir/Observation?code:not-in=ValueSet/hl") == S{"l", "x"});
  // A whole code system the terminology knows, less an excluded concept.
  vs("all-but-l", R"("compose":{"include":[{"system":")" + v2_0078 +
                      R"("}],"exclude":[{"system":")" + v2_0078 +
                      R"(","concept":[{"code":"L"}]}]})");
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/all-but-l") == S{"h"});
  // An expansion without compose; ORed with another value set.
  vs("exp", R"("expansion":{"timestamp":"2026-12-02T00:00:00Z","contains":[)"
            R"({"system":"http://example.org/other","code":"H"}]})");
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/exp") == S{"o"});
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/exp,ValueSet/all-but-l") == S{"h", "o"});
  // At the end of a chain and inside _has.
  vs("ja", R"("compose":{"include":[{"system":"urn:ietf:bcp:47","concept":[{"code":"ja"}]}]})");
  CHECK(f.Ids("/fhir/Observation?subject:Patient.language:in=ValueSet/ja") == S{"h"});
  CHECK(f.Ids("/fhir/Observation?subject:Patient.language:not-in=ValueSet/ja") == S{"l"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:subject:code:in=ValueSet/hl") == S{"pm"});
  // Not expanded here: 400, never a guess.
  vs("filtered", R"("compose":{"include":[{"system":")" + v2_0078 +
                     R"(","filter":[{"property":"concept","op":"is-a","value":"H"}]}]})");
  CHECK(f.Get("/fhir/Observation?code:in=ValueSet/filtered", 400)
            .Find("issue")
            ->Items()[0]
            .Str("code") == "not-supported");
  vs("unknown-system", R"("compose":{"include":[{"system":"http://example.org/nosuch"}]})");
  CHECK(f.Get("/fhir/Observation?code:in=ValueSet/unknown-system", 400)
            .Find("issue")
            ->Items()[0]
            .Str("code") == "not-found");
  CHECK(f.Get("/fhir/Observation?code:in=ValueSet/absent", 400)
            .Find("issue")
            ->Items()[0]
            .Str("code") == "not-found");
  CHECK(f.Get("/fhir/Observation?code:in=ValueSet/bad!id", 400).Str("resourceType") ==
        "OperationOutcome");
  vs("twin", R"("url":"http://example.org/fhir/ValueSet/high","compose":{"include":[)"
             R"({"system":"http://example.org/other","concept":[{"code":"H"}]}]})");
  CHECK(f.Get("/fhir/Observation?code:in=http://example.org/fhir/ValueSet/high", 400)
            .Find("issue")
            ->Items()[0]
            .Str("code") == "multiple-matches");
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/twin") == S{"o"});
}
KAKEHASHI_BACKEND_TEST("subset: token :in / :not-in by ValueSets stored on the server", "[handler]",
                       StoredValueSetIn)

void CodeElementIn(Backend backend) {
  // Token :in / :not-in on a `code` element (Patient.gender): its rows have no system, the R4
  // binding implies it (datatypes.html "code"; required binding to ValueSet
  // administrative-gender, system http://hl7.org/fhir/administrative-gender). A ValueSet of that
  // system's codes matches them; the same code of another system does not (decision 0056 §3).
  // Was: every gender:in of a ValueSet naming the system matched nothing.
  Fixture f(backend);
  auto patient = [&](const std::string& id, const std::string& gender) {
    f.Put("Patient", id,
          R"({"resourceType":"Patient","id":")" + id + "\"" +
              (gender.empty() ? "" : R"(,"gender":")" + gender + "\"") + "}");
  };
  patient("m", "male");
  patient("w", "female");
  patient("u", "unknown");
  patient("none", "");
  auto vs = [&](const std::string& id, const std::string& body) {
    f.Put("ValueSet", id,
          R"({"resourceType":"ValueSet","id":")" + id + R"(","status":"active",)" + body + "}");
  };
  const std::string ag = "http://hl7.org/fhir/administrative-gender";
  vs("mf", R"("compose":{"include":[{"system":")" + ag +
               R"(","concept":[{"code":"male"},{"code":"female"}]}]})");
  vs("other",
     R"("compose":{"include":[{"system":"http://example.org/sex","concept":[{"code":"male"}]}]})");
  using S = std::set<std::string>;
  CHECK(f.Ids("/fhir/Patient?gender:in=ValueSet/mf") == S{"m", "w"});
  CHECK(f.Ids("/fhir/Patient?gender:not-in=ValueSet/mf") == S{"u", "none"});
  CHECK(f.Ids("/fhir/Patient?gender:in=ValueSet/other").empty());
  CHECK(f.Ids("/fhir/Patient?gender:not-in=ValueSet/other") == S{"m", "w", "u", "none"});
  // The terminology's implicit value set of the code system, by its URL.
  CHECK(f.Ids("/fhir/Patient?gender:in=" + ag) == S{"m", "w", "u"});
  CHECK(f.Ids("/fhir/Patient?gender:not-in=" + ag) == S{"none"});
  // Inside _has and at the end of a chain.
  f.Put(
      "Observation", "o",
      R"({"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/w"}})");
  CHECK(f.Ids("/fhir/Observation?subject:Patient.gender:in=ValueSet/mf") == S{"o"});
  CHECK(f.Ids("/fhir/Observation?subject:Patient.gender:in=ValueSet/other").empty());
  // A CodeableConcept keeps its coding's own system: Observation.code with the same code in
  // no system is not in a ValueSet of administrative-gender.
  f.Put(
      "Observation", "nosys",
      R"({"resourceType":"Observation","id":"nosys","status":"final","code":{"coding":[{"code":"male"}]}})");
  CHECK(f.Ids("/fhir/Observation?code:in=ValueSet/mf").empty());
  // Plain system|code (R4 search.html "token") the same way: the implied system matches the
  // system-less rows, :not excludes them, another system matches nothing. Was: nothing found.
  CHECK(f.Ids("/fhir/Patient?gender=" + ag + "|male") == S{"m"});
  CHECK(f.Ids("/fhir/Patient?gender=" + ag + "|male," + ag + "|female") == S{"m", "w"});
  CHECK(f.Ids("/fhir/Patient?gender:not=" + ag + "|male") == S{"w", "u", "none"});
  CHECK(f.Ids("/fhir/Patient?gender=http://example.org/sex|male").empty());
  CHECK(f.Ids("/fhir/Patient?gender=|male") == S{"m"});
  CHECK(f.Ids("/fhir/Observation?subject:Patient.gender=" + ag + "|female") == S{"o"});
  CHECK(f.Ids("/fhir/Observation?code=" + ag + "|male").empty());
  // The CapabilityStatement says so on token parameters.
  CHECK(testing::SearchParamDocumentation(f.Get("/fhir/metadata"), "Patient", "gender")
            .find("its R4 binding implies") != std::string::npos);
}
KAKEHASHI_BACKEND_TEST("subset: token :in on a code element by its bound system", "[handler]",
                       CodeElementIn)

void CodeSystemSubsumption(Backend backend) {
  // Token :below / :above (R4 search.html "below", "above": subsumption) by a CodeSystem stored
  // on this server, its hierarchy the concept.concept nesting (codesystem.html, hierarchyMeaning
  // is-a); other systems stay 400 not-supported (decision 0056 §4). Was 400 for every system.
  Fixture f(backend);
  const std::string sys = "http://example.org/fhir/CodeSystem/body";
  f.Put("CodeSystem", "body",
        R"({"resourceType":"CodeSystem","id":"body","url":")" + sys +
            R"(","status":"active","content":"complete","hierarchyMeaning":"is-a","concept":[)"
            R"({"code":"A","concept":[{"code":"A1","concept":[{"code":"A1a"}]},{"code":"A2"}]},)"
            R"({"code":"B"}]})");
  f.Put("Patient", "pt", R"({"resourceType":"Patient","id":"pt"})");
  f.PutCoded("oA", sys, "A");
  f.PutCoded("oA1", sys, "A1");
  f.PutCoded("oA1a", sys, "A1a", "Patient/pt");
  f.PutCoded("oA2", sys, "A2");
  f.PutCoded("oB", sys, "B");
  f.PutCoded("oX", "http://example.org/other", "A1");
  using S = std::set<std::string>;
  CHECK(f.Ids("/fhir/Observation?code:below=" + sys + "|A") == S{"oA", "oA1", "oA1a", "oA2"});
  CHECK(f.Ids("/fhir/Observation?code:below=" + sys + "|A1") == S{"oA1", "oA1a"});
  CHECK(f.Ids("/fhir/Observation?code:below=" + sys + "|B") == S{"oB"});
  CHECK(f.Ids("/fhir/Observation?code:above=" + sys + "|A1a") == S{"oA", "oA1", "oA1a"});
  CHECK(f.Ids("/fhir/Observation?code:above=" + sys + "|A2") == S{"oA", "oA2"});
  // Alternatives OR; ANDed with another parameter; inside _has.
  CHECK(f.Ids("/fhir/Observation?code:below=" + sys + "|A1," + sys + "|B") ==
        S{"oA1", "oA1a", "oB"});
  CHECK(f.Ids("/fhir/Observation?code:below=" + sys + "|A&_id=oA2,oB") == S{"oA2"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:subject:code:below=" + sys + "|A1") == S{"pt"});
  CHECK(f.Ids("/fhir/Patient?_has:Observation:subject:code:below=" + sys + "|A2").empty());
  auto code_of = [&](const std::string& target) {
    return std::string(f.Get(target, 400).Find("issue")->Items()[0].Str("code"));
  };
  // A code not in it, no system, a system not stored (the terminology's flat ones included),
  // another hierarchyMeaning: 400, never a guess.
  CHECK(code_of("/fhir/Observation?code:below=" + sys + "|Z") == "not-found");
  CHECK(code_of("/fhir/Observation?code:below=A") == "invalid");
  CHECK(code_of("/fhir/Observation?code:above=http://terminology.hl7.org/CodeSystem/v2-0078|H") ==
        "not-supported");
  f.Put(
      "CodeSystem", "parts",
      R"({"resourceType":"CodeSystem","id":"parts","url":"http://example.org/parts","status":"active","content":"complete","hierarchyMeaning":"part-of","concept":[{"code":"car","concept":[{"code":"wheel"}]}]})");
  CHECK(code_of("/fhir/Observation?code:below=http://example.org/parts|car") == "not-supported");
  // On a composite component: refused.
  CHECK(code_of("/fhir/Observation?code-value-quantity:below=" + sys + "|A$1") == "not-supported");
  // The CapabilityStatement says so.
  CHECK(testing::SearchParamDocumentation(f.Get("/fhir/metadata"), "Observation", "code")
            .find(":below and :above") != std::string::npos);
}
KAKEHASHI_BACKEND_TEST("subset: token :below / :above by a CodeSystem stored on the server",
                       "[handler]", CodeSystemSubsumption)

TEST_CASE("subset: :in without a terminology is 400", "[handler]") {
  Fixture f(Backend::kSqlite, false);
  // Without a terminology only ValueSets stored here are known (decision 0043).
  Json oo = f.Get("/fhir/Observation?code:in=http://terminology.hl7.org/CodeSystem/v2-0078", 400);
  CHECK(oo.Find("issue")->Items()[0].Str("code") == "not-found");
  Json cs = f.Get("/fhir/metadata");
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != "Observation") continue;
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == "code") {
        CHECK(p.Str("documentation").find(":in and :not-in (a ValueSet stored") !=
              std::string_view::npos);
      }
    }
  }
}

}  // namespace
}  // namespace kakehashi::gateway
