// bench_fhir_json: FHIR JSON read (parse + metadata check) and canonical write of a
// 1,000-resource Bundle (Patients, Observations, Conditions of realistic size), repeated for at
// least ~2 s per figure. Prints resources/s and MB/s, and the ratio against Node.js
// JSON.parse + JSON.stringify of the same file measured in the same run
// (tools/oracle/bench_fhir_json_peer.mjs; skipped when node is missing).
//
//   bench_fhir_json [--no-peer] [SOURCE_DIR]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/r4/condition.hpp"
#include "kakehashi/fhir/r4/observation.hpp"
#include "kakehashi/fhir/r4/patient.hpp"

namespace {

constexpr int kResources = 1000;

std::string Patient(int i) {
  const std::string id = std::to_string(i);
  return R"({"resourceType":"Patient","id":"p)" + id +
         R"(","meta":{"lastUpdated":"2026-11-30T10:00:00+09:00","profile":["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient"]},)"
         R"("identifier":[{"system":"urn:oid:1.2.392.100495.20.3.51.11311234567","value":")" +
         id +
         R"("}],"active":true,"name":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation","valueCode":"IDE"}],"use":"official","text":"山田 太郎","family":"山田","given":["太郎"]},)"
         R"({"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation","valueCode":"SYL"}],"use":"official","text":"ヤマダ タロウ","family":"ヤマダ","given":["タロウ"]}],)"
         R"("telecom":[{"system":"phone","value":"03-1234-5678","use":"home"}],"gender":"male","birthDate":"1970-01-)" +
         std::to_string(10 + i % 18) +
         R"(","address":[{"text":"東京都新宿区西新宿2-8-1","line":["西新宿2-8-1"],"city":"新宿区","state":"東京都","postalCode":"163-8001","country":"JP"}]})";
}

std::string Observation(int i) {
  const std::string id = std::to_string(i);
  return R"({"resourceType":"Observation","id":"o)" + id +
         R"(","meta":{"profile":["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_LabResult"]},"status":"final",)"
         R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],)"
         R"("code":{"coding":[{"system":"urn:oid:1.2.392.200119.4.504","code":"3D010000001926101","display":"グルコース"}],"text":"血糖"},)"
         R"("subject":{"reference":"Patient/p)" +
         id +
         R"("},"effectiveDateTime":"2026-11-30T09:15:00+09:00","issued":"2026-11-30T11:00:00.000+09:00",)"
         R"("valueQuantity":{"value":1)" +
         std::to_string(i % 9) +
         R"(2.50,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},)"
         R"("interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"H"}]}],)"
         R"("referenceRange":[{"low":{"value":70,"unit":"mg/dL"},"high":{"value":109,"unit":"mg/dL"},"text":"70-109"}]})";
}

std::string Condition(int i) {
  const std::string id = std::to_string(i);
  return R"({"resourceType":"Condition","id":"c)" + id +
         R"(","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},)"
         R"("verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},)"
         R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis"}]}],)"
         R"("code":{"coding":[{"system":"http://medis.or.jp/CodeSystem/master-disease-keyNumber","code":"20061234","display":"２型糖尿病"}],"text":"２型糖尿病"},)"
         R"("subject":{"reference":"Patient/p)" +
         id +
         R"("},"onsetDateTime":"2019-04","recordedDate":"2026-11-30",)"
         R"("note":[{"text":"食事療法中。HbA1c 7.2%"}]})";
}

