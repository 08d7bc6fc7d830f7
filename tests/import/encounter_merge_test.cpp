// Encounters across imports (gateway/app/importer.cpp, "Encounters across runs"): the Encounter of
// one stay comes out the same whether its ADT messages are imported in one go or over several
// imports, in any order (cases/encounter_merge/cases.json, which explains the modes); re-importing
// adds no version; a unit that no longer yields the Encounter leaves the other units' merge.
// Also the converter side: HL7 v2 input merges by MSH-7 and reports each version with its merge
// time (mapping/converter.hpp, OutputSink::EncounterVersion).
#include "importer.hpp"

#include "import_support.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_json.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using fhir::Node;
using gateway::testing::Backend;
using testing::HistoryRows;
using testing::MapOptions;
using testing::ReadText;
using testing::Rules;
using testing::RunImport;
using testing::TempDir;
using testing::WriteOtherPatient;

const fs::path& CaseDir() {
  static const fs::path dir =
      fs::path(KAKEHASHI_SOURCE_DIR) / "tests" / "import" / "cases" / "encounter_merge";
  return dir;
}

const Node& Cases() {
  static const Node cases = [] {
    Node out;
    std::string error;
    const bool ok = mapping::ParseRuleJson(ReadText(CaseDir() / "cases.json"), out, &error);
    INFO(error);
    REQUIRE(ok);
    return out;
  }();
  return cases;
}

std::string Message(const std::string& name) {
  return ReadText(CaseDir() / "messages" / (name + ".hl7"));
}

// ---------------------------------------------------------------- SS-MIX2 files (digest §2, §3)

const std::string kPatient = "5000000001";

// "a13:0" -> ("a13", '0'); "a01" -> ("a01", '1').
std::pair<std::string, char> Entry(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return {text, '1'};
  return {text.substr(0, colon), text[colon + 1]};
}

// Field 5 (発生日時) of a stored file name.
std::string StoredAt(const std::string& name) {
  std::size_t pos = 0;
  for (int i = 0; i < 4; ++i) pos = name.find('_', pos) + 1;
  return name.substr(pos, 17);
}

// Stores message `name` in `root` with `flag` as a storing system would: a flag-1 file makes the
// key's other versions history (_2; the newest file of the key is the _1), a flag-0 file marks
// every file of the key deleted (_0).
// Returns the new file's path as it is named afterwards.
fs::path AddToRoot(const fs::path& root, const std::string& name, char flag) {
  const Node* info = Cases().Find("messages")->Find(name);
  REQUIRE(info != nullptr);
  const std::string date(info->Find("date")->Text());
  const std::string type(info->Find("type")->Text());
  const fs::path dir =
      root / kPatient.substr(0, 3) / kPatient.substr(3, 3) / kPatient / date / type;
  fs::create_directories(dir);
  const std::string prefix = kPatient + "_" + date + "_" + type + "_999999999999999_";
  const std::string added = prefix + std::string(info->Find("stored_at")->Text()) + "_01_";
  {
    std::ofstream out(dir / (added + flag), std::ios::binary);
    out << Message(name);
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with(prefix)) names.push_back(n);
  }
  std::string newest;
  for (const auto& n : names) {
    if (n.back() == '0') continue;
    if (newest.empty() || StoredAt(n) > StoredAt(newest)) newest = n;
  }
  fs::path result;
  for (const auto& n : names) {
    char want = n == newest ? '1' : '2';
    if (flag == '0' || n.back() == '0') want = '0';
    if (n.back() != want) fs::rename(dir / n, dir / (n.substr(0, n.size() - 1) + want));
    if (n.starts_with(added)) result = dir / (n.substr(0, n.size() - 1) + want);
  }
  return result;
}

// ---------------------------------------------------------------- importing

// The store's Encounters, JSON without meta.versionId/lastUpdated.
std::vector<std::string> Encounters(gateway::store::Store& store) {
  return testing::LiveJson(store, "Encounter");
}

