#include "kakehashi/terminology/concepts.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace kt = kakehashi::terminology;

TEST_CASE("concepts: ConceptMap URL and value semantics", "[terminology]") {
  CHECK(kt::ConceptMapUrl("hot") == "urn:kakehashi:conceptmap:hot");
  kt::Coding a{"http://loinc.org", "1234-5", "x", ""};
  kt::Coding b = a;
  CHECK(a == b);
  kt::Coding c{a.system, a.code, std::string("y"), ""};
  CHECK_FALSE(a == c);
  kt::Mapping m;
  CHECK(m.equivalence == "equivalent");  // R4 default when a table does not say otherwise
}
