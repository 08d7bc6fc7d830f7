#include "kakehashi/terminology/loaders.hpp"

#include "csv.hpp"
#include "kakehashi/terminology/code_table.hpp"
#include "kakehashi/terminology/errc.hpp"
#include "kakehashi/terminology/validation.hpp"

#include <array>
#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace kakehashi::terminology {
namespace {

// Canonical URIs used by the loaders (digest terminology.md §2; eprescription.md §5).
constexpr std::string_view kHot13 = "http://medis.or.jp/CodeSystem/master-HOT13";
constexpr std::string_view kHot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
constexpr std::string_view kHot7 = "http://medis.or.jp/CodeSystem/master-HOT7";
constexpr std::string_view kYj = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
constexpr std::string_view kYakka = "urn:oid:1.2.392.100495.20.1.72";
constexpr std::string_view kReceiptDrug = "urn:oid:1.2.392.100495.20.1.71";
constexpr std::string_view kGeneralName =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode";
constexpr std::string_view kDiseaseKey = "http://medis.or.jp/CodeSystem/master-disease-keyNumber";
constexpr std::string_view kDiseaseEx = "http://medis.or.jp/CodeSystem/master-disease-exCode";
constexpr std::string_view kModKey = "http://medis.or.jp/CodeSystem/master-disease-modKeyNumber";
constexpr std::string_view kModEx = "http://medis.or.jp/CodeSystem/master-disease-modExCode";
constexpr std::string_view kReceiptDisease =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease";
constexpr std::string_view kReceiptModifier =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterZ-disease-modifier";
constexpr std::string_view kIcd10Full =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
constexpr std::string_view kIcd10Three =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-3digits";
constexpr std::string_view kIcd10Who = "http://hl7.org/fhir/sid/icd-10";
constexpr std::string_view kJlac10 = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits";

constexpr std::array<MasterKind, 7> kKinds = {MasterKind::kHot,          MasterKind::kSskDrug,
                                              MasterKind::kMedisDisease, MasterKind::kMedisModifier,
                                              MasterKind::kJlac10,       MasterKind::kIcd10,
                                              MasterKind::kConceptMap};

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  // Full-width space padding (U+3000) seen in fixed-width name columns.
  while (s.size() >= 3 && s.substr(s.size() - 3) == "\xE3\x80\x80") s.remove_suffix(3);
  return s;
}

// Field `n` (1-based), trimmed; "" when the row is shorter.
std::string Col(const std::vector<std::string>& row, std::size_t n) {
  return n >= 1 && n <= row.size() ? std::string(Trim(row[n - 1])) : std::string();
}

Location RowAt(std::string_view source, std::size_t line) {
  Location where;
  where.source = std::string(source);
  where.line = static_cast<std::int64_t>(line);
  return where;
}

Concept MakeConcept(std::string_view system, std::string code, std::string display,
                    std::string_view source) {
  Concept c;
  c.system = std::string(system);
  c.code = std::move(code);
  c.display = std::move(display);
  c.source = std::string(source);
  return c;
}

Mapping MakeMapping(std::string_view map, std::string_view from_system, std::string from_code,
                    std::string_view to_system, std::string to_code, std::string to_display,
                    std::string_view equivalence) {
  Mapping m;
  m.map = std::string(map);
  m.source_system = std::string(from_system);
  m.source_code = std::move(from_code);
  m.target_system = std::string(to_system);
  m.target_code = std::move(to_code);
  m.target_display = std::move(to_display);
  m.equivalence = std::string(equivalence);
  return m;
}

// Shared loop: decode, split, detect the header (first record whose key column fails `is_key`),
// hand each data row to `fn`, count rows and skips.
struct RowContext {
  std::string_view source;
  std::size_t line;
  IssueSink& issues;
};

using RowFn = std::function<bool(const std::vector<std::string>&, RowContext&)>;

