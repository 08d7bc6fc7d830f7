// Master loaders for the official distribution formats (digest terminology.md §5). No national
// master ships with kakehashi; sites download them and run `kakehashi terminology load KIND FILE`.
//
// Common input rules (digest §5 "Loader rules"): CP932 or UTF-8 (detected; BOM dropped), CRLF or
// LF, fields quoted or not, an optional header row (detected: the key column does not have the
// key's shape). Rows with a malformed key are skipped with a warning "terminology.load.bad_row"
// (location: file and line; never the value). Columns are positional (1-based, as in the digest):
//
//   hot             MEDIS HOT (24 columns): 1 HOT13, 2 HOT7, 7 薬価基準コード, 8 YJ, 9/10 レセ電,
//                   11 告示名称, 12 販売名, 13 レセ電医薬品名, 24 更新年月日. HOT9 = HOT13[0:9];
//                   HOT9 is NOT unique (multimap kept). Yields HOT13/HOT9/HOT7/YJ/薬価/レセ電
//                   concepts and HOT13->HOT9, HOT9->YJ, HOT9->レセ電, HOT9->薬価 mappings.
//   ssk-drug        支払基金 医薬品マスター (42 columns): 3 レセ電コード, 5 漢字名称, 30
//   変更年月日,
//                   31 廃止年月日 (99999999 = active), 32 薬価基準コード, 37 一般名コード,
//                   38 一般名処方の標準的な記載. Mappings レセ電->薬価, レセ電->一般名.
//   medis-disease   MEDIS 病名基本テーブル (18 columns): 2 病名管理番号, 3 病名表記, 4 カナ,
//                   6 病名交換用コード, 7 ICD10, 11 レセ電算コード, 12 レセ電算対応表記,
//                   15 更新日付, 16 移行先病名管理番号. A header row with the full-width column
//                   names is honoured (incl. the newer "ＩＣＤ１０‐２０１３" column).
//                   Mappings keyNumber->exCode, keyNumber->masterB, keyNumber->ICD-10 (wider).
//   medis-modifier  MEDIS 修飾語テーブル [layout unverified, kakehashi assumption]: 2
//   修飾語管理番号,
//                   3 修飾語表記, 4 カナ, 5 修飾語交換用コード, 6 接続位置区分 (property
//                   "position"), 7 レセ電算修飾語コード. Header names honoured as above.
//   jlac10          kakehashi format (the JLAC10 tables are per-element xlsx; the digest accepts a
//                   pre-conversion): 1 JLAC10 17-char code, 2 名称, 3 optional 略称. Other lengths
//                   are kept with a "terminology.check.bad_shape" warning.
//   icd10           kakehashi format (MHLW publishes no CSV layout): 1 ICD-10 code (as written,
//                   e.g. K35.8 or K358), 2 名称. 3-character codes also enter ICD10-2013-3digits.
//   conceptmap      a site ConceptMap in the code-table TSV format (code_table.hpp), e.g. local lab
//                   code -> JLAC10; the map URL is urn:kakehashi:conceptmap:<file stem>.
//
// Thread-safety: parsing is reentrant; LoadMasterFile writes the store (exclusive access).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/concepts.hpp"
#include "kakehashi/terminology/store.hpp"

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kakehashi::terminology {

enum class MasterKind {
  kHot,
  kSskDrug,
  kMedisDisease,
  kMedisModifier,
  kJlac10,
  kIcd10,
  kConceptMap,
};

// "hot", "ssk-drug", "medis-disease", "medis-modifier", "jlac10", "icd10", "conceptmap".
std::string_view ToString(MasterKind kind) noexcept;
std::optional<MasterKind> MasterKindFromString(std::string_view name) noexcept;
std::span<const MasterKind> AllMasterKinds() noexcept;
// The master kind whose load defines `canonical` (a canonical system URI): HOT13/HOT9/HOT7/YJ/
// 薬価 -> kHot, レセ電 医薬品/一般名 -> kSskDrug, MEDIS 病名/レセ電 傷病名 -> kMedisDisease,
// 修飾語 -> kMedisModifier, JLAC10 -> kJlac10, ICD-10 (2013) -> kIcd10; nullopt for every other
// system (built-in tables, identifier namespaces, local systems). Mapping uses it to warn when a
// code of a master-defined system is converted without that master loaded.
std::optional<MasterKind> MasterKindOf(std::string_view canonical) noexcept;

struct ParsedMaster {
  TerminologyContent content;
  std::string encoding;     // "UTF-8" or "Windows-31J"
  std::size_t rows = 0;     // data rows read (header excluded)
  std::size_t skipped = 0;  // rows skipped with a warning
  bool header = false;      // a header row was detected
  std::string version;      // newest 更新年月日/変更年月日 seen (YYYYMMDD), else ""
};

// Parses a master held in memory. `source` names the file in issues. errc::kMasterFormat when no
// row at all has the expected layout (wrong kind or wrong file); errc::kTableSyntax for a malformed
// conceptmap TSV. Individual bad rows are warnings and are skipped.
Result<ParsedMaster> ParseMaster(MasterKind kind, std::string_view bytes, std::string_view source,
                                 const CodeSystemRegistry& registry, IssueSink& issues);

// Reads `file`, parses it and Put()s it into `store` (replacing an earlier load of the same kind,
// or of the same conceptmap file stem). errc::kIoError, kMasterFormat, kDatabase.
Result<LoadRecord> LoadMasterFile(MasterKind kind, const std::filesystem::path& file,
                                  TerminologyStore& store, IssueSink& issues);

}  // namespace kakehashi::terminology
