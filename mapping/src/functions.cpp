#include "kakehashi/mapping/functions.hpp"

#include "kakehashi/common/base64.hpp"
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/jp_text.hpp"
#include "kakehashi/common/wareki.hpp"

#include "kakehashi/mapping/mapper.hpp"
#include "kakehashi/mapping/message_view.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/code_systems.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <utility>

namespace kakehashi::mapping {
namespace {

using fhir::Node;

// ---------------------------------------------------------------- UTF-8 helpers

// Decodes one code point at s[i]; advances i. Invalid bytes decode as U+FFFD.
std::uint32_t NextCodePoint(std::string_view s, std::size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
    ++i;
    return 0xFFFD;
  }
  std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += static_cast<std::size_t>(len);
  return cp;
}

// Full-width ASCII variants (U+FF01-FF5E) -> ASCII, for numbers and dates only.
std::string FoldWidth(std::string_view s) {
  if (std::all_of(s.begin(), s.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(s);  // ASCII: nothing to fold
  }
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = NextCodePoint(s, i);
    if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;
    if (cp == 0x3000) cp = ' ';
    common::AppendUtf8(out, cp);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
int DaysIn(int y, int m) {
  static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[static_cast<std::size_t>(m - 1)];
}

// ---------------------------------------------------------------- argument helpers

// A view into the argument (empty when absent): most functions only look at the text.
std::string_view Text(std::span<const Argument> args, std::size_t i) {
  return i < args.size() && args[i] ? args[i]->Text() : std::string_view();
}

const Location& At(FunctionContext& ctx) {
  return ctx.Where();
}

// Names remembered by code_system per thread (a linear scan, so a handful).
constexpr std::size_t kMaxRememberedSystems = 32;

// code_system's remembered (name, URI) pairs for the Mapper whose compiled rules have id
// `rules_id` (MessageMemo::rules_id), kept per thread across messages: a Mapper may map on
// several threads; the list starts again whenever the thread maps for another Mapper.
std::vector<std::pair<std::string, std::string>>& KnownSystems(std::uint64_t rules_id) {
  thread_local std::uint64_t id = 0;
  thread_local std::vector<std::pair<std::string, std::string>> known;
  if (id != rules_id) {
    known.clear();
    id = rules_id;
  }
  return known;
}

std::string FindCodeSystemUri(FunctionContext& ctx, std::string_view raw_name, bool* reported) {
  // Digest §9: trim, upper-case, alias HOT -> HOT9 before lookup.
  std::string name(Trim(raw_name));
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.empty()) return {};
  if (name == "HOT") name = "HOT9";
  // A site's own names first (--rules DIR/tables/code_systems.tsv; no built-in table: the
  // registry below is the one source of truth for known systems).
  if (const TableRow* row =
          ctx.rules.Lookup("code_systems", "", name, ToString(ctx.options.profile))) {
    return row->target_code;
  }
  // Everything the terminology module knows (one identity, per-profile spelling;
  // terminology.md §2): JP Core 1.1.2 -> urn:oid forms, 1.2.0 -> URLs.
  const auto& registry = terminology::CodeSystemRegistry::Builtin();
  auto normalized = registry.Normalize(name);
  if (normalized.match == terminology::SystemMatch::kKnown) {
    return registry.Spell(normalized.canonical, ctx.options.profile == ProfileSet::kJpCore120
                                                    ? terminology::ProfileSet::kJpCore120
                                                    : terminology::ProfileSet::kJpCore112);
  }
  // HL7 tables (HL70127 ...) -> the HL7 v2 code system URIs.
  if (name.size() == 7 && name.rfind("HL7", 0) == 0 && AllDigits(name.substr(3))) {
    return "http://terminology.hl7.org/CodeSystem/v2-" + name.substr(3);
  }
  // Local ("99…") and unknown systems: a site-specific URN (kakehashi rule, docs/mapping.md);
  // sites give them real URIs with a tables/code_systems.tsv in --rules (checked first, above).
  if (name.rfind("99", 0) != 0) {
    *reported = true;
    ctx.issues.Warning("mapping.unknown_code_system", At(ctx),
                       "coding-system name unknown to the terminology registry; a local URN is "
                       "used (a site can map it in --rules DIR/tables/code_systems.tsv)");
  }
  return "urn:kakehashi:code-system:" + name;
}

// The same, remembered for the names that raise no issue (messages name the same few systems
// for every coding; the registry look-up and spelling cost ~1,000 instructions). The answer for
// such a name depends only on the rules and options, so the list outlives the message
// (MessageMemo::rules_id); names that raise an issue are looked up (and reported) each time.
std::string CodeSystemUri(FunctionContext& ctx, std::string_view raw_name) {
  auto* known =
      ctx.memo != nullptr && ctx.memo->rules_id != 0 ? &KnownSystems(ctx.memo->rules_id) : nullptr;
  if (known != nullptr) {
    for (const auto& [name, uri] : *known) {
      if (name == raw_name) return uri;
    }
  }
  bool reported = false;
  std::string uri = FindCodeSystemUri(ctx, raw_name, &reported);
  if (known != nullptr && !reported && known->size() < kMaxRememberedSystems) {
    known->emplace_back(std::string(raw_name), uri);
  }
  return uri;
}

// Quantity from value text and an HL7 unit triplet (code^text^system).
std::optional<Node> MakeQuantity(FunctionContext& ctx, std::string_view value_text,
                                 std::string_view unit_code, std::string_view unit_text,
                                 std::string_view unit_system, std::string_view comparator = {}) {
  auto value = NormalizeDecimal(value_text);
  if (!value) return std::nullopt;
  Node q = Node::Object();
  q.Append("value", Node::Number(std::move(*value)));
  if (!comparator.empty()) q.Append("comparator", Node::String(std::string(comparator)));
  std::string code(Trim(unit_code));
  std::string system(Trim(unit_system));
  std::string display(Trim(unit_text));
  if (!code.empty() || !display.empty()) {
    q.Append("unit", Node::String(display.empty() ? code : display));
  }
  if (system == "MR9P") {
    q.Append("system", Node::String(CodeSystemUri(ctx, system)));
    q.Append("code", Node::String(code));
  } else if (!code.empty()) {
    // ISO+ and local units: UCUM only where the table knows the unit ("UCUM where known").
    if (const TableRow* row = ctx.rules.Lookup("ucum", "", code, "")) {
      q.Append("system", Node::String("http://unitsofmeasure.org"));
      q.Append("code", Node::String(row->target_code));
    }
  }
  return q;
}

// ---------------------------------------------------------------- the function table

std::optional<Node> FnDate(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view t = Text(a, 0);
  if (t.empty()) return std::nullopt;
  auto d = Hl7DateToFhir(t);
  if (!d) {
    ctx.issues.Warning("mapping.bad_date", At(ctx), "not an HL7 date (YYYY[MM[DD]]); dropped");
    return std::nullopt;
  }
  return Node::String(std::move(*d));
}

std::optional<Node> FnDateTime(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view t = Text(a, 0);
  if (t.empty()) return std::nullopt;
  bool rolled = false;
  auto d = Hl7DateTimeToFhir(t, &rolled);
  if (!d) {
    ctx.issues.Warning("mapping.bad_date", At(ctx), "not an HL7 timestamp; dropped");
    return std::nullopt;
  }
  if (rolled) {
    ctx.issues.Warning("mapping.hour_rollover", At(ctx),
                       "hour 24-47 (after-midnight notation) rolled into the next day");
  }
  return Node::String(std::move(*d));
}

// FHIR instant needs seconds and an offset: only timestamps with a time qualify, unless the
// second argument is "pad" (Provenance.recorded, which is required): a date becomes its
// midnight JST.
std::optional<Node> FnInstant(std::span<const Argument> a, FunctionContext& ctx) {
  auto d = FnDateTime(a, ctx);
  if (!d) return std::nullopt;
  if (d->Text().size() == 10 && Text(a, 1) == "pad") {
    return Node::String(std::string(d->Text()) + "T00:00:00+09:00");
  }
  if (d->Text().size() < 19) return std::nullopt;
  return d;
}

std::optional<Node> FnDecimal(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view t = Text(a, 0);
  if (t.empty()) return std::nullopt;
  auto d = NormalizeDecimal(t);
  if (!d) {
    ctx.issues.Warning("mapping.bad_number", At(ctx), "not a decimal number; dropped");
    return std::nullopt;
  }
  return Node::Number(std::move(*d));
}

std::optional<Node> FnInteger(std::span<const Argument> a, FunctionContext& ctx) {
  std::string t = FoldWidth(Trim(Text(a, 0)));
  if (t.empty()) return std::nullopt;
  if (!AllDigits(t)) {
    ctx.issues.Warning("mapping.bad_number", At(ctx), "not an integer; dropped");
    return std::nullopt;
  }
  std::size_t nz = t.find_first_not_of('0');
  return Node::Number(nz == std::string::npos ? "0" : t.substr(nz));
}

std::optional<Node> FnEra(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view t = Text(a, 0);
  if (t.empty()) return std::nullopt;
  if (auto d = Hl7DateToFhir(t)) return Node::String(std::move(*d));
  if (auto d = JpEraToDate(t)) return Node::String(std::move(*d));
  ctx.issues.Warning("mapping.bad_date", At(ctx), "neither an HL7 date nor a Japanese era date");
  return std::nullopt;
}

std::optional<Node> FnKana(std::span<const Argument> a, FunctionContext&) {
  const std::string_view t = Text(a, 0);
  if (t.empty()) return std::nullopt;
  return Node::String(NormalizeKana(t));
}

std::string FindFacilityCode(FunctionContext& ctx) {
  if (!ctx.options.facility_code.empty()) return ctx.options.facility_code;
  // MSH-4 (sending facility) when it is a 10-digit 医療機関コード.
  for (std::size_t s = 0; s < ctx.message.SegmentCount(); ++s) {
    if (ctx.message.SegmentId(s) == "MSH") {
      std::string f = ctx.message.Value(s, 4, 1, 1, 1);
      if (f.size() == 10 && AllDigits(f)) return f;
      break;
    }
  }
  return {};
}

// The same for the whole message: every resource id hashes the patient system.
std::string FacilityCode(FunctionContext& ctx) {
  if (ctx.memo == nullptr) return FindFacilityCode(ctx);
  if (!ctx.memo->facility_known) {
    ctx.memo->facility = FindFacilityCode(ctx);
    ctx.memo->facility_known = true;
  }
  return ctx.memo->facility;
}

// urn:oid:1.2.392.100495.20.3.51.1<10桁> (JP_Patient facility patient ID; terminology §1).
std::optional<Node> FnPatientSystem(std::span<const Argument>, FunctionContext& ctx) {
  std::string code = FacilityCode(ctx);
  if (code.empty()) {
    bool repeat = false;
    if (ctx.memo != nullptr) {
      auto& fields = ctx.memo->facility_unknown_fields;
      repeat = std::find(fields.begin(), fields.end(), ctx.field) != fields.end();
      if (!repeat) fields.emplace_back(ctx.field);
    }
    if (!repeat && !ctx.issues.Keeps(Severity::kWarning)) {
      ctx.issues.CountOnly(Severity::kWarning, "mapping.facility_unknown", ctx.field);
    } else if (!repeat) {
      ctx.issues.Warning("mapping.facility_unknown", At(ctx),
                         "no 10-digit 医療機関コード (--facility or MSH-4): patient identifiers "
                         "use a local system");
    }
    return Node::String("urn:kakehashi:local-patient-id");
  }
  return Node::String("urn:oid:1.2.392.100495.20.3.51.1" + code);
}

// urn:oid:1.2.392.100495.20.3.41.1<10桁> (施設内 医師 ID).
std::optional<Node> FnStaffSystem(std::span<const Argument>, FunctionContext& ctx) {
  std::string code = FacilityCode(ctx);
  if (code.empty()) return Node::String("urn:kakehashi:local-staff-id");
  return Node::String("urn:oid:1.2.392.100495.20.3.41.1" + code);
}

// urn:oid:<prefix>.1<10桁>: facility-scoped OID namespaces (terminology §2: 処方箋ID .20.3.11,
// 施設内 医師 .20.3.41, 患者 .20.3.51). Without a facility code: a local URN.
std::optional<Node> FnFacilitySystem(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view prefix = Text(a, 0);
  std::string code = FacilityCode(ctx);
  if (code.empty()) return Node::String("urn:kakehashi:local-id:" + std::string(prefix));
  return Node::String("urn:oid:" + std::string(prefix) + ".1" + code);
}

// PRB-10 CWE.7: "2013" = ICD-10 2013 (MHLW) -> the JP Core URL; empty or "2003" = the 2003
// edition, which must not be passed off as 2013 (terminology §4.3): the WHO ICD-10 URI.
std::optional<Node> FnIcd10System(std::span<const Argument> a, FunctionContext& ctx) {
  std::string version(Trim(Text(a, 0)));
  return Node::String(CodeSystemUri(ctx, version == "2013" ? "I10-2013" : "I10"));
}

std::optional<Node> FnCodeSystem(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view t = Text(a, 0);
  if (Trim(t).empty()) return std::nullopt;
  return Node::String(CodeSystemUri(ctx, t));
}

std::optional<Node> FnProfile(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view name = Text(a, 0);
  if (const TableRow* row = ctx.rules.Lookup("profiles", "", name, ToString(ctx.options.profile))) {
    return Node::String(row->target_code);
  }
  return std::nullopt;
}

std::optional<Node> FnQuantity(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view v = Text(a, 0);
  if (Trim(v).empty()) return std::nullopt;
  auto q = MakeQuantity(ctx, v, Text(a, 1), Text(a, 2), Text(a, 3));
  if (!q) ctx.issues.Warning("mapping.bad_number", At(ctx), "not a decimal number; dropped");
  return q;
}

// OBX-2/5/6 -> value[x] (digest §6: OBX-2 only NM, ST, CWE; comparators come as ST "< 5").
// Returns an object with one member (valueQuantity | valueString | valueCodeableConcept), which
// the rule merges into the Observation with "$merge".
std::optional<Node> FnObxValue(std::span<const Argument> a, FunctionContext& ctx) {
  std::string type(Trim(Text(a, 0)));
  const std::string_view value = Text(a, 1);
  if (Trim(value).empty()) return std::nullopt;
  Node out = Node::Object();
  if (type == "CWE" || type == "CE" || type == "CNE") {
    Node coding = Node::Object();
    std::string system = CodeSystemUri(ctx, Text(a, 7));
    if (!system.empty()) coding.Set("system", Node::String(system));
    coding.Set("code", Node::String(std::string(Trim(value))));
    if (!Text(a, 6).empty()) coding.Set("display", Node::String(Text(a, 6)));
    Node cc = Node::Object();
    cc.Set("coding", Node::Array()).Push(std::move(coding));
    if (!Text(a, 6).empty()) cc.Set("text", Node::String(Text(a, 6)));
    out.Set("valueCodeableConcept", std::move(cc));
    return out;
  }
  std::string folded = FoldWidth(Trim(value));
  std::string comparator;
  std::string number = folded;
  for (std::string_view op : {"<=", ">=", "<", ">"}) {
    if (folded.rfind(op, 0) == 0) {
      comparator = op;
      number = std::string(Trim(std::string_view(folded).substr(op.size())));
      break;
    }
  }
  if (auto q = MakeQuantity(ctx, number, Text(a, 2), Text(a, 3), Text(a, 4), comparator)) {
    out.Set("valueQuantity", std::move(*q));
    return out;
  }
  if (type == "NM") {
    ctx.issues.Warning("mapping.bad_number", At(ctx),
                       "OBX-2 is NM but OBX-5 is not a number; kept as valueString");
  }
  out.Set("valueString", Node::String(value));
  return out;
}

// OBX-7 "6.6-8.1", "<85", ">=40" -> [{low, high, text}] with OBX-6 units.
std::optional<Node> FnReferenceRange(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view raw = Text(a, 0);
  std::string text(Trim(FoldWidth(raw)));
  if (text.empty()) return std::nullopt;
  Node range = Node::Object();
  auto quantity = [&](std::string_view v) {
    return MakeQuantity(ctx, v, Text(a, 1), Text(a, 2), Text(a, 3));
  };
  std::size_t dash = text.find('-', 1);
  if (dash != std::string::npos) {
    auto low = quantity(Trim(std::string_view(text).substr(0, dash)));
    auto high = quantity(Trim(std::string_view(text).substr(dash + 1)));
    if (low) range.Set("low", std::move(*low));
    if (high) range.Set("high", std::move(*high));
  } else if (text[0] == '<') {
    std::size_t skip = text.size() > 1 && text[1] == '=' ? 2 : 1;
    if (auto high = quantity(Trim(std::string_view(text).substr(skip)))) {
      range.Set("high", std::move(*high));
    }
  } else if (text[0] == '>') {
    std::size_t skip = text.size() > 1 && text[1] == '=' ? 2 : 1;
    if (auto low = quantity(Trim(std::string_view(text).substr(skip)))) {
      range.Set("low", std::move(*low));
    }
  }
  range.Set("text", Node::String(raw));
  Node out = Node::Array();
  out.Push(std::move(range));
  return out;
}

std::optional<Node> FnOriginalBase64(std::span<const Argument>, FunctionContext& ctx) {
  return Node::String(Base64Encode(ctx.message.Original()));
}

std::optional<Node> FnSource(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view what = Text(a, 0);
  std::string v = what == "file"            ? ctx.source.file
                  : what == "kind"          ? ctx.source.kind
                  : what == "data_type"     ? ctx.source.data_type
                  : what == "message_index" ? std::to_string(ctx.source.message_index)
                                            : std::string();
  if (v.empty()) return std::nullopt;
  return Node::String(v);
}

std::optional<Node> FnIndex(std::span<const Argument>, FunctionContext& ctx) {
  return Node::String(std::to_string(ctx.scope_index));
}

std::optional<Node> FnGroupIndex(std::span<const Argument>, FunctionContext& ctx) {
  return Node::String(std::to_string(ctx.group_index));
}

std::string StripZeros(std::string_view s) {
  std::size_t nz = s.find_first_not_of('0');
  return nz == std::string_view::npos ? (s.empty() ? std::string() : "0")
                                      : std::string(s.substr(nz));
}

// ORC-4 RP number: "1" or "<order>_01" (digest §6) -> zero-suppressed "1".
std::optional<Node> FnRpNumber(std::span<const Argument> a, FunctionContext&) {
  std::string t(Trim(Text(a, 0)));
  if (t.empty()) return std::nullopt;
  std::size_t us = t.rfind('_');
  if (us != std::string::npos) t = t.substr(us + 1);
  return Node::String(StripZeros(t));
}

// PRB-1 action, PRB-13 疑い (JHSD0005 "1"): DE -> entered-in-error (HL7 0287),
// suspected -> provisional (kakehashi rule), else confirmed.
std::optional<Node> FnConditionVerification(std::span<const Argument> a, FunctionContext&) {
  if (Trim(Text(a, 0)) == "DE") return Node::String("entered-in-error");
  if (Trim(Text(a, 1)) == "1") return Node::String("provisional");
  return Node::String("confirmed");
}

// PRB-1, PRB-14.1 outcome (HL7 0241 / JHSD0006), PRB-9 resolution date -> clinicalStatus code.
// None for entered-in-error (con-5); resolved when abated without an outcome (con-4).
std::optional<Node> FnConditionClinicalStatus(std::span<const Argument> a, FunctionContext&) {
  if (Trim(Text(a, 0)) == "DE") return std::nullopt;
  std::string outcome(Trim(Text(a, 1)));
  bool abated = !Trim(Text(a, 2)).empty();
  if (outcome == "R" || outcome == "F" || outcome == "S") return Node::String("resolved");
  if (outcome == "M") return Node::String("remission");
  if (outcome == "I" || outcome == "D") return Node::String("inactive");
  if (abated) return Node::String("resolved");
  return Node::String("active");
}

// ---------------------------------------------------------------- mapping-coverage (issue #4)
// Functions added with the NK1 / ZPR / DB1 / OMD / OMG rules. Additive block: each one is
// registered at the end of the table below.

// {"fn": "require_any", "args": [<object>, "name", "telecom", ...]}: the object when it has at
// least one of the named members, else nothing (and a warning). For FHIR invariants that need one
// of several elements, which "$require" (all of) cannot say: Patient.contact pat-1 "SHALL at least
// contain a contact's details or a reference to an organization" (NK1 with a relation only).
std::optional<Node> FnRequireAny(std::span<const Argument> a, FunctionContext& ctx) {
  if (a.empty() || !a[0] || !a[0]->IsObject()) return std::nullopt;
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i] && a[i]->IsString() && a[0]->Find(a[i]->Text()) != nullptr) return a[0];
  }
  ctx.issues.Warning("mapping.element_incomplete", At(ctx),
                     "element left out: it has none of the members its FHIR invariant requires "
                     "(e.g. a contact without name, telecom, address or organization)");
  return std::nullopt;
}

