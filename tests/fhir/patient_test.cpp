#include "kakehashi/fhir/r4/patient.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/json.hpp"

namespace r4 = kakehashi::fhir::r4;
using kakehashi::fhir::Node;

TEST_CASE("Patient: builder reads naturally and serialises canonically", "[typed][patient]") {
  r4::Patient p;
  p.id = "p1";
  p.birth_date = r4::Date("1980-04");
  p.birth_date.extension.emplace_back().url = "http://example.org/x";
  p.birth_date.extension.back().value_string = r4::String("y");
  r4::HumanName name;
  name.use = "official";
  name.family = "山田";
  name.given.push_back("太郎");
  p.name.push_back(name);
  p.gender = "male";
  p.deceased_boolean = r4::Boolean(false);
  r4::Patient::Contact contact;
  contact.gender = "female";
  p.contact.push_back(contact);
  p.managing_organization.Emplace().reference = "Organization/o1";
  const std::string json = kakehashi::fhir::WriteJson(p.ToNode());
  CHECK(
      json ==
      R"({"resourceType":"Patient","id":"p1","name":[{"use":"official","family":"山田","given":["太郎"]}],)"
      R"("gender":"male","birthDate":"1980-04","_birthDate":{"extension":[{"url":"http://example.org/x","valueString":"y"}]},)"
      R"("deceasedBoolean":false,"contact":[{"gender":"female"}],"managingOrganization":{"reference":"Organization/o1"}})");
  // The ToNode order is already canonical.
  CHECK(kakehashi::fhir::WriteJson(p.ToNode(), {.canonical = false}) == json);
  kakehashi::CollectingSink sink;
  auto back = r4::Patient::FromNode(p.ToNode(), sink);
  REQUIRE(back.has_value());
  CHECK(sink.Issues().empty());
  CHECK(*back->birth_date.value == "1980-04");
  CHECK(back->birth_date.extension.size() == 1);
  CHECK(back->deceased_boolean);
  CHECK_FALSE(back->deceased_date_time);
  CHECK(back->ToNode() == p.ToNode());
}

TEST_CASE("Patient: empty values are not written", "[typed][patient]") {
  r4::Patient p;
  p.name.emplace_back();                // empty HumanName
  p.telecom.emplace_back().value = "";  // empty string
  p.marital_status.Emplace();           // empty CodeableConcept
  CHECK(kakehashi::fhir::WriteJson(p.ToNode()) == R"({"resourceType":"Patient"})");
}

TEST_CASE("Patient: primitive arrays keep alignment with _x", "[typed][patient]") {
  auto node = kakehashi::fhir::ParseJson(
      R"({"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"id":"g2"}]}]})");
  REQUIRE(node.has_value());
  kakehashi::CollectingSink sink;
  auto p = r4::Patient::FromNode(*node, sink);
  REQUIRE(p.has_value());
  REQUIRE(p->name.size() == 1);
  REQUIRE(p->name[0].given.size() == 2);
  CHECK(*p->name[0].given[0].value == "A");
  CHECK_FALSE(p->name[0].given[1].value);
  CHECK(p->name[0].given[1].id == "g2");
  CHECK(p->ToNode() == *node);
}
