// kakehashi convert — HL7 v2 files and SS-MIX2 stores to FHIR R4 (JP Core) transaction Bundles
// or NDJSON. The CLI contract is fixed by issue #4 (scripts depend on it); see --help.
//
// PHI on stderr (docs/decisions/0003-ssmix2-issue-locations.md): SS-MIX2 paths contain patient
// IDs, so stderr never names a stored file — it prints issue codes, counts and messages; the
// --issues OperationOutcome carries the locations for the operator.
//
// Parallel streaming (docs/performance.md, "SS-MIX2 conversion"; docs/decisions/0008, 0017): the
// inputs are cut into units — one SS-MIX2 patient (its folder in every store input: the walks of
// several roots are merged by patient and its folders read as one folder), or one whole file
// given on the command line — that `--jobs` worker threads claim in input order (walking the
// stores one claim at a time), read, map, validate and serialise independently; the main thread
// writes the units' output in input order, so the bytes do not depend on the number of jobs, and
// at most 32 units per job are in flight, so memory does not grow with the store. Each unit keeps
// the BundleBuilder rule (one entry per Type/id; a later version replaces an earlier one in
// place). Across units, the first entry of a Type/id wins and identical repeats are dropped:
// SS-MIX2 is partitioned by patient, so only resources not tied to a patient (the insurer's
// Organization) repeat across patients, and those of a file input that names a store's patient
// (learnt before the run); a repeat whose content differs is reported
// (convert.duplicate_resource).
// Reading: `--io-threads` threads (default 8) walk the stores and read the patients' folders
// ahead of the workers (read_ahead.hpp), so a store that is not in the page cache is read with
// several disk requests at once (docs/decisions/0018-convert-read-ahead.md); the files of one
// patient are read together through io_uring where the kernel allows (`--io-uring`,
// docs/decisions/0021-cold-store-batched-reads.md).
#include "args.hpp"
#include "conversion_settings.hpp"
#include "convert_terminology.hpp"
#include "importer.hpp"
#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "progress.hpp"
#include "read_ahead.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#endif

#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using fhir::Node;

constexpr const char* kHelp =
    "Usage: kakehashi convert [options] INPUT...\n"
    "\n"
    "Converts HL7 v2.5 (JAHIS) messages and SS-MIX2 standardized storage to FHIR R4 on the\n"
    "JP Core profiles.\n"
    "\n"
    "INPUT is an HL7 v2 file (one or more messages; ISO-2022-JP, Shift_JIS or UTF-8), an\n"
    "SS-MIX2 storage root directory, a patient folder or a folder below one, or a file inside a\n"
    "store (its sibling versions decide whether it is current, replaced or deleted). The format\n"
    "is detected unless --from is given. Several INPUTs are written in the order given; an\n"
    "INPUT equal to, inside or around an earlier one is refused (exit 1). Several store\n"
    "folders (e.g. a full export root and a delta root) are read as one store: a patient's\n"
    "folders in all of them are converted as one folder (a record replaced or deleted in one\n"
    "root is one update or delete), patient by patient, at the place of the first of them.\n"
    "A resource that a file INPUT and a store (or two files) both yield is written once: the\n"
    "first one (warning convert.duplicate_resource when they differ).\n"
    "\n"
    "Options:\n"
    "  --from hl7v2|ssmix2|jahis-rx   input format (default: detected)\n"
    "  --format bundle|ndjson         bundle (default): one transaction Bundle, PUT with\n"
    "                                 deterministic ids, DELETE for deleted/removed records;\n"
    "                                 ndjson: one resource per line (deletes are counted only)\n"
    "  --out FILE                     write the output to FILE (default: standard output)\n"
    "  --profile jp-core-1.1.2|jp-core-1.2.0\n"
    "                                 target JP Core version (default jp-core-1.1.2): profile\n"
    "                                 URLs and code-system URIs (1.1.2 OIDs, 1.2.0 URLs)\n"
    "  --issues FILE                  write every issue as a FHIR OperationOutcome (with the\n"
    "                                 file locations, which name patient IDs for SS-MIX2)\n"
    "  --rules DIR                    site rule directory: its message/, resource/, datatype/\n"
    "                                 and tables/ files shadow the built-in ones by name\n"
    "  --facility CODE                10-digit 医療機関コード for the patient/staff/order ID\n"
    "                                 systems (default: MSH-4 when it is 10 digits)\n"
    "  --progress                     show progress on stderr even when it is not a terminal\n"
    "  --no-unused                    do not report unused fields (information issues)\n"
    "  --jobs N                       convert with N worker threads (default: the number of\n"
    "                                 hardware threads); SS-MIX2 patients are converted in\n"
    "                                 parallel and written in input order, so the output is\n"
    "                                 the same for every N; memory stays bounded (streaming)\n"
    "  --io-threads N                 read SS-MIX2 patient folders ahead of the workers with N\n"
    "                                 threads (default 8; 0: each worker reads its own), so\n"
    "                                 that a store not in the page cache is read with N disk\n"
    "                                 requests at once; the output is the same for every N\n"
    "  --io-uring on|off              read the files of each SS-MIX2 patient together through\n"
    "                                 io_uring (default on; plain reads where the kernel does\n"
    "                                 not allow it); off: one read(2) per file. The output is\n"
    "                                 the same either way\n"
    "  --help                         show this help\n"
    "\n"
    "Exit codes: 0 converted (warnings on stderr), 1 some input was unusable (one line per\n"
    "problem on stderr; what could be converted is still written), 2 usage error.\n";

// The issues of one unit of work, in the order they were reported: counts by severity and code,
// and the issues themselves when they will be needed (all for --issues; errors for stderr).
class BatchSink final : public IssueSink {
 public:
  explicit BatchSink(bool keep_all) : keep_all_(keep_all) {}
  void Report(Issue issue) override {
    ++by_severity_[static_cast<int>(issue.severity)];
    ++by_code_[issue.code];
    if (Keeps(issue.severity)) kept_.push_back(std::move(issue));
  }
  // Without --issues, warnings and information issues are only counted: producers skip
  // building them (IssueSink::Keeps).
  bool Keeps(Severity severity) const override {
    return keep_all_ || severity == Severity::kFatal || severity == Severity::kError;
  }
  void CountOnly(Severity severity, std::string_view code, std::string_view /*field*/) override {
    ++by_severity_[static_cast<int>(severity)];
    ++by_code_[code];
  }
  bool keep_all_;
  std::array<std::size_t, 4> by_severity_{};
  std::map<std::string_view, std::size_t> by_code_;
  std::vector<Issue> kept_;
};

