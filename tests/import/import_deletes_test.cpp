// Deletes across imports (gateway/app/importer.cpp, "deletes across runs";
// docs/decisions/0019-import-deletes.md): a resource an SS-MIX2 flag-0 key deleted stays deleted
// whatever order the units are imported or redone in, unless a unit holds a newer message of it;
// a unit that no longer holds the delete releases it and the resource comes back from the unit
// that still yields it. Also the upgrade of Encounter-version lines of state format 1 (0012).
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
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using fhir::Node;
using gateway::testing::Backend;
using testing::Adt00;
using testing::MapOptions;
using testing::Order;
using testing::OrderRoot;
using testing::ReadText;
using testing::RemoveOrder;
using testing::Rules;
using testing::RunImport;
using testing::TempDir;
using testing::WriteOtherPatient;

const std::string kPatient = "0012345678";

// One import of the root (RunImport).
std::function<Result<void>(Importer&)> Store(const fs::path& root) {
  return [root](Importer& i) { return i.ImportStore(root); };
}

// The live resources of `type`, JSON without meta.versionId/lastUpdated.
std::vector<std::string> Live(gateway::store::Store& store, const std::string& type) {
  return testing::LiveJson(store, type);
}

std::vector<std::string> Orders(gateway::store::Store& store) {
  return Live(store, "MedicationRequest");
}

void DeletesAcrossImports(Backend backend) {
  TempDir dir("kakehashi-deletes-");
  // A: a full root with the order (flag 1, stored 2024-04-01); B: a delta root whose key is
  // deleted (flag 0, stored 2024-04-02, later). One import of both in time order: deleted.
  const fs::path a = OrderRoot(dir.path / "a", "20240401102000000", '1');
  const fs::path b = OrderRoot(dir.path / "b", "20240402090000000", '0');

  auto alone = gateway::testing::MakeStore(backend);
  RunImport(*alone->store, Store(a));
  const auto order = Orders(*alone->store);
  REQUIRE(order.size() == 1);
  CHECK(order.front().find("\"resourceType\":\"MedicationRequest\"") != std::string::npos);
  const auto patients = Live(*alone->store, "Patient");
  REQUIRE(patients.size() == 1);

  SECTION("A then B, then A redone: deleted") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Store(a));
    ImportStats deleted = RunImport(*t->store, Store(b));
    CHECK(deleted.deleted_by_type["MedicationRequest"] == 1);
    CHECK(Orders(*t->store).empty());
    // Other conversion settings redo A (the earlier unit): the delete is remembered.
    const ImportStats redone = RunImport(*t->store, Store(a), "other settings");
    CHECK(redone.units == 1);
    CHECK(redone.put_by_type.count("MedicationRequest") == 0);
    CHECK(Orders(*t->store).empty());
    RunImport(*t->store, Store(b), "other settings");
    CHECK(Orders(*t->store).empty());
    CHECK(Live(*t->store, "Patient") == patients);

    // B's deleted file is removed (its folder still holds the ADT-00): B no longer holds the
    // delete, and the order comes back from A as A yields it.
    RemoveOrder(b);
    const ImportStats released = RunImport(*t->store, Store(b), "other settings");
    CHECK(released.units == 1);
    CHECK(Orders(*t->store) == order);
    // Deleted again (B's file is back), released again: B's whole folder leaves its root.
    OrderRoot(b, "20240402090000000", '0');
    RunImport(*t->store, Store(b), "other settings");
    CHECK(Orders(*t->store).empty());
    fs::remove_all(b / "001");
    WriteOtherPatient(b);  // keeps root B from looking unmounted
    const ImportStats vanished = RunImport(*t->store, Store(b), "other settings");
    CHECK(vanished.removed_units == 1);
    CHECK(Orders(*t->store) == order);
  }

  SECTION("B then A: deleted; B released: back from A's kept content") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Store(b));
    CHECK(Orders(*t->store).empty());
    const ImportStats later = RunImport(*t->store, Store(a));
    CHECK(later.units == 1);
    CHECK(later.put_by_type.count("MedicationRequest") == 0);
    CHECK(Orders(*t->store).empty());
    RunImport(*t->store, Store(a), "other settings");
    CHECK(Orders(*t->store).empty());
    RemoveOrder(b);
    RunImport(*t->store, Store(b), "other settings");
    CHECK(Orders(*t->store) == order);
    // A no longer yields the order either: nothing is left to bring it back.
    RemoveOrder(a);
    RunImport(*t->store, Store(a), "other settings");
    CHECK(Orders(*t->store).empty());
  }

  SECTION("a message newer than the delete wins in any order") {
    const fs::path c = OrderRoot(dir.path / "c", "20240403090000000", '1');
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Store(b));
    RunImport(*t->store, Store(c));
    CHECK(Orders(*t->store) == order);  // C's record (2024-04-03) is newer than B's delete
    RunImport(*t->store, Store(a));
    CHECK(Orders(*t->store) == order);
    RunImport(*t->store, Store(b), "other settings");
    CHECK(Orders(*t->store) == order);
    auto u = gateway::testing::MakeStore(backend);
    RunImport(*u->store, Store(b));
    RunImport(*u->store, Store(a));
    CHECK(Orders(*u->store).empty());
    RunImport(*u->store, Store(c));
    CHECK(Orders(*u->store) == order);
    // C imported before B (C kept no line then: its list gives the time of its record).
    auto v = gateway::testing::MakeStore(backend);
    RunImport(*v->store, Store(c));
    const ImportStats kept = RunImport(*v->store, Store(b));
    CHECK(kept.deleted_by_type.count("MedicationRequest") == 0);
    CHECK(Orders(*v->store) == order);
    RunImport(*v->store, Store(a));
    RunImport(*v->store, Store(b), "other settings");
    CHECK(Orders(*v->store) == order);
    // C leaves: B's delete is the newest line again.
    RemoveOrder(c);
    RunImport(*u->store, Store(c));
    CHECK(Orders(*u->store).empty());
    RunImport(*v->store, Store(c));
    CHECK(Orders(*v->store).empty());
  }

  SECTION("HL7 v2 files are ordered by MSH-7") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, Store(b));
    const fs::path older = dir.path / "older.hl7";
    std::ofstream(older, std::ios::binary) << Order();  // MSH-7 2024-04-01 10:20, before B's
    RunImport(*t->store, [&](Importer& i) { return i.ImportFile(older); });
    CHECK(Orders(*t->store).empty());
    std::string text = Order();
    const auto at = text.find("20240401102000||");
    REQUIRE(at != std::string::npos);
    text.replace(at, 14, "20240405080000");  // after B's delete
    const fs::path newer = dir.path / "newer.hl7";
    std::ofstream(newer, std::ios::binary) << text;
    RunImport(*t->store, [&](Importer& i) { return i.ImportFile(newer); });
    const auto now = Orders(*t->store);
    REQUIRE(now.size() == 1);
    CHECK(now.front() == Orders(*alone->store).front());
  }
}
KAKEHASHI_BACKEND_TEST("import: a deleted resource stays deleted in any import order",
                       "[import][deletes]", DeletesAcrossImports)

