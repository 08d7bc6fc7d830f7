// bench_conformance: resources validated per second by conformance::Validator on a synthetic
// 1,000-resource Bundle, and the ratio vs the medplum validator (@medplum/core 4.5.2
// validateResource, tools/oracle/validate.mjs --bench) run over the same Bundle in the same run.
//
// Usage: bench_conformance [SOURCE_DIR] [--no-peer]
//   SOURCE_DIR defaults to the source tree this binary was built from (for tools/oracle).
// Prints: "conformance: N resources/s (kakehashi), M resources/s (medplum), ratio R x".
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

constexpr int kResources = 1000;

// Deterministic, realistic mix: patients, encounters, observations, conditions, prescriptions.
std::string MakeBundle() {
  std::string out = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  for (int i = 0; i < kResources; ++i) {
    const std::string n = std::to_string(i);
    const std::string patient = "Patient/p" + std::to_string(i / 5 * 5);
    if (i > 0) out += ',';
    out += R"({"fullUrl":"http://example.org/fhir/)";
    std::string resource;
    switch (i % 5) {
      case 0:
        out += "Patient/p" + n;
        resource =
            R"({"resourceType":"Patient","id":"p)" + n +
            R"(","meta":{"lastUpdated":"2026-11-30T09:00:00.000+09:00"},)"
            R"("identifier":[{"system":"urn:oid:1.2.392.100495.20.3.51.11234567890","value":")" +
            n +
            R"("}],"active":true,"name":[{"use":"official","text":"山田　太郎","family":"山田","given":["太郎"]},)"
            R"({"use":"usual","family":"ヤマダ","given":["タロウ"],"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation","valueCode":"SYL"}]}],)"
            R"("telecom":[{"system":"phone","value":"03-0000-0000","use":"home"}],"gender":"male",)"
            R"("birthDate":"1980-04-01","address":[{"text":"東京都千代田区","postalCode":"100-0001","country":"JP"}]})";
        break;
      case 1:
        out += "Encounter/e" + n;
        resource =
            R"({"resourceType":"Encounter","id":"e)" + n +
            R"(","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},)"
            R"("subject":{"reference":")" +
            patient +
            R"("},"period":{"start":"2026-11-30T09:00:00+09:00","end":"2026-11-30T09:30:00+09:00"}})";
        break;
      case 2:
        out += "Observation/o" + n;
        resource =
            R"({"resourceType":"Observation","id":"o)" + n +
            R"(","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],)"
            R"("code":{"coding":[{"system":"urn:oid:1.2.392.200119.4.504","code":"3D010000001926101","display":"グルコース"}]},)"
            R"("subject":{"reference":")" +
            patient +
            R"("},"effectiveDateTime":"2026-11-30T08:30:00+09:00","issued":"2026-11-30T09:00:00.123+09:00",)"
            R"("valueQuantity":{"value":105.50,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},)"
            R"("referenceRange":[{"low":{"value":70,"unit":"mg/dL"},"high":{"value":109,"unit":"mg/dL"}}]})";
        break;
      case 3:
        out += "Condition/c" + n;
        resource =
            R"({"resourceType":"Condition","id":"c)" + n +
            R"(","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},)"
            R"("verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},)"
            R"("code":{"text":"2型糖尿病"},"subject":{"reference":")" +
            patient + R"("},"onsetDateTime":"2015-06"})";
        break;
      default:
        out += "MedicationRequest/m" + n;
        resource =
            R"({"resourceType":"MedicationRequest","id":"m)" + n +
            R"(","contained":[{"resourceType":"Medication","id":"med","code":{"text":"アムロジピン錠5mg"}}],)"
            R"("status":"active","intent":"order","medicationReference":{"reference":"#med"},)"
            R"("subject":{"reference":")" +
            patient +
            R"("},"authoredOn":"2026-11-30","dosageInstruction":[{"text":"1日1回朝食後",)"
            R"("timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}},"doseAndRate":[{"doseQuantity":{"value":1,"unit":"錠"}}]}],)"
            R"("dispenseRequest":{"numberOfRepeatsAllowed":0,"expectedSupplyDuration":{"value":28,"unit":"日","system":"http://unitsofmeasure.org","code":"d"}}})";
        break;
    }
    out += R"(","resource":)" + resource + "}";
  }
  out += "]}";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string source_dir = KAKEHASHI_SOURCE_DIR;
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--no-peer") {
      peer = false;
    } else {
      source_dir = arg;
    }
  }
  const std::string text = MakeBundle();
  auto parsed = kakehashi::fhir::ParseJson(text);
  if (!parsed) {
    std::fprintf(stderr, "bench_conformance: synthetic Bundle does not parse\n");
    return 1;
  }
  const kakehashi::fhir::Node bundle = std::move(*parsed);
  const kakehashi::conformance::Validator validator;

  {  // The benchmark must measure valid input: any error here is a bug in the bench or validator.
    kakehashi::CollectingSink sink;
    if (!validator.Validate(bundle, sink)) {
      for (const auto& issue : sink.Issues())
        std::fprintf(stderr, "%s\n", issue.ToString().c_str());
      return 1;
    }
  }

  // Repeat for at least ~2 s of work to steady the figure on a shared machine.
  using Clock = std::chrono::steady_clock;
  int rounds = 0;
  const auto start = Clock::now();
  double seconds = 0;
  do {
    kakehashi::NullSink sink;
    validator.Validate(bundle, sink);
    ++rounds;
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (seconds < 2.0);
  const double ours = kResources * static_cast<double>(rounds) / seconds;
  std::printf("conformance: %.0f resources/s (kakehashi, %d x %d-resource Bundle, %.2f s)\n", ours,
              rounds, kResources, seconds);

  if (!peer) return 0;
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / "kakehashi_bench_conformance.json";
  std::ofstream(file, std::ios::binary) << text;
  const std::string command =
      "node \"" + source_dir + "/tools/oracle/validate.mjs\" --bench 5 \"" + file.string() + "\"";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  if (pipe != nullptr) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    pclose(pipe);
  }
  std::filesystem::remove(file);
  auto peer_parsed = kakehashi::fhir::ParseJson(output);
  const kakehashi::fhir::Node* r = peer_parsed ? peer_parsed->Find("resources") : nullptr;
  const kakehashi::fhir::Node* s = peer_parsed ? peer_parsed->Find("seconds") : nullptr;
  if (r == nullptr || s == nullptr) {
    std::printf("conformance: peer (medplum) not available: run tools/setup.sh\n");
    return 0;
  }
  const double theirs =
      std::atof(std::string(r->Text()).c_str()) / std::atof(std::string(s->Text()).c_str());
  std::printf("conformance: %.0f resources/s (medplum 4.5.2 validateResource, same Bundle)\n",
              theirs);
  std::printf("conformance: ratio %.1f x (kakehashi / medplum)\n", ours / theirs);
  return 0;
}
