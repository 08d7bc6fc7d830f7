// Units found through the patients their messages name (gateway/app/importer.cpp, FindPeers,
// LoadPeers; docs/decisions/0026-import-bounded-peers.md): an HL7 v2 batch file spanning many
// patients costs each patient folder only its own lines of the file (kFileLists), and a folder
// whose messages' PID-3 names another patient is found by the units of that patient (0020 "Known
// limits", both closed by 0026).
#include "importer.hpp"

#include "import_support.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using gateway::testing::Backend;
using testing::Families;
using testing::RunImport;
using testing::TempDir;
using testing::WritePatient;

std::string PatientId(int n) {
  char id[16];
  std::snprintf(id, sizeof id, "81%08d", n);
  return id;
}

// One HL7 v2 file of ADT^A08 messages (MSH-7 2024-03-01, family 新) for patients first..last.
void WriteBatch(const fs::path& file, int first, int last) {
  std::ofstream out(file, std::ios::binary);
  for (int n = first; n <= last; ++n) {
    const std::string id = PatientId(n);
    out << "MSH|^~\\&|HIS|SEND|GW|RCV|20240301100000||ADT^A08^ADT_A01|B" << id
        << "|P|2.5||||||UNICODE UTF-8\rEVN||20240301100000\rPID|0001||" << id
        << "^^^^PI||新^太郎^^^^^L^I||19800102|M\r";
  }
}

// Lines of the file unit's resource list that name a patient folder (the keys split by patient).
std::size_t PatientLines(gateway::store::Store& store, const fs::path& file) {
  auto session = store.OpenSession();
  REQUIRE(session);
  auto listed = (*session)->ReadUnitResources("file", fs::weakly_canonical(file).generic_string());
  REQUIRE(listed);
  std::size_t lines = 0;
  std::size_t pos = 0;
  while (pos < listed->size()) {
    const std::size_t nl = listed->find('\n', pos);
    const std::string line = listed->substr(pos, nl - pos);
    if (std::count(line.begin(), line.end(), '\t') == 2) ++lines;
    pos = nl == std::string::npos ? listed->size() : nl + 1;
  }
  return lines;
}

void BatchFile(Backend backend) {
  const int patients = 30;
  TempDir dir("kakehashi-batch-");
  const fs::path root = dir.path / "root";
  for (int n = 1; n <= patients; ++n) WritePatient(root, PatientId(n), "旧", "20240101");
  const fs::path batch = dir.path / "batch.hl7";
  WriteBatch(batch, 1, patients);
  auto import_root = [&](Importer& i) { return i.ImportStore(root); };
  auto import_batch = [&](Importer& i) { return i.ImportFile(batch); };
  const std::map<std::string, int> newer = {{"新", patients}};

  SECTION("the file, then the root: each folder reads its patient's lines of the file") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, import_batch);
    const std::size_t lines = PatientLines(*t->store, batch);
    CHECK(lines >= static_cast<std::size_t>(patients));
    const ImportStats stats = RunImport(*t->store, import_root);
    // Every line of the file read once in all; 0020 read the whole list per folder (x30).
    CHECK(stats.peer_list_lines == lines);
    CHECK(Families(*t->store) == newer);

    // The file rewritten with the first 10 patients only: the others' resources come back from
    // the root, and the file's lines of them are gone (the root redone reads only 10 patients').
    WriteBatch(batch, 1, 10);
    RunImport(*t->store, import_batch);
    CHECK(Families(*t->store) == std::map<std::string, int>{{"旧", patients - 10}, {"新", 10}});
    const std::size_t kept = PatientLines(*t->store, batch);
    const ImportStats redone = RunImport(*t->store, import_root, "redo");
    CHECK(redone.peer_list_lines == kept);
    CHECK(Families(*t->store) == std::map<std::string, int>{{"旧", patients - 10}, {"新", 10}});
  }
  SECTION("the root, then the file: one lookup per key of the file") {
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, import_root);
    const ImportStats stats = RunImport(*t->store, import_batch);
    const std::size_t lines = PatientLines(*t->store, batch);
    // At most two lookups per key (is it listed elsewhere; who lists it); 0020 looked the key
    // up in every folder's list (x30).
    CHECK(stats.peer_lookups <= 2 * lines);
    CHECK(stats.peer_lookups >= lines);
    CHECK(Families(*t->store) == newer);
  }
}
KAKEHASHI_BACKEND_TEST("import: a batch file costs each patient folder its own lines",
                       "[import][patients]", BatchFile)