const Node* Path(const Node* n, std::initializer_list<std::string_view> keys) {
  for (std::string_view k : keys) {
    if (n == nullptr) return nullptr;
    if (n->IsArray()) n = n->Size() > 0 ? &n->Child(0) : nullptr;
    if (n == nullptr) return nullptr;
    n = n->Find(k);
  }
  if (n != nullptr && n->IsArray()) n = n->Size() > 0 ? &n->Child(0) : nullptr;
  return n;
}

std::string TextAt(const Node& n, std::initializer_list<std::string_view> keys) {
  const Node* at = Path(&n, keys);
  return at != nullptr ? std::string(at->Text()) : std::string("(absent)");
}

// The practitioner of participant role `role` (v3-ParticipationType ATND/ADM).
std::string Participant(const Node& encounter, std::string_view role) {
  const Node* list = encounter.Find("participant");
  if (list == nullptr) return "(absent)";
  for (const Node& p : list->Items()) {
    if (TextAt(p, {"type", "coding", "code"}) == role) {
      return TextAt(p, {"individual", "identifier", "value"});
    }
  }
  return "(absent)";
}

// `expect` of a case against the stored Encounters.
void CheckExpected(const Node& expect, const std::vector<std::string>& encounters) {
  if (expect.IsNull()) {
    CHECK(encounters.empty());
    return;
  }
  REQUIRE(encounters.size() == 1);
  auto node = fhir::ParseJson(encounters.front());
  REQUIRE(node);
  const Node& e = *node;
  for (std::size_t i = 0; i < expect.Size(); ++i) {
    const std::string_view key = expect.Key(i);
    const Node& want = expect.Child(i);
    const std::string wanted = want.IsNull() ? std::string("(absent)") : std::string(want.Text());
    std::string got;
    if (key == "status") got = TextAt(e, {"status"});
    if (key == "class") got = TextAt(e, {"class", "code"});
    if (key == "service") got = TextAt(e, {"serviceType", "coding", "code"});
    if (key == "ATND" || key == "ADM") got = Participant(e, key);
    if (key == "start") got = TextAt(e, {"period", "start"});
    if (key == "end") got = TextAt(e, {"period", "end"});
    if (key == "location") got = TextAt(e, {"location", "location", "display"});
    if (key == "location_start") got = TextAt(e, {"location", "period", "start"});
    INFO(key);
    CHECK(got == wanted);
  }
}

std::vector<std::vector<std::string>> Steps(const Node& c) {
  std::vector<std::vector<std::string>> out;
  for (const Node& step : c.Find("steps")->Items()) {
    out.emplace_back();
    for (const Node& m : step.Items()) out.back().emplace_back(m.Text());
  }
  return out;
}

bool HasMode(const Node& c, std::string_view mode) {
  const Node* modes = c.Find("modes");
  if (modes == nullptr) return true;
  for (const Node& m : modes->Items()) {
    if (m.Text() == mode) return true;
  }
  return false;
}

// Imports the case's steps in `mode` into `store` (settings: ImportOptions::settings); returns the
// per-step import functions so they can be replayed.
std::vector<std::function<Result<void>(Importer&)>> StepImports(const Node& c,
                                                                std::string_view mode,
                                                                const fs::path& dir) {
  std::vector<std::function<Result<void>(Importer&)>> out;
  const auto steps = Steps(c);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (mode == "hl7v2") {
      const fs::path file = dir / ("step" + std::to_string(i) + ".hl7");
      std::string bytes;
      for (const auto& m : steps[i]) bytes += Message(Entry(m).first);
      std::ofstream(file, std::ios::binary) << bytes;
      out.push_back([file](Importer& importer) { return importer.ImportFile(file); });
    } else if (mode == "ssmix2-delta") {
      const fs::path root = dir / ("delta" + std::to_string(i));
      for (const auto& m : steps[i]) AddToRoot(root, Entry(m).first, Entry(m).second);
      out.push_back([root](Importer& importer) { return importer.ImportStore(root); });
    } else if (mode == "ssmix2-file") {  // `import ssmix2 FILE` of each file as it arrives
      const fs::path root = dir / "files";
      const auto files = steps[i];
      out.push_back([root, files](Importer& importer) -> Result<void> {
        for (const auto& m : files) {
          KAKEHASHI_TRY_VOID(importer.ImportFile(AddToRoot(root, Entry(m).first, Entry(m).second)));
        }
        return {};
      });
    } else {  // ssmix2-same-root: the files arrive when the step runs
      const fs::path root = dir / "root";
      const auto files = steps[i];
      out.push_back([root, files](Importer& importer) {
        for (const auto& m : files) AddToRoot(root, Entry(m).first, Entry(m).second);
        return importer.ImportStore(root);
      });
    }
  }
  return out;
}

