#include "kakehashi/terminology/code_systems.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace kt = kakehashi::terminology;
using kt::ProfileSet;

namespace {
const kt::CodeSystemRegistry& R() {
  return kt::CodeSystemRegistry::Builtin();
}
}  // namespace

// Round trips across the three spellings (digest terminology.md §2): every spelling normalises to
// the canonical; Spell() gives the per-profile-set spelling back.
TEST_CASE("code systems: OID, 1.1.2 alias, 1.2.0 URL and v2 names resolve to one identity",
          "[terminology]") {
  struct Case {
    std::string canonical, oid112, cda, v2;
    std::vector<std::string> spellings;
  };
  const std::vector<Case> cases = {
      {"http://medis.or.jp/CodeSystem/master-HOT9",
       "urn:oid:1.2.392.200119.4.403.1",
       "1.2.392.100495.20.2.74",
       "HOT9",
       {"urn:oid:1.2.392.200119.4.403.1", "1.2.392.200119.4.403.1",
        "http://jpfhir.jp/fhir/core/CodeSystem/JP_MedicationCodeHOT9_CS", "HOT9", "hot", "HOT",
        "HOT09", "urn:oid:1.2.392.100495.20.2.74", " http://medis.or.jp/CodeSystem/master-HOT9 "}},
      {"http://medis.or.jp/CodeSystem/master-JLAC10-17digits",
       "urn:oid:1.2.392.200119.4.504",
       "1.2.392.200119.4.504",
       "JC10",
       {"JC10", "jc10", "urn:oid:1.2.392.200119.4.504",
        "http://jpfhir.jp/fhir/core/CodeSystem/JP_ObservationLabResultCode_CS"}},
      {"http://capstandard.jp/iyaku.info/CodeSystem/YJ-code",
       "urn:oid:1.2.392.100495.20.1.73",
       "1.2.392.100495.20.2.73",
       "YJ",
       {"urn:oid:1.2.392.100495.20.1.73", "urn:oid:1.2.392.100495.20.2.73",
        "urn:oid:1.2.392.10495.20.1.73", "http://tandard.jp/CodeSystem/YJ-code", "YJ"}},
      {"http://jami.jp/CodeSystem/MedicationUsage",
       "urn:oid:1.2.392.200250.2.2.20",
       "1.2.392.100495.20.2.31",
       "JAMISDP01",
       {"urn:oid:1.2.392.200250.2.2.20", "urn:oid:1.2.392.200250.2.2.20.20",
        "http://jpfhir.jp/fhir/core/CodeSystem/JP_MedicationUsageJAMI_CS"}},
      {"http://medis.or.jp/CodeSystem/master-disease-keyNumber",
       "urn:oid:1.2.392.200119.4.101.2",
       "1.2.392.200119.4.101.2",
       "MDCDX2",
       {"MDCDX2", "urn:oid:1.2.392.200119.4.101.2"}},
      {"http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full",
       "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full",
       "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full",
       "",
       {"urn:oid:2.16.840.1.113883.6.3.1", "http://www.mhlw.go.jp/toukei/sippei/2013/ICD10-JP"}},
      {"http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationIngredientStrengthStrengthType",
       "urn:oid:1.2.392.100495.20.2.22",
       "1.2.392.100495.20.2.22",
       "",
       {"http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationIngredientStrengthType",
        "urn:oid:1.2.392.100495.20.2.22"}},
      {"http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber",
       "urn:oid:1.2.392.100495.20.3.61",
       "1.2.392.100495.20.3.61",
       "",
       {"urn:oid:1.2.392.100495.20.3.61"}},
      {"http://jpfhir.jp/fhir/core/CodeSystem/route-codes",
       "http://jpfhir.jp/fhir/core/CodeSystem/route-codes",
       "1.2.392.100495.20.2.34",
       "",
       {"http://jpfhir.jp/fhir/ePrescription/CodeSystem/route-codes",
        "urn:oid:2.16.840.1.113883.3.1937.777.10.5.162", "HL70162"}},
      {"http://jpfhir.jp/fhir/core/CodeSystem/HL70241",
       "http://jpfhir.jp/fhir/core/CodeSystem/HL70241",
       "http://jpfhir.jp/fhir/core/CodeSystem/HL70241",
       "HL70241",
       {"hhttp://jpfhir.jp/fhir/core/CodeSystem/HL70241", "HL70241"}},
      {"http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease",
       "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease",
       "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease",
       "",
       {"http://jpfhir.jp/fhir/core/CodeSystem/JP_ConditionDisaseCodeReceipt_CS"}},
  };
  for (const Case& c : cases) {
    INFO(c.canonical);
    for (const std::string& s : c.spellings) {
      INFO(s);
      auto n = R().Normalize(s);
      CHECK(n.match == kt::SystemMatch::kKnown);
      CHECK(n.canonical == c.canonical);
      // Round trip: every spelling comes back in each target profile set's spelling.
      CHECK(R().Spell(s, ProfileSet::kJpCore120) == c.canonical);
      CHECK(R().Spell(s, ProfileSet::kJpClins) == c.canonical);
      CHECK(R().Spell(s, ProfileSet::kJpCore112) == c.oid112);
      CHECK(R().Spell(s, ProfileSet::kCda) == c.cda);
      CHECK(R().Normalize(R().Spell(s, ProfileSet::kJpCore112)).canonical == c.canonical);
    }
    if (!c.v2.empty()) {
      auto spellings = R().SpellingsOf(c.canonical);
      CHECK(std::find(spellings.begin(), spellings.end(), c.v2) != spellings.end());
    }
  }
}

