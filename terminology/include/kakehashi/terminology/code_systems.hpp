// Code-system identity: every system kakehashi knows has ONE canonical URI, and every spelling met
// on input resolves to it (digest terminology.md §2 "three spellings, one internal id", §3
// discrepancies; eprescription.md §5 OID generations; ssmix2-hl7v2.md §9 CWE-3 names).
//
// Spellings accepted on input, all mapped to the canonical URI:
//   (a) OIDs: "urn:oid:1.2.392.200119.4.403.1" or a bare dotted "1.2.392.200119.4.403.1", incl. the
//       alternative generations (YJ .20.1.73 / .20.2.73, JAMI 用法 .2.2.20 / .2.2.20.20, CDA OIDs)
//       and published typos (urn:oid:1.2.392.10495.20.1.73);
//   (b) the JP Core 1.1.2 aliases http://jpfhir.jp/fhir/core/CodeSystem/JP_*_CS;
//   (c) the JP Core 1.2.0 / JP-CLINS URLs and their divergent spellings (§3);
//   (d) HL7 v2 coding-system names from CWE.3/CWE.6 (JC10, HOT9, HOT, MDCDX2, I10, JHSD0006, ...),
//       compared after trimming and upper-casing; "HL7nnnn" ->
//       http://terminology.hl7.org/CodeSystem/v2-nnnn; local "99xxx" ->
//       "urn:kakehashi:code-system:99XXX" (the same URN the mapping module uses).
//
// The canonical URI is the JP Core 1.2.0 URL where one exists, else "urn:oid:<OID>", else the
// HL7 / FHIR URL. Output spelling follows the target profile set (Spell()).
//
// Thread-safety: a registry is immutable after construction (AddAlias/AddSystem only during
// set-up); Builtin() is a process-wide constant, safe to share between threads.
#pragma once

#include "kakehashi/common/issue.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kakehashi::terminology {

// The profile set whose spelling output follows (digest terminology.md §2 normaliser rule 2).
enum class ProfileSet : std::uint8_t {
  kJpCore112,  // JP Core 1.1.2 and ePrescriptionData: "urn:oid:" forms where the system has an OID
  kJpCore120,  // JP Core 1.2.0: the URL column
  kJpClins,    // JP-CLINS (1.1.2-clins + URL systems): the URL column
  kCda,        // CDA: bare OIDs (the 2018 CDA OID where it differs)
};

// "jp-core-1.1.2", "jp-core-1.2.0", "jp-clins", "cda" (the names the mapping tables' version column
// and the CLI use).
std::string_view ToString(ProfileSet profile) noexcept;
std::optional<ProfileSet> ProfileSetFromString(std::string_view name) noexcept;

// One known code system or identifier namespace.
struct CodeSystemInfo {
  std::string canonical;    // identity (see file comment)
  std::string title;        // human name, e.g. "MEDIS HOT9"
  std::string url;          // JP Core 1.2.0 / JP-CLINS URL, "" when the system is OID-only
  std::string oid;          // bare OID JP Core 1.1.2 / ePrescriptionData emit, "" when none
  std::string cda_oid;      // bare OID of the 2018 CDA spec when it differs from `oid`, else ""
  bool identifier = false;  // an identifier namespace (Identifier.system), not a code system
};

// How Normalize() resolved a spelling.
enum class SystemMatch : std::uint8_t {
  kKnown,       // a registered system (any spelling)
  kHl7v2Table,  // "HL7nnnn" not registered: mapped to the HL7 v2 table URL by rule
  kLocal,       // "99xxx" local coding-system name: urn:kakehashi:code-system:99XXX
  kUnknown,     // passed through unchanged (a warning is reported)
  kEmpty,       // empty input
};

struct NormalizedSystem {
  std::string canonical;                 // canonical URI; the trimmed input when kUnknown
  const CodeSystemInfo* info = nullptr;  // set for kKnown
  SystemMatch match = SystemMatch::kUnknown;
};

