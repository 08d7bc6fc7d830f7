// Updates across imports (gateway/app/importer.cpp, "keys across runs";
// docs/decisions/0020-import-newest-wins.md): per resource key the version from the newest source
// message wins whatever order the units are imported or redone in — a delta root's replaced
// record against the full export, an HL7 v2 file's message against an SS-MIX2 delete, the same
// record in two roots — and a unit that no longer yields a key other units yield leaves it to
// them. Also the first import into a database written by the previous state format (0019).
#include "importer.hpp"

#include "import_support.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using fhir::Node;
using gateway::testing::Backend;
using testing::Adt00;
using testing::Order;
using testing::OrderRoot;
using testing::ReadText;
using testing::RemoveOrder;
using testing::RunImport;
using testing::TempDir;
using testing::WriteOtherPatient;

const fs::path kCase = fs::path(KAKEHASHI_SOURCE_DIR) / "tests/cases/ssmix2/two_roots_full_delta";
const std::string kPatient = "0012345678";

std::function<Result<void>(Importer&)> Root(const fs::path& root) {
  return [root](Importer& i) { return i.ImportStore(root); };
}
std::function<Result<void>(Importer&)> File(const fs::path& file) {
  return [file](Importer& i) { return i.ImportFile(file); };
}

// The live resources of `type`, JSON without meta.versionId/lastUpdated, sorted.
std::vector<std::string> Live(gateway::store::Store& store, const std::string& type) {
  std::vector<std::string> out = testing::LiveJson(store, type);
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::string> kTypes = {"MedicationRequest", "Condition", "Encounter",
                                         "Provenance", "Patient"};

std::map<std::string, std::vector<std::string>> Content(gateway::store::Store& store) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& type : kTypes) out[type] = Live(store, type);
  return out;
}

// A store holding the PUT entries of the case's expected Bundle (what `kakehashi convert full
// delta` writes), stored through the handler as the importer stores them.
std::map<std::string, std::vector<std::string>> Converted(Backend backend) {
  auto bundle = fhir::ParseJson(ReadText(kCase / "expected.json"));
  REQUIRE(bundle);
  auto t = gateway::testing::MakeStore(backend);
  gateway::Handler handler(*t->store, {});
  auto session = t->store->OpenSession();
  REQUIRE(session);
  REQUIRE((*session)->Begin());
  for (const Node& entry : bundle->Find("entry")->Items()) {
    if (entry.Find("request")->Find("method")->Text() != "PUT") continue;
    const Node& resource = *entry.Find("resource");
    CollectingSink issues;
    auto prepared =
        handler.PrepareWrite(resource.Find("resourceType")->Text(), resource.Find("id")->Text(),
                             fhir::WriteJson(resource), issues);
    REQUIRE(prepared);
    REQUIRE(handler.WritePrepared(**session, std::move(*prepared)));
  }
  REQUIRE((*session)->Commit());
  return Content(*t->store);
}

// The dose of the one MedicationRequest of order 55501 (full: 1 tablet, delta: 2).
std::string Dose(gateway::store::Store& store) {
  std::string dose;
  for (const std::string& json : Live(store, "MedicationRequest")) {
    if (json.find("000000000055501") == std::string::npos) continue;
    auto node = fhir::ParseJson(json);
    REQUIRE(node);
    const Node* quantity = node->Find("dosageInstruction")
                               ->Items()
                               .front()
                               .Find("doseAndRate")
                               ->Items()
                               .front()
                               .Find("doseQuantity");
    REQUIRE(quantity != nullptr);
    REQUIRE(dose.empty());
    dose = quantity->Find("value")->Text();
  }
  return dose;
}

void RemoveOrder55501(const fs::path& delta) {
  const fs::path dir = delta / "000/012/0000123456/20240601/OMP-01";
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find("_000000000055501_") != std::string::npos) {
      fs::remove(entry.path());
    }
  }
}

