// The importer (importer.hpp): SS-MIX2 patient folders and HL7 v2 files -> converter ->
// transaction Bundles through the Handler, with the units' checkpoints in the same transaction.
//
// PHI: checkpoint units are root-relative patient folders (they contain the patient ID, as the
// database holding the patients does); stderr gets counts and issue codes only, --issues and the
// reject directory's sidecars carry the locations (docs/decisions/0003-ssmix2-issue-locations.md).
#include "importer.hpp"

#include "fingerprint.hpp"
#include "ordered_pipeline.hpp"
#include "progress.hpp"
#include "read_ahead.hpp"

#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/errc.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/bundle.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#endif

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kakehashi::app {

namespace {

namespace fs = std::filesystem;
namespace ssmix2 = adapters::ssmix2;
using fhir::Node;

// The side tables below are text, one record per line, fields separated by tabs. Calls
// fn(line) for every line of `text` (without its '\n') until fn returns false.
template <class Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!fn(line)) return;
  }
}

// Appends one line of `fields` joined by tabs.
void AppendLine(std::string& out, std::initializer_list<std::string_view> fields) {
  bool first = true;
  for (std::string_view field : fields) {
    if (!first) out += '\t';
    first = false;
    out += field;
  }
  out += '\n';
}

// The in-memory index of the keys that have kDeletes lines (below) and of the patient folders
// file units touched (kPatients): 64-bit hashes (a collision only costs a read) in one open-
// addressing table (linear probing, at most 3/4 full: 10.7 to 21 bytes per hash, no node per
// entry).
class KeySet {
 public:
  bool empty() const { return size_ == 0; }
  bool contains(std::uint64_t h) const {
    if (size_ == 0) return false;
    h = h != 0 ? h : 1;  // 0 marks a free slot
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return true;
      if (slots_[i] == 0) return false;
    }
  }
  void insert(std::uint64_t h) {
    h = h != 0 ? h : 1;
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    if (Place(slots_, h)) ++size_;
  }

 private:
  static bool Place(std::vector<std::uint64_t>& slots, std::uint64_t h) {
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots[i] == h) return false;
      if (slots[i] == 0) {
        slots[i] = h;
        return true;
      }
    }
  }
  void Grow() {
    std::vector<std::uint64_t> bigger(std::max<std::size_t>(16, slots_.size() * 2), 0);
    for (std::uint64_t h : slots_) {
      if (h != 0) Place(bigger, h);
    }
    slots_.swap(bigger);
  }
  std::vector<std::uint64_t> slots_;  // size: 0 or a power of two
  std::size_t size_ = 0;
};
std::uint64_t KeyHash(std::string_view type, std::string_view id) {
  Fingerprint h;
  h.Add(type);
  h.Add(id);
  return h.Value();
}

std::uint64_t TextHash(std::string_view text) {
  Fingerprint h;
  h.Add(text);
  return h.Value();
}

// "ID[0:3]/ID[3:6]/ID" of a root-relative SS-MIX2 path (digest §2): the patient folder.
std::string PatientKey(const std::string& relative) {
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    pos = relative.find('/', pos);
    if (pos == std::string::npos) return relative;
    if (i < 2) ++pos;
  }
  return relative.substr(0, pos);
}

// The SS-MIX2 patient folder ("ID[0:3]/ID[3:6]/ID", digest §2: the folder is named by the
// patient ID) of a patient ID, i.e. a message's PID-3.1 (OutputSink::MessagePatient: first
// repetition, first component, the patient its patient-scoped ids derive from). An ID shorter
// than 6 characters (no SS-MIX2 folder) gives itself, which only units of that patient share; an
// empty one or one holding a '/' gives "".
std::string FolderOfId(std::string_view id) {
  if (id.empty() || id.find('/') != std::string_view::npos) return {};
  if (id.size() < 6) return std::string(id);
  return std::string(id.substr(0, 3)) + "/" + std::string(id.substr(3, 3)) + "/" + std::string(id);
}

bool LooksLikeHl7(std::string_view bytes) {
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
    if (bytes.substr(p, 3) == "MSH") return true;
    std::size_t nl = bytes.find_first_of("\r\n", pos);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

std::optional<std::string> ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

// Counts the errors of one file while forwarding them (to the RejectStore of that file).
class ErrorCounter final : public IssueSink {
 public:
  explicit ErrorCounter(IssueSink& next) : next_(next) {}
  void Report(Issue issue) override {
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors;
    next_.Report(std::move(issue));
  }
  std::size_t errors = 0;

 private:
  IssueSink& next_;
};

// Where each converted entry came from, for import.rejected locations and kept input.
struct Origin {
  fs::path path;        // to read the bytes back
  std::string source;   // Location.source ("ssmix2:<relative>" or the file as given)
  std::string when;     // merge time of the message (OutputSink::MessageTime)
  std::string patient;  // its patient folder (FolderOfId of OutputSink::MessagePatient)
};

// ---------------------------------------------------------------- Encounters across runs
//
// The converter merges the ADT messages of one stay into one Encounter within a unit (a patient
// folder, an HL7 v2 file). Across units (a later import that sees only the discharge: an HL7 v2
// file per message, a delta SS-MIX2 root, `import ssmix2 FILE`) the importer keeps every
// Encounter version it was given (OutputSink::EncounterVersion: the version as its message
// mapped it, its merge time and source slot) in a side table of its own, and PUTs the merge of
// all of them (mapping::MergeEncounterVersions) in the converter's order: merge time, then slot.
// The side table is import_unit_resources with source kEncounterVersions and unit = the
// Encounter id (store.hpp; docs/decisions/0012-import-encounter-versions.md), one line per
// version: "when \t slot \t unit \t kind+trigger \t JSON". A unit imported again replaces its own
// lines; a slot given by several units (the same SS-MIX2 record key in two roots, a key and its
// later deletion) counts once, from the unit whose version is newest (digest §3: the later
// 発生日時 is the current one). A deleted key's line (kind D: its flag-0 file's cancel message;
// kind W: nothing, the key's contribution is withdrawn) is kept like any other, so the deletion
// is remembered whichever unit is imported or redone later; the Encounter is deleted when no
// live line (kind K or M) is left.
constexpr std::string_view kEncounterVersions = "import:encounter-versions";

// Mixed into every fingerprint: units imported before a side table existed are imported once
// more, so that what it keeps is recorded (nothing changes where nothing differs): the Encounter
// lines of 0013, then the deleted keys below (docs/decisions/0019-import-deletes.md), then the
// keys several units write and the file units' patient folders
// (docs/decisions/0020-import-newest-wins.md).
constexpr std::string_view kStateFormat = "encounter-versions/2 deletes/1 updates/1";

struct VersionLine {
  std::string when;  // 17 digits, or empty
  std::string slot;  // "ssmix2:<record key>" or "file:<unit key>#<message>"
  std::string unit;  // "<checkpoint source>|<checkpoint unit>"
  // How it counts (mapping::EncounterVersionInfo), then MSH-9.2: K an SS-MIX2 record (or a PUT
  // without versions), M an HL7 v2 message (a cancel withdraws by trigger), D a deleted key's
  // cancel message (not live), W a deleted key without one (withdrawn, no JSON).
  std::string tag;
  std::string json;  // the version as mapped (fhir::WriteJson); empty for W
};

std::string Tag(const mapping::EncounterVersionInfo& info, bool withdrawn) {
  const char kind = withdrawn ? 'W' : !info.live ? 'D' : info.by_trigger ? 'M' : 'K';
  return kind + std::string(info.trigger);
}

// Tabs and line breaks would break the line format (an HL7 v2 file path could hold them).
std::string OneField(std::string text) {
  for (char& c : text) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

// A file unit's checkpoint key (its absolute path: a Linux file name may hold a tab or a line
// break) as one line of a kPatients list, '%', tab, LF and CR percent-encoded, and back, so that
// the list names the unit exactly (OneField would not give the key back).
std::string EncodeLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '%': out += "%25"; break;
      case '\t': out += "%09"; break;
      case '\n': out += "%0A"; break;
      case '\r': out += "%0D"; break;
      default: out += c;
    }
  }
  return out;
}
std::string DecodeLine(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (std::size_t i = 0; i < line.size(); ++i) {
    const std::string_view code = line.substr(i, 3);
    if (code == "%25" || code == "%09" || code == "%0A" || code == "%0D") {
      out += code == "%25" ? '%' : code == "%09" ? '\t' : code == "%0A" ? '\n' : '\r';
      i += 2;
    } else {
      out += line[i];
    }
  }
  return out;
}

// A kPatients line: a file unit's key (EncodeLine), or "source \t key" of an SS-MIX2 folder unit
// (each EncodeLine) registered under a patient its messages name -> (source, key).
std::pair<std::string, std::string> RegisteredUnit(std::string_view line) {
  const std::size_t tab = line.find('\t');
  if (tab == std::string_view::npos) return {"file", DecodeLine(line)};
  return {DecodeLine(line.substr(0, tab)), DecodeLine(line.substr(tab + 1))};
}

// The kFileLists row of a file unit's lines of one patient folder.
std::string FileListUnit(std::string_view patient, std::string_view file) {
  return std::string(patient) + "\t" + EncodeLine(file);
}