// Every message of the case in one import (one file in step order / one root).
std::function<Result<void>(Importer&)> OneGo(const Node& c, std::string_view mode,
                                             const fs::path& dir) {
  if (mode == "hl7v2") {
    const fs::path file = dir / "all.hl7";
    std::string bytes;
    for (const auto& step : Steps(c)) {
      for (const auto& m : step) bytes += Message(Entry(m).first);
    }
    std::ofstream(file, std::ios::binary) << bytes;
    return [file](Importer& importer) { return importer.ImportFile(file); };
  }
  const fs::path root = dir / "onego";
  for (const auto& step : Steps(c)) {
    for (const auto& m : step) AddToRoot(root, Entry(m).first, Entry(m).second);
  }
  return [root](Importer& importer) { return importer.ImportStore(root); };
}

// One test case per mode (ctest runs the PostgreSQL ones as separate tests, each well under the
// suite's per-test budget).
void StaysAcrossImports(Backend backend, std::string_view mode) {
  for (const Node& c : Cases().Find("cases")->Items()) {
    if (!HasMode(c, mode)) continue;
    INFO(c.Find("name")->Text() << " / " << mode);
    TempDir dir("kakehashi-encmerge-");
    const Node& expect = *c.Find("expect");

    auto whole = gateway::testing::MakeStore(backend);
    RunImport(*whole->store, OneGo(c, mode, dir.path));
    const auto reference = Encounters(*whole->store);
    CheckExpected(expect, reference);

    auto t = gateway::testing::MakeStore(backend);
    const auto steps = StepImports(c, mode, dir.path);
    for (const auto& step : steps) RunImport(*t->store, step);
    const auto stepwise = Encounters(*t->store);
    CHECK(stepwise == reference);
    CheckExpected(expect, stepwise);

    // Re-importing changes nothing: unchanged units are skipped; with other conversion
    // settings every unit is converted and merged again, and no new version is written. Also
    // for a stay whose keys a later step deletes or cancels: the deletion is remembered (its
    // withdrawal lines), so redoing an earlier step does not PUT the withdrawn versions again.
    const std::size_t versions = HistoryRows(*t->store);
    const bool adds_files = mode == "ssmix2-same-root" || mode == "ssmix2-file";
    if (!adds_files) {
      for (const auto& step : steps) {
        const ImportStats again = RunImport(*t->store, step);
        CHECK(again.units == 0);
      }
      CHECK(HistoryRows(*t->store) == versions);
      for (const auto& step : steps) {
        const ImportStats redone = RunImport(*t->store, step, "other settings");
        CHECK(redone.units >= 1);
        CHECK(redone.put_by_type.count("Encounter") == 0);
      }
      CHECK(HistoryRows(*t->store) == versions);
      CHECK(Encounters(*t->store) == reference);
    }
  }
}
void StaysHl7v2(Backend backend) {
  StaysAcrossImports(backend, "hl7v2");
}
void StaysDelta(Backend backend) {
  StaysAcrossImports(backend, "ssmix2-delta");
}
void StaysSameRoot(Backend backend) {
  StaysAcrossImports(backend, "ssmix2-same-root");
}
void StaysFile(Backend backend) {
  StaysAcrossImports(backend, "ssmix2-file");
}
KAKEHASHI_BACKEND_TEST(
    "import: a stay's Encounter is the same in one import or over several (hl7v2 files)",
    "[import][encounter]", StaysHl7v2)
