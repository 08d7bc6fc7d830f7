// The importer (importer.hpp): SS-MIX2 patient folders and HL7 v2 files -> converter ->
// transaction Bundles through the Handler, with the units' checkpoints in the same transaction.
//
// PHI: checkpoint units are root-relative patient folders (they contain the patient ID, as the
// database holding the patients does); stderr gets counts and issue codes only, --issues and the
// reject directory's sidecars carry the locations (docs/decisions/0003-ssmix2-issue-locations.md).
#include "importer.hpp"

#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/errc.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/bundle.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#endif

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kakehashi::app {

namespace {

namespace fs = std::filesystem;
namespace ssmix2 = adapters::ssmix2;
using fhir::Node;

// FNV-1a 64 over the names, sizes and times of a unit's files: a change detector, not a
// security property.
class Fingerprint {
 public:
  void Add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
    h_ ^= 0xff;  // field separator
    h_ *= 1099511628211ULL;
  }
  void AddFile(const fs::path& path, std::string_view name) {
    Add(name);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    Add(std::to_string(ec ? 0 : size));
    const auto time = fs::last_write_time(path, ec);
    Add(std::to_string(ec ? 0 : time.time_since_epoch().count()));
  }
  std::string Hex() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(16, '0');
    std::uint64_t v = h_;
    for (int i = 15; i >= 0; --i) {
      out[static_cast<std::size_t>(i)] = kDigits[v & 0xF];
      v >>= 4;
    }
    return out;
  }

 private:
  std::uint64_t h_ = 1469598103934665603ULL;
};

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
  fs::path path;       // to read the bytes back
  std::string source;  // Location.source ("ssmix2:<relative>" or the file as given)
};

// Forwards to a BundleBuilder and remembers the origin of each Type/id (the later one wins, as
// in the builder).
class TrackingOutput final : public mapping::OutputSink {
 public:
  TrackingOutput(mapping::BundleBuilder& bundle, std::unordered_map<std::string, Origin>& origins)
      : bundle_(bundle), origins_(origins) {}
  void Put(const std::string& type, const std::string& id, Node resource) override {
    origins_[type + "/" + id] = current;
    bundle_.Put(type, id, std::move(resource));
  }
  void Delete(const std::string& type, const std::string& id) override {
    origins_[type + "/" + id] = current;
    bundle_.Delete(type, id);
  }
  Origin current;

 private:
  mapping::BundleBuilder& bundle_;
  std::unordered_map<std::string, Origin>& origins_;
};

// One unit of work: an SS-MIX2 patient folder (records) or an HL7 v2 file.
struct Unit {
  std::string source;  // checkpoint source ("ssmix2:<absolute root>" or "file")
  std::string key;     // checkpoint unit
  std::string fingerprint;
  std::vector<ssmix2::StorageRecord> records;
  fs::path file;              // an HL7 v2 file (records empty)
  std::string file_location;  // Location.source for it
};

class Progress {
 public:
  Progress(bool enabled, std::string label)
      : enabled_(enabled), label_(std::move(label)), start_(Clock::now()), last_(start_) {}
  void Update(std::size_t units, std::size_t skipped, std::size_t files, std::size_t messages,
              double fraction) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double secs = Seconds();
    const double rate = secs > 0 ? static_cast<double>(messages) / secs : 0.0;
    std::string eta = "?";
    if (fraction > 0.01) eta = std::to_string(static_cast<long>(secs / fraction - secs)) + " s";
    std::fprintf(stderr,
                 "\rkakehashi %s: %zu units (%zu already done), %zu files, %.0f msg/s, %3.0f%%, "
                 "ETA %s   ",
                 label_.c_str(), units, skipped, files, rate, fraction * 100.0, eta.c_str());
    shown_ = true;
  }
  void Done() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 110, "");
    shown_ = false;
  }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::string label_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

gateway::Request PostBundle(const Node& bundle) {
  gateway::Request r;
  r.method = "POST";
  r.target = "/fhir";
  fhir::WriteJson(bundle, r.body);
  r.headers.emplace_back("Content-Type", "application/fhir+json");
  return r;
}

}  // namespace

