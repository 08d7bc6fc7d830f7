#include "kakehashi/mapping/ids.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>

using namespace kakehashi::mapping;

TEST_CASE("ids: deterministic, UUID-shaped, valid FHIR ids", "[mapping]") {
  std::string a = DeterministicId({"Patient", "urn:oid:1.2.392.100495.20.3.51.11312345679", "1"});
  CHECK(a == DeterministicId({"Patient", "urn:oid:1.2.392.100495.20.3.51.11312345679", "1"}));
  CHECK(a == DeterministicId(std::vector<std::string>{
                 "Patient", "urn:oid:1.2.392.100495.20.3.51.11312345679", "1"}));
  CHECK(std::regex_match(a, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                       "[0-9a-f]{12}")));
  // Part boundaries matter: ("ab", "c") != ("a", "bc").
  CHECK(DeterministicId({"ab", "c"}) != DeterministicId({"a", "bc"}));
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(DeterministicId({"Observation", std::to_string(i)}));
  CHECK(ids.size() == 10000);
}

TEST_CASE("ids: IdBuilder gives DeterministicId part by part", "[mapping]") {
  IdBuilder builder;
  builder.Add("Observation");
  builder.Add("");
  builder.Add("MSG0001");
  CHECK(builder.Id() == DeterministicId({"Observation", "", "MSG0001"}));
  CHECK(IdBuilder().Id() == DeterministicId(std::vector<std::string>{}));
  IdBuilder other;
  other.Add("Observation");
  CHECK(other.Id() != builder.Id());
}
