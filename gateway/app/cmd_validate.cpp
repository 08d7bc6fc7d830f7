// kakehashi validate FILE... — validates FHIR R4 JSON (resources, Bundles, NDJSON) with
// conformance::Validator and prints one line per resource. See docs/conformance.md.
#include "args.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::app {
namespace {

constexpr const char* kHelp =
    "Usage: kakehashi validate [options] FILE...\n"
    "\n"
    "Validates FHIR R4 JSON against the base R4 StructureDefinitions: unknown elements,\n"
    "cardinality, JSON types, choice types, primitive formats (the spec's regexes), Resource.id\n"
    "syntax, required bindings, empty elements, primitive extensions, contained resources and\n"
    "references (ele-1, ext-1, ref-1, dom-2..5, bdl-1..12). JP Core profiles and other\n"
    "FHIRPath invariants are not checked yet (docs/conformance.md).\n"
    "\n"
    "FILE is a resource (.json), a Bundle (validated as a whole, then reported per entry) or\n"
    "NDJSON (.ndjson, .jsonl: one resource per line). \"-\" reads standard input as one JSON\n"
    "resource.\n"
    "\n"
    "Options:\n"
    "  --format text|json  text (default): one line per resource, its issues indented below:\n"
    "                        OK    FILE Patient/123\n"
    "                        ERROR FILE#3 Observation/9: 2 errors, 1 warning\n"
    "                      #N is the 1-based line of an NDJSON file, #entry[i] a Bundle entry.\n"
    "                      json: one OperationOutcome per resource and line (NDJSON), issues\n"
    "                      with severity, details.coding (kakehashi code), expression (path).\n"
    "  --quiet             print only resources with errors, and no summary\n"
    "  --help              show this help\n"
    "\n"
    "Issue messages name elements, never their values.\n"
    "Exit codes: 0 every resource is valid (warnings allowed), 1 a resource has errors or a\n"
    "file is not valid JSON, 2 usage error or a file cannot be read.\n";

constexpr std::string_view kCodeJson = "conformance.json";
constexpr std::string_view kCodeOk = "conformance.ok";

struct Options {
  bool json = false;
  bool quiet = false;
};

struct Totals {
  std::size_t resources = 0;
  // Progress on stderr for long runs, only when stderr is a terminal (never in pipelines).
  bool progress = false;
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  std::size_t invalid = 0;
  std::size_t errors = 0;
  std::size_t warnings = 0;
};

std::string ResourceLabel(const fhir::Node& resource) {
  std::string label(resource.ResourceType());
  if (label.empty()) return "(no resourceType)";
  if (const fhir::Node* id = resource.Find("id"); id != nullptr && id->IsString()) {
    label += '/';
    label += id->Text();
  }
  return label;
}

class Printer {
 public:
  Printer(const Options& options, Totals& totals) : options_(options), totals_(totals) {}

  // One resource line (and its issues).
  void Resource(const std::string& where, const std::string& label,
                const std::vector<Issue>& issues, const Location& base) {
    std::size_t errors = 0, warnings = 0;
    for (const Issue& issue : issues) {
      if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors;
      if (issue.severity == Severity::kWarning) ++warnings;
    }
    ++totals_.resources;
    if (totals_.progress && totals_.resources % 1000 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - totals_.last_progress >= std::chrono::seconds(1)) {
        totals_.last_progress = now;
        std::fprintf(stderr, "\rvalidated %zu resource(s), %zu with errors...", totals_.resources,
                     totals_.invalid);
      }
    }
    if (errors > 0) ++totals_.invalid;
    totals_.errors += errors;
    totals_.warnings += warnings;
    if (options_.quiet && errors == 0) return;
    if (options_.json) {
      std::string out;
      if (issues.empty()) {
        // Say which resource was found valid (the empty outcome has no location).
        Location at = base;
        at.record = where.substr(std::min(where.size(), base.source.size()));
        fhir::WriteJson(
            conformance::OutcomeOf({Issue{Severity::kInformation, kCodeOk, at, "no issues found"}}),
            out);
      } else {
        fhir::WriteJson(conformance::OutcomeOf(issues), out);
      }
      std::printf("%s\n", out.c_str());
      return;
    }
    std::string line = errors > 0 ? "ERROR " : "OK    ";
    line += where;
    line += ' ';
    line += label;
    if (errors > 0 || warnings > 0) {
      line += ": ";
      if (errors > 0) line += std::to_string(errors) + (errors == 1 ? " error" : " errors");
      if (errors > 0 && warnings > 0) line += ", ";
      if (warnings > 0) {
        line += std::to_string(warnings) + (warnings == 1 ? " warning" : " warnings");
      }
    }
    std::printf("%s\n", line.c_str());
    for (const Issue& issue : issues) {
      const std::string_view severity = ToString(issue.severity);
      std::printf("    %-11.*s %.*s at %s: %s\n", static_cast<int>(severity.size()),
                  severity.data(), static_cast<int>(issue.code.size()), issue.code.data(),
                  issue.where.fhir_path.empty() ? "(resource)" : issue.where.fhir_path.c_str(),
                  issue.message.c_str());
    }
  }

 private:
  const Options& options_;
  Totals& totals_;
};