struct Importer::Impl {
  const gateway::Handler& handler;
  gateway::store::Store& store;
  const mapping::RuleSet& rules;
  ImportOptions options;
  IssueSink& issues;
  mapping::Converter converter;
  Progress progress;
  ImportStats stats;

  // The pending transaction: whole units, their entries and the entries' origins.
  std::vector<Unit> chunk;
  mapping::BundleBuilder bundle;
  std::unordered_map<std::string, Origin> origins;
  // Checkpoints loaded per source: unit -> fingerprint.
  std::map<std::string, std::unordered_map<std::string, std::string>> done;

  Impl(const gateway::Handler& h, gateway::store::Store& s, const mapping::RuleSet& r,
       ImportOptions o, IssueSink& i)
      : handler(h),
        store(s),
        rules(r),
        options(std::move(o)),
        issues(i),
        converter(r, options.map),
        progress(options.progress, options.label) {}

  Result<const std::unordered_map<std::string, std::string>*> Checkpoints(
      const std::string& source) {
    if (auto it = done.find(source); it != done.end()) return &it->second;
    KAKEHASHI_TRY(auto session, store.OpenSession());
    KAKEHASHI_TRY(auto rows, session->ReadCheckpoints(source));
    auto& map = done[source];
    for (auto& [unit, fingerprint] : rows) map.emplace(std::move(unit), std::move(fingerprint));
    return &map;
  }

  // Converts `unit` into `out`. Issues go to `sink`; with `keep`, a file whose conversion
  // reported an error is kept in the reject directory.
  void Convert(const Unit& unit, mapping::Converter& conv, mapping::BundleBuilder& out,
               std::unordered_map<std::string, Origin>& where, IssueSink& sink, bool keep) {
    TrackingOutput tracking(out, where);
    auto one = [&](const Origin& origin, auto&& run) {
      tracking.current = origin;
      if (!keep || options.reject_dir.empty()) {
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
        one(Origin{record.file.path, "ssmix2:" + record.file.relative},
            [&](IssueSink& s) { conv.ConvertRecord(record, tracking, s); });
      }
      return;
    }
    one(Origin{unit.file, unit.file_location}, [&](IssueSink& s) {
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
      conv.ConvertHl7(*bytes, unit.file_location, tracking, s);
    });
  }

  void CountWritten(const mapping::BundleEntry& e) {
    if (e.method == mapping::BundleEntry::Method::kDelete) {
      ++stats.deleted_by_type[e.type];
    } else {
      ++stats.put_by_type[e.type];
    }
  }

  void UnitsCommitted(const std::vector<Unit>& units) {
    for (const auto& u : units) {
      done[u.source][u.key] = u.fingerprint;
      ++stats.units;
    }
    ++stats.transactions;
    if (options.stop_after_units > 0 && stats.units >= options.stop_after_units) {
      stats.stopped = true;
    }
  }

  // One transaction with the units' checkpoints. Returns the HTTP status.
  int Commit(const mapping::BundleBuilder& entries, const std::vector<Unit>& units) {
    gateway::BeforeCommit hook = [&](gateway::store::Session& s) -> Result<void> {
      for (const auto& u : units)
        KAKEHASHI_TRY_VOID(s.WriteCheckpoint(u.source, u.key, u.fingerprint));
      return {};
    };
    Node b = entries.Build();
    gateway::Response r = handler.Transaction(PostBundle(b), hook);
    if (r.status == 409) r = handler.Transaction(PostBundle(b), hook);  // a concurrent writer
    return r.status;
  }

