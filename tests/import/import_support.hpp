// Shared fixtures for tests/import: the built-in rules, the map options every import test uses,
// the store's history size, one checked import run, a temporary directory and the SS-MIX2 files
// the cross-import tests share.
#pragma once

#include "importer.hpp"

#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "kakehashi/mapping/mapper.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace kakehashi::app::testing {

inline const mapping::RuleSet& Rules() {
  static auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), "");
  REQUIRE(rules);
  return *rules;
}

inline mapping::MapOptions MapOptions() {
  mapping::MapOptions m;
  m.facility_code = "1312345679";
  m.report_unused = false;
  return m;
}

// Every history row of the store (all types), i.e. the number of versions ever written.
inline std::size_t HistoryRows(gateway::store::Store& store) {
  auto session = store.OpenSession();
  REQUIRE(session);
  gateway::store::HistoryQuery q;
  q.count = 100000;
  auto rows = (*session)->History(q);
  REQUIRE(rows);
  return rows->size();
}

// A stored resource's JSON without meta.versionId/lastUpdated (what differs between two stores
// that hold the same content).
inline std::string WithoutVersionMeta(const std::string& json) {
  auto node = fhir::ParseJson(json);
  REQUIRE(node);
  if (fhir::Node* meta = node->Find("meta")) {
    meta->Remove("versionId");
    meta->Remove("lastUpdated");
  }
  return fhir::WriteJson(*node);
}

// The live resources of `type` as WithoutVersionMeta JSON, in the store's search order.
inline std::vector<std::string> LiveJson(gateway::store::Store& store, const std::string& type) {
  auto session = store.OpenSession();
  REQUIRE(session);
  gateway::store::SearchQuery q;
  q.type = type;
  q.count = 1000;
  auto rows = (*session)->Search(q);
  REQUIRE(rows);
  std::vector<std::string> out;
  for (const auto& row : *rows) out.push_back(WithoutVersionMeta(row.json));
  return out;
}

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The constructed sample patient's current ADT-00 and its OMP-01 order message (key
// ..._000000000012346), which maps one MedicationRequest: what the cross-import tests build their
// roots from.
inline const std::filesystem::path& SamplePatient() {
  static const std::filesystem::path dir =
      std::filesystem::path(KAKEHASHI_SOURCE_DIR) /
      "samples/ssmix2/constructed/standard_root/001/234/0012345678";
  return dir;
}
inline std::string Adt00() {
  return ReadText(SamplePatient() /
                  "-/ADT-00/0012345678_-_ADT-00_999999999999999_20240401093000123_-_1");
}
inline std::string Order() {
  return ReadText(
      SamplePatient() /
      "20240401/OMP-01/0012345678_20240401_OMP-01_000000000012346_20240401102000000_01_0");
}

// A root holding the sample patient's ADT-00 and, when `flag` is given, the order key stored at
// `stored_at` (17 digits) with that condition flag (digest §2, §3).
inline std::filesystem::path OrderRoot(const std::filesystem::path& root,
                                       const std::string& stored_at, char flag) {
  const std::filesystem::path patient = root / "001/234/0012345678";
  std::filesystem::create_directories(patient / "-/ADT-00");
  std::ofstream(patient / "-/ADT-00/0012345678_-_ADT-00_999999999999999_20240401093000123_-_1",
                std::ios::binary)
      << Adt00();
  if (flag != 0) {
    std::filesystem::create_directories(patient / "20240401/OMP-01");
    std::ofstream(patient / "20240401/OMP-01" /
                      ("0012345678_20240401_OMP-01_000000000012346_" + stored_at + "_01_" + flag),
                  std::ios::binary)
        << Order();
  }
  return root;
}

// Removes the order's date folder from an OrderRoot.
inline void RemoveOrder(const std::filesystem::path& root) {
  std::filesystem::remove_all(root / "001/234/0012345678/20240401");
}

// A directory under the system temp directory, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    path = std::filesystem::temp_directory_path() / (prefix + gateway::testing::RandomSuffix());
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Another patient's ADT-00 (no Encounter): keeps a root from looking unmounted
// (import.store_empty) when the patient folder under test is removed from it.
inline void WriteOtherPatient(const std::filesystem::path& root) {
  const std::string id = "6000000001";
  const std::filesystem::path dir = root / "600" / "000" / id / "-" / "ADT-00";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (id + "_-_ADT-00_999999999999999_20240601100000000_-_1"), std::ios::binary)
      << "MSH|^~\\&|HIS|SEND|GW|RCV|20240601100000||ADT^A08^ADT_A01|F6001|P|2.5||||||UNICODE "
         "UTF-8\rEVN||20240601100000\rPID|0001||6000000001^^^^PI||合成^三郎^^^^^L^I||19800102|M\r";
}

// An ADT-00 record (a Patient named `family` 太郎) stored at `day` (8 digits) 10:00 in the folder
// of patient `id` in `root`; its PID-3 names `pid` (default: `id`, as SS-MIX2 wants).
inline void WritePatient(const std::filesystem::path& root, const std::string& id,
                         const std::string& family, const std::string& day,
                         const std::string& pid = {}) {
  const std::filesystem::path dir = root / id.substr(0, 3) / id.substr(3, 3) / id / "-" / "ADT-00";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (id + "_-_ADT-00_999999999999999_" + day + "100000000_-_1"), std::ios::binary)
      << "MSH|^~\\&|HIS|SEND|GW|RCV|" << day << "100000||ADT^A08^ADT_A01|C" << id << day
      << "|P|2.5||||||UNICODE UTF-8\rEVN||" << day << "100000\rPID|0001||"
      << (pid.empty() ? id : pid) << "^^^^PI||" << family << "^太郎^^^^^L^I||19800102|M\r";
}

// family name (旧, 新, 初) -> number of live Patients with it.
inline std::map<std::string, int> Families(gateway::store::Store& store) {
  std::map<std::string, int> out;
  for (const std::string& json : LiveJson(store, "Patient")) {
    for (const char* family : {"旧", "新", "初"}) {
      if (json.find(std::string("\"family\":\"") + family + "\"") != std::string::npos) {
        ++out[family];
      }
    }
  }
  return out;
}

// One `kakehashi import` run of `fn` (2 jobs, conformance validation on); the input must import
// without errors.
inline ImportStats RunImport(gateway::store::Store& store,
                             const std::function<Result<void>(Importer&)>& fn,
                             const std::string& settings = {}) {
  ImportOptions options;
  options.map = MapOptions();
  options.settings = settings;
  options.jobs = 2;
  gateway::HandlerOptions h;
  h.validator = ConformanceValidator();
  gateway::Handler handler(store, h);
  CollectingSink issues;
  Importer importer(handler, store, Rules(), options, issues);
  auto r = fn(importer);
  INFO((r ? std::string("ok") : r.error().message()));
  REQUIRE(r);
  for (const auto& issue : issues.Issues()) {
    INFO(issue.ToString());
    CHECK(issue.severity != Severity::kError);
    CHECK(issue.severity != Severity::kFatal);
  }
  return importer.Stats();
}

}  // namespace kakehashi::app::testing