void ReplacedRecord(Backend backend) {
  TempDir dir("kakehashi-updates-");
  fs::copy(kCase / "full", dir.path / "full", fs::copy_options::recursive);
  fs::copy(kCase / "delta", dir.path / "delta", fs::copy_options::recursive);
  const fs::path full = dir.path / "full";
  const fs::path delta = dir.path / "delta";
  const auto expected = Converted(backend);

  auto alone = gateway::testing::MakeStore(backend);
  RunImport(*alone->store, Root(full));
  CHECK(Dose(*alone->store) == "1");

  auto full_delta = gateway::testing::MakeStore(backend);
  RunImport(*full_delta->store, Root(full));
  RunImport(*full_delta->store, Root(delta));
  CHECK(Dose(*full_delta->store) == "2");
  const auto reference = Content(*full_delta->store);
  // What `convert full delta` writes, but the full export's Provenance of the records the delta
  // replaced or deleted (a Provenance is per stored file: import keeps every file's).
  for (const auto& type : kTypes) {
    if (type == "Provenance") continue;
    INFO(type);
    CHECK(reference.at(type) == expected.at(type));
  }
  CHECK(reference.at("Provenance").size() >= expected.at("Provenance").size());

  SECTION("delta, then full, then full redone") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(delta));
    const ImportStats later = RunImport(*t->store, Root(full));
    CHECK(later.put_by_type.count("MedicationRequest") == 0);
    CHECK(Dose(*t->store) == "2");
    CHECK(Content(*t->store) == reference);
    RunImport(*t->store, Root(full), "other settings");
    CHECK(Content(*t->store) == reference);
  }
  SECTION("full redone after delta") {
    RunImport(*full_delta->store, Root(full), "other settings");
    CHECK(Dose(*full_delta->store) == "2");
    CHECK(Content(*full_delta->store) == reference);
    RunImport(*full_delta->store, Root(delta), "other settings");
    CHECK(Content(*full_delta->store) == reference);
  }
  SECTION("the delta's files of the record removed: the full export's version comes back") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(delta));
    RunImport(*t->store, Root(full));
    RemoveOrder55501(delta);
    RunImport(*t->store, Root(delta));
    CHECK(Dose(*t->store) == "1");
    RemoveOrder55501(full);
    RunImport(*t->store, Root(full));
    CHECK(Dose(*t->store).empty());
  }
  SECTION("the delta's patient folder removed: the full export's state comes back") {
    fs::remove_all(delta / "000/012");
    const ImportStats vanished = RunImport(*full_delta->store, Root(delta));
    CHECK(vanished.removed_units == 1);
    CHECK(Dose(*full_delta->store) == "1");
    for (const char* type : {"MedicationRequest", "Condition"}) {
      INFO(type);
      CHECK(Live(*full_delta->store, type) == Live(*alone->store, type));
    }
  }
}
KAKEHASHI_BACKEND_TEST("import: a replaced record's newest version wins in any import order",
                       "[import][updates]", ReplacedRecord)