// The units registered under patient `id`'s folder (import:patients), "" when none.
std::string Registered(gateway::store::Store& store, const std::string& id) {
  auto session = store.OpenSession();
  REQUIRE(session);
  const std::string folder = id.substr(0, 3) + "/" + id.substr(3, 3) + "/" + id;
  auto row = (*session)->ReadCheckpoint("import:patients", folder);
  REQUIRE(row);
  auto listed = (*session)->ReadUnitResources("import:patients", folder);
  REQUIRE(listed);
  CHECK(row->has_value() == !listed->empty());  // the row and its list go together
  return *listed;
}

// A folder whose ADT-00 names another patient in PID-3 (X holds patient Y's message: its
// Patient is Y's key) and the units of Y: an HL7 v2 file, Y's own folder in the same root.
void MisfiledPatient(Backend backend) {
  TempDir dir("kakehashi-misfiled-");
  const std::string x = "8200000001";
  const std::string y = "8300000001";
  const fs::path file = dir.path / "y.hl7";
  {
    std::ofstream out(file, std::ios::binary);
    out << "MSH|^~\\&|HIS|SEND|GW|RCV|20240301100000||ADT^A08^ADT_A01|F" << y
        << "|P|2.5||||||UNICODE UTF-8\rEVN||20240301100000\rPID|0001||" << y
        << "^^^^PI||新^太郎^^^^^L^I||19800102|M\r";
  }
  const std::map<std::string, int> newer = {{"新", 1}};

  SECTION("an older folder X naming Y, imported after Y's newer HL7 v2 file, loses to it") {
    const fs::path root = dir.path / "root";
    WritePatient(root, x, "旧", "20240101", y);
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, [&](Importer& i) { return i.ImportFile(file); });
    RunImport(*t->store, [&](Importer& i) { return i.ImportStore(root); });
    CHECK(Families(*t->store) == newer);
    // And in the other order.
    auto u = gateway::testing::MakeStore(backend);
    RunImport(*u->store, [&](Importer& i) { return i.ImportStore(root); });
    RunImport(*u->store, [&](Importer& i) { return i.ImportFile(file); });
    CHECK(Families(*u->store) == newer);
  }
  SECTION("X corrected or removed: it leaves Y's registrations (no more reads of X for Y)") {
    const fs::path root = dir.path / "root";
    const fs::path x_folder = root / x.substr(0, 3) / x.substr(3, 3) / x;
    WritePatient(root, x, "旧", "20240101", y);
    testing::WriteOtherPatient(root);  // X's removal must not look like an unmounted root
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, [&](Importer& i) { return i.ImportStore(root); });
    CHECK(Registered(*t->store, y).find(x) != std::string::npos);
    bool removed = false;
    SECTION("corrected: X's message names X") {
      fs::remove_all(x_folder);
      WritePatient(root, x, "旧", "20240102");
    }
    SECTION("removed from the root") {
      fs::remove_all(x_folder);
      removed = true;
    }
    RunImport(*t->store, [&](Importer& i) { return i.ImportStore(root); });
    // Before: X stayed registered under Y, and every import of a unit of Y read X's list.
    CHECK(Registered(*t->store, y).empty());
    const ImportStats stats = RunImport(*t->store, [&](Importer& i) { return i.ImportFile(file); });
    CHECK(stats.peer_list_lines == 0);
    CHECK(Families(*t->store) ==
          (removed ? newer : std::map<std::string, int>{{"旧", 1}, {"新", 1}}));
  }
  SECTION("in one root, Y's older folder walked after X's newer record of Y") {
    const fs::path root = dir.path / "root";
    WritePatient(root, x, "新", "20240301", y);
    WritePatient(root, y, "旧", "20240101");
    auto t = gateway::testing::MakeStore(backend);
    RunImport(*t->store, [&](Importer& i) { return i.ImportStore(root); });
    CHECK(Families(*t->store) == newer);
  }
}
KAKEHASHI_BACKEND_TEST("import: a folder whose PID-3 names another patient is ordered with it",
                       "[import][patients]", MisfiledPatient)

}  // namespace
}  // namespace kakehashi::app
