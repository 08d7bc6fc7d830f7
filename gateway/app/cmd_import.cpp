// `kakehashi import`: loads an SS-MIX2 store (or HL7 v2 files) into the gateway's database,
// resumable after interruption (importer.hpp; docs/gateway.md "Import").
//
// PHI on stderr: as `kakehashi convert`, stderr names issue codes and counts, never a stored file
// (SS-MIX2 paths contain patient IDs); --issues and the reject directory carry the locations.
#include "args.hpp"
#include "commands.hpp"
#include "conversion_settings.hpp"
#include "convert_terminology.hpp"
#include "importer.hpp"

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"

#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp =
    "Usage: kakehashi import ssmix2 ROOT... [options]\n"
    "       kakehashi import hl7v2 FILE... [options]\n"
    "\n"
    "Converts an SS-MIX2 standardized storage (or HL7 v2 files) to FHIR R4 JP Core, exactly as\n"
    "`kakehashi convert` does, and writes the resources into the gateway's database (validated\n"
    "and indexed as if PUT over REST; deleted records and removed diseases are deleted), so\n"
    "`kakehashi serve --db` serves them.\n"
    "\n"
    "Parallel, streaming and resumable: patient folders are converted on --jobs threads and\n"
    "written in store order by one writer; each transaction also records the imported patient\n"
    "folders (table import_checkpoints). If the import is interrupted, run the same command\n"
    "again: finished folders are skipped, the rest is imported, nothing is duplicated. A folder\n"
    "whose files changed since (new, replaced or removed messages) is imported again, and what\n"
    "it no longer yields is deleted; a patient folder removed from the store is deleted from\n"
    "the database; a resource whose content did not change gets no new version. So re-running\n"
    "after the store changed imports only what changed; so is every folder when the\n"
    "conversion options (--profile, --facility, --rules, --terminology, --concept-map) differ\n"
    "from the last run (a master newly loaded into the same --terminology database is not\n"
    "noticed: import into a new database to apply it everywhere).\n"
    "\n"
    "The ADT messages of one hospital stay (admission, transfers, discharge, cancels) make one\n"
    "Encounter, also when they arrive in different imports (an HL7 v2 file per message, a\n"
    "later root or file holding only the discharge), in the order of their times (SS-MIX2\n"
    "storing time, else MSH-7): the same Encounter as one import of all of them.\n"
    "Deletes and updates are ordered the same way: per resource, the newest message of any\n"
    "root or file imported so far wins, whatever order they are imported (or imported again)\n"
    "in: a full export imported after the delta root that replaced or deleted its records\n"
    "does not bring back the older versions (as convert FULL DELTA); when the newer file goes\n"
    "away, the resource comes back from the input that still has it, and a record two roots\n"
    "hold stays while one of them has it.\n"
    "\n"
    "Options:\n"
    "  --db URL            sqlite:PATH (default sqlite:kakehashi.sqlite) or postgresql://...\n"
    "  --issues FILE       write every issue as a FHIR OperationOutcome (with locations, which\n"
    "                      name patient IDs for SS-MIX2)\n"
    "  --rejects DIR       keep input the import could not use (files whose conversion had\n"
    "                      errors, sources of resources the store refused) with an\n"
    "                      .issues.tsv sidecar each (default: PATH.rejected beside a SQLite\n"
    "                      database, ./kakehashi-import.rejected for PostgreSQL)\n"
    "  --profile jp-core-1.1.2|jp-core-1.2.0   target JP Core version (default jp-core-1.1.2)\n"
    "  --rules DIR         site rule directory (as for convert)\n"
    "  --facility CODE     10-digit 医療機関コード (default: MSH-4 when it is 10 digits)\n"
    "  --chunk N           resources per transaction, whole patients (default 10000 on\n"
    "                      SQLite, 1000 on PostgreSQL: each written resource holds an advisory\n"
    "                      lock until the commit); memory does not grow with it\n"
    "  --jobs N            conversion threads (default: the number of hardware threads)\n"
    "  --io-threads N      read SS-MIX2 patient folders ahead of the workers with N threads\n"
    "                      (default 8, as convert: several disk reads at once on a cold store;\n"
    "                      0: one at a time); the result does not depend on it\n"
    "  --io-uring on|off   read the files of each SS-MIX2 patient to import together through\n"
    "                      io_uring (default on; plain reads where the kernel does not allow\n"
    "                      it); off: one read(2) per file. The result is the same either way\n"
    "%s"
    "  --no-unused         do not report unused fields (information issues)\n"
    "  --progress          progress on stderr even when it is not a terminal\n"
    "  --help              this help\n"
    "\n"
    "With several SS-MIX2 roots, issue locations name the root as given\n"
    "(ssmix2:ROOT/<path in the root>), as convert's do.\n"
    "\n"
    "Ctrl-C (SIGINT/SIGTERM) commits the patients converted so far and stops (exit 130).\n"
    "\n"
    "Exit codes: 0 imported, 1 some input had errors or was refused (the rest is imported;\n"
    "see --issues), 2 usage error or the database failed (rerun to resume), 130 interrupted.\n";