// {"fn": "no_fhir_target", "args": ["DB1", <fields>...]}: reads the fields (so they are not
// reported as unused) and reports one information issue "mapping.no_fhir_target" for the
// segment instead: its content has no FHIR R4 / JP Core element (docs/mapping.md "No FHIR target").
// DB1 (v2.5 §3.4.11): DB1-2 whose disability (HL7 0334 PT/GT/IN/AP), DB1-3 person identifier,
// DB1-4 indicator Y/N, DB1-5..8 dates; the extension patient-disability needs the disability
// itself (a code), which DB1 does not carry. Never returns a value; never names field values.
std::optional<Node> FnNoFhirTarget(std::span<const Argument> a, FunctionContext& ctx) {
  bool any = false;
  for (std::size_t i = 1; i < a.size(); ++i) any = any || (a[i] && !a[i]->Text().empty());
  if (any) {
    ctx.issues.Info("mapping.no_fhir_target", At(ctx),
                    "segment " + std::string(Text(a, 0)) +
                        " has no FHIR R4 / JP Core target; its content stays only in the "
                        "source message (see docs/mapping.md)");
  }
  return std::nullopt;
}

// {"fn": "disease_modifiers", "args": [<extension url>, <exchange-code Codings>, <key-number
// Codings>]}: JP Core JP_Condition_DiseasePrefixModifier / …PostfixModifier, one extension per
// modifier (ZPR-4/ZPR-1 接頭, ZPR-6/ZPR-3 接尾; digest §6 PPR-01, terminology.md §1 and §4.3). The
// n-th 交換用コード and the n-th 管理番号 name the same modifier, so they share one
// CodeableConcept; when the two fields repeat a different number of times they cannot be paired
// and each code gets its own extension (warning mapping.modifier_unpaired).
std::vector<Node> Codings(const Argument& a) {
  std::vector<Node> out;
  if (!a) return out;
  if (a->IsObject()) out.push_back(*a);
  if (a->IsArray()) {
    for (const auto& item : a->Items()) {
      if (item.IsObject()) out.push_back(item);
    }
  }
  return out;
}

