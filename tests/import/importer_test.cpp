// The importer (gateway/app/importer.hpp): an SS-MIX2 store in the gateway's database equals what
// `kakehashi convert` produces (puts live, deletes absent), an interrupted import resumed gives
// the same database as an uninterrupted one, re-importing changes nothing, a changed patient
// folder is imported again, and bad input is reported and kept without stopping the import.
#include "importer.hpp"

#include "import_support.hpp"
#include "kakehashi/adapters/ssmix2/batch_read.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using gateway::testing::Backend;
using testing::HistoryRows;
using testing::MapOptions;
using testing::Rules;

void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A synthetic UTF-8 ADT-00 (ADT^A08) for patient `id` (10 digits); digest §2 file naming.
void WriteAdt(const fs::path& root, const std::string& id, const std::string& ts,
              const std::string& flag, const std::string& family) {
  const std::string msg = "MSH|^~\\&|HIS|SEND|GW|RCV|" + ts.substr(0, 14) + "||ADT^A08^ADT_A01|M" +
                          id + ts.substr(0, 14) +
                          "|P|2.5||||||UNICODE UTF-8\r"
                          "EVN||" +
                          ts.substr(0, 14) +
                          "\r"
                          "PID|0001||" +
                          id + "^^^^PI||" + family +
                          "^太郎^^^^^L^I||19800102|M\r"
                          "PV1|0001|O\r";
  const fs::path dir = root / id.substr(0, 3) / id.substr(3, 3) / id / "-" / "ADT-00";
  WriteText(dir / (id + "_-_ADT-00_999999999999999_" + ts + "_-_" + flag), msg);
}

