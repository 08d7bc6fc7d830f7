// Search parameter parsing (R4 §3.1.1.4-5): prefixes, modifiers, OR lists (comma) and AND
// (repeated parameters), chains (subject:Patient.identifier=…), result parameters.
#include "search.hpp"

#include "compartment.hpp"
#include "detail/values.hpp"
#include "search_params.hpp"
#include "text_search.hpp"

#include "kakehashi/common/charset.hpp"
#include "kakehashi/fhir/r4/meta.hpp"
#include "kakehashi/terminology/ucum.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iterator>

namespace kakehashi::gateway::detail {

namespace {

using store::Compare;
using store::Predicate;
namespace r4 = kakehashi::fhir::r4;

// R4 search, "Escaping Search Parameters": "\," "\$" "\|" and "\\" are literal ',', '$',
// '|' and '\'. A backslash before anything else is an ordinary character.
bool IsEscapable(char c) {
  return c == ',' || c == '$' || c == '|' || c == '\\';
}

// Comma-separated alternatives, split at unescaped commas only. Every escape is kept: a token's
// "\|" must still be told from its system|code separator by the value's own parser.
std::vector<std::string> SplitOr(std::string_view value) {
  std::vector<std::string> out(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\\' && i + 1 < value.size() && IsEscapable(value[i + 1])) {
      out.back() += c;
      out.back() += value[++i];
      continue;
    }
    if (c == ',') {
      out.emplace_back();
      continue;
    }
    out.back() += c;
  }
  return out;
}

// Position of the first unescaped `sep` at or after `from`, or npos.
std::size_t FindUnescaped(std::string_view value, char sep, std::size_t from = 0) {
  for (std::size_t i = from; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size() && IsEscapable(value[i + 1])) {
      ++i;
    } else if (value[i] == sep) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Drops the backslash of every escape: the literal text of one (part of a) value.
std::string Unescape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size() && IsEscapable(value[i + 1])) ++i;
    out += value[i];
  }
  return out;
}

std::optional<Compare> ParsePrefix(std::string_view& value) {
  static constexpr std::pair<std::string_view, Compare> kPrefixes[] = {
      {"eq", Compare::kEq}, {"ne", Compare::kNe}, {"gt", Compare::kGt},
      {"lt", Compare::kLt}, {"ge", Compare::kGe}, {"le", Compare::kLe},
      {"sa", Compare::kSa}, {"eb", Compare::kEb}, {"ap", Compare::kAp}};
  if (value.size() >= 2 && value[0] >= 'a' && value[0] <= 'z') {
    for (const auto& [text, compare] : kPrefixes) {
      if (value.starts_with(text)) {
        value.remove_prefix(2);
        return compare;
      }
    }
    return std::nullopt;
  }
  return Compare::kEq;
}

// :above matches the stored URIs the value is below: one candidate per '/' of it, two at most
// (with and without the '/'); a bound keeps the statement's parameter list small.
constexpr std::ptrdiff_t kMaxUriAboveSegments = 64;

Predicate::Kind KindOf(ParamType type) {
  switch (type) {
    case ParamType::kString: return Predicate::Kind::kString;
    case ParamType::kDate: return Predicate::Kind::kDate;
    case ParamType::kReference: return Predicate::Kind::kReference;
    case ParamType::kQuantity:
    case ParamType::kNumber: return Predicate::Kind::kQuantity;
    case ParamType::kToken:
    case ParamType::kUri: return Predicate::Kind::kToken;
    case ParamType::kComposite: return Predicate::Kind::kComposite;
  }
  return Predicate::Kind::kToken;
}

bool ParseQuantityValue(std::string_view value, Predicate& p) {
  auto compare = ParsePrefix(value);
  if (!compare) return false;
  p.compare = *compare;
  std::string_view number = value;
  auto bar = FindUnescaped(value, '|');
  if (bar != std::string_view::npos) {
    number = value.substr(0, bar);
    std::string_view rest = value.substr(bar + 1);
    auto bar2 = FindUnescaped(rest, '|');
    if (bar2 == std::string_view::npos) return false;
    p.system = Unescape(rest.substr(0, bar2));
    p.target_type = Unescape(rest.substr(bar2 + 1));  // unit code
  }
  double v = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || ptr != number.data() + number.size()) return false;
  // Implicit precision of the search value (R4 §3.1.1.4.3): 5.4 means [5.35, 5.45).
  double half = 0.5;
  auto dot = number.find('.');
  if (number.find_first_of("eE") == std::string_view::npos && dot != std::string_view::npos) {
    half = 0.5 * std::pow(10.0, -static_cast<double>(number.size() - dot - 1));
  }
  if (p.compare == Compare::kAp) half = std::max(half, std::fabs(v) * 0.1);
  p.number = v;
  p.number_low = v - half;
  p.number_high = v + half;
  return true;
}

// `ucum`: a quantity value with a UCUM system|code searches the canonical rows (code:ucum);
// false for a composite's component (its rows hold the values as received).
std::optional<Failure> ParseValue(const std::string& type, const CompiledParam& param,
                                  const std::string& code, std::string_view modifier,
                                  const std::string& value, const SearchContext& context,
                                  Predicate& p, bool ucum = true);

// R4 search.html "quantity": with the UCUM system a server SHOULD compare in canonical units
// ("gt5.4|http://unitsofmeasure.org|mg" matches 0.006 g). A parsed quantity predicate whose
// system is UCUM and whose code terminology::ucum converts searches the code:ucum rows instead:
// its number, prefix bounds and implicit precision range ([5.35, 5.45) mg) in the canonical unit
// (the factor is > 0, so the order of the bounds is kept). Any other code (no system, another
// system, a unit the table does not define, a malformed expression, a special unit such as Cel)
// stays an opaque code compared as received (decision 0047).
void ToCanonicalUcum(const std::string& code, Predicate& p) {
  namespace ucum = terminology::ucum;
  if (!p.system || *p.system != ucum::kSystem || p.target_type.empty()) return;
  const ucum::Canonical c = ucum::Canonicalize(p.target_type);
  if (c.status != ucum::Status::kOk) return;
  p.param = code + std::string(kUcumSuffix);
  p.number = ucum::UnitTable::ToCanonical(p.number, c.factor);
  p.number_low = ucum::UnitTable::ToCanonical(p.number_low, c.factor);
  p.number_high = ucum::UnitTable::ToCanonical(p.number_high, c.factor);
  p.target_type = c.unit;
}

// Reference hops one criterion may cross: the links of a chain and the levels of `_has`
// together (R4 search.html "Chained parameters", "Reverse Chaining"). Deeper is 400: every hop
// is one more nested sub-query (decision 0044).
constexpr int kMaxReferenceHops = 3;

std::optional<Failure> ParseCriterion(const std::string& type, std::string_view name,
                                      const std::string& value, const SearchContext& context,
                                      int hops, store::Conjunction& out);