std::vector<VersionLine> ParseVersions(const std::string& text) {
  std::vector<VersionLine> out;
  ForEachLine(text, [&](std::string_view line) {
    // when, slot, unit, then kind+trigger (absent in lines of state format 1, whose fourth
    // field is the JSON: such a line counts as kind K), then the JSON (may hold no tab).
    std::string_view field[4];
    std::size_t from = 0;
    int n = 0;
    for (; n < 4; ++n) {
      const bool json_next = n == 3 && from < line.size() && line[from] == '{';
      const std::size_t at = json_next ? std::string_view::npos : line.find('\t', from);
      if (at == std::string_view::npos) break;
      field[n] = line.substr(from, at - from);
      from = at + 1;
    }
    if (n < 3) return true;
    if (n == 3) field[3] = "K";
    out.push_back({std::string(field[0]), std::string(field[1]), std::string(field[2]),
                   std::string(field[3]), std::string(line.substr(from))});
    return true;
  });
  return out;
}

// Canonical order (merge time, slot, unit), so an unchanged state serialises identically.
std::string FormatVersions(std::vector<VersionLine>& lines) {
  std::stable_sort(lines.begin(), lines.end(), [](const VersionLine& a, const VersionLine& b) {
    return std::tie(a.when, a.slot, a.unit) < std::tie(b.when, b.slot, b.unit);
  });
  std::string out;
  for (const auto& l : lines) AppendLine(out, {l.when, l.slot, l.unit, l.tag, l.json});
  return out;
}

// The versions that count, in merge order: per slot only the lines of the unit with the newest
// version of it (ties: the greater unit name, so the choice does not depend on import order),
// none when that is a withdrawal (W); sorted by merge time, then slot, then their order within
// the unit.
std::vector<const VersionLine*> Effective(const std::vector<VersionLine>& lines) {
  std::map<std::string_view, std::pair<std::string_view, std::string_view>> best;  // slot ->
  for (const auto& l : lines) {
    auto [it, added] = best.try_emplace(l.slot, l.when, l.unit);
    if (!added && std::pair<std::string_view, std::string_view>(l.when, l.unit) > it->second) {
      it->second = {l.when, l.unit};
    }
  }
  std::vector<const VersionLine*> out;
  for (const auto& l : lines) {
    // A withdrawn slot (kind W) contributes nothing, whatever older lines it has.
    if (best.at(l.slot).second == l.unit && !l.tag.starts_with('W')) out.push_back(&l);
  }
  std::stable_sort(out.begin(), out.end(), [](const VersionLine* a, const VersionLine* b) {
    return std::tie(a->when, a->slot) < std::tie(b->when, b->slot);
  });
  return out;
}

// ---------------------------------------------------------------- keys across runs
//
// Per resource key, the version from the newest source message wins, whatever order the units
// are imported or redone in (docs/decisions/0019-import-deletes.md for deletes,
// 0020-import-newest-wins.md for updates). A key is tracked — it has lines in
// import_unit_resources with source kDeletes and unit = "Type/id" (and a checkpoint row of the
// same name, so that the keys can be listed when an import starts) — from its first DELETE (an
// SS-MIX2 flag-0 key, a disease removed from a PPR-01 list, a `_0` extended-storage folder) or
// from the first time a second unit writes it (the same patient folder in two SS-MIX2 roots, a
// delta root's replaced record, an HL7 v2 file or `import ssmix2 FILE` of a patient a root
// holds): one line per unit that told about the key since: "when \t unit \t kind \t JSON",
// kind D (the unit deletes it; no JSON) or P (the unit yields it: its JSON, kept so that the
// resource can come back when the newer line is released). The units that wrote the key before
// it was tracked kept no line: they are found through the patient folder — the same folder in
// another SS-MIX2 root (kSources), a file unit registered under it (kPatients) — and each one
// whose list holds the key gets a P line with the time listed and the stored content; found
// none, the stored content is the one line of kind L (no unit, no time: written over REST, or by
// a file whose PID-3 does not name the folder), whose place the unit that lists the key without
// a line of its own takes. The line with the newest merge time (SS-MIX2 発生日時, HL7 v2 MSH-7)
// decides, a D over a P at the same time, then the greater unit name; L is the oldest.
// Encounters (versions above) and SharedResourceTypes are not tracked; a key of a unit no other
// unit shares a patient folder with is written as before (no read, no line).
constexpr std::string_view kDeletes = "import:deletes";
// The SS-MIX2 roots imported into the database (checkpoint rows, unit = checkpoint source): where
// the first delete of a key looks for the units that wrote it before (same patient folder).
constexpr std::string_view kSources = "import:sources";
// The patient folders file units (HL7 v2 files by PID-3, `import ssmix2 FILE`) wrote resources of:
// checkpoint rows (unit = "ID[0:3]/ID[3:6]/ID"), each with the list of those file units (their
// checkpoint unit, one a line, EncodeLine).
constexpr std::string_view kPatients = "import:patients";
// An HL7 v2 file unit's list split by patient folder (import_unit_resources rows, unit =
// FileListUnit(folder, file unit): its "Type/id \t when" lines of that patient), so that a folder's
// unit reads only its patient's lines of a file spanning many patients (a batch feed), not the
// whole list once per folder (decision 0026).
constexpr std::string_view kFileLists = "import:file-lists";

struct KeyLine {
  std::string when;
  std::string unit;
  char kind = 'P';  // D, P or L
  std::string json;
};

std::vector<KeyLine> ParseKeyLines(const std::string& text) {
  std::vector<KeyLine> out;
  ForEachLine(text, [&](std::string_view line) {
    const std::size_t a = line.find('\t');
    const std::size_t b = a == std::string_view::npos ? a : line.find('\t', a + 1);
    const std::size_t c = b == std::string_view::npos ? b : line.find('\t', b + 1);
    if (c == std::string_view::npos || c != b + 2) return true;
    out.push_back({std::string(line.substr(0, a)), std::string(line.substr(a + 1, b - a - 1)),
                   line[b + 1], std::string(line.substr(c + 1))});
    return true;
  });
  return out;
}

int KindRank(char kind) {
  return kind == 'D' ? 2 : kind == 'P' ? 1 : 0;
}

bool Older(const KeyLine& a, const KeyLine& b) {
  return std::tuple(std::string_view(a.when), KindRank(a.kind), std::string_view(a.unit)) <
         std::tuple(std::string_view(b.when), KindRank(b.kind), std::string_view(b.unit));
}

// Canonical order (oldest first), so an unchanged state serialises identically.
std::string FormatKeyLines(std::vector<KeyLine>& lines) {
  std::sort(lines.begin(), lines.end(), Older);
  std::string out;
  for (const auto& l : lines) {
    AppendLine(out, {l.when, l.unit, std::string_view(&l.kind, 1), l.json});
  }
  return out;
}

// The line that decides the key's state; null when there is none.
const KeyLine* Newest(const std::vector<KeyLine>& lines) {
  const KeyLine* best = nullptr;
  for (const auto& l : lines) {
    if (best == nullptr || Older(*best, l)) best = &l;
  }
  return best;
}

// What one unit told about one Encounter id: its versions, withdrawals included.
struct UnitEncounter {
  std::vector<VersionLine> versions;  // unit filled in by the writer
};

// Forwards to a BundleBuilder and remembers the origin of each Type/id (the later one wins, as
// in the builder), and the Encounter versions of the unit.
class TrackingOutput final : public mapping::OutputSink {
 public:
  TrackingOutput(mapping::BundleBuilder& bundle, std::unordered_map<std::string, Origin>& origins,
                 std::map<std::string, UnitEncounter>& encounters)
      : bundle_(bundle), origins_(origins), encounters_(encounters) {}
  void Put(const std::string& type, const std::string& id, Node resource) override {
    origins_[type + "/" + id] = current;
    bundle_.Put(type, id, std::move(resource));
  }
  void Delete(const std::string& type, const std::string& id) override {
    origins_[type + "/" + id] = current;
    bundle_.Delete(type, id);
  }
  void EncounterVersion(const std::string& id, const mapping::EncounterVersionInfo& info,
                        const Node* resource) override {
    origins_.try_emplace("Encounter/" + id, current);
    encounters_[id].versions.push_back(
        {std::string(info.when), OneField(slot_prefix + std::string(info.slot)), std::string(),
         OneField(Tag(info, resource == nullptr)),
         resource != nullptr ? fhir::WriteJson(*resource) : std::string()});
  }
  void MessageTime(std::string_view when) override { current.when = when; }
  void MessagePatient(std::string_view pid3) override {
    current.patient = FolderOfId(pid3);
    if (!current.patient.empty()) patients.insert(current.patient);
  }
  Origin current;
  std::set<std::string> patients;  // the patient folders of every message converted
  std::string slot_prefix;         // "ssmix2:" or "file:<unit key>#"

 private:
  mapping::BundleBuilder& bundle_;
  std::unordered_map<std::string, Origin>& origins_;
  std::map<std::string, UnitEncounter>& encounters_;
};