std::optional<Node> FnDiseaseModifiers(std::span<const Argument> a, FunctionContext& ctx) {
  const std::string_view url = Text(a, 0);
  std::vector<Node> ex = Codings(a.size() > 1 ? a[1] : Argument());
  std::vector<Node> key = Codings(a.size() > 2 ? a[2] : Argument());
  if (url.empty() || (ex.empty() && key.empty())) return std::nullopt;
  auto extension = [&](std::vector<Node> codings) {
    Node cc = Node::Object();
    Node& list = cc.Set("coding", Node::Array());
    std::string text;
    for (auto& c : codings) {
      if (text.empty() && c.Find("display") != nullptr) text = c.Find("display")->Text();
      list.Push(std::move(c));
    }
    if (!text.empty()) cc.Set("text", Node::String(text));
    Node e = Node::Object();
    e.Set("url", Node::String(url));
    e.Set("valueCodeableConcept", std::move(cc));
    return e;
  };
  Node out = Node::Array();
  if (ex.empty() || key.empty() || ex.size() == key.size()) {
    for (std::size_t i = 0; i < std::max(ex.size(), key.size()); ++i) {
      std::vector<Node> codings;
      if (i < ex.size()) codings.push_back(ex[i]);
      if (i < key.size()) codings.push_back(key[i]);
      out.Push(extension(std::move(codings)));
    }
    return out;
  }
  ctx.issues.Warning("mapping.modifier_unpaired", At(ctx),
                     "modifier exchange codes and key numbers repeat a different number of "
                     "times; one extension per code");
  for (auto& c : ex) out.Push(extension({std::move(c)}));
  for (auto& c : key) out.Push(extension({std::move(c)}));
  return out;
}

