// The built-in code tables of the rules come from terminology/tables (the one source of truth for
// HL7 v2 tables and code-system identities; issue #5): RuleSet::Load puts them in first, so a
// site rule directory's tables/<name>.tsv still shadows them by name.
#pragma once

#include "kakehashi/mapping/rule_set.hpp"

#include <map>
#include <string>
#include <vector>

namespace kakehashi::mapping {

// Adds, for every terminology table, (1) a rule table named after its file stem
// ("v2-0001-administrative-gender") with all rows, and (2) the rule-table views the rules name
// ("v2_0001_gender" = HL7 v2 table 0001 -> FHIR AdministrativeGender; list in
// terminology_tables.cpp and docs/mapping.md). Rows: mapping rows first (source system written as
// the HL7 v2 name "HL70001" for v2 tables, else canonical), then the concept rows of the source
// system that have no mapping, with an empty target ("known code, deliberately unmapped").
// Throws nothing; the built-in tables are checked by the terminology table test.
void AddTerminologyTables(std::map<std::string, std::vector<TableRow>, std::less<>>& tables);

}  // namespace kakehashi::mapping