// One unit of work: an SS-MIX2 patient folder (records) or an HL7 v2 file.
struct Unit {
  std::string source;  // checkpoint source ("ssmix2:<absolute root>" or "file")
  std::string key;     // checkpoint unit
  // The SS-MIX2 patient folders ("ID[0:3]/ID[3:6]/ID") the unit's messages belong to: a folder
  // unit's own, an SS-MIX2 file's, an HL7 v2 file's by PID-3 (set by the worker): where the
  // writer looks for other units that wrote the same keys.
  std::vector<std::string> patients;
  std::string fingerprint;
  std::vector<ssmix2::StorageRecord> records;
  fs::path file;              // an HL7 v2 file (records empty)
  std::string file_location;  // Location.source for it
  bool skip = false;          // already imported with this fingerprint: only counted
  double progress = 0.0;      // fraction of the walk when the unit was read
  std::vector<Issue> issues;  // reported while reading and converting, in order
};

// Appends to a vector of issues (a unit's, kept in order: the writer forwards them unit by unit,
// so the issue order does not depend on the number of jobs). Null target: dropped.
class VectorSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    if (target != nullptr) target->push_back(std::move(issue));
  }
  std::vector<Issue>* target = nullptr;
};

// A patient folder named by the walk, then read (ImportStore).
struct Scanned {
  Unit unit;
  ssmix2::StorageReader::PatientFolder folder;
  ErrorCode error;  // the folder could not be read
};

// One write of a converted unit, prepared by a worker.
struct Write {
  std::string type;
  std::string id;
  std::optional<gateway::PreparedResource> resource;  // empty: DELETE
  // The JSON of a PUT: an Encounter's (the unit's own merge) is compared with the merge across
  // runs; another's is kept as the unit's line of a key other units wrote too (kDeletes).
  std::string json;
  std::string when;  // merge time (not for Encounters): kept in the unit list and kDeletes lines
  // An HL7 v2 file unit's: the patient folder of the message that gave it (kFileLists).
  std::string patient;
};

struct Converted {
  Unit unit;
  std::vector<Write> writes;
  std::map<std::string, UnitEncounter> encounters;  // by Encounter id
  mapping::ConvertStats stats;
  std::size_t rejected = 0;
};

// A bounded hand-off in input order: the producer numbers units, workers finish them in any
// order, the writer receives them strictly in number order; at most `capacity` units are between
// producer and writer, which bounds memory.
using Pipeline = OrderedPipeline<Unit, Converted>;  // ordered_pipeline.hpp

std::string FirstProblem(const std::vector<Issue>& issues) {
  for (const Issue& issue : issues) {
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
      return std::string(issue.code) + ": " + issue.message;  // validator messages hold no values
    }
  }
  return "no reason given";
}

// The patient folders a unit's list names ("Type/id \t when \t folder" lines): every one of an
// HL7 v2 file unit's (it has kFileLists rows of them when there are more than one), the other
// patients of an SS-MIX2 folder unit whose messages name them (where it is registered).
std::set<std::string> ListedPatients(const std::string& listed) {
  std::set<std::string> out;
  ForEachLine(listed, [&](std::string_view line) {
    const std::size_t a = line.find('\t');
    const std::size_t b = a == std::string_view::npos ? a : line.find('\t', a + 1);
    if (b != std::string_view::npos) out.emplace(line.substr(b + 1));
    return true;
  });
  return out;
}

// "Type/id" lines, or "Type/id \t when" (ReadUnitResources; an HL7 v2 file unit's, and a folder
// unit's of a message naming another patient: "Type/id \t when \t patient folder") -> (type, id)
// pairs.
std::vector<std::pair<std::string, std::string>> SplitKeys(const std::string& listed) {
  std::vector<std::pair<std::string, std::string>> out;
  ForEachLine(listed, [&](std::string_view line) {
    line = line.substr(0, line.find('\t'));
    const std::size_t slash = line.find('/');
    if (slash != std::string_view::npos) {
      out.emplace_back(std::string(line.substr(0, slash)), std::string(line.substr(slash + 1)));
    }
    return true;
  });
  return out;
}

}  // namespace

struct Importer::Impl {
  const gateway::Handler& handler;
  gateway::store::Store& store;
  const mapping::RuleSet& rules;
  ImportOptions options;
  IssueSink& issues;
  ProgressLine progress;
  ImportStats stats;
  const std::set<std::string> shared;  // SharedResourceTypes(rules)
  std::size_t jobs;

  // The keys with kDeletes lines (KeyHash), loaded once, then kept by the writer.
  KeySet tracked;
  bool tracked_loaded = false;
  KeySet file_patients;  // kPatients (TextHash of the patient folder)
  // Another SS-MIX2 root than the one being imported is in the database (kSources; set when an
  // import starts): only then are other roots' units of a patient folder looked up (FindPeers).
  bool other_roots = false;

  // The writer's session and open transaction.
  std::unique_ptr<gateway::store::Session> session;
  bool open = false;
  std::size_t pending_resources = 0;
  struct PendingUnit {
    std::string source, key, fingerprint;
  };
  std::vector<PendingUnit> pending_units;

  Impl(const gateway::Handler& h, gateway::store::Store& s, const mapping::RuleSet& r,
       ImportOptions o, IssueSink& i)
      : handler(h),
        store(s),
        rules(r),
        options(std::move(o)),
        issues(i),
        progress(options.progress, "kakehashi " + options.label),
        shared(SharedResourceTypes(r)),
        jobs(options.jobs > 0 ? options.jobs : std::max(1U, std::thread::hardware_concurrency())) {
    stats.jobs = jobs;
  }

  Result<gateway::store::Session*> Session() {
    if (!session) {
      // The store's own session: a handler's read cache (if any) holds nothing yet while
      // `import` and `serve --load` write, and the checkpoint calls need the store itself.
      KAKEHASHI_TRY(auto opened, store.OpenSession());
      session = std::move(opened);
    }
    return session.get();
  }

  // The checkpoints of the root being imported (unit -> fingerprint): read once when its import
  // starts, for the walk's skip test and the vanished units; other sources are only read point by
  // point (ReadCheckpoint, CheckpointSources), so memory does not grow with the number of roots
  // or file units imported before.
  using CheckpointMap = std::unordered_map<std::string, std::string>;
  Result<CheckpointMap> Checkpoints(const std::string& source) {
    CheckpointMap map;
    KAKEHASHI_TRY_VOID(ForEachCheckpoint(source, [&](std::string& unit, std::string& fingerprint) {
      map.emplace(std::move(unit), std::move(fingerprint));
    }));
    return map;
  }

  // Calls fn(unit, fingerprint) for every checkpoint of `source`, read a page at a time
  // (ReadCheckpointsAfter), so that a source of millions of rows (kDeletes: one per tracked key)
  // is never held whole as query rows: memory beyond what fn keeps is one page.
  static constexpr std::size_t kCheckpointPage = 4096;
  template <class Fn>
  Result<void> ForEachCheckpoint(std::string_view source, Fn&& fn) {
    KAKEHASHI_TRY(auto s, Session());
    std::string after;
    while (true) {
      KAKEHASHI_TRY(auto page, s->ReadCheckpointsAfter(source, after, kCheckpointPage));
      if (page.empty()) return {};
      after = page.back().first;
      const bool last = page.size() < kCheckpointPage;
      for (auto& [unit, fingerprint] : page) fn(unit, fingerprint);
      if (last) return {};
    }
  }

  // Whether the database holds another SS-MIX2 root than `source` ("" for a file unit):
  // counted, not listed.
  Result<void> CountOtherRoots(const std::string& source) {
    KAKEHASHI_TRY(auto s, Session());
    KAKEHASHI_TRY(std::size_t roots, s->CountCheckpoints(kSources));
    bool self = false;
    if (!source.empty()) {
      KAKEHASHI_TRY(auto row, s->ReadCheckpoint(kSources, source));
      self = row.has_value();
    }
    other_roots = roots > (self ? 1U : 0U);
    return {};
  }

  Result<void> LoadTracked() {
    if (tracked_loaded) return {};
    KAKEHASHI_TRY_VOID(ForEachCheckpoint(kDeletes, [&](const std::string& key, const std::string&) {
      const std::size_t slash = key.find('/');
      if (slash == std::string::npos) return;
      tracked.insert(
          KeyHash(std::string_view(key).substr(0, slash), std::string_view(key).substr(slash + 1)));
    }));
    KAKEHASHI_TRY_VOID(
        ForEachCheckpoint(kPatients, [&](const std::string& patient, const std::string&) {
          file_patients.insert(TextHash(patient));
        }));
    tracked_loaded = true;
    return {};
  }

  std::string WithSettings(const std::string& fingerprint) const {
    Fingerprint with_settings;
    with_settings.Add(fingerprint);
    with_settings.Add(options.settings);
    with_settings.Add(kStateFormat);
    return with_settings.Hex();
  }

  // The units that share a patient folder with the unit being stored (the same folder in another
  // SS-MIX2 root, a unit registered under it: a file unit, a folder whose messages name another
  // patient), and the keys their lists hold, read when first needed: for a root's unit its list,
  // for a file unit only its lines of that patient folder (kFileLists).
  struct Candidate {
    std::string source, key;  // the unit's checkpoint
    std::string patient;      // the patient folder it was found under
    bool operator<(const Candidate& o) const {
      return std::tie(source, key, patient) < std::tie(o.source, o.key, o.patient);
    }
    bool operator==(const Candidate& o) const = default;
  };
  struct Peers {
    std::string unit_id;  // UnitId of the unit itself
    std::vector<Candidate> candidates;
    bool loaded = false;
    std::vector<std::pair<std::string, std::string>> units;  // (source, key) of the candidates
    // "Type/id" -> the units (index into `units`) whose list holds it, with its merge time ("":
    // none): one lookup per key, whatever the number of units.
    std::unordered_map<std::string, std::vector<std::pair<std::size_t, std::string>>> listed;
    bool Shared() const { return !candidates.empty(); }
  };