// Forwards to the sink of the unit being read (the SS-MIX2 reader reports while it loads a
// patient folder; those issues belong to that folder's unit).
class SwitchSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    if (target_ != nullptr) target_->Report(std::move(issue));
  }
  bool Keeps(Severity severity) const override {
    return target_ != nullptr && target_->Keeps(severity);
  }
  void CountOnly(Severity severity, std::string_view code, std::string_view field) override {
    if (target_ != nullptr) target_->CountOnly(severity, code, field);
  }
  void Set(IssueSink* target) { target_ = target; }

 private:
  IssueSink* target_ = nullptr;
};

// All issues of the run, merged unit by unit in input order: counts, the first problems for
// stderr, and (with --issues) the issues for the OperationOutcome.
class Tally {
 public:
  explicit Tally(bool keep) : keep_(keep) {}
  void Absorb(BatchSink& batch) {
    for (int i = 0; i < 4; ++i) by_severity_[i] += batch.by_severity_[i];
    for (const auto& [code, n] : batch.by_code_) by_code_[std::string(code)] += n;
    for (auto& issue : batch.kept_) {
      if (issue.severity == Severity::kFatal || issue.severity == Severity::kError) {
        if (problems_.size() < 20) problems_.push_back(issue);
        ++problem_count_;
      }
      if (keep_) kept_.Report(std::move(issue));
    }
  }
  void Report(Issue issue) {
    BatchSink one(true);
    one.Report(std::move(issue));
    Absorb(one);
  }
  std::size_t Count(Severity severity) const { return by_severity_[static_cast<int>(severity)]; }
  std::size_t Errors() const { return Count(Severity::kFatal) + Count(Severity::kError); }
  std::size_t Total() const {
    return by_severity_[0] + by_severity_[1] + by_severity_[2] + by_severity_[3];
  }
  const std::map<std::string, std::size_t>& ByCode() const { return by_code_; }
  const CollectingSink& Kept() const { return kept_; }
  const std::vector<Issue>& Problems() const { return problems_; }
  std::size_t ProblemCount() const { return problem_count_; }

 private:
  bool keep_;
  std::array<std::size_t, 4> by_severity_{};
  std::map<std::string, std::size_t> by_code_;
  CollectingSink kept_;
  std::vector<Issue> problems_;
  std::size_t problem_count_ = 0;
};

// Checks every resource with conformance/ before it reaches the output ("never emit invalid
// FHIR"): an invalid resource is not written; its problems and convert.invalid_resource (error)
// are reported instead, so the run exits 1 and --issues names the source.
class ValidatingOutput final : public mapping::OutputSink {
 public:
  ValidatingOutput() {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
    conformance::ValidatorOptions options;
    options.check_references = false;  // references point at other entries of the output
    validator_ = conformance::Validator(options);
#endif
  }
  // Where the next resources and their issues go (one unit of work at a time). `lines`: also
  // keep each valid resource's NDJSON line, written by the validator in the same walk (TakeLine).
  void Bind(mapping::BundleBuilder& next, IssueSink& issues, bool lines = false) {
    next_ = &next;
    issues_ = &issues;
    unordered_.clear();
    lines_.clear();
    keep_lines_ = lines;
  }
  void Put(const std::string& type, const std::string& id, Node resource) override {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
    CollectingSink found;
    Location where;  // record: "Type/id", built once and handed on as the entry's key
    where.record.reserve(type.size() + 1 + id.size());
    where.record.append(type).append(1, '/').append(id);
    bool in_order = false;
    std::string line;
    bool written = false;
    const bool valid = keep_lines_ ? validator_.Validate(resource, found, where, line, written)
                                   : validator_.Validate(resource, found, where, in_order);
    // A valid Put replaces an earlier entry of the same Type/id; a rejected one leaves it.
    if (valid && keep_lines_) {
      if (written) {
        line += '\n';
        lines_.insert_or_assign(where.record, std::move(line));
      } else if (!lines_.empty()) {
        lines_.erase(where.record);  // written from the Node by the worker
      }
    } else if (valid && !in_order) {
      unordered_.insert(where.record);
    } else if (valid && !unordered_.empty()) {
      unordered_.erase(where.record);
    }
    if (!valid) {
      for (const auto& issue : found.Issues()) {
        if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
          issues_->Report(issue);
        }
      }
      issues_->Error("convert.invalid_resource", where,
                     "the mapped resource is not valid FHIR R4 and was not written; see the "
                     "issues before this one and the mapping rules of its type");
      ++rejected_;
      return;
    }
    next_->Put(type, id, std::move(where.record), std::move(resource));
#else
    next_->Put(type, id, std::move(resource));
#endif
  }
  void Delete(const std::string& type, const std::string& id) override {
    next_->Delete(type, id);
  }
  // Whether the resource last Put as `key` ("Type/id") since Bind was validated with its members
  // in canonical order, so that it may be written with WriteOptions::members_in_order.
  bool InOrder(const std::string& key) const {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
    return unordered_.empty() || unordered_.count(key) == 0;
#else
    (void)key;
    return false;
#endif
  }
  // Moves the NDJSON line of the resource last Put as `key` since Bind into `out`, when the
  // validator wrote it (Bind with lines); false: the caller writes the resource itself.
  bool TakeLine(const std::string& key, std::string& out) {
    const auto it = lines_.find(key);
    if (it == lines_.end()) return false;
    out = std::move(it->second);
    return true;
  }
  // Resources rejected since the last call.
  std::size_t TakeRejected() {
    return std::exchange(rejected_, 0);
  }

 private:
  mapping::BundleBuilder* next_ = nullptr;
  IssueSink* issues_ = nullptr;
  std::size_t rejected_ = 0;
  std::set<std::string> unordered_;  // "Type/id" validated, but not in canonical member order
  std::unordered_map<std::string, std::string> lines_;  // "Type/id" -> NDJSON line (TakeLine)
  bool keep_lines_ = false;
#ifdef KAKEHASHI_HAVE_CONFORMANCE
  conformance::Validator validator_;
#endif
};

// One line per problem: code and message; the location only when it is the operator's own file
// name (never an SS-MIX2 path, which contains a patient ID).
void PrintProblem(const Issue& issue) {
  std::string where;
  if (!issue.where.source.empty() && issue.where.source.rfind("ssmix2:", 0) != 0) {
    where = " in " + issue.where.source;
    if (!issue.where.field.empty()) where += " " + issue.where.field;
  } else if (!issue.where.record.empty() && issue.where.source.rfind("ssmix2:", 0) == 0) {
    where = " in an SS-MIX2 file";
  }
  std::fprintf(stderr, "kakehashi convert: %s %.*s%s: %s\n",
               std::string(ToString(issue.severity)).c_str(), static_cast<int>(issue.code.size()),
               issue.code.data(), where.c_str(), issue.message.c_str());
}