std::string Join(const std::map<std::string, std::size_t>& counts) {
  std::string out;
  for (const auto& [name, n] : counts) {
    if (!out.empty()) out += ", ";
    out += name + " " + std::to_string(n);
  }
  return out;
}

// Counts everything, keeps what --issues needs, remembers the first errors for stderr.
class ImportSink final : public IssueSink {
 public:
  explicit ImportSink(bool keep) : kept_(keep ? 100000 : 0) {}
  void Report(Issue issue) override {
    if ((issue.severity == Severity::kError || issue.severity == Severity::kFatal) &&
        problems_.size() < 20) {
      problems_.push_back(issue);
    }
    kept_.Report(std::move(issue));
  }
  const CollectingSink& Kept() const { return kept_; }
  const std::vector<Issue>& Problems() const { return problems_; }

 private:
  CollectingSink kept_;
  std::vector<Issue> problems_;
};

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void OnInterrupt(int /*signal*/) {
  g_interrupted = 1;
}

}  // namespace

int RunImport(const std::vector<std::string>& argv) {
  Args args(WithConversionValueOptions(
                {"db", "issues", "rejects", "chunk", "jobs", "io-threads", "io-uring"}),
            WithConversionFlagOptions({"help", "progress"}));
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi import: %s (see kakehashi import --help)\n",
                 args.Error().c_str());
    return kExitUsage;
  }
  if (args.Help()) {
    std::printf(kHelp, kConvertTerminologyHelp);
    return kExitOk;
  }
  const auto& pos = args.Positionals();
  if (pos.size() < 2 || (pos[0] != "ssmix2" && pos[0] != "hl7v2")) {
    std::fprintf(stderr,
                 "kakehashi import: give the kind and the input: import ssmix2 ROOT or import "
                 "hl7v2 FILE (see --help)\n");
    return kExitUsage;
  }
  const auto settings = ConversionSettings::Read(args, "import");
  if (!settings) return kExitUsage;
  const auto jobs = ReadJobsOption(args, "import");
  if (!jobs) return kExitUsage;
  const std::string db = args.GetOr("db", "sqlite:kakehashi.sqlite");
  ImportOptions options;
  options.jobs = *jobs;
  options.io_threads = kDefaultImportIoThreads;
  if (auto text = args.Get("io-threads")) {
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, options.io_threads);
    if (text->empty() || ec != std::errc() || ptr != end || options.io_threads > 256) {
      std::fprintf(stderr, "kakehashi import: --io-threads must be a number from 0 to 256\n");
      return kExitUsage;
    }
  }
  const std::string io_uring = args.GetOr("io-uring", "on");
  if (io_uring != "on" && io_uring != "off") {
    std::fprintf(stderr, "kakehashi import: --io-uring must be on or off\n");
    return kExitUsage;
  }
  options.io_uring = io_uring == "on";
  options.chunk_resources = DefaultImportChunk(db);
  if (auto chunk = args.Get("chunk")) {
    auto [ptr, ec] =
        std::from_chars(chunk->data(), chunk->data() + chunk->size(), options.chunk_resources);
    if (ec != std::errc() || ptr != chunk->data() + chunk->size() || options.chunk_resources == 0) {
      std::fprintf(stderr, "kakehashi import: --chunk must be a positive integer\n");
      return kExitUsage;
    }
  }
  auto rules = settings->LoadRules("import");
  if (!rules) return kExitUsage;
  auto store = OpenImportStore(db, "import");
  if (!store) return kExitUsage;

  // --terminology / --concept-map: the terminology binding of `kakehashi convert`.
  ImportSink issues(args.Has("issues"));
  std::unique_ptr<terminology::TerminologyStore> terminology_store;
  if (int rc = settings->OpenTerminology(issues, terminology_store, "import"); rc != kExitOk) {
    return rc;
  }
  options.map = settings->MapOptions(terminology_store.get());
  options.settings = settings->Fingerprint();
  options.progress = args.Has("progress") || isatty(fileno(stderr)) != 0;
  if (auto dir = args.Get("rejects")) {
    options.reject_dir = *dir;
  } else if (db.starts_with("sqlite:")) {
    options.reject_dir = db.substr(db.starts_with("sqlite://") ? 9 : 7) + ".rejected";
  } else {
    options.reject_dir = "kakehashi-import.rejected";
  }

  gateway::HandlerOptions handler_options;
  handler_options.validator = ConformanceValidator();
  gateway::Handler handler(*store, handler_options);
  // Ctrl-C / SIGTERM: finish the patient at hand, commit, print the summary, exit 130. (A kill
  // loses only the uncommitted transaction; rerun to resume either way.)
  options.cancel = &g_interrupted;
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  Importer importer(handler, *store, *rules, options, issues);

  // Several SS-MIX2 roots: issue locations name the root as given (trailing '/' dropped), as
  // `convert`'s do (decisions 0003, 0017); one root: root-relative.
  std::size_t roots = 0;
  for (std::size_t i = 1; i < pos.size(); ++i) {
    std::error_code ec;
    if (pos[0] == "ssmix2" && fs::is_directory(pos[i], ec)) ++roots;
  }
  int rc = kExitOk;
  for (std::size_t i = 1; i < pos.size(); ++i) {
    const fs::path input(pos[i]);
    std::error_code ec;
    Result<void> r;
    if (pos[0] == "ssmix2" && fs::is_directory(input, ec)) {
      r = importer.ImportStore(input, roots > 1 ? RootLabel(pos[i]) : std::string());
    } else if (fs::is_regular_file(input, ec)) {
      r = importer.ImportFile(input);
    } else {
      std::fprintf(stderr, "kakehashi import: %s: no such %s\n", pos[i].c_str(),
                   pos[0] == "ssmix2" ? "SS-MIX2 root" : "file");
      rc = kExitUsage;
      continue;
    }
    if (!r) {
      // Operational: the database or the file system failed. What was committed stays; the
      // same command resumes.
      std::fprintf(stderr, "kakehashi import: %s: %s (rerun the same command to resume)\n",
                   pos[i].c_str(), r.error().message().c_str());
      rc = kExitUsage;
      break;
    }
  }

  if (auto path = args.Get("issues")) {
    std::string oo;
    fhir::WriteJson(fhir::ToOperationOutcome(issues.Kept().Issues()), oo);
    oo += '\n';
    std::ofstream out(*path, std::ios::binary | std::ios::trunc);
    out << oo;
    if (!out) {
      std::fprintf(stderr, "kakehashi import: %s: cannot be written\n", path->c_str());
      rc = kExitUsage;
    }
  }
  for (const Issue& issue : issues.Problems()) {
    std::fprintf(stderr, "kakehashi import: %s %.*s: %s\n",
                 std::string(ToString(issue.severity)).c_str(), static_cast<int>(issue.code.size()),
                 issue.code.data(), issue.message.c_str());
  }
  const ImportStats& stats = importer.Stats();
  const double secs = importer.Seconds();
  std::fprintf(stderr,
               "kakehashi import: %zu units imported, %zu already done (skipped); %zu files, %zu "
               "messages in %.2f s (%.0f msg/s, %zu jobs), %zu transactions\n",
               stats.units, stats.skipped_units, stats.files, stats.messages, secs,
               secs > 0 ? static_cast<double>(stats.messages) / secs : 0.0, stats.jobs,
               stats.transactions);
  if (stats.removed_units > 0) {
    std::fprintf(stderr,
                 "  removed:   %zu units no longer in the store (their resources deleted)\n",
                 stats.removed_units);
  }
  if (!stats.put_by_type.empty()) {
    std::fprintf(stderr, "  written:   %s\n", Join(stats.put_by_type).c_str());
  }
  if (stats.unchanged > 0) {
    std::fprintf(stderr, "  unchanged: %zu resources (the current version had the content)\n",
                 stats.unchanged);
  }
  if (!stats.deleted_by_type.empty()) {
    std::fprintf(stderr, "  deleted:   %s\n", Join(stats.deleted_by_type).c_str());
  }
  if (stats.rejected > 0) {
    std::fprintf(stderr, "  refused:   %zu resources (import.rejected; input kept in %s)\n",
                 stats.rejected, options.reject_dir.string().c_str());
  }
  const auto& counts = issues.Kept().Counts();
  std::fprintf(stderr, "  issues:    %zu fatal, %zu error, %zu warning, %zu information\n",
               counts.Count(Severity::kFatal), counts.Count(Severity::kError),
               counts.Count(Severity::kWarning), counts.Count(Severity::kInformation));
  for (const auto& [code, n] : counts.ByCode()) {
    std::fprintf(stderr, "    %-32s %zu\n", code.c_str(), n);
  }
  if (counts.Total() > 0 && !args.Has("issues")) {
    std::fprintf(stderr, "  (write the issues with their locations: --issues FILE)\n");
  }
  if (rc == kExitOk && (counts.Errors() > 0 || stats.rejected > 0)) rc = kExitInputErrors;
  if (g_interrupted != 0) {
    std::fprintf(stderr,
                 "kakehashi import: interrupted; what is listed above is committed. Run the same "
                 "command again to resume.\n");
    rc = 130;
  }
  return rc;
}

}  // namespace kakehashi::app