  // ------------------------------------------------------------------ workers (thread-safe)

  // Converts `unit` and prepares its writes. Issues go to the unit; a file whose conversion
  // reported an error is kept in the reject directory, as is the source of a refused resource.
  // Every PUT keeps its JSON (moved, not copied): the writer needs it for a key other units
  // wrote too (kDeletes lines); it lives only while the unit is in flight.
  Converted Work(Unit unit, mapping::Converter& converter) const {
    // What the unit yields must not depend on the units this worker converted before.
    converter.ForgetEncounterVersions();
    Converted out;
    VectorSink sink;
    sink.target = &unit.issues;
    mapping::BundleBuilder bundle;  // one entry per Type/id within the unit (later wins)
    std::unordered_map<std::string, Origin> origins;
    TrackingOutput tracking(bundle, origins, out.encounters);
    // SS-MIX2 record keys name the same record in any root; an HL7 v2 message is its file's.
    tracking.slot_prefix = unit.records.empty() ? "file:" + unit.key + "#" : "ssmix2:";
    auto one = [&](const Origin& origin, auto&& run) {
      tracking.current = origin;
      if (options.reject_dir.empty()) {
        run(sink);
        return;
      }
      RejectStore rejects(options.reject_dir, sink);
      ErrorCounter counter(rejects);
      run(counter);
      if (counter.errors > 0) {
        Location at;
        at.source = origin.source;
        if (auto bytes = ReadBytes(origin.path)) (void)rejects.Reject(*bytes, at);
      }
    };
    if (!unit.records.empty()) {
      for (const auto& record : unit.records) {
        one(Origin{record.file.path, record.file.Source(), {}, {}},
            [&](IssueSink& s) { converter.ConvertRecord(record, tracking, s); });
      }
    } else {
      one(Origin{unit.file, unit.file_location, {}, {}}, [&](IssueSink& s) {
        auto bytes = ReadBytes(unit.file);
        Location at;
        at.source = unit.file_location;
        if (!bytes) {
          s.Error("import.unusable_input", at, "the file cannot be read");
          return;
        }
        if (!LooksLikeHl7(*bytes)) {
          s.Error("import.unusable_input", at, "not HL7 v2 (no MSH segment found)");
          return;
        }
        converter.ConvertHl7(*bytes, unit.file_location, tracking, s);
      });
    }
    out.stats = converter.TakeStats();
    // Where the writer looks for the other units writing the same keys: besides the unit's own
    // folder, the patient folder of each message's PID-3.1 (patient-scoped ids derive from it).
    for (const std::string& patient : tracking.patients) {
      if (std::find(unit.patients.begin(), unit.patients.end(), patient) == unit.patients.end()) {
        unit.patients.push_back(patient);
      }
    }
    std::string json;
    // The merge time of a write (the message that gave it; the later one in the unit wins) and
    // that message's patient folder: for an HL7 v2 file always, for an SS-MIX2 folder when it is
    // not the folder's own (a message naming another patient: the unit is registered under it).
    const bool per_message = unit.records.empty();
    auto when = [&](Write& w) {
      auto it = origins.find(w.type + "/" + w.id);
      if (it == origins.end()) return std::string();
      if (per_message || it->second.patient != unit.key) w.patient = it->second.patient;
      return it->second.when;
    };
    for (auto& e : bundle.TakeEntries()) {
      Write w;
      w.type = e.type;
      w.id = e.id;
      if (e.method == mapping::BundleEntry::Method::kDelete) {
        if (w.type != "Encounter") w.when = when(w);
        out.writes.push_back(std::move(w));
        continue;
      }
      json.clear();
      fhir::WriteJson(e.resource, json);
      std::vector<Issue> found;
      VectorSink found_sink;
      found_sink.target = &found;
      w.resource = handler.PrepareWrite(e.type, e.id, json, found_sink);
      if (w.resource) {
        if (w.type != "Encounter") w.when = when(w);  // kept in the unit's list
        w.json = std::move(json);
        json.clear();
        out.writes.push_back(std::move(w));
        continue;
      }
      // Refused: the validator's findings with this resource's location, then import.rejected.
      ++out.rejected;
      Location at;
      at.record = e.type + "/" + e.id;
      const Origin* origin = nullptr;
      if (auto it = origins.find(at.record); it != origins.end()) origin = &it->second;
      at.source = origin != nullptr ? origin->source : unit.file_location;
      const std::string reason = FirstProblem(found);
      std::optional<RejectStore> rejects;
      if (!options.reject_dir.empty() && origin != nullptr) {
        rejects.emplace(options.reject_dir, sink);
      }
      IssueSink& to = rejects ? static_cast<IssueSink&>(*rejects) : sink;
      for (Issue& issue : found) {
        if (issue.where.source.empty()) issue.where.source = at.source;
        if (issue.where.record.empty()) issue.where.record = at.record;
        to.Report(std::move(issue));
      }
      to.Error("import.rejected", at,
               "the gateway refused this converted resource (first problem: " + reason + "); " +
                   (rejects ? "its source file is kept in the reject directory for replay"
                            : "check it with `kakehashi convert` and `kakehashi validate`"));
      if (rejects) {
        if (auto bytes = ReadBytes(origin->path)) (void)rejects->Reject(*bytes, at);
      }
    }
    out.unit = std::move(unit);
    return out;
  }

  // ------------------------------------------------------------------ the writer

  Result<void> Begin() {
    if (open) return {};
    KAKEHASHI_TRY(auto s, Session());
    KAKEHASHI_TRY_VOID(s->Begin());
    open = true;
    return {};
  }

  Result<void> Commit() {
    if (!open) return {};
    open = false;
    KAKEHASHI_TRY_VOID(session->Commit());
    stats.units += pending_units.size();
    ++stats.transactions;
    pending_units.clear();
    pending_resources = 0;
    return {};
  }

  void Rollback() {
    if (!open) return;
    open = false;
    session->Rollback();
    pending_units.clear();
    pending_resources = 0;
  }

  Result<void> Delete(const std::string& type, const std::string& id) {
    KAKEHASHI_TRY(auto outcome, handler.WriteDelete(*session, type, id));
    if (outcome == gateway::WriteOutcome::kDeleted) ++stats.deleted_by_type[type];
    return {};
  }

  Result<void> WriteOne(gateway::PreparedResource resource) {
    const std::string type = resource.Type();
    KAKEHASHI_TRY(auto outcome, handler.WritePrepared(*session, std::move(resource)));
    if (outcome == gateway::WriteOutcome::kUnchanged) {
      ++stats.unchanged;
    } else {
      ++stats.put_by_type[type];
    }
    return {};
  }

  // ------------------------------------------------ Encounters across runs (see
  // kEncounterVersions)

  static std::string UnitId(const std::string& source, const std::string& key) {
    return OneField(source + "|" + key);
  }

