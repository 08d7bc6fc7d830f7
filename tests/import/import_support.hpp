// Shared fixtures for tests/import: the built-in rules, the map options every import test uses,
// and the store's history size.
#pragma once

#include "kakehashi/gateway/store/store.hpp"
#include "kakehashi/mapping/mapper.hpp"
#include "kakehashi/mapping/rule_set.hpp"

#include <catch2/catch.hpp>

#include <cstddef>

namespace kakehashi::app::testing {

inline const mapping::RuleSet& Rules() {
  static auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), "");
  REQUIRE(rules);
  return *rules;
}

inline mapping::MapOptions MapOptions() {
  mapping::MapOptions m;
  m.facility_code = "1312345679";
  m.report_unused = false;
  return m;
}

// Every history row of the store (all types), i.e. the number of versions ever written.
inline std::size_t HistoryRows(gateway::store::Store& store) {
  auto session = store.OpenSession();
  REQUIRE(session);
  gateway::store::HistoryQuery q;
  q.count = 100000;
  auto rows = (*session)->History(q);
  REQUIRE(rows);
  return rows->size();
}

}  // namespace kakehashi::app::testing
