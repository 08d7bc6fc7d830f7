// Evaluation of the search-expression subset of FHIRPath over the JSON tree. Choice elements
// (value[x], effective[x]) appear in JSON as name + type ("effectivePeriod", R4 §2.6.2.5), so a
// step without a cast matches the bare name or the name followed by an R4 data type name.
#include "detail/fhirpath_lite.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <span>

namespace kakehashi::gateway::detail {

namespace {

// R4 data types that may follow a choice element's name (R4 §2.24.0.1 "[x]" types).
constexpr std::array<std::string_view, 50> kChoiceTypes = {"Base64Binary",
                                                           "Boolean",
                                                           "Canonical",
                                                           "Code",
                                                           "Date",
                                                           "DateTime",
                                                           "Decimal",
                                                           "Id",
                                                           "Instant",
                                                           "Integer",
                                                           "Markdown",
                                                           "Oid",
                                                           "PositiveInt",
                                                           "String",
                                                           "Time",
                                                           "UnsignedInt",
                                                           "Uri",
                                                           "Url",
                                                           "Uuid",
                                                           "Address",
                                                           "Age",
                                                           "Annotation",
                                                           "Attachment",
                                                           "CodeableConcept",
                                                           "Coding",
                                                           "ContactPoint",
                                                           "Count",
                                                           "Distance",
                                                           "Duration",
                                                           "HumanName",
                                                           "Identifier",
                                                           "Money",
                                                           "Period",
                                                           "Quantity",
                                                           "Range",
                                                           "Ratio",
                                                           "Reference",
                                                           "SampledData",
                                                           "Signature",
                                                           "Timing",
                                                           "ContactDetail",
                                                           "Contributor",
                                                           "DataRequirement",
                                                           "Expression",
                                                           "ParameterDefinition",
                                                           "RelatedArtifact",
                                                           "TriggerDefinition",
                                                           "UsageContext",
                                                           "Dosage",
                                                           "Meta"};

bool IsChoiceOf(std::string_view key, std::string_view name) {
  if (key.size() <= name.size() || !key.starts_with(name)) return false;
  return IsChoiceTypeName(key.substr(name.size()));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsIdent(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

std::vector<std::string_view> SplitTopLevel(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\'') quoted = !quoted;
    if (quoted) continue;
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == sep && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// Appends the steps of `dots` (member names, .where(…) filters on the step before) to `path`.
bool AddSteps(std::span<const std::string_view> dots, FhirPath& path) {
  for (std::string_view d : dots) {
    if (d.starts_with("where(") && d.ends_with(")")) {
      if (path.steps.empty()) return false;
      std::string_view cond = Trim(d.substr(6, d.size() - 7));
      if (cond.starts_with("resolve() is ")) {
        std::string_view t = Trim(cond.substr(13));
        if (!IsIdent(t)) return false;
        path.steps.back().resolve_is = std::string(t);
        continue;
      }
      auto eq = cond.find('=');
      if (eq == std::string_view::npos) return false;
      std::string_view field = Trim(cond.substr(0, eq));
      std::string_view lit = Trim(cond.substr(eq + 1));
      if (!IsIdent(field) || lit.size() < 2 || lit.front() != '\'' || lit.back() != '\'') {
        return false;
      }
      path.steps.back().where_field = std::string(field);
      path.steps.back().where_value = std::string(lit.substr(1, lit.size() - 2));
      continue;
    }
    if (!IsIdent(d) || !(d[0] >= 'a' && d[0] <= 'z')) return false;
    path.steps.push_back(FhirPathStep{std::string(d), {}, {}, {}});
  }
  return true;
}

std::optional<FhirPath> CompileOne(std::string_view part) {
  part = Trim(part);
  // X.exists() and X != false (the same X twice)
  if (auto exists = part.find(".exists() and "); exists != std::string_view::npos) {
    std::string_view x = part.substr(0, exists);
    std::string_view test = part.substr(exists + 14);
    if (!test.starts_with(x) || Trim(test.substr(x.size())) != "!= false") return std::nullopt;
    auto path = CompileOne(x);
    if (!path || path->exists_not_false) return std::nullopt;
    path->exists_not_false = true;
    return path;
  }
  std::string cast;
  std::string_view after;  // ".b" of "(X as T).b"
  // (X as T)[.b…]
  if (part.starts_with("(")) {
    int depth = 0;
    std::size_t close = std::string_view::npos;
    for (std::size_t i = 0; i < part.size() && close == std::string_view::npos; ++i) {
      if (part[i] == '(') ++depth;
      if (part[i] == ')' && --depth == 0) close = i;
    }
    if (close == std::string_view::npos) return std::nullopt;
    after = part.substr(close + 1);
    if (!after.empty() && (!after.starts_with('.') || after.size() < 2)) return std::nullopt;
    part = Trim(part.substr(1, close - 1));
    auto as = part.find(" as ");
    if (as == std::string_view::npos) return std::nullopt;
    cast = std::string(Trim(part.substr(as + 4)));
    part = Trim(part.substr(0, as));
    if (!IsIdent(cast)) return std::nullopt;
  }
  auto dots = SplitTopLevel(part, '.');
  if (dots.size() < 2 || !IsIdent(dots[0])) return std::nullopt;
  FhirPath path;
  path.base = std::string(dots[0]);
  std::span<const std::string_view> steps(dots.data() + 1, dots.size() - 1);
  // X.as(T) at the end
  if (const std::string_view last = steps.back(); last.starts_with("as(") && last.ends_with(")")) {
    if (!cast.empty() || steps.size() < 2) return std::nullopt;
    cast = std::string(last.substr(3, last.size() - 4));
    if (!IsIdent(cast)) return std::nullopt;
    steps = steps.first(steps.size() - 1);
  }
  if (!AddSteps(steps, path) || path.steps.empty()) return std::nullopt;
  if (!cast.empty()) {
    // Choice-type selection: value as Quantity -> valueQuantity (R4 §2.24.0.1).
    std::string t = cast;
    t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    path.steps.back().name += t;
  }
  if (!after.empty()) {
    const auto more = SplitTopLevel(after.substr(1), '.');
    if (!AddSteps(more, path)) return std::nullopt;
  }
  return path;
}

void Walk(const Json& node, const FhirPath& path, std::size_t step, std::vector<const Json*>& out);

void Accept(const Json& value, const FhirPath& path, std::size_t step,
            std::vector<const Json*>& out) {
  const FhirPathStep& s = path.steps[step];
  if (!s.resolve_is.empty()) {
    if (!value.IsObject() || ReferenceTargetType(value.Str("reference")) != s.resolve_is) return;
  }
  if (!s.where_field.empty()) {
    if (!value.IsObject() || value.Str(s.where_field) != s.where_value) return;
  }
  if (step + 1 == path.steps.size()) {
    out.push_back(&value);
  } else {
    Walk(value, path, step + 1, out);
  }
}

void Walk(const Json& node, const FhirPath& path, std::size_t step, std::vector<const Json*>& out) {
  if (!node.IsObject()) return;
  const FhirPathStep& s = path.steps[step];
  for (const auto& [key, value] : node.Members()) {
    if (key != s.name && !IsChoiceOf(key, s.name)) continue;
    if (value.IsArray()) {
      for (const Json& item : value.Items()) Accept(item, path, step, out);
    } else {
      Accept(value, path, step, out);
    }
  }
}

}  // namespace

bool IsChoiceTypeName(std::string_view suffix) {
  return std::find(kChoiceTypes.begin(), kChoiceTypes.end(), suffix) != kChoiceTypes.end();
}

std::optional<std::vector<FhirPath>> CompileFhirPath(std::string_view expression) {
  std::vector<FhirPath> paths;
  for (std::string_view part : SplitTopLevel(expression, '|')) {
    auto p = CompileOne(part);
    if (!p) return std::nullopt;
    paths.push_back(std::move(*p));
  }
  return paths;
}

void EvaluateFhirPath(const Json& resource, const FhirPath& path, std::vector<const Json*>& out) {
  if (resource.Str("resourceType") != path.base) return;
  if (path.steps.empty()) {
    out.push_back(&resource);
    return;
  }
  if (!path.exists_not_false) {
    Walk(resource, path, 0, out);
    return;
  }
  static const Json kTrue = Json::Bool(true);
  static const Json kFalse = Json::Bool(false);
  std::vector<const Json*> found;
  Walk(resource, path, 0, found);
  const bool value = std::any_of(found.begin(), found.end(),
                                 [](const Json* v) { return !(v->IsBool() && !v->AsBool()); });
  out.push_back(value ? &kTrue : &kFalse);
}

void EvaluateFhirPathAt(const Json& node, const FhirPath& path, std::vector<const Json*>& out) {
  if (!path.steps.empty()) Walk(node, path, 0, out);
}

std::string_view ReferenceTargetType(std::string_view reference) {
  auto hash = reference.find('#');
  if (hash == 0) return {};
  auto history = reference.find("/_history/");
  if (history != std::string_view::npos) reference = reference.substr(0, history);
  auto slash = reference.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return {};
  std::string_view head = reference.substr(0, slash);
  auto prev = head.rfind('/');
  std::string_view type = prev == std::string_view::npos ? head : head.substr(prev + 1);
  if (type.empty() || !(type[0] >= 'A' && type[0] <= 'Z')) return {};
  return type;
}

}  // namespace kakehashi::gateway::detail