// {"fn": "ods_select", "args": ["D", {"path": "ODS-1"}, <value>]}: the value when the ODS
// segment's type (ODS-1, HL7 0159: D diet, S supplement, P preference) is the wanted one, so one
// OMD^O03 order's ODS segments land in NutritionOrder.oralDiet.type, .supplement.type and
// .foodPreferenceModifier respectively (HL7 v2.5 §4.8.2; digest §6 OMD). An empty ODS-1 counts
// as D (the segment's main use).
std::optional<Node> FnOdsSelect(std::span<const Argument> a, FunctionContext&) {
  std::string wanted(Trim(Text(a, 0)));
  std::string type(Trim(Text(a, 1)));
  for (auto& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type.empty()) type = "D";
  if (type != wanted || a.size() < 3 || !a[2]) return std::nullopt;
  return a[2];
}

// {"fn": "attending_change_start", "args": [MSH-9.2, EVN-6, EVN-2]}: for ADT^A54 (ADT-01 担当医
// 変更) the time the new attending doctor (PV1-7) took over: EVN-6 event occurred, else EVN-2
// recorded (digest §6 "ADT-01: new attending, EVN-6 = change time") -> Encounter.participant
// (ATND).period.start. None for every other trigger: A55 (cancel) reinstates the previous
// doctor, whose start is not the cancel time; admissions and transfers do not date the attending.
std::optional<Node> FnAttendingChangeStart(std::span<const Argument> a, FunctionContext& ctx) {
  if (a.size() < 3 || Trim(Text(a, 0)) != "A54") return std::nullopt;
  std::size_t source = !Trim(Text(a, 1)).empty() ? 1 : 2;
  if (Trim(Text(a, source)).empty()) return std::nullopt;
  return FnDateTime(a.subspan(source, 1), ctx);
}