class CodeSystemRegistry {
 public:
  // An empty registry (tests); most callers use Builtin() or a copy of it.
  CodeSystemRegistry() = default;
  CodeSystemRegistry(const CodeSystemRegistry& other);
  CodeSystemRegistry& operator=(const CodeSystemRegistry& other);
  CodeSystemRegistry(CodeSystemRegistry&&) noexcept = default;
  CodeSystemRegistry& operator=(CodeSystemRegistry&&) noexcept = default;

  // The systems of the digests, compiled in (src/code_systems.cpp). Immutable.
  static const CodeSystemRegistry& Builtin();

  // Registers a system; its canonical, url, urn:oid:<oid> and urn:oid:<cda_oid> become spellings.
  // errc::kTableSyntax when the canonical is already registered.
  Result<void> AddSystem(CodeSystemInfo info);
  // Makes `spelling` another name of the registered system `canonical`. A spelling without ':'
  // is an HL7 v2 coding-system name and matches case-insensitively. errc::kUnknownSystem when
  // `canonical` is not registered; errc::kTableSyntax when `spelling` already names another one.
  Result<void> AddAlias(std::string_view spelling, std::string_view canonical);

  // The registered system for any spelling, or nullptr. Allocation-free for URL/OID spellings.
  const CodeSystemInfo* Find(std::string_view spelling) const;

  // Normaliser rule 1: trim; a bare dotted OID gets "urn:oid:"; registered spellings -> canonical;
  // "HL7nnnn" -> v2 table URL; "99xxx" -> local URN; anything else passes through unchanged and,
  // when `issues` is given, a warning "terminology.unknown_system" is reported at `where`
  // (the message names the field, never the value). URL paths are never case-folded.
  NormalizedSystem Normalize(std::string_view spelling, IssueSink* issues = nullptr,
                             const Location& where = {}) const;

  // The spelling of `system` (any spelling) for the target profile set: kJpCore120/kJpClins -> url
  // (else urn:oid); kJpCore112 -> urn:oid:<oid> (else url); kCda -> bare cda_oid/oid (else url).
  // Unregistered systems come back normalised but otherwise unchanged.
  std::string Spell(std::string_view system, ProfileSet target) const;

  // Every spelling that resolves to `canonical` (for docs and round-trip tests), sorted.
  std::vector<std::string> SpellingsOf(std::string_view canonical) const;

  const std::vector<std::unique_ptr<CodeSystemInfo>>& Systems() const { return systems_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const {  // not noexcept: nodes cache the hash
      return std::hash<std::string_view>{}(s);
    }
  };
  using Index = std::unordered_map<std::string, const CodeSystemInfo*, Hash, std::equal_to<>>;
  void Rebuild(const CodeSystemRegistry& other);

  std::vector<std::unique_ptr<CodeSystemInfo>> systems_;  // stable addresses
  Index by_spelling_;                                     // exact spellings (URLs, urn:oid:)
  Index by_v2_name_;                                      // upper-cased v2 names
};

// Re-homes a code that a producer put under the wrong system, by the code's shape
// (eprescription.md §5 "re-home by code shape"; ssmix2-hl7v2.md §9 MDCDX2 / JAMISDP01):
//   HOT9 (incl. the MHLW CDA OID every drug code is put under): 12-char YJ shape -> YJ,
//     ...ZZZ -> 一般名, 7 digits -> HOT7, 13 digits -> HOT13, 9 digits starting with 6 -> レセ電;
//   MEDIS 病名管理番号 (MDCDX2): 4 characters -> 病名交換用コード;
//   JAMI 用法 (JAMISDP01): 3 characters -> JAMI 部位, 8 characters -> JAMI 補足用法.
// Returns the canonical URI the code belongs to, or `canonical` unchanged when no rule applies.
std::string_view RehomeByCodeShape(std::string_view canonical, std::string_view code);

// The URL of an HL7 v2 table: "0001" -> "http://terminology.hl7.org/CodeSystem/v2-0001".
std::string Hl7v2TableUrl(std::string_view table_number);

// Local coding-system names ("99XYZ") -> "urn:kakehashi:code-system:99XYZ".
inline constexpr std::string_view kLocalSystemPrefix = "urn:kakehashi:code-system:";

}  // namespace kakehashi::terminology
