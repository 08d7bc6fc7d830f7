// Streaming reader of an SS-MIX2 standardized storage tree (digest §2, §3).
//
//   <root>/<ID[0:3]>/<ID[3:6]>/<ID>/<YYYYMMDD | ->/<data type>/<file>
//
// The reader walks one patient folder at a time in sorted (byte-wise) order, so memory is bounded
// by the largest patient, never by the store, and two runs over the same tree yield the same
// sequence. Within a patient, files are grouped by the key (患者ID, 診療日, データ種別, オーダNo)
// and the condition flags are applied (kakehashi rule, digest §3):
//   - the `_1` file is the state -> kUpsert; two `_1` files: the later 発生日時 wins
//     (warning ssmix2.duplicate_current), the other one becomes history;
//   - only `_0` files -> kDelete (the latest `_0` file is the record's file);
//   - `_2` files are history, oldest first, in StorageRecord::superseded; snapshots (PPR-01,
//     ADT-00, ADT-61) diff the current file against superseded.back();
//   - `_1` next to `_0`: the newer 発生日時 decides (warning ssmix2.mixed_flags);
//   - only `_2` files: the newest is used as current (warning ssmix2.no_current).
// So a replaced or deleted record yields one update or one delete, never a duplicate.
//
// Issue codes (Location.source = "ssmix2:" + root-relative path, with LabelRoot "ssmix2:" +
// label + '/' + root-relative path; see
// docs/decisions/0003-ssmix2-issue-locations.md; Location.record = the data type):
//   ssmix2.bad_file_name      error        name does not have the 7 fields; file skipped
//   ssmix2.path_mismatch      warning      folder differs from the name's 患者ID/診療日/種別
//   ssmix2.unknown_data_type  warning      data type not in the 26-type table (record kept)
//   ssmix2.duplicate_current  warning      two `_1` files for one key
//   ssmix2.mixed_flags        warning      `_1` and `_0` files for one key
//   ssmix2.no_current         warning      only `_2` files for one key
//   ssmix2.extended_storage   information  an extended-storage content folder (converted as a
//                                          DocumentReference; see StoredFile::extended_type)
//   ssmix2.extended_empty     warning      an extended-storage content folder without files
//   ssmix2.extended_bad_name  warning      its name has neither 7 nor 6 fields; not converted
//   ssmix2.unexpected_entry   warning      a file or folder where the layout has none
// Operational errors: common::errc::kNotFound (root missing), kIoError (unreadable folder).
//
// Not thread-safe; one reader per thread.
#pragma once

#include "kakehashi/adapters/ssmix2/data_type.hpp"
#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kakehashi::adapters::ssmix2 {

struct StoredFile {
  std::filesystem::path path;  // absolute or as given
  std::string relative;        // root-relative, '/'-separated (contains the patient ID: PHI)
  FileName name;
  // The file's bytes when the reader read them while walking (StorageReader::Preload); nullopt
  // otherwise (not asked, unreadable, or larger than kPreloadMax): read `path` then.
  std::optional<std::string> content = std::nullopt;
  // The root as the operator named it, when issues must tell several roots apart
  // (StorageReader::LabelRoot); empty for one root. Points into the reader (valid while it lives).
  std::string_view root = {};
  // Its inode number as the folder listing gave it (0: not known): the order in which
  // StorageReader::Preload and Load read files (docs/decisions/0021).
  std::uint64_t inode = 0;

  // Location.source of an issue about this file: "ssmix2:" + relative, or with a labelled root
  // "ssmix2:" + root + '/' + relative (decision 0003).
  std::string Source() const;
};

// Location.source of an issue about the root-relative path `relative`: "ssmix2:" + relative, or
// with a labelled root (StorageReader::LabelRoot) "ssmix2:" + root + '/' + relative (decisions
// 0003, 0017). StoredFile::Source for a file; the importer's units and withdrawn keys too.
std::string IssueSource(std::string_view root, std::string_view relative);

enum class Action { kUpsert, kDelete };

struct StorageRecord {
  Action action = Action::kUpsert;
  const DataTypeInfo* type = nullptr;  // nullptr: unknown data type (kept, reported)
  StoredFile file;                     // the `_1` file, or the latest `_0` file for kDelete
  std::vector<StoredFile> superseded;  // `_2` files (and losing duplicates), oldest first
  // Extended storage (digest §3): <date>/<type folder>/<content folder>/<files>. Empty for a
  // standardized-storage record. Otherwise the CWE-like type folder name
  // ("^経過記録(local)^^11506-3^経過記録^LN"); file.name is parsed from the content folder name
  // (7 fields, or 6 without 診療科: department "-"; 特定キー in order_no), file.path is the main
  // file (main_document.hl7, else the first .xml, else the first file), file.relative the
  // content folder, and extended_files every file name of the folder, the main file first.
  std::string extended_type;
  std::vector<std::string> extended_files;

  // The latest earlier version, for snapshot diffs; nullptr when there is none.
  const StoredFile* Previous() const { return superseded.empty() ? nullptr : &superseded.back(); }
};