  // The JSON of the merge of the versions that count; empty when no live version is left (every
  // key that fed the stay deleted) or none can be read back.
  static std::string MergedJson(const std::vector<VersionLine>& lines) {
    std::vector<Node> parsed;
    std::vector<const VersionLine*> used;
    for (const VersionLine* l : Effective(lines)) {
      if (auto node = fhir::ParseJson(l->json)) {
        parsed.push_back(std::move(*node));
        used.push_back(l);
      }
    }
    std::vector<mapping::VersionToMerge> in_order;
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      const std::string& tag = used[i]->tag;
      mapping::VersionToMerge v;
      v.resource = &parsed[i];
      v.trigger = std::string_view(tag).substr(1);
      v.by_trigger = tag.starts_with('M');
      v.live = !tag.starts_with('D');
      in_order.push_back(v);
    }
    auto merged = mapping::MergeEncounterVersions(in_order);
    return merged ? fhir::WriteJson(*merged) : std::string();
  }

  // Writes the state of Encounter `id` when it changed (`lines` empty: removed).
  Result<void> SaveVersions(const std::string& id, const std::string& stored,
                            std::vector<VersionLine>& lines) {
    if (lines.empty()) {
      if (stored.empty()) return {};
      return session->DeleteCheckpoint(kEncounterVersions, id);
    }
    const std::string text = FormatVersions(lines);
    if (text == stored) return {};
    return session->WriteUnitResources(kEncounterVersions, id, text);
  }

  // Prepares a merged Encounter in the writer; a refusal is reported like the workers' (the
  // validator's issues, then import.rejected) and leaves the stored version as it is.
  std::optional<gateway::PreparedResource> PrepareMerged(const std::string& id,
                                                         const std::string& json,
                                                         const std::string& source) {
    return PrepareKept("Encounter", id, json, source,
                       "the gateway refused the Encounter merged from this and earlier imports");
  }

  // Prepares, in the writer, a resource from what the importer kept (a merged Encounter, a
  // tracked key's line); a refusal is reported like the workers' and leaves the stored version.
  std::optional<gateway::PreparedResource> PrepareKept(const std::string& type,
                                                       const std::string& id,
                                                       const std::string& json,
                                                       const std::string& source,
                                                       const std::string& what) {
    std::vector<Issue> found;
    VectorSink found_sink;
    found_sink.target = &found;
    auto prepared = handler.PrepareWrite(type, id, json, found_sink);
    if (prepared) return prepared;
    ++stats.rejected;
    Location at;
    at.source = source;
    at.record = type + "/" + id;
    const std::string reason = FirstProblem(found);
    for (Issue& issue : found) {
      if (issue.where.source.empty()) issue.where.source = at.source;
      if (issue.where.record.empty()) issue.where.record = at.record;
      issues.Report(std::move(issue));
    }
    issues.Error("import.rejected", at,
                 what + " (first problem: " + reason + "); its stored version is left as it was");
    return std::nullopt;
  }

  enum class EncounterWrite { kPut, kDelete, kNothing };

  // Records what unit `unit_id` told about Encounter `w.id` (its versions, withdrawals included,
  // replace its earlier lines) and decides what to write: when every line is the unit's own, the
  // unit's own result (`unit_wrote`: w.resource is its PUT, empty its DELETE; else nothing, as
  // for a deleted discharge key of a stay the unit holds no live message of); otherwise the
  // merge of the lines of every unit (w.resource replaced), or a DELETE when no live line is
  // left. kNothing also when that merge was refused (reported; the stored version is left).
  Result<EncounterWrite> MergeAcrossRuns(Converted& c, const std::string& unit_id, Write& w,
                                         bool unit_wrote) {
    KAKEHASHI_TRY(std::string stored, session->ReadUnitResources(kEncounterVersions, w.id));
    std::vector<VersionLine> lines = ParseVersions(stored);
    std::erase_if(lines, [&](const VersionLine& l) { return l.unit == unit_id; });
    UnitEncounter* mine = nullptr;
    if (auto it = c.encounters.find(w.id); it != c.encounters.end()) mine = &it->second;
    if (mine != nullptr && !mine->versions.empty()) {
      for (VersionLine& v : mine->versions) {
        v.unit = unit_id;
        lines.push_back(std::move(v));
      }
      mine->versions.clear();
    } else if (unit_wrote && w.resource) {
      // A PUT the converter gave no version of: the resource itself is the unit's version.
      lines.push_back({std::string(), OneField("put:" + unit_id), unit_id, "K", w.json});
    }
    KAKEHASHI_TRY_VOID(SaveVersions(w.id, stored, lines));
    const EncounterWrite own = !unit_wrote  ? EncounterWrite::kNothing
                               : w.resource ? EncounterWrite::kPut
                                            : EncounterWrite::kDelete;
    const bool only_mine = std::all_of(lines.begin(), lines.end(),
                                       [&](const VersionLine& l) { return l.unit == unit_id; });
    if (only_mine) return own;  // the unit's own merge is the merge of all (one-go import)
    const std::string merged = MergedJson(lines);
    if (merged.empty()) return EncounterWrite::kDelete;
    if (own == EncounterWrite::kPut && merged == w.json) return own;
    auto prepared = PrepareMerged(w.id, merged, c.unit.file_location);
    if (!prepared) return EncounterWrite::kNothing;
    w.resource = std::move(prepared);
    return EncounterWrite::kPut;
  }

  // The unit of `p` no longer yields `type`/`id` (a record or folder removed): deleted, except an
  // Encounter that other units gave live versions of, which is merged from theirs (their
  // withdrawals are kept: a deletion stays remembered), and a key other units yield (Release).
  Result<void> Withdraw(Peers& p, const std::string& type, const std::string& id,
                        const std::string& source) {
    if (type != "Encounter") return Release(p, type, id, source);
    const std::string& unit_id = p.unit_id;
    KAKEHASHI_TRY(std::string stored, session->ReadUnitResources(kEncounterVersions, id));
    std::vector<VersionLine> lines = ParseVersions(stored);
    std::erase_if(lines, [&](const VersionLine& l) { return l.unit == unit_id; });
    const std::string merged = lines.empty() ? std::string() : MergedJson(lines);
    KAKEHASHI_TRY_VOID(SaveVersions(id, stored, lines));
    if (merged.empty()) return Delete(type, id);
    auto prepared = PrepareMerged(id, merged, source);
    if (!prepared) return {};
    return WriteOne(std::move(*prepared));
  }

  // ------------------------------------------------ keys across runs (see kDeletes)

  // Per patient folder one indexed read of the roots holding it (CheckpointSources) when the
  // database holds another root (or the folder is not the unit's own: a message naming another
  // patient), and one read of its kPatients row when a unit registered under it (in memory: the
  // kPatients hashes): a unit of one root alone gets no candidate and costs nothing more, and
  // nothing is held per root imported before.
  Result<Peers> FindPeers(const Unit& unit) {
    Peers p;
    p.unit_id = UnitId(unit.source, unit.key);
    auto self = [&](const std::string& source, const std::string& key) {
      return source == unit.source && key == unit.key;
    };
    for (const std::string& patient : unit.patients) {
      if (other_roots || (unit.source != "file" && patient != unit.key)) {
        KAKEHASHI_TRY(auto holders, session->CheckpointSources(patient));
        stats.peer_checkpoint_rows += holders.size();
        for (std::string& root : holders) {
          // The SS-MIX2 roots' sources ("ssmix2:<root>"); kPatients is read below.
          if (root.starts_with("ssmix2:") && !self(root, patient)) {
            p.candidates.push_back({std::move(root), patient, patient});
          }
        }
      }
      if (!file_patients.contains(TextHash(patient))) continue;
      KAKEHASHI_TRY(std::string registered, session->ReadUnitResources(kPatients, patient));
      ForEachLine(registered, [&](std::string_view line) {
        auto [source, key] = RegisteredUnit(line);
        if (!self(source, key))
          p.candidates.push_back({std::move(source), std::move(key), patient});
        return true;
      });
    }
    std::sort(p.candidates.begin(), p.candidates.end());
    p.candidates.erase(std::unique(p.candidates.begin(), p.candidates.end()), p.candidates.end());
    return p;
  }

  // Reads the candidates' lists into p.listed: a root's unit's list; of a file unit, its lines of
  // the patient folder it was found under (kFileLists), or its whole list when it has none there
  // (imported before session 8, or no resource of that patient).
  Result<void> LoadPeers(Peers& p) {
    if (p.loaded) return {};
    p.loaded = true;
    bool whole = false;  // the current unit's whole list was read
    for (const Candidate& c : p.candidates) {
      if (p.units.empty() || p.units.back() != std::pair(c.source, c.key)) {
        p.units.emplace_back(c.source, c.key);
        whole = false;
      } else if (whole) {
        continue;
      }
      const std::size_t index = p.units.size() - 1;
      std::string listed;
      if (c.source == "file") {
        KAKEHASHI_TRY(listed,
                      session->ReadUnitResources(kFileLists, FileListUnit(c.patient, c.key)));
      }
      if (listed.empty()) {
        KAKEHASHI_TRY(listed, session->ReadUnitResources(c.source, c.key));
        whole = true;
      }
      ForEachLine(listed, [&](std::string_view line) {
        ++stats.peer_list_lines;
        const std::size_t tab = line.find('\t');
        std::string_view when;
        if (tab != std::string_view::npos) {
          when = line.substr(tab + 1);
          when = when.substr(0, when.find('\t'));
        }
        auto& units = p.listed[std::string(line.substr(0, tab))];
        // A key once per unit (a file unit's whole list after its lines of one folder).
        if (units.empty() || units.back().first != index) units.emplace_back(index, when);
        return true;
      });
    }
    return {};
  }

  // The units sharing a patient folder whose lists hold `key` ("Type/id"); null when none.
  Result<const std::vector<std::pair<std::size_t, std::string>>*> ListedBy(Peers& p,
                                                                           const std::string& key) {
    using Found = const std::vector<std::pair<std::size_t, std::string>>*;
    if (!p.Shared()) return Found{nullptr};
    KAKEHASHI_TRY_VOID(LoadPeers(p));
    ++stats.peer_lookups;
    auto it = p.listed.find(key);
    if (it == p.listed.end()) return Found{nullptr};
    return Found{&it->second};
  }

  // How many units sharing a patient folder list `key` ("Type/id").
  Result<std::size_t> ListedElsewhere(Peers& p, const std::string& key) {
    KAKEHASHI_TRY(auto found, ListedBy(p, key));
    return found != nullptr ? found->size() : std::size_t{0};
  }

  // A unit is registered (kPatients) under the patient folders it writes resources of that are
  // not its own folder — every one of a file unit's; of a folder unit, those its messages' PID-3.1
  // name when it differs from the folder — so that the units of those folders find it
  // (FindPeers).
  Result<void> RegisterPatients(const Unit& unit) {
    const std::string line = RegisteredLine(unit.source, unit.key);
    for (const std::string& patient : unit.patients) {
      if (unit.source != "file" && patient == unit.key) continue;
      KAKEHASHI_TRY(std::string files, session->ReadUnitResources(kPatients, patient));
      bool known = false;
      ForEachLine(files, [&](std::string_view file) {
        known = file == line;
        return !known;
      });
      if (known) continue;
      if (files.empty()) KAKEHASHI_TRY_VOID(session->WriteCheckpoint(kPatients, patient, ""));
      AppendLine(files, {line});
      KAKEHASHI_TRY_VOID(session->WriteUnitResources(kPatients, patient, files));
      file_patients.insert(TextHash(patient));
    }
    return {};
  }

  // A unit's line in kPatients rows: a file unit's key, a folder unit's source and key.
  static std::string RegisteredLine(const std::string& source, const std::string& key) {
    return source == "file" ? EncodeLine(key) : EncodeLine(source) + "\t" + EncodeLine(key);
  }

  // Removes the unit's line from the kPatients row of `patient` (a patient it no longer holds
  // messages of; its folder's units would otherwise read the unit's list for nothing).
  Result<void> Unregister(const std::string& source, const std::string& key,
                          const std::string& patient) {
    KAKEHASHI_TRY(std::string files, session->ReadUnitResources(kPatients, patient));
    const std::string mine = RegisteredLine(source, key);
    std::string kept;
    bool found = false;
    ForEachLine(files, [&](std::string_view line) {
      if (line == mine) {
        found = true;
      } else {
        AppendLine(kept, {line});
      }
      return true;
    });
    if (!found) return {};
    if (kept.empty()) return session->DeleteCheckpoint(kPatients, patient);
    return session->WriteUnitResources(kPatients, patient, kept);
  }

  bool IsTracked(const std::string& type, const std::string& id) const {
    return !tracked.empty() && tracked.contains(KeyHash(type, id));
  }

  // Writes the state the newest line gives (D: deleted; P/L: its JSON; a P line whose content is
  // not known leaves the stored version).
  Result<void> Apply(const std::string& type, const std::string& id, const KeyLine& newest,
                     const std::string& source) {
    if (newest.kind == 'D') return Delete(type, id);
    if (newest.json.empty()) return {};
    auto prepared = PrepareKept(type, id, newest.json, source,
                                "the gateway refused the resource kept from an earlier import");
    if (!prepared) return {};
    return WriteOne(std::move(*prepared));
  }

  // Saves the lines of `key` (none left: removed with its checkpoint row).
  Result<void> SaveKeyLines(const std::string& key, const std::string& stored,
                            std::vector<KeyLine>& lines) {
    if (lines.empty()) {
      if (stored.empty()) return {};
      return session->DeleteCheckpoint(kDeletes, key);
    }
    const std::string text = FormatKeyLines(lines);
    if (text == stored) return {};
    if (stored.empty()) KAKEHASHI_TRY_VOID(session->WriteCheckpoint(kDeletes, key, ""));
    return session->WriteUnitResources(kDeletes, key, text);
  }

  // Unit `unit_id` no longer has a line of `key`'s (its own, or the L line when it listed the
  // key without one: it wrote that content before the key was tracked).
  static void DropUnit(std::vector<KeyLine>& lines, const std::string& unit_id, bool listed) {
    const auto mine = std::erase_if(lines, [&](const KeyLine& l) { return l.unit == unit_id; });
    if (mine == 0 && listed) std::erase_if(lines, [](const KeyLine& l) { return l.kind == 'L'; });
  }

  // The first lines of `key` (it has none): the units sharing a patient folder whose lists hold
  // it (they wrote it before) get a P line each, with the time listed and the stored content —
  // none when the unit being stored lists the key too (`listed`: which of them wrote the stored
  // version is not known, which happens only in a database written before 0020; that unit's next
  // import gives its line the content). Found none, the stored content becomes the L line when
  // `unknown_writer` (a delete: it comes back if the delete is released). Returns the number of
  // other units' lines added.
  Result<std::size_t> Seed(Peers& p, const std::string& type, const std::string& id,
                           const std::string& key, bool listed, bool unknown_writer,
                           std::vector<KeyLine>& lines) {
    KAKEHASHI_TRY(auto row, session->Read(type, id));
    if (!row || row->deleted) return std::size_t{0};
    std::size_t found = 0;
    KAKEHASHI_TRY(auto others, ListedBy(p, key));
    if (others != nullptr) {
      for (const auto& [index, when] : *others) {
        const auto& [source, unit] = p.units[index];
        lines.push_back({when, UnitId(source, unit), 'P', listed ? std::string() : row->json});
        ++found;
      }
    }
    if (found == 0 && !listed && unknown_writer) {
      lines.push_back({std::string(), std::string(), 'L', row->json});
    }
    return found;
  }

  // A DELETE of `w`, a PUT of a tracked key, or a PUT of a key a unit sharing a patient folder
  // lists, by the unit of `p` (`listed`: in the unit's list from its last import): the unit's line
  // replaces its earlier ones and the newest line is written.
  Result<void> WriteTracked(Peers& p, const std::string& source, Write& w, bool listed) {
    const std::string key = w.type + "/" + w.id;
    const bool is_delete = !w.resource;
    KAKEHASHI_TRY(std::string stored, session->ReadUnitResources(kDeletes, key));
    std::vector<KeyLine> lines = ParseKeyLines(stored);
    DropUnit(lines, p.unit_id, listed);
    if (stored.empty()) {
      KAKEHASHI_TRY(std::size_t others, Seed(p, w.type, w.id, key, listed, is_delete, lines));
      // A PUT of a key no other unit wrote (a hash collision, lines released): as untracked.
      if (!is_delete && others == 0) return WriteOne(std::move(*w.resource));
    }
    lines.push_back({w.when, p.unit_id, is_delete ? 'D' : 'P', is_delete ? std::string() : w.json});
    const KeyLine newest = *Newest(lines);
    KAKEHASHI_TRY_VOID(SaveKeyLines(key, stored, lines));
    tracked.insert(KeyHash(w.type, w.id));
    if (newest.unit != p.unit_id) return Apply(w.type, w.id, newest, source);
    if (is_delete) return Delete(w.type, w.id);
    return WriteOne(std::move(*w.resource));
  }

  // The unit of `p` no longer yields `type`/`id` (its record or folder removed): deleted, unless
  // other units tell about the key: then the newest of their lines decides (a delete or a newer
  // version released: the resource comes back from the unit that still yields it).
  Result<void> Release(Peers& p, const std::string& type, const std::string& id,
                       const std::string& source) {
    const std::string key = type + "/" + id;
    if (!IsTracked(type, id)) {
      KAKEHASHI_TRY(std::size_t elsewhere, ListedElsewhere(p, key));
      if (elsewhere == 0) return Delete(type, id);
    }
    KAKEHASHI_TRY(std::string stored, session->ReadUnitResources(kDeletes, key));
    std::vector<KeyLine> lines = ParseKeyLines(stored);
    if (stored.empty()) {
      // Another unit lists it but the key has no lines (a database written before 0020): that
      // unit's content is not known; the stored version stays until it is imported again.
      KAKEHASHI_TRY(std::size_t others, Seed(p, type, id, key, true, false, lines));
      if (others == 0) return Delete(type, id);
    } else {
      DropUnit(lines, p.unit_id, true);
    }
    KAKEHASHI_TRY_VOID(SaveKeyLines(key, stored, lines));
    tracked.insert(KeyHash(type, id));
    if (lines.empty()) return Delete(type, id);
    return Apply(type, id, *Newest(lines), source);
  }

  // Stores a converted unit in the open transaction (opening one), with its checkpoint and
  // resource list; deletes what the unit wrote last time and no longer yields (unless another
  // unit yields it). Commits when the transaction is full.
  Result<void> Store(Converted& c, bool imported_before) {
    for (Issue& issue : c.unit.issues) issues.Report(std::move(issue));
    c.unit.issues.clear();
    stats.files += c.stats.files;
    stats.messages += c.stats.messages;
    stats.rejected += c.rejected;
    KAKEHASHI_TRY_VOID(Begin());
    std::set<std::pair<std::string, std::string>> before;
    // The patient folders its list named at its last import: a file unit's, a folder unit's
    // other patients (where it was registered).
    std::set<std::string> patients_before;
    const bool file_unit = c.unit.source == "file";
    if (imported_before) {
      KAKEHASHI_TRY(std::string listed, session->ReadUnitResources(c.unit.source, c.unit.key));
      for (auto& key : SplitKeys(listed)) before.insert(std::move(key));
      patients_before = ListedPatients(listed);
    }
    std::string now;  // the new list
    // An HL7 v2 file's lines per patient folder (kFileLists), kept when it spans several.
    std::map<std::string, std::string> by_patient;
    const std::string unit_id = UnitId(c.unit.source, c.unit.key);
    KAKEHASHI_TRY(Peers peers, FindPeers(c.unit));
    if (c.unit.source == "file" || c.unit.patients.size() > 1) {
      KAKEHASHI_TRY_VOID(RegisterPatients(c.unit));
    }
    auto list = [&](const Write& w) {
      const std::size_t from = now.size();
      now += w.type;
      now += '/';
      now += w.id;
      if (!w.when.empty() || !w.patient.empty()) {  // the merge time, for a later first delete
        now += '\t';
        now += w.when;
      }
      if (!w.patient.empty()) {
        if (file_unit) {
          std::string& mine = by_patient[w.patient];
          mine.append(now, from, std::string::npos);
          mine += '\n';
        }
        now += '\t';
        now += w.patient;
      }
      now += '\n';
    };
    // An Encounter: the merge across runs decides (MergeAcrossRuns); it stays in the unit's list
    // while the unit has lines of it (a withdrawal too), so that a later change of the unit
    // withdraws them.
    auto encounter = [&](Write& w, bool unit_wrote) -> Result<void> {
      KAKEHASHI_TRY(EncounterWrite what, MergeAcrossRuns(c, unit_id, w, unit_wrote));
      if (what == EncounterWrite::kDelete) KAKEHASHI_TRY_VOID(Delete(w.type, w.id));
      if (what == EncounterWrite::kPut) KAKEHASHI_TRY_VOID(WriteOne(std::move(*w.resource)));
      if (what == EncounterWrite::kPut || c.encounters.count(w.id) != 0) list(w);
      return {};
    };
    for (Write& w : c.writes) {
      const bool listed = before.erase({w.type, w.id}) != 0;
      if (w.type == "Encounter") {
        KAKEHASHI_TRY_VOID(encounter(w, true));
        c.encounters.erase(w.id);
        continue;
      }
      if (shared.count(w.type) != 0) {  // not tied to the unit: neither listed nor tracked
        KAKEHASHI_TRY_VOID(w.resource ? WriteOne(std::move(*w.resource)) : Delete(w.type, w.id));
        continue;
      }
      // A delete is recorded (kDeletes) and stays in the unit's list while the unit holds it, so
      // that a later change of the unit releases it; so is a PUT of a key another unit wrote.
      bool track = !w.resource || IsTracked(w.type, w.id);
      if (!track && peers.Shared()) {
        KAKEHASHI_TRY(std::size_t elsewhere, ListedElsewhere(peers, w.type + "/" + w.id));
        track = elsewhere != 0;
      }
      if (track) {
        KAKEHASHI_TRY_VOID(WriteTracked(peers, c.unit.file_location, w, listed));
      } else {
        KAKEHASHI_TRY_VOID(WriteOne(std::move(*w.resource)));
      }
      list(w);
    }
    // Encounters the unit gave versions of but wrote nothing for (a deleted key of a stay it holds
    // no live message of): recorded, and the merge of every unit's lines written.
    std::size_t extra = 0;
    for (const auto& told : c.encounters) {
      Write w;
      w.type = "Encounter";
      w.id = told.first;
      before.erase({w.type, w.id});
      KAKEHASHI_TRY_VOID(encounter(w, false));
      ++extra;
    }
    // Written last time, not yielded now (a record removed from the folder): deleted; an
    // Encounter that other units gave versions of is merged from theirs instead.
    for (const auto& [type, id] : before) {
      KAKEHASHI_TRY_VOID(Withdraw(peers, type, id, c.unit.file_location));
    }
    KAKEHASHI_TRY_VOID(session->WriteCheckpoint(c.unit.source, c.unit.key, c.unit.fingerprint));
    KAKEHASHI_TRY_VOID(session->WriteUnitResources(c.unit.source, c.unit.key, now));
    // A file of one patient needs no split (its list is that patient's lines: LoadPeers reads it).
    if (by_patient.size() < 2) by_patient.clear();
    for (const auto& [patient, lines] : by_patient) {
      KAKEHASHI_TRY_VOID(
          session->WriteUnitResources(kFileLists, FileListUnit(patient, c.unit.key), lines));
    }
    for (const std::string& patient : patients_before) {
      if (file_unit && patients_before.size() > 1 && by_patient.count(patient) == 0) {
        KAKEHASHI_TRY_VOID(
            session->DeleteCheckpoint(kFileLists, FileListUnit(patient, c.unit.key)));
      }
      // A patient the unit no longer holds messages of (a file rewritten, a misfiled message
      // corrected or removed from a folder): its registration goes (its folder's units would
      // otherwise read the unit's list for nothing).
      if (std::find(c.unit.patients.begin(), c.unit.patients.end(), patient) ==
          c.unit.patients.end()) {
        KAKEHASHI_TRY_VOID(Unregister(c.unit.source, c.unit.key, patient));
      }
    }
    pending_units.push_back({c.unit.source, c.unit.key, c.unit.fingerprint});
    pending_resources += c.writes.size() + extra + before.size() + 1;
    if (pending_resources >= options.chunk_resources) KAKEHASHI_TRY_VOID(Commit());
    return {};
  }

  bool ShouldStop() const {
    if (options.stop_after_units > 0 && stats.units >= options.stop_after_units) return true;
    return options.cancel != nullptr && *options.cancel != 0;
  }

  void ShowProgress(double fraction) {
    if (!progress.Due()) return;
    char counts[160];
    std::snprintf(counts, sizeof counts, "%zu units (%zu already done), %zu files",
                  stats.units + pending_units.size(), stats.skipped_units, stats.files);
    progress.Show(counts, stats.messages, fraction);
  }

  // Deletes the units of `source` that a completed walk did not see (patient folders removed
  // from the store): their resources, then their checkpoints.
  Result<void> RemoveVanished(const std::string& source, const std::string& label,
                              const CheckpointMap& checkpoints, const std::set<std::string>& seen) {
    std::vector<std::string> gone;
    for (const auto& [key, fingerprint] : checkpoints) {
      if (seen.count(key) == 0) gone.push_back(key);
    }
    if (gone.empty()) return {};
    if (seen.empty()) {
      Location at;
      at.source = source;
      issues.Warning("import.store_empty", at,
                     "the store holds no patient folder now, but " + std::to_string(gone.size()) +
                         " were imported from it before: nothing is deleted (is the root "
                         "mounted?)");
      return {};
    }
    std::sort(gone.begin(), gone.end());
    for (const std::string& key : gone) {
      KAKEHASHI_TRY_VOID(Begin());
      KAKEHASHI_TRY(std::string listed, session->ReadUnitResources(source, key));
      const auto keys = SplitKeys(listed);
      // A folder registered under other patients (its messages named them) leaves their rows.
      for (const std::string& patient : ListedPatients(listed)) {
        KAKEHASHI_TRY_VOID(Unregister(source, key, patient));
      }
      Unit vanished;
      vanished.source = source;
      vanished.key = key;
      vanished.patients = {key};
      KAKEHASHI_TRY(Peers peers, FindPeers(vanished));
      for (const auto& [type, id] : keys) {
        KAKEHASHI_TRY_VOID(Withdraw(peers, type, id, ssmix2::IssueSource(label, key)));
      }
      KAKEHASHI_TRY_VOID(session->DeleteCheckpoint(source, key));
      ++stats.removed_units;
      pending_resources += keys.size() + 1;
      if (pending_resources >= options.chunk_resources) KAKEHASHI_TRY_VOID(Commit());
    }
    return Commit();
  }

  Result<void> ImportStore(const fs::path& root, const std::string& label) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return make_error_code(common::errc::kNotFound);
    fs::path absolute = fs::weakly_canonical(fs::absolute(root, ec), ec);
    const std::string source = "ssmix2:" + absolute.generic_string();
    KAKEHASHI_TRY(CheckpointMap checkpoint_map, Checkpoints(source));
    const CheckpointMap* checkpoints = &checkpoint_map;  // read by the producer during the walk
    KAKEHASHI_TRY_VOID(LoadTracked());
    KAKEHASHI_TRY_VOID(CountOtherRoots(source));
    KAKEHASHI_TRY(auto registered, session->ReadCheckpoint(kSources, source));
    if (!registered) {
      KAKEHASHI_TRY_VOID(Begin());  // committed with the first units
      KAKEHASHI_TRY_VOID(session->WriteCheckpoint(kSources, source, ""));
    }
    // Producer: walks the store patient by patient; workers: convert and prepare; this thread
    // writes in walk order.
    Pipeline pipeline(4 * jobs + 4);
    Result<void> walked;
    bool walk_complete = false;
    // The reader outlives the workers: the records' StoredFile::root points into it.
    VectorSink reader_issues;  // the walk's own issues: the unit being named
    ssmix2::StorageReader reader(root, reader_issues);
    reader.UseIoUring(options.io_uring);
    // Several roots: issue locations name the root (decision 0017), as `convert` does.
    if (!label.empty()) reader.LabelRoot(label);
    std::thread producer([&] {
      // The walk names the patient folders (NextPatientFolder, one call at a time); a folder is
      // read (ReadPatient), its fingerprint taken, it is compared with its checkpoint and the
      // files of a unit to convert are read into memory (not those of a unit that is skipped)
      // through the reader's batch path (StorageReader::Load, docs/decisions/0021) by the
      // read-ahead's I/O threads (options.io_threads, docs/decisions/0018), else here. Either
      // way the units arrive in walk order with the same records and issues.
      // (`checkpoints` is only read during the walk: the writer does not change it.)
      // Under the read-ahead's producer lock. The walk's end and error count only once the units
      // before it have been taken (below), as in a serial walk.
      bool stop_walk = false, walk_ended = false;
      Result<void> walk_error;
      auto produce = [&](Scanned& next) {
        if (stop_walk) return false;
        reader_issues.target = &next.unit.issues;
        auto folder = reader.NextPatientFolder();
        reader_issues.target = nullptr;
        if (!folder) {
          walk_error = folder.error();
          return false;
        }
        if (!*folder) {
          walk_ended = true;
          return false;
        }
        next.folder = std::move(**folder);
        next.unit.progress = reader.Progress();
        return true;
      };
      auto read = [&](Scanned& next) {
        VectorSink sink;
        sink.target = &next.unit.issues;
        if (auto r = reader.ReadPatient(next.folder, next.unit.records, sink); !r) {
          next.error = r.error();
          return false;
        }
        Fingerprint print;
        for (const auto& record : next.unit.records) {
          print.AddFile(record.file.path, record.file.relative);
          for (const auto& old : record.superseded) print.AddFile(old.path, old.relative);
        }
        next.unit.fingerprint = WithSettings(print.Hex());
        if (next.unit.records.empty()) return true;
        next.unit.key = PatientKey(next.unit.records.front().file.relative);
        if (auto it = checkpoints->find(next.unit.key);
            it != checkpoints->end() && it->second == next.unit.fingerprint) {
          next.unit.skip = true;
          next.unit.records.clear();
        } else {
          // One batch per patient in inode order; a file left unread (unreadable, larger than
          // kPreloadMax) is read by the converter, which reports it if it cannot.
          reader.Load(next.unit.records);
        }
        return true;
      };
      std::optional<ReadAhead<Scanned>> ahead;
      if (options.io_threads > 0) {
        ahead.emplace(options.io_threads, 4 * options.io_threads, produce, read,
                      [&](Scanned&) { stop_walk = true; });  // a folder that cannot be read
      }
      std::vector<Issue> carried;  // of folders without records: go with the next unit
      while (true) {
        Scanned next;
        bool more = false;
        if (ahead) {
          more = ahead->Take(next);
        } else if (produce(next)) {
          more = true;
          (void)read(next);  // a failure is next.error
        }
        if (!more) {  // every unit taken: the walk's own end
          walked = walk_error;
          walk_complete = walk_ended;
          break;
        }
        if (next.error) {  // a folder that cannot be listed ends the walk (as NextPatient)
          walked = next.error;
          break;
        }
        if (next.unit.records.empty() && !next.unit.skip) {  // no record: not a unit
          for (Issue& issue : next.unit.issues) carried.push_back(std::move(issue));
          continue;
        }
        Unit unit = std::move(next.unit);
        if (!carried.empty()) {
          for (Issue& issue : unit.issues) carried.push_back(std::move(issue));
          unit.issues = std::move(carried);
          carried.clear();
        }
        unit.source = source;
        unit.patients = {unit.key};
        unit.file_location = ssmix2::IssueSource(label, unit.key);
        if (!pipeline.Push(std::move(unit))) break;
      }
      ahead.reset();  // joins the I/O threads before the reader goes
      pipeline.Close();
    });
    std::vector<std::thread> workers;
    for (std::size_t i = 0; i < jobs; ++i) {
      workers.emplace_back([&] {
        mapping::Converter converter(rules, options.map);
        std::size_t seq = 0;
        Unit unit;
        while (pipeline.Take(seq, unit)) {
          if (unit.skip) {
            Converted c;
            c.unit = std::move(unit);
            pipeline.Finish(seq, std::move(c));
          } else {
            pipeline.Finish(seq, Work(std::move(unit), converter));
          }
        }
      });
    }

    Result<void> written;
    std::set<std::string> seen;
    bool stopped = false;
    while (auto c = pipeline.Next()) {
      if (stopped || !written) continue;  // draining after a stop or a failure
      seen.insert(c->unit.key);
      if (c->unit.skip) {
        for (Issue& issue : c->unit.issues) issues.Report(std::move(issue));
        ++stats.skipped_units;
      } else {
        written = Store(*c, checkpoints->count(c->unit.key) != 0);
      }
      if (written && ShouldStop()) {
        written = Commit();  // the units converted so far are committed, the rest dropped
        stopped = true;
      }
      if (stopped || !written) pipeline.Cancel();
      ShowProgress(c->unit.progress);
    }
    producer.join();
    for (auto& w : workers) w.join();
    if (written && !stopped) written = Commit();
    if (written && !stopped && walk_complete) {
      written = RemoveVanished(source, label, checkpoint_map, seen);
    }
    if (!written) Rollback();
    progress.Clear();
    stats.stopped = stats.stopped || stopped;
    if (!written) return written;
    return walked;
  }

  Result<void> ImportFile(const fs::path& file) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) return make_error_code(common::errc::kNotFound);
    Unit unit;
    unit.source = "file";
    unit.key = fs::weakly_canonical(fs::absolute(file, ec), ec).generic_string();
    VectorSink sink;
    sink.target = &unit.issues;
    Fingerprint print;
    if (ssmix2::ParseFileName(file.filename().string()).has_value()) {
      auto record = ssmix2::StorageReader::ResolveFile(file, sink);
      if (record) {
        print.AddFile(record->file.path, record->file.relative);
        for (const auto& old : record->superseded) print.AddFile(old.path, old.relative);
        unit.file_location = "ssmix2:" + record->file.relative;
        unit.patients = {PatientKey(record->file.relative)};
        unit.records.push_back(std::move(*record));
      }
    }
    if (unit.records.empty()) {
      print.AddFile(file, unit.key);
      unit.file = file;
      unit.file_location = file.string();
    }
    unit.fingerprint = WithSettings(print.Hex());
    KAKEHASHI_TRY(auto s, Session());
    KAKEHASHI_TRY(auto checkpoint, s->ReadCheckpoint(unit.source, unit.key));
    const bool before = checkpoint.has_value();
    if (before && *checkpoint == unit.fingerprint) {
      for (Issue& issue : unit.issues) issues.Report(std::move(issue));
      ++stats.skipped_units;
      return {};
    }
    KAKEHASHI_TRY_VOID(LoadTracked());
    KAKEHASHI_TRY_VOID(CountOtherRoots(std::string()));
    mapping::Converter converter(rules, options.map);
    Converted c = Work(std::move(unit), converter);
    Result<void> r = Store(c, before);
    if (r) r = Commit();
    if (!r) Rollback();
    if (r && ShouldStop()) stats.stopped = true;
    return r;
  }
};