// The last item of the OperationOutcome when issues were counted but not kept.
Node TooCostlyItem(const CollectingSink& sink) {
  Node item = Node::Object();
  item.Set("severity", Node::String("information"));
  item.Set("code", Node::String("too-costly"));
  item.Set("diagnostics", Node::String(std::to_string(sink.Dropped()) +
                                       " further issues were counted but not kept"));
  return item;
}

Node OperationOutcome(const CollectingSink& sink) {
  Node oo = fhir::ToOperationOutcome(sink.Issues());
  if (sink.Dropped() > 0) {
    if (Node* list = oo.Find("issue")) list->Push(TooCostlyItem(sink));
  }
  return oo;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// Writes OperationOutcome(sink) and a newline to `path` one issue at a time: the same bytes as
// writing the whole resource at once, without holding its Node tree (the 100,000 issues kept at
// most are ~300 MB as Nodes, ~40 MB as Issues).
bool WriteOperationOutcome(const std::string& path, const CollectingSink& sink) {
  std::string text;
  if (sink.Issues().empty()) {  // the "no issues found" form (and nothing to stream)
    fhir::WriteJson(OperationOutcome(sink), text);
    text += '\n';
    return WriteFile(path, text);
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  constexpr std::string_view kHead = R"({"resourceType":"OperationOutcome","issue":[)";
  bool first = true;
  auto put = [&](const Node& outcome) {
    text.clear();
    fhir::WriteJson(outcome, text);
    if (text.size() < kHead.size() + 2 || text.compare(0, kHead.size(), kHead) != 0 ||
        text.compare(text.size() - 2, 2, "]}") != 0) {
      std::fprintf(stderr, "kakehashi convert: internal error: unexpected OperationOutcome\n");
      std::abort();
    }
    if (first) {
      std::fwrite(kHead.data(), 1, kHead.size(), file);
    } else {
      std::fputc(',', file);
    }
    first = false;
    std::fwrite(text.data() + kHead.size(), 1, text.size() - kHead.size() - 2, file);
  };
  std::vector<Issue> one(1);
  for (const Issue& issue : sink.Issues()) {
    one[0] = issue;
    put(fhir::ToOperationOutcome(one));
  }
  if (sink.Dropped() > 0) {
    Node outcome = Node::Object();
    outcome.Set("resourceType", Node::String("OperationOutcome"));
    outcome.Set("issue", Node::Array()).Push(TooCostlyItem(sink));
    put(outcome);
  }
  std::fputs("]}\n", file);
  bool ok = std::fflush(file) == 0 && std::ferror(file) == 0;
  return std::fclose(file) == 0 && ok;
}

std::string Join(const std::map<std::string, std::size_t>& counts) {
  std::string out;
  for (const auto& [name, n] : counts) {
    if (!out.empty()) out += ", ";
    out += name + " " + std::to_string(n);
  }
  return out;
}

bool LooksLikeHl7(const std::string& bytes) {
  // An MSH segment at the start of some line (after optional MLLP/BOM bytes).
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t p = pos;
    while (p < bytes.size() && (bytes[p] == '\x0b' || bytes[p] == '\x1c' ||
                                static_cast<unsigned char>(bytes[p]) == 0xEF ||
                                static_cast<unsigned char>(bytes[p]) == 0xBB ||
                                static_cast<unsigned char>(bytes[p]) == 0xBF)) {
      ++p;
    }
    if (bytes.compare(p, 3, "MSH") == 0) return true;
    std::size_t nl = bytes.find_first_of("\r\n", pos);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return false;
}

// ----------------------------------------------------------------------------- parallel pipeline

// One unit of work: an SS-MIX2 patient (its folder in every store input that holds it), one
// stored file named on the command line, or one HL7 v2 file. A unit may also carry only a message
// for stderr (an unusable input), so that the messages come out in input order.
struct Unit {
  enum class Kind { kPatient, kStoreFile, kHl7, kMessage };
  Kind kind = Kind::kMessage;
  std::size_t input_index = 0;  // position on the command line
  std::string input;            // the input as given
  // kPatient: the patient's folder in each store input holding it (input order), read by the
  // worker that converts it as one folder (its issues go to `issues`); the input of each.
  std::vector<adapters::ssmix2::StorageReader::RootFolder> folders;
  std::vector<std::size_t> folder_inputs;
  std::vector<adapters::ssmix2::StorageRecord> records;  // kPatient (once read), kStoreFile
  bool read = false;                  // kPatient: the folders have been read (ReadUnit)
  std::vector<std::size_t> found;     // then: stored files read from each of `folders`
  std::string message;                // kMessage: one line for stderr
  bool unusable = false;              // counts as an unusable input
  bool end_of_store = false;          // the walk of store input `input_index` is over
  double progress = 0.0;              // fraction of the run when claimed
  std::unique_ptr<BatchSink> issues;  // walk issues, reader issues, then mapping issues
};

// A unit's output, serialised by the worker.
struct OutEntry {
  std::string key;         // "Type/id"
  std::string text;        // ndjson line / Bundle entry JSON; empty for an NDJSON delete
  std::uint64_t hash = 0;  // of `text`; computed for tracked entries only
  bool is_delete = false;
  bool track = false;  // remembered across units (see the file comment)
};

struct Done {
  Unit unit;
  std::vector<OutEntry> entries;
  mapping::ConvertStats stats;
  std::size_t rejected = 0;
  std::vector<std::size_t> found;  // kPatient: stored files read from each of unit.folders
};

std::uint64_t Fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Reads a patient unit's folders (ReadPatient: the files relative to their open folder; reader
// issues to the unit's sink); an I/O thread of the read-ahead calls it, or the converting worker
// when there is none (--io-threads 0). Other units are left as they are. When a folder cannot be
// read, the unit becomes its error line: issues the reader reported before failing still go
// out, then error convert.patient_unreadable located at the folder (`ssmix2:<ID[0:3]>/<ID[3:6]>/
// <ID>`, relative to its root like every ssmix2 issue; it goes only to --issues, decision 0003),
// and the stderr line (naming the input, not the folder: its name is a patient ID). The patient
// is not converted at all — from its other roots alone it would be a wrong state — and the walk
// goes on.
void ReadUnit(Unit& unit, const std::vector<std::string>& inputs) {
  if (unit.kind != Unit::Kind::kPatient || unit.read) return;
  unit.read = true;
  std::size_t failed = 0;
  auto read = adapters::ssmix2::StorageReader::ReadPatient(unit.folders, unit.records, *unit.issues,
                                                           &failed, &unit.found);
  if (read) return;
  if (failed < unit.folders.size()) {
    const auto& folder = unit.folders[failed].folder;
    Location where;
    const std::string& root = unit.folders[failed].reader->RootLabel();  // several roots: named
    where.source = "ssmix2:" + (root.empty() ? "" : root + "/") + folder.l1 + "/" + folder.l2 +
                   "/" + folder.id;
    unit.issues->Error("convert.patient_unreadable", where,
                       "this patient folder could not be read (" + read.error().message() +
                           "); the patient is not converted from any input");
  }
  unit.kind = Unit::Kind::kMessage;
  unit.records.clear();
  unit.message = "kakehashi convert: " + inputs[unit.folder_inputs[failed]] + ": " +
                 read.error().message() +
                 " (a patient folder could not be read; that patient is not converted)";
  unit.unusable = true;
  // Each input of the unit holds a patient folder: SS-MIX2 data, though not converted (not "no
  // SS-MIX2 data found" for a root whose only patient this was).
  unit.found.assign(unit.folders.size(), 1);
}

// --io-threads default: enough disk requests at once for a virtio or SSD queue when the store is
// not in the page cache (docs/performance.md, "Reading a cold store ahead of the workers"), few
// enough that the threads cost nothing noticeable when it is.
constexpr std::size_t kDefaultIoThreads = 8;
// Units read ahead per I/O thread (read and waiting for a worker, or being read).
constexpr std::size_t kReadAheadPerThread = 4;

constexpr std::string_view kBundleHead = R"({"resourceType":"Bundle","type":"transaction")";

// One worker: its own converter and validator over the shared (const) rules.
class Worker {
 public:
  // `later_keys`: Type/ids that a file input after the stores will write (see RunConvert);
  // patient entries with such a key are remembered across units like shared ones.
  Worker(const mapping::RuleSet& rules, const mapping::MapOptions& options, bool ndjson,
         const std::set<std::string>& shared, const std::vector<std::string>& inputs,
         const std::unordered_set<std::string>& later_keys)
      : converter_(rules, options),
        ndjson_(ndjson),
        shared_(shared),
        inputs_(inputs),
        later_keys_(later_keys) {}

  Done Convert(Unit unit) {
    Done done;
    // Each unit is converted on its own: Encounter versions of an earlier unit of the same
    // patient (several inputs) must not merge into this one on one worker only (output would
    // depend on --jobs and on which worker claimed what).
    converter_.ForgetEncounterVersions();
    BatchSink& issues = *unit.issues;
    ReadUnit(unit, inputs_);  // read ahead by an I/O thread, else here
    if (unit.read) done.found = std::move(unit.found);
    std::string bytes;
    if (unit.kind == Unit::Kind::kHl7) {
      std::ifstream in(fs::path(unit.input), std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      if (!in && !in.eof()) {
        unit.kind = Unit::Kind::kMessage;
        unit.message = "kakehashi convert: " + unit.input + ": cannot be read";
        unit.unusable = true;
      } else {
        bytes = ss.str();
        if (!LooksLikeHl7(bytes)) {
          unit.kind = Unit::Kind::kMessage;
          unit.message = "kakehashi convert: " + unit.input + ": not HL7 v2 (no MSH segment found)";
          unit.unusable = true;
        }
      }
    }
    mapping::BundleBuilder bundle;  // one entry per Type/id within the unit
    output_.Bind(bundle, issues, /*lines=*/ndjson_);
    switch (unit.kind) {
      case Unit::Kind::kPatient:
      case Unit::Kind::kStoreFile:
        for (const auto& record : unit.records) converter_.ConvertRecord(record, output_, issues);
        break;
      case Unit::Kind::kHl7:
        if (converter_.ConvertHl7(bytes, unit.input, output_, issues) == 0) {
          unit.unusable = true;
        }
        break;
      case Unit::Kind::kMessage: break;
    }
    const bool track_all = unit.kind != Unit::Kind::kPatient;
    std::vector<mapping::BundleEntry> entries = bundle.TakeEntries();
    done.entries.reserve(entries.size());
    for (auto& e : entries) {
      OutEntry out;
      out.key = std::move(e.key);
      out.is_delete = e.method == mapping::BundleEntry::Method::kDelete;
      out.track = track_all || shared_.count(e.type) != 0 ||
                  (!later_keys_.empty() && later_keys_.count(out.key) != 0);
      // Validated resources normally arrive with their members in canonical order: then the
      // writer need not look every member up in the metadata again.
      fhir::WriteOptions write;
      write.members_in_order = !ndjson_ && !out.is_delete && output_.InOrder(out.key);
      if (ndjson_) {
        // NDJSON: the line the validator wrote while it checked the resource, if it could.
        if (!out.is_delete && !output_.TakeLine(out.key, out.text)) {
          fhir::WriteJson(e.resource, out.text);
          out.text += '\n';
        }
      } else {
        out.text = EntryText(e, out.key, write);
      }
      if (out.track) out.hash = Fnv1a(out.text);  // others only when they meet a tracked key
      done.entries.push_back(std::move(out));
    }
    done.stats = converter_.TakeStats();
    done.rejected = output_.TakeRejected();
    unit.records = {};  // converted: the file contents need not wait for the consumer
    done.unit = std::move(unit);
    return done;
  }

 private:
  // The JSON of one Bundle.entry exactly as BundleBuilder::Build + WriteJson writes it: a Bundle
  // of this one entry, written canonically, minus the Bundle's own head and tail.
  // The Bundle, entry and request built here are in canonical order, so `write` may vouch for
  // the entry's resource alone.
  std::string EntryText(mapping::BundleEntry& e, const std::string& key,
                        const fhir::WriteOptions& write) {
    Node bundle = Node::Object();
    bundle.Set("resourceType", Node::String("Bundle"));
    bundle.Set("type", Node::String("transaction"));
    Node entry = Node::Object();
    Node request = Node::Object();
    if (e.method == mapping::BundleEntry::Method::kPut) {
      entry.Set("fullUrl", Node::String("urn:uuid:" + e.id));
      entry.Set("resource", std::move(e.resource));
      request.Set("method", Node::String("PUT"));
    } else {
      request.Set("method", Node::String("DELETE"));
    }
    request.Set("url", Node::String(key));
    entry.Set("request", std::move(request));
    bundle.Set("entry", Node::Array()).Push(std::move(entry));
    text_.clear();
    fhir::WriteJson(bundle, text_, write);
    const std::string head = std::string(kBundleHead) + ",\"entry\":[";
    if (text_.size() < head.size() + 2 || text_.compare(0, head.size(), head) != 0 ||
        text_.compare(text_.size() - 2, 2, "]}") != 0) {
      std::fprintf(stderr, "kakehashi convert: internal error: unexpected Bundle layout\n");
      std::abort();
    }
    return text_.substr(head.size(), text_.size() - head.size() - 2);
  }

  mapping::Converter converter_;
  ValidatingOutput output_;
  bool ndjson_;
  const std::set<std::string>& shared_;
  const std::vector<std::string>& inputs_;
  const std::unordered_set<std::string>& later_keys_;
  std::string text_;
};

// The inputs cut into units, in input order, as a state machine called by one worker at a time
// (UnitQueue::Claim). The store inputs (SS-MIX2 roots, patient folders and folders below one) are
// walked as one store: their walks are merged by patient folder (adapters MergedWalk), so one
// unit is one patient with its folder in every store input that holds it — a full export and a
// delta root of the same patient are converted as one folder (a replaced key is one update, a
// deleted key one delete, the stay's Encounter versions merge), never twice into one Bundle. The
// merged walk takes the place of the first store input; each store input's end (its walk error
// or "no SS-MIX2 data") is reported at its own place. The folders are only named here and read
// by the worker that converts the unit, so the file reads and the conversion run on every
// worker (docs/decisions/0008-parallel-streaming-convert.md, 0017-multi-root-convert.md).
class UnitSource {
 public:
  UnitSource(const std::vector<std::string>& inputs, std::string from, bool keep_issues,
             bool io_uring)
      : inputs_(inputs),
        from_(std::move(from)),
        keep_issues_(keep_issues),
        io_uring_(io_uring),
        plans_(inputs.size()),
        walk_errors_(inputs.size()) {
    for (std::size_t i = 0; i < inputs_.size(); ++i) Classify(i);
    // Several store inputs: issue locations name the root (decision 0003): the input as given,
    // or the store root found above a patient folder given as input. One store: root-relative.
    if (stores_.size() > 1) {
      for (auto& store : stores_) store->reader.LabelRoot(store->label);
    }
    if (!stores_.empty()) {
      std::vector<adapters::ssmix2::StorageReader*> readers;
      for (auto& store : stores_) readers.push_back(&store->reader);
      walk_.emplace(std::move(readers));
    }
  }

  // The next unit; false when every input is done.
  bool Next(Unit& unit) {
    while (true) {
      if (walking_) {
        if (NextPatient(unit)) return true;
        walking_ = false;
        EndOfStore(first_store_, unit);  // carries the walk's last issues
        return true;
      }
      if (index_ >= inputs_.size()) return false;
      const std::size_t index = index_++;
      const Plan& plan = plans_[index];
      Start(index, unit);
      switch (plan.kind) {
        case Plan::kMessage:
          unit.kind = Unit::Kind::kMessage;
          unit.message = "kakehashi convert: " + inputs_[index] + ": " + plan.message;
          unit.unusable = true;
          return true;
        case Plan::kFile: FileUnit(index, unit); return true;
        case Plan::kStore:
          if (index == first_store_) {
            walking_ = true;
            continue;
          }
          EndOfStore(index, unit);
          return true;
      }
    }
  }

  // The units of the file inputs given after the first store input, made as Next makes them
  // (their issues are not wanted): RunConvert converts them once beforehand to learn which
  // Type/ids they write, so that the store's entries with those keys are remembered and the file's
  // repeats of them are dropped (first wins, convert.duplicate_resource when they differ).
  std::vector<Unit> LaterFileUnits() {
    std::vector<Unit> out;
    if (stores_.empty()) return out;
    for (std::size_t i = first_store_ + 1; i < inputs_.size(); ++i) {
      if (plans_[i].kind != Plan::kFile) continue;
      Unit unit;
      Start(i, unit);
      FileUnit(i, unit);
      out.push_back(std::move(unit));
    }
    return out;
  }

 private:
  struct Plan {
    enum Kind { kMessage, kFile, kStore };
    Kind kind = kMessage;
    std::string message;  // kMessage
  };
  struct Store {
    explicit Store(const fs::path& root) : reader(root, sink) {}
    SwitchSink sink;  // the walk's issues go to the unit being claimed
    adapters::ssmix2::StorageReader reader;
    std::size_t index = 0;  // input index
    std::string label;      // the root as the operator named it (StorageReader::LabelRoot)
  };

  // What input `index` is (existence and overlap are checked before anything is converted; the
  // messages still come out at the input's place).
  void Classify(std::size_t index) {
    const std::string& input = inputs_[index];
    Plan& plan = plans_[index];
    std::error_code ec;
    const fs::path path(input);
    if (!fs::exists(path, ec)) {
      plan.message = "no such file or directory";
      return;
    }
    // An input equal to, inside or around an earlier one would convert the same files twice
    // into one Bundle (bdl-7). Refused with a clear line.
    if (auto earlier = Overlapping(path, index)) {
      plan.message = "overlaps input \"" + inputs_[*earlier] +
                     "\" (the same files would be converted twice); give inputs that do not "
                     "overlap";
      return;
    }
    if (fs::is_directory(path, ec)) {
      if (from_ == "hl7v2") {
        plan.message = "a directory is not an HL7 v2 file";
        return;
      }
      // A patient folder or a folder below one (issue #4): convert that subtree of its store.
      const auto subtree = adapters::ssmix2::StorageReader::Locate(path);
      auto store = std::make_unique<Store>(subtree ? subtree->root : path);
      if (subtree) store->reader.Restrict(subtree->relative);
      store->label = RootLabel(subtree ? subtree->root.generic_string() : inputs_[index]);
      store->reader.Preload(true);  // files read by the converting worker, relative to their folder
      store->reader.UseIoUring(io_uring_);
      store->index = index;
      if (stores_.empty()) first_store_ = index;
      stores_.push_back(std::move(store));  // kept: workers still read its folders
      plan.kind = Plan::kStore;
      return;
    }
    plan.kind = Plan::kFile;
  }

  void Start(std::size_t index, Unit& unit) const {
    unit = Unit();
    unit.input_index = index;
    unit.input = inputs_[index];
    unit.issues = std::make_unique<BatchSink>(keep_issues_);
    unit.progress = Before(index) + Share();
  }

  // An SS-MIX2 file inside a store, or else an HL7 v2 file (read and checked by the worker).
  void FileUnit(std::size_t index, Unit& unit) const {
    const fs::path path(inputs_[index]);
    const bool ssmix2_name = adapters::ssmix2::ParseFileName(path.filename().string()).has_value();
    if (from_ == "ssmix2" || (from_.empty() && ssmix2_name)) {
      auto record = adapters::ssmix2::StorageReader::ResolveFile(path, *unit.issues);
      if (!record) {
        unit.kind = Unit::Kind::kMessage;
        unit.message = "kakehashi convert: " + inputs_[index] +
                       ": not a file of an SS-MIX2 store (" + record.error().message() + ")";
        unit.unusable = true;
        return;
      }
      unit.kind = Unit::Kind::kStoreFile;
      unit.records.push_back(std::move(*record));
      return;
    }
    unit.kind = Unit::Kind::kHl7;
  }

  double Before(std::size_t index) const {
    return static_cast<double>(index) / static_cast<double>(inputs_.size());
  }
  double Share() const { return 1.0 / static_cast<double>(inputs_.size()); }

  // The next patient of the merged walk as a unit; false at the end of the walk.
  bool NextPatient(Unit& unit) {
    Start(first_store_, unit);
    for (auto& store : stores_) store->sink.Set(unit.issues.get());
    const bool more = walk_->Next(step_);
    for (auto& store : stores_) store->sink.Set(nullptr);
    for (auto& [reader, error] : step_.ended) {
      walk_errors_[stores_[reader]->index] = error.message();
    }
    if (!more) return false;
    unit.kind = Unit::Kind::kPatient;
    unit.folders = std::move(step_.folders);
    for (std::size_t reader : step_.readers) unit.folder_inputs.push_back(stores_[reader]->index);
    unit.input_index = unit.folder_inputs.front();
    unit.input = inputs_[unit.input_index];
    const double share = Share() * static_cast<double>(stores_.size());
    unit.progress = std::min(1.0, Before(first_store_) + share * walk_->Progress());
    return true;
  }

  // The last unit of store input `index`: its walk's error, else end_of_store (the consumer
  // reports an input that yielded no SS-MIX2 data). `unit` may already hold the walk's issues.
  void EndOfStore(std::size_t index, Unit& unit) {
    if (unit.issues == nullptr || unit.input_index != index) Start(index, unit);
    unit.input_index = index;
    unit.input = inputs_[index];
    unit.kind = Unit::Kind::kMessage;
    if (!walk_errors_[index].empty()) {
      unit.message = "kakehashi convert: " + inputs_[index] + ": " + walk_errors_[index];
      unit.unusable = true;
    } else {
      unit.end_of_store = true;
    }
  }

  // The index of an earlier input that `path` equals, lies inside or contains (component-wise,
  // after resolving `.`, `..` and symbolic links); remembers `path` as input `index` when there
  // is none.
  std::optional<std::size_t> Overlapping(const fs::path& path, std::size_t index) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(path, ec);
    if (ec) canonical = fs::absolute(path, ec).lexically_normal();
    const auto within = [](const fs::path& inner, const fs::path& outer) {
      auto i = inner.begin();
      for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty()) continue;  // a trailing separator
        if (i == inner.end() || *i != *o) return false;
      }
      return true;
    };
    for (const auto& [earlier, earlier_index] : seen_) {
      if (within(canonical, earlier) || within(earlier, canonical)) return earlier_index;
    }
    seen_.emplace_back(std::move(canonical), index);
    return std::nullopt;
  }

  const std::vector<std::string>& inputs_;
  std::vector<std::pair<fs::path, std::size_t>> seen_;  // canonical path, input index
  const std::string from_;
  const bool keep_issues_;
  const bool io_uring_;  // --io-uring: the stores' readers batch their file reads
  std::vector<Plan> plans_;
  std::vector<std::string> walk_errors_;  // by input index: why its walk ended early
  std::vector<std::unique_ptr<Store>> stores_;
  std::size_t first_store_ = 0;  // input index where the merged walk's units are written
  std::optional<adapters::ssmix2::MergedWalk> walk_;
  adapters::ssmix2::MergedWalk::Step step_;
  std::size_t index_ = 0;
  bool walking_ = false;
};