struct Fixture {
  fs::path dir;
  fs::path root;
  explicit Fixture(bool bad_file = true) {
    dir = fs::temp_directory_path() / ("kakehashi-import-" + gateway::testing::RandomSuffix());
    root = dir / "store";
    const fs::path src(KAKEHASHI_SOURCE_DIR);
    fs::create_directories(root);
    // The bundled sample patient (ADT-00 replaced, PPR-01, OMP-01 current + deleted, OML-11) and
    // the flags case (update, delete, PPR-01 snapshot difference), plus generated patients.
    fs::copy(src / "samples/ssmix2/constructed/standard_root", root, fs::copy_options::recursive);
    fs::copy(src / "tests/cases/ssmix2/flags_update_delete_snapshot/input", root,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    const char* families[] = {"佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤"};
    for (int i = 0; i < 6; ++i) {
      const std::string id = "20000000" + std::to_string(10 + i);
      WriteAdt(root, id, "20240501100000000", "2", "旧姓");
      WriteAdt(root, id, "20240601100000000", "1", families[i]);
    }
    if (bad_file) {
      // A file with a valid name whose content is not HL7.
      WriteText(root / "300/000/3000000001/-/ADT-00" /
                    "3000000001_-_ADT-00_999999999999999_20240601100000000_-_1",
                "this is not an HL7 message\n");
    }
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// The live resources of a store: "Type/id" -> JSON without meta.versionId/lastUpdated.
std::map<std::string, std::string> Live(gateway::store::Store& store) {
  auto session = store.OpenSession();
  REQUIRE(session);
  gateway::store::SearchQuery q;
  q.count = 100000;
  auto rows = (*session)->Search(q);
  REQUIRE(rows);
  std::map<std::string, std::string> out;
  for (const auto& row : *rows)
    out[row.type + "/" + row.id] = testing::WithoutVersionMeta(row.json);
  return out;
}

struct Run {
  ImportStats stats;
  CollectingSink issues;
};

Run Import(gateway::store::Store& store, const fs::path& root, ImportOptions options,
           gateway::Validator validator = {}, const std::string& label = {}) {
  options.map = MapOptions();
  gateway::HandlerOptions h;
  h.validator = validator ? std::move(validator) : ConformanceValidator();
  gateway::Handler handler(store, h);
  Run run;
  Importer importer(handler, store, Rules(), options, run.issues);
  auto r = importer.ImportStore(root, label);
  INFO((r ? std::string("ok") : r.error().message()));
  REQUIRE(r);
  run.stats = importer.Stats();
  return run;
}

void MatchesConvert(Backend backend) {
  Fixture f;
  auto t = gateway::testing::MakeStore(backend);
  ImportOptions options;
  options.reject_dir = f.dir / "rejected";
  Run run = Import(*t->store, f.root, options);
  CHECK(run.stats.units == 9);  // sample, flags case, 6 generated, the bad one
  CHECK(run.stats.skipped_units == 0);

  // What `kakehashi convert` makes of the same store.
  mapping::Converter converter(Rules(), MapOptions());
  mapping::BundleBuilder bundle;
  NullSink quiet;
  adapters::ssmix2::StorageReader reader(f.root, quiet);
  while (true) {
    auto next = reader.Next();
    REQUIRE(next);
    if (!*next) break;
    converter.ConvertRecord(**next, bundle, quiet);
  }
  // The gateway validates every write: a converted resource that is not valid FHIR is refused
  // (import.rejected), exactly as convert leaves it out (convert.invalid_resource).
  auto validator = ConformanceValidator();
  std::set<std::string> puts, deletes, invalid;
  for (const auto& e : bundle.Entries()) {
    const std::string key = e.type + "/" + e.id;
    if (e.method != mapping::BundleEntry::Method::kPut) {
      deletes.insert(key);
      continue;
    }
    CollectingSink found;
    validator(fhir::WriteJson(e.resource), found);
    (found.HasErrors() ? invalid : puts).insert(key);
  }
  CHECK(run.stats.rejected == invalid.size());
  CHECK(run.stats.transactions == (invalid.empty() ? 1u : 9u));  // else retried patient by patient
  REQUIRE(!deletes.empty());  // the flags case and the sample delete an order
  auto live = Live(*t->store);
  std::set<std::string> live_keys;
  for (const auto& [key, json] : live) live_keys.insert(key);
  CHECK(live_keys == puts);
  for (const auto& key : deletes) CHECK(live.count(key) == 0);
  // Content: the stored resource is the converted one (meta.profile kept).
  for (const auto& e : bundle.Entries()) {
    if (e.method != mapping::BundleEntry::Method::kPut || invalid.count(e.type + "/" + e.id)) {
      continue;
    }
    auto it = live.find(e.type + "/" + e.id);
    REQUIRE(it != live.end());
    auto stored = fhir::ParseJson(it->second);
    REQUIRE(stored);
    INFO(it->first);
    CHECK(*stored == e.resource);
  }
  // Six generated patients and the sample's (the flags case has no ADT-00); the replaced ADT-00
  // (_2) is an update, never a second Patient.
  std::size_t patients = 0;
  for (const auto& key : live_keys) patients += key.starts_with("Patient/") ? 1 : 0;
  CHECK(patients == 7);
  // The current name won over the superseded one.
  bool sato = false;
  for (const auto& [key, json] : live) {
    if (key.starts_with("Patient/")) {
      CHECK(json.find("旧姓") == std::string::npos);
      sato = sato || json.find("佐藤") != std::string::npos;
    }
  }
  CHECK(sato);

  // The bad file: an error with its location, its bytes kept for replay, the import went on.
  bool located = false;
  for (const auto& issue : run.issues.Issues()) {
    if (issue.severity == Severity::kError &&
        issue.where.source.find("3000000001_-_ADT-00") != std::string::npos) {
      located = true;
    }
  }
  CHECK(located);
  bool kept = false;
  for (const auto& entry : fs::directory_iterator(f.dir / "rejected")) {
    if (entry.path().extension() != ".rejected") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    kept = kept ||
           std::string((std::istreambuf_iterator<char>(in)), {}) == "this is not an HL7 message\n";
  }
  CHECK(kept);

  // Re-import: every unit is skipped and nothing is written again.
  const std::size_t history = HistoryRows(*t->store);
  Run again = Import(*t->store, f.root, options);
  CHECK(again.stats.units == 0);
  CHECK(again.stats.skipped_units == 9);
  CHECK(again.stats.transactions == 0);
  CHECK(HistoryRows(*t->store) == history);
  CHECK(Live(*t->store) == live);

  // A patient folder that changed (a newer ADT-00 arrived) is imported again, alone.
  WriteAdt(f.root, "2000000010", "20240501100000000", "2", "旧姓");
  WriteAdt(f.root, "2000000010", "20240701100000000", "1", "小林");
  fs::rename(f.root /
                 "200/000/2000000010/-/ADT-00/2000000010_-_ADT-00_999999999999999_"
                 "20240601100000000_-_1",
             f.root /
                 "200/000/2000000010/-/ADT-00/2000000010_-_ADT-00_999999999999999_"
                 "20240601100000000_-_2");
  Run changed = Import(*t->store, f.root, options);
  CHECK(changed.stats.units == 1);
  CHECK(changed.stats.skipped_units == 8);
  bool kobayashi = false;
  for (const auto& [key, json] : Live(*t->store)) {
    if (key.starts_with("Patient/"))
      kobayashi = kobayashi || json.find("小林") != std::string::npos;
  }
  CHECK(kobayashi);
  // The same as a fresh import of the changed store: what the folder no longer yields (the
  // Provenance of the message that was current before) is deleted.
  CHECK(changed.stats.deleted_by_type["Provenance"] == 1);
  auto fresh = gateway::testing::MakeStore(backend);
  Import(*fresh->store, f.root, options);
  CHECK(Live(*t->store) == Live(*fresh->store));

  // Other conversion settings: every unit again, updated in place; the content is the same
  // here, so no new version is written.
  const auto before = Live(*t->store);
  const std::size_t versions = HistoryRows(*t->store);
  ImportOptions other = options;
  other.settings = "jp-core-1.1.2|another facility";
  Run resettled = Import(*t->store, f.root, other);
  CHECK(resettled.stats.units == 9);
  CHECK(resettled.stats.skipped_units == 0);
  CHECK(resettled.stats.put_by_type.empty());
  CHECK(resettled.stats.unchanged > 0);
  CHECK(Live(*t->store) == before);
  CHECK(HistoryRows(*t->store) == versions);
}
KAKEHASHI_BACKEND_TEST("import: the store holds what convert makes; re-import skips; changes redo",
                       "[import]", MatchesConvert)

void KillAndResume(Backend backend) {
  Fixture f(false);
  // Uninterrupted reference import.
  auto reference = gateway::testing::MakeStore(backend);
  ImportOptions whole;
  whole.chunk_resources = 1;  // one transaction per patient, as below
  Run full = Import(*reference->store, f.root, whole);
  CHECK(full.stats.units == 8);

  // Interrupted after 3 patients (one transaction each), then the same command again.
  auto t = gateway::testing::MakeStore(backend);
  ImportOptions stop;
  stop.chunk_resources = 1;
  stop.stop_after_units = 3;
  Run first = Import(*t->store, f.root, stop);
  CHECK(first.stats.stopped);
  CHECK(first.stats.units == 3);
  CHECK(Live(*t->store).size() < Live(*reference->store).size());

  ImportOptions resume;
  resume.chunk_resources = 1;
  Run second = Import(*t->store, f.root, resume);
  CHECK_FALSE(second.stats.stopped);
  CHECK(second.stats.skipped_units == 3);
  CHECK(second.stats.units == 5);
  CHECK(Live(*t->store) == Live(*reference->store));
  // Nothing duplicated: the same number of versions as the uninterrupted import.
  CHECK(HistoryRows(*t->store) == HistoryRows(*reference->store));
}
KAKEHASHI_BACKEND_TEST("import: an interrupted import resumed equals an uninterrupted one",
                       "[import]", KillAndResume)

void RemovedFromStore(Backend backend) {
  Fixture f(false);
  auto t = gateway::testing::MakeStore(backend);
  ImportOptions options;
  Run first = Import(*t->store, f.root, options);
  CHECK(first.stats.units == 8);
  const auto all = Live(*t->store);
  auto count = [](const std::map<std::string, std::string>& live, std::string_view prefix) {
    std::size_t n = 0;
    for (const auto& [key, json] : live) n += key.starts_with(prefix) ? 1 : 0;
    return n;
  };
  // The resources of generated patient 2000000011 (its ADT-00 yields Patient, Coverage,
  // Provenance...): those that name it.
  std::set<std::string> owned;
  for (const auto& [key, json] : all) {
    if (json.find("2000000011") != std::string::npos) owned.insert(key);
  }
  REQUIRE(!owned.empty());

  // A record removed from a folder (the file deleted, not flagged 0): what it yielded goes.
  REQUIRE(fs::remove(f.root / "001/234/0012345678/-/PPR-01" /
                     "0012345678_-_PPR-01_999999999999999_20240401101000000_01_1"));
  // And a whole patient folder removed from the store.
  fs::remove_all(f.root / "200/000/2000000011");

  Run second = Import(*t->store, f.root, options);
  CHECK(second.stats.units == 1);  // the sample patient, changed
  CHECK(second.stats.skipped_units == 6);
  CHECK(second.stats.removed_units == 1);
  const auto live = Live(*t->store);
  for (const auto& key : owned) {
    INFO(key);
    CHECK(live.count(key) == 0);
  }
  CHECK(count(live, "Patient/") == 6);                          // 7 before
  CHECK(count(live, "Condition/") < count(all, "Condition/"));  // the sample's PPR-01
  // Shared resources (the insurer's Organization) stay while anyone may reference them.
  CHECK(count(live, "Organization/") == count(all, "Organization/"));
  // The same as a fresh import of the store as it is now.
  auto fresh = gateway::testing::MakeStore(backend);
  Import(*fresh->store, f.root, options);
  CHECK(Live(*fresh->store) == live);

  // The removed folder's checkpoint is gone: a third run has nothing to do.
  Run third = Import(*t->store, f.root, options);
  CHECK(third.stats.units == 0);
  CHECK(third.stats.skipped_units == 7);
  CHECK(third.stats.removed_units == 0);
  CHECK(Live(*t->store) == live);
}
KAKEHASHI_BACKEND_TEST("import: records and patient folders removed from the store are deleted",
                       "[import]", RemovedFromStore)

TEST_CASE("import: an emptied store root deletes nothing", "[import]") {
  Fixture f(false);
  auto t = gateway::testing::MakeStore(Backend::kSqlite);
  ImportOptions options;
  Import(*t->store, f.root, options);
  const auto live = Live(*t->store);
  for (const auto& entry : fs::directory_iterator(f.root)) fs::remove_all(entry.path());
  Run empty = Import(*t->store, f.root, options);
  CHECK(empty.stats.removed_units == 0);
  CHECK(empty.issues.Counts().ByCode().count("import.store_empty") == 1);
  CHECK(Live(*t->store) == live);
}

TEST_CASE("import: the result and the issues do not depend on the number of jobs", "[import]") {
  Fixture f;
  std::map<std::string, std::string> live[2];
  std::vector<std::string> issues[2];
  const std::size_t jobs[2] = {1, 4};
  for (int i = 0; i < 2; ++i) {
    auto t = gateway::testing::MakeStore(Backend::kSqlite);
    ImportOptions options;
    options.jobs = jobs[i];
    Run run = Import(*t->store, f.root, options);
    CHECK(run.stats.jobs == jobs[i]);
    CHECK(run.stats.units == 9);
    live[i] = Live(*t->store);
    for (const auto& issue : run.issues.Issues()) {
      issues[i].push_back(std::string(issue.code) + " " + issue.where.source + " " +
                          issue.where.record);
    }
  }
  CHECK(live[0] == live[1]);
  CHECK(issues[0] == issues[1]);
  CHECK(!issues[0].empty());
}

// Reading ahead (ImportOptions::io_threads, as convert --io-threads): the same units, resources,
// issues (in order, folders without records included) and fingerprints for any number of I/O
// threads; a later walk with another number skips every unit and deletes a removed folder.
TEST_CASE("import: the result and the issues do not depend on the read-ahead threads", "[import]") {
  Fixture f;
  // A patient folder whose only file has no SS-MIX2 name (no record: its issue goes with the next
  // unit) and an entry that is no ID-prefix folder.
  WriteText(f.root / "250/000/2500000001/-/ADT-00/not-a-stored-file.txt", "x");
  WriteText(f.root / "stray.txt", "x");
  std::map<std::string, std::string> live[3];
  std::vector<std::string> issues[3];
  ImportStats stats[3];
  const std::size_t threads[3] = {0, 1, 4};
  for (int i = 0; i < 3; ++i) {
    auto t = gateway::testing::MakeStore(Backend::kSqlite);
    ImportOptions options;
    options.jobs = 2;
    options.io_threads = threads[i];
    Run run = Import(*t->store, f.root, options);
    stats[i] = run.stats;
    live[i] = Live(*t->store);
    for (const auto& issue : run.issues.Issues()) {
      issues[i].push_back(std::string(issue.code) + " " + issue.where.source + " " +
                          issue.where.record);
    }
    if (i == 2) {
      // Again with no read-ahead: every fingerprint is the same.
      options.io_threads = 0;
      CHECK(Import(*t->store, f.root, options).stats.skipped_units == 9);
      fs::remove_all(f.root / "200/000/2000000010");
      options.io_threads = 4;
      const Run removed = Import(*t->store, f.root, options);
      CHECK(removed.stats.removed_units == 1);
      CHECK(removed.stats.skipped_units == 8);
      CHECK(Live(*t->store).size() < live[i].size());
    }
  }
  for (int i = 1; i < 3; ++i) {
    INFO(threads[i]);
    CHECK(live[i] == live[0]);
    CHECK(issues[i] == issues[0]);
    CHECK(stats[i].units == stats[0].units);
    CHECK(stats[i].files == stats[0].files);
    CHECK(stats[i].messages == stats[0].messages);
  }
  CHECK(stats[0].units == 9);
  CHECK(!issues[0].empty());
}

// Reading (docs/decisions/0021): the stored files of a patient folder to import are read through
// the SS-MIX2 reader's batch path (StorageReader::Load: io_uring where the kernel allows,
// read(2) with io_uring off), with or without read-ahead threads, and the database gets the same
// content either way; a folder whose checkpoint is unchanged is not read at all.
TEST_CASE("import: stored files are read in batches, and only for units to import", "[import]") {
  using adapters::ssmix2::BatchFileReader;
  Fixture f;
  // The standardized-storage files the import has to read (extended storage is left to the
  // converter, as convert's Preload leaves it).
  std::size_t stored = 0;
  {
    NullSink quiet;
    adapters::ssmix2::StorageReader reader(f.root, quiet);
    while (true) {
      auto next = reader.Next();
      REQUIRE(next);
      if (!*next) break;
      if ((*next)->extended_type.empty()) stored += 1 + (*next)->superseded.size();
    }
  }
  REQUIRE(stored > 20);
  const bool have_ring = BatchFileReader().UsingIoUring();
  if (!have_ring) WARN("io_uring is not available here: only the read(2) path is tested");
  struct Setting {
    bool io_uring;
    std::size_t io_threads;
  };
  const Setting settings[3] = {{true, 4}, {false, 4}, {true, 0}};
  std::map<std::string, std::string> live[3];
  std::vector<std::string> issues[3];
  for (int i = 0; i < 3; ++i) {
    CAPTURE(settings[i].io_uring, settings[i].io_threads);
    auto t = gateway::testing::MakeStore(Backend::kSqlite);
    ImportOptions options;
    options.jobs = 2;
    options.io_uring = settings[i].io_uring;
    options.io_threads = settings[i].io_threads;
    auto before = BatchFileReader::Totals();
    Run run = Import(*t->store, f.root, options);
    auto after = BatchFileReader::Totals();
    CHECK(run.stats.units == 9);
    live[i] = Live(*t->store);
    for (const auto& issue : run.issues.Issues()) {
      issues[i].push_back(std::string(issue.code) + " " + issue.where.source + " " +
                          issue.where.record);
    }
    const auto ring = after.ring_files - before.ring_files;
    const auto plain = after.plain_files - before.plain_files;
    CHECK(ring + plain == stored);  // every stored file once, through BatchFileReader
    if (settings[i].io_uring && have_ring) {
      CHECK(ring == stored);
      CHECK(after.ring_batches - before.ring_batches >= 9);  // at least one per patient
    } else {
      CHECK(plain == stored);
      CHECK(after.ring_batches == before.ring_batches);
    }
    if (i != 0) continue;
    // Resumed with nothing changed: no stored file is read.
    before = BatchFileReader::Totals();
    CHECK(Import(*t->store, f.root, options).stats.skipped_units == 9);
    after = BatchFileReader::Totals();
    CHECK(after.ring_files == before.ring_files);
    CHECK(after.plain_files == before.plain_files);
    // One patient's newest ADT-00 changed: only that folder's two files are read.
    WriteAdt(f.root, "2000000012", "20240601100000000", "1", "長谷川");
    before = BatchFileReader::Totals();
    const Run changed = Import(*t->store, f.root, options);
    after = BatchFileReader::Totals();
    CHECK(changed.stats.units == 1);
    CHECK(changed.stats.skipped_units == 8);
    CHECK(after.ring_files - before.ring_files + after.plain_files - before.plain_files == 2);
    WriteAdt(f.root, "2000000012", "20240601100000000", "1", "高橋");  // as before
  }
  CHECK(live[1] == live[0]);
  CHECK(live[2] == live[0]);
  CHECK(issues[1] == issues[0]);
  CHECK(issues[2] == issues[0]);
  CHECK(!live[0].empty());
}

TEST_CASE("import: a cancel request (Ctrl-C) commits the unit at hand and stops", "[import]") {
  Fixture f(false);
  auto t = gateway::testing::MakeStore(Backend::kSqlite);
  volatile std::sig_atomic_t cancel = 1;
  ImportOptions options;
  options.cancel = &cancel;
  Run first = Import(*t->store, f.root, options);
  CHECK(first.stats.stopped);
  CHECK(first.stats.units == 1);
  CHECK(first.stats.transactions == 1);
  ImportOptions resume;
  Run rest = Import(*t->store, f.root, resume);
  CHECK(rest.stats.skipped_units == 1);
  CHECK(rest.stats.units == 7);
}

TEST_CASE("import: a resource the store refuses is reported and its input kept", "[import]") {
  Fixture f(false);
  auto t = gateway::testing::MakeStore(Backend::kSqlite);
  ImportOptions options;
  options.reject_dir = f.dir / "rejected";
  // A validator that refuses every AllergyIntolerance (the sample's ADT-00 has an AL1).
  auto refuse = [](std::string_view json, IssueSink& issues) {
    if (json.find("\"AllergyIntolerance\"") != std::string_view::npos) {
      issues.Error("test.refused", {}, "refused by the test");
    }
  };
  Run run = Import(*t->store, f.root, options, refuse);
  CHECK(run.stats.rejected >= 1);
  CHECK(run.stats.units == 8);  // the refusing unit is still done (its checkpoint is written)
  const Issue* rejected = nullptr;
  std::size_t refused_allergies = 0;
  for (const auto& issue : run.issues.Issues()) {
    if (issue.code == "import.rejected" && issue.where.record.starts_with("AllergyIntolerance/")) {
      rejected = &issue;
      ++refused_allergies;
    }
  }
  CHECK(refused_allergies == 1);
  REQUIRE(rejected != nullptr);
  CHECK(rejected->message.find("test.refused") != std::string::npos);  // the validator's reason
  CHECK(rejected->where.record.starts_with("AllergyIntolerance/"));
  CHECK(rejected->where.source.starts_with("ssmix2:001/234/0012345678/-/ADT-00/"));
  auto live = Live(*t->store);
  std::size_t allergies = 0, patients = 0;
  for (const auto& [key, json] : live) {
    allergies += key.starts_with("AllergyIntolerance/") ? 1 : 0;
    patients += key.starts_with("Patient/") ? 1 : 0;
  }
  CHECK(allergies == 0);
  CHECK(patients == 7);  // the rest of that patient and every other patient are stored
  // The ADT-00 file that yielded the allergy is kept byte for byte.
  std::ifstream adt(fs::path(KAKEHASHI_SOURCE_DIR) /
                        "samples/ssmix2/constructed/standard_root/001/234/0012345678/-/ADT-00/"
                        "0012345678_-_ADT-00_999999999999999_20240401093000123_-_1",
                    std::ios::binary);
  const std::string adt_bytes((std::istreambuf_iterator<char>(adt)), {});
  bool kept = false;
  for (const auto& entry : fs::directory_iterator(f.dir / "rejected")) {
    if (entry.path().extension() != ".rejected") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    kept = kept || std::string((std::istreambuf_iterator<char>(in)), {}) == adt_bytes;
  }
  CHECK(kept);
  Run again = Import(*t->store, f.root, options, refuse);
  CHECK(again.stats.units == 0);
  CHECK(again.stats.skipped_units == 8);
}

// Several roots (`import ssmix2 A B`): each root's issue locations name it (decisions 0003, 0017:
// "ssmix2:<root as given>/<root-relative path>"): the reader's, the converter's and the
// importer's own (import.rejected); nothing else changes (resources, checkpoints).
TEST_CASE("import: a labelled root names itself in every issue location", "[import]") {
  Fixture f;
  auto refuse = [](std::string_view json, IssueSink& issues) {
    if (json.find("\"AllergyIntolerance\"") != std::string_view::npos) {
      issues.Error("test.refused", {}, "refused by the test");
    }
  };
  auto plain = gateway::testing::MakeStore(Backend::kSqlite);
  auto labelled = gateway::testing::MakeStore(Backend::kSqlite);
  ImportOptions options;
  const Run one = Import(*plain->store, f.root, options, refuse);
  const Run two = Import(*labelled->store, f.root, options, refuse, "roots/A");
  REQUIRE(one.issues.Issues().size() == two.issues.Issues().size());
  std::size_t named = 0, rejected = 0;
  for (std::size_t i = 0; i < one.issues.Issues().size(); ++i) {
    const Issue& a = one.issues.Issues()[i];
    const Issue& b = two.issues.Issues()[i];
    CAPTURE(a.ToString(), b.ToString());
    CHECK(a.code == b.code);
    CHECK(a.where.record == b.where.record);
    if (!a.where.source.starts_with("ssmix2:")) {
      CHECK(b.where.source == a.where.source);
      continue;
    }
    CHECK(b.where.source == "ssmix2:roots/A/" + a.where.source.substr(7));
    ++named;
    rejected += a.code == "import.rejected" ? 1 : 0;
  }
  CHECK(named > 0);
  CHECK(rejected == 1);
  CHECK(Live(*plain->store) == Live(*labelled->store));
  // The checkpoints do not depend on the label: the root imported again without it is skipped.
  CHECK(Import(*labelled->store, f.root, options, refuse).stats.skipped_units == 9);
}

TEST_CASE("import: single HL7 v2 files and files inside a store", "[import]") {
  Fixture f(false);
  auto t = gateway::testing::MakeStore(Backend::kSqlite);
  gateway::HandlerOptions h;
  h.validator = ConformanceValidator();
  gateway::Handler handler(*t->store, h);
  CollectingSink issues;
  ImportOptions options;
  options.map = MapOptions();
  Importer importer(handler, *t->store, Rules(), options, issues);
  // A plain HL7 v2 file outside any store.
  const fs::path plain = f.dir / "adt.hl7";
  WriteText(plain,
            "MSH|^~\\&|HIS|SEND|GW|RCV|20240601100000||ADT^A08^ADT_A01|X1|P|2.5||||||UNICODE "
            "UTF-8\rPID|0001||4000000001^^^^PI||山田^花子^^^^^L^I||19700101|F\r");
  REQUIRE(importer.ImportFile(plain));
  // A current file inside the store: its sibling _2 makes it an update.
  REQUIRE(
      importer.ImportFile(f.root / "200/000/2000000010/-/ADT-00/"
                                   "2000000010_-_ADT-00_999999999999999_20240601100000000_-_1"));
  // Not HL7: an issue, not an error result.
  const fs::path text = f.dir / "notes.txt";
  WriteText(text, "hello\n");
  REQUIRE(importer.ImportFile(text));
  CHECK(issues.Counts().ByCode().count("import.unusable_input") == 1);
  CHECK(importer.Stats().units == 3);
  std::size_t patients = 0;
  for (const auto& [key, json] : Live(*t->store)) patients += key.starts_with("Patient/") ? 1 : 0;
  CHECK(patients == 2);
  // Again: skipped.
  REQUIRE(importer.ImportFile(plain));
  CHECK(importer.Stats().skipped_units == 1);
  CHECK_FALSE(importer.ImportFile(f.dir / "missing.hl7"));
}

}  // namespace
}  // namespace kakehashi::app