// Index of the Bundle entry an issue path belongs to ("Bundle.entry[3].resource..." -> 3), or
// -1 for Bundle-level issues.
long EntryOf(std::string_view path) {
  constexpr std::string_view kPrefix = "Bundle.entry[";
  if (path.substr(0, kPrefix.size()) != kPrefix) return -1;
  std::size_t i = kPrefix.size();
  long index = 0;
  bool digits = false;
  while (i < path.size() && path[i] >= '0' && path[i] <= '9') {
    index = index * 10 + (path[i] - '0');
    digits = true;
    ++i;
  }
  constexpr std::string_view kResource = "].resource";
  if (!digits || path.substr(i, kResource.size()) != kResource) return -1;
  i += kResource.size();
  if (i < path.size() && path[i] != '.') return -1;
  return index;
}

// Validates one parsed resource; a Bundle is validated whole and reported per entry.
void ValidateOne(const conformance::Validator& validator, const fhir::Node& resource,
                 const std::string& where, const Location& base, Printer& printer) {
  CollectingSink sink;
  validator.Validate(resource, sink, base);
  if (resource.ResourceType() != "Bundle") {
    printer.Resource(where, ResourceLabel(resource), sink.Issues(), base);
    return;
  }
  const fhir::Node* entries = resource.Find("entry");
  const std::size_t count = entries != nullptr && entries->IsArray() ? entries->Size() : 0;
  std::vector<std::vector<Issue>> per_entry(count);
  std::vector<Issue> bundle_level;
  for (const Issue& issue : sink.Issues()) {
    const long entry = EntryOf(issue.where.fhir_path);
    if (entry >= 0 && static_cast<std::size_t>(entry) < count) {
      per_entry[static_cast<std::size_t>(entry)].push_back(issue);
    } else {
      bundle_level.push_back(issue);
    }
  }
  printer.Resource(where,
                   ResourceLabel(resource) + " (" + std::to_string(count) +
                       (count == 1 ? " entry)" : " entries)"),
                   bundle_level, base);
  for (std::size_t i = 0; i < count; ++i) {
    const fhir::Node* entry_resource =
        entries->Child(i).IsObject() ? entries->Child(i).Find("resource") : nullptr;
    const std::string label = entry_resource != nullptr && entry_resource->IsObject()
                                  ? ResourceLabel(*entry_resource)
                                  : "(no resource)";
    printer.Resource(where + "#entry[" + std::to_string(i) + "]", label, per_entry[i], base);
  }
}

// Parses JSON text into a Node; on failure reports a conformance.json issue line.
bool Parse(std::string_view text, const std::string& where, const Location& base, fhir::Node* out,
           Printer& printer) {
  auto parsed = fhir::ParseJson(text);
  if (parsed) {
    *out = std::move(*parsed);
    return true;
  }
  Issue issue{Severity::kError, kCodeJson, base, "not valid JSON: " + parsed.error().message()};
  printer.Resource(where, "(unparsable)", {issue}, base);
  return false;
}

bool IsNdjson(std::string_view path) {
  auto ends = [&](std::string_view s) {
    return path.size() >= s.size() && path.substr(path.size() - s.size()) == s;
  };
  return ends(".ndjson") || ends(".jsonl");
}

// Returns false when the file cannot be read.
bool ValidateFile(const conformance::Validator& validator, const std::string& path,
                  Printer& printer) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "kakehashi validate: cannot read %s\n", path.c_str());
      return false;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) {
      std::fprintf(stderr, "kakehashi validate: cannot read %s\n", path.c_str());
      return false;
    }
    text = std::move(buffer).str();
  }
  if (!IsNdjson(path)) {
    Location base;
    base.source = path;
    fhir::Node resource;
    if (Parse(text, path, base, &resource, printer)) {
      ValidateOne(validator, resource, path, base, printer);
    }
    return true;
  }
  std::size_t start = 0;
  std::size_t line_number = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_number;
    std::string_view line(text.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    Location base;
    base.source = path;
    base.line = static_cast<std::int64_t>(line_number);
    const std::string where = path + "#" + std::to_string(line_number);
    fhir::Node resource;
    if (Parse(line, where, base, &resource, printer)) {
      ValidateOne(validator, resource, where, base, printer);
    }
  }
  return true;
}

}  // namespace

int RunValidate(const std::vector<std::string>& argv) {
  Args args({"format"}, {"help", "quiet"});
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi validate: %s (see kakehashi validate --help)\n",
                 args.Error().c_str());
    return kExitUsage;
  }
  if (args.Help()) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  Options options;
  const std::string format = args.GetOr("format", "text");
  if (format != "text" && format != "json") {
    std::fprintf(stderr, "kakehashi validate: --format must be text or json\n");
    return kExitUsage;
  }
  options.json = format == "json";
  options.quiet = args.Has("quiet");
  if (args.Positionals().empty()) {
    std::fprintf(stderr, "kakehashi validate: no input files (see kakehashi validate --help)\n");
    return kExitUsage;
  }

  const conformance::Validator validator;
  Totals totals;
  totals.progress = !options.quiet && isatty(STDERR_FILENO) == 1;
  Printer printer(options, totals);
  bool unreadable = false;
  for (const std::string& path : args.Positionals()) {
    if (!ValidateFile(validator, path, printer)) unreadable = true;
    std::fflush(stdout);
  }
  if (!options.quiet) {
    std::fprintf(stderr,
                 "validated %zu resource(s): %zu with errors; %zu error(s), %zu warning(s)\n",
                 totals.resources, totals.invalid, totals.errors, totals.warnings);
  }
  if (unreadable) return kExitUsage;
  return totals.invalid > 0 ? kExitInputErrors : kExitOk;
}

}  // namespace kakehashi::app