Importer::Importer(const gateway::Handler& handler, gateway::store::Store& store,
                   const mapping::RuleSet& rules, ImportOptions options, IssueSink& issues)
    : impl_(std::make_unique<Impl>(handler, store, rules, std::move(options), issues)) {}

Importer::~Importer() = default;

const ImportStats& Importer::Stats() const {
  return impl_->stats;
}

double Importer::Seconds() const {
  return impl_->progress.Seconds();
}

Result<void> Importer::ImportStore(const fs::path& root, const std::string& label) {
  return impl_->ImportStore(root, label);
}

Result<void> Importer::ImportFile(const fs::path& file) {
  return impl_->ImportFile(file);
}

std::set<std::string> SharedResourceTypes(const mapping::RuleSet& rules) {
  std::set<std::string> shared;
  for (const std::string& data_type : rules.MessageTypes()) {
    const Node* message = rules.Message(data_type);
    const Node* list = message != nullptr ? message->Find("resources") : nullptr;
    if (list == nullptr) continue;
    for (const auto& item : list->Items()) {
      const Node* name = item.Find("resource");
      const Node* rule = name != nullptr ? rules.Resource(name->Text()) : nullptr;
      if (rule == nullptr) continue;
      const Node* type = rule->Find("resourceType");
      const Node* id = rule->Find("id");
      if (type == nullptr || id == nullptr) continue;  // position ids: tied to the file
      std::string text;
      fhir::WriteJson(*id, text, fhir::WriteOptions{false, false});
      if (text.find("PID-") == std::string::npos &&
          text.find("patient_system") == std::string::npos &&
          text.find("\"source\"") == std::string::npos) {
        shared.emplace(type->Text());
      }
    }
  }
  return shared;
}

