// Many SS-MIX2 roots in one database (gateway/app/importer.cpp, FindPeers;
// docs/decisions/0026-import-bounded-peers.md): a full export and one delta root per day. Each
// delta's record of a patient the full export holds replaces it (newest wins, 0020), and finding
// the full export's unit of that patient folder reads the checkpoint rows of that folder only —
// not the checkpoints of every root imported before, so importing the 40th delta reads no more
// than importing the first.
#include "importer.hpp"

#include "import_support.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using gateway::testing::Backend;
using testing::Families;
using testing::RunImport;
using testing::TempDir;
using testing::WritePatient;

std::string PatientId(int group, int n) {
  char id[16];
  std::snprintf(id, sizeof id, "7%d%08d", group, n);
  return id;
}

void ManyDeltaRoots(Backend backend) {
  // Kept small on PostgreSQL (each import is a few round trips per unit).
  const int roots = backend == Backend::kSqlite ? 40 : 12;
  TempDir dir("kakehashi-roots-");
  const fs::path full = dir.path / "full";
  for (int day = 1; day <= roots; ++day) WritePatient(full, PatientId(0, day), "旧", "20240101");
  std::vector<fs::path> deltas;
  for (int day = 1; day <= roots; ++day) {
    char date[16];
    std::snprintf(date, sizeof date, "202402%02d", day % 28 + 1);
    const fs::path delta = dir.path / ("delta" + std::to_string(day));
    WritePatient(delta, PatientId(0, day), "新", date);  // replaces the full export's record
    WritePatient(delta, PatientId(1, day), "初", date);  // a patient new that day
    deltas.push_back(delta);
  }
  auto t = gateway::testing::MakeStore(backend);
  const ImportStats first = RunImport(*t->store, [&](Importer& i) { return i.ImportStore(full); });
  CHECK(first.units == static_cast<std::size_t>(roots));
  CHECK(first.peer_checkpoint_rows == 0);  // no other root yet: nothing looked up
  std::vector<std::size_t> rows;
  for (const fs::path& delta : deltas) {
    const ImportStats stats =
        RunImport(*t->store, [&](Importer& i) { return i.ImportStore(delta); });
    CHECK(stats.units == 2);
    rows.push_back(stats.peer_checkpoint_rows);
  }
  // Per delta root: its two patient folders looked up; the full export holds one of them.
  // Before session 8 the importer read every root's whole checkpoint list instead: `roots` rows
  // for the first delta, `roots` + 2 x (delta - 1) for the later ones.
  INFO("rows read per delta root: first " << rows.front() << ", last " << rows.back());
  CHECK(std::all_of(rows.begin(), rows.end(), [](std::size_t n) { return n == 1; }));
  std::map<std::string, int> expected = {{"新", roots}, {"初", roots}};
  CHECK(Families(*t->store) == expected);

  // The full export imported again (other settings: every unit redone) after all the deltas:
  // their newer records stay; each folder finds the one delta root that holds it.
  const ImportStats redone = RunImport(
      *t->store, [&](Importer& i) { return i.ImportStore(full); }, "redo");
  CHECK(redone.units == static_cast<std::size_t>(roots));
  CHECK(redone.peer_checkpoint_rows == static_cast<std::size_t>(2 * roots));
  CHECK(Families(*t->store) == expected);

  // One delta root imported into a database holding only the full export: the same result for
  // its patient as in the database of all roots.
  auto two = gateway::testing::MakeStore(backend);
  RunImport(*two->store, [&](Importer& i) { return i.ImportStore(full); });
  const ImportStats last =
      RunImport(*two->store, [&](Importer& i) { return i.ImportStore(deltas.back()); });
  CHECK(last.peer_checkpoint_rows == rows.back());
  expected = {{"旧", roots - 1}, {"新", 1}, {"初", 1}};
  CHECK(Families(*two->store) == expected);
}
KAKEHASHI_BACKEND_TEST("import: finding a patient folder's other roots reads that folder only",
                       "[import][roots]", ManyDeltaRoots)

}  // namespace
}  // namespace kakehashi::app