// The hand-off between the workers and the consumer: a worker claims the next unit (walking the
// inputs itself, one worker at a time), converts it and files the result under its number; the
// consumer takes the results strictly in number order, so the output does not depend on the
// number of workers. A unit is claimed only while fewer than `window` units are between the
// consumer and the claim, which bounds memory; the window is wide (tens of patient folders) so
// that a worker preempted while converting the unit the consumer waits for does not stop the
// other worker at once. With a read-ahead (--io-threads), the claim takes the next unit from it
// (walked and read by the I/O threads) instead of walking the inputs itself.
class UnitQueue {
 public:
  UnitQueue(UnitSource& source, std::size_t window, ReadAhead<Unit>* ahead)
      : source_(source), ahead_(ahead), window_(window), slots_(window) {}

  // Worker: the next unit and its number; false when there is no more work.
  bool Claim(std::size_t& seq, Unit& unit) {
    std::lock_guard claim(claim_mutex_);  // the walk runs on one worker at a time
    if (exhausted_) return false;
    {
      std::unique_lock lock(mutex_);
      if (next_seq_ >= next_out_ + window_) {
        claimer_waiting_ = true;
        space_.wait(lock, [&] { return next_seq_ < next_out_ + window_; });
        claimer_waiting_ = false;
      }
    }
    const bool more = ahead_ != nullptr ? ahead_->Take(unit) : source_.Next(unit);
    std::lock_guard lock(mutex_);
    if (!more) {
      exhausted_ = true;
      if (consumer_waiting_) ready_.notify_one();
      return false;
    }
    seq = next_seq_++;
    return true;
  }
  // Worker: the result of unit `seq`.
  void Finish(std::size_t seq, Done done) {
    std::lock_guard lock(mutex_);
    slots_[seq % window_] = std::move(done);
    if (seq == next_out_ && consumer_waiting_) ready_.notify_one();
  }
  // Consumer: the next result in order; nullopt when everything claimed has come back and the
  // inputs are exhausted.
  std::optional<Done> Next() {
    std::unique_lock lock(mutex_);
    auto& slot = slots_[next_out_ % window_];
    if (!slot && !(exhausted_ && next_out_ == next_seq_)) {
      consumer_waiting_ = true;
      ready_.wait(lock, [&] { return slot.has_value() || (exhausted_ && next_out_ == next_seq_); });
      consumer_waiting_ = false;
    }
    if (!slot) return std::nullopt;
    std::optional<Done> done = std::move(slot);
    slot.reset();
    ++next_out_;
    if (claimer_waiting_) space_.notify_one();
    return done;
  }

