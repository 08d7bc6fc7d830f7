#include "kakehashi/terminology/operations.hpp"

#include <algorithm>

namespace kakehashi::terminology {
namespace {

// The location names the operation's IN parameter the issue is about (never its value).
Issue MakeIssue(Severity severity, std::string_view code, std::string message) {
  Issue issue;
  issue.severity = severity;
  issue.code = code;
  issue.message = std::move(message);
  if (code == "terminology.master_not_loaded" || code == "terminology.unknown_system") {
    issue.where.field = "system";
  } else if (code == "terminology.code_not_found" || code == "terminology.no_translation" ||
             code == "terminology.inactive_code") {
    issue.where.field = "code";
  } else if (code == "terminology.unknown_valueset") {
    issue.where.field = "url";
  } else if (code == "terminology.display_mismatch") {
    issue.where.field = "display";
  }
  return issue;
}

Location ParamAt(const char* parameter) {
  Location where;
  where.field = parameter;
  return where;
}

// Reverse translation swaps the direction of subsumption (R4 concept-map-equivalence).
std::string ReverseEquivalence(const std::string& e) {
  if (e == "wider") return "narrower";
  if (e == "narrower") return "wider";
  if (e == "subsumes") return "specializes";
  if (e == "specializes") return "subsumes";
  return e;
}

// Collects issues reported through IssueSink into a vector (for result structs).
class VectorSink final : public IssueSink {
 public:
  explicit VectorSink(std::vector<Issue>& out) : out_(out) {}
  void Report(Issue issue) override { out_.push_back(std::move(issue)); }