TEST_CASE("code systems: OID-only systems stay OIDs everywhere", "[terminology]") {
  for (auto p : {ProfileSet::kJpCore112, ProfileSet::kJpCore120, ProfileSet::kJpClins}) {
    CHECK(R().Spell("1.2.392.100495.20.1.71", p) == "urn:oid:1.2.392.100495.20.1.71");
    CHECK(R().Spell("urn:oid:1.2.392.100495.20.3.51", p) == "urn:oid:1.2.392.100495.20.3.51");
  }
  CHECK(R().Spell("urn:oid:1.2.392.100495.20.2.71", ProfileSet::kJpCore120) ==
        "urn:oid:1.2.392.100495.20.1.71");
}

TEST_CASE("code systems: HL7 tables, local names and unknown systems", "[terminology]") {
  auto v2 = R().Normalize("HL70127");
  CHECK(v2.match == kt::SystemMatch::kKnown);  // registered v2 table
  CHECK(v2.canonical == "http://terminology.hl7.org/CodeSystem/v2-0127");
  auto unregistered = R().Normalize("hl70550");
  CHECK(unregistered.match == kt::SystemMatch::kHl7v2Table);
  CHECK(unregistered.canonical == "http://terminology.hl7.org/CodeSystem/v2-0550");
  auto local = R().Normalize(" 99xyz ");
  CHECK(local.match == kt::SystemMatch::kLocal);
  CHECK(local.canonical == "urn:kakehashi:code-system:99XYZ");
  CHECK(R().Normalize("").match == kt::SystemMatch::kEmpty);
  // v2 I10 is the WHO ICD-10 (edition in CWE.7), never silently the MHLW 2013 system.
  CHECK(R().Normalize("I10").canonical == "http://hl7.org/fhir/sid/icd-10");

  kakehashi::CollectingSink sink;
  kakehashi::Location where;
  where.field = "OBX-3.3";
  auto unknown = R().Normalize("http://example.org/CodeSystem/Foo", &sink, where);
  CHECK(unknown.match == kt::SystemMatch::kUnknown);
  CHECK(unknown.canonical == "http://example.org/CodeSystem/Foo");
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.unknown_system");
  CHECK(sink.Issues()[0].severity == kakehashi::Severity::kWarning);
  CHECK(sink.Issues()[0].where.field == "OBX-3.3");
  CHECK(sink.Issues()[0].message.find("example.org") == std::string::npos);  // no value echoed
  // URL paths are never case-folded.
  CHECK(R().Normalize("http://medis.or.jp/CodeSystem/master-hot9").match ==
        kt::SystemMatch::kUnknown);
  // A bare unknown OID gets urn:oid:.
  CHECK(R().Normalize("1.2.3.4").canonical == "urn:oid:1.2.3.4");
}

