// Data-driven conversion cases (STYLE.md "Conversion cases are data"): every directory under
// tests/cases/hl7v2/ and tests/cases/ssmix2/ holds input.hl7 or an input/ storage tree (or an
// "input" path in case.json, relative to the repository, or "inputs": several storage roots in
// the case directory, merged by patient as `kakehashi convert ROOT...` does), case.json (options:
// profile, facility, masters = [{kind, file}] loaded into a terminology store; ignore: paths
// skipped by the deep compare) and expected.json (the whole Bundle). A mismatch names the first
// differing path; the actual output is written to <build>/cases-actual/<source>/<case>.json for
// review.
#include "case_util.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_json.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/loaders.hpp"
#include "kakehashi/terminology/store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace kakehashi;

namespace {

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> CaseDirs() {
  std::vector<fs::path> out;
  for (const char* source : {"hl7v2", "ssmix2"}) {
    fs::path dir = fs::path(KAKEHASHI_SOURCE_DIR) / "tests/cases" / source;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_directory() && fs::exists(entry.path() / "case.json")) {
        out.push_back(entry.path());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("conversion cases: every case directory converts to its expected.json", "[cases]") {
  std::string detail;
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), {}, &detail);
  INFO(detail);
  REQUIRE(rules.has_value());
  auto dirs = CaseDirs();
  REQUIRE(dirs.size() >= 8);
  for (const auto& dir : dirs) {
    const std::string name = dir.parent_path().filename().string() + "/" + dir.filename().string();
    INFO("case " << name);
    fhir::Node spec;
    std::string error;
    REQUIRE(mapping::ParseRuleJson(Slurp(dir / "case.json"), spec, &error));
    const fhir::Node* options = spec.Find("options");
    auto option = [&](const char* key) -> std::string {
      const fhir::Node* v = options != nullptr ? options->Find(key) : nullptr;
      return v != nullptr ? std::string(v->Text()) : std::string();
    };
    std::set<std::string> ignore;
    if (const fhir::Node* list = spec.Find("ignore")) {
      for (const auto& item : list->Items()) ignore.emplace(item.Text());
    }
    mapping::MapOptions map_options;
    map_options.profile = option("profile") == "jp-core-1.2.0" ? mapping::ProfileSet::kJpCore120
                                                               : mapping::ProfileSet::kJpCore112;
    map_options.facility_code = option("facility");
    // "masters": [{"kind": "hot", "file": "hot_master.csv"}, ...] (files in the case directory)
    // are loaded into an in-memory terminology store the mapping binds codings to (issue #5).
    std::unique_ptr<terminology::TerminologyStore> store;
    if (const fhir::Node* masters = options != nullptr ? options->Find("masters") : nullptr) {
      NullSink load_issues;
      auto opened = terminology::TerminologyStore::Open(
          {}, terminology::CodeSystemRegistry::Builtin(), load_issues);
      REQUIRE(opened.has_value());
      store = std::move(*opened);
      for (const auto& m : masters->Items()) {
        auto kind = terminology::MasterKindFromString(m.Find("kind")->Text());
        REQUIRE(kind.has_value());
        REQUIRE(
            terminology::LoadMasterFile(*kind, dir / m.Find("file")->Text(), *store, load_issues)
                .has_value());
      }
      map_options.terminology = store.get();
    }
    mapping::Converter converter(*rules, map_options);
    mapping::BundleBuilder bundle;
    CollectingSink issues;
    fs::path input =
        option("input").empty() ? dir / "input" : fs::path(KAKEHASHI_SOURCE_DIR) / option("input");
    if (const fhir::Node* roots = spec.Find("inputs")) {
      // Several roots of one facility: one patient at a time, its folder in every root read as
      // one folder (decision 0017), exactly as the convert workers read a unit.
      std::vector<std::unique_ptr<adapters::ssmix2::StorageReader>> readers;
      std::vector<adapters::ssmix2::StorageReader*> walked;
      for (const auto& root : roots->Items()) {
        readers.push_back(
            std::make_unique<adapters::ssmix2::StorageReader>(dir / root.Text(), issues));
        walked.push_back(readers.back().get());
      }
      REQUIRE(walked.size() >= 2);
      adapters::ssmix2::MergedWalk walk(walked);
      adapters::ssmix2::MergedWalk::Step step;
      while (walk.Next(step)) {
        REQUIRE(step.ended.empty());
        std::vector<adapters::ssmix2::StorageRecord> records;
        REQUIRE(adapters::ssmix2::StorageReader::ReadPatient(step.folders, records, issues));
        converter.ForgetEncounterVersions();  // one unit per patient, as in convert
        for (const auto& record : records) converter.ConvertRecord(record, bundle, issues);
      }
    } else if (fs::is_directory(input)) {
      adapters::ssmix2::StorageReader reader(input, issues);
      while (true) {
        auto next = reader.Next();
        REQUIRE(next.has_value());
        if (!*next) break;
        converter.ConvertRecord(**next, bundle, issues);
      }
    } else {
      REQUIRE(fs::exists(dir / "input.hl7"));
      converter.ConvertHl7(Slurp(dir / "input.hl7"), "input.hl7", bundle, issues);
    }
    for (const auto& issue : issues.Issues()) {
      // Conversion of a case never produces errors unless the case says so.
      if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
        FAIL_CHECK(issue.ToString());
      }
    }
    fhir::Node actual = bundle.Build();
    std::string text;
    testing::WriteJson(actual, text);
    fs::path out_dir =
        fs::path(KAKEHASHI_BINARY_DIR) / "cases-actual" / dir.parent_path().filename();
    fs::create_directories(out_dir);
    std::ofstream(out_dir / (dir.filename().string() + ".json")) << text << '\n';

    if (!fs::exists(dir / "expected.json")) {
      FAIL_CHECK("no expected.json (actual output written under cases-actual/)");
      continue;
    }
    fhir::Node expected;
    REQUIRE(mapping::ParseRuleJson(Slurp(dir / "expected.json"), expected, &error));
    CHECK(testing::FirstDifference(expected, actual, ignore) == "");
  }
}

TEST_CASE("conversion cases: converting twice gives identical output (deterministic ids)",
          "[cases]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  std::string first, second;
  for (std::string* out : {&first, &second}) {
    mapping::Converter converter(*rules, {});
    mapping::BundleBuilder bundle;
    NullSink issues;
    adapters::ssmix2::StorageReader reader(
        fs::path(KAKEHASHI_SOURCE_DIR) / "samples/ssmix2/constructed/standard_root", issues);
    while (true) {
      auto next = reader.Next();
      REQUIRE(next.has_value());
      if (!*next) break;
      converter.ConvertRecord(**next, bundle, issues);
    }
    testing::WriteJson(bundle.Build(), *out);
  }
  CHECK(first == second);
  CHECK(first.size() > 1000);
}