// `code[:Type].chained=value` (R4 search.html "Chained parameters"): the referenced resource of
// Type satisfies `chained`, itself any criterion of Type, a chain again included
// (subject:Patient.organization.name). Without a Type the parameter must have one target: R4
// lets the client name it (subject:Patient.name) and a server reject a chain it cannot resolve
// to one type, as here.
std::optional<Failure> ParseChain(const std::string& type, const CompiledParam& param,
                                  const std::string& code, std::string_view target_type,
                                  std::string_view chained, const std::string& value,
                                  const SearchContext& context, Predicate& p, int hops) {
  std::string target(target_type);
  if (target.empty()) {
    std::string_view targets = param.def->targets;
    if (targets.find(',') != std::string_view::npos || targets.empty()) {
      return Bad("chained parameter '" + code + "' needs a target type (" + code +
                 ":Type.param) because it can reference several types");
    }
    target = std::string(targets);
  } else if (!IsResourceTypeName(target)) {
    return Bad("chained parameter '" + code + ":" + target + "': not a resource type");
  }
  if (hops + 1 > kMaxReferenceHops) {
    return Bad("a chain crosses at most " + std::to_string(kMaxReferenceHops) +
                   " references (chain links and _has levels together)",
               "not-supported");
  }
  if (chained.empty()) return Bad("empty chained parameter after '" + code + ".'");
  auto conj = std::make_shared<store::Conjunction>();
  if (auto f = ParseCriterion(target, chained, value, context, hops + 1, *conj)) return f;
  p.kind = Predicate::Kind::kReference;
  p.param = code;
  p.chain_type = target;
  p.chain = std::move(conj);
  (void)type;
  return std::nullopt;
}

// `_has:Type:ref:criterion=value` (R4 search.html "Reverse Chaining"): a resource of `type` that
// a resource of Type references through its parameter `ref`, that resource satisfying
// `criterion` (any criterion of Type, `_has` again included:
// Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=…).
std::optional<Failure> ParseHas(const std::string& type, std::string_view name,
                                const std::string& value, const SearchContext& context, int hops,
                                store::Conjunction& out) {
  std::string_view rest = name.substr(std::string_view("_has:").size());
  const auto c1 = rest.find(':');
  const auto c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c1 == 0 || c2 == c1 + 1 || c2 + 1 == rest.size()) {
    return Bad("'" + std::string(name) + "': _has needs _has:Type:reference:parameter");
  }
  if (hops + 1 > kMaxReferenceHops) {
    return Bad("_has nests at most " + std::to_string(kMaxReferenceHops) +
                   " levels (chain links and _has levels together)",
               "not-supported");
  }
  const std::string source(rest.substr(0, c1));
  const std::string ref(rest.substr(c1 + 1, c2 - c1 - 1));
  const std::string_view criterion = rest.substr(c2 + 1);
  if (!IsResourceTypeName(source)) return Bad("_has: '" + source + "' is not a resource type");
  const CompiledParam* cp = SearchParamRegistry::Instance().Find(source, ref);
  if (cp == nullptr || cp->def->type != ParamType::kReference) {
    return Bad("_has: '" + ref + "' is not a reference parameter of " + source);
  }
  // The reference must be able to point at the searched type (an empty list: any type).
  std::string_view targets = cp->def->targets;
  bool reaches = targets.empty();
  for (std::size_t from = 0; !reaches && from <= targets.size();) {
    const auto comma = std::min(targets.find(',', from), targets.size());
    reaches = targets.substr(from, comma - from) == type;
    from = comma + 1;
  }
  if (!reaches) return Bad("_has: " + source + "." + ref + " cannot reference " + type);
  auto conj = std::make_shared<store::Conjunction>();
  if (auto f = ParseCriterion(source, criterion, value, context, hops + 1, *conj)) return f;
  Predicate p;
  p.kind = Predicate::Kind::kReference;
  p.reverse = true;
  p.param = ref;
  p.target_type = type;
  p.chain_type = source;
  p.chain = std::move(conj);
  out.push_back({std::move(p)});
  return std::nullopt;
}

// `system|code` of a token value (`raw` with its escapes): split at the first unescaped '|',
// each part unescaped; no '|': any system.
void SplitToken(const std::string& raw, Predicate& p) {
  auto bar = FindUnescaped(raw, '|');
  if (bar == std::string::npos) {
    p.value = Unescape(raw);
  } else {
    p.system = Unescape(std::string_view(raw).substr(0, bar));
    p.value = Unescape(std::string_view(raw).substr(bar + 1));
  }
}

// R4 search.html "identifier": `ref:identifier=[system|]value` matches Reference.identifier
// (the code:identifier rows of idx_token), not the referenced resource's own identifier. A
// parameter restricted to one target type (Observation patient = subject to a Patient) reads
// the rows of the parameter it restricts: an identifier alone does not say the target's type.
std::optional<Failure> ParseReferenceIdentifier(const CompiledParam& param, const std::string& code,
                                                const std::string& raw, Predicate& p) {
  std::string base = code;
  if (!param.only_target.empty()) {
    if (param.union_of.size() != 1) {
      return Bad("':identifier' is not supported on '" + code + "'", "not-supported");
    }
    base = param.union_of.front();
  }
  p.kind = Predicate::Kind::kToken;
  p.param = base + std::string(kIdentifierSuffix);
  SplitToken(raw, p);
  if (p.value.empty() && (!p.system || p.system->empty())) {
    return Bad("empty :identifier value for '" + code + "'");
  }
  return std::nullopt;
}

// R4 search.html "of-type": `identifier:of-type=system|code|value`, an Identifier whose type
// has the Coding system|code and whose value is value (all three required), matched as one
// pair by the code:of-type rows of idx_composite.
std::optional<Failure> ParseOfType(const std::string& code, const std::string& raw, Predicate& p) {
  std::vector<std::string> parts;
  for (std::size_t from = 0;;) {
    const std::size_t at = FindUnescaped(raw, '|', from);
    parts.push_back(Unescape(std::string_view(raw).substr(
        from, at == std::string::npos ? std::string::npos : at - from)));
    if (at == std::string::npos) break;
    from = at + 1;
  }
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return Bad("'" + code +
               ":of-type' needs system|code|value (an Identifier.type Coding and the "
               "identifier's value)");
  }
  Predicate type;
  type.kind = Predicate::Kind::kToken;
  type.system = std::move(parts[0]);
  type.value = std::move(parts[1]);
  Predicate value;
  value.kind = Predicate::Kind::kToken;
  value.value = std::move(parts[2]);
  p.kind = Predicate::Kind::kComposite;
  p.param = code + std::string(kOfTypeSuffix);
  p.components = std::make_shared<std::vector<Predicate>>(
      std::vector<Predicate>{std::move(type), std::move(value)});
  return std::nullopt;
}