KAKEHASHI_BACKEND_TEST(
    "import: a stay's Encounter is the same in one import or over several (ssmix2 delta roots)",
    "[import][encounter]", StaysDelta)
KAKEHASHI_BACKEND_TEST(
    "import: a stay's Encounter is the same in one import or over several (ssmix2 one root)",
    "[import][encounter]", StaysSameRoot)
KAKEHASHI_BACKEND_TEST(
    "import: a stay's Encounter is the same in one import or over several (ssmix2 files)",
    "[import][encounter]", StaysFile)

// A unit that no longer yields the Encounter (its file changed, its folder removed from a root)
// withdraws its versions: the Encounter is the merge of the others', the same as if that unit
// had never been imported; when none are left it is deleted.
void Withdrawn(Backend backend) {
  TempDir dir("kakehashi-encmerge-");
  const fs::path admission = dir.path / "admission.hl7";
  const fs::path discharge = dir.path / "discharge.hl7";
  std::ofstream(admission, std::ios::binary) << Message("a01");
  std::ofstream(discharge, std::ios::binary) << Message("a03");
  auto alone = gateway::testing::MakeStore(backend);
  RunImport(*alone->store, [&](Importer& i) { return i.ImportFile(admission); });
  const auto admission_only = Encounters(*alone->store);
  REQUIRE(admission_only.size() == 1);
  CHECK(admission_only.front().find("\"arrived\"") != std::string::npos);

  auto t = gateway::testing::MakeStore(backend);
  RunImport(*t->store, [&](Importer& i) { return i.ImportFile(admission); });
  RunImport(*t->store, [&](Importer& i) { return i.ImportFile(discharge); });
  CHECK(Encounters(*t->store).front().find("\"finished\"") != std::string::npos);
  // The discharge file now holds the A02 of another visit: its A03 version is withdrawn.
  {
    std::string other = Message("a02");
    const auto at = other.find("V500001");
    REQUIRE(at != std::string::npos);
    other.replace(at, 7, "V599999");
    std::ofstream(discharge, std::ios::binary | std::ios::trunc) << other;
  }
  RunImport(*t->store, [&](Importer& i) { return i.ImportFile(discharge); });
  auto now = Encounters(*t->store);
  REQUIRE(now.size() == 2);  // the stay and the other visit
  CHECK(std::count(now.begin(), now.end(), admission_only.front()) == 1);

  // SS-MIX2: a delta root whose patient folder is removed after it was imported.
  auto s = gateway::testing::MakeStore(backend);
  const fs::path first = dir.path / "first";
  const fs::path delta = dir.path / "delta";
  AddToRoot(first, "a01", '1');
  AddToRoot(delta, "a03", '1');
  AddToRoot(delta, "a02", '1');
  RunImport(*s->store, [&](Importer& i) { return i.ImportStore(first); });
  const auto first_only = Encounters(*s->store);
  RunImport(*s->store, [&](Importer& i) { return i.ImportStore(delta); });
  CHECK(Encounters(*s->store) != first_only);
  fs::remove_all(delta / "500");
  WriteOtherPatient(delta);
  ImportStats removed = RunImport(*s->store, [&](Importer& i) { return i.ImportStore(delta); });
  CHECK(removed.removed_units == 1);
  CHECK(Encounters(*s->store) == first_only);

  // A delta root whose deleted discharge key (flag-0 A13) withdrew the A03 is removed: the
  // withdrawal goes with it and the stay is finished again, as if it had never been imported.
  auto w = gateway::testing::MakeStore(backend);
  const fs::path stay = dir.path / "stay";
  const fs::path cancel = dir.path / "cancel";
  AddToRoot(stay, "a01", '1');
  AddToRoot(stay, "a03", '1');
  AddToRoot(cancel, "a13", '0');
  RunImport(*w->store, [&](Importer& i) { return i.ImportStore(stay); });
  const auto finished = Encounters(*w->store);
  REQUIRE(finished.size() == 1);
  CHECK(finished.front().find("\"finished\"") != std::string::npos);
  RunImport(*w->store, [&](Importer& i) { return i.ImportStore(cancel); });
  const auto cancelled = Encounters(*w->store);
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled.front().find("\"in-progress\"") != std::string::npos);
  CHECK(cancelled.front().find("\"end\"") == std::string::npos);
  fs::remove_all(cancel / "500");
  WriteOtherPatient(cancel);
  ImportStats reverted = RunImport(*w->store, [&](Importer& i) { return i.ImportStore(cancel); });
  CHECK(reverted.removed_units == 1);
  CHECK(Encounters(*w->store) == finished);

  // No other unit gave versions: the Encounter is deleted, as before.
  auto u = gateway::testing::MakeStore(backend);
  const fs::path only = dir.path / "only";
  AddToRoot(only, "a01", '1');
  RunImport(*u->store, [&](Importer& i) { return i.ImportStore(only); });
  CHECK(Encounters(*u->store).size() == 1);
  fs::remove_all(only / "500");
  WriteOtherPatient(only);
  ImportStats gone = RunImport(*u->store, [&](Importer& i) { return i.ImportStore(only); });
  CHECK(gone.removed_units == 1);
  CHECK(gone.deleted_by_type["Encounter"] == 1);
  CHECK(Encounters(*u->store).empty());
}
KAKEHASHI_BACKEND_TEST(
    "import: a unit that no longer yields the Encounter leaves the others' merge",
    "[import][encounter]", Withdrawn)