  // A unit the store refused as a transaction: each entry on its own (batch), the refused ones
  // reported and their input kept, then the checkpoint alone.
  Result<void> Salvage(const Unit& unit, const mapping::BundleBuilder& entries,
                       const std::unordered_map<std::string, Origin>& where) {
    Node b = entries.Build();
    b.Set("type", Node::String("batch"));
    gateway::Response r = handler.Handle(PostBundle(b));
    if (r.status >= 500) return make_error_code(gateway::store::errc::kQueryFailed);
    std::vector<std::string> statuses(entries.Size());
    std::vector<std::string> reasons(entries.Size());  // the first error of the outcome
    if (r.status == 200) {
      if (auto parsed = fhir::ParseJson(r.body)) {
        if (const Node* list = parsed->Find("entry"); list != nullptr && list->IsArray()) {
          for (std::size_t i = 0; i < list->Size() && i < statuses.size(); ++i) {
            const Node* response = list->Child(i).Find("response");
            const Node* status = response != nullptr ? response->Find("status") : nullptr;
            if (status != nullptr && status->IsString()) statuses[i] = status->Text();
            const Node* outcome = response != nullptr ? response->Find("outcome") : nullptr;
            const Node* list_of = outcome != nullptr ? outcome->Find("issue") : nullptr;
            if (list_of == nullptr || !list_of->IsArray()) continue;
            for (const Node& issue : list_of->Items()) {
              const Node* severity = issue.Find("severity");
              const Node* diagnostics = issue.Find("diagnostics");
              if (severity != nullptr && diagnostics != nullptr && diagnostics->IsString() &&
                  (severity->Text() == "error" || severity->Text() == "fatal")) {
                reasons[i] = diagnostics->Text();  // validator messages hold no values
                break;
              }
            }
          }
        }
      }
    }
    for (std::size_t i = 0; i < entries.Size(); ++i) {
      const auto& e = entries.Entries()[i];
      if (statuses[i].starts_with("2")) {
        CountWritten(e);
        continue;
      }
      if (statuses[i].starts_with("5")) return make_error_code(gateway::store::errc::kQueryFailed);
      ++stats.rejected;
      Location at;
      at.record = e.type + "/" + e.id;
      const Origin* origin = nullptr;
      if (auto it = where.find(at.record); it != where.end()) origin = &it->second;
      at.source = origin != nullptr ? origin->source : unit.file_location;
      std::string status = statuses[i].empty() ? std::to_string(r.status) : statuses[i];
      if (!reasons[i].empty()) status += "; first problem: " + reasons[i];
      if (options.reject_dir.empty() || origin == nullptr) {
        issues.Error("import.rejected", at,
                     "the store refused this converted resource (HTTP " + status +
                         "); check it with `kakehashi convert` and `kakehashi validate`");
        continue;
      }
      RejectStore rejects(options.reject_dir, issues);
      rejects.Error("import.rejected", at,
                    "the store refused this converted resource (HTTP " + status +
                        "); its source file is kept in the reject directory for replay");
      if (auto bytes = ReadBytes(origin->path)) (void)rejects.Reject(*bytes, at);
    }
    mapping::BundleBuilder empty;
    const int status = Commit(empty, {unit});
    if (status != 200) return make_error_code(gateway::store::errc::kQueryFailed);
    UnitsCommitted({unit});
    return {};
  }

  Result<void> Flush() {
    if (chunk.empty()) return {};
    std::vector<Unit> units = std::move(chunk);
    mapping::BundleBuilder entries = std::move(bundle);
    std::unordered_map<std::string, Origin> where = std::move(origins);
    chunk.clear();
    bundle = mapping::BundleBuilder();
    origins.clear();
    const int status = Commit(entries, units);
    if (status == 200) {
      for (const auto& e : entries.Entries()) CountWritten(e);
      UnitsCommitted(units);
      return {};
    }
    if (status >= 500 || status == 409) {
      return make_error_code(gateway::store::errc::kQueryFailed);
    }
    if (units.size() == 1) return Salvage(units[0], entries, where);
    // Several units: find the bad one(s) unit by unit. The conversion is deterministic, so each
    // unit is converted again (quietly: its issues were reported the first time).
    for (const auto& unit : units) {
      mapping::Converter again(rules, options.map);
      mapping::BundleBuilder one;
      std::unordered_map<std::string, Origin> one_where;
      NullSink quiet;
      Convert(unit, again, one, one_where, quiet, false);
      const int s = Commit(one, {unit});
      if (s == 200) {
        for (const auto& e : one.Entries()) CountWritten(e);
        UnitsCommitted({unit});
      } else if (s >= 500 || s == 409) {
        return make_error_code(gateway::store::errc::kQueryFailed);
      } else {
        KAKEHASHI_TRY_VOID(Salvage(unit, one, one_where));
      }
      if (stats.stopped) return {};
    }
    return {};
  }

