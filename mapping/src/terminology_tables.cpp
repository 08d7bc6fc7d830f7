#include "terminology_tables.hpp"

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/code_table.hpp"

#include <set>
#include <string_view>

namespace kakehashi::mapping {
namespace {

namespace term = kakehashi::terminology;

constexpr std::string_view kV2Prefix = "http://terminology.hl7.org/CodeSystem/v2-";

// The rule-table names of the HL7 v2 rules: which source table and target system each one reads
// from terminology/tables. Rules written for kakehashi before the merge keep working; new rules
// may name the terminology table directly.
struct View {
  std::string_view name;
  std::string_view source;  // source system as rule tables spell it ("HL70001"; "" = any)
  std::string_view target;  // canonical target system
};
constexpr View kViews[] = {
    {"v2_0001_gender", "HL70001", "http://hl7.org/fhir/administrative-gender"},
    {"v2_0003_encounter_status", "HL70003", "http://hl7.org/fhir/encounter-status"},
    {"v2_0004_patient_class", "HL70004", "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
    {"v2_0038_report_status", "HL70038", "http://hl7.org/fhir/diagnostic-report-status"},
    {"v2_0063_role_code", "HL70063", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"},
    {"v2_0063_relationship", "HL70063",
     "http://terminology.hl7.org/CodeSystem/subscriber-relationship"},
    {"v2_0078_interpretation", "HL70078",
     "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"},
    {"v2_0085_observation_status", "HL70085", "http://hl7.org/fhir/observation-status"},
    {"v2_0119_order_status", "HL70119", "http://hl7.org/fhir/request-status"},
    {"v2_0127_allergy_category", "HL70127", "http://hl7.org/fhir/allergy-intolerance-category"},
    {"v2_0128_severity", "HL70128", "http://hl7.org/fhir/reaction-event-severity"},
    {"v2_0190_address_use", "HL70190", "http://hl7.org/fhir/address-use"},
    {"v2_0200_name_use", "HL70200", "http://hl7.org/fhir/name-use"},
    {"v2_0201_telecom_use", "HL70201", "http://hl7.org/fhir/contact-point-use"},
    {"v2_0202_telecom_system", "HL70202", "http://hl7.org/fhir/contact-point-system"},
    {"v2_0322_admin_status", "HL70322",
     "http://terminology.hl7.org/CodeSystem/medication-admin-status"},
    {"v2_0323_allergy_clinical", "HL70323",
     "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"},
    {"v2_0436_allergy_type", "HL70436", "http://hl7.org/fhir/allergy-intolerance-type"},
    {"v2_0465_representation", "HL70465", "http://terminology.hl7.org/CodeSystem/v3-EntityNameUse"},
    {"jlac10_vital_loinc", "", "http://loinc.org"},
};

// "http://terminology.hl7.org/CodeSystem/v2-0001" -> "HL70001" (the spelling rule tables use).
std::string RuleSystem(const std::string& canonical) {
  if (canonical.rfind(kV2Prefix, 0) == 0) return "HL7" + canonical.substr(kV2Prefix.size());
  return canonical;
}

TableRow ToRule(const term::TableRow& r) {
  return {RuleSystem(r.source_system),
          r.source_code,
          r.target_system,
          r.target_code,
          r.display,
          r.version};
}

}  // namespace

void AddTerminologyTables(std::map<std::string, std::vector<TableRow>, std::less<>>& tables) {
  NullSink issues;  // malformed built-in tables fail the terminology table test
  auto loaded = term::LoadCodeTables(term::CodeSystemRegistry::Builtin(), {}, issues);
  if (!loaded) return;
  std::vector<TableRow> all;
  for (const auto& table : *loaded) {
    auto& rows = tables[table.name];
    for (const auto& r : table.rows) {
      if (!r.target_code.empty()) rows.push_back(ToRule(r));
    }
    for (const auto& r : table.rows) {
      if (r.target_code.empty()) rows.push_back(ToRule(r));
    }
    for (const auto& r : table.rows) all.push_back(ToRule(r));
  }
  for (const View& view : kViews) {
    const std::string_view rule_source = view.source;
    auto& rows = tables[std::string(view.name)];
    std::set<std::string> mapped;
    for (const auto& r : all) {
      if ((rule_source.empty() || r.source_system == rule_source) &&
          r.target_system == view.target) {
        rows.push_back(r);
        mapped.insert(r.source_code);
      }
    }
    if (rule_source.empty()) continue;
    for (const auto& r : all) {
      if (r.source_system == rule_source && r.target_code.empty() && !mapped.count(r.source_code)) {
        rows.push_back(r);
        mapped.insert(r.source_code);
      }
    }
  }
}

}  // namespace kakehashi::mapping
