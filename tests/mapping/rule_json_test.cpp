#include "kakehashi/mapping/rule_json.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi;

TEST_CASE("rule json: comments, trailing commas, numbers as text", "[mapping]") {
  fhir::Node n;
  std::string error;
  REQUIRE(mapping::ParseRuleJson(R"({
    // a comment
    "a": [1.50, "x\u00e9\n", true, null, ], /* block */
    "b": {"c": -2}
  })",
                                 n, &error));
  CHECK(n.Find("a")->Child(0).Text() == "1.50");
  CHECK(n.Find("a")->Child(1).Text() == "x\xc3\xa9\n");
  CHECK(n.Find("a")->Child(2).AsBool());
  CHECK(n.Find("a")->Child(3).IsNull());
  CHECK(n.Find("b")->Find("c")->Text() == "-2");
}

TEST_CASE("rule json: errors name the line", "[mapping]") {
  fhir::Node n;
  std::string error;
  CHECK_FALSE(mapping::ParseRuleJson("{\n\"a\": 1,\n\"a\": 2}", n, &error));
  CHECK(error == "line 3: duplicate member name");
  CHECK_FALSE(mapping::ParseRuleJson("{\"a\" 1}", n, &error));
  CHECK(error.find("expected ':'") != std::string::npos);
  CHECK_FALSE(mapping::ParseRuleJson("[1, 2", n, &error));
  CHECK_FALSE(mapping::ParseRuleJson("{} x", n, &error));
  CHECK_FALSE(mapping::ParseRuleJson("\"abc", n, &error));
}