 private:
  UnitSource& source_;
  ReadAhead<Unit>* const ahead_;  // nullptr: the claiming worker walks the inputs
  const std::size_t window_;
  std::mutex claim_mutex_;  // source_, exhausted_ (written under both)
  std::mutex mutex_;        // everything below
  std::condition_variable space_, ready_;
  std::vector<std::optional<Done>> slots_;  // result of unit n at n % window_
  std::size_t next_seq_ = 0, next_out_ = 0;
  bool exhausted_ = false;
  bool claimer_waiting_ = false, consumer_waiting_ = false;
};

void Add(mapping::ConvertStats& total, const mapping::ConvertStats& part) {
  total.files += part.files;
  total.messages += part.messages;
  total.unmapped += part.unmapped;
  total.unusable += part.unusable;
  for (const auto& [type, n] : part.put_by_type) total.put_by_type[type] += n;
  for (const auto& [type, n] : part.deleted_by_type) total.deleted_by_type[type] += n;
}

}  // namespace

int RunConvert(const std::vector<std::string>& argv) {
  Args args(WithConversionValueOptions(
                {"from", "format", "out", "issues", "jobs", "io-threads", "io-uring"}),
            WithConversionFlagOptions({"progress"}));
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi convert: %s (see kakehashi convert --help)\n",
                 args.Error().c_str());
    return kExitUsage;
  }
  if (args.Help()) {
    std::string help(kHelp);  // the terminology options go before --help
    help.insert(help.find("  --help "), kConvertTerminologyHelp);
    std::fputs(help.c_str(), stdout);
    return kExitOk;
  }
  const std::string from = args.GetOr("from", "");
  const std::string format = args.GetOr("format", "bundle");
  if (!from.empty() && from != "hl7v2" && from != "ssmix2" && from != "jahis-rx") {
    std::fprintf(stderr, "kakehashi convert: --from must be hl7v2, ssmix2 or jahis-rx\n");
    return kExitUsage;
  }
  if (format != "bundle" && format != "ndjson") {
    std::fprintf(stderr, "kakehashi convert: --format must be bundle or ndjson\n");
    return kExitUsage;
  }
  if (from == "jahis-rx") {
    std::fprintf(stderr,
                 "kakehashi convert: --from jahis-rx is not supported yet (JAHIS e-prescription "
                 "QR/CSV conversion is planned; HL7 v2 and SS-MIX2 are supported)\n");
    return kExitUsage;
  }
  if (args.Positionals().empty()) {
    std::fprintf(stderr, "kakehashi convert: no INPUT given (see kakehashi convert --help)\n");
    return kExitUsage;
  }
  // --profile, --facility, --rules, --terminology, --concept-map, --no-unused: read as import
  // and serve read them (conversion_settings.hpp).
  const auto settings = ConversionSettings::Read(args, "convert");
  if (!settings) return kExitUsage;
  const auto jobs_option = ReadJobsOption(args, "convert");
  if (!jobs_option) return kExitUsage;
  const std::size_t jobs = *jobs_option;
  std::size_t io_threads = kDefaultIoThreads;
  if (auto text = args.Get("io-threads")) {
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, io_threads);
    if (text->empty() || ec != std::errc() || ptr != end || io_threads > 256) {
      std::fprintf(stderr, "kakehashi convert: --io-threads must be a number from 0 to 256\n");
      return kExitUsage;
    }
  }
  const std::string io_uring = args.GetOr("io-uring", "on");
  if (io_uring != "on" && io_uring != "off") {
    std::fprintf(stderr, "kakehashi convert: --io-uring must be on or off\n");
    return kExitUsage;
  }
  const auto rules = settings->LoadRules("convert");
  if (!rules) return kExitUsage;
  // Terminology store (issue #5): opened once; every worker reads its warm cache.
  BatchSink terminology_issues(args.Has("issues"));
  std::unique_ptr<terminology::TerminologyStore> terminology_store;
  if (int rc = settings->OpenTerminology(terminology_issues, terminology_store, "convert");
      rc != kExitOk) {
    return rc;
  }
  const mapping::MapOptions map_options = settings->MapOptions(terminology_store.get());
  const bool ndjson = format == "ndjson";
  const bool keep_issues = args.Has("issues");

  // The output is opened first and written as units complete (streaming, not held in memory).
  std::FILE* out = stdout;
  const std::optional<std::string> out_path = args.Get("out");
  if (out_path) {
    out = std::fopen(out_path->c_str(), "wb");
    if (out == nullptr) {
      std::fprintf(stderr, "kakehashi convert: %s: cannot be written\n", out_path->c_str());
      return kExitUsage;
    }
  }
  std::vector<char> out_buffer(1 << 20);
  std::setvbuf(out, out_buffer.data(), _IOFBF, out_buffer.size());

  Tally issues(keep_issues);
  issues.Absorb(terminology_issues);
  ProgressLine progress(args.Has("progress") || isatty(fileno(stderr)) != 0, "kakehashi convert");
  const std::set<std::string> shared = SharedResourceTypes(*rules);  // importer.hpp

  // Workers claim the units themselves (no producer thread) and convert them; at most `window`
  // units are between the consumer and the newest claim. The I/O threads (--io-threads) walk
  // the inputs and read the patients' folders ahead of the claims, at most kReadAheadPerThread
  // units each (docs/decisions/0018); without them each worker walks to the next patient and
  // reads its folders itself.
  UnitSource source(args.Positionals(), from, keep_issues, io_uring == "on");
  // A file input given after a store may name a patient of the store: the Type/ids it writes are
  // learnt first (converting it once more, issues dropped), so that the store's entries with
  // those keys are remembered and the file's repeats are dropped (bdl-7: first wins, warning
  // convert.duplicate_resource when they differ). Without such inputs nothing is remembered per
  // patient (decision 0017).
  std::unordered_set<std::string> later_keys;
  if (std::vector<Unit> later = source.LaterFileUnits(); !later.empty()) {
    const std::unordered_set<std::string> none;
    Worker learner(*rules, map_options, ndjson, shared, args.Positionals(), none);
    for (Unit& unit : later) {
      Done learnt = learner.Convert(std::move(unit));
      for (auto& e : learnt.entries) later_keys.insert(std::move(e.key));
    }
  }
  std::unique_ptr<ReadAhead<Unit>> ahead;
  if (io_threads > 0) {
    ahead = std::make_unique<ReadAhead<Unit>>(
        io_threads, kReadAheadPerThread * io_threads,
        [&source](Unit& unit) { return source.Next(unit); },
        [&args](Unit& unit) {
          ReadUnit(unit, args.Positionals());
          return true;  // a folder that cannot be read is the unit's error line; the walk goes on
        });
  }
  UnitQueue queue(source, 32 * jobs, ahead.get());
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < jobs; ++i) {
    workers.emplace_back([&] {
      Worker worker(*rules, map_options, ndjson, shared, args.Positionals(), later_keys);
      std::size_t seq = 0;
      Unit unit;
      while (queue.Claim(seq, unit)) queue.Finish(seq, worker.Convert(std::move(unit)));
    });
  }

  // Consumer (this thread): output and issues in input order.
  mapping::ConvertStats stats;
  std::size_t unusable_inputs = 0, rejected = 0, deletes = 0, entries = 0;
  std::unordered_map<std::string, std::uint64_t> written;  // tracked Type/id -> content hash
  const std::string bundle_head = std::string(kBundleHead) + ",\"entry\":[";
  std::vector<std::size_t> found(args.Positionals().size());  // stored files of each input
  while (auto done = queue.Next()) {
    Unit& unit = done->unit;
    issues.Absorb(*unit.issues);
    if (!unit.message.empty()) {
      progress.Clear();
      std::fprintf(stderr, "%s\n", unit.message.c_str());
    }
    if (unit.unusable) ++unusable_inputs;
    for (std::size_t i = 0; i < done->found.size(); ++i) {
      found[unit.folder_inputs[i]] += done->found[i];
    }
    // Nothing to convert is never silent: a folder that is neither a store root nor at or below
    // a patient folder yields no record (exit 1 with this line).
    if (unit.end_of_store && found[unit.input_index] == 0) {
      progress.Clear();
      std::fprintf(stderr,
                   "kakehashi convert: %s: no SS-MIX2 data found: give the store root (the folder "
                   "holding the 3-character patient-ID prefix folders), a patient folder or a "
                   "folder or file inside one\n",
                   unit.input.c_str());
      ++unusable_inputs;
    }
    Add(stats, done->stats);
    rejected += done->rejected;
    for (auto& e : done->entries) {
      if (!written.empty() || e.track) {
        auto it = written.find(e.key);
        if (it != written.end()) {
          if (it->second != (e.track ? e.hash : Fnv1a(e.text))) {
            Location where;
            where.record = e.key;
            issues.Report({Severity::kWarning, "convert.duplicate_resource", where,
                           "an earlier patient or input already wrote a different version of "
                           "this resource; the first one is kept"});
          }
          continue;
        }
        if (e.track) written.emplace(std::move(e.key), e.hash);
      }
      if (e.is_delete) ++deletes;
      if (ndjson) {
        std::fwrite(e.text.data(), 1, e.text.size(), out);
      } else {
        if (entries == 0) {
          std::fwrite(bundle_head.data(), 1, bundle_head.size(), out);
        } else {
          std::fputc(',', out);
        }
        std::fwrite(e.text.data(), 1, e.text.size(), out);
      }
      ++entries;
    }
    if (progress.Due()) {
      progress.Show(
          std::to_string(stats.files) + " files, " + std::to_string(stats.messages) + " messages",
          stats.messages, unit.progress);
    }
  }
  for (auto& w : workers) w.join();
  ahead.reset();  // its threads have ended: every unit was taken
  progress.Clear();
  if (!ndjson) {
    if (entries == 0) {
      std::fwrite(kBundleHead.data(), 1, kBundleHead.size(), out);
      std::fputs("}\n", out);
    } else {
      std::fputs("]}\n", out);
    }
  }
  std::fflush(out);
  const bool write_failed = std::ferror(out) != 0;
  if (out != stdout && std::fclose(out) != 0) {
    std::fprintf(stderr, "kakehashi convert: %s: cannot be written\n", out_path->c_str());
    return kExitUsage;
  }
  if (write_failed) {
    std::fprintf(stderr, "kakehashi convert: %s: cannot be written\n",
                 out_path ? out_path->c_str() : "standard output");
    return kExitUsage;
  }
  if (auto path = args.Get("issues")) {
    if (!WriteOperationOutcome(*path, issues.Kept())) {
      std::fprintf(stderr, "kakehashi convert: %s: cannot be written\n", path->c_str());
      return kExitUsage;
    }
  }

  // Problems (one line each) and the summary.
  for (const auto& issue : issues.Problems()) PrintProblem(issue);
  if (issues.ProblemCount() > issues.Problems().size()) {
    std::fprintf(stderr, "kakehashi convert: ... and %zu more errors (see --issues FILE)\n",
                 issues.ProblemCount() - issues.Problems().size());
  }
  const double seconds = progress.Seconds();
  std::fprintf(stderr,
               "kakehashi convert: %zu files, %zu messages (%zu kept as DocumentReference) in "
               "%.2f s (%.0f messages/s, %zu jobs); %zu entries in the output\n",
               stats.files, stats.messages, stats.unmapped, seconds,
               seconds > 0 ? static_cast<double>(stats.messages) / seconds : 0.0, jobs, entries);
  if (!stats.put_by_type.empty()) {
    std::fprintf(stderr, "  resources: %s\n", Join(stats.put_by_type).c_str());
  }
  if (rejected > 0) {
    std::fprintf(stderr, "  not written: %zu invalid resources (convert.invalid_resource)\n",
                 rejected);
  }
  if (!stats.deleted_by_type.empty()) {
    std::fprintf(stderr, "  deleted:   %s%s\n", Join(stats.deleted_by_type).c_str(),
                 ndjson && deletes > 0 ? " (not representable in NDJSON: omitted)" : "");
  }
  std::fprintf(stderr, "  issues:    %zu fatal, %zu error, %zu warning, %zu information\n",
               issues.Count(Severity::kFatal), issues.Count(Severity::kError),
               issues.Count(Severity::kWarning), issues.Count(Severity::kInformation));
  for (const auto& [code, n] : issues.ByCode()) {
    std::fprintf(stderr, "    %-32s %zu\n", code.c_str(), n);
  }
  if (issues.Total() > 0 && !args.Has("issues")) {
    std::fprintf(stderr, "  (write the issues with their locations: --issues FILE)\n");
  }
  const bool failed = unusable_inputs > 0 || issues.Errors() > 0;
  return failed ? kExitInputErrors : kExitOk;
}

}  // namespace kakehashi::app
