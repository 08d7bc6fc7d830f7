// `kakehashi terminology`: code-system lookups, translations, validation and master loading
// (docs/terminology.md "CLI"). Each subcommand prints a FHIR Parameters resource (the OUT
// parameters of the matching R4 operation) built as a fhir::Node and written by fhir::WriteJson;
// problems are added as an "issues" OperationOutcome part and echoed on stderr.
#include "args.hpp"
#include "commands.hpp"

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/gateway/terminology_ops.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/errc.hpp"
#include "kakehashi/terminology/loaders.hpp"
#include "kakehashi/terminology/operations.hpp"
#include "kakehashi/terminology/store.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kakehashi::app {
namespace {

namespace term = kakehashi::terminology;
using fhir::Node;

constexpr const char* kDefaultDb = "data/terminology.sqlite";

constexpr const char* kHelp =
    "Usage: kakehashi terminology <subcommand> [options]\n\n"
    "Japanese code systems, URI normalisation, master files and the FHIR terminology operations.\n"
    "Any spelling of a system is accepted: urn:oid:..., a bare OID, the JP Core 1.1.2 JP_*_CS "
    "alias,\n"
    "the JP Core 1.2.0 URL, or an HL7 v2 coding-system name (HOT9, JC10, MDCDX2, I10, HL70001, "
    "99xxx).\n\n"
    "Subcommands (each prints FHIR Parameters JSON on stdout):\n"
    "  lookup         --system URI --code CODE [--property NAME]...      CodeSystem/$lookup\n"
    "  translate      --source-system URI --code CODE [--target-system URI] [--reverse]\n"
    "                 [--conceptmap URL]                                  ConceptMap/$translate\n"
    "  validate-code  --system URI --code CODE [--valueset URL] [--display TEXT]\n"
    "                                                                     ValueSet/$validate-code\n"
    "  expand         --valueset URL [--filter TEXT] [--offset N] [--count N]  ValueSet/$expand\n"
    "  load KIND FILE load a master: hot, ssk-drug, medis-disease, medis-modifier, jlac10,\n"
    "                 icd10, conceptmap (a site ConceptMap TSV)\n"
    "  stats          concepts per code system, mappings per ConceptMap, loaded masters\n\n"
    "Common options:\n"
    "  --db URL       sqlite:PATH or sqlite::memory: (default sqlite:data/terminology.sqlite, or\n"
    "                 $KAKEHASHI_TERMINOLOGY_DB; built-in tables are always available)\n"
    "  --tables DIR   site override directory for the built-in code tables (*.tsv, file by file)\n"
    "  --profile P    output spelling: jp-core-1.2.0 (default), jp-clins, jp-core-1.1.2, cda\n"
    "  --pretty       indent the JSON\n"
    "  --help         help for a subcommand\n\n"
    "Exit codes: 0 found / loaded, 1 not found (or the master had errors), 2 usage or "
    "environment.\n";

class StderrSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    std::fprintf(stderr, "kakehashi terminology: %s\n", issue.ToString().c_str());
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors;
    issues.push_back(std::move(issue));
  }
  std::size_t errors = 0;
  std::vector<Issue> issues;
};

Node Param(std::string name) {
  Node p = Node::Object();
  p.Set("name", Node::String(std::move(name)));
  return p;
}

Node StringParam(std::string name, std::string type, std::string value) {
  Node p = Param(std::move(name));
  p.Set("value" + type, Node::String(std::move(value)));
  return p;
}

Node IntParam(std::string name, std::size_t value) {
  Node p = Param(std::move(name));
  p.Set("valueInteger", Node::Number(std::to_string(value)));
  return p;
}

Node BoolParam(std::string name, bool value) {
  Node p = Param(std::move(name));
  p.Set("valueBoolean", Node::Bool(value));
  return p;
}

