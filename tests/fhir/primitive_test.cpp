#include "kakehashi/fhir/r4/primitive.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/r4/datatypes.hpp"

namespace r4 = kakehashi::fhir::r4;

TEST_CASE("primitive: values keep their lexical form", "[primitive]") {
  r4::Date date("1980-04");
  REQUIRE(date.value);
  CHECK(*date.value == "1980-04");  // precision kept: no padded day
  r4::Decimal dec("1.50");
  CHECK(*dec.value == "1.50");
  r4::Boolean flag = true;
  CHECK(*flag.value);
  r4::Integer n = 42;
  CHECK(*n.value == 42);
  CHECK(r4::String().IsEmpty());
  r4::String s;
  s.id = std::string(1, 'x');  // (g++ 12 -Wrestrict misfires on = "x")
  CHECK_FALSE(s.IsEmpty());
  CHECK(s.HasExtras());
}

TEST_CASE("primitive: Box is a deep-copying nullable holder", "[primitive]") {
  r4::Box<r4::HumanName> box;
  CHECK_FALSE(box);
  box.Emplace().family = "Yamada";
  REQUIRE(box);
  r4::Box<r4::HumanName> copy = box;
  copy->family = "Tanaka";
  CHECK(*box->family.value == "Yamada");
  CHECK(*copy->family.value == "Tanaka");
  r4::Box<r4::HumanName> moved = std::move(copy);
  CHECK(moved.HasValue());
  moved.Reset();
  CHECK_FALSE(moved);
  r4::HumanName name;
  name.text = "x";
  box = name;
  CHECK(*box->text.value == "x");
}

TEST_CASE("primitive: extensions on primitives", "[primitive]") {
  r4::Date date("1980");
  r4::Extension ext;
  ext.url = "http://example.org/precision";
  ext.value_code = r4::Code("year");
  date.extension.push_back(ext);
  r4::Date copy = date;
  REQUIRE(copy.extension.size() == 1);
  CHECK(copy.extension[0].url == "http://example.org/precision");
  CHECK(*copy.extension[0].value_code->value == "year");
}