// Encounter-version lines of state format 1 (decision 0012: "when \t slot \t unit \t JSON",
// without the kind field of 0013) read as kind K, and are rewritten in format 2 when the
// Encounter's lines are next written.
void FormatOneLines(Backend backend) {
  TempDir dir("kakehashi-deletes-");
  const fs::path messages =
      fs::path(KAKEHASHI_SOURCE_DIR) / "tests/import/cases/encounter_merge/messages";
  const fs::path admission = dir.path / "admission.hl7";
  const fs::path discharge = dir.path / "discharge.hl7";
  const fs::path both = dir.path / "both.hl7";
  std::ofstream(admission, std::ios::binary) << ReadText(messages / "a01.hl7");
  std::ofstream(discharge, std::ios::binary) << ReadText(messages / "a03.hl7");
  std::ofstream(both, std::ios::binary)
      << ReadText(messages / "a01.hl7") + ReadText(messages / "a03.hl7");
  auto reference = gateway::testing::MakeStore(backend);
  RunImport(*reference->store, [&](Importer& i) { return i.ImportFile(both); });
  const auto stay = Live(*reference->store, "Encounter");
  REQUIRE(stay.size() == 1);
  CHECK(stay.front().find("\"finished\"") != std::string::npos);

  auto t = gateway::testing::MakeStore(backend);
  RunImport(*t->store, [&](Importer& i) { return i.ImportFile(admission); });
  const auto admitted = Live(*t->store, "Encounter");
  REQUIRE(admitted.size() == 1);
  auto node = fhir::ParseJson(admitted.front());
  REQUIRE(node);
  const std::string id(node->Find("id")->Text());
  auto session = t->store->OpenSession();
  REQUIRE(session);
  auto& s = **session;
  auto lines = s.ReadUnitResources("import:encounter-versions", id);
  REQUIRE(lines);
  // Format 2: when, slot, unit, kind+trigger (M A01: an HL7 v2 message), JSON.
  const std::string& current = *lines;
  REQUIRE(std::count(current.begin(), current.end(), '\n') == 1);
  std::vector<std::string> fields;
  for (std::size_t from = 0, i = 0; i < 4; ++i) {
    const std::size_t tab = current.find('\t', from);
    REQUIRE(tab != std::string::npos);
    fields.push_back(current.substr(from, tab - from));
    from = tab + 1;
  }
  CHECK(fields[0] == "20240402100000000");
  CHECK(fields[3] == "MA01");
  const std::string json = current.substr(current.find("\t{") + 1);
  const std::string format1 = fields[0] + "\t" + fields[1] + "\t" + fields[2] + "\t" + json;
  REQUIRE(s.Begin());
  REQUIRE(s.WriteUnitResources("import:encounter-versions", id, format1));
  REQUIRE(s.Commit());

  // The discharge arrives: merged with the format-1 line (read as kind K, no trigger).
  RunImport(*t->store, [&](Importer& i) { return i.ImportFile(discharge); });
  CHECK(Live(*t->store, "Encounter") == stay);
  auto after = s.ReadUnitResources("import:encounter-versions", id);
  REQUIRE(after);
  CHECK(after->find(fields[0] + "\t" + fields[1] + "\t" + fields[2] + "\tK\t{") !=
        std::string::npos);
  CHECK(std::count(after->begin(), after->end(), '\n') == 2);
}
KAKEHASHI_BACKEND_TEST("import: Encounter-version lines of format 1 still merge",
                       "[import][encounter]", FormatOneLines)

}  // namespace
}  // namespace kakehashi::app