// {"fn": "location_period_start", "args": [MSH-9.2, EVN-6]}: EVN-6 as Encounter.location.period
// .start (digest §6 JIG "EVN-6 -> location.period.start (ADT-31/32/42)"), except for ADT-01
// (A54/A55), whose EVN-6 is when the attending doctor changed, not when the ward began, and for
// the other cancel events (A11, A12, A13, A25, A26, A27, A52, A53): a cancel reinstates an
// earlier state (A12: PV1-3 is the ward before the cancelled transfer, HL7 v2.5 §3.3.12), its
// EVN-6 is not when that ward began.
std::optional<Node> FnLocationPeriodStart(std::span<const Argument> a, FunctionContext& ctx) {
  std::string_view trigger = Trim(Text(a, 0));
  static constexpr std::string_view kNoWardStart[] = {"A54", "A55", "A11", "A12", "A13",
                                                      "A25", "A26", "A27", "A52", "A53"};
  if (a.size() < 2 || std::find(std::begin(kNoWardStart), std::end(kNoWardStart), trigger) !=
                          std::end(kNoWardStart)) {
    return std::nullopt;
  }
  return FnDateTime(a.subspan(1, 1), ctx);
}

// {"fn": "ods_supplements", "args": [ODS-1, <ODS-3 CWE, repeat>, ODS-4]}: for a supplement ODS
// (ODS-1 S), one NutritionOrder.supplement per ODS-3 repetition (supplement.type is 0..1 and the
// repetitions are different products, HL7 v2.5 §4.8.2 ODS-3 "diet, supplement, or preference
// code" repeats), each with ODS-4 as instruction. The mapper flattens the returned array.
std::optional<Node> FnOdsSupplements(std::span<const Argument> a, FunctionContext&) {
  std::string type(Trim(Text(a, 0)));
  if (type != "S" && type != "s") return std::nullopt;
  if (a.size() < 2 || !a[1]) return std::nullopt;
  std::string instruction(Trim(Text(a, 2)));
  Node out = Node::Array();
  auto add = [&](const Node& code) {
    Node supplement = Node::Object();
    supplement.Set("type", code);
    if (!instruction.empty()) supplement.Set("instruction", Node::String(Text(a, 2)));
    out.Push(std::move(supplement));
  };
  if (a[1]->IsArray()) {
    for (const auto& code : a[1]->Items()) add(code);
  } else {
    add(*a[1]);
  }
  if (out.Size() == 0) return std::nullopt;
  return out;
}