// An HL7 v2 file unit's time is on record (its MSH-7), so a delete older than its message does
// not win because the file was imported first.
// Writes the order message as an HL7 v2 file `path` with MSH-7 2024-04-05 08:00 (after the
// delete of OrderRoot(..., "20240402090000000", '0')).
fs::path NewerOrderFile(const fs::path& path) {
  std::string text = Order();
  const auto at = text.find("20240401102000||");
  REQUIRE(at != std::string::npos);
  text.replace(at, 14, "20240405080000");
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

void FileUnitTime(Backend backend) {
  TempDir dir("kakehashi-updates-");
  const fs::path b = OrderRoot(dir.path / "b", "20240402090000000", '0');  // deleted 04-02
  const fs::path newer = NewerOrderFile(dir.path / "newer.hl7");
  auto reference = gateway::testing::MakeStore(backend);
  RunImport(*reference->store, File(newer));
  const auto order = Live(*reference->store, "MedicationRequest");
  REQUIRE(order.size() == 1);

  SECTION("file, then the delete, then the file redone; the delete released") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, File(newer));
    const ImportStats deleting = RunImport(*t->store, Root(b));
    CHECK(deleting.deleted_by_type.count("MedicationRequest") == 0);
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RunImport(*t->store, File(newer), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RunImport(*t->store, Root(b), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RemoveOrder(b);
    RunImport(*t->store, Root(b), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
  }
  SECTION("the delete, then the file; the deleting folder removed") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(b));
    RunImport(*t->store, File(newer));
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RunImport(*t->store, Root(b), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
    fs::remove_all(b / "001");
    WriteOtherPatient(b);
    const ImportStats vanished = RunImport(*t->store, Root(b), "other settings");
    CHECK(vanished.removed_units == 1);
    CHECK(Live(*t->store, "MedicationRequest") == order);
  }
  SECTION("an older file loses to the delete in any order") {
    const fs::path older = dir.path / "older.hl7";
    std::ofstream(older, std::ios::binary) << Order();  // MSH-7 2024-04-01 10:20
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, File(older));
    RunImport(*t->store, Root(b));
    CHECK(Live(*t->store, "MedicationRequest").empty());
    RunImport(*t->store, File(older), "other settings");
    CHECK(Live(*t->store, "MedicationRequest").empty());
    // The newer file arrives after both: it wins; the delete redone does not change that.
    RunImport(*t->store, File(newer));
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RunImport(*t->store, Root(b), "other settings 2");
    CHECK(Live(*t->store, "MedicationRequest") == order);
  }
}
KAKEHASHI_BACKEND_TEST("import: an HL7 v2 file's message time orders it against a delete",
                       "[import][updates]", FileUnitTime)

// A file whose path holds a tab or a line break (both allowed in Linux file names) is registered
// under its patient folder by its exact checkpoint key: the root's delete finds its time, and
// importing it again does not register it twice.
void FileNameWithLineBreak(Backend backend) {
  TempDir dir("kakehashi-updates-");
  const fs::path b = OrderRoot(dir.path / "b", "20240402090000000", '0');  // deleted 04-02
  const fs::path newer = NewerOrderFile(dir.path / "newer\tmessage\n.hl7");
  auto reference = gateway::testing::MakeStore(backend);
  RunImport(*reference->store, File(newer));
  const auto order = Live(*reference->store, "MedicationRequest");
  REQUIRE(order.size() == 1);

  auto t = gateway::testing::MakeStore(backend);
  RunImport(*t->store, File(newer));
  RunImport(*t->store, File(newer), "other settings");
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    auto files = (*session)->ReadUnitResources("import:patients", "001/234/" + kPatient);
    REQUIRE(files);
    CHECK(std::count(files->begin(), files->end(), '\n') == 1);
  }
  const ImportStats deleting = RunImport(*t->store, Root(b));
  CHECK(deleting.deleted_by_type.count("MedicationRequest") == 0);
  CHECK(Live(*t->store, "MedicationRequest") == order);
}
KAKEHASHI_BACKEND_TEST("import: a file unit whose path holds a tab or line break is found",
                       "[import][updates]", FileNameWithLineBreak)

// The same record in two roots: one root withdrawing it leaves it to the other.
void TwoRootsSameKey(Backend backend) {
  TempDir dir("kakehashi-updates-");
  const fs::path a = OrderRoot(dir.path / "a", "20240401102000000", '1');
  const fs::path c = OrderRoot(dir.path / "c", "20240401102000000", '1');
  auto reference = gateway::testing::MakeStore(backend);
  RunImport(*reference->store, Root(a));
  const auto order = Live(*reference->store, "MedicationRequest");
  REQUIRE(order.size() == 1);

  SECTION("A, C; C's file removed, then A's") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(a));
    RunImport(*t->store, Root(c));
    RemoveOrder(c);
    const ImportStats withdrawn = RunImport(*t->store, Root(c));
    CHECK(withdrawn.deleted_by_type.count("MedicationRequest") == 0);
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RemoveOrder(a);
    RunImport(*t->store, Root(a));
    CHECK(Live(*t->store, "MedicationRequest").empty());
  }
  SECTION("C, A, A redone; A's file removed") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(c));
    RunImport(*t->store, Root(a));
    RunImport(*t->store, Root(a), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
    RemoveOrder(a);
    RunImport(*t->store, Root(a), "other settings");
    CHECK(Live(*t->store, "MedicationRequest") == order);
  }
  SECTION("A, C; C's folder removed") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Root(a));
    RunImport(*t->store, Root(c));
    fs::remove_all(c / "001");
    WriteOtherPatient(c);
    const ImportStats vanished = RunImport(*t->store, Root(c));
    CHECK(vanished.removed_units == 1);
    CHECK(Live(*t->store, "MedicationRequest") == order);
    CHECK(Live(*t->store, "Patient").size() == 2);  // the sample patient's stays (A), and C's other
  }
}
KAKEHASHI_BACKEND_TEST("import: a key two roots yield stays while one of them yields it",
                       "[import][updates]", TwoRootsSameKey)