// `raw` is one alternative as SplitOr gives it, escapes still in place.
std::optional<Failure> ParseValue(const std::string& type, const CompiledParam& param,
                                  const std::string& code, std::string_view modifier,
                                  const std::string& raw, const SearchContext& context,
                                  Predicate& p, bool ucum) {
  p.param = code;
  p.kind = KindOf(param.def->type);
  const std::string value = Unescape(raw);  // for every type without separators of its own
  if (modifier == "missing") {
    if (value != "true" && value != "false") return Bad(":missing takes true or false");
    p.missing_kind = p.kind;
    p.kind = Predicate::Kind::kMissing;
    p.missing = value == "true";
    return std::nullopt;
  }
  if (param.def->type == ParamType::kComposite) {
    // R4 search.html "Composite Search Parameters": the components' values in order, separated
    // by '$' ("\$" is a literal), each parsed as its own parameter (its prefixes, system|code,
    // escapes), all matched by values of one element. Of the modifiers only :missing (above)
    // applies to a composite.
    if (!modifier.empty()) {
      return Bad("composite parameters take no modifier but :missing", "not-supported");
    }
    std::vector<std::string> parts;
    for (std::size_t from = 0;;) {
      const std::size_t at = FindUnescaped(raw, '$', from);
      parts.push_back(raw.substr(from, at == std::string::npos ? std::string::npos : at - from));
      if (at == std::string::npos) break;
      from = at + 1;
    }
    if (parts.size() != param.components.size()) {
      return Bad("'" + code + "' takes " + std::to_string(param.components.size()) +
                 " values separated by '$'");
    }
    auto components = std::make_shared<std::vector<Predicate>>();
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const CompiledComponent& component = param.components[i];
      const CompiledParam* cp = SearchParamRegistry::Instance().Find(type, component.code);
      if (cp == nullptr || cp->def->type != component.type) {
        return Bad("composite '" + code + "' is not supported", "not-supported");
      }
      Predicate c;
      if (auto f = ParseValue(type, *cp, component.code, {}, parts[i], context, c, false)) {
        return f;
      }
      components->push_back(std::move(c));
    }
    p.components = std::move(components);
    return std::nullopt;
  }
  if (param.def->type == ParamType::kUri) {
    // R4 search.html#uri: the whole value (escapes undone, no system|code split) against the
    // whole stored URI; :below and :above match at '/' boundaries (store: UriMatch).
    if (modifier == "below") {
      p.uri_match = Predicate::UriMatch::kBelow;
    } else if (modifier == "above") {
      p.uri_match = Predicate::UriMatch::kAbove;
      if (std::count(value.begin(), value.end(), '/') > kMaxUriAboveSegments) {
        return Bad("':above' takes a uri of at most " + std::to_string(kMaxUriAboveSegments) +
                   " '/'");
      }
    } else if (!modifier.empty()) {
      return Bad("uri modifier ':" + std::string(modifier) + "' is not supported", "not-supported");
    }
    p.system = std::string();  // a uri is indexed without a system
    p.value = value;
    if (p.value.empty()) return Bad("empty uri value for '" + code + "'");
    return std::nullopt;
  }
  switch (p.kind) {
    case Predicate::Kind::kToken: {
      if (modifier == "text") {
        // R4 search.html "text": the value as a string search (starts with, NFKC case folded
        // as string parameters are) on the display texts: CodeableConcept.text, Coding.display,
        // Identifier.type.text (the code:text rows of idx_string).
        p.kind = Predicate::Kind::kString;
        p.param = code + std::string(kTextSuffix);
        p.value = NormalizeForSearch(value);
        if (p.value.empty()) return Bad("empty :text value for '" + code + "'");
        return std::nullopt;
      }
      if (modifier == "of-type") return ParseOfType(code, raw, p);
      if (modifier == "above" || modifier == "below") {
        // BuildSearch and ParseCriterion take :below / :above (SubsumptionPredicates).
        return Bad("token ':" + std::string(modifier) + "' is not served on composite components",
                   "not-supported");
      }
      if (modifier == "in" || modifier == "not-in") {
        // BuildSearch and ParseCriterion (chains, _has) take :in before a value is parsed.
        return Bad("token ':" + std::string(modifier) + "' is not served on composite components",
                   "not-supported");
      }
      if (!modifier.empty() && modifier != "not") {
        return Bad("token modifier ':" + std::string(modifier) + "' is not supported",
                   "not-supported");
      }
      p.negate = modifier == "not";
      SplitToken(raw, p);
      if (!p.system && p.value.empty()) return Bad("empty token value for '" + code + "'");
      return std::nullopt;
    }
    case Predicate::Kind::kString:
      if (modifier == "exact") {
        // R4 search.html "exact": the whole string, casing and accents included (and width:
        // ｻﾄｳ is not サトウ), against the values as received (the code:exact rows).
        p.string_match = Predicate::StringMatch::kExact;
        p.param = code + std::string(kExactSuffix);
        p.value = value;
        if (p.value.empty()) return Bad("empty string value for '" + code + "'");
        return std::nullopt;
      } else if (modifier == "contains") {
        p.string_match = Predicate::StringMatch::kContains;
      } else if (!modifier.empty()) {
        return Bad("string modifier ':" + std::string(modifier) + "' is not supported",
                   "not-supported");
      }
      p.value = NormalizeForSearch(value);
      if (p.value.empty()) return Bad("empty string value for '" + code + "'");
      return std::nullopt;
    case Predicate::Kind::kDate:
      if (!modifier.empty()) return Bad("date parameters take no modifier", "not-supported");
      if (!ParseDateValue(value, p)) {
        return Bad("'" + code + "' needs [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.f]][zone]]]]");
      }
      return std::nullopt;
    case Predicate::Kind::kQuantity:
      if (!modifier.empty()) return Bad("quantity parameters take no modifier", "not-supported");
      if (!ParseQuantityValue(raw, p)) {
        return Bad("'" + code + "' needs [prefix]number[|system|code]");
      }
      if (ucum && param.def->type == ParamType::kQuantity) ToCanonicalUcum(code, p);
      return std::nullopt;
    case Predicate::Kind::kReference: {
      if (modifier == "identifier") return ParseReferenceIdentifier(param, code, raw, p);
      std::string_view v = value;
      std::string target(modifier);
      if (!target.empty() && !IsResourceTypeName(target)) {
        return Bad("reference modifier ':" + target + "' is not a resource type", "not-supported");
      }
      if (v.starts_with(context.base_url) && v.size() > context.base_url.size() &&
          v[context.base_url.size()] == '/') {
        v.remove_prefix(context.base_url.size() + 1);
      }
      std::string_view ref_type = ReferenceTargetType(v);
      if (!ref_type.empty()) {
        p.target_type = std::string(ref_type);
        auto history = v.find("/_history/");
        if (history != std::string_view::npos) v = v.substr(0, history);
        p.value = std::string(v.substr(v.rfind('/') + 1));
      } else if (v.find(':') != std::string_view::npos) {
        p.value = std::string(v);  // canonical or other absolute URL
      } else {
        p.value = std::string(v);
        p.target_type = target;
        std::string_view targets = param.def->targets;
        if (p.target_type.empty() && !targets.empty() &&
            targets.find(',') == std::string_view::npos) {
          p.target_type = std::string(targets);
        }
      }
      if (p.value.empty()) return Bad("empty reference value for '" + code + "'");
      return std::nullopt;
    }
    default: break;
  }
  (void)type;
  return Bad("unsupported parameter '" + code + "'", "not-supported");
}

std::optional<Failure> ValueSetPredicates(const CompiledParam& cp, const std::string& code,
                                          bool negate, const std::string& value,
                                          const SearchContext& context, store::Conjunction& where);
std::optional<Failure> SubsumptionPredicates(const CompiledParam& cp, const std::string& code,
                                             bool below, const std::string& value,
                                             const SearchContext& context,
                                             store::Conjunction& where);
std::optional<Failure> CodePredicates(const CompiledParam& cp, const std::string& code, bool negate,
                                      std::vector<std::pair<std::string, std::string>> codes,
                                      store::Conjunction& where);