 private:
  std::vector<Issue>& out_;
};

}  // namespace

const Concept* TerminologyService::Find(std::string_view system, std::string_view code) const {
  // Fast path: the caller passed a canonical spelling.
  if (const Concept* c = store_.Find(system, code)) return c;
  if (const CodeSystemInfo* info = registry_.Find(system))
    return store_.Find(info->canonical, code);
  // Slow path: local 99xxx names and unregistered HL7nnnn tables (Normalize allocates).
  NormalizedSystem ns = registry_.Normalize(system);
  return ns.match == SystemMatch::kUnknown ? nullptr : store_.Find(ns.canonical, code);
}

LookupResult TerminologyService::Lookup(const LookupRequest& request) const {
  LookupResult out;
  VectorSink sink(out.issues);
  NormalizedSystem ns = registry_.Normalize(request.system, &sink, ParamAt("system"));
  out.system = registry_.Spell(ns.canonical, output_);
  out.name = ns.info != nullptr ? ns.info->title : ns.canonical;
  if (ns.match == SystemMatch::kEmpty || request.code.empty()) {
    out.issues.push_back(MakeIssue(Severity::kError, "terminology.missing_parameter",
                                   "$lookup needs both system and code"));
    return out;
  }
  const Concept* c = store_.Find(ns.canonical, request.code);
  if (c == nullptr) {
    if (!store_.HasSystem(ns.canonical)) {
      out.issues.push_back(
          MakeIssue(Severity::kWarning, "terminology.master_not_loaded",
                    "no concept of this code system is loaded; load its master with `kakehashi "
                    "terminology load` (the code is kept as given)"));
    } else {
      out.issues.push_back(MakeIssue(Severity::kError, "terminology.code_not_found",
                                     "the code is not in the loaded code system"));
    }
    return out;
  }
  out.found = true;
  out.display = c->display;
  out.version = c->version;
  out.active = c->active;
  for (const Property& p : c->properties) {
    if (request.property.empty() || std::find(request.property.begin(), request.property.end(),
                                              p.code) != request.property.end()) {
      out.property.push_back(p);
    }
  }
  if (!c->active) out.property.push_back({"inactive", "true"});
  return out;
}

std::string TerminologyService::ValueSetSystem(std::string_view url) const {
  if (const CodeSystemInfo* info = registry_.Find(url)) return info->canonical;
  // FHIR convention: a code system's "all codes" ValueSet sits beside it.
  std::string s(url);
  constexpr std::string_view kVs = "/ValueSet/";
  if (auto pos = s.find(kVs); pos != std::string::npos) {
    std::string candidate = s.substr(0, pos) + "/CodeSystem/" + s.substr(pos + kVs.size());
    if (const CodeSystemInfo* info = registry_.Find(candidate)) return info->canonical;
  }
  constexpr std::string_view kHl7Vs = "http://hl7.org/fhir/ValueSet/";
  if (s.compare(0, kHl7Vs.size(), kHl7Vs) == 0) {
    std::string candidate = "http://hl7.org/fhir/" + s.substr(kHl7Vs.size());
    if (const CodeSystemInfo* info = registry_.Find(candidate)) return info->canonical;
  }
  return {};
}

ValidateCodeResult TerminologyService::ValidateCode(const ValidateCodeRequest& request) const {
  ValidateCodeResult out;
  VectorSink sink(out.issues);
  NormalizedSystem ns = registry_.Normalize(request.system, &sink, ParamAt("system"));
  std::string system = ns.canonical;
  if (!request.url.empty()) {
    std::string vs_system = ValueSetSystem(request.url);
    if (vs_system.empty()) {
      out.message = "the value set is not known to kakehashi";
      out.issues.push_back(
          MakeIssue(Severity::kError, "terminology.unknown_valueset", out.message));
      return out;
    }
    if (!request.system.empty() && vs_system != system) {
      out.message = "the code system is not included in the value set";
      out.issues.push_back(MakeIssue(Severity::kError, "terminology.code_not_found", out.message));
      return out;
    }
    system = vs_system;
  }
  if (system.empty() || request.code.empty()) {
    out.message = "$validate-code needs a code and a system or value set";
    out.issues.push_back(MakeIssue(Severity::kError, "terminology.missing_parameter", out.message));
    return out;
  }
  const Concept* c = store_.Find(system, request.code);
  if (c == nullptr) {
    if (!store_.HasSystem(system)) {
      out.message = "the code system's master is not loaded; the code cannot be validated";
      out.issues.push_back(
          MakeIssue(Severity::kWarning, "terminology.master_not_loaded", out.message));
    } else {
      out.message = "the code is not in the code system";
      out.issues.push_back(MakeIssue(Severity::kError, "terminology.code_not_found", out.message));
    }
    return out;
  }
  out.display = c->display;
  if (!request.display.empty() && !c->display.empty() && request.display != c->display) {
    out.result = false;
    out.message = "the display does not match the code system's display";
    out.issues.push_back(MakeIssue(Severity::kError, "terminology.display_mismatch", out.message));
    return out;
  }
  out.result = true;
  if (!c->active) {
    out.message = "the code is inactive (abolished or replaced)";
    out.issues.push_back(MakeIssue(Severity::kWarning, "terminology.inactive_code", out.message));
  }
  return out;
}

ExpandResult TerminologyService::Expand(const ExpandRequest& request) const {
  ExpandResult out;
  out.url = request.url;
  out.offset = request.offset;
  std::string system = ValueSetSystem(request.url);
  if (system.empty()) {
    out.issues.push_back(MakeIssue(Severity::kError, "terminology.unknown_valueset",
                                   "the value set is not known to kakehashi"));
    return out;
  }
  out.found = true;
  std::vector<const Concept*> matches;
  store_.ForEachConcept(system, [&](const Concept& c) {
    if (request.filter.empty() || c.code.find(request.filter) != std::string::npos ||
        c.display.find(request.filter) != std::string::npos) {
      matches.push_back(&c);
    }
  });
  if (matches.empty() && !store_.HasSystem(system)) {
    out.issues.push_back(MakeIssue(Severity::kWarning, "terminology.master_not_loaded",
                                   "no concept of this code system is loaded"));
  }
  std::sort(matches.begin(), matches.end(),
            [](const Concept* a, const Concept* b) { return a->code < b->code; });
  out.total = matches.size();
  std::string spelled = registry_.Spell(system, output_);
  for (std::size_t i = request.offset; i < matches.size() && out.contains.size() < request.count;
       ++i) {
    out.contains.push_back({spelled, matches[i]->code, matches[i]->display, matches[i]->version});
  }
  return out;
}

TranslateResult TerminologyService::Translate(const TranslateRequest& request) const {
  TranslateResult out;
  VectorSink sink(out.issues);
  NormalizedSystem ns = registry_.Normalize(request.system, &sink, ParamAt("system"));
  std::string target;
  if (!request.targetsystem.empty())
    target = registry_.Normalize(request.targetsystem, &sink, ParamAt("targetsystem")).canonical;
  const auto* list = request.reverse ? store_.MappingsTo(ns.canonical, request.code)
                                     : store_.MappingsFrom(ns.canonical, request.code);
  std::string_view profile = ToString(output_);
  if (list != nullptr) {
    for (const Mapping* m : *list) {
      if (!request.url.empty() && m->map != request.url) continue;
      if (!m->version.empty() && m->version != profile) continue;
      const std::string& other_system = request.reverse ? m->source_system : m->target_system;
      const std::string& other_code = request.reverse ? m->source_code : m->target_code;
      if (!target.empty() && other_system != target) continue;
      TranslateMatch match;
      match.equivalence = request.reverse ? ReverseEquivalence(m->equivalence) : m->equivalence;
      match.coding.system = registry_.Spell(other_system, output_);
      match.coding.code = other_code;
      if (request.reverse) {
        const Concept* c = store_.Find(other_system, other_code);
        match.coding.display = c != nullptr ? c->display : "";
      } else {
        match.coding.display = m->target_display;
        if (match.coding.display.empty()) {
          if (const Concept* c = store_.Find(other_system, other_code))
            match.coding.display = c->display;
        }
      }
      match.source = m->map;
      out.match.push_back(std::move(match));
    }
  }
  out.result = !out.match.empty();
  if (!out.result) {
    out.message = "no mapping found for the code";
    out.issues.push_back(MakeIssue(Severity::kWarning, "terminology.no_translation", out.message));
  } else {
    out.message = std::to_string(out.match.size()) + " match(es)";
  }
  return out;
}

Coding TerminologyService::Canonicalize(const Coding& in, IssueSink& issues,
                                        const Location& where) const {
  Coding out = in;
  NormalizedSystem ns = registry_.Normalize(in.system, &issues, where);
  if (std::string_view home = RehomeByCodeShape(ns.canonical, in.code); home != ns.canonical) {
    issues.Info("terminology.rehomed", where,
                "the code's shape belongs to another code system than the one named; re-homed "
                "(eprescription.md §5)");
    ns.canonical = std::string(home);
  }
  out.system = registry_.Spell(ns.canonical, output_);
  if (ns.match == SystemMatch::kEmpty || in.code.empty()) return out;
  if (const Concept* c = store_.Find(ns.canonical, in.code)) {
    if (out.display.empty()) out.display = c->display;
  } else if (ns.match == SystemMatch::kKnown && !store_.HasSystem(ns.canonical)) {
    issues.Warning("terminology.master_not_loaded", where,
                   "the code system's master is not loaded; code and text kept as given");
  }
  return out;
}

TranslatedCoding TerminologyService::TranslateCoding(const Coding& in,
                                                     std::string_view target_system,
                                                     IssueSink& issues,
                                                     const Location& where) const {
  TranslatedCoding out;
  out.original = Canonicalize(in, issues, where);
  TranslateRequest request;
  request.system = in.system;
  request.code = in.code;
  request.targetsystem = std::string(target_system);
  TranslateResult r = Translate(request);
  if (!r.result) {
    issues.Warning(
        "terminology.no_translation", where,
        "no ConceptMap maps this code to the target system; the original coding is kept");
    return out;
  }
  out.translated = r.match.front().coding;
  out.equivalence = r.match.front().equivalence;
  out.map = r.match.front().source;
  return out;
}

}  // namespace kakehashi::terminology
