#include "kakehashi/terminology/operations.hpp"

#include "kakehashi/terminology/loaders.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace kt = kakehashi::terminology;
using kt::ProfileSet;

namespace {
const kt::CodeSystemRegistry& R() {
  return kt::CodeSystemRegistry::Builtin();
}

std::unique_ptr<kt::TerminologyStore> StoreWithMasters(bool load_masters) {
  kakehashi::CollectingSink sink;
  auto store = kt::TerminologyStore::Open({}, R(), sink);
  REQUIRE(store.has_value());
  if (load_masters) {
    std::string dir = std::string(KAKEHASHI_SOURCE_DIR) + "/tests/terminology/fixtures/";
    REQUIRE(
        kt::LoadMasterFile(kt::MasterKind::kHot, dir + "hot_cp932_crlf_quoted.csv", **store, sink)
            .has_value());
    REQUIRE(kt::LoadMasterFile(kt::MasterKind::kMedisDisease,
                               dir + "medis_disease_cp932_crlf_quoted.csv", **store, sink)
                .has_value());
    REQUIRE(kt::LoadMasterFile(kt::MasterKind::kConceptMap, dir + "site-lab.tsv", **store, sink)
                .has_value());
  }
  return std::move(*store);
}

bool HasIssue(const std::vector<kakehashi::Issue>& issues, std::string_view code) {
  for (const auto& i : issues) {
    if (i.code == code) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("$lookup: any spelling, display, properties, output spelling", "[terminology]") {
  auto store = StoreWithMasters(true);
  kt::TerminologyService svc(*store, ProfileSet::kJpCore112);
  for (const char* spelling :
       {"HOT9", "urn:oid:1.2.392.200119.4.403.1", "http://medis.or.jp/CodeSystem/master-HOT9",
        "http://jpfhir.jp/fhir/core/CodeSystem/JP_MedicationCodeHOT9_CS"}) {
    INFO(spelling);
    auto r = svc.Lookup({spelling, "104195801", "", {}});
    CHECK(r.found);
    CHECK(r.display == "ミヤＢＭ錠");
    CHECK(r.name == "MEDIS HOT9");
    CHECK(r.version == "20240501");  // newest 更新年月日 of the loaded HOT file
    CHECK(r.system == "urn:oid:1.2.392.200119.4.403.1");  // 1.1.2 spelling
    CHECK(r.issues.empty());
  }
  auto d = svc.Lookup({"MDCDX2", "20058257", "", {"exCode"}});
  REQUIRE(d.found);
  REQUIRE(d.property.size() == 1);
  CHECK(d.property[0].code == "exCode");
  CHECK(d.property[0].value == "HR19");
  auto replaced = svc.Lookup({"MDCDX2", "20000001", "", {"replacedBy"}});
  REQUIRE(replaced.found);
  CHECK_FALSE(replaced.active);
  CHECK(replaced.property.back().code == "inactive");
}

TEST_CASE("$lookup: graceful degradation when a master is not loaded", "[terminology]") {
  auto store = StoreWithMasters(false);
  kt::TerminologyService svc(*store);
  auto r = svc.Lookup({"HOT9", "104195801", "", {}});
  CHECK_FALSE(r.found);
  CHECK(r.system == "http://medis.or.jp/CodeSystem/master-HOT9");
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].code == "terminology.master_not_loaded");
  CHECK(r.issues[0].severity == kakehashi::Severity::kWarning);
  // Loaded system, missing code: an error, not a warning.
  auto missing = svc.Lookup({"HL70001", "Z", "", {}});
  CHECK_FALSE(missing.found);
  CHECK(HasIssue(missing.issues, "terminology.code_not_found"));
  // Unknown system: warning, never a crash.
  auto unknown = svc.Lookup({"http://example.org/x", "1", "", {}});
  CHECK_FALSE(unknown.found);
  CHECK(HasIssue(unknown.issues, "terminology.unknown_system"));
  CHECK(HasIssue(svc.Lookup({"", "", "", {}}).issues, "terminology.missing_parameter"));
  // Canonicalize keeps code and text, adds the warning.
  kakehashi::CollectingSink sink;
  auto c = svc.Canonicalize({"HOT9", "104195801", "ミヤＢＭ錠", ""}, sink);
  CHECK(c.system == "http://medis.or.jp/CodeSystem/master-HOT9");
  CHECK(c.code == "104195801");
  CHECK(c.display == "ミヤＢＭ錠");
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.master_not_loaded");
}

TEST_CASE("$validate-code: implicit value sets, display check, unknown value set",
          "[terminology]") {
  auto store = StoreWithMasters(true);
  kt::TerminologyService svc(*store);
  // A site ConceptMap makes its target codes known even without the JLAC10 master.
  auto ok = svc.ValidateCode({"", "JC10", "3A010000002327101", ""});
  CHECK(ok.result);
  CHECK(ok.display == "総蛋白");
  auto icd = svc.ValidateCode({"", "I10", "K358", ""});
  CHECK_FALSE(icd.result);  // ICD-10 master not loaded: cannot validate
  CHECK(HasIssue(icd.issues, "terminology.master_not_loaded"));
  auto g =
      svc.ValidateCode({"http://hl7.org/fhir/ValueSet/administrative-gender", "", "female", ""});
  CHECK(g.result);
  CHECK(g.display == "Female");
  auto bad = svc.ValidateCode({"http://hl7.org/fhir/ValueSet/administrative-gender", "", "f", ""});
  CHECK_FALSE(bad.result);
  CHECK(HasIssue(bad.issues, "terminology.code_not_found"));
  auto route = svc.ValidateCode({"http://jpfhir.jp/fhir/core/ValueSet/route-codes", "", "PO", ""});
  CHECK(route.result);
  auto display = svc.ValidateCode({"", "HOT9", "104195801", "違う名前"});
  CHECK_FALSE(display.result);
  CHECK(display.display == "ミヤＢＭ錠");
  CHECK(HasIssue(display.issues, "terminology.display_mismatch"));
  auto vs = svc.ValidateCode({"http://example.org/ValueSet/x", "", "1", ""});
  CHECK_FALSE(vs.result);
  CHECK(HasIssue(vs.issues, "terminology.unknown_valueset"));
  auto mismatch =
      svc.ValidateCode({"http://hl7.org/fhir/ValueSet/administrative-gender", "HOT9", "male", ""});
  CHECK_FALSE(mismatch.result);
  auto inactive = svc.ValidateCode({"", "MDCDX2", "20000001", ""});
  CHECK(inactive.result);
  CHECK(HasIssue(inactive.issues, "terminology.inactive_code"));
}

TEST_CASE("$expand: filter and paging", "[terminology]") {
  auto store = StoreWithMasters(false);
  kt::TerminologyService svc(*store);
  auto all =
      svc.Expand({"http://jpfhir.jp/fhir/core/mhlw/ValueSet/PrefectureNo-2digits", "", 0, 10});
  REQUIRE(all.found);
  CHECK(all.total == 47);
  REQUIRE(all.contains.size() == 10);
  CHECK(all.contains[0].code == "01");
  CHECK(all.contains[0].display == "北海道");
  CHECK(all.contains[0].system ==
        "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits");
  auto page = svc.Expand({"urn:oid:1.2.392.100495.20.3.21", "", 45, 10});
  CHECK(page.total == 47);
  REQUIRE(page.contains.size() == 2);
  CHECK(page.contains[1].display == "沖縄県");
  auto filtered =
      svc.Expand({"http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits", "島", 0, 100});
  CHECK(filtered.total == 5);  // 福島県, 島根県, 広島県, 徳島県, 鹿児島県
  auto none = svc.Expand({"http://example.org/ValueSet/x", "", 0, 10});
  CHECK_FALSE(none.found);
  CHECK(HasIssue(none.issues, "terminology.unknown_valueset"));
  auto empty = svc.Expand({"http://medis.or.jp/CodeSystem/master-HOT9", "", 0, 10});
  CHECK(empty.total == 0);
  CHECK(HasIssue(empty.issues, "terminology.master_not_loaded"));
}

TEST_CASE("$translate: forward, target system, reverse, ConceptMap url", "[terminology]") {
  auto store = StoreWithMasters(true);
  kt::TerminologyService svc(*store);
  auto g = svc.Translate({"", "HL70001", "F", "", false});
  REQUIRE(g.result);
  REQUIRE(g.match.size() == 1);
  CHECK(g.match[0].coding.system == "http://hl7.org/fhir/administrative-gender");
  CHECK(g.match[0].coding.code == "female");
  CHECK(g.match[0].coding.display == "Female");
  CHECK(g.match[0].equivalence == "equivalent");
  CHECK(g.match[0].source == "urn:kakehashi:conceptmap:v2-0001-administrative-gender");

  auto rel =
      svc.Translate({"", "HL70063", "SEL",
                     "http://terminology.hl7.org/CodeSystem/subscriber-relationship", false});
  REQUIRE(rel.match.size() == 1);
  CHECK(rel.match[0].coding.code == "self");

  auto yj = svc.Translate({"", "HOT9", "104195801", "YJ", false});
  CHECK(yj.match.size() == 2);  // HOT9 not unique
  auto back = svc.Translate({"", "YJ", "2316009F1030", "HOT9", true});
  REQUIRE(back.match.size() == 1);
  CHECK(back.match[0].coding.code == "104195801");
  CHECK(back.match[0].coding.display == "ミヤＢＭ錠");
  // Reverse of a "wider" map is "narrower".
  auto hot13 = svc.Translate({"", "HOT9", "104195801", "HOT13", true});
  REQUIRE(hot13.match.size() == 2);
  CHECK(hot13.match[0].equivalence == "narrower");

  auto icd =
      svc.Translate({"", "MDCDX2", "20058257", "I10", false});  // plain ICD10 column: WHO edition
  REQUIRE(icd.match.size() == 1);
  CHECK(icd.match[0].coding.code == "K358");
  CHECK(icd.match[0].equivalence == "wider");

  auto url = svc.Translate({"urn:kakehashi:conceptmap:site-lab", "99lab", "10222", "", false});
  REQUIRE(url.result);
  CHECK(url.match[0].coding.code == "3A010000002327101");
  CHECK_FALSE(svc.Translate({"urn:kakehashi:conceptmap:hot", "99LAB", "10222", "", false}).result);

  auto none = svc.Translate({"", "HL70001", "Q", "", false});
  CHECK_FALSE(none.result);
  CHECK(HasIssue(none.issues, "terminology.no_translation"));
}

TEST_CASE("TranslateCoding keeps the original next to the translation", "[terminology]") {
  auto store = StoreWithMasters(true);
  kt::TerminologyService svc(*store, ProfileSet::kJpCore112);
  kakehashi::CollectingSink sink;
  auto t = svc.TranslateCoding({"99LAB", "10223", "Ｋ", ""}, "JC10", sink);
  CHECK(t.original.system == "urn:kakehashi:code-system:99LAB");
  CHECK(t.original.code == "10223");
  CHECK(t.original.display == "Ｋ");
  REQUIRE(t.translated.has_value());
  CHECK(t.translated->system == "urn:oid:1.2.392.200119.4.504");  // 1.1.2 spelling of JLAC10
  CHECK(t.translated->code == "3H015000002326101");
  CHECK(t.map == "urn:kakehashi:conceptmap:site-lab");
  CHECK(sink.Issues().empty());
  auto none = svc.TranslateCoding({"99LAB", "99999", "", ""}, "JC10", sink);
  CHECK_FALSE(none.translated.has_value());
  CHECK(none.original.code == "99999");
  CHECK(HasIssue(sink.Issues(), "terminology.no_translation"));
  // Find() accepts any spelling.
  CHECK(svc.Find("HOT9", "104195801") != nullptr);
  CHECK(svc.Find("http://medis.or.jp/CodeSystem/master-HOT9", "104195801") != nullptr);
  CHECK(svc.Find("HOT9", "000000000") == nullptr);
  CHECK(svc.Find("99lab", "10222") != nullptr);  // local name, normalised on the slow path
  CHECK(svc.Find("http://example.org/x", "1") == nullptr);
}

TEST_CASE("Canonicalize re-homes codes by shape and says so", "[terminology]") {
  auto store = StoreWithMasters(true);
  kt::TerminologyService svc(*store);
  kakehashi::CollectingSink sink;
  auto c = svc.Canonicalize({"urn:oid:1.2.392.100495.20.2.74", "2316009F1030", "", ""}, sink);
  CHECK(c.system == "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code");
  CHECK(c.display == "ミヤＢＭ錠");
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.rehomed");
  CHECK(sink.Issues()[0].severity == kakehashi::Severity::kInformation);
  sink.Clear();
  auto body = svc.Canonicalize({"JAMISDP01", "77L", "左手", ""}, sink);
  CHECK(body.system == "http://jami.jp/CodeSystem/MedicationBodySiteExternal");
  CHECK(body.display == "左手");
}
