#include "kakehashi/fhir/r4/observation.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/json.hpp"

namespace r4 = kakehashi::fhir::r4;

TEST_CASE("Observation: typed choice value[x] and decimal precision", "[typed][observation]") {
  auto node = kakehashi::fhir::ParseJson(
      R"({"resourceType":"Observation","status":"final","code":{"text":"BW"},)"
      R"("effectiveDateTime":"2026-11-30T09:00:00+09:00","valueQuantity":{"value":62.50,"unit":"kg"}})");
  REQUIRE(node.has_value());
  kakehashi::CollectingSink sink;
  auto obs = r4::Observation::FromNode(*node, sink);
  REQUIRE(obs.has_value());
  REQUIRE(obs->value_quantity);
  CHECK(*obs->value_quantity->value.value == "62.50");
  CHECK_FALSE(obs->value_string);
  REQUIRE(obs->effective_date_time);
  CHECK(*obs->effective_date_time->value == "2026-11-30T09:00:00+09:00");
  CHECK(kakehashi::fhir::WriteJson(obs->ToNode()) == kakehashi::fhir::WriteJson(*node));
  obs->value_quantity.Reset();
  obs->value_string = r4::String("heavy");
  CHECK(obs->ToNode().Find("valueString")->Text() == "heavy");
  CHECK(obs->ToNode().Find("valueQuantity") == nullptr);
}