void AddImplicitSystemTwin(const CompiledParam& cp, const Predicate& p, std::vector<Predicate>& any,
                           store::Conjunction& where);

// One criterion `name=value` of resource `type` inside a chain or `_has` (BuildSearch parses
// the top level itself): `_id`, `_lastUpdated`, `_has:…`, a chain, or a parameter with its
// modifier; each comma-separated alternative ORed, ANDed to `out`.
std::optional<Failure> ParseCriterion(const std::string& type, std::string_view name,
                                      const std::string& value, const SearchContext& context,
                                      int hops, store::Conjunction& out) {
  if (name.starts_with("_has:")) return ParseHas(type, name, value, context, hops, out);
  if (name == "_id" || name == "_lastUpdated") {
    std::vector<Predicate> any;
    for (const std::string& alt : SplitOr(value)) {
      Predicate p;
      if (name == "_id") {
        p.kind = Predicate::Kind::kId;
        p.value = Unescape(alt);
      } else {
        p.kind = Predicate::Kind::kLastUpdated;
        if (!ParseDateValue(Unescape(alt), p)) return Bad("invalid _lastUpdated value");
      }
      any.push_back(std::move(p));
    }
    out.push_back(std::move(any));
    return std::nullopt;
  }
  std::string code(name);
  std::string chained;
  if (auto dot = code.find('.'); dot != std::string::npos) {
    chained = code.substr(dot + 1);
    code.resize(dot);
  }
  std::string modifier;
  if (auto colon = code.find(':'); colon != std::string::npos) {
    modifier = code.substr(colon + 1);
    code.resize(colon);
  }
  const CompiledParam* cp = SearchParamRegistry::Instance().Find(type, code);
  if (cp == nullptr) return Bad("unknown search parameter '" + code + "' for " + type);
  if (!chained.empty() || name.ends_with('.')) {
    if (cp->def->type != ParamType::kReference) return Bad("'" + code + "' cannot be chained");
    Predicate p;
    if (auto f = ParseChain(type, *cp, code, modifier, chained, value, context, p, hops)) return f;
    out.push_back({std::move(p)});
    return std::nullopt;
  }
  if (cp->def->type == ParamType::kToken && (modifier == "in" || modifier == "not-in")) {
    // At the end of a chain or inside _has as at the top level (decision 0043 §3).
    return ValueSetPredicates(*cp, code, modifier == "not-in", value, context, out);
  }
  if (cp->def->type == ParamType::kToken && (modifier == "below" || modifier == "above")) {
    return SubsumptionPredicates(*cp, code, modifier == "below", value, context, out);
  }
  std::vector<Predicate> any;
  for (const std::string& alt : SplitOr(value)) {
    Predicate p;
    if (auto f = ParseValue(type, *cp, code, modifier, alt, context, p)) return f;
    AddImplicitSystemTwin(*cp, p, any, out);
    if (p.negate) {
      out.push_back({std::move(p)});  // :not: none of the alternatives (as BuildSearch)
      continue;
    }
    any.push_back(std::move(p));
  }
  if (!any.empty()) out.push_back(std::move(any));
  return std::nullopt;
}

}  // namespace

bool ParseDateValue(std::string_view value, store::Predicate& p) {
  auto compare = ParsePrefix(value);
  if (!compare) return false;
  auto range = ParseFhirDateRange(value);
  if (!range) return false;
  p.compare = *compare;
  p.low_us = range->low_us;
  p.high_us = range->high_us;
  if (p.compare == Compare::kAp) {
    // "approximately": 10% of the distance from now, at least the value's own precision.
    const std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    std::int64_t margin = std::llabs(now - p.low_us) / 10;
    margin = std::max(margin, p.high_us - p.low_us + 1);
    p.low_us -= margin;
    p.high_us += margin;
  }
  return true;
}

