// kakehashi convert — HL7 v2 files and SS-MIX2 stores to FHIR R4 (JP Core) transaction Bundles
// or NDJSON. The CLI contract is fixed by issue #4 (scripts depend on it); see --help.
//
// PHI on stderr (docs/decisions/0003-ssmix2-issue-locations.md): SS-MIX2 paths contain patient
// IDs, so stderr never names a stored file — it prints issue codes, counts and messages; the
// --issues OperationOutcome carries the locations for the operator.
#include "args.hpp"
#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#endif

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
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
    "SS-MIX2 storage root directory, or a file inside a store (its sibling versions decide\n"
    "whether it is current, replaced or deleted). The format is detected unless --from is given.\n"
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
    "  --help                         show this help\n"
    "\n"
    "Exit codes: 0 converted (warnings on stderr), 1 some input was unusable (one line per\n"
    "problem on stderr; what could be converted is still written), 2 usage error.\n";

// Keeps issues for --issues and counts them; prints nothing itself.
class CountingSink final : public IssueSink {
 public:
  explicit CountingSink(bool keep) : keep_(keep) {}
  void Report(Issue issue) override {
    counts_.Add(issue);
    if (issue.severity == Severity::kFatal || issue.severity == Severity::kError) {
      if (problems_.size() < 20) problems_.push_back(issue);
      ++problem_count_;
    }
    if (keep_) kept_.Report(std::move(issue));
  }
  const IssueCounts& Counts() const { return counts_; }
  const CollectingSink& Kept() const { return kept_; }
  const std::vector<Issue>& Problems() const { return problems_; }
  std::size_t ProblemCount() const { return problem_count_; }

 private:
  bool keep_;
  IssueCounts counts_;
  CollectingSink kept_;
  std::vector<Issue> problems_;
  std::size_t problem_count_ = 0;
};

// Checks every resource with conformance/ before it reaches the output ("never emit invalid
// FHIR"): an invalid resource is not written; its problems and convert.invalid_resource (error)
// are reported instead, so the run exits 1 and --issues names the source.
class ValidatingOutput final : public mapping::OutputSink {
 public:
  ValidatingOutput(mapping::OutputSink& next, IssueSink& issues) : next_(next), issues_(issues) {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
    conformance::ValidatorOptions options;
    options.check_references = false;  // references point at other entries of the output
    validator_ = conformance::Validator(options);
#endif
  }
  void Put(const std::string& type, const std::string& id, Node resource) override {
#ifdef KAKEHASHI_HAVE_CONFORMANCE
    CollectingSink found;
    Location where;
    where.record = type + "/" + id;
    if (!validator_.Validate(resource, found, where)) {
      for (const auto& issue : found.Issues()) {
        if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
          issues_.Report(issue);
        }
      }
      issues_.Error("convert.invalid_resource", where,
                    "the mapped resource is not valid FHIR R4 and was not written; see the "
                    "issues before this one and the mapping rules of its type");
      ++rejected_;
      return;
    }
#endif
    next_.Put(type, id, std::move(resource));
  }
  void Delete(const std::string& type, const std::string& id) override {
    next_.Delete(type, id);
  }
  std::size_t Rejected() const {
    return rejected_;
  }

 private:
  mapping::OutputSink& next_;
  IssueSink& issues_;
  std::size_t rejected_ = 0;
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