void PrintJson(const Node& resource, bool pretty) {
  fhir::WriteOptions options;
  options.pretty = pretty;
  std::string text = fhir::WriteJson(resource, options);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

class Parameters {
 public:
  Parameters() : root_(Node::Object()), list_(Node::Array()) {
    root_.Set("resourceType", Node::String("Parameters"));
  }
  void Add(Node p) { list_.Push(std::move(p)); }
  void AddString(std::string name, std::string type, std::string value) {
    if (!value.empty()) Add(StringParam(std::move(name), std::move(type), std::move(value)));
  }
  // Problems as an OperationOutcome part (the R5 $validate-code "issues" convention).
  void AddIssues(const std::vector<Issue>& issues) {
    if (issues.empty()) return;
    Node p = Param("issues");
    p.Set("resource", fhir::ToOperationOutcome(issues));
    Add(std::move(p));
  }
  void Print(bool pretty) {
    root_.Set("parameter", std::move(list_));
    PrintJson(root_, pretty);
  }

 private:
  Node root_;
  Node list_;
};

void EchoIssues(const std::vector<Issue>& issues) {
  for (const Issue& i : issues)
    std::fprintf(stderr, "kakehashi terminology: %s\n", i.ToString().c_str());
}

struct Context {
  std::unique_ptr<term::TerminologyStore> store;
  term::ProfileSet profile = term::ProfileSet::kJpCore120;
  bool pretty = false;
};

// Opens the database. Read-only subcommands do not create the default database file: without it
// they run on the built-in tables alone.
int OpenContext(const Args& args, bool create, Context& ctx, StderrSink& sink) {
  std::string db;
  if (auto v = args.Get("db")) {
    db = *v;
  } else if (const char* env = std::getenv("KAKEHASHI_TERMINOLOGY_DB"); env != nullptr && *env) {
    db = env;
  } else {
    db = std::string("sqlite:") + kDefaultDb;
    if (!create && !std::filesystem::exists(kDefaultDb)) db = "sqlite::memory:";
  }
  if (auto p = args.Get("profile")) {
    auto profile = term::ProfileSetFromString(*p);
    if (!profile) {
      std::fprintf(stderr,
                   "kakehashi terminology: unknown --profile (jp-core-1.2.0, jp-clins, "
                   "jp-core-1.1.2, cda)\n");
      return kExitUsage;
    }
    ctx.profile = *profile;
  }
  ctx.pretty = args.Has("pretty");
  term::TerminologyStore::Options options;
  options.db = db;
  options.site_tables = args.GetOr("tables", "");
  auto store = term::TerminologyStore::Open(options, term::CodeSystemRegistry::Builtin(), sink);
  if (!store) {
    std::fprintf(stderr, "kakehashi terminology: cannot open the terminology database: %s\n",
                 store.error().message().c_str());
    return kExitUsage;
  }
  ctx.store = std::move(*store);
  return kExitOk;
}

bool Require(const Args& args, std::initializer_list<const char*> names, const char* help) {
  for (const char* n : names) {
    if (!args.Get(n)) {
      std::fprintf(stderr, "kakehashi terminology: --%s is required\n%s", n, help);
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------------------ subcommands
constexpr const char* kLookupHelp =
    "Usage: kakehashi terminology lookup --system URI --code CODE [--property NAME]...\n"
    "Prints the $lookup OUT parameters (name, version, display, property). Exit 1 when the code\n"
    "is not found (an 'issues' OperationOutcome says why, e.g. the master is not loaded).\n";

int Lookup(const Args& args, Context& ctx) {
  if (!Require(args, {"system", "code"}, kLookupHelp)) return kExitUsage;
  term::TerminologyService service(*ctx.store, ctx.profile);
  term::LookupRequest req{*args.Get("system"), *args.Get("code"), "", args.GetAll("property")};
  auto r = service.Lookup(req);
  EchoIssues(r.issues);
  PrintJson(gateway::LookupParameters(r), ctx.pretty);
  return r.found ? kExitOk : kExitInputErrors;
}

constexpr const char* kTranslateHelp =
    "Usage: kakehashi terminology translate --source-system URI --code CODE\n"
    "         [--target-system URI] [--reverse] [--conceptmap URL]\n"
    "Prints the $translate OUT parameters (result, message, match: equivalence, concept, source).\n"
    "--reverse translates from a target code back to its sources. Exit 1 when nothing matches.\n";

int Translate(const Args& args, Context& ctx) {
  if (!Require(args, {"source-system", "code"}, kTranslateHelp)) return kExitUsage;
  term::TerminologyService service(*ctx.store, ctx.profile);
  term::TranslateRequest req;
  req.url = args.GetOr("conceptmap", "");
  req.system = *args.Get("source-system");
  req.code = *args.Get("code");
  req.targetsystem = args.GetOr("target-system", "");
  req.reverse = args.Has("reverse");
  auto r = service.Translate(req);
  EchoIssues(r.issues);
  PrintJson(gateway::TranslateParameters(r), ctx.pretty);
  return r.result ? kExitOk : kExitInputErrors;
}

constexpr const char* kValidateHelp =
    "Usage: kakehashi terminology validate-code --system URI --code CODE [--valueset URL]\n"
    "         [--display TEXT]\n"
    "Prints the $validate-code OUT parameters (result, message, display). Value sets: the "
    "implicit\n"
    "'all codes' value set of each known code system (its URI, or .../ValueSet/X beside\n"
    ".../CodeSystem/X). Exit 1 when the result is false.\n";

int ValidateCode(const Args& args, Context& ctx) {
  if (!Require(args, {"system", "code"}, kValidateHelp)) return kExitUsage;
  term::TerminologyService service(*ctx.store, ctx.profile);
  term::ValidateCodeRequest req{args.GetOr("valueset", ""), *args.Get("system"), *args.Get("code"),
                                args.GetOr("display", "")};
  auto r = service.ValidateCode(req);
  EchoIssues(r.issues);
  PrintJson(gateway::ValidateCodeParameters(r), ctx.pretty);
  return r.result ? kExitOk : kExitInputErrors;
}

constexpr const char* kExpandHelp =
    "Usage: kakehashi terminology expand --valueset URL [--filter TEXT] [--offset N] [--count N]\n"
    "Prints a Parameters with the expansion (total, offset, contains as valueCoding; default\n"
    "count 100). Exit 1 when the value set is unknown.\n";

int Expand(const Args& args, Context& ctx) {
  if (!Require(args, {"valueset"}, kExpandHelp)) return kExitUsage;
  term::ExpandRequest req;
  req.url = *args.Get("valueset");
  req.filter = args.GetOr("filter", "");
  char* end = nullptr;
  std::string offset = args.GetOr("offset", "0");
  std::string count = args.GetOr("count", "100");
  req.offset = std::strtoul(offset.c_str(), &end, 10);
  bool ok = *end == '\0' && !offset.empty();
  req.count = std::strtoul(count.c_str(), &end, 10);
  ok = ok && *end == '\0' && !count.empty();
  if (!ok) {
    std::fprintf(stderr,
                 "kakehashi terminology: --offset and --count take non-negative integers\n%s",
                 kExpandHelp);
    return kExitUsage;
  }
  term::TerminologyService service(*ctx.store, ctx.profile);
  auto r = service.Expand(req);
  Parameters out;
  out.AddString("url", "Uri", r.url);
  out.Add(IntParam("total", r.total));
  out.Add(IntParam("offset", r.offset));
  for (const auto& c : r.contains) {
    Node p = Param("contains");
    p.Set("valueCoding", gateway::CodingToNode(c));
    out.Add(std::move(p));
  }
  out.AddIssues(r.issues);
  EchoIssues(r.issues);
  out.Print(ctx.pretty);
  return r.found ? kExitOk : kExitInputErrors;
}

constexpr const char* kLoadHelp =
    "Usage: kakehashi terminology load KIND FILE [--db URL]\n"
    "Loads a master file into the terminology database, replacing an earlier load of the same "
    "kind\n"
    "(conceptmap: of the same file stem). CP932 or UTF-8, CRLF or LF, quoted or not, header "
    "optional.\n"
    "KIND: hot (MEDIS HOT, 24 columns), ssk-drug (支払基金 医薬品マスター, 42 columns),\n"
    "      medis-disease (MEDIS 病名基本テーブル), medis-modifier (MEDIS 修飾語テーブル),\n"
    "      jlac10 (code,name[,abbreviation]), icd10 (code,name), conceptmap (code-table TSV).\n"
    "Prints counts; bad rows are skipped with warnings. Exit 1 when the file does not fit KIND.\n";

int Load(const Args& args, Context& ctx, StderrSink& sink) {
  if (args.Positionals().size() != 3) {
    std::fprintf(stderr, "kakehashi terminology: load needs KIND and FILE\n%s", kLoadHelp);
    return kExitUsage;
  }
  auto kind = term::MasterKindFromString(args.Positionals()[1]);
  if (!kind) {
    std::fprintf(stderr, "kakehashi terminology: unknown KIND\n%s", kLoadHelp);
    return kExitUsage;
  }
  std::filesystem::path file = args.Positionals()[2];
  std::fprintf(stderr, "kakehashi terminology: loading %s ...\n", file.filename().string().c_str());
  std::size_t before = sink.issues.size();
  auto record = term::LoadMasterFile(*kind, file, *ctx.store, sink);
  std::vector<Issue> issues(sink.issues.begin() + static_cast<std::ptrdiff_t>(before),
                            sink.issues.end());
  Parameters out;
  if (!record) {
    if (record.error() == term::errc::kIoError) {
      std::fprintf(stderr, "kakehashi terminology: cannot read the file\n");
      return kExitUsage;
    }
    std::fprintf(stderr, "kakehashi terminology: load failed: %s\n",
                 record.error().message().c_str());
    out.Add(BoolParam("result", false));
    out.AddIssues(issues);
    out.Print(ctx.pretty);
    return record.error() == term::errc::kDatabase ? kExitUsage : kExitInputErrors;
  }
  out.Add(BoolParam("result", true));
  out.AddString("kind", "Code", record->kind);
  out.AddString("file", "String", record->file);
  out.AddString("version", "String", record->version);
  out.Add(IntParam("concepts", record->concepts));
  out.Add(IntParam("mappings", record->mappings));
  out.AddIssues(issues);
  out.Print(ctx.pretty);
  std::fprintf(stderr, "kakehashi terminology: loaded %zu concepts, %zu mappings\n",
               record->concepts, record->mappings);
  return kExitOk;
}

int Stats(Context& ctx) {
  auto stats = ctx.store->Stats();
  Parameters out;
  out.Add(IntParam("builtinTables", stats.builtin_tables));
  for (const auto& [system, count] : stats.concepts_by_system) {
    Node part = Node::Array();
    part.Push(StringParam("system", "Uri", ctx.store->Registry().Spell(system, ctx.profile)));
    part.Push(IntParam("concepts", count));
    Node p = Param("codeSystem");
    p.Set("part", std::move(part));
    out.Add(std::move(p));
  }
  for (const auto& [map, count] : stats.mappings_by_map) {
    Node part = Node::Array();
    part.Push(StringParam("url", "Uri", map));
    part.Push(IntParam("mappings", count));
    Node p = Param("conceptMap");
    p.Set("part", std::move(part));
    out.Add(std::move(p));
  }
  for (const auto& l : stats.loads) {
    Node part = Node::Array();
    part.Push(StringParam("kind", "Code", l.kind));
    part.Push(StringParam("file", "String", l.file));
    if (!l.version.empty()) part.Push(StringParam("version", "String", l.version));
    part.Push(IntParam("concepts", l.concepts));
    part.Push(IntParam("mappings", l.mappings));
    part.Push(StringParam("loadedAt", "DateTime", l.loaded_at));
    Node p = Param("load");
    p.Set("part", std::move(part));
    out.Add(std::move(p));
  }
  out.Print(ctx.pretty);
  return kExitOk;
}

}  // namespace

int RunTerminology(const std::vector<std::string>& argv) {
  Args args({"db", "tables", "profile", "system", "code", "property", "source-system",
             "target-system", "conceptmap", "valueset", "display", "filter", "offset", "count"},
            {"help", "reverse", "pretty"});
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi terminology: %s\n%s", args.Error().c_str(), kHelp);
    return kExitUsage;
  }
  const auto& pos = args.Positionals();
  if (pos.empty()) {
    if (args.Help()) {
      std::fputs(kHelp, stdout);
      return kExitOk;
    }
    std::fputs(kHelp, stderr);
    return kExitUsage;
  }
  const std::string& sub = pos[0];
  const char* help = sub == "lookup"          ? kLookupHelp
                     : sub == "translate"     ? kTranslateHelp
                     : sub == "validate-code" ? kValidateHelp
                     : sub == "expand"        ? kExpandHelp
                     : sub == "load"          ? kLoadHelp
                     : sub == "stats"         ? "Usage: kakehashi terminology stats [--db URL]\n"
                                                "Prints concepts per code system, mappings per "
                                                "ConceptMap and the loaded masters.\n"
                                              : nullptr;
  if (help == nullptr) {
    std::fprintf(stderr, "kakehashi terminology: unknown subcommand (see --help)\n");
    return kExitUsage;
  }
  if (args.Help()) {
    std::fputs(help, stdout);
    return kExitOk;
  }
  if (sub != "load" && pos.size() != 1) {
    std::fprintf(stderr, "kakehashi terminology: unexpected argument\n%s", help);
    return kExitUsage;
  }
  StderrSink sink;
  Context ctx;
  if (int rc = OpenContext(args, sub == "load", ctx, sink); rc != kExitOk) return rc;
  if (sink.errors > 0) return kExitUsage;  // a site table was malformed (issues printed)
  if (sub == "lookup") return Lookup(args, ctx);
  if (sub == "translate") return Translate(args, ctx);
  if (sub == "validate-code") return ValidateCode(args, ctx);
  if (sub == "expand") return Expand(args, ctx);
  if (sub == "load") return Load(args, ctx, sink);
  return Stats(ctx);
}

}  // namespace kakehashi::app