Result<ParsedMaster> ParseRows(
    std::string_view bytes, std::string_view source, IssueSink& issues, std::size_t key_column,
    const std::function<bool(std::string_view)>& is_key,
    const std::function<void(const std::vector<std::string>&)>& on_header, const RowFn& fn) {
  ParsedMaster out;
  auto decoded = detail::DecodeMasterBytes(bytes, source, issues);
  out.encoding = std::string(decoded.encoding);
  bool first = true;
  detail::ForEachCsvRecord(decoded.utf8, source, issues,
                           [&](std::size_t line, std::vector<std::string>& fields) {
                             std::string key = Col(fields, key_column);
                             if (first) {
                               first = false;
                               if (!is_key(key)) {
                                 out.header = true;
                                 if (on_header) on_header(fields);
                                 return;
                               }
                             }
                             ++out.rows;
                             RowContext ctx{source, line, issues};
                             if (!is_key(key) || !fn(fields, ctx)) {
                               ++out.skipped;
                               issues.Warning("terminology.load.bad_row", RowAt(source, line),
                                              "the key column does not have the expected shape "
                                              "for this master kind; row skipped");
                             }
                           });
  if (out.rows == out.skipped) {
    Location where;
    where.source = std::string(source);
    issues.Error("terminology.load.no_rows", where,
                 "no row has the layout of this master kind (wrong KIND or wrong file?)");
    return errc::kMasterFormat;
  }
  return out;
}