// A database written by the previous state format (0019: replaced records not ordered): delta,
// then full left the full export's dose; the first import of both roots after the upgrade (in
// the same order) gives the newest version.
void PreviousFormat(Backend backend) {
  TempDir dir("kakehashi-updates-");
  fs::copy(kCase / "full", dir.path / "full", fs::copy_options::recursive);
  fs::copy(kCase / "delta", dir.path / "delta", fs::copy_options::recursive);
  const fs::path full = dir.path / "full";
  const fs::path delta = dir.path / "delta";
  auto alone = gateway::testing::MakeStore(backend);
  RunImport(*alone->store, Root(full));
  auto reference = gateway::testing::MakeStore(backend);
  RunImport(*reference->store, Root(full));
  RunImport(*reference->store, Root(delta));
  const auto expected = Content(*reference->store);

  auto t = gateway::testing::MakeStore(backend);
  RunImport(*t->store, Root(delta));
  RunImport(*t->store, Root(full));
  // What the previous format left: the full export's order over the delta's, no lines for keys
  // that were never deleted, no kPatients rows, fingerprints of another state format.
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    auto& s = **session;
    REQUIRE(s.Begin());
    auto keys = s.ReadCheckpoints("import:deletes");
    REQUIRE(keys);
    std::size_t dropped = 0;
    for (const auto& [key, unused] : *keys) {
      auto lines = s.ReadUnitResources("import:deletes", key);
      REQUIRE(lines);
      if (lines->find("\tD\t") == std::string::npos) {
        REQUIRE(s.DeleteCheckpoint("import:deletes", key));
        ++dropped;
      }
    }
    CHECK(dropped > 0);
    for (const std::string& source : {"ssmix2:" + fs::weakly_canonical(full).generic_string(),
                                      "ssmix2:" + fs::weakly_canonical(delta).generic_string()}) {
      auto units = s.ReadCheckpoints(source);
      REQUIRE(units);
      REQUIRE(!units->empty());
      for (const auto& [unit, unused] : *units) REQUIRE(s.WriteCheckpoint(source, unit, "0"));
    }
    gateway::Handler handler(*t->store, {});
    for (const std::string& json : Live(*alone->store, "MedicationRequest")) {
      CollectingSink issues;
      auto node = fhir::ParseJson(json);
      REQUIRE(node);
      auto prepared =
          handler.PrepareWrite("MedicationRequest", node->Find("id")->Text(), json, issues);
      REQUIRE(prepared);
      REQUIRE(handler.WritePrepared(s, std::move(*prepared)));
    }
    REQUIRE(s.Commit());
  }
  CHECK(Dose(*t->store) == "1");
  const ImportStats first = RunImport(*t->store, Root(delta));
  CHECK(first.units == 2);
  RunImport(*t->store, Root(full));
  CHECK(Dose(*t->store) == "2");
  CHECK(Content(*t->store) == expected);
}
KAKEHASHI_BACKEND_TEST("import: the first import after the upgrade orders replaced records",
                       "[import][updates]", PreviousFormat)

}  // namespace
}  // namespace kakehashi::app
