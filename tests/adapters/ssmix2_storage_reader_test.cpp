#include "kakehashi/adapters/ssmix2/storage_reader.hpp"

#include "kakehashi/adapters/ssmix2/batch_read.hpp"

#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace kakehashi;
using namespace kakehashi::adapters::ssmix2;

namespace {

// A temporary storage tree removed at scope exit.
class TempTree {
 public:
  TempTree() {
    static std::atomic<int> counter{0};
    root_ = fs::temp_directory_path() /
            ("kakehashi_ssmix2_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& Root() const { return root_; }
  // Writes a file at the canonical location for its name (or under `dir_override`).
  fs::path Add(const std::string& name, const std::string& dir_override = "") {
    auto f = ParseFileName(name);
    fs::path dir;
    if (!dir_override.empty()) {
      dir = root_ / dir_override;
    } else {
      REQUIRE(f);
      const auto& id = f->patient_id;
      dir = root_ / id.substr(0, 3) / id.substr(3, 3) / id / f->care_date / f->data_type;
    }
    fs::create_directories(dir);
    std::ofstream(dir / name) << "MSH|^~\\&|\r";
    return dir / name;
  }

 private:
  fs::path root_;
};

std::vector<StorageRecord> ReadAll(const fs::path& root, CollectingSink& sink) {
  StorageReader reader(root, sink);
  std::vector<StorageRecord> out;
  while (true) {
    auto next = reader.Next();
    REQUIRE(next.has_value());
    if (!*next) break;
    out.push_back(std::move(**next));
  }
  return out;
}

std::size_t CountCode(const CollectingSink& sink, std::string_view code) {
  std::size_t n = 0;
  for (const auto& i : sink.Issues()) n += i.code == code ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("ssmix2 reader: the bundled sample store", "[ssmix2]") {
  CollectingSink sink;
  auto records =
      ReadAll(fs::path(KAKEHASHI_SOURCE_DIR) / "samples/ssmix2/constructed/standard_root", sink);
  // 6 files, 5 keys: ADT-00 (_1 + superseded _2), PPR-01, OML-11, OMP-01 x2 (one deleted).
  for (const auto& issue : sink.Issues()) UNSCOPED_INFO(issue.ToString());
  CHECK(sink.Issues().empty());
  REQUIRE(records.size() == 5);
  // Sorted order: "-" before "20240401", then data type, then order number.
  CHECK(records[0].file.name.data_type == "ADT-00");
  CHECK(records[0].action == Action::kUpsert);
  CHECK(records[0].file.name.stored_at == "20240401093000123");
  REQUIRE(records[0].superseded.size() == 1);
  CHECK(records[0].Previous()->name.stored_at == "20240301100000000");
  CHECK(records[0].type->snapshot);
  CHECK(records[0].file.relative ==
        "001/234/0012345678/-/ADT-00/"
        "0012345678_-_ADT-00_999999999999999_20240401093000123_-_1");
  CHECK(records[1].file.name.data_type == "PPR-01");
  CHECK(records[2].file.name.data_type == "OML-11");
  CHECK(records[3].file.name.order_no == "000000000012345");
  CHECK(records[3].action == Action::kUpsert);
  CHECK(records[4].file.name.order_no == "000000000012346");
  CHECK(records[4].action == Action::kDelete);
  CHECK(records[4].superseded.empty());
}

TEST_CASE("ssmix2 reader: flags per key", "[ssmix2]") {
  TempTree t;
  // Update: two older versions superseded by a current one.
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240401100000000_01_2");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240402100000000_01_2");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240403100000000_01_1");
  // Two current files: later wins, warning.
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240401100000000_01_1");
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240405100000000_01_1");
  // Deleted: original and delete message, both flag 0.
  t.Add("0000000001_20240401_OMP-01_000000000000003_20240401100000000_01_0");
  t.Add("0000000001_20240401_OMP-01_000000000000003_20240401110000000_01_0");
  // Only superseded.
  t.Add("0000000001_20240401_OMP-01_000000000000004_20240401100000000_01_2");
  CollectingSink sink;
  auto records = ReadAll(t.Root(), sink);
  REQUIRE(records.size() == 4);

  CHECK(records[0].action == Action::kUpsert);
  CHECK(records[0].file.name.stored_at == "20240403100000000");
  REQUIRE(records[0].superseded.size() == 2);
  CHECK(records[0].superseded[0].name.stored_at == "20240401100000000");
  CHECK(records[0].Previous()->name.stored_at == "20240402100000000");

  CHECK(records[1].action == Action::kUpsert);
  CHECK(records[1].file.name.stored_at == "20240405100000000");
  REQUIRE(records[1].superseded.size() == 1);
  CHECK(records[1].superseded[0].name.stored_at == "20240401100000000");

  CHECK(records[2].action == Action::kDelete);
  CHECK(records[2].file.name.stored_at == "20240401110000000");

  CHECK(records[3].action == Action::kUpsert);
  CHECK(records[3].file.name.stored_at == "20240401100000000");

  CHECK(CountCode(sink, "ssmix2.duplicate_current") == 1);
  CHECK(CountCode(sink, "ssmix2.no_current") == 1);
  CHECK(sink.Issues().size() == 2);
}

TEST_CASE("ssmix2 reader: flag 1 next to flag 0, newer one decides", "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240401100000000_01_1");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240402100000000_01_0");
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240402100000000_01_1");
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240401100000000_01_0");
  CollectingSink sink;
  auto records = ReadAll(t.Root(), sink);
  REQUIRE(records.size() == 2);
  CHECK(records[0].action == Action::kDelete);
  CHECK(records[1].action == Action::kUpsert);
  CHECK(CountCode(sink, "ssmix2.mixed_flags") == 2);
}

TEST_CASE("ssmix2 reader: bad names, mismatched folders, unknown types, extended", "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  // Bad name: 6 fields.
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_1", "000/000/0000000001/-/ADT-00");
  // File in the wrong care-date folder.
  t.Add("0000000001_20240401_OML-11_000000000000009_20240401100000000_01_1",
        "000/000/0000000001/20240402/OML-11");
  // Unknown data type: kept as a record with type == nullptr.
  t.Add("0000000001_20240401_XYZ-99_000000000000009_20240401100000000_01_1");
  // Extended storage content folder.
  fs::create_directories(
      t.Root() / "000/000/0000000001/20240401/^経過記録(local)^^11506-3^経過記録^LN" /
      "0000000001_20240401_^経過記録(local)^^11506-3^経過記録^LN_K1_20240401100000000_1");
  // A second patient, sorted after the first.
  t.Add("0000000002_-_PPR-01_999999999999999_20240401100000000_01_1");
  CollectingSink sink;
  StorageReader reader(t.Root(), sink);
  std::vector<StorageRecord> records;
  while (true) {
    auto next = reader.Next();
    REQUIRE(next.has_value());
    if (!*next) break;
    records.push_back(std::move(**next));
  }
  REQUIRE(records.size() == 4);
  CHECK(records[0].file.name.data_type == "ADT-00");
  CHECK(records[1].file.name.data_type == "OML-11");
  CHECK(records[2].file.name.data_type == "XYZ-99");
  CHECK(records[2].type == nullptr);
  CHECK(records[3].file.name.patient_id == "0000000002");
  CHECK(CountCode(sink, "ssmix2.bad_file_name") == 1);
  CHECK(CountCode(sink, "ssmix2.path_mismatch") == 1);
  CHECK(CountCode(sink, "ssmix2.unknown_data_type") == 1);
  CHECK(CountCode(sink, "ssmix2.extended_storage") == 1);
  CHECK(reader.Stats().patients == 2);
  CHECK(reader.Stats().files == 4);
  CHECK(reader.Stats().extended == 1);
  CHECK(reader.Stats().skipped == 1);
  // Issue messages never carry the patient ID; the location does (operator-facing).
  for (const auto& issue : sink.Issues()) {
    CHECK(issue.message.find("0000000001") == std::string::npos);
  }
}

TEST_CASE("ssmix2 reader: missing root and single-file resolution", "[ssmix2]") {
  CollectingSink sink;
  StorageReader reader("/nonexistent/kakehashi/root", sink);
  auto next = reader.Next();
  REQUIRE_FALSE(next.has_value());
  CHECK(next.error() == common::errc::kNotFound);

  TempTree t;
  auto old = t.Add("0000000001_-_PPR-01_999999999999999_20240301100000000_01_2");
  auto cur = t.Add("0000000001_-_PPR-01_999999999999999_20240401100000000_01_1");
  auto r = StorageReader::ResolveFile(old, sink);
  REQUIRE(r.has_value());
  CHECK(r->action == Action::kUpsert);
  CHECK(r->file.path == cur);
  REQUIRE(r->Previous() != nullptr);
  CHECK(r->Previous()->path == old);
  auto bad = StorageReader::ResolveFile(t.Root() / "not_a_store_file.hl7", sink);
  CHECK_FALSE(bad.has_value());
}

TEST_CASE("ssmix2 reader: progress runs from 0 to 1", "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("1000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
  CollectingSink sink;
  StorageReader reader(t.Root(), sink);
  CHECK(reader.Progress() == 0.0);
  auto first = reader.Next();
  REQUIRE(first.has_value());
  CHECK(reader.Progress() < 1.0);
  while (true) {
    auto next = reader.Next();
    REQUIRE(next.has_value());
    if (!*next) break;
  }
  CHECK(reader.Progress() == 1.0);
}

TEST_CASE("ssmix2 reader: NextPatient returns each patient folder whole, in Next() order",
          "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240401100000000_01_2");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240402100000000_01_1");
  t.Add("0000000001_20240402_OML-11_000000000000007_20240402100000000_01_1");
  fs::create_directories(t.Root() / "000/000/0000000005");  // a patient folder without files
  t.Add("1000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("1000000002_20240401_OMP-01_000000000000003_20240401110000000_01_0");
  // A file whose name names another patient than its folder: reported, kept in its folder.
  t.Add("1000000003_-_ADT-61_999999999999999_20240401100000000_-_1", "100/000/1000000002/-/ADT-61");

  CollectingSink by_record;
  auto expected = ReadAll(t.Root(), by_record);
  REQUIRE(expected.size() == 6);

  CollectingSink by_patient;
  StorageReader reader(t.Root(), by_patient);
  std::vector<std::vector<StorageRecord>> patients;
  while (true) {
    std::vector<StorageRecord> batch;
    auto n = reader.NextPatient(batch);
    REQUIRE(n.has_value());
    CHECK(*n == batch.size());
    if (*n == 0) break;
    patients.push_back(std::move(batch));
  }
  REQUIRE(patients.size() == 2);  // the empty folder yields no batch
  CHECK(patients[0].size() == 3);
  CHECK(patients[1].size() == 3);
  std::size_t i = 0;
  for (const auto& batch : patients) {
    for (const auto& record : batch) {
      REQUIRE(i < expected.size());
      CHECK(record.file.relative == expected[i].file.relative);
      CHECK(record.action == expected[i].action);
      CHECK(record.superseded.size() == expected[i].superseded.size());
      ++i;
    }
  }
  CHECK(i == expected.size());
  CHECK(patients[0][1].file.name.data_type == "OMP-01");
  REQUIRE(patients[0][1].superseded.size() == 1);
  CHECK(patients[1][1].action == Action::kDelete);
  CHECK(reader.Stats().patients == 3);
  CHECK(CountCode(by_patient, "ssmix2.path_mismatch") == 1);
  CHECK(by_patient.Issues().size() == by_record.Issues().size());
}

TEST_CASE("ssmix2 reader: extended storage content folders become records", "[ssmix2]") {
  TempTree t;
  const fs::path date = t.Root() / "000/000/0000000001/20240401";
  const std::string cda_type = "^経過記録(local)^^11506-3^経過記録^LN";
  const std::string vitals_type = "L-OBSERVATIONS^OBSERVATIONS^99ZL01";
  auto write = [](const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  };
  // 7 fields (with 診療科), a CDA and an extra file: the .xml is the main file.
  const fs::path cda =
      date / cda_type / ("0000000001_20240401_" + cda_type + "_K1_20240401100000000_01_1");
  write(cda / "a_stylesheet.xsl", "x");
  write(cda / "report.xml", "<ClinicalDocument/>");
  // The same key renamed _0 in another folder of the type: deleted wins only for its own key.
  write(date / cda_type / ("0000000001_20240401_" + cda_type + "_K2_20240401110000000_01_0") /
            "report.xml",
        "<ClinicalDocument/>");
  // 6 fields (no 診療科, NHO samples): main_document.hl7 first.
  const fs::path vitals =
      date / vitals_type / ("0000000001_20240401_" + vitals_type + "_V1_20240401120000000_1");
  write(vitals / "extra.txt", "x");
  write(vitals / "main_document.hl7", "MSH|^~\\&|\r");
  // Neither 7 nor 6 fields: reported, not converted.
  write(date / vitals_type / "not_a_content_folder" / "x.txt", "x");
  CollectingSink sink;
  StorageReader reader(t.Root(), sink);
  std::vector<StorageRecord> records;
  REQUIRE(reader.NextPatient(records).value() == 3);
  // Sorted by key: type folder "L-..." < "^...", then 特定キー.
  CHECK(records[0].extended_type == vitals_type);
  CHECK(records[0].file.name.order_no == "V1");
  CHECK(records[0].file.name.department == "-");
  CHECK(records[0].file.path.filename() == "main_document.hl7");
  CHECK(records[0].extended_files == std::vector<std::string>{"main_document.hl7", "extra.txt"});
  CHECK(records[0].action == Action::kUpsert);
  CHECK(records[1].extended_type == cda_type);
  CHECK(records[1].file.name.department == "01");
  CHECK(records[1].file.path.filename() == "report.xml");
  CHECK(records[1].extended_files == std::vector<std::string>{"report.xml", "a_stylesheet.xsl"});
  CHECK(records[2].file.name.order_no == "K2");
  CHECK(records[2].action == Action::kDelete);
  CHECK(records[1].type == nullptr);
  CHECK(CountCode(sink, "ssmix2.extended_storage") == 4);
  CHECK(CountCode(sink, "ssmix2.extended_bad_name") == 1);
  CHECK(CountCode(sink, "ssmix2.unknown_data_type") == 0);
  CHECK(reader.Stats().extended == 4);
  for (const auto& issue : sink.Issues()) {
    CHECK(issue.message.find("0000000001") == std::string::npos);
  }
}

TEST_CASE("ssmix2 reader: StoredFile::path is the root joined with the folders and the name",
          "[ssmix2]") {
  // The reader builds these paths as strings below the patient folder; they must be exactly
  // the fs::path joins, whatever way the root was written (trailing separator, relative).
  TempTree t;
  const std::string name = "0000000001_20240401_OMP-01_123_20240401090000000_01_1";
  t.Add(name);
  const std::string ext_type = "L-OBSERVATIONS^OBSERVATIONS^99ZL01";
  const fs::path content = t.Root() / "000/000/0000000001/20240402" / ext_type /
                           ("0000000001_20240402_" + ext_type + "_V1_20240402120000000_1");
  fs::create_directories(content);
  std::ofstream(content / "main_document.hl7") << "MSH|^~\\&|\r";
  const fs::path relative = fs::relative(t.Root(), fs::current_path());
  for (const fs::path& root : {t.Root(), t.Root() / "", relative, relative / ""}) {
    INFO(root.native());
    CollectingSink sink;
    StorageReader reader(root, sink);
    reader.Preload(true);
    std::vector<StorageRecord> records;
    REQUIRE(reader.NextPatient(records).value() == 2);
    const fs::path patient = root / "000" / "000" / "0000000001";
    CHECK(records[0].file.path == patient / "20240401" / "OMP-01" / name);
    CHECK(records[0].file.path.native() == (patient / "20240401" / "OMP-01" / name).native());
    const fs::path main_file =
        patient / "20240402" / ext_type / content.filename() / "main_document.hl7";
    CHECK(records[1].file.path == main_file);
    CHECK(records[1].file.path.native() == main_file.native());
  }
}

TEST_CASE("ssmix2 reader: a patient folder or a folder below one converts that subtree",
          "[ssmix2]") {
  TempTree tree;
  tree.Add("0012345678_-_ADT-00_999999999999999_20240401090000000_-_1");
  tree.Add("0012345678_20240401_OMP-01_000000000012345_20240401101600000_01_1");
  tree.Add("0012345678_20240402_OMP-01_000000000012399_20240402101600000_01_1");
  tree.Add("0012399999_-_ADT-00_999999999999999_20240401090000000_-_1");
  const fs::path patient = tree.Root() / "001" / "234" / "0012345678";

  // Locate: the store root and the root-relative path, for the patient folder and below.
  auto at_patient = StorageReader::Locate(patient);
  REQUIRE(at_patient);
  CHECK(fs::equivalent(at_patient->root, tree.Root()));
  CHECK(at_patient->relative == "001/234/0012345678");
  auto at_type = StorageReader::Locate(patient / "20240401" / "OMP-01" / "");
  REQUIRE(at_type);
  CHECK(at_type->relative == "001/234/0012345678/20240401/OMP-01");
  // The store root and a prefix folder are not inside a patient folder.
  CHECK_FALSE(StorageReader::Locate(tree.Root()));
  CHECK_FALSE(StorageReader::Locate(tree.Root() / "001"));

  auto read = [&](const std::string& relative) {
    CollectingSink sink;
    StorageReader reader(tree.Root(), sink);
    reader.Restrict(relative);
    std::vector<std::string> names;
    while (true) {
      auto next = reader.Next();
      REQUIRE(next.has_value());
      if (!*next) break;
      names.push_back((*next)->file.name.data_type + " " + (*next)->file.name.care_date);
    }
    return names;
  };
  // The whole patient (not the other patient of the same prefix folders) ...
  CHECK(read(at_patient->relative) ==
        std::vector<std::string>{"ADT-00 -", "OMP-01 20240401", "OMP-01 20240402"});
  // ... one care date, one data type folder.
  CHECK(read("001/234/0012345678/20240402") == std::vector<std::string>{"OMP-01 20240402"});
  CHECK(read(at_type->relative) == std::vector<std::string>{"OMP-01 20240401"});
  CHECK(read("001/234/0012345678/20240403").empty());
}

TEST_CASE("ssmix2 reader: Preload reads every stored file's bytes while walking", "[ssmix2]") {
  TempTree tree;
  const fs::path current = tree.Add("0012345678_20240401_OMP-01_123_20240401101010123_01_1");
  const fs::path history = tree.Add("0012345678_20240401_OMP-01_123_20240331101010123_01_2");
  const fs::path other = tree.Add("0012345678_-_ADT-00_999_20240331101010123_-_1");
  // Contents of different sizes: empty, one byte short of the first read, several reads long.
  std::ofstream(current, std::ios::binary | std::ios::trunc) << std::string(16383, 'a');
  std::ofstream(history, std::ios::binary | std::ios::trunc) << "";
  std::string big;
  for (int i = 0; big.size() < 200000; ++i) big += "OBX|" + std::to_string(i) + "|\r";
  std::ofstream(other, std::ios::binary | std::ios::trunc) << big;

  for (const auto& [preload, io_uring] :
       {std::pair{false, true}, std::pair{true, true}, std::pair{true, false}}) {
    CAPTURE(preload, io_uring);
    CollectingSink sink;
    StorageReader reader(tree.Root(), sink);
    reader.Preload(preload);
    reader.UseIoUring(io_uring);  // batched through io_uring (where the kernel allows) or not
    std::vector<StorageRecord> records;
    auto n = reader.NextPatient(records);
    REQUIRE(n);
    REQUIRE(*n == 2);
    REQUIRE(records[0].file.name.data_type == "ADT-00");
    REQUIRE(records[1].superseded.size() == 1);
    if (!preload) {
      CHECK_FALSE(records[0].file.content);
      CHECK_FALSE(records[1].file.content);
      CHECK_FALSE(records[1].superseded[0].content);
      continue;
    }
    REQUIRE(records[0].file.content);
    CHECK(*records[0].file.content == big);
    REQUIRE(records[1].file.content);
    CHECK(*records[1].file.content == std::string(16383, 'a'));
    REQUIRE(records[1].superseded[0].content);
    CHECK(records[1].superseded[0].content->empty());
  }
}

TEST_CASE("ssmix2 reader: Preload leaves large and unopenable files to the caller", "[ssmix2]") {
  TempTree tree;
  const fs::path large = tree.Add("0012345678_20240401_OMP-01_123_20240401101010123_01_1");
  std::ofstream(large, std::ios::binary | std::ios::trunc)
      << std::string(StorageReader::kPreloadMax + 1, 'x');
  // A dangling symbolic link with a stored file's name: listed, but cannot be opened.
  const fs::path dir = large.parent_path();
  fs::create_symlink(dir / "missing",
                     dir / "0012345678_20240401_OMP-01_124_20240401101010123_01_1");
  for (const bool io_uring : {true, false}) {
    CAPTURE(io_uring);
    CollectingSink sink;
    StorageReader reader(tree.Root(), sink);
    reader.Preload(true);
    reader.UseIoUring(io_uring);
    std::vector<StorageRecord> records;
    auto n = reader.NextPatient(records);
    REQUIRE(n);
    REQUIRE(*n == 2);
    CHECK_FALSE(records[0].file.content);  // over kPreloadMax: read by path later
    CHECK_FALSE(records[1].file.content);  // cannot be opened: the caller reports it
  }
}

TEST_CASE("ssmix2 reader: Preload of more files than one batch, with and without io_uring",
          "[ssmix2]") {
  // 3 data types x 25 files: more than BatchFileReader::kMaxBatch open at once, so the reads go
  // out in several batches, each in inode order; every record gets its own file's bytes.
  TempTree tree;
  std::vector<std::pair<std::string, std::string>> written;  // relative path, content
  const char* types[] = {"OMP-01", "OML-11", "OMP-11"};
  for (const char* type : types) {
    for (int i = 0; i < 25; ++i) {
      const std::string order = std::to_string(100 + i);
      const fs::path f = tree.Add(std::string("0012345678_20240401_") + type + "_" + order +
                                  "_20240401101010123_01_1");
      const std::string content = std::string(type) + "|" + order + std::string(i * 700, 'z');
      std::ofstream(f, std::ios::binary | std::ios::trunc) << content;
      written.emplace_back(fs::relative(f, tree.Root()).generic_string(), content);
    }
  }
  for (const bool io_uring : {true, false}) {
    CAPTURE(io_uring);
    CollectingSink sink;
    StorageReader reader(tree.Root(), sink);
    reader.Preload(true);
    reader.UseIoUring(io_uring);
    std::vector<StorageRecord> records;
    auto n = reader.NextPatient(records);
    REQUIRE(n);
    REQUIRE(*n == written.size());
    std::size_t checked = 0;
    for (const auto& r : records) {
      for (const auto& [relative, content] : written) {
        if (r.file.relative != relative) continue;
        REQUIRE(r.file.content);
        CHECK(*r.file.content == content);
        ++checked;
      }
    }
    CHECK(checked == written.size());
  }
}

TEST_CASE("ssmix2 reader: Load after the walk reads what Preload reads, through the batch path",
          "[ssmix2]") {
  // Files of several sizes (empty, several reads long, over kPreloadMax), history, a dangling
  // link (cannot be opened), more files than one batch, and an extended-storage folder.
  TempTree tree;
  const fs::path current = tree.Add("0012345678_20240401_OMP-01_123_20240401101010123_01_1");
  std::ofstream(current, std::ios::binary | std::ios::trunc) << std::string(70000, 'a');
  const fs::path history = tree.Add("0012345678_20240401_OMP-01_123_20240331101010123_01_2");
  std::ofstream(history, std::ios::binary | std::ios::trunc) << "";
  const fs::path large = tree.Add("0012345678_-_ADT-00_999_20240331101010123_-_1");
  std::ofstream(large, std::ios::binary | std::ios::trunc)
      << std::string(StorageReader::kPreloadMax + 1, 'x');
  fs::create_symlink(
      current.parent_path() / "missing",
      current.parent_path() / "0012345678_20240401_OMP-01_124_20240401101010123_01_1");
  for (int i = 0; i < 40; ++i) {
    const fs::path f = tree.Add("0012345678_20240402_OML-11_" + std::to_string(200 + i) +
                                "_20240402101010123_01_1");
    std::ofstream(f, std::ios::binary | std::ios::trunc) << std::string(i * 300, 'b') << i;
  }
  tree.Add("main_document.hl7",
           "001/234/0012345678/20240401/^経過記録(local)^^11506-3^経過記録^LN/"
           "0012345678_20240401_11506-3_1_20240401101010123_01_1");
  const std::size_t openable = 2 + 1 + 40;  // the dangling link is not opened

  for (const bool io_uring : {true, false}) {
    CAPTURE(io_uring);
    CollectingSink sink;
    StorageReader preloading(tree.Root(), sink);
    preloading.Preload(true);
    preloading.UseIoUring(io_uring);
    std::vector<StorageRecord> expected;
    REQUIRE(preloading.NextPatient(expected));

    StorageReader reader(tree.Root(), sink);
    reader.UseIoUring(io_uring);
    std::vector<StorageRecord> records;
    REQUIRE(reader.NextPatient(records));
    REQUIRE(records.size() == expected.size());
    REQUIRE(records.size() == 1 + 2 + 40 + 1);
    for (const auto& r : records) CHECK_FALSE(r.file.content);  // not read by the walk
    const auto before = BatchFileReader::Totals();
    reader.Load(records);
    const auto after = BatchFileReader::Totals();
    bool extended = false;
    for (std::size_t i = 0; i < records.size(); ++i) {
      CAPTURE(records[i].file.relative);
      CHECK(records[i].file.relative == expected[i].file.relative);
      if (records[i].extended_type.empty()) CHECK(records[i].file.inode != 0);
      CHECK(records[i].file.content == expected[i].file.content);
      REQUIRE(records[i].superseded.size() == expected[i].superseded.size());
      for (std::size_t j = 0; j < records[i].superseded.size(); ++j) {
        CHECK(records[i].superseded[j].content == expected[i].superseded[j].content);
      }
      if (!records[i].extended_type.empty()) {
        extended = true;
        CHECK_FALSE(records[i].file.content);  // never read ahead (possibly large)
      }
    }
    CHECK(extended);
    // Every openable file went through BatchFileReader: the ring (where the kernel has one),
    // else read(2); with io_uring off only read(2).
    CHECK(after.ring_files - before.ring_files + after.plain_files - before.plain_files ==
          openable);
    if (!io_uring) CHECK(after.ring_batches == before.ring_batches);
    if (io_uring && BatchFileReader().UsingIoUring()) {
      CHECK(after.ring_files - before.ring_files == openable);
      CHECK(after.ring_batches - before.ring_batches == 2);  // 43 files: 32 + 11
    }
    // The large file and the dangling link are left to the caller, read ones stay as they are.
    reader.Load(records);
    CHECK(BatchFileReader::Totals().ring_files + BatchFileReader::Totals().plain_files ==
          after.ring_files + after.plain_files + 1);  // only the large file is opened again
  }
}

TEST_CASE(
    "ssmix2 reader: NextPatientFolder + ReadPatient on two threads give NextPatient's records",
    "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240401100000000_01_2");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240402100000000_01_1");
  fs::create_directories(t.Root() / "000/000/0000000005");  // a patient folder without files
  t.Add("1000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("1000000002_20240401_OMP-01_000000000000003_20240401110000000_01_0");
  t.Add("1000000003_-_ADT-61_999999999999999_20240401100000000_-_1", "100/000/1000000002/-/ADT-61");
  t.Add("2000000004_20240403_OML-11_000000000000009_20240403100000000_01_1");
  fs::create_directories(t.Root() / "toolongname");  // a walk-level issue (root entry)

  for (const std::string restrict : {"", "100/000/1000000002/20240401"}) {
    CAPTURE(restrict);
    CollectingSink whole_sink;
    StorageReader whole(t.Root(), whole_sink);
    whole.Preload(true);
    if (!restrict.empty()) whole.Restrict(restrict);
    std::vector<std::vector<StorageRecord>> expected;
    while (true) {
      std::vector<StorageRecord> batch;
      auto n = whole.NextPatient(batch);
      REQUIRE(n.has_value());
      if (*n == 0) break;
      expected.push_back(std::move(batch));
    }

    // The walk on this thread, each folder read on its own thread, one sink per folder.
    CollectingSink walk_sink;
    StorageReader split(t.Root(), walk_sink);
    split.Preload(true);
    if (!restrict.empty()) split.Restrict(restrict);
    std::vector<std::string> folders;
    std::vector<std::vector<StorageRecord>> got;
    std::vector<std::string> issues;
    for (const auto& issue : walk_sink.Issues()) issues.push_back(issue.ToString());
    while (true) {
      auto folder = split.NextPatientFolder();
      REQUIRE(folder.has_value());
      for (std::size_t i = issues.size(); i < walk_sink.Issues().size(); ++i) {
        issues.push_back(walk_sink.Issues()[i].ToString());
      }
      if (!*folder) break;
      folders.push_back((*folder)->l1 + "/" + (*folder)->l2 + "/" + (*folder)->id);
      std::vector<StorageRecord> batch;
      CollectingSink folder_sink;
      ReaderStats stats;
      std::thread reader_thread([&] {
        auto read = split.ReadPatient(**folder, batch, folder_sink, &stats);
        CHECK(read.has_value());
      });
      reader_thread.join();
      CHECK(stats.records == batch.size());
      for (const auto& issue : folder_sink.Issues()) issues.push_back(issue.ToString());
      if (!batch.empty()) got.push_back(std::move(batch));
    }
    std::vector<std::string> expected_issues;
    for (const auto& issue : whole_sink.Issues()) expected_issues.push_back(issue.ToString());
    CHECK(issues == expected_issues);
    REQUIRE(got.size() == expected.size());
    for (std::size_t p = 0; p < got.size(); ++p) {
      REQUIRE(got[p].size() == expected[p].size());
      for (std::size_t r = 0; r < got[p].size(); ++r) {
        CHECK(got[p][r].file.relative == expected[p][r].file.relative);
        CHECK(got[p][r].action == expected[p][r].action);
        CHECK(got[p][r].superseded.size() == expected[p][r].superseded.size());
        CHECK(got[p][r].file.content == expected[p][r].file.content);
      }
    }
    if (restrict.empty()) {
      CHECK(folders == std::vector<std::string>{"000/000/0000000001", "000/000/0000000005",
                                                "100/000/1000000002", "200/000/2000000004"});
      CHECK(got.size() == 3);
      CHECK(CountCode(walk_sink, "ssmix2.unexpected_entry") == 1);
    } else {
      CHECK(folders == std::vector<std::string>{"100/000/1000000002"});
      REQUIRE(got.size() == 1);
      REQUIRE(got[0].size() == 1);
      CHECK(got[0][0].action == Action::kDelete);
    }
  }
}

TEST_CASE("ssmix2 reader: ReadPatient of a folder that is gone is an I/O error", "[ssmix2]") {
  TempTree t;
  t.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  t.Add("0000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
  CollectingSink sink;
  StorageReader reader(t.Root(), sink);
  auto first = reader.NextPatientFolder();
  REQUIRE(first.has_value());
  REQUIRE(*first);
  fs::remove_all(t.Root() / "000/000/0000000001");  // named by the walk, removed before the read
  std::vector<StorageRecord> records;
  auto read = reader.ReadPatient(**first, records, sink);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error() == common::errc::kIoError);
  CHECK(records.empty());
  auto second = reader.NextPatientFolder();  // the walk goes on
  REQUIRE(second.has_value());
  REQUIRE(*second);
  CHECK((*second)->id == "0000000002");
  REQUIRE(reader.ReadPatient(**second, records, sink).has_value());
  CHECK(records.size() == 1);
}

// Several roots of one facility (decision 0017): a full export and a delta root.
TEST_CASE("ssmix2 reader: MergedWalk merges the walks of several roots by patient folder",
          "[ssmix2]") {
  TempTree full, delta, third;
  full.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  full.Add("0000000003_-_ADT-00_999999999999999_20240401100000000_-_1");
  full.Add("1000000009_-_ADT-00_999999999999999_20240401100000000_-_1");
  delta.Add("0000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
  delta.Add("0000000003_-_ADT-00_999999999999999_20240402100000000_-_1");
  delta.Add("1000000009_-_ADT-00_999999999999999_20240402100000000_-_1");
  third.Add("1000000009_-_ADT-00_999999999999999_20240403100000000_-_1");
  CollectingSink sink;
  StorageReader a(full.Root(), sink), b(delta.Root(), sink), c(third.Root(), sink);
  MergedWalk walk({&a, &b, &c});
  MergedWalk::Step step;
  std::vector<std::string> got;
  while (walk.Next(step)) {
    CHECK(step.ended.empty());
    REQUIRE(step.readers.size() == step.folders.size());
    std::string line = step.folders.front().folder.id;
    line += ':';
    for (std::size_t i = 0; i < step.readers.size(); ++i) {
      CHECK(step.folders[i].folder.id == step.folders.front().folder.id);
      CHECK(step.folders[i].reader == std::vector<StorageReader*>{&a, &b, &c}[step.readers[i]]);
      line += ' ';
      line += std::to_string(step.readers[i]);
    }
    got.push_back(line);
  }
  // Walk order (prefix folders, then ID), each patient once with every root that holds it.
  CHECK(got == std::vector<std::string>{"0000000001: 0", "0000000002: 1", "0000000003: 0 1",
                                        "1000000009: 0 1 2"});
  CHECK(walk.Progress() == 1.0);
  CHECK_FALSE(walk.Next(step));
}

TEST_CASE("ssmix2 reader: a walk that fails ends the merge (no patient from other roots alone)",
          "[ssmix2]") {
  {  // A root that is not there: nothing is walked.
    TempTree full;
    full.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
    CollectingSink sink;
    StorageReader a(full.Root(), sink), missing(full.Root() / "no-such-root", sink);
    MergedWalk walk({&missing, &a});
    MergedWalk::Step step;
    CHECK_FALSE(walk.Next(step));
    REQUIRE(step.ended.size() == 1);
    CHECK(step.ended[0].first == 0);
    CHECK(step.ended[0].second == common::errc::kNotFound);
    CHECK(step.readers.empty());
  }
  {  // The delta's second prefix folder vanishes while the walk is in its first: the patient
     // being read is the last; the full export's later patients are not read without the delta.
    TempTree full, delta;
    full.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
    full.Add("0000000003_-_ADT-00_999999999999999_20240401100000000_-_1");
    full.Add("1000000009_-_ADT-00_999999999999999_20240401100000000_-_1");
    delta.Add("0000000002_-_ADT-00_999999999999999_20240401100000000_-_1");
    delta.Add("1000000009_-_ADT-00_999999999999999_20240402100000000_-_1");
    CollectingSink sink;
    StorageReader a(full.Root(), sink), b(delta.Root(), sink);
    MergedWalk walk({&a, &b});
    MergedWalk::Step step;
    REQUIRE(walk.Next(step));
    CHECK(step.folders.front().folder.id == "0000000001");
    CHECK(step.ended.empty());
    fs::remove_all(delta.Root() / "100");
    REQUIRE(walk.Next(step));  // 0000000002: taken from the delta before its walk failed
    CHECK(step.folders.front().folder.id == "0000000002");
    CHECK(step.readers == std::vector<std::size_t>{1});
    REQUIRE(step.ended.size() == 1);
    CHECK(step.ended[0].first == 1);
    CHECK(step.ended[0].second == common::errc::kIoError);
    CHECK_FALSE(walk.Next(step));  // not 0000000003 and 1000000009 from the full export alone
    CHECK(step.ended.empty());
  }
}

TEST_CASE("ssmix2 reader: one patient's folders in a full and a delta root read as one folder",
          "[ssmix2]") {
  TempTree full, delta;
  const std::string p = "0000000001_20240401_OMP-01_";
  // Full export: orders 1 (to be replaced), 2 (to be deleted), 3 (unchanged), snapshot.
  full.Add(p + "000000000000001_20240401100000000_01_1");
  full.Add(p + "000000000000002_20240401100000000_01_1");
  full.Add(p + "000000000000003_20240401100000000_01_1");
  full.Add("0000000001_-_PPR-01_999999999999999_20240401100000000_01_1");
  // Delta root: order 1's file renamed _2 plus its new _1; order 2's renamed _0 plus the delete
  // message; the snapshot replaced; a new order 4.
  delta.Add(p + "000000000000001_20240401100000000_01_2");
  delta.Add(p + "000000000000001_20240402100000000_01_1");
  delta.Add(p + "000000000000002_20240401100000000_01_0");
  delta.Add(p + "000000000000002_20240402110000000_01_0");
  delta.Add("0000000001_-_PPR-01_999999999999999_20240401100000000_01_2");
  delta.Add("0000000001_-_PPR-01_999999999999999_20240402100000000_01_1");
  delta.Add(p + "000000000000004_20240402120000000_01_1");

  for (const bool delta_first : {false, true}) {
    CAPTURE(delta_first);
    CollectingSink sink;
    StorageReader a(full.Root(), sink), b(delta.Root(), sink);
    a.Preload(true);
    b.Preload(true);
    MergedWalk walk(delta_first ? std::vector<StorageReader*>{&b, &a}
                                : std::vector<StorageReader*>{&a, &b});
    MergedWalk::Step step;
    REQUIRE(walk.Next(step));
    REQUIRE(step.folders.size() == 2);
    std::vector<StorageRecord> records;
    std::size_t failed = 99;
    std::vector<std::size_t> files;
    REQUIRE(StorageReader::ReadPatient(step.folders, records, sink, &failed, &files).has_value());
    CHECK(failed == 99);
    CHECK(files == (delta_first ? std::vector<std::size_t>{7, 4} : std::vector<std::size_t>{4, 7}));
    CHECK_FALSE(walk.Next(step));
    // One record per key, sorted by key, as from one folder holding the delta's state.
    REQUIRE(records.size() == 5);
    CHECK(records[0].file.name.data_type == "PPR-01");
    CHECK(records[0].action == Action::kUpsert);
    CHECK(records[0].file.name.stored_at == "20240402100000000");
    REQUIRE(records[0].superseded.size() == 1);  // the snapshot diff's base, counted once
    CHECK(records[0].superseded[0].name.stored_at == "20240401100000000");
    CHECK(records[0].file.content.has_value());
    CHECK(records[1].file.name.order_no == "000000000000001");  // replaced: the delta's version
    CHECK(records[1].action == Action::kUpsert);
    CHECK(records[1].file.name.stored_at == "20240402100000000");
    REQUIRE(records[1].superseded.size() == 1);
    CHECK(records[1].superseded[0].name.flag == Flag::kSuperseded);
    CHECK(records[1].file.path.string().rfind(delta.Root().string(), 0) == 0);
    CHECK(records[2].file.name.order_no == "000000000000002");  // deleted in the delta
    CHECK(records[2].action == Action::kDelete);
    CHECK(records[2].file.name.stored_at == "20240402110000000");
    CHECK(records[3].file.name.order_no == "000000000000003");  // only in the full export
    CHECK(records[3].action == Action::kUpsert);
    CHECK(records[3].file.path.string().rfind(full.Root().string(), 0) == 0);
    CHECK(records[4].file.name.order_no == "000000000000004");  // only in the delta
    // The full export's stale _1 of a renamed file is the same file: no flag warnings.
    CHECK(CountCode(sink, "ssmix2.duplicate_current") == 0);
    CHECK(CountCode(sink, "ssmix2.mixed_flags") == 0);
  }
}

TEST_CASE("ssmix2 reader: merged ReadPatient of one part is ReadPatient; a failing part is named",
          "[ssmix2]") {
  TempTree t, other;
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240401100000000_01_2");
  t.Add("0000000001_20240401_OMP-01_000000000000001_20240402100000000_01_1");
  // Two _1 files of one key inside one root stay a duplicate (reported) as before.
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240401100000000_01_1");
  t.Add("0000000001_20240401_OMP-01_000000000000002_20240402100000000_01_1");
  other.Add("0000000001_-_ADT-00_999999999999999_20240401100000000_-_1");
  CollectingSink sink_one, sink_parts;
  StorageReader reader(t.Root(), sink_one);
  auto folder = reader.NextPatientFolder();
  REQUIRE(folder.has_value());
  REQUIRE(*folder);
  std::vector<StorageRecord> one, parts;
  REQUIRE(reader.ReadPatient(**folder, one, sink_one).has_value());
  REQUIRE(StorageReader::ReadPatient({{&reader, **folder}}, parts, sink_parts).has_value());
  REQUIRE(one.size() == 2);
  REQUIRE(parts.size() == one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CHECK(parts[i].file.relative == one[i].file.relative);
    CHECK(parts[i].superseded.size() == one[i].superseded.size());
  }
  CHECK(CountCode(sink_one, "ssmix2.duplicate_current") == 1);
  CHECK(CountCode(sink_parts, "ssmix2.duplicate_current") == 1);

  // The second part's folder is gone: error, *failed names it, nothing appended.
  CollectingSink sink;
  StorageReader second(other.Root(), sink);
  auto gone = second.NextPatientFolder();
  REQUIRE(gone.has_value());
  REQUIRE(*gone);
  fs::remove_all(other.Root() / "000");
  std::vector<StorageRecord> none;
  std::size_t failed = 99;
  auto read =
      StorageReader::ReadPatient({{&reader, **folder}, {&second, **gone}}, none, sink, &failed);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error() == common::errc::kIoError);
  CHECK(failed == 1);
  CHECK(none.empty());
}

TEST_CASE("ssmix2 reader: LabelRoot names the root in issue locations and StoredFile::Source",
          "[ssmix2]") {
  TempTree tree;
  tree.Add("0012345678_20240401_OMP-01_123_20240401101010123_01_1");
  tree.Add("not-a-stored-file", "001/234/0012345678/20240401/OMP-01");
  for (const std::string label : {"", "exports/delta"}) {
    CAPTURE(label);
    CollectingSink sink;
    StorageReader reader(tree.Root(), sink);
    reader.LabelRoot(label);
    std::vector<StorageRecord> records;
    auto n = reader.NextPatient(records);
    REQUIRE(n);
    REQUIRE(*n == 1);
    const std::string prefix = label.empty() ? "ssmix2:" : "ssmix2:" + label + "/";
    CHECK(
        records[0].file.relative ==
        "001/234/0012345678/20240401/OMP-01/0012345678_20240401_OMP-01_123_20240401101010123_01_1");
    CHECK(records[0].file.Source() == prefix + records[0].file.relative);  // relative unchanged
    REQUIRE(CountCode(sink, "ssmix2.bad_file_name") == 1);
    for (const auto& issue : sink.Issues()) {
      if (issue.code != "ssmix2.bad_file_name") continue;
      CHECK(issue.where.source == prefix + "001/234/0012345678/20240401/OMP-01/not-a-stored-file");
    }
  }
}