// {"fn": "ods_preference_instruction", "args": [{"each": "ODS", "template": {"type": ODS-1,
// "text": ODS-3.2 (repeat), "code": ODS-3.1 (repeat), "note": ODS-4}}]}: an OMD^O03 order whose
// ODS segments are all food preferences (ODS-1 P) has neither oralDiet nor supplement, which R4
// invariant nor-1 forbids. The preferences modify the patient's oral diet, so their text becomes
// oralDiet.instruction ("free text or additional instructions ... pertaining to the oral diet",
// R4 NutritionOrder): ODS-4 where given, else the ODS-3 texts (codes when a repetition has no
// text), joined by " / ". None when any ODS is a diet or supplement (empty ODS-1 counts as D).
std::optional<Node> FnOdsPreferenceInstruction(std::span<const Argument> a, FunctionContext&) {
  if (a.empty() || !a[0] || !a[0]->IsArray()) return std::nullopt;
  auto texts = [](const Node* n) {
    std::vector<std::string> out;
    if (n == nullptr) return out;
    if (n->IsArray()) {
      for (const auto& i : n->Items()) out.emplace_back(i.Text());
    } else {
      out.emplace_back(n->Text());
    }
    return out;
  };
  std::string joined;
  auto append = [&](std::string_view t) {
    if (Trim(t).empty()) return;
    if (!joined.empty()) joined += " / ";
    joined += t;
  };
  for (const auto& ods : a[0]->Items()) {
    const Node* type = ods.Find("type");
    std::string t = type != nullptr ? std::string(Trim(type->Text())) : std::string();
    if (t != "P" && t != "p") return std::nullopt;
    const Node* note = ods.Find("note");
    if (note != nullptr && !Trim(note->Text()).empty()) {
      append(note->Text());
      continue;
    }
    auto text = texts(ods.Find("text"));
    auto code = texts(ods.Find("code"));
    for (std::size_t i = 0; i < std::max(text.size(), code.size()); ++i) {
      if (i < text.size() && !Trim(text[i]).empty()) {
        append(text[i]);
      } else if (i < code.size()) {
        append(code[i]);
      }
    }
  }
  if (joined.empty()) return std::nullopt;
  return Node::String(std::move(joined));
}

