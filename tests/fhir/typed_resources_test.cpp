// Every typed resource class: Node -> typed -> Node is lossless on the JP-CLINS examples (and on
// the resources inside their Bundles); each class rejects other resource types.
#include "kakehashi/fhir/r4/allergy_intolerance.hpp"
#include "kakehashi/fhir/r4/audit_event.hpp"
#include "kakehashi/fhir/r4/binary.hpp"
#include "kakehashi/fhir/r4/bundle.hpp"
#include "kakehashi/fhir/r4/capability_statement.hpp"
#include "kakehashi/fhir/r4/code_system.hpp"
#include "kakehashi/fhir/r4/composition.hpp"
#include "kakehashi/fhir/r4/concept_map.hpp"
#include "kakehashi/fhir/r4/condition.hpp"
#include "kakehashi/fhir/r4/consent.hpp"
#include "kakehashi/fhir/r4/coverage.hpp"
#include "kakehashi/fhir/r4/diagnostic_report.hpp"
#include "kakehashi/fhir/r4/document_reference.hpp"
#include "kakehashi/fhir/r4/encounter.hpp"
#include "kakehashi/fhir/r4/immunization.hpp"
#include "kakehashi/fhir/r4/location.hpp"
#include "kakehashi/fhir/r4/medication.hpp"
#include "kakehashi/fhir/r4/medication_administration.hpp"
#include "kakehashi/fhir/r4/medication_dispense.hpp"
#include "kakehashi/fhir/r4/medication_request.hpp"
#include "kakehashi/fhir/r4/medication_statement.hpp"
#include "kakehashi/fhir/r4/observation.hpp"
#include "kakehashi/fhir/r4/operation_outcome.hpp"
#include "kakehashi/fhir/r4/organization.hpp"
#include "kakehashi/fhir/r4/parameters.hpp"
#include "kakehashi/fhir/r4/patient.hpp"
#include "kakehashi/fhir/r4/practitioner.hpp"
#include "kakehashi/fhir/r4/practitioner_role.hpp"
#include "kakehashi/fhir/r4/procedure.hpp"
#include "kakehashi/fhir/r4/provenance.hpp"
#include "kakehashi/fhir/r4/service_request.hpp"
#include "kakehashi/fhir/r4/specimen.hpp"
#include "kakehashi/fhir/r4/value_set.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "kakehashi/fhir/json.hpp"

namespace r4 = kakehashi::fhir::r4;
using kakehashi::CollectingSink;
using kakehashi::fhir::Node;