Node OperationOutcome(const CollectingSink& sink) {
  Node oo = fhir::ToOperationOutcome(sink.Issues());
  if (sink.Dropped() > 0) {
    Node item = Node::Object();
    item.Set("severity", Node::String("information"));
    item.Set("code", Node::String("too-costly"));
    item.Set("diagnostics", Node::String(std::to_string(sink.Dropped()) +
                                         " further issues were counted but not kept"));
    if (Node* list = oo.Find("issue")) list->Push(std::move(item));
  }
  return oo;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(Clock::now()), last_(start_) {}
  void Update(std::size_t files, std::size_t messages, double fraction) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(messages) / secs : 0.0;
    std::string eta = "?";
    if (fraction > 0.01) eta = std::to_string(static_cast<long>(secs / fraction - secs)) + " s";
    std::fprintf(stderr,
                 "\rkakehashi convert: %zu files, %zu messages, %.0f msg/s, %3.0f%%, ETA %s   ",
                 files, messages, rate, fraction * 100.0, eta.c_str());
    shown_ = true;
  }
  void Done() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 100, "");
  }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

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

}  // namespace

int RunConvert(const std::vector<std::string>& argv) {
  Args args({"from", "format", "out", "profile", "issues", "rules", "facility"},
            {"progress", "no-unused"});
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi convert: %s (see kakehashi convert --help)\n",
                 args.Error().c_str());
    return kExitUsage;
  }
  if (args.Help()) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  const std::string from = args.GetOr("from", "");
  const std::string format = args.GetOr("format", "bundle");
  const std::string profile = args.GetOr("profile", "jp-core-1.1.2");
  if (!from.empty() && from != "hl7v2" && from != "ssmix2" && from != "jahis-rx") {
    std::fprintf(stderr, "kakehashi convert: --from must be hl7v2, ssmix2 or jahis-rx\n");
    return kExitUsage;
  }
  if (format != "bundle" && format != "ndjson") {
    std::fprintf(stderr, "kakehashi convert: --format must be bundle or ndjson\n");
    return kExitUsage;
  }
  if (profile != "jp-core-1.1.2" && profile != "jp-core-1.2.0") {
    std::fprintf(stderr, "kakehashi convert: --profile must be jp-core-1.1.2 or jp-core-1.2.0\n");
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
  const std::string facility = args.GetOr("facility", "");
  if (!facility.empty() &&
      (facility.size() != 10 || facility.find_first_not_of("0123456789") != std::string::npos)) {
    std::fprintf(stderr, "kakehashi convert: --facility must be a 10-digit 医療機関コード\n");
    return kExitUsage;
  }

  std::string detail;
  auto rules =
      mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), args.GetOr("rules", ""), &detail);
  if (!rules) {
    std::fprintf(stderr, "kakehashi convert: %s: %s\n", rules.error().message().c_str(),
                 detail.c_str());
    return kExitUsage;
  }
  mapping::MapOptions map_options;
  map_options.profile = profile == "jp-core-1.2.0" ? mapping::ProfileSet::kJpCore120
                                                   : mapping::ProfileSet::kJpCore112;
  map_options.facility_code = facility;
  map_options.report_unused = !args.Has("no-unused");
  mapping::Converter converter(*rules, map_options);
  mapping::BundleBuilder bundle;
  CountingSink issues(args.Has("issues"));
  ValidatingOutput output(bundle, issues);
  Progress progress(args.Has("progress") || isatty(fileno(stderr)) != 0);
  std::size_t unusable_inputs = 0;

  for (const std::string& input : args.Positionals()) {
    std::error_code ec;
    const fs::path path(input);
    if (!fs::exists(path, ec)) {
      std::fprintf(stderr, "kakehashi convert: %s: no such file or directory\n", input.c_str());
      ++unusable_inputs;
      continue;
    }
    if (fs::is_directory(path, ec)) {
      if (from == "hl7v2") {
        std::fprintf(stderr, "kakehashi convert: %s: a directory is not an HL7 v2 file\n",
                     input.c_str());
        ++unusable_inputs;
        continue;
      }
      adapters::ssmix2::StorageReader reader(path, issues);
      while (true) {
        auto next = reader.Next();
        if (!next) {
          std::fprintf(stderr, "kakehashi convert: %s: %s\n", input.c_str(),
                       next.error().message().c_str());
          ++unusable_inputs;
          break;
        }
        if (!*next) break;
        converter.ConvertRecord(**next, output, issues);
        progress.Update(converter.Stats().files, converter.Stats().messages, reader.Progress());
      }
      continue;
    }
    const bool ssmix2_name = adapters::ssmix2::ParseFileName(path.filename().string()).has_value();
    if (from == "ssmix2" || (from.empty() && ssmix2_name)) {
      auto record = adapters::ssmix2::StorageReader::ResolveFile(path, issues);
      if (!record) {
        std::fprintf(stderr, "kakehashi convert: %s: not a file of an SS-MIX2 store (%s)\n",
                     input.c_str(), record.error().message().c_str());
        ++unusable_inputs;
        continue;
      }
      converter.ConvertRecord(*record, output, issues);
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) {
      std::fprintf(stderr, "kakehashi convert: %s: cannot be read\n", input.c_str());
      ++unusable_inputs;
      continue;
    }
    const std::string bytes = ss.str();
    if (!LooksLikeHl7(bytes)) {
      std::fprintf(stderr, "kakehashi convert: %s: not HL7 v2 (no MSH segment found)\n",
                   input.c_str());
      ++unusable_inputs;
      continue;
    }
    if (converter.ConvertHl7(bytes, input, output, issues) == 0) ++unusable_inputs;
  }
  progress.Done();

  // Output, through the fhir/ writer: canonical element order, numbers keep their text.
  std::string text;
  std::size_t deletes = 0;
  if (format == "bundle") {
    fhir::WriteJson(bundle.Build(), text);
    text += '\n';
  } else {
    for (const auto& entry : bundle.Entries()) {
      if (entry.method == mapping::BundleEntry::Method::kDelete) {
        ++deletes;
        continue;
      }
      fhir::WriteJson(entry.resource, text);
      text += '\n';
    }
  }
  if (auto out = args.Get("out")) {
    if (!WriteFile(*out, text)) {
      std::fprintf(stderr, "kakehashi convert: %s: cannot be written\n", out->c_str());
      return kExitUsage;
    }
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  if (auto path = args.Get("issues")) {
    std::string oo;
    fhir::WriteJson(OperationOutcome(issues.Kept()), oo);
    oo += '\n';
    if (!WriteFile(*path, oo)) {
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
  const auto& stats = converter.Stats();
  std::fprintf(stderr,
               "kakehashi convert: %zu files, %zu messages (%zu kept as DocumentReference) in "
               "%.2f s; %zu entries in the output\n",
               stats.files, stats.messages, stats.unmapped, progress.Seconds(), bundle.Size());
  if (!stats.put_by_type.empty()) {
    std::fprintf(stderr, "  resources: %s\n", Join(stats.put_by_type).c_str());
  }
  if (output.Rejected() > 0) {
    std::fprintf(stderr, "  not written: %zu invalid resources (convert.invalid_resource)\n",
                 output.Rejected());
  }
  if (!stats.deleted_by_type.empty()) {
    std::fprintf(stderr, "  deleted:   %s%s\n", Join(stats.deleted_by_type).c_str(),
                 deletes > 0 ? " (not representable in NDJSON: omitted)" : "");
  }
  const auto& counts = issues.Counts();
  std::fprintf(stderr, "  issues:    %zu fatal, %zu error, %zu warning, %zu information\n",
               counts.Count(Severity::kFatal), counts.Count(Severity::kError),
               counts.Count(Severity::kWarning), counts.Count(Severity::kInformation));
  for (const auto& [code, n] : counts.ByCode()) {
    std::fprintf(stderr, "    %-32s %zu\n", code.c_str(), n);
  }
  if (counts.Total() > 0 && !args.Has("issues")) {
    std::fprintf(stderr, "  (write the issues with their locations: --issues FILE)\n");
  }
  const bool failed = unusable_inputs > 0 || counts.Errors() > 0;
  return failed ? kExitInputErrors : kExitOk;
}

}  // namespace kakehashi::app