struct ReaderStats {
  std::size_t patients = 0;
  std::size_t files = 0;       // files with a valid name
  std::size_t records = 0;     // records returned
  std::size_t deletes = 0;     // of which kDelete
  std::size_t superseded = 0;  // `_2` (history) files
  std::size_t skipped = 0;     // bad names, unexpected entries
  std::size_t extended = 0;    // extended-storage content folders seen
};

class StorageReader {
 public:
  // `root` is a standardized-storage root (the folder holding the 3-char ID prefix folders).
  StorageReader(std::filesystem::path root, IssueSink& issues);

  // The next record in deterministic order, or nullopt at the end.
  // errc::kNotFound when the root does not exist; errc::kIoError when a folder cannot be listed.
  Result<std::optional<StorageRecord>> Next();

  // The records of the next patient folder that holds any (same order as Next(); a folder is
  // never split), for callers that convert patients in parallel: SS-MIX2 partitions by patient,
  // so every record of one patient arrives in one batch. Returns the number of records, 0 at the
  // end. Errors as Next(). Do not mix with Next() on one reader.
  Result<std::size_t> NextPatient(std::vector<StorageRecord>& out);

  // The same walk in two halves, for callers whose threads read patient folders themselves
  // (`kakehashi convert`): NextPatientFolder only walks the ID-prefix folders (cheap, one call at
  // a time, issues to the reader's sink) and names the next patient folder; ReadPatient reads one
  // such folder into records exactly as NextPatient would (Restrict and Preload apply). ReadPatient
  // does not change the reader, so several threads may call it at once, also while one thread
  // calls NextPatientFolder. Do not mix with Next()/NextPatient() on one reader.
  struct PatientFolder {
    std::string l1, l2, id;  // <ID[0:3]>, <ID[3:6]>, <ID> folder names
  };
  Result<std::optional<PatientFolder>> NextPatientFolder();
  // Appends the folder's records to `out` and reports to `issues`; `stats` (optional) counts
  // the files, records and history files. Errors as Next().
  Result<void> ReadPatient(const PatientFolder& folder, std::vector<StorageRecord>& out,
                           IssueSink& issues, ReaderStats* stats = nullptr) const;

  // Several roots of one facility (digest §2: several roots per facility are legal, kakehashi
  // rule: merge them), e.g. a full export and a daily delta root: the folders of one patient in
  // several roots, read as if they were one folder. Each part is read as ReadPatient reads it
  // (its reader's Restrict and Preload apply); then the files are resolved together, so a key
  // replaced (`_2` + a new `_1`) or deleted (`_0`) in a later root yields one update or one
  // delete. The same stored file seen in several roots (same name but for the condition flag)
  // counts once: the flag furthest along its life (1 → 2 → 0, digest §3: files are only renamed
  // that way) wins, on a tie the later part; several files with one name-stem inside one part
  // stay as they are (as for one root). One part reads exactly as ReadPatient.
  // Errors as ReadPatient (errc::kIoError: a folder cannot be listed); on an error of part i,
  // `*failed` = i (when given) and nothing is appended to `out`.
  // `files` (optional) receives the number of stored files found in each part.
  struct RootFolder {
    const StorageReader* reader = nullptr;
    PatientFolder folder;
  };
  static Result<void> ReadPatient(const std::vector<RootFolder>& parts,
                                  std::vector<StorageRecord>& out, IssueSink& issues,
                                  std::size_t* failed = nullptr,
                                  std::vector<std::size_t>* files = nullptr);

  const ReaderStats& Stats() const { return stats_; }
  // Fraction of the store walked, 0..1, estimated from the position among the ID-prefix folders
  // (cheap; for progress and ETA displays).
  double Progress() const;

  // A folder inside a store given by the operator: a patient folder (<root>/<ID[0:3]>/<ID[3:6]>/
  // <ID>, digest §2) or a care-date, data-type or extended content folder below one. Returns the
  // store root and the folder's root-relative path ('/'-separated), or nullopt when `dir` is not
  // at or below a patient folder (a store root itself, or any other folder). Looks at names only.
  struct Subtree {
    std::filesystem::path root;
    std::string relative;
  };
  static std::optional<Subtree> Locate(const std::filesystem::path& dir);

  // Read every standardized-storage file (current and history) while its folder is open: one
  // openat() relative to the open data-type folder instead of an open() of the whole path later,
  // so the kernel resolves one path component per file instead of seven (docs/performance.md,
  // "Kernel side"). Files above kPreloadMax, and files that cannot be opened or read, are left
  // for the caller to read from `path` (which then reports the problem as before). Extended-storage
  // files are never preloaded (PDFs and images can be large). Off by default.
  // The files of one patient folder are opened while their folders are open and then read
  // together, in inode order, through io_uring where the kernel allows it (BatchFileReader,
  // docs/decisions/0021-cold-store-batched-reads.md): on a cold store the reads of adjacent
  // files merge into fewer disk requests. UseIoUring(false) reads them with read(2), one after
  // another; the contents are the same either way.
  static constexpr std::size_t kPreloadMax = 1 << 20;
  void Preload(bool on) { preload_ = on; }
  void UseIoUring(bool on) { io_uring_ = on; }

