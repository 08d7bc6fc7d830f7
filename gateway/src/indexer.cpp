// How values become index rows (R4 §3.1.1.4 "search parameter types"):
//   token     Coding/CodeableConcept.coding (system|code), Identifier (system|value),
//             ContactPoint (value), code/string/uri/boolean primitives (no system)
//   string    primitives; HumanName family/given/prefix/suffix/text; Address parts
//   date      date/dateTime/instant, Period start..end, Timing.event
//   reference Reference.reference (Type/id, absolute URLs by their last two segments),
//             canonical/uri primitives (whole URL)
//   quantity  Quantity/Age/Duration/… value+system+code; number: plain numbers
#include "indexer.hpp"

#include "detail/values.hpp"
#include "search_params.hpp"

#include <charconv>
#include <cstdlib>
#include <limits>

namespace kakehashi::gateway::detail {

namespace {

void AddString(const std::string& param, const Json& v, store::IndexEntries& out) {
  if (v.IsString()) {
    std::string n = NormalizeForSearch(v.Text());
    if (!n.empty()) out.strings.push_back({param, std::move(n)});
    return;
  }
  if (!v.IsObject()) return;
  // HumanName and Address: every textual part is searchable (R4 §3.1.1.4.6).
  for (std::string_view key : {"family", "text", "city", "district", "state", "postalCode",
                               "country", "given", "prefix", "suffix", "line"}) {
    const Json* part = v.Find(key);
    if (part == nullptr) continue;
    if (part->IsString()) {
      AddString(param, *part, out);
    } else if (part->IsArray()) {
      for (const Json& item : part->Items()) AddString(param, item, out);
    }
  }
  // "yamada taro" as one value too, so a full name typed with a space matches.
  const Json* family = v.Find("family");
  const Json* given = v.Find("given");
  if (family != nullptr && family->IsString() && given != nullptr && given->IsArray() &&
      !given->Items().empty() && given->Items()[0].IsString()) {
    std::string full = std::string(family->Text()) + " ";
    full += given->Items()[0].Text();
    out.strings.push_back({param, NormalizeForSearch(full)});
  }
}

void AddToken(const std::string& param, const Json& v, store::IndexEntries& out) {
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
    for (const Json& c : codings->Items()) AddToken(param, c, out);  // CodeableConcept
    return;
  }
  if (v.Find("code") != nullptr) {  // Coding
    out.tokens.push_back({param, std::string(v.Str("system")), std::string(v.Str("code"))});
    return;
  }
  if (v.Find("value") != nullptr && v.Find("value")->IsString()) {  // Identifier, ContactPoint
    std::string system(v.Str("system"));
    // ContactPoint.system is a code (phone/email), not a URI: index the value without it.
    if (system == "phone" || system == "email" || system == "fax" || system == "url" ||
        system == "sms" || system == "pager" || system == "other") {
      system.clear();
    }
    out.tokens.push_back({param, std::move(system), std::string(v.Str("value"))});
  }
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

void AddReference(const std::string& param, const Json& v, store::IndexEntries& out) {
  if (v.IsString()) {  // canonical / uri
    out.references.push_back({param, "", v.Text()});
    return;
  }
  if (!v.IsObject()) return;
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

void AddQuantity(const std::string& param, const Json& v, store::IndexEntries& out) {
  double value = 0;
  if (v.IsNumber()) {
    if (ToDouble(v.Text(), value)) out.quantities.push_back({param, value, "", ""});
    return;
  }
  if (!v.IsObject()) return;
  const Json* number = v.Find("value");
  if (number == nullptr || !number->IsNumber() || !ToDouble(number->Text(), value)) return;
  std::string code(v.Str("code"));
  if (code.empty()) code = std::string(v.Str("unit"));
  out.quantities.push_back({param, value, std::string(v.Str("system")), std::move(code)});
}

}  // namespace

void IndexResource(const Json& resource, store::IndexEntries& out) {
  const auto& params = SearchParamRegistry::Instance().ForType(resource.Str("resourceType"));
  std::vector<const Json*> values;
  for (const auto& [code, param] : params) {
    if (!param.union_of.empty()) continue;  // its rows are those of the parameters it unites
    values.clear();
    for (const FhirPath& path : param.paths) EvaluateFhirPath(resource, path, values);
    for (const Json* v : values) {
      switch (param.def->type) {
        case ParamType::kString: AddString(code, *v, out); break;
        case ParamType::kToken:
        case ParamType::kUri: AddToken(code, *v, out); break;
        case ParamType::kDate: AddDate(code, *v, out); break;
        case ParamType::kReference: AddReference(code, *v, out); break;
        case ParamType::kQuantity:
        case ParamType::kNumber: AddQuantity(code, *v, out); break;
      }
    }
  }
}

}  // namespace kakehashi::gateway::detail