std::string RootLabel(std::string given) {
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  return given;
}

std::size_t DefaultImportChunk(std::string_view db) {
  return db.starts_with("sqlite:") ? 10000 : 1000;
}

std::unique_ptr<gateway::store::Store> OpenImportStore(const std::string& db, const char* command) {
  if (db.starts_with("sqlite:")) {
    fs::path file(db.substr(db.starts_with("sqlite://") ? 9 : 7));
    if (file.has_parent_path() && file.string() != ":memory:") {
      std::error_code ec;
      fs::create_directories(file.parent_path(), ec);
    }
  }
  gateway::store::StoreOptions options;
  options.max_connections = 4;
  auto store = gateway::store::OpenStore(db, options);
  if (!store) {
    std::fprintf(stderr, "kakehashi %s: cannot open --db: %s\n", command,
                 store.error().message().c_str());
    return nullptr;
  }
  return std::move(*store);
}

gateway::Validator ConformanceValidator() {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
  conformance::ValidatorOptions validator_options;
  validator_options.check_references = false;
  auto validator = std::make_shared<conformance::Validator>(validator_options);
  return [validator](std::string_view json, IssueSink& issues) {
    auto node = fhir::ParseJson(json);
    if (!node) {
      issues.Error("gateway.validate.unreadable", {}, "the resource could not be re-read");
      return;
    }
    validator->Validate(*node, issues);
  };
#else
  return {};
#endif
}

}  // namespace kakehashi::app
