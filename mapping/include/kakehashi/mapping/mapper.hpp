// Maps one HL7 v2 message to FHIR R4 resources on JP Core, by the rules of a RuleSet.
//
// The mapper builds fhir::Node trees through templates (never JSON text). Each resource gets
// a deterministic id (ids.hpp), meta.profile of the chosen JP Core version, and the message gets
// one Provenance pointing at its source (MSH-10, file). A message whose data type has no rule
// becomes a DocumentReference holding the original message (base64), plus an `information`
// issue, so nothing is lost.
//
// Issue codes (Location: source/record from SourceInfo, field = HL7 path, fhir_path):
//   mapping.unmapped_message  information  no rule for the data type; kept as DocumentReference
//   mapping.unused_field      information  a non-empty field no rule read
//   mapping.unused_segment    information  a segment with data no rule read at all
//   mapping.unknown_code_system warning    a CWE coding-system name the terminology registry
//                                          does not know (a local URN is used)
//   mapping.unmapped_code     warning      a code not in the rule's table
//   mapping.bad_date          warning      a date/time field that is not an HL7 TS
//   mapping.bad_number        warning      a numeric field that is not a decimal
//   mapping.hour_rollover     warning      an hour 24-47 rolled into the next day
//   mapping.facility_unknown  warning      no 医療機関コード: patient IDs use a local system
//   mapping.master_not_loaded warning      a code of a master-defined system (HOT, MEDIS, JLAC10,
//                                          ICD-10 2013) without that master (coding_binder.hpp)
//   mapping.code_not_in_master warning     the master is loaded but lacks the code
//   mapping.rehomed           information  a code re-homed to the system its shape belongs to
//   mapping.translation_ambiguous information  several HOT9 codes for a YJ/レセ電 code
//   mapping.rule_error        error        a rule refers to something missing (bug in rules)
//
// Thread-safety: Map() is const and may run concurrently with its own sinks.
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/message_view.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/store.hpp"

#include <memory>
#include <string>
#include <vector>

namespace kakehashi::mapping {

enum class ProfileSet { kJpCore112, kJpCore120 };
std::string_view ToString(ProfileSet profile) noexcept;  // "jp-core-1.1.2"

struct MapOptions {
  ProfileSet profile = ProfileSet::kJpCore112;
  // 10-digit 医療機関コード for the facility's patient-ID system
  // (urn:oid:1.2.392.100495.20.3.51.1<code>). Empty: MSH-4 when it is 10 digits, else a local
  // system and a mapping.facility_unknown warning.
  std::string facility_code;
  bool report_unused = true;
  // Terminology store (masters, site ConceptMaps) every Coding is bound to (coding_binder.hpp):
  // display from the master, ConceptMap translations next to the original. Null: systems are
  // still canonicalised and spelled, and codes of master-defined systems get
  // mapping.master_not_loaded. Not owned; must outlive the Mapper; read concurrently.
  const terminology::TerminologyStore* terminology = nullptr;
};

struct SourceInfo {
  std::string kind;       // "ssmix2" or "hl7v2"
  std::string file;       // root-relative path (SS-MIX2) or file name; PHI, goes to Provenance
  std::string data_type;  // SS-MIX2 data type when known ("OMP-01"); "" = from MSH-9
  int message_index = 1;  // 1-based position in a multi-message file
  Location where;         // base location for issues (source, record)
};

struct MappedResource {
  std::string type;  // "Patient"
  std::string id;
  fhir::Node resource;
};

struct MapResult {
  std::string data_type;  // the rule used ("OMP-01"), "" when unmapped
  bool mapped = false;    // false: only a DocumentReference (and Provenance) came out
  std::vector<MappedResource> resources;  // rule order; Provenance last
};

class Mapper {
 public:
  // Compiles the rules once (members resolved, paths parsed, functions and datatype rules looked
  // up); `rules` must outlive the Mapper and not change while it lives.
  Mapper(const RuleSet& rules, MapOptions options);
  MapResult Map(const MessageView& message, const SourceInfo& source, IssueSink& issues) const;
  const MapOptions& Options() const { return options_; }

 private:
  struct CompiledRules;

  const RuleSet& rules_;
  MapOptions options_;
  std::shared_ptr<CompiledRules> compiled_;  // immutable after construction; shared by copies
};

}  // namespace kakehashi::mapping