  // Adds a unit unless its checkpoint says it is done; flushes full chunks.
  Result<void> Add(Unit unit) {
    if (!options.settings.empty()) {
      Fingerprint with_settings;
      with_settings.Add(unit.fingerprint);
      with_settings.Add(options.settings);
      unit.fingerprint = with_settings.Hex();
    }
    KAKEHASHI_TRY(auto checkpoints, Checkpoints(unit.source));
    if (auto it = checkpoints->find(unit.key);
        it != checkpoints->end() && it->second == unit.fingerprint) {
      ++stats.skipped_units;
      return {};
    }
    Convert(unit, converter, bundle, origins, issues, true);
    chunk.push_back(std::move(unit));
    if (bundle.Size() >= options.chunk_resources) return Flush();
    return {};
  }

  void SyncStats() {
    stats.files = converter.Stats().files;
    stats.messages = converter.Stats().messages;
  }
};

Importer::Importer(const gateway::Handler& handler, gateway::store::Store& store,
                   const mapping::RuleSet& rules, ImportOptions options, IssueSink& issues)
    : impl_(std::make_unique<Impl>(handler, store, rules, std::move(options), issues)) {}

Importer::~Importer() = default;

const ImportStats& Importer::Stats() const {
  impl_->SyncStats();
  return impl_->stats;
}

double Importer::Seconds() const {
  return impl_->progress.Seconds();
}

Result<void> Importer::ImportStore(const fs::path& root) {
  Impl& m = *impl_;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return make_error_code(common::errc::kNotFound);
  fs::path absolute = fs::weakly_canonical(fs::absolute(root, ec), ec);
  const std::string source = "ssmix2:" + absolute.generic_string();
  ssmix2::StorageReader reader(root, m.issues);
  Unit unit;
  auto finish_unit = [&]() -> Result<void> {
    if (unit.records.empty()) return {};
    Fingerprint print;
    for (const auto& record : unit.records) {
      print.AddFile(record.file.path, record.file.relative);
      for (const auto& old : record.superseded) print.AddFile(old.path, old.relative);
    }
    unit.source = source;
    unit.fingerprint = print.Hex();
    unit.file_location = "ssmix2:" + unit.key;
    auto r = m.Add(std::move(unit));
    unit = Unit();
    return r;
  };
  while (true) {
    KAKEHASHI_TRY(auto next, reader.Next());
    if (!next) break;
    std::string key = PatientKey(next->file.relative);
    if (key != unit.key && !unit.records.empty()) {
      KAKEHASHI_TRY_VOID(finish_unit());
      if (m.stats.stopped) {
        m.progress.Done();
        return {};
      }
      if (m.options.cancel != nullptr && *m.options.cancel != 0) {
        m.stats.stopped = true;  // between units: commit what is converted, then stop
        auto flushed = m.Flush();
        m.progress.Done();
        return flushed;
      }
    }
    unit.key = std::move(key);
    unit.records.push_back(std::move(*next));
    m.SyncStats();
    m.progress.Update(m.stats.units, m.stats.skipped_units, m.stats.files, m.stats.messages,
                      reader.Progress());
  }
  KAKEHASHI_TRY_VOID(finish_unit());
  if (m.stats.stopped) {
    m.progress.Done();
    return {};
  }
  auto flushed = m.Flush();
  m.progress.Done();
  return flushed;
}

Result<void> Importer::ImportFile(const fs::path& file) {
  Impl& m = *impl_;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return make_error_code(common::errc::kNotFound);
  Unit unit;
  unit.source = "file";
  unit.key = fs::weakly_canonical(fs::absolute(file, ec), ec).generic_string();
  Fingerprint print;
  if (ssmix2::ParseFileName(file.filename().string()).has_value()) {
    auto record = ssmix2::StorageReader::ResolveFile(file, m.issues);
    if (record) {
      print.AddFile(record->file.path, record->file.relative);
      for (const auto& old : record->superseded) print.AddFile(old.path, old.relative);
      unit.file_location = "ssmix2:" + record->file.relative;
      unit.records.push_back(std::move(*record));
    }
  }
  if (unit.records.empty()) {
    print.AddFile(file, unit.key);
    unit.file = file;
    unit.file_location = file.string();
  }
  unit.fingerprint = print.Hex();
  KAKEHASHI_TRY_VOID(m.Add(std::move(unit)));
  if (m.stats.stopped) return {};
  return m.Flush();
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