// {"$merge": {"fn": "condition_onset", "args": [PRB-16, PRB-17]}}: onset[x] is one choice, so
// PRB-16 onset date -> {"onsetDateTime"}, else PRB-17 onset text -> {"onsetString"} (digest §6
// PPR-01 "PRB-16 onset date; PRB-17 onset text"). With both, the text is not kept: information
// issue mapping.value_not_kept (it stays in the source message).
std::optional<Node> FnConditionOnset(std::span<const Argument> a, FunctionContext& ctx) {
  std::string date(Trim(Text(a, 0)));
  std::string text(Trim(Text(a, 1)));
  Node out = Node::Object();
  if (!date.empty()) {
    if (auto d = FnDateTime(a.subspan(0, 1), ctx)) {
      out.Set("onsetDateTime", std::move(*d));
      if (!text.empty()) {
        ctx.issues.Info("mapping.value_not_kept", At(ctx),
                        "onset text (PRB-17) not kept: onset[x] holds the onset date (PRB-16)");
      }
      return out;
    }
  }
  if (text.empty()) return std::nullopt;
  out.Set("onsetString", Node::String(Text(a, 1)));
  return out;
}

// {"fn": "condition_abatement", "args": [PRB-9, PRB-15, PRB-14.1, PRB-1]}: PRB-9 resolution date,
// else PRB-15 outcome date when the outcome ends the condition (HL7 0241 R/F/S/D, JHSD0006 I/M —
// the outcomes condition_clinical_status turns into resolved/inactive/remission, so con-4 holds).
// Another outcome's date has no element: information issue mapping.value_not_kept.
// PRB-1 `DE` (entered-in-error) takes no abatement: con-5 forbids clinicalStatus there, and con-4
// requires it for an abated condition.
std::optional<Node> FnConditionAbatement(std::span<const Argument> a, FunctionContext& ctx) {
  if (Trim(Text(a, 3)) == "DE") {
    if (!Trim(Text(a, 0)).empty() || !Trim(Text(a, 1)).empty()) {
      ctx.issues.Info("mapping.value_not_kept", At(ctx),
                      "resolution/outcome date not kept: the problem was deleted (PRB-1 DE)");
    }
    return std::nullopt;
  }
  if (!Trim(Text(a, 0)).empty()) return FnDateTime(a.subspan(0, 1), ctx);
  if (Trim(Text(a, 1)).empty()) return std::nullopt;
  std::string outcome(Trim(Text(a, 2)));
  for (std::string_view ending : {"R", "F", "S", "D", "I", "M"}) {
    if (outcome == ending) return FnDateTime(a.subspan(1, 1), ctx);
  }
  ctx.issues.Info(
      "mapping.value_not_kept", At(ctx),
      "outcome date (PRB-15) not kept: the outcome (PRB-14) does not end the condition");
  return std::nullopt;
}

const std::map<std::string_view, Function>& Table() {
  static const std::map<std::string_view, Function> kTable{
      {"hl7_date_to_fhir", FnDate},
      {"hl7_datetime_to_fhir", FnDateTime},
      {"hl7_instant", FnInstant},
      {"decimal", FnDecimal},
      {"integer", FnInteger},
      {"jp_era_to_date", FnEra},
      {"normalize_kana", FnKana},
      {"patient_system", FnPatientSystem},
      {"staff_system", FnStaffSystem},
      {"facility_system", FnFacilitySystem},
      {"icd10_system", FnIcd10System},
      {"code_system", FnCodeSystem},
      {"profile", FnProfile},
      {"quantity", FnQuantity},
      {"obx_value", FnObxValue},
      {"reference_range", FnReferenceRange},
      {"original_base64", FnOriginalBase64},
      {"source", FnSource},
      {"index", FnIndex},
      {"group_index", FnGroupIndex},
      {"rp_number", FnRpNumber},
      {"condition_verification", FnConditionVerification},
      {"condition_clinical_status", FnConditionClinicalStatus},
      // mapping-coverage (issue #4)
      {"require_any", FnRequireAny},
      {"no_fhir_target", FnNoFhirTarget},
      {"disease_modifiers", FnDiseaseModifiers},
      {"ods_select", FnOdsSelect},
      {"ods_supplements", FnOdsSupplements},
      {"attending_change_start", FnAttendingChangeStart},
      {"location_period_start", FnLocationPeriodStart},
      {"ods_preference_instruction", FnOdsPreferenceInstruction},
      {"condition_onset", FnConditionOnset},
      {"condition_abatement", FnConditionAbatement},
  };
  return kTable;
}

}  // namespace

const Function* FindFunction(std::string_view name) {
  auto it = Table().find(name);
  return it == Table().end() ? nullptr : &it->second;
}

std::vector<std::string_view> FunctionNames() {
  std::vector<std::string_view> out;
  for (const auto& [name, fn] : Table()) out.push_back(name);
  return out;
}

// ---------------------------------------------------------------- text helpers

// The two converters below run for every date of every message: they read the digits in place
// and write into one reserved string (the substr/Pad temporaries they used cost ~1,400
// instructions per timestamp).
namespace {

// Writes `v` (>= 0) at `out` with at least `width` digits, zero-padded; returns the end.
char* PutPadded(char* out, int v, int width) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  for (int k = n; k < width; ++k) *out++ = '0';
  while (n > 0) *out++ = digits[--n];
  return out;
}

int DigitsAt(std::string_view s, std::size_t at, std::size_t count) {
  return ToInt(s.substr(at, count));
}

}  // namespace