// The converter side: every Encounter version is reported with its merge time (MSH-7, else
// EVN-2, 17 digits) and slot, and one HL7 v2 input merges by MSH-7, not by message order.
class VersionRecorder final : public mapping::OutputSink {
 public:
  void Put(const std::string& type, const std::string&, Node resource) override {
    if (type == "Encounter") last = std::move(resource);
  }
  void Delete(const std::string&, const std::string&) override {}
  void EncounterVersion(const std::string&, const mapping::EncounterVersionInfo& info,
                        const Node*) override {
    versions.push_back(std::string(info.when) + " " + std::string(info.slot) + " " +
                       std::string(info.trigger));
  }
  std::vector<std::string> versions;
  Node last;
};

TEST_CASE("convert: Encounter versions carry MSH-7 and merge in its order", "[import][encounter]") {
  mapping::Converter converter(Rules(), MapOptions());
  VersionRecorder out;
  NullSink quiet;
  std::string a03 = Message("a03");
  // MSH-7 with fractional seconds and a zone; the zone is ignored, the fraction kept.
  a03.replace(a03.find("20240410110000"), 14, "20240410110000.25+0900");
  std::string a01 = Message("a01");
  // No MSH-7: EVN-2 is the merge time.
  a01.replace(a01.find("20240402100000"), 14, "");
  converter.ConvertHl7(a03 + a01, "in.hl7", out, quiet);
  CHECK(out.versions == std::vector<std::string>{"20240410110000250 00000001 A03",
                                                 "20240402100000000 00000002 A01"});
  // The A01 is older: the A03 comes last, so the stay is finished and keeps the admission.
  CHECK(TextAt(out.last, {"status"}) == "finished");
  CHECK(TextAt(out.last, {"period", "start"}) == "2024-04-02T10:00:00+09:00");
  CHECK(TextAt(out.last, {"period", "end"}) == "2024-04-10T10:30:00+09:00");
  CHECK(Participant(out.last, "ADM") == "D002");

  // MergeEncounterVersions is the converter's rule: a later version without an end and a status
  // that is not over drops period.end.
  auto older = fhir::ParseJson(
      R"({"resourceType":"Encounter","status":"finished","period":{"start":"2024-04-02","end":"2024-04-10"}})");
  auto newer = fhir::ParseJson(R"({"resourceType":"Encounter","status":"in-progress"})");
  REQUIRE(older);
  REQUIRE(newer);
  auto merged = mapping::MergeEncounterVersions({{&*older, "A03"}, {&*newer, "A02"}});
  REQUIRE(merged);
  CHECK(fhir::WriteJson(*merged) ==
        R"({"resourceType":"Encounter","status":"in-progress","period":{"start":"2024-04-02"}})");
  merged = mapping::MergeEncounterVersions({{&*older, "A03"}});
  REQUIRE(merged);
  CHECK(fhir::WriteJson(*merged) == fhir::WriteJson(*older));
}

