#include "kakehashi/mapping/rule_set.hpp"

#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/errc.hpp"
#include "kakehashi/terminology/code_systems.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace kakehashi;

namespace {
fs::path TempDir(const char* name) {
  fs::path dir = fs::temp_directory_path() /
                 (std::string("kakehashi_rules_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
}  // namespace

TEST_CASE("rule set: the built-in rules load and cover the mapped data types", "[mapping]") {
  std::string detail;
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), {}, &detail);
  INFO(detail);
  REQUIRE(rules.has_value());
  for (const char* type : {"ADT-00", "ADT-61", "PPR-01", "OMP-01", "OML-11"}) {
    INFO(type);
    CHECK(rules->Message(type) != nullptr);
  }
  CHECK(rules->DataTypeForMessage("RDE^O11") == "OMP-01");
  CHECK(rules->DataTypeForMessage("OUL^R22") == "OML-11");
  CHECK(rules->DataTypeForMessage("OMI^Z23").empty());
  CHECK(rules->DataTypeForMessage("ADT^A04") == "ADT-12");
  CHECK(rules->Datatype("CWE") != nullptr);
  CHECK(rules->Resource("Provenance") != nullptr);
  const auto* row = rules->Lookup("v2_0001_gender", "", "F", "jp-core-1.1.2");
  REQUIRE(row != nullptr);
  CHECK(row->target_code == "female");
  // HL7 v2 tables come from terminology/tables (one source of truth): the rule view and the
  // terminology table by its own name give the same row; codes the table only knows as concepts
  // are "known, deliberately unmapped" (empty target).
  CHECK(row->source_system == "HL70001");
  CHECK(row->target_system == "http://hl7.org/fhir/administrative-gender");
  CHECK(rules->Lookup("v2-0001-administrative-gender", "", "F", "")->target_code == "female");
  const auto* ma = rules->Lookup("v2_0127_allergy_category", "", "MA", "");
  REQUIRE(ma != nullptr);
  CHECK(ma->target_code.empty());
  // ORC-1 has two targets in terminology (request-status, medicationrequest-status): the view
  // picks its own.
  CHECK(rules->Lookup("v2_0119_order_status", "", "CA", "")->target_code == "revoked");
  CHECK(rules->Lookup("v2_0119_order_status", "", "CA", "")->target_system ==
        "http://hl7.org/fhir/request-status");
  // Code-system names are no rule table any more: the terminology registry spells them.
  CHECK_FALSE(rules->HasTable("code_systems"));
  CHECK(rules->Lookup("profiles", "", "JP_Specimen", "jp-core-1.2.0")->target_code ==
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Specimen_Common");
}

TEST_CASE("rule set: a site directory shadows built-in files by name", "[mapping]") {
  fs::path site = TempDir("site");
  fs::create_directories(site / "tables");
  std::ofstream(site / "tables/v2_0001_gender.tsv")
      << "source_system\tsource_code\ttarget_system\ttarget_code\tdisplay\tversion\tcomment\n"
      << "HL70001\tX\thttp://hl7.org/fhir/administrative-gender\tother\t\t\tsite code\n";
  fs::create_directories(site / "message");
  std::ofstream(site / "message/ZZZ-01.json")
      << "// site rule\n{\"messages\": [\"ZZZ^Z01\"], \"resources\": [{\"resource\": "
         "\"Patient\", \"each\": \"PID\"}]}";
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), site);
  REQUIRE(rules.has_value());
  CHECK(rules->Lookup("v2_0001_gender", "", "F", "") == nullptr);  // whole file shadowed
  CHECK(rules->Lookup("v2_0001_gender", "", "X", "")->target_code == "other");
  CHECK(rules->DataTypeForMessage("ZZZ^Z01") == "ZZZ-01");
  CHECK(rules->Message("OMP-01") != nullptr);  // others still built in
  fs::remove_all(site);
}

TEST_CASE("rule set: errors say which file and line", "[mapping]") {
  std::string detail;
  auto missing = mapping::RuleSet::Load("/nonexistent/kakehashi/rules", {}, &detail);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error() == mapping::errc::kRulesNotFound);

  fs::path site = TempDir("bad");
  fs::create_directories(site / "resource");
  std::ofstream(site / "resource/Patient.json") << "{\n  \"body\": {,}\n}";
  auto bad = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), site, &detail);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == mapping::errc::kRuleSyntax);
  CHECK(detail.find("Patient.json: line 2") != std::string::npos);

  fs::remove_all(site / "resource");
  fs::create_directories(site / "message");
  std::ofstream(site / "message/X.json") << R"({"resources": [{"resource": "NoSuchRule"}]})";
  auto invalid = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), site, &detail);
  REQUIRE_FALSE(invalid.has_value());
  CHECK(invalid.error() == mapping::errc::kRuleInvalid);
  CHECK(detail.find("NoSuchRule") != std::string::npos);
  CHECK_FALSE(mapping::make_error_code(mapping::errc::kRuleSyntax).message().empty());
  CHECK(std::string(mapping::mapping_category().name()) == "kakehashi.mapping");
  fs::remove_all(site);
}

TEST_CASE("rule set: a datatype cycle in site rules is an error issue, not a crash", "[mapping]") {
  fs::path site = TempDir("cycle");
  fs::create_directories(site / "datatype");
  std::ofstream(site / "datatype/XPN.json") << R"({"text": {"datatype": "XPN", "path": ".1"}})";
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), site);
  REQUIRE(rules.has_value());
  mapping::Converter converter(*rules, {});
  mapping::BundleBuilder out;
  CollectingSink issues;
  CHECK(converter.ConvertHl7("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5\rPID|1||1^^^^PI||A^B\r",
                             "x.hl7", out, issues) == 1);
  bool rule_error = false;
  for (const auto& i : issues.Issues()) rule_error = rule_error || i.code == "mapping.rule_error";
  CHECK(rule_error);
  fs::remove_all(site);
}

TEST_CASE("rule set: field-context code systems name systems the terminology registry knows",
          "[mapping][terminology]") {
  // tables/context_code_systems.tsv holds one canonical URI per meaning; the registry spells it
  // per JP Core version, so every target must be registered (or a kakehashi local URN).
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  const auto& registry = terminology::CodeSystemRegistry::Builtin();
  for (const char* field_and_name : {"RXR-2 JAMISDP01", "RXR-2 HL70550", "SPM-4 JC10"}) {
    std::string s(field_and_name);
    const std::string field = s.substr(0, s.find(' '));
    const std::string name = s.substr(s.find(' ') + 1);
    INFO(s);
    const auto* row = rules->Lookup("context_code_systems", field, name, "jp-core-1.1.2");
    REQUIRE(row != nullptr);
    const bool local = row->target_code.rfind(terminology::kLocalSystemPrefix, 0) == 0;
    const bool v2 = row->target_code.rfind(terminology::Hl7v2TableUrl(""), 0) == 0;
    CHECK((local || v2 || registry.Find(row->target_code) != nullptr));
  }
  // JAMI 部位 (RXR-2) is the URL row; the 1.1.2 OID comes from the registry.
  CHECK(registry.Spell(rules->Lookup("context_code_systems", "RXR-2", "JAMISDP01", "")->target_code,
                       terminology::ProfileSet::kJpCore112) == "urn:oid:1.2.392.200250.2.2.20.32");
}
