#include "kakehashi/fhir/r4/datatypes.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/json.hpp"

namespace r4 = kakehashi::fhir::r4;
using kakehashi::fhir::Node;

TEST_CASE("datatypes: nested datatypes and backbones round-trip", "[typed][datatypes]") {
  r4::Timing timing;
  timing.event.push_back(r4::DateTime("2026-11-30T08:00:00+09:00"));
  auto& repeat = timing.repeat.Emplace();
  repeat.frequency = r4::PositiveInt(3);
  repeat.period = r4::Decimal("1.0");
  repeat.period_unit = "d";
  repeat.bounds_duration = r4::Duration();
  repeat.bounds_duration->value = r4::Decimal("14");
  repeat.bounds_duration->unit = "d";
  const Node node = timing.ToNode();
  CHECK(
      kakehashi::fhir::WriteJson(node, {.canonical = false}) ==
      R"({"event":["2026-11-30T08:00:00+09:00"],"repeat":{"boundsDuration":{"value":14,"unit":"d"},)"
      R"("frequency":3,"period":1.0,"periodUnit":"d"}})");
  r4::Timing back;
  back.Read(node);
  CHECK(back.ToNode() == node);
  REQUIRE(back.repeat);
  CHECK(*back.repeat->period.value == "1.0");  // decimal text kept
  CHECK(*back.repeat->frequency.value == 3);
}

TEST_CASE("datatypes: Reference <-> Identifier recursion through Box", "[typed][datatypes]") {
  r4::Identifier id;
  id.system = "urn:oid:1.2.392.100495.20.3.51.11311234567";
  id.value = "000123";
  id.assigner.Emplace().display = "Clinic";
  id.assigner->identifier.Emplace().value = "inner";
  const Node node = id.ToNode();
  r4::Identifier back;
  back.Read(node);
  CHECK(back.ToNode() == node);
  CHECK(*back.assigner->identifier->value.value == "inner");
}

TEST_CASE("datatypes: Extension holds any value type", "[typed][datatypes]") {
  r4::Extension ext;
  ext.url = "http://example.org/a";
  ext.value_codeable_concept.Emplace().text = "x";
  r4::Extension nested;
  nested.url = std::string(1, 'b');  // g++ 12 -Wrestrict misfires on = "b"
  nested.value_integer = r4::Integer(-5);
  ext.extension.push_back(nested);
  const Node node = ext.ToNode();
  CHECK(
      kakehashi::fhir::WriteJson(node, {.canonical = false}) ==
      R"({"extension":[{"url":"b","valueInteger":-5}],"url":"http://example.org/a","valueCodeableConcept":{"text":"x"}})");
  r4::Extension back;
  back.Read(node);
  CHECK(back.ToNode() == node);
}