  // The same reads for records already walked (ReadPatient without Preload), for callers that
  // decide after the walk which records they need (`kakehashi import`: only the patient folders
  // whose checkpoint changed are read): the records' standardized-storage files (current and
  // history) without content are opened by path, sorted by StoredFile::inode and read through
  // the batch path above (UseIoUring applies); the same files are left to the caller (above
  // kPreloadMax, not openable or readable: it reads `path` and reports the problem), and the
  // same bytes arrive. Extended-storage records are not read. Thread-safe as ReadPatient.
  void Load(std::vector<StorageRecord>& records) const;

  // Names the root in the locations of this reader's issues (and of its files' StoredFile::Source)
  // when several roots are read together (decision 0017): "ssmix2:<label>/<root-relative path>",
  // e.g. the root as given on the command line. Empty (the default): root-relative only.
  void LabelRoot(std::string label) { label_ = std::move(label); }
  const std::string& RootLabel() const { return label_; }

  // Restricts the walk to one subtree of the root (`relative` as Locate returns it): only the
  // records whose root-relative path is at or below it. Call before the first Next/NextPatient.
  void Restrict(const std::string& relative);

  // Resolves one file given by the operator (a file inside a store): applies the flags of its
  // siblings with the same key in its folder. Issues as above.
  static Result<StorageRecord> ResolveFile(const std::filesystem::path& file, IssueSink& issues);

  // Groups the files of one key set (any order) and applies the flag rules. Exposed for tests and
  // for ResolveFile; `out` receives one record per key, sorted by key.
  // `extended`: the files are extended-storage content folders (their data types are the type
  // folders, never one of the 26, so no ssmix2.unknown_data_type).
  static void Resolve(std::vector<StoredFile> files, IssueSink& issues,
                      std::vector<StorageRecord>& out, ReaderStats* stats = nullptr,
                      bool extended = false);

 private:
  struct Level {
    std::vector<std::string> names;  // sorted child folder names
    std::size_t next = 0;
  };
  // The files of one patient folder before the flag rules (ReadPatient = Collect + Finish).
  struct Collected {
    std::vector<StoredFile> files, extended;
    // content folder (root-relative) -> its type folder and file names
    std::map<std::string, std::pair<std::string, std::vector<std::string>>> extended_info;
  };
  Result<void> Collect(const PatientFolder& folder, Collected& c, IssueSink& issues,
                       ReaderStats& counts) const;
  static void Finish(Collected c, std::vector<StorageRecord>& out, IssueSink& issues,
                     ReaderStats& counts);
  // Loads the next patient folder into pending_ (possibly none of its files are records);
  // `more` is false when the walk is over.
  Result<void> LoadNextPatient(bool& more);
  // Drops the folder names of one walk level that lie outside Restrict()'s subtree.
  void KeepOnly(std::vector<std::string>& names, std::size_t level) const;

  std::filesystem::path root_;
  IssueSink& issues_;
  bool started_ = false;
  bool preload_ = false;
  bool io_uring_ = true;
  std::string label_;  // LabelRoot()
  Level l1_, l2_, l3_;
  std::string l1_name_, l2_name_;
  std::deque<StorageRecord> pending_;
  std::vector<std::string> only_;  // Restrict(): path components below the root
  ReaderStats stats_;
};

// The walks of several StorageReaders (several roots, in input order) merged into one walk by
// patient folder (<ID[0:3]>, <ID[3:6]>, <ID>, the byte-wise order each walk already has), so that
// one step names a patient and its folder in every root that holds it (read them with
// StorageReader::ReadPatient(parts)). Holds one folder name per root: memory does not grow with
// the stores. Not thread-safe; the readers are walked only through it (NextPatientFolder).
class MergedWalk {
 public:
  explicit MergedWalk(std::vector<StorageReader*> readers);

  struct Step {
    std::vector<std::size_t> readers;                // the readers holding the patient (ascending)
    std::vector<StorageReader::RootFolder> folders;  // their folders, in the same order
    // Walks that failed during this step (reader index, error, e.g. a prefix folder that cannot
    // be listed). A failure ends the whole merge: the patient of this step (complete: the failed
    // reader's folder was taken before it failed) is the last; no later patient is read from the
    // other roots alone, which would write their stale records without the failed root's updates
    // and deletes.
    std::vector<std::pair<std::size_t, ErrorCode>> ended;
  };
  // The next patient; false when every walk is over or one failed (`step.ended` may still name
  // failures).
  bool Next(Step& step);
  // Fraction walked, 0..1: the mean of the readers' Progress().
  double Progress() const;

 private:
  // Advances reader i to its next folder (or ends it, recording a failure in `step`).
  void Advance(std::size_t i, Step& step);

  std::vector<StorageReader*> readers_;
  std::vector<std::optional<StorageReader::PatientFolder>> heads_;  // nullopt: walk over
  bool failed_ = false;                                             // a walk failed: merge over
  bool started_ = false;
};

}  // namespace kakehashi::adapters::ssmix2
