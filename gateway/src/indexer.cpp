// How values become index rows (R4 §3.1.1.4 "search parameter types"):
//   token     Coding/CodeableConcept.coding (system|code), Identifier (system|value),
//             ContactPoint (value), code/string/uri/boolean primitives (no system); for :text
//             (code:text rows of idx_string, NFKC case folded) CodeableConcept.text,
//             Coding.display, Identifier.type.text
//   string    primitives; HumanName family/given/prefix/suffix/text; Address parts; NFKC case
//             folded, and as received for :exact (code:exact rows)
//   date      date/dateTime/instant, Period start..end, Timing.event
//   reference Reference.reference (Type/id, absolute URLs by their last two segments),
//             canonical/uri primitives (whole URL); for :identifier (code:identifier rows of
//             idx_token) Reference.identifier system|value
//   of-type   (code:of-type rows of idx_composite) each Identifier.type Coding with the value
//   quantity  Quantity/Age/Duration/… value+system+code; with a UCUM system and a code that
//             terminology::ucum converts, also a code:ucum row in the canonical unit (value
//             times the unit's factor, code the canonical unit; decision 0047); number: plain
//             numbers
//   _text     the narrative without markup; _content every string value (text_search.hpp)
//   composite each pair of its two components' values found on one context element (the
//             resource, or each Observation.component, DocumentReference.relatesTo …)
#include "indexer.hpp"

#include "detail/values.hpp"
#include "kakehashi/terminology/ucum.hpp"
#include "search_params.hpp"
#include "text_search.hpp"

#include <unicode/uvernum.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kakehashi::gateway::detail {