std::string SortCursorText(const store::SortCursor& cursor) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "s";
  for (const auto& v : cursor.values) {
    out += '.';
    if (!v) {
      out += 'n';
      continue;
    }
    out += 'v';
    for (unsigned char c : *v) {
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += '.';
  out += cursor.id;
  return out;
}

std::optional<store::SortCursor> ParseSortCursor(std::string_view text,
                                                 const std::vector<store::SortKey>& sort) {
  if (!text.starts_with("s.")) return std::nullopt;
  text.remove_prefix(2);
  store::SortCursor cursor;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (const store::SortKey& key : sort) {
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    const std::string_view field = text.substr(0, dot);
    text.remove_prefix(dot + 1);
    if (field == "n") {
      if (key.kind == Predicate::Kind::kId || key.kind == Predicate::Kind::kLastUpdated) {
        return std::nullopt;  // never missing
      }
      cursor.values.emplace_back();
      continue;
    }
    if (!field.starts_with('v') || field.size() % 2 != 1) return std::nullopt;
    std::string value;
    for (std::size_t i = 1; i < field.size(); i += 2) {
      const int hi = nibble(field[i]);
      const int lo = nibble(field[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      value += static_cast<char>(hi * 16 + lo);
    }
    // The bound value's form (sql_session: SortCursorParam): an integer for dates and
    // _lastUpdated, a number for quantities.
    const char* end = value.data() + value.size();
    if (key.kind == Predicate::Kind::kDate || key.kind == Predicate::Kind::kLastUpdated) {
      std::int64_t n = 0;
      if (value.empty() || std::from_chars(value.data(), end, n).ptr != end) return std::nullopt;
    } else if (key.kind == Predicate::Kind::kQuantity) {
      double d = 0;
      if (value.empty() || std::from_chars(value.data(), end, d).ptr != end) return std::nullopt;
    }
    cursor.values.push_back(std::move(value));
  }
  cursor.id = std::string(text);
  if (!IsValidId(cursor.id)) return std::nullopt;
  return cursor;
}

std::optional<std::string> CriteriaKey(const QueryParams& params) {
  // Must follow BuildSearch: only parameters it never turns into `query.where` (nor into
  // `query.after` / `query.offset`) are left out.
  static constexpr std::string_view kResultOnly[] = {"_format",
                                                     "_pretty",
                                                     "_count",
                                                     "_summary",
                                                     "_total",
                                                     "_elements",
                                                     "_sort",
                                                     "_include",
                                                     "_revinclude",
                                                     "_include:iterate",
                                                     "_revinclude:iterate"};
  std::vector<std::string> terms;
  for (const auto& [name, value] : params) {
    if (name == "_offset" || name == "_cursor") return std::nullopt;
    if (std::find(std::begin(kResultOnly), std::end(kResultOnly), name) != std::end(kResultOnly)) {
      continue;
    }
    // Every parameter BuildSearch keeps is a list of alternatives (SplitOr; R4 §3.1.1.4: a
    // comma ORs values), so the list is a set: sorted, repeats removed, a backslash or comma
    // inside an alternative escaped with a backslash (so the list is injective): "a,b", "b,a"
    // and "b,a,b" share a key.
    // The alternatives keep their escapes (an escaped '|' in a token is a literal, an unescaped
    // one a separator: different searches), written in one spelling: a lone backslash becomes
    // "\\". No alternative holds an unescaped comma, so the joined list stays injective.
    std::vector<std::string> alternatives;
    for (const std::string& alt : SplitOr(value)) {
      std::string canonical;
      for (std::size_t i = 0; i < alt.size(); ++i) {
        if (alt[i] == '\\') {
          canonical += '\\';
          canonical += i + 1 < alt.size() && IsEscapable(alt[i + 1]) ? alt[++i] : '\\';
          continue;
        }
        canonical += alt[i];
      }
      alternatives.push_back(std::move(canonical));
    }
    std::sort(alternatives.begin(), alternatives.end());
    alternatives.erase(std::unique(alternatives.begin(), alternatives.end()), alternatives.end());
    std::string list;
    for (const std::string& alt : alternatives) {
      if (!list.empty()) list += ',';
      list += alt;
    }
    terms.push_back(PercentEncode(name) + '=' + PercentEncode(list));
  }
  std::sort(terms.begin(), terms.end());
  terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
  std::string key;
  for (const auto& t : terms) {
    if (!key.empty()) key += '&';
    key += t;
  }
  return key;
}

namespace {

// A parameter whose name or value, percent-decoded, is not UTF-8 (RFC 3986 §2.5: a URI's
// characters are percent-encoded UTF-8) is 400 here: PostgreSQL refuses such text in a statement
// (SQLSTATE 22021, a 500) where SQLite compares the bytes, so the backends answered differently.
std::optional<Failure> NotUtf8(const QueryParams& params) {
  for (const auto& [name, value] : params) {
    if (!common::IsValidUtf8(name) || !common::IsValidUtf8(value)) {
      return Bad("search parameters must be percent-encoded UTF-8");
    }
  }
  return std::nullopt;
}

// At most this many (system, code) pairs a token :in / :not-in searches by (one OR, or one
// AND of negations, in the SQL).
constexpr std::size_t kMaxValueSetCodes = 1000;

// Token :in / :not-in (R4 search.html "in", "not-in"): the value (alternatives ORed) names
// ValueSet canonicals; their codes (HandlerOptions::value_set_codes, the terminology module's
// $expand) become token predicates: ORed for :in, each negated and ANDed for :not-in (a resource
// with none of the codes, or none at all, as :not does; decision 0045).
// The code systems whose codes `cp`'s index rows hold without a system: of each of its paths
// that ends on a primitive `code` element (Patient.gender, Observation.status), the systems of
// the R4 value set the element binds (fhir/ metadata: the expansions of the required bindings,
// http://hl7.org/fhir/ValueSet/administrative-gender -> http://hl7.org/fhir/administrative-gender).
// R4 datatypes.html "code": its value comes from a set the element's definition fixes, so the
// system is implied by the binding; the indexer stores such a value as a token with no system.
std::vector<std::string_view> ImplicitSystems(const CompiledParam& cp) {
  std::vector<std::string_view> out;
  for (const FhirPath& path : cp.paths) {
    const r4::TypeInfo* type = r4::FindType(path.base);
    const r4::ElementInfo* element = nullptr;
    for (std::size_t i = 0; i < path.steps.size() && type != nullptr; ++i) {
      element = type->FindElement(path.steps[i].name);
      if (element == nullptr) break;
      if (i + 1 == path.steps.size()) break;
      std::string_view next = element->element_type;
      if (next.empty() && !element->types.empty()) next = element->types[0].code;
      type = r4::FindType(next);
      element = nullptr;
    }
    if (element == nullptr || element->types.size() != 1 || element->types[0].code != "code" ||
        element->value_set.empty()) {
      continue;
    }
    const r4::ValueSetInfo* vs = r4::FindValueSet(element->value_set);
    if (vs == nullptr) continue;
    for (const r4::CodeInfo& c : vs->codes) {
      if (!c.system.empty() && std::find(out.begin(), out.end(), c.system) == out.end()) {
        out.push_back(c.system);
      }
    }
  }
  return out;
}

// A token `system|code` on a parameter whose rows hold a `code` element's value without a
// system (Patient.gender): when `system` is one the element's binding implies (decision 0056
// §3), the system-less rows hold the same codes and match too (R4 search.html "token":
// "[parameter]=[system]|[code]"); gender=http://hl7.org/fhir/administrative-gender|male found
// nothing. Adds the system-less twin of `p`: ORed with it, or for :not ANDed (neither).
// `implicit`: ImplicitSystems of the parameter (CodePredicates computes it once for its list).
void AddImplicitSystemTwin(const std::vector<std::string_view>& implicit, const Predicate& p,
                           std::vector<Predicate>& any, store::Conjunction& where) {
  if (p.kind != Predicate::Kind::kToken || !p.system || p.system->empty()) return;
  if (std::find(implicit.begin(), implicit.end(), *p.system) == implicit.end()) return;
  Predicate twin = p;
  twin.system = std::string();
  if (p.negate) {
    where.push_back({std::move(twin)});
  } else {
    any.push_back(std::move(twin));
  }
}
void AddImplicitSystemTwin(const CompiledParam& cp, const Predicate& p, std::vector<Predicate>& any,
                           store::Conjunction& where) {
  if (p.kind != Predicate::Kind::kToken || !p.system || p.system->empty()) return;
  AddImplicitSystemTwin(ImplicitSystems(cp), p, any, where);
}

std::optional<Failure> ValueSetPredicates(const CompiledParam& cp, const std::string& code,
                                          bool negate, const std::string& value,
                                          const SearchContext& context, store::Conjunction& where) {
  const std::string what = "'" + code + (negate ? ":not-in'" : ":in'");
  const bool terminology = context.value_sets != nullptr && *context.value_sets;
  const bool stored = context.stored_value_sets != nullptr && *context.stored_value_sets;
  if (!terminology && !stored) {
    return Bad(what + " needs a terminology (value sets) on this server", "not-supported");
  }
  // A ValueSet stored on this server (decision 0043 §3): nullopt when there is none.
  auto stored_codes = [&](const std::string& ref)
      -> std::variant<std::optional<std::vector<std::pair<std::string, std::string>>>, Failure> {
    if (!stored) return std::optional<std::vector<std::pair<std::string, std::string>>>();
    auto r = (*context.stored_value_sets)(ref, kMaxValueSetCodes);
    if (auto* f = std::get_if<Failure>(&r)) f->diagnostics = what + ": " + f->diagnostics;
    return r;
  };
  std::vector<std::pair<std::string, std::string>> codes;
  for (const std::string& alt : SplitOr(value)) {
    std::string url = Unescape(alt);
    if (url.empty()) return Bad(what + " needs a ValueSet canonical URL or ValueSet/id");
    std::optional<std::vector<std::pair<std::string, std::string>>> found;
    if (url.find(':') == std::string::npos) {
      // A reference to a stored ValueSet (R4 search.html "in": "the value is a reference").
      if (!url.starts_with("ValueSet/") || !IsValidId(url.substr(9))) {
        return Bad(what + " takes a ValueSet canonical URL or a reference ValueSet/id");
      }
      auto r = stored_codes(url);
      if (auto* f = std::get_if<Failure>(&r)) return *f;
      found = std::move(std::get<0>(r));
      if (!found) return Bad(what + ": " + url + " is not stored on this server", "not-found");
    } else {
      if (auto bar = url.find('|'); bar != std::string::npos) url.resize(bar);  // |version
      if (terminology) found = (*context.value_sets)(url, kMaxValueSetCodes);
      if (!found) {
        auto r = stored_codes(url);
        if (auto* f = std::get_if<Failure>(&r)) return *f;
        found = std::move(std::get<0>(r));
      }
      if (!found) {
        return Bad(what +
                       ": the value set is not known to this server's terminology nor stored "
                       "on it",
                   "not-found");
      }
    }
    codes.insert(codes.end(), found->begin(), found->end());
    if (codes.size() > kMaxValueSetCodes) {
      return Bad(what + ": the value set has more than " + std::to_string(kMaxValueSetCodes) +
                     " codes to search by",
                 "too-costly");
    }
  }
  return CodePredicates(cp, code, negate, std::move(codes), where);
}

// Token :below / :above (R4 search.html "above", "below": subsumption in the code system's
// hierarchy; decision 0056 §4): `system|code` alternatives, each the codes of a CodeSystem stored
// on this server in subsumption with it (concept.concept nesting, hierarchyMeaning is-a), ORed.
// The terminology module's code systems are flat tables and masters: no hierarchy to subsume by.
std::optional<Failure> SubsumptionPredicates(const CompiledParam& cp, const std::string& code,
                                             bool below, const std::string& value,
                                             const SearchContext& context,
                                             store::Conjunction& where) {
  const std::string what = "'" + code + (below ? ":below'" : ":above'");
  std::vector<std::pair<std::string, std::string>> codes;
  for (const std::string& alt : SplitOr(value)) {
    Predicate parsed;
    SplitToken(alt, parsed);
    if (!parsed.system || parsed.system->empty() || parsed.value.empty()) {
      return Bad(what + " takes system|code");
    }
    std::optional<std::vector<std::string>> found;
    if (context.stored_code_systems != nullptr && *context.stored_code_systems) {
      auto r =
          (*context.stored_code_systems)(*parsed.system, parsed.value, below, kMaxValueSetCodes);
      if (auto* f = std::get_if<Failure>(&r)) {
        Failure g = *f;
        g.diagnostics = what + ": " + g.diagnostics;
        return g;
      }
      found = std::move(std::get<0>(r));
    }
    if (!found) {
      return Bad(what +
                     " (subsumption) needs a code system hierarchy: the system is not a "
                     "CodeSystem stored on this server, and the server's terminology has no "
                     "hierarchy",
                 "not-supported");
    }
    for (std::string& c : *found) codes.emplace_back(*parsed.system, std::move(c));
    if (codes.size() > kMaxValueSetCodes) {
      return Bad(what + ": more than " + std::to_string(kMaxValueSetCodes) + " codes to search by",
                 "too-costly");
    }
  }
  return CodePredicates(cp, code, false, std::move(codes), where);
}

// The predicates of a list of (system, code) pairs on token parameter `code`: ORed (`negate`:
// each negation ANDed, R4 "not-in"). A code of a system a `code` element implies (decision 0056
// §3) is also searched as the system-less token (`|code`) the element's rows hold:
// gender:in=ValueSet/administrative-gender finds Patient.gender "male".
std::optional<Failure> CodePredicates(const CompiledParam& cp, const std::string& code, bool negate,
                                      std::vector<std::pair<std::string, std::string>> codes,
                                      store::Conjunction& where) {
  const std::vector<std::string_view> implicit = ImplicitSystems(cp);
  std::vector<Predicate> any;
  auto add = [&](std::string system, std::string c) {
    Predicate p;
    p.kind = Predicate::Kind::kToken;
    p.param = code;
    p.system = std::move(system);
    p.value = std::move(c);
    p.negate = negate;
    AddImplicitSystemTwin(implicit, p, any, where);
    if (negate) {
      where.push_back({std::move(p)});
    } else {
      any.push_back(std::move(p));
    }
  };
  for (auto& [system, c] : codes) add(std::move(system), std::move(c));
  if (!negate && any.empty()) {
    // An empty value set: nothing is in it. An empty id matches no resource.
    Predicate none;
    none.kind = Predicate::Kind::kId;
    any.push_back(std::move(none));
  }
  if (!any.empty()) where.push_back(std::move(any));
  return std::nullopt;
}

}  // namespace

std::optional<Failure> BuildSearch(const std::string& type, const QueryParams& params,
                                   const SearchContext& context, SearchSpec& spec) {
  if (auto f = NotUtf8(params)) return f;
  spec.query.type = type;
  spec.query.count = context.default_count;
  std::optional<std::string> sort_cursor;
  for (const auto& [raw_name, value] : params) {
    std::string name = raw_name;
    if (name == "_count") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 0) {
        return Bad("_count must be a non-negative integer");
      }
      spec.query.count = std::min(n, context.max_count);
      spec.echo.emplace_back(name, value);
      continue;
    }
    if (name == "_cursor") {
      // A sorted search's keyset cursor ("s." …, SortCursorText) is checked against `_sort`
      // after the loop; the default order's is "<lastUpdated>-<id>".
      if (value.starts_with("s.")) {
        sort_cursor = value;
        continue;
      }
      auto dash = value.find('-');
      std::int64_t lu = 0;
      if (dash == std::string::npos ||
          std::from_chars(value.data(), value.data() + dash, lu).ptr != value.data() + dash) {
        return Bad("invalid _cursor (use the next link as given)");
      }
      spec.query.after = std::make_pair(lu, value.substr(dash + 1));
      continue;
    }
    if (name == "_offset") {
      std::int64_t n = 0;
      if (std::from_chars(value.data(), value.data() + value.size(), n).ec != std::errc() ||
          n < 0) {
        return Bad("invalid _offset");
      }
      spec.query.offset = n;
      continue;
    }
    if (name == "_format" || name == "_pretty") {
      if (name == "_format" && value.find("xml") != std::string::npos) {
        Failure f = Bad("only JSON is supported", "not-supported");
        f.status = 406;
        return f;
      }
      continue;
    }
    spec.echo.emplace_back(name, value);
    if (name == "_summary") {
      auto summary = ParseSummary(value);
      if (!summary) return Bad("_summary must be true, text, data, count or false");
      spec.subset.summary = *summary;
      spec.summary_count = *summary == Summary::kCount;
      continue;
    }
    if (name == "_total") {
      spec.total_accurate = value == "accurate";
      continue;
    }
    if (name == "_elements") {
      for (auto& e : SplitOr(value)) {
        if (!e.empty()) spec.subset.elements.push_back(Unescape(e));
      }
      continue;
    }
    if (name == "_sort") {
      for (auto& key : SplitOr(value)) {
        store::SortKey sort;
        const std::string unescaped = Unescape(key);
        std::string_view k = unescaped;
        if (k.starts_with('-')) {
          sort.descending = true;
          k.remove_prefix(1);
        }
        sort.param = std::string(k);
        if (k == "_id" || k == "_lastUpdated") {
          sort.kind = k == "_id" ? Predicate::Kind::kId : Predicate::Kind::kLastUpdated;
        } else {
          const CompiledParam* cp = SearchParamRegistry::Instance().Find(type, k);
          if (cp == nullptr || cp->def->type == ParamType::kReference ||
              cp->def->type == ParamType::kComposite) {
            return Bad("cannot sort by '" + sort.param + "'", "not-supported");
          }
          sort.kind = KindOf(cp->def->type);
        }
        spec.query.sort.push_back(std::move(sort));
      }
      continue;
    }
    if (name == "_include" || name == "_revinclude" || name == "_include:iterate" ||
        name == "_revinclude:iterate") {
      if (value == "*") {
        return Bad(name + "=* is not supported: name the source type (" + name + "=Type:*)",
                   "not-supported");
      }
      IncludeSpec inc;
      inc.iterate = name.ends_with(":iterate");
      name.resize(name.find(':') == std::string::npos ? name.size() : name.find(':'));
      std::string_view v = value;
      auto c1 = v.find(':');
      if (c1 == std::string_view::npos) return Bad(name + " needs Type:param[:target]");
      inc.source_type = std::string(v.substr(0, c1));
      std::string_view rest = v.substr(c1 + 1);
      auto c2 = rest.find(':');
      inc.param = std::string(rest.substr(0, c2));
      if (c2 != std::string_view::npos) inc.target_type = std::string(rest.substr(c2 + 1));
      if (!inc.target_type.empty() && !IsResourceTypeName(inc.target_type)) {
        return Bad(name + " '" + value + "': '" + inc.target_type + "' is not a resource type");
      }
      if (name == "_include" && !inc.iterate && inc.source_type != type) {
        // R4 search.html#include: without :iterate an include follows the matches' references
        // only; those of other types come from included resources (:iterate).
        return Bad("_include must name the searched type (or use _include:iterate)");
      }
      auto& list = name == "_include" ? spec.includes : spec.revincludes;
      if (inc.param == "*") {
        // R4 search.html "Including other resources" (#include): "*" for the search parameter
        // name includes through every search parameter of type reference of the source type.
        // Parameters that are unions or restrictions of others (Observation `patient` =
        // `subject` with target Patient) add nothing those others do not, so they are left
        // out; each one left is an include of its own (the same limits per include).
        const auto& of_type = SearchParamRegistry::Instance().ForType(inc.source_type);
        bool any = false;
        for (const auto& [code, param] : of_type) {
          if (param.def->type != ParamType::kReference || !param.union_of.empty()) continue;
          IncludeSpec one = inc;
          one.param = code;
          list.push_back(std::move(one));
          any = true;
        }
        if (!any) {
          return Bad(name + " '" + value + "': " + inc.source_type +
                     " has no reference search parameter");
        }
        continue;
      }
      const CompiledParam* cp = SearchParamRegistry::Instance().Find(inc.source_type, inc.param);
      if (cp == nullptr || cp->def->type != ParamType::kReference) {
        return Bad(name + " '" + value + "' is not a reference parameter");
      }
      list.push_back(std::move(inc));
      continue;
    }
    if (name == "_text" && (type == "Binary" || type == "Bundle" || type == "Parameters")) {
      return Bad("'_text' is a DomainResource parameter: " + type + " has no narrative",
                 "not-supported");
    }
    if (name == "_text" || name == "_content") {
      // Decision 0041: the narrative / the whole text, searched with a small query language
      // (text_search.hpp); comma-separated values are alternatives as everywhere.
      std::vector<Predicate> any;
      for (const std::string& alt : SplitOr(value)) {
        std::string error;
        auto query = ParseTextQuery(Unescape(alt), error);
        if (!query) return Bad("invalid " + name + " query: " + error);
        for (auto& terms : query->alternatives) {
          Predicate p;
          p.kind = Predicate::Kind::kText;
          p.param = name;
          p.terms = std::move(terms);
          any.push_back(std::move(p));
        }
      }
      spec.query.where.push_back(std::move(any));
      continue;
    }
    if (name == "_query" || name.starts_with("_query:")) {
      // R4 named queries (search.html "_query", OperationDefinition kind = query): none is
      // defined here, so the search cannot be run as asked; not ignored (decision 0041).
      return Bad("named query '" + value +
                     "' is not supported (this server defines no named "
                     "queries)",
                 "not-supported");
    }
    if (name.starts_with("_id:")) {
      // Was accepted and the modifier ignored (_id:not=x found x): strict handling refuses it.
      return Bad("'_id' takes no modifier", "not-supported");
    }
    if (name == "_id") {
      std::vector<Predicate> any;
      for (auto& alt : SplitOr(value)) {
        Predicate p;
        p.kind = Predicate::Kind::kId;
        p.value = Unescape(alt);
        any.push_back(std::move(p));
      }
      spec.query.where.push_back(std::move(any));
      continue;
    }
    if (name == "_lastUpdated") {
      std::vector<Predicate> any;
      for (auto& alt : SplitOr(value)) {
        Predicate p;
        p.kind = Predicate::Kind::kLastUpdated;
        if (!ParseDateValue(Unescape(alt), p)) return Bad("invalid _lastUpdated value");
        any.push_back(std::move(p));
      }
      spec.query.where.push_back(std::move(any));
      continue;
    }
    if (name.starts_with("_has:")) {
      if (auto f = ParseHas(type, name, value, context, 0, spec.query.where)) return f;
      continue;
    }
    // The Resource parameters of the registry (_profile, _tag, _security, _source) are parsed
    // like the others; every other one starting with '_' is refused.
    if (name.starts_with('_') && SearchParamRegistry::Instance().Find(
                                     type, name.substr(0, name.find_first_of(":."))) == nullptr) {
      return Bad("search parameter '" + name + "' is not supported", "not-supported");
    }
    // name[:modifier][.chained]
    std::string chained;
    if (auto dot = name.find('.'); dot != std::string::npos) {
      chained = name.substr(dot + 1);
      name.resize(dot);
    }
    std::string modifier;
    if (auto colon = name.find(':'); colon != std::string::npos) {
      modifier = name.substr(colon + 1);
      name.resize(colon);
    }
    const CompiledParam* cp = SearchParamRegistry::Instance().Find(type, name);
    if (cp == nullptr) return Bad("unknown search parameter '" + name + "' for " + type);
    if (!chained.empty()) {
      if (cp->def->type != ParamType::kReference) return Bad("'" + name + "' cannot be chained");
      Predicate p;
      if (auto f = ParseChain(type, *cp, name, modifier, chained, value, context, p, 0)) {
        return f;
      }
      spec.query.where.push_back({std::move(p)});
      continue;
    }
    if (cp->def->type == ParamType::kToken && (modifier == "in" || modifier == "not-in")) {
      if (auto f = ValueSetPredicates(*cp, name, modifier == "not-in", value, context,
                                      spec.query.where)) {
        return f;
      }
      continue;
    }
    if (cp->def->type == ParamType::kToken && (modifier == "below" || modifier == "above")) {
      if (auto f = SubsumptionPredicates(*cp, name, modifier == "below", value, context,
                                         spec.query.where)) {
        return f;
      }
      continue;
    }
    std::vector<Predicate> any;
    for (const std::string& alt : SplitOr(value)) {
      Predicate p;
      if (auto f = ParseValue(type, *cp, name, modifier, alt, context, p)) return f;
      AddImplicitSystemTwin(*cp, p, any, spec.query.where);
      if (p.negate) {
        // :not with alternatives: the resource matches none of them (R4: ":not ... do not
        // contain a match"; a match is one of the ORed values), so each negated alternative is
        // ANDed. Was ORed: gender:not=male,female found every patient.
        spec.query.where.push_back({std::move(p)});
        continue;
      }
      any.push_back(std::move(p));
    }
    if (!any.empty()) spec.query.where.push_back(std::move(any));
  }
  // A cursor belongs to the order it was made in: a sorted one needs the same number of keys
  // (the next link repeats `_sort`), the default one no `_sort`.
  if (sort_cursor) {
    auto cursor = ParseSortCursor(*sort_cursor, spec.query.sort);
    if (!cursor || spec.query.sort.empty()) {
      return Bad("invalid _cursor for this _sort (use the next link as given)");
    }
    spec.query.sort_after = std::move(*cursor);
  } else if (spec.query.after && !spec.query.sort.empty()) {
    return Bad("invalid _cursor for this _sort (use the next link as given)");
  }
  return CheckSubset(spec.subset);
}

std::optional<Failure> BuildEverything(const std::string& patient_id, const QueryParams& params,
                                       const SearchContext& context, EverythingSpec& spec) {
  if (auto f = NotUtf8(params)) return f;
  store::SearchQuery& q = spec.query;
  store::ReferencedQuery& refs = spec.referenced;
  q.count = context.max_count;
  // The R4 Patient compartment (generated from its CompartmentDefinition): a resource is in it
  // when one of its type's listed parameters references the Patient.
  store::Predicate compartment;
  compartment.kind = Predicate::Kind::kReference;
  compartment.target_type = "Patient";
  compartment.value = patient_id;
  for (const CompartmentLink& link : PatientCompartment()) {
    compartment.links.emplace_back(link.resource_type, link.param);
  }
  q.where.push_back({compartment});
  // The second part: what the compartment (within start/end) and the Patient reference, but
  // what the compartment holds itself.
  refs.sources.push_back({compartment});
  refs.source_type = "Patient";
  refs.source_id = patient_id;
  // Another Patient a resource references (an Observation's subject when the Patient was its
  // performer) is another patient's record, not this one's: left out (HAPI FHIR does the same,
  // its issue 4691). The Patients linked to this one are in the compartment.
  refs.skip_types.emplace_back("Patient");
  refs.exclude.push_back({std::move(compartment)});
  bool typed = false;
  bool cursor = false;
  for (const auto& [name, value] : params) {
    if (name == "_count") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 0) {
        return Bad("_count must be a non-negative integer");
      }
      q.count = std::min(n, context.max_count);
      spec.echo.emplace_back(name, value);
    } else if (name == "_since") {
      Predicate p;
      p.kind = Predicate::Kind::kLastUpdated;
      // An instant (R4: with a time and zone); a date is taken as its first moment.
      if (!ParseDateValue("ge" + value, p)) return Bad("_since must be an instant");
      spec.since_us = spec.since_us ? std::max(*spec.since_us, p.low_us) : p.low_us;
      q.where.push_back({p});
      refs.where.push_back({std::move(p)});
      spec.echo.emplace_back(name, value);
    } else if (name == "_type") {
      std::vector<std::string> types;
      for (const std::string& t : SplitOr(value)) {
        if (!IsResourceTypeName(t)) return Bad("_type: '" + t + "' is not a resource type");
        types.push_back(t);
      }
      // Repeated _type parameters: the union (each lists types to include).
      q.types.insert(q.types.end(), types.begin(), types.end());
      typed = true;
      spec.echo.emplace_back(name, value);
    } else if (name == "start" || name == "end") {
      // The care date: each type's R4 `date` parameter (Observation effective, Encounter period,
      // ...). A resource without one, or of a type without it, is kept (R4: the range "relates
      // to care dates"; what has none cannot be said to fall outside it). The referenced
      // resources are those of the compartment resources kept.
      Predicate range;
      range.kind = Predicate::Kind::kDate;
      range.param = "date";
      range.probe = true;
      if (!ParseDateValue((name == "start" ? "ge" : "le") + value, range)) {
        return Bad("'" + name + "' must be a date");
      }
      Predicate none;
      none.kind = Predicate::Kind::kMissing;
      none.param = "date";
      none.missing_kind = Predicate::Kind::kDate;
      none.missing = true;
      none.probe = true;
      q.where.push_back({range, none});
      refs.sources.push_back({std::move(range), std::move(none)});
      spec.echo.emplace_back(name, value);
    } else if (name == "_cursor") {
      // "<lastUpdated>_<Type>_<id>" in the compartment, "ref_<Type>_<id>" among the referenced
      // resources (no '_' in types and ids), or "patient": the first page held the Patient
      // alone, the compartment starts at its beginning.
      cursor = true;
      if (value == "patient") continue;
      auto sep = value.find('_');
      auto sep2 = sep == std::string::npos ? sep : value.find('_', sep + 1);
      if (sep2 == std::string::npos) return Bad("invalid _cursor (use the next link as given)");
      std::string type = value.substr(sep + 1, sep2 - sep - 1);
      std::string id = value.substr(sep2 + 1);
      if (!IsResourceTypeName(type) || !IsValidId(id)) {
        return Bad("invalid _cursor (use the next link as given)");
      }
      if (value.compare(0, sep, "ref") == 0) {
        spec.in_referenced = true;
        refs.after = std::make_pair(std::move(type), std::move(id));
        continue;
      }
      std::int64_t lu = 0;
      // The whole timestamp (was: its leading digits, so "12x_…" paged from 12).
      if (std::from_chars(value.data(), value.data() + sep, lu).ptr != value.data() + sep) {
        return Bad("invalid _cursor (use the next link as given)");
      }
      q.after = std::make_pair(lu, std::move(id));
      q.after_type = std::move(type);
    } else if (name == "_summary") {
      // R4 search.html "Summary" (§3.1.1.5.8): the answer is a searchset Bundle, so the search
      // result parameters shape it as they shape a search's.
      auto summary = ParseSummary(value);
      if (!summary) return Bad("_summary must be true, text, data, count or false");
      spec.subset.summary = *summary;
      spec.summary_count = *summary == Summary::kCount;
      spec.echo.emplace_back(name, value);
    } else if (name == "_elements") {
      // R4 search.html "Elements" (§3.1.1.5.9).
      for (auto& e : SplitOr(value)) {
        if (!e.empty()) spec.subset.elements.push_back(Unescape(e));
      }
      spec.echo.emplace_back(name, value);
    } else if (name == "_format" || name == "_pretty") {
      // (_format was decided with the request line: Handler::Resolve answers 406 unless JSON.)
    } else {
      return Bad("$everything parameter '" + name + "' is not supported", "not-supported");
    }
  }
  std::sort(q.types.begin(), q.types.end());
  q.types.erase(std::unique(q.types.begin(), q.types.end()), q.types.end());
  refs.types = q.types;
  spec.patient_admitted = !typed || std::binary_search(q.types.begin(), q.types.end(), "Patient");
  spec.first_page = !cursor;
  if (typed) {
    // Only the named types that can be in the compartment are searched there (an empty
    // `types` would mean every type).
    std::erase_if(q.types, [](const std::string& t) {
      const auto links = PatientCompartment();
      return std::none_of(links.begin(), links.end(),
                          [&](const CompartmentLink& l) { return l.resource_type == t; });
    });
    spec.with_compartment = !q.types.empty();
  }
  return CheckSubset(spec.subset);
}

}  // namespace kakehashi::gateway::detail