// ------------------------------------------------------------------------- HOT (digest §5)
Result<ParsedMaster> ParseHot(std::string_view bytes, std::string_view source, IssueSink& issues) {
  const std::string map = ConceptMapUrl("hot");
  TerminologyContent content;
  std::string version;
  auto result = ParseRows(
      bytes, source, issues, 1, [](std::string_view k) { return k.size() == 13 && AllDigits(k); },
      nullptr,
      [&](const std::vector<std::string>& r, RowContext& ctx) {
        std::string hot13 = Col(r, 1);
        std::string hot9 = hot13.substr(0, 9);
        std::string hot7 = Col(r, 2);
        std::string yakka = Col(r, 7);
        std::string yj = Col(r, 8);
        std::string receipt = Col(r, 9);
        std::string receipt2 = Col(r, 10);
        std::string notice_name = Col(r, 11);
        std::string brand = Col(r, 12);
        std::string receipt_name = Col(r, 13);
        std::string updated = Col(r, 24);
        if (updated.size() == 8 && AllDigits(updated) && updated > version) version = updated;
        Concept c13 = MakeConcept(kHot13, hot13, brand, "hot");
        c13.properties.push_back({"hot9", hot9});
        if (!Col(r, 6).empty()) c13.properties.push_back({"jan", Col(r, 6)});
        if (!yj.empty()) c13.properties.push_back({"yj", yj});
        if (!Col(r, 20).empty()) c13.properties.push_back({"kubun", Col(r, 20)});
        if (!Col(r, 14).empty()) c13.properties.push_back({"unit", Col(r, 14)});
        if (!updated.empty()) c13.properties.push_back({"updated", updated});
        content.concepts.push_back(std::move(c13));
        Concept c9 = MakeConcept(kHot9, hot9, brand, "hot");
        if (!yj.empty()) c9.properties.push_back({"yj", yj});
        content.concepts.push_back(std::move(c9));
        content.mappings.push_back(MakeMapping(map, kHot13, hot13, kHot9, hot9, brand, "wider"));
        if (hot7.size() == 7 && AllDigits(hot7)) {
          content.concepts.push_back(MakeConcept(kHot7, hot7, notice_name, "hot"));
          content.mappings.push_back(
              MakeMapping(map, kHot9, hot9, kHot7, hot7, notice_name, "wider"));
        }
        if (!yj.empty()) {
          if (!CheckYjCode(yj).ok()) {
            ctx.issues.Warning("terminology.check.bad_shape", RowAt(ctx.source, ctx.line),
                               "HOT column 8 (YJ) does not have the YJ shape");
          }
          content.concepts.push_back(MakeConcept(kYj, yj, brand, "hot"));
          content.mappings.push_back(MakeMapping(map, kHot9, hot9, kYj, yj, brand, "equivalent"));
        }
        if (!yakka.empty()) {
          content.concepts.push_back(MakeConcept(kYakka, yakka, notice_name, "hot"));
          content.mappings.push_back(
              MakeMapping(map, kHot9, hot9, kYakka, yakka, notice_name, "wider"));
        }
        for (const std::string* rc : {&receipt, &receipt2}) {
          if (rc->empty()) continue;
          content.concepts.push_back(MakeConcept(kReceiptDrug, *rc, receipt_name, "hot"));
          content.mappings.push_back(
              MakeMapping(map, kHot9, hot9, kReceiptDrug, *rc, receipt_name, "equivalent"));
        }
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  result->version = version;
  return result;
}

// ------------------------------------------------------- 支払基金 医薬品マスター (digest §5)
Result<ParsedMaster> ParseSskDrug(std::string_view bytes, std::string_view source,
                                  IssueSink& issues) {
  const std::string map = ConceptMapUrl("ssk-drug");
  TerminologyContent content;
  std::string version;
  auto result = ParseRows(
      bytes, source, issues, 3, [](std::string_view k) { return CheckReceiptDrugCode(k).ok(); },
      nullptr,
      [&](const std::vector<std::string>& r, RowContext&) {
        std::string code = Col(r, 3);
        std::string name = Col(r, 5);
        std::string changed = Col(r, 30);
        std::string abolished = Col(r, 31);
        std::string yakka = Col(r, 32);
        std::string general = Col(r, 37);
        std::string general_name = Col(r, 38);
        if (changed.size() == 8 && AllDigits(changed) && changed > version) version = changed;
        Concept c = MakeConcept(kReceiptDrug, code, name, "ssk-drug");
        // 廃止年月日 99999999 = still listed; any real date marks the code abolished.
        c.active = abolished.empty() || abolished == "99999999";
        if (!c.active) c.properties.push_back({"abolished", abolished});
        if (!changed.empty()) c.properties.push_back({"changed", changed});
        if (!Col(r, 7).empty()) c.properties.push_back({"kana", Col(r, 7)});
        content.concepts.push_back(std::move(c));
        if (!yakka.empty()) {
          content.concepts.push_back(MakeConcept(kYakka, yakka, name, "ssk-drug"));
          content.mappings.push_back(
              MakeMapping(map, kReceiptDrug, code, kYakka, yakka, name, "equivalent"));
        }
        if (!general.empty()) {
          content.concepts.push_back(MakeConcept(kGeneralName, general, general_name, "ssk-drug"));
          content.mappings.push_back(
              MakeMapping(map, kReceiptDrug, code, kGeneralName, general, general_name, "wider"));
          if (!yakka.empty()) {
            content.mappings.push_back(
                MakeMapping(map, kYakka, yakka, kGeneralName, general, general_name, "wider"));
          }
        }
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  result->version = version;
  return result;
}

// Column positions by header name (MEDIS files with full-width column names, digest §5).
struct ColumnMap {
  std::map<std::string, std::size_t> positions;  // role -> 1-based column
  std::size_t Get(const std::string& role) const {
    auto it = positions.find(role);
    return it == positions.end() ? 0 : it->second;
  }
};

void ReadMedisHeader(const std::vector<std::string>& header,
                     const std::vector<std::pair<std::string_view, std::string_view>>& names,
                     ColumnMap& columns) {
  // names: (header text, role); the first header matching each role wins except that a later,
  // more specific name (listed first in `names`) is preferred.
  for (const auto& [text, role] : names) {
    if (columns.positions.count(std::string(role)) != 0) continue;
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (Trim(header[i]) == text) {
        columns.positions[std::string(role)] = i + 1;
        break;
      }
    }
  }
}

// ------------------------------------------------------ MEDIS 病名基本テーブル (digest §5)
Result<ParsedMaster> ParseMedisDisease(std::string_view bytes, std::string_view source,
                                       IssueSink& issues) {
  const std::string map = ConceptMapUrl("medis-disease");
  ColumnMap cols;
  cols.positions = {{"key", 2},      {"name", 3},          {"kana", 4},     {"ex", 6},   {"icd", 7},
                    {"receipt", 11}, {"receipt_name", 12}, {"updated", 15}, {"next", 16}};
  TerminologyContent content;
  std::string version;
  auto result = ParseRows(
      bytes, source, issues, 2, [](std::string_view k) { return k.size() == 8 && AllDigits(k); },
      [&](const std::vector<std::string>& header) {
        ColumnMap named;
        ReadMedisHeader(header,
                        {{"病名管理番号", "key"},
                         {"病名表記", "name"},
                         {"病名表記カナ", "kana"},
                         {"病名交換用コード", "ex"},
                         {"ＩＣＤ１０‐２０１３", "icd2013"},
                         {"ＩＣＤ１０－２０１３", "icd2013"},
                         {"ＩＣＤ１０", "icd"},
                         {"レセ電算コード", "receipt"},
                         {"レセ電算対応表記", "receipt_name"},
                         {"更新日付", "updated"},
                         {"移行先病名管理番号", "next"}},
                        named);
        for (const auto& [role, pos] : named.positions) cols.positions[role] = pos;
      },
      [&](const std::vector<std::string>& r, RowContext&) {
        std::string key = Col(r, cols.Get("key"));
        std::string name = Col(r, cols.Get("name"));
        std::string ex = Col(r, cols.Get("ex"));
        // The 2013 column only when the header names it; the plain ICD10 column is of unstated
        // edition (never assume 2013: ssmix2-hl7v2.md PPR-01, terminology.md §4.3).
        std::string icd2013 = Col(r, cols.Get("icd2013"));
        std::string icd = icd2013.empty() ? Col(r, cols.Get("icd")) : icd2013;
        std::string_view icd_system = icd2013.empty() ? kIcd10Who : kIcd10Full;
        std::string receipt = Col(r, cols.Get("receipt"));
        std::string receipt_name = Col(r, cols.Get("receipt_name"));
        std::string updated = Col(r, cols.Get("updated"));
        std::string next = Col(r, cols.Get("next"));
        if (updated.size() == 8 && AllDigits(updated) && updated > version) version = updated;
        Concept c = MakeConcept(kDiseaseKey, key, name, "medis-disease");
        if (!Col(r, cols.Get("kana")).empty())
          c.properties.push_back({"kana", Col(r, cols.Get("kana"))});
        if (!ex.empty()) c.properties.push_back({"exCode", ex});
        if (!icd.empty()) c.properties.push_back({"icd10", icd});
        if (!receipt.empty()) c.properties.push_back({"receipt", receipt});
        // 移行先病名管理番号: the code was replaced (date-aware validation keeps both).
        if (!next.empty() && next != key) {
          c.active = false;
          c.properties.push_back({"replacedBy", next});
        }
        content.concepts.push_back(std::move(c));
        if (!ex.empty()) {
          content.concepts.push_back(MakeConcept(kDiseaseEx, ex, name, "medis-disease"));
          content.mappings.push_back(
              MakeMapping(map, kDiseaseKey, key, kDiseaseEx, ex, name, "equivalent"));
        }
        if (!receipt.empty()) {
          std::string display = receipt_name.empty() ? name : receipt_name;
          content.concepts.push_back(
              MakeConcept(kReceiptDisease, receipt, display, "medis-disease"));
          content.mappings.push_back(
              MakeMapping(map, kDiseaseKey, key, kReceiptDisease, receipt, display, "equivalent"));
        }
        if (!icd.empty()) {
          // An ICD-10 category is broader than a 標準病名: "wider" (display comes from the ICD
          // master).
          content.mappings.push_back(
              MakeMapping(map, kDiseaseKey, key, icd_system, icd, "", "wider"));
        }
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  result->version = version;
  return result;
}

// ------------------------------------------- MEDIS 修飾語テーブル [layout unverified] (§5)
Result<ParsedMaster> ParseMedisModifier(std::string_view bytes, std::string_view source,
                                        IssueSink& issues) {
  const std::string map = ConceptMapUrl("medis-modifier");
  ColumnMap cols;
  cols.positions = {{"key", 2}, {"name", 3},     {"kana", 4},
                    {"ex", 5},  {"position", 6}, {"receipt", 7}};
  TerminologyContent content;
  auto result = ParseRows(
      bytes, source, issues, 2, [](std::string_view k) { return k.size() == 8 && AllDigits(k); },
      [&](const std::vector<std::string>& header) {
        ColumnMap named;
        ReadMedisHeader(header,
                        {{"修飾語管理番号", "key"},
                         {"修飾語表記", "name"},
                         {"修飾語表記カナ", "kana"},
                         {"修飾語交換用コード", "ex"},
                         {"接続位置区分", "position"},
                         {"レセ電算修飾語コード", "receipt"}},
                        named);
        for (const auto& [role, pos] : named.positions) cols.positions[role] = pos;
      },
      [&](const std::vector<std::string>& r, RowContext&) {
        std::string key = Col(r, cols.Get("key"));
        std::string name = Col(r, cols.Get("name"));
        std::string ex = Col(r, cols.Get("ex"));
        std::string receipt = Col(r, cols.Get("receipt"));
        Concept c = MakeConcept(kModKey, key, name, "medis-modifier");
        if (!Col(r, cols.Get("kana")).empty())
          c.properties.push_back({"kana", Col(r, cols.Get("kana"))});
        if (!Col(r, cols.Get("position")).empty()) {
          c.properties.push_back({"position", Col(r, cols.Get("position"))});
        }
        content.concepts.push_back(std::move(c));
        if (!ex.empty()) {
          content.concepts.push_back(MakeConcept(kModEx, ex, name, "medis-modifier"));
          content.mappings.push_back(
              MakeMapping(map, kModKey, key, kModEx, ex, name, "equivalent"));
        }
        if (!receipt.empty()) {
          content.concepts.push_back(
              MakeConcept(kReceiptModifier, receipt, name, "medis-modifier"));
          content.mappings.push_back(
              MakeMapping(map, kModKey, key, kReceiptModifier, receipt, name, "equivalent"));
        }
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  return result;
}

// ---------------------------------------------------------------- JLAC10 (kakehashi format)
Result<ParsedMaster> ParseJlac10(std::string_view bytes, std::string_view source,
                                 IssueSink& issues) {
  TerminologyContent content;
  auto result = ParseRows(
      bytes, source, issues, 1,
      [](std::string_view k) {
        // Key shape for header detection: digit first, then [0-9A-Z-], 15..17 chars (15-char
        // allergen codes occur, ssmix2-hl7v2.md §6); the 17-char rule is checked per row.
        if (k.size() < 15 || k.size() > 17 || k[0] < '0' || k[0] > '9') return false;
        for (char c : k) {
          if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '-')) return false;
        }
        return true;
      },
      nullptr,
      [&](const std::vector<std::string>& r, RowContext& ctx) {
        std::string code = Col(r, 1);
        if (!CheckJlac10(code).ok()) {
          ctx.issues.Warning("terminology.check.bad_shape", RowAt(ctx.source, ctx.line),
                             "JLAC10 code is not 17 characters; kept as given");
        }
        Concept c = MakeConcept(kJlac10, code, Col(r, 2), "jlac10");
        if (!Col(r, 3).empty()) c.properties.push_back({"abbreviation", Col(r, 3)});
        Jlac10Parts parts;
        if (CheckJlac10(code, &parts).ok()) {
          c.properties.push_back({"analyte", std::string(parts.analyte)});
          c.properties.push_back({"material", std::string(parts.material)});
          c.properties.push_back({"method", std::string(parts.method)});
        }
        content.concepts.push_back(std::move(c));
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  return result;
}

// ---------------------------------------------------------------- ICD-10 (kakehashi format)
Result<ParsedMaster> ParseIcd10(std::string_view bytes, std::string_view source,
                                IssueSink& issues) {
  TerminologyContent content;
  auto result = ParseRows(
      bytes, source, issues, 1,
      [](std::string_view k) {
        // Letter + 2 digits, then optional '.', digits / '+' / '*' / '†' (ASCII only here).
        if (k.size() < 3 || k.size() > 8 || k[0] < 'A' || k[0] > 'Z') return false;
        if (k[1] < '0' || k[1] > '9' || k[2] < '0' || k[2] > '9') return false;
        for (char c : k.substr(3)) {
          if (!((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '*' || c == '-'))
            return false;
        }
        return true;
      },
      nullptr,
      [&](const std::vector<std::string>& r, RowContext&) {
        std::string code = Col(r, 1);
        std::string name = Col(r, 2);
        content.concepts.push_back(MakeConcept(kIcd10Full, code, name, "icd10"));
        if (code.size() == 3)
          content.concepts.push_back(MakeConcept(kIcd10Three, code, name, "icd10"));
        return true;
      });
  if (!result) return result;
  result->content = std::move(content);
  return result;
}

std::string NowIso8601() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string_view ToString(MasterKind kind) noexcept {
  switch (kind) {
    case MasterKind::kHot: return "hot";
    case MasterKind::kSskDrug: return "ssk-drug";
    case MasterKind::kMedisDisease: return "medis-disease";
    case MasterKind::kMedisModifier: return "medis-modifier";
    case MasterKind::kJlac10: return "jlac10";
    case MasterKind::kIcd10: return "icd10";
    case MasterKind::kConceptMap: return "conceptmap";
  }
  return "";
}

std::optional<MasterKind> MasterKindFromString(std::string_view name) noexcept {
  for (MasterKind k : kKinds) {
    if (ToString(k) == name) return k;
  }
  return std::nullopt;
}

std::span<const MasterKind> AllMasterKinds() noexcept {
  return kKinds;
}

std::optional<MasterKind> MasterKindOf(std::string_view canonical) noexcept {
  // The systems each loader fills (see the table in loaders.hpp). The WHO ICD-10 URI is not here:
  // no master defines it (the 2013 Japanese version has its own systems).
  if (canonical == kHot13 || canonical == kHot9 || canonical == kHot7 || canonical == kYj ||
      canonical == kYakka) {
    return MasterKind::kHot;
  }
  if (canonical == kReceiptDrug || canonical == kGeneralName) return MasterKind::kSskDrug;
  if (canonical == kDiseaseKey || canonical == kDiseaseEx || canonical == kReceiptDisease) {
    return MasterKind::kMedisDisease;
  }
  if (canonical == kModKey || canonical == kModEx || canonical == kReceiptModifier) {
    return MasterKind::kMedisModifier;
  }
  if (canonical == kJlac10) return MasterKind::kJlac10;
  if (canonical == kIcd10Full || canonical == kIcd10Three) return MasterKind::kIcd10;
  return std::nullopt;
}

Result<ParsedMaster> ParseMaster(MasterKind kind, std::string_view bytes, std::string_view source,
                                 const CodeSystemRegistry& registry, IssueSink& issues) {
  switch (kind) {
    case MasterKind::kHot: return ParseHot(bytes, source, issues);
    case MasterKind::kSskDrug: return ParseSskDrug(bytes, source, issues);
    case MasterKind::kMedisDisease: return ParseMedisDisease(bytes, source, issues);
    case MasterKind::kMedisModifier: return ParseMedisModifier(bytes, source, issues);
    case MasterKind::kJlac10: return ParseJlac10(bytes, source, issues);
    case MasterKind::kIcd10: return ParseIcd10(bytes, source, issues);
    case MasterKind::kConceptMap: {
      std::string name(source);
      if (auto slash = name.find_last_of('/'); slash != std::string::npos) name.erase(0, slash + 1);
      if (auto dot = name.rfind('.'); dot != std::string::npos) name.erase(dot);
      auto decoded = detail::DecodeMasterBytes(bytes, source, issues);
      KAKEHASHI_TRY(auto table, ParseCodeTable(name, decoded.utf8, registry, issues, source));
      ParsedMaster out;
      out.encoding = std::string(decoded.encoding);
      out.header = true;
      out.rows = table.rows.size();
      out.content = table.ToContent();
      for (auto& c : out.content.concepts) c.source = "conceptmap:" + name;
      for (auto& m : out.content.mappings) m.source = "conceptmap:" + name;
      return out;
    }
  }
  return errc::kUnknownKind;
}

Result<LoadRecord> LoadMasterFile(MasterKind kind, const std::filesystem::path& file,
                                  TerminologyStore& store, IssueSink& issues) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return errc::kIoError;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return errc::kIoError;
  std::string bytes = ss.str();
  KAKEHASHI_TRY(auto parsed,
                ParseMaster(kind, bytes, file.filename().string(), store.Registry(), issues));
  LoadRecord record;
  record.kind = std::string(ToString(kind));
  record.source = record.kind;
  if (kind == MasterKind::kConceptMap) record.source = "conceptmap:" + file.stem().string();
  record.file = file.filename().string();
  record.version = parsed.version;
  record.loaded_at = NowIso8601();
  // The master version (newest 更新年月日 / 変更年月日 seen) is each concept's $lookup version.
  if (!parsed.version.empty()) {
    for (Concept& c : parsed.content.concepts) c.version = parsed.version;
  }
  record.concepts = parsed.content.concepts.size();
  record.mappings = parsed.content.mappings.size();
  KAKEHASHI_TRY_VOID(store.Put(std::move(parsed.content), record));
  return record;
}

}  // namespace kakehashi::terminology