std::string MakeBundle() {
  std::string text =
      R"({"resourceType":"Bundle","id":"bench","type":"collection","timestamp":"2026-11-30T12:00:00+09:00","entry":[)";
  for (int i = 0; i < kResources; ++i) {
    if (i > 0) text += ',';
    const std::string resource = i % 3 == 0   ? Patient(i)
                                 : i % 3 == 1 ? Observation(i)
                                              : Condition(i);
    text += R"({"fullUrl":"urn:uuid:00000000-0000-4000-8000-)";
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%012d", i);
    text += suffix;
    text += R"(","resource":)" + resource + "}";
  }
  return text + "]}";
}

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs the node peer; returns resources/s, or a negative value when it is unavailable.
double Peer(const std::string& source_dir, const std::string& text) {
  const std::filesystem::path script =
      std::filesystem::path(source_dir) / "tools/oracle/bench_fhir_json_peer.mjs";
  if (!std::filesystem::exists(script)) return -1;
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / "kakehashi_bench_fhir_json.json";
  std::ofstream(file, std::ios::binary) << text;
  const std::string command = "node '" + script.string() + "' '" + file.string() + "' " +
                              std::to_string(kResources) + " 2 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  if (pipe != nullptr) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    pclose(pipe);
  }
  std::filesystem::remove(file);
  auto parsed = kakehashi::fhir::ParseJson(output);
  if (!parsed) return -1;
  const auto* resources = parsed->Find("resources");
  const auto* seconds = parsed->Find("seconds");
  if (resources == nullptr || seconds == nullptr) return -1;
  const double s = std::stod(std::string(seconds->Text()));
  return s > 0 ? std::stod(std::string(resources->Text())) / s : -1;
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
  const double mb = static_cast<double>(text.size()) / (1024.0 * 1024.0);
  {  // The bench must measure valid input.
    kakehashi::CollectingSink sink;
    auto node = kakehashi::fhir::ReadResource(text, sink);
    if (!node || sink.HasErrors()) {
      for (const auto& issue : sink.Issues())
        std::fprintf(stderr, "%s\n", issue.ToString().c_str());
      return 1;
    }
  }

  // Read (parse + metadata check) + canonical write, the full round trip.
  int rounds = 0;
  std::size_t out_bytes = 0;
  double read_s = 0;
  double write_s = 0;
  const auto start = Clock::now();
  do {
    kakehashi::NullSink sink;
    const auto t0 = Clock::now();
    auto node = kakehashi::fhir::ReadResource(text, sink);
    const auto t1 = Clock::now();
    const std::string out = kakehashi::fhir::WriteJson(*node);
    const auto t2 = Clock::now();
    read_s += std::chrono::duration<double>(t1 - t0).count();
    write_s += std::chrono::duration<double>(t2 - t1).count();
    out_bytes = out.size();
    ++rounds;
  } while (Seconds(start) < 3.0);
  const double total_s = read_s + write_s;
  const double ours = kResources * rounds / total_s;
  std::printf("fhir_json: %d-resource Bundle, %.2f MB in, %.2f MB canonical out, %d rounds\n",
              kResources, mb, static_cast<double>(out_bytes) / (1024.0 * 1024.0), rounds);
  std::printf("fhir_json: read (parse+check) %.0f resources/s, %.1f MB/s\n",
              kResources * rounds / read_s, mb * rounds / read_s);
  std::printf("fhir_json: canonical write   %.0f resources/s, %.1f MB/s\n",
              kResources * rounds / write_s, mb * rounds / write_s);
  std::printf("fhir_json: read + write      %.0f resources/s, %.1f MB/s (kakehashi)\n", ours,
              mb * rounds / total_s);

  // Typed classes: each entry's Node -> r4::Patient/Observation/Condition (FromNode checks it
  // against the metadata first) -> Node, as the mapping layer's output path does in reverse.
  {
    kakehashi::NullSink sink;
    auto node = kakehashi::fhir::ReadResource(text, sink);
    const kakehashi::fhir::Node& entries = *node->Find("entry");
    int typed_rounds = 0;
    std::size_t converted = 0;
    const auto typed_start = Clock::now();
    do {
      for (const auto& entry : entries.Items()) {
        const kakehashi::fhir::Node& resource = *entry.Find("resource");
        const std::string_view type = resource.ResourceType();
        bool ok = false;
        if (type == "Patient") {
          auto typed = kakehashi::fhir::r4::Patient::FromNode(resource, sink);
          ok = typed && typed->ToNode().Size() > 0;
        } else if (type == "Observation") {
          auto typed = kakehashi::fhir::r4::Observation::FromNode(resource, sink);
          ok = typed && typed->ToNode().Size() > 0;
        } else if (type == "Condition") {
          auto typed = kakehashi::fhir::r4::Condition::FromNode(resource, sink);
          ok = typed && typed->ToNode().Size() > 0;
        }
        converted += ok ? 1 : 0;
      }
      ++typed_rounds;
    } while (Seconds(typed_start) < 2.0);
    const double typed_s = Seconds(typed_start);
    if (converted != static_cast<std::size_t>(kResources) * typed_rounds) {
      std::fprintf(stderr, "bench_fhir_json: typed conversion failed\n");
      return 1;
    }
    std::printf(
        "fhir_json: typed FromNode+ToNode %.0f resources/s (Patient/Observation/Condition)\n",
        static_cast<double>(converted) / typed_s);
  }

  if (!peer) return 0;
  const double theirs = Peer(source_dir, text);
  if (theirs <= 0) {
    std::printf("fhir_json: peer (node JSON.parse+stringify) not available\n");
    return 0;
  }
  std::printf("fhir_json: peer node JSON.parse+JSON.stringify %.0f resources/s, %.1f MB/s\n",
              theirs, theirs / kResources * mb);
  std::printf("fhir_json: ratio kakehashi/peer %.2f\n", ours / theirs);
  return 0;
}