namespace {

template <class T>
bool RoundTrip(const Node& node, std::string& detail) {
  CollectingSink sink;
  auto typed = T::FromNode(node, sink);
  if (!typed) {
    detail = typed.error().message();
    for (const auto& issue : sink.Issues()) detail += "\n" + issue.ToString();
    return false;
  }
  const Node back = typed->ToNode();
  if (!(back == node)) {
    detail =
        "differs:\n" + kakehashi::fhir::WriteJson(node) + "\n" + kakehashi::fhir::WriteJson(back);
    return false;
  }
  return true;
}

using RoundTripFn = bool (*)(const Node&, std::string&);

const std::map<std::string, RoundTripFn>& Typed() {
  static const std::map<std::string, RoundTripFn> kTable = {
      {"Patient", &RoundTrip<r4::Patient>},
      {"Coverage", &RoundTrip<r4::Coverage>},
      {"Organization", &RoundTrip<r4::Organization>},
      {"Practitioner", &RoundTrip<r4::Practitioner>},
      {"PractitionerRole", &RoundTrip<r4::PractitionerRole>},
      {"Location", &RoundTrip<r4::Location>},
      {"Encounter", &RoundTrip<r4::Encounter>},
      {"Condition", &RoundTrip<r4::Condition>},
      {"AllergyIntolerance", &RoundTrip<r4::AllergyIntolerance>},
      {"Medication", &RoundTrip<r4::Medication>},
      {"MedicationRequest", &RoundTrip<r4::MedicationRequest>},
      {"MedicationDispense", &RoundTrip<r4::MedicationDispense>},
      {"MedicationAdministration", &RoundTrip<r4::MedicationAdministration>},
      {"MedicationStatement", &RoundTrip<r4::MedicationStatement>},
      {"Immunization", &RoundTrip<r4::Immunization>},
      {"Observation", &RoundTrip<r4::Observation>},
      {"DiagnosticReport", &RoundTrip<r4::DiagnosticReport>},
      {"Specimen", &RoundTrip<r4::Specimen>},
      {"ServiceRequest", &RoundTrip<r4::ServiceRequest>},
      {"Procedure", &RoundTrip<r4::Procedure>},
      {"DocumentReference", &RoundTrip<r4::DocumentReference>},
      {"Composition", &RoundTrip<r4::Composition>},
      {"Bundle", &RoundTrip<r4::Bundle>},
      {"OperationOutcome", &RoundTrip<r4::OperationOutcome>},
      {"CapabilityStatement", &RoundTrip<r4::CapabilityStatement>},
      {"CodeSystem", &RoundTrip<r4::CodeSystem>},
      {"ValueSet", &RoundTrip<r4::ValueSet>},
      {"ConceptMap", &RoundTrip<r4::ConceptMap>},
      {"Provenance", &RoundTrip<r4::Provenance>},
      {"AuditEvent", &RoundTrip<r4::AuditEvent>},
      {"Consent", &RoundTrip<r4::Consent>},
      {"Parameters", &RoundTrip<r4::Parameters>},
      {"Binary", &RoundTrip<r4::Binary>},
  };
  return kTable;
}

}  // namespace

TEST_CASE("typed: every class knows its resourceType and rejects others", "[typed]") {
  REQUIRE(Typed().size() == 33);
  Node other = Node::Object();
  other.Set("resourceType", Node::String("Basic"));
  for (const auto& [type, fn] : Typed()) {
    INFO(type);
    std::string detail;
    CHECK_FALSE(fn(other, detail));
    CHECK(detail.rfind("not a FHIR resource\nerror fhir.typed.wrong_resource_type", 0) == 0);
    Node minimal = Node::Object();
    minimal.Set("resourceType", Node::String(type));
    CHECK(fn(minimal, detail));
  }
}

TEST_CASE("typed: JP-CLINS examples round-trip through the typed classes", "[typed][samples]") {
  const std::filesystem::path root =
      std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples" / "jpcore";
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto node = kakehashi::fhir::ParseJson(ss.str());
    REQUIRE(node.has_value());
    std::vector<const Node*> resources = {&*node};
    if (const Node* entries = node->Find("entry")) {
      for (const Node& e : entries->Items())
        if (const Node* r = e.Find("resource")) resources.push_back(r);
    }
    for (const Node* resource : resources) {
      auto it = Typed().find(std::string(resource->ResourceType()));
      if (it == Typed().end()) continue;
      INFO(entry.path().filename().string() << " " << resource->ResourceType());
      std::string detail;
      const bool ok = it->second(*resource, detail);
      INFO(detail);
      CHECK(ok);
      ++checked;
    }
  }
  CHECK(checked >= 20);
}

TEST_CASE("typed: invalid input is refused with issues", "[typed]") {
  auto node = kakehashi::fhir::ParseJson(R"({"resourceType":"Patient","birthDate":1980})");
  REQUIRE(node.has_value());
  CollectingSink sink;
  auto patient = r4::Patient::FromNode(*node, sink);
  REQUIRE_FALSE(patient.has_value());
  CHECK(patient.error() == kakehashi::fhir::errc::kInvalid);
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "fhir.json.wrong_type");
  CHECK(sink.Issues()[0].where.fhir_path == "Patient.birthDate");
}