namespace {

// `exact`: the code of the rows of values as received (:exact), or null for none.
void AddString(const std::string& param, const std::string* exact, const Json& v,
               store::IndexEntries& out) {
  if (v.IsString()) {
    std::string n = NormalizeForSearch(v.Text());
    if (n.empty()) return;
    out.strings.push_back({param, std::move(n)});
    if (exact != nullptr) out.strings.push_back({*exact, std::string(v.Text())});
    return;
  }
  if (!v.IsObject()) return;
  // HumanName and Address: every textual part is searchable (R4 §3.1.1.4.6).
  for (std::string_view key : {"family", "text", "city", "district", "state", "postalCode",
                               "country", "given", "prefix", "suffix", "line"}) {
    const Json* part = v.Find(key);
    if (part == nullptr) continue;
    if (part->IsString()) {
      AddString(param, exact, *part, out);
    } else if (part->IsArray()) {
      for (const Json& item : part->Items()) AddString(param, exact, item, out);
    }
  }
  // "yamada taro" as one value too, so a full name typed with a space matches.
  const Json* family = v.Find("family");
  const Json* given = v.Find("given");
  if (family != nullptr && family->IsString() && given != nullptr && given->IsArray() &&
      !given->Items().empty() && given->Items()[0].IsString()) {
    std::string full = std::string(family->Text()) + " ";
    full += given->Items()[0].Text();
    out.strings.push_back({param, NormalizeForSearch(full)});  // not an element's value: no :exact
  }
}

// A display text of a token value for :text (R4 search.html "text": CodeableConcept.text,
// Coding.display, Identifier.type.text), matched like a string: NFKC case folded.
void AddText(const std::string* text_code, std::string_view text, store::IndexEntries& out) {
  if (text_code == nullptr || text.empty()) return;
  std::string n = NormalizeForSearch(text);
  if (!n.empty()) out.strings.push_back({*text_code, std::move(n)});
}

// `text_code`: the code of the :text rows, `of_type_code` of the :of-type rows, or null.
void AddToken(const std::string& param, const std::string* text_code, const Json& v,
              store::IndexEntries& out, const std::string* of_type_code = nullptr) {
  if (v.IsString()) {
    out.tokens.push_back({param, "", v.Text()});
    return;
  }
  if (v.IsBool()) {
    out.tokens.push_back({param, "", v.AsBool() ? "true" : "false"});
    return;
  }
  if (!v.IsObject()) return;
  if (const Json* codings = v.Find("coding"); codings != nullptr && codings->IsArray()) {
    for (const Json& c : codings->Items()) AddToken(param, text_code, c, out);  // CodeableConcept
    AddText(text_code, v.Str("text"), out);
    return;
  }
  if (v.Find("code") != nullptr) {  // Coding
    out.tokens.push_back({param, std::string(v.Str("system")), std::string(v.Str("code"))});
    AddText(text_code, v.Str("display"), out);
    return;
  }
  if (v.Find("value") != nullptr && v.Find("value")->IsString()) {  // Identifier, ContactPoint
    std::string system(v.Str("system"));
    // ContactPoint.system is a code (phone/email), not a URI: index the value without it.
    if (system == "phone" || system == "email" || system == "fax" || system == "url" ||
        system == "sms" || system == "pager" || system == "other") {
      system.clear();
    }
    if (const Json* type = v.Find("type"); type != nullptr && type->IsObject()) {
      AddText(text_code, type->Str("text"), out);  // Identifier.type
      // :of-type (R4 search.html "of-type"): each type Coding with the value, one pair.
      const Json* codings = type->Find("coding");
      if (of_type_code != nullptr && codings != nullptr && codings->IsArray()) {
        for (const Json& c : codings->Items()) {
          if (!c.IsObject() || c.Str("code").empty()) continue;
          out.composites.push_back({*of_type_code, std::string(c.Str("system")),
                                    std::string(c.Str("code")), "", std::string(v.Str("value")), 0,
                                    0, 0});
        }
      }
    }
    out.tokens.push_back({param, std::move(system), std::string(v.Str("value"))});
    return;
  }
  AddText(text_code, v.Str("text"), out);  // a CodeableConcept with text only
}

void AddDate(const std::string& param, const Json& v, store::IndexEntries& out) {
  if (v.IsString()) {
    if (auto r = ParseFhirDateRange(v.Text())) out.dates.push_back({param, r->low_us, r->high_us});
    return;
  }
  if (!v.IsObject()) return;
  if (v.Find("start") != nullptr || v.Find("end") != nullptr) {  // Period: open ends unbounded
    std::int64_t lo = std::numeric_limits<std::int64_t>::min() / 2;
    std::int64_t hi = std::numeric_limits<std::int64_t>::max() / 2;
    if (auto r = ParseFhirDateRange(v.Str("start"))) lo = r->low_us;
    if (auto r = ParseFhirDateRange(v.Str("end"))) hi = r->high_us;
    out.dates.push_back({param, lo, hi});
    return;
  }
  if (const Json* events = v.Find("event"); events != nullptr && events->IsArray()) {
    for (const Json& e : events->Items()) AddDate(param, e, out);  // Timing
  }
}

// `identifier_code`: the code of the :identifier rows (Reference.identifier), or null for none.
void AddReference(const std::string& param, const Json& v, store::IndexEntries& out,
                  const std::string* identifier_code = nullptr) {
  if (v.IsString()) {  // canonical / uri
    out.references.push_back({param, "", v.Text()});
    return;
  }
  if (!v.IsObject()) return;
  if (const Json* identifier = v.Find("identifier");
      identifier_code != nullptr && identifier != nullptr && identifier->IsObject() &&
      identifier->Find("value") != nullptr && identifier->Find("value")->IsString()) {
    out.tokens.push_back({*identifier_code, std::string(identifier->Str("system")),
                          std::string(identifier->Str("value"))});
  }
  std::string_view ref = v.Str("reference");
  if (ref.empty() || ref[0] == '#') return;
  std::string_view type = ReferenceTargetType(ref);
  if (type.empty()) {
    out.references.push_back({param, "", std::string(ref)});
    return;
  }
  auto history = ref.find("/_history/");
  if (history != std::string_view::npos) ref = ref.substr(0, history);
  std::string_view id = ref.substr(ref.rfind('/') + 1);
  out.references.push_back({param, std::string(type), std::string(id)});
}

bool ToDouble(std::string_view text, double& value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// The canonical form of a UCUM code, or null when it is none (unparsable, unknown, special).
// Units repeat across resources: a per-thread cache of the last codes seen (bounded).
const terminology::ucum::Canonical* CanonicalUcum(std::string_view code) {
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  static thread_local std::unordered_map<std::string, terminology::ucum::Canonical, Hash,
                                         std::equal_to<>>
      cache;
  auto it = cache.find(code);
  if (it == cache.end()) {
    if (cache.size() >= 256) cache.clear();
    it = cache.emplace(std::string(code), terminology::ucum::Canonicalize(code)).first;
  }
  return it->second.status == terminology::ucum::Status::kOk ? &it->second : nullptr;
}

// `ucum`: the code of the canonical UCUM rows (code:ucum), or null for none.
void AddQuantity(const std::string& param, const std::string* ucum, const Json& v,
                 store::IndexEntries& out) {
  double value = 0;
  if (v.IsNumber()) {
    if (ToDouble(v.Text(), value)) out.quantities.push_back({param, value, "", ""});
    return;
  }
  if (!v.IsObject()) return;
  const Json* number = v.Find("value");
  if (number == nullptr || !number->IsNumber() || !ToDouble(number->Text(), value)) return;
  std::string_view system = v.Str("system");
  std::string code(v.Str("code"));
  if (code.empty()) code = std::string(v.Str("unit"));
  // R4 search.html "quantity": UCUM quantities compare in canonical units. Only Quantity.code
  // with the UCUM system is a UCUM code (unit is display text).
  if (ucum != nullptr && system == terminology::ucum::kSystem && !v.Str("code").empty()) {
    if (const auto* c = CanonicalUcum(code)) {
      out.quantities.push_back({*ucum, terminology::ucum::UnitTable::ToCanonical(value, c->factor),
                                std::string(terminology::ucum::kSystem), c->unit});
    }
  }
  out.quantities.push_back({param, value, std::string(system), std::move(code)});
}

// One component value of a composite pair, in CompositeEntry's terms.
struct ComponentValue {
  std::string system;
  std::string code;
  double number = 0;
  std::int64_t low_us = 0;
  std::int64_t high_us = 0;
};

// The values of one composite component found under `node`, each as its own parameter type
// would index it. `rows` is scratch space (cleared here), kept by the caller across calls.
void ComponentValues(const CompiledComponent& component, const Json& node,
                     store::IndexEntries& rows, std::vector<ComponentValue>& out) {
  static thread_local std::vector<const Json*> found;
  found.clear();
  for (const FhirPath& path : component.paths) EvaluateFhirPathAt(node, path, found);
  if (found.empty()) return;
  static const std::string kNoCode;
  rows.tokens.clear();
  rows.strings.clear();
  rows.dates.clear();
  rows.references.clear();
  rows.quantities.clear();
  for (const Json* v : found) {
    switch (component.type) {
      case ParamType::kString: AddString(kNoCode, nullptr, *v, rows); break;
      case ParamType::kToken:
      case ParamType::kUri: AddToken(kNoCode, nullptr, *v, rows); break;
      case ParamType::kDate: AddDate(kNoCode, *v, rows); break;
      case ParamType::kReference: AddReference(kNoCode, *v, rows); break;
      case ParamType::kQuantity:
      case ParamType::kNumber: AddQuantity(kNoCode, nullptr, *v, rows); break;
      case ParamType::kComposite: break;  // not a component type (the generator checks)
    }
  }
  for (auto& t : rows.tokens) out.push_back({std::move(t.system), std::move(t.code)});
  for (auto& s : rows.strings) out.push_back({{}, std::move(s.value)});
  for (auto& r : rows.references) out.push_back({std::move(r.target_type), std::move(r.target_id)});
  for (auto& q : rows.quantities) {
    out.push_back({std::move(q.system), std::move(q.code), q.value});
  }
  for (const auto& d : rows.dates) out.push_back({{}, {}, 0, d.low_us, d.high_us});
}

// Every pair of the two components' values on one context element (R4: the components of a
// composite match "the same" element: a systolic code with its own value, not the diastolic's).
// The second component first: most contexts lack the value[x] type a composite pairs.
void AddComposite(const std::string& param, const CompiledParam& composite, const Json& node,
                  store::IndexEntries& out) {
  static thread_local store::IndexEntries rows;
  static thread_local std::vector<ComponentValue> first;
  static thread_local std::vector<ComponentValue> second;
  second.clear();
  ComponentValues(composite.components[1], node, rows, second);
  if (second.empty()) return;
  first.clear();
  ComponentValues(composite.components[0], node, rows, first);
  for (const ComponentValue& a : first) {
    for (const ComponentValue& b : second) {
      out.composites.push_back(
          {param, a.system, a.code, b.system, b.code, b.number, b.low_us, b.high_us});
    }
  }
}

// Which paths of a type can select anything from a resource, by its top-level members: a path
// whose first step names no member (nor a choice form of it, "effective" -> "effectiveDateTime")
// selects nothing, so IndexResource skips it instead of walking the members for it. An
// Observation has ~60 compiled paths (the Resource ones, meta.*, included) and ~8 members.
struct TypePlan {
  std::size_t paths = 0;  // the compiled paths of the type's parameters with rows, in order
  std::unordered_map<std::string_view, std::vector<std::uint32_t>> by_first_step;
  using Iterator = decltype(by_first_step)::const_iterator;
  std::vector<std::uint32_t> always;  // no steps (a composite's context: the resource) or
                                      // exists_not_false (false without a member)
};

using ParamMap = std::map<std::string, CompiledParam, std::less<>>;

const TypePlan& PlanFor(const ParamMap& params) {
  static const auto kPlans = [] {
    std::unordered_map<const ParamMap*, TypePlan> plans;
    const auto& registry = SearchParamRegistry::Instance();
    for (const std::string& type : registry.Types()) {
      const ParamMap& of_type = registry.ForType(type);
      TypePlan& plan = plans[&of_type];
      for (const auto& [code, param] : of_type) {
        if (!param.union_of.empty()) continue;  // as IndexResource
        for (const FhirPath& path : param.paths) {
          const auto index = static_cast<std::uint32_t>(plan.paths++);
          if (path.steps.empty() || path.exists_not_false) {
            plan.always.push_back(index);
          } else {
            plan.by_first_step[path.steps[0].name].push_back(index);
          }
        }
      }
    }
    return plans;
  }();
  static const TypePlan kEmpty;
  auto it = kPlans.find(&params);
  return it == kPlans.end() ? kEmpty : it->second;
}

// Marks in `live` the paths of `plan` whose first step matches a member of `resource` as
// fhirpath_lite's Walk matches it: the name itself, or the name + an R4 type name (every
// one starts with a capital letter, so the name ends before one).
void MarkLivePaths(const TypePlan& plan, const Json& resource, std::vector<char>& live) {
  live.assign(plan.paths, 0);
  for (std::uint32_t i : plan.always) live[i] = 1;
  if (!resource.IsObject()) return;
  auto mark = [&live](TypePlan::Iterator it) {
    for (std::uint32_t i : it->second) live[i] = 1;
  };
  for (const auto& [key, value] : resource.Members()) {
    const std::string_view k = key;
    if (auto it = plan.by_first_step.find(k); it != plan.by_first_step.end()) mark(it);
    for (std::size_t at = 1; at < k.size(); ++at) {
      if (k[at] < 'A' || k[at] > 'Z') continue;
      auto it = plan.by_first_step.find(k.substr(0, at));
      if (it != plan.by_first_step.end() && IsChoiceTypeName(k.substr(at))) mark(it);
    }
  }
}

}  // namespace

void IndexResource(const Json& resource, store::IndexEntries& out) {
  const auto& params = SearchParamRegistry::Instance().ForType(resource.Str("resourceType"));
  const TypePlan& plan = PlanFor(params);
  static thread_local std::vector<char> live;
  MarkLivePaths(plan, resource, live);
  std::vector<const Json*> values;
  std::size_t index = 0;  // of the path in `plan`
  for (const auto& [code, param] : params) {
    if (!param.union_of.empty()) continue;  // its rows are those of the parameters it unites
    values.clear();
    for (const FhirPath& path : param.paths) {
      if (live[index++] != 0) EvaluateFhirPath(resource, path, values);
    }
    if (values.empty()) continue;
    const std::string* variant = param.variant_code.empty() ? nullptr : &param.variant_code;
    for (const Json* v : values) {
      switch (param.def->type) {
        case ParamType::kString: AddString(code, variant, *v, out); break;
        case ParamType::kToken:
          AddToken(code, variant, *v, out,
                   param.of_type_code.empty() ? nullptr : &param.of_type_code);
          break;
        case ParamType::kUri: AddToken(code, nullptr, *v, out); break;
        case ParamType::kComposite: AddComposite(code, param, *v, out); break;
        case ParamType::kDate: AddDate(code, *v, out); break;
        case ParamType::kReference: AddReference(code, *v, out, variant); break;
        case ParamType::kQuantity: AddQuantity(code, variant, *v, out); break;
        case ParamType::kNumber: AddQuantity(code, nullptr, *v, out); break;
      }
    }
  }
  // `_text` and `_content` of every type (decision 0041).
  ResourceText text = ExtractText(resource);
  out.narrative = std::move(text.narrative);
  out.content = std::move(text.content);
}

std::string IndexFingerprint() {
  // FNV-1a, 64 bits, over the fields separated by bytes that none of them contains.
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view text) {
    for (char c : text) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    h ^= 0x1f;
    h *= 1099511628211ULL;
  };
  mix(std::to_string(kIndexerVersion));
  mix(U_ICU_VERSION);
  const auto& registry = SearchParamRegistry::Instance();
  for (const std::string& type : registry.Types()) {
    for (const auto& [code, param] : registry.ForType(type)) {
      mix(type);
      mix(code);
      mix(std::to_string(static_cast<int>(param.def->type)));
      mix(param.def->expression);
      for (const std::string& part : param.union_of) mix(part);
      mix(param.only_target);
      mix("\x1e");
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::string out = std::to_string(kIndexerVersion);
  out.insert(out.begin(), 'v');  // not "v" + …: GCC 12 -Wrestrict false positive
  out += '-';
  out += hex;
  return out;
}

}  // namespace kakehashi::gateway::detail
