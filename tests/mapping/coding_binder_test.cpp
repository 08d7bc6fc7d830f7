#include "kakehashi/mapping/coding_binder.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/mapping/hl7v2_view.hpp"
#include "kakehashi/mapping/mapper.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/loaders.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace kakehashi;
using fhir::Node;
namespace fs = std::filesystem;
namespace term = kakehashi::terminology;

namespace {

constexpr const char* kHot9Url = "http://medis.or.jp/CodeSystem/master-HOT9";
constexpr const char* kHot9Oid = "urn:oid:1.2.392.200119.4.403.1";
constexpr const char* kYjOid = "urn:oid:1.2.392.100495.20.1.73";
constexpr const char* kJlac10Oid = "urn:oid:1.2.392.200119.4.504";

// The fixtures of the data-driven case tests/cases/hl7v2/omp01_oml11_masters_utf8: a HOT master in
// the real layout (24 columns, CP932, CRLF, quoted) and a site ConceptMap TSV.
fs::path CaseDir() {
  return fs::path(KAKEHASHI_SOURCE_DIR) / "tests/cases/hl7v2/omp01_oml11_masters_utf8";
}

std::unique_ptr<term::TerminologyStore> Store(bool hot, bool site_map) {
  NullSink sink;
  auto store = term::TerminologyStore::Open({}, term::CodeSystemRegistry::Builtin(), sink);
  REQUIRE(store.has_value());
  if (hot) {
    REQUIRE(
        term::LoadMasterFile(term::MasterKind::kHot, CaseDir() / "hot_master.csv", **store, sink)
            .has_value());
  }
  if (site_map) {
    REQUIRE(term::LoadMasterFile(term::MasterKind::kConceptMap, CaseDir() / "site_lab.tsv", **store,
                                 sink)
                .has_value());
  }
  return std::move(*store);
}

Node Coding(const std::string& system, const std::string& code, const std::string& display = {}) {
  Node c = Node::Object();
  c.Set("system", Node::String(system));
  c.Set("code", Node::String(code));
  if (!display.empty()) c.Set("display", Node::String(display));
  return c;
}

// {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [c], "text"?}}
Node Resource(Node coding, const std::string& text = {}) {
  Node cc = Node::Object();
  Node list = Node::Array();
  list.Push(std::move(coding));
  cc.Set("coding", std::move(list));
  if (!text.empty()) cc.Set("text", Node::String(text));
  Node r = Node::Object();
  r.Set("resourceType", Node::String("MedicationRequest"));
  r.Set("medicationCodeableConcept", std::move(cc));
  return r;
}

const Node& Codings(const Node& resource) {
  return *resource.Find("medicationCodeableConcept")->Find("coding");
}

void Bind(Node& resource, const term::TerminologyStore* store, term::ProfileSet target,
          CollectingSink& issues) {
  mapping::CodingBinder binder(term::CodeSystemRegistry::Builtin(), store, target);
  mapping::CodingBinder::MessageState state;
  Location base;
  base.source = "test.hl7";
  binder.Bind(resource, base, issues, state);
}

std::size_t Count(const CollectingSink& sink, std::string_view code) {
  std::size_t n = 0;
  for (const auto& i : sink.Issues()) n += i.code == code ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("coding binder: the system is written in the spelling of the target JP Core version",
          "[mapping][terminology]") {
  auto store = Store(true, false);
  for (const char* input : {kHot9Url, kHot9Oid, "HOT9", "urn:oid:1.2.392.100495.20.2.74"}) {
    INFO(input);
    CollectingSink issues;
    Node r112 = Resource(Coding(input, "103835401"));
    Bind(r112, store.get(), term::ProfileSet::kJpCore112, issues);
    CHECK(Codings(r112).Child(0).Find("system")->Text() == kHot9Oid);
    Node r120 = Resource(Coding(input, "103835401"));
    Bind(r120, store.get(), term::ProfileSet::kJpCore120, issues);
    CHECK(Codings(r120).Child(0).Find("system")->Text() == kHot9Url);
  }
  // International systems keep their URL in 1.1.2 (R4 vital signs need http://loinc.org).
  CollectingSink issues;
  Node loinc = Resource(Coding("urn:oid:2.16.840.1.113883.6.1", "8302-2"));
  Bind(loinc, nullptr, term::ProfileSet::kJpCore112, issues);
  CHECK(Codings(loinc).Child(0).Find("system")->Text() == "http://loinc.org");
  // A lone Coding (Encounter.class) is spelled too; a Quantity (value + system + code) is not a
  // Coding and stays as built.
  Node enc = Node::Object();
  enc.Set("resourceType", Node::String("Encounter"));
  enc.Set("class", Coding("http://medis.or.jp/CodeSystem/master-JLAC10-17digits", "x"));
  Node q = Coding("urn:oid:2.16.840.1.113883.6.8", "mg/dL");
  q.Set("value", Node::Number("1.5"));
  enc.Set("valueQuantity", std::move(q));
  Bind(enc, nullptr, term::ProfileSet::kJpCore112, issues);
  CHECK(enc.Find("class")->Find("system")->Text() == kJlac10Oid);
  CHECK(enc.Find("valueQuantity")->Find("system")->Text() == "urn:oid:2.16.840.1.113883.6.8");
}

TEST_CASE("coding binder: display from a loaded master, the source text kept",
          "[mapping][terminology]") {
  auto store = Store(true, false);
  CollectingSink issues;
  // No CodeableConcept.text: the source display moves there when the master's replaces it.
  Node r = Resource(Coding("HOT9", "103835401", "ムコダイン250"));
  Bind(r, store.get(), term::ProfileSet::kJpCore112, issues);
  CHECK(Codings(r).Child(0).Find("display")->Text() == "ムコダイン錠２５０ｍｇ");
  CHECK(r.Find("medicationCodeableConcept")->Find("text")->Text() == "ムコダイン250");
  CHECK(Codings(r).Size() == 1);  // HOT9 -> YJ exists in the master but HOT9 is the target code
  // An existing text is never overwritten.
  Node t = Resource(Coding("HOT9", "103835401", "ムコダイン250"), "処方時の名称");
  Bind(t, store.get(), term::ProfileSet::kJpCore112, issues);
  CHECK(t.Find("medicationCodeableConcept")->Find("text")->Text() == "処方時の名称");
  CHECK(issues.Issues().empty());
  // Loaded master without the code: code and display kept, one warning.
  Node m = Resource(Coding("HOT9", "199999901", "院内名称"));
  Bind(m, store.get(), term::ProfileSet::kJpCore112, issues);
  CHECK(Codings(m).Child(0).Find("display")->Text() == "院内名称");
  CHECK(Count(issues, "mapping.code_not_in_master") == 1);
}

TEST_CASE("coding binder: ConceptMap translations are added next to the original coding",
          "[mapping][terminology]") {
  auto store = Store(true, true);
  CollectingSink issues;
  // Site ConceptMap: local lab code 99LAB 10222 -> JLAC10.
  Node lab = Resource(Coding("urn:kakehashi:code-system:99LAB", "10222", "総蛋白"));
  Bind(lab, store.get(), term::ProfileSet::kJpCore112, issues);
  REQUIRE(Codings(lab).Size() == 2);
  CHECK(Codings(lab).Child(0).Find("system")->Text() == "urn:kakehashi:code-system:99LAB");
  CHECK(Codings(lab).Child(0).Find("code")->Text() == "10222");
  CHECK(Codings(lab).Child(1).Find("system")->Text() == kJlac10Oid);
  CHECK(Codings(lab).Child(1).Find("code")->Text() == "3A010000002327101");
  CHECK(Codings(lab).Child(1).Find("display")->Text() == "総蛋白");
  // YJ -> HOT9 through the HOT master (both HOT13 rows of the fixture share HOT9 104195801).
  Node yj = Resource(Coding("YJ", "2316009F1022", "ミヤBM錠"));
  Bind(yj, store.get(), term::ProfileSet::kJpCore120, issues);
  REQUIRE(Codings(yj).Size() == 2);
  CHECK(Codings(yj).Child(0).Find("system")->Text() ==
        "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code");
  CHECK(Codings(yj).Child(1).Find("system")->Text() == kHot9Url);
  CHECK(Codings(yj).Child(1).Find("code")->Text() == "104195801");
  // Binding twice adds nothing (the translation is already present).
  Bind(yj, store.get(), term::ProfileSet::kJpCore120, issues);
  CHECK(Codings(yj).Size() == 2);
  // Without a store: no translation, the original alone.
  Node bare = Resource(Coding(kYjOid, "2316009F1022"));
  Bind(bare, nullptr, term::ProfileSet::kJpCore112, issues);
  CHECK(Codings(bare).Size() == 1);
}

TEST_CASE("coding binder: no master loaded keeps code and text and warns once per system",
          "[mapping][terminology]") {
  for (bool with_store : {false, true}) {
    INFO(with_store);
    auto store = with_store ? Store(false, true) : nullptr;  // a site map is not the JLAC10 master
    CollectingSink issues;
    Node r = Resource(Coding("JC10", "3D010000001926101", "グルコース"), "グルコース");
    Node second = Coding("JC10", "3D045000001926101", "HbA1c");
    r.Find("medicationCodeableConcept")->Find("coding")->Push(std::move(second));
    Bind(r, store.get(), term::ProfileSet::kJpCore112, issues);
    CHECK(Codings(r).Child(0).Find("code")->Text() == "3D010000001926101");
    CHECK(Codings(r).Child(0).Find("display")->Text() == "グルコース");
    CHECK(Codings(r).Child(0).Find("system")->Text() == kJlac10Oid);
    REQUIRE(Count(issues, "mapping.master_not_loaded") == 1);
    const Issue& issue = issues.Issues().front();
    CHECK(issue.severity == Severity::kWarning);
    CHECK(issue.where.source == "test.hl7");
    CHECK(issue.where.fhir_path == "MedicationRequest.medicationCodeableConcept");
    CHECK(issue.message.find("jlac10") != std::string::npos);
    CHECK(issue.message.find("3D010000001926101") == std::string::npos);  // never a value
    CHECK(issue.message.find("グルコース") == std::string::npos);
  }
  // Systems that no master defines (HL7 tables, local codes) never warn.
  CollectingSink issues;
  Node r = Resource(Coding("urn:kakehashi:code-system:99XYZ", "1"));
  Bind(r, nullptr, term::ProfileSet::kJpCore112, issues);
  CHECK(issues.Issues().empty());
}

TEST_CASE("coding binder: the mapper binds every resource (both profile spellings end to end)",
          "[mapping][terminology]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  const std::string text =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401101600||RDE^O11^RDE_O11|T1|P|2.5||||||UNICODE UTF-8\r"
      "PID|0001||0000123456^^^^PI||佐藤^花子^^^^^L^I||19800401|F\r"
      "ORC|NW|000000000012399||000000000012399_01|||||20240401101500\r"
      "RXE||103835401^ムコダイン250^HOT9|1||TAB^錠^MR9P|TAB^錠剤^MR9P||||21|TAB^錠^MR9P\r"
      "TQ1|1||1013044400000000&内服&JAMISDP01|||7^d|20240401\r";
  auto store = Store(true, false);
  for (auto profile : {mapping::ProfileSet::kJpCore112, mapping::ProfileSet::kJpCore120}) {
    CollectingSink issues;
    auto parsed = adapters::hl7v2::Parse(text, {}, issues);
    REQUIRE(parsed.messages.size() == 1);
    mapping::Hl7v2View view(parsed.messages.front());
    mapping::MapOptions options;
    options.profile = profile;
    options.facility_code = "1312345679";
    options.terminology = store.get();
    mapping::Mapper mapper(*rules, options);
    mapping::SourceInfo source;
    source.kind = "hl7v2";
    auto result = mapper.Map(view, source, issues);
    const Node* request = nullptr;
    for (const auto& r : result.resources) {
      if (r.type == "MedicationRequest") request = &r.resource;
    }
    REQUIRE(request != nullptr);
    const Node& coding = request->Find("medicationCodeableConcept")->Find("coding")->Child(0);
    CHECK(coding.Find("system")->Text() ==
          (profile == mapping::ProfileSet::kJpCore112 ? kHot9Oid : kHot9Url));
    CHECK(coding.Find("display")->Text() == "ムコダイン錠２５０ｍｇ");
    CHECK(Count(issues, "mapping.master_not_loaded") == 0);
  }
}