std::optional<std::string> Hl7DateToFhir(std::string_view ts) {
  const std::string_view t = Trim(ts);
  std::size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
  if (digits < 4 || digits == 5 || digits == 7) return std::nullopt;
  const int y = DigitsAt(t, 0, 4);
  if (y < 1) return std::nullopt;
  char buf[24];
  char* end = PutPadded(buf, y, 4);
  if (digits >= 6) {
    const int m = DigitsAt(t, 4, 2);
    if (m < 1 || m > 12) return std::nullopt;
    *end++ = '-';
    end = PutPadded(end, m, 2);
    if (digits >= 8) {
      const int d = DigitsAt(t, 6, 2);
      if (d < 1 || d > DaysIn(y, m)) return std::nullopt;
      *end++ = '-';
      end = PutPadded(end, d, 2);
    }
  }
  return std::string(buf, end);
}

std::optional<std::string> Hl7DateTimeToFhir(std::string_view ts, bool* rolled) {
  if (rolled != nullptr) *rolled = false;
  const std::string_view t = Trim(ts);
  std::size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
  if (digits <= 8) {
    if (digits != t.size()) return std::nullopt;
    return Hl7DateToFhir(t);
  }
  std::string_view fraction;
  std::string_view rest = t.substr(digits);
  std::string_view body = t.substr(0, digits);
  if (digits == 17) {  // yyyyMMddHHmmssfff without a dot (SS-MIX2 MSH-7)
    fraction = body.substr(14);
    body = body.substr(0, 14);
  } else if (digits != 10 && digits != 12 && digits != 14) {
    return std::nullopt;
  }
  if (!rest.empty() && rest[0] == '.') {
    std::size_t f = 1;
    while (f < rest.size() && rest[f] >= '0' && rest[f] <= '9') ++f;
    if (f == 1 || body.size() != 14) return std::nullopt;
    fraction = rest.substr(1, f - 1);
    rest = rest.substr(f);
  }
  std::string_view tz_hours = "+09", tz_minutes = "00";  // SS-MIX2: no offset, JST
  if (!rest.empty()) {
    if ((rest[0] != '+' && rest[0] != '-') || rest.size() != 5 || !AllDigits(rest.substr(1))) {
      return std::nullopt;
    }
    tz_hours = rest.substr(0, 3);
    tz_minutes = rest.substr(3);
  }
  int y = DigitsAt(body, 0, 4), mo = DigitsAt(body, 4, 2), d = DigitsAt(body, 6, 2);
  int h = DigitsAt(body, 8, 2);
  const int mi = body.size() >= 12 ? DigitsAt(body, 10, 2) : 0;
  const int s = body.size() >= 14 ? DigitsAt(body, 12, 2) : 0;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DaysIn(y, mo)) return std::nullopt;
  if (h > 47 || mi > 59 || s > 59) return std::nullopt;
  if (h >= 24) {  // JAHIS after-midnight hours 24-47 (digest §7): next day
    h -= 24;
    if (rolled != nullptr) *rolled = true;
    if (++d > DaysIn(y, mo)) {
      d = 1;
      if (++mo > 12) {
        mo = 1;
        ++y;
      }
    }
  }
  char buf[32];  // at most 5 + 3 + 3 + 3 + 3 + 3 digits and separators
  char* end = PutPadded(buf, y, 4);
  *end++ = '-';
  end = PutPadded(end, mo, 2);
  *end++ = '-';
  end = PutPadded(end, d, 2);
  *end++ = 'T';
  end = PutPadded(end, h, 2);
  *end++ = ':';
  end = PutPadded(end, mi, 2);
  *end++ = ':';
  end = PutPadded(end, s, 2);
  std::string out;
  out.reserve(static_cast<std::size_t>(end - buf) + 1 + fraction.size() + 6);
  out.append(buf, end);
  if (!fraction.empty()) out.append(".").append(fraction);
  out.append(tz_hours).append(":").append(tz_minutes);
  return out;
}

std::optional<std::string> JpEraToDate(std::string_view input) {
  auto date = common::ParseWareki(input);
  if (!date) return std::nullopt;
  return date->ToIso();
}

std::string NormalizeKana(std::string_view text) {
  return common::HalfwidthToFullwidthKana(text);
}

std::optional<std::string> NormalizeDecimal(std::string_view text) {
  std::string t(Trim(FoldWidth(Trim(text))));
  if (t.empty()) return std::nullopt;
  std::size_t i = 0;
  if (t[0] == '+') t.erase(0, 1);
  if (!t.empty() && t[0] == '-') i = 1;
  bool digit = false, dot = false;
  for (; i < t.size(); ++i) {
    if (t[i] >= '0' && t[i] <= '9') {
      digit = true;
    } else if (t[i] == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit || t.back() == '.') return std::nullopt;
  if (t[0] == '.') t.insert(t.begin(), '0');
  if (t.size() > 1 && t[0] == '-' && t[1] == '.') t.insert(t.begin() + 1, '0');
  // FHIR decimal forbids leading zeros like "007": strip them but keep "0.5".
  std::size_t start = t[0] == '-' ? 1 : 0;
  while (t.size() > start + 1 && t[start] == '0' && t[start + 1] != '.') t.erase(start, 1);
  return t;
}

}  // namespace kakehashi::mapping