TEST_CASE("code systems: profile set names", "[terminology]") {
  for (auto p :
       {ProfileSet::kJpCore112, ProfileSet::kJpCore120, ProfileSet::kJpClins, ProfileSet::kCda}) {
    CHECK(kt::ProfileSetFromString(kt::ToString(p)) == p);
  }
  CHECK(kt::ToString(ProfileSet::kJpCore112) == "jp-core-1.1.2");
  CHECK_FALSE(kt::ProfileSetFromString("jp-core-9").has_value());
}

TEST_CASE("code systems: a copied registry takes site aliases without touching the built-in one",
          "[terminology]") {
  kt::CodeSystemRegistry site = R();
  REQUIRE(site.AddAlias("99HOT", "http://medis.or.jp/CodeSystem/master-HOT9").has_value());
  CHECK(site.Normalize("99hot").canonical == "http://medis.or.jp/CodeSystem/master-HOT9");
  CHECK(R().Normalize("99HOT").match == kt::SystemMatch::kLocal);
  // An alias already naming another system is refused.
  CHECK(site.AddAlias("JC10", "http://medis.or.jp/CodeSystem/master-HOT9").error() ==
        kt::errc::kTableSyntax);
  CHECK(site.AddAlias("X", "http://nowhere").error() == kt::errc::kUnknownSystem);
  kt::CodeSystemInfo info;
  info.url = "http://example.jp/CodeSystem/local-lab";
  info.title = "site lab";
  REQUIRE(site.AddSystem(info).has_value());
  CHECK(site.Find("http://example.jp/CodeSystem/local-lab") != nullptr);
  CHECK(site.AddSystem(info).error() == kt::errc::kTableSyntax);
}

TEST_CASE("code systems: every built-in system has a distinct canonical and title",
          "[terminology]") {
  std::set<std::string> canonicals;
  for (const auto& s : R().Systems()) {
    CHECK_FALSE(s->title.empty());
    CHECK(canonicals.insert(s->canonical).second);
    CHECK(R().Find(s->canonical) == s.get());
  }
  CHECK(canonicals.size() > 100);
}

TEST_CASE("code systems: re-home by code shape", "[terminology]") {
  const std::string hot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
  CHECK(kt::RehomeByCodeShape(hot9, "104195801") == hot9);
  CHECK(kt::RehomeByCodeShape(hot9, "2316009F1022") ==
        "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code");
  CHECK(kt::RehomeByCodeShape(hot9, "2325003B2ZZZ") ==
        "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode");
  CHECK(kt::RehomeByCodeShape(hot9, "1041958") == "http://medis.or.jp/CodeSystem/master-HOT7");
  CHECK(kt::RehomeByCodeShape(hot9, "1041958010101") ==
        "http://medis.or.jp/CodeSystem/master-HOT13");
  CHECK(kt::RehomeByCodeShape(hot9, "610406079") == "urn:oid:1.2.392.100495.20.1.71");
  CHECK(kt::RehomeByCodeShape("http://medis.or.jp/CodeSystem/master-disease-keyNumber", "TSQF") ==
        "http://medis.or.jp/CodeSystem/master-disease-exCode");
  CHECK(
      kt::RehomeByCodeShape("http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20054174") ==
      "http://medis.or.jp/CodeSystem/master-disease-keyNumber");
  CHECK(kt::RehomeByCodeShape("http://jami.jp/CodeSystem/MedicationUsage", "77L") ==
        "http://jami.jp/CodeSystem/MedicationBodySiteExternal");
  CHECK(kt::RehomeByCodeShape("http://jami.jp/CodeSystem/MedicationUsage", "W0100100") ==
        "http://jami.jp/CodeSystem/MedicationUsageAdditional");
  CHECK(kt::RehomeByCodeShape("http://jami.jp/CodeSystem/MedicationUsage", "1013044400000000") ==
        "http://jami.jp/CodeSystem/MedicationUsage");
  CHECK(kt::RehomeByCodeShape("http://loinc.org", "1234-5") == "http://loinc.org");
  // Through the registry: the CDA OID under which producers put YJ codes.
  CHECK(kt::RehomeByCodeShape(R().Normalize("urn:oid:1.2.392.100495.20.2.74").canonical,
                              "2316009F1022") ==
        "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code");
}