// MergeEncounterVersions and cancels (HL7 v2.5 ch. 3 pairs): an HL7 v2 cancel withdraws the
// latest earlier version of the event it cancels; a version that is not live (a deleted SS-MIX2
// key's cancel message) contributes, but no live version left means DELETE (nullopt).
TEST_CASE("merge: cancels withdraw what they cancel; only deleted keys left is a delete",
          "[import][encounter]") {
  auto parse = [](const char* json) {
    auto n = fhir::ParseJson(json);
    REQUIRE(n);
    return *n;
  };
  const Node a01 = parse(R"({"status":"arrived","location":[{"location":{"display":"3A"}}]})");
  const Node a02 = parse(R"({"status":"in-progress","location":[{"location":{"display":"4B"}}]})");
  const Node a02b = parse(R"({"status":"in-progress","location":[{"location":{"display":"5C"}}]})");
  const Node a12 = parse(R"({"status":"in-progress"})");
  const Node a03 = parse(R"({"status":"finished","period":{"start":"2024","end":"2025"}})");
  const Node a13 = parse(R"({"status":"in-progress"})");
  using V = mapping::VersionToMerge;
  // A12 by trigger withdraws the latest A02 (5C): the ward is 4B again.
  auto m = mapping::MergeEncounterVersions(
      {V{&a01, "A01", true}, V{&a02, "A02", true}, V{&a02b, "A02", true}, V{&a12, "A12", true}});
  REQUIRE(m);
  CHECK(fhir::WriteJson(*m) ==
        R"({"status":"in-progress","location":[{"location":{"display":"4B"}}]})");
  // Not by trigger (an SS-MIX2 record): the A12 is merged, nothing withdrawn.
  m = mapping::MergeEncounterVersions({V{&a01, "A01"}, V{&a02, "A02"}, V{&a12, "A12"}});
  REQUIRE(m);
  CHECK(fhir::WriteJson(*m) ==
        R"({"status":"in-progress","location":[{"location":{"display":"4B"}}]})");
  // A13 withdraws the A03: no end, in progress.
  m = mapping::MergeEncounterVersions(
      {V{&a01, "A01", true}, V{&a03, "A03", true}, V{&a13, "A13", true}});
  REQUIRE(m);
  CHECK(fhir::WriteJson(*m) ==
        R"({"status":"in-progress","location":[{"location":{"display":"3A"}}]})");
  // A cancel before the event it names cancels nothing.
  m = mapping::MergeEncounterVersions({V{&a13, "A13", true}, V{&a03, "A03", true}});
  REQUIRE(m);
  CHECK(TextAt(*m, {"status"}) == "finished");
  // Only versions of deleted keys: nothing to PUT.
  CHECK_FALSE(mapping::MergeEncounterVersions({V{&a13, "A13", false, false}}).has_value());
  m = mapping::MergeEncounterVersions({V{&a01, "A01"}, V{&a13, "A13", false, false}});
  REQUIRE(m);
  CHECK(TextAt(*m, {"status"}) == "in-progress");
  CHECK(mapping::CancelledTrigger("A11") == "A01");
  CHECK(mapping::CancelledTrigger("A55") == "A54");
  CHECK(mapping::CancelledTrigger("A03").empty());
}

}  // namespace
}  // namespace kakehashi::app
