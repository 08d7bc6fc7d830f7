// Conversion driver: HL7 v2 bytes or SS-MIX2 storage records -> resources to PUT or DELETE.
//
// SS-MIX2 (digest ssmix2-hl7v2.md §3, kakehashi rules):
//   - kUpsert record: its current file is mapped and every resource is PUT; for snapshot types
//     (ADT-00, ADT-61, PPR-01) the previous version (superseded.back()) is mapped too and every
//     resource it produced that the current one no longer produces is DELETEd (a disease removed
//     from the PPR-01 list) — a difference, not an append;
//   - kDelete record: the flag-0 file is mapped and every resource it produces (except its
//     Provenance, which stays history, and its Encounter) is DELETEd. The Encounter of an ADT
//     key is the stay's, fed by the other ADT keys too: the deleted key withdraws only its own
//     contribution ("Encounter merging" below); DELETE only when no live version is left in
//     the run and the run saw the key that opened the stay (ADT-12/21/22) deleted;
//   - a type without rules becomes a DocumentReference holding the message (information issue);
//   - an extended-storage record (StorageRecord::extended_type) becomes a DocumentReference with
//     every file of its content folder attached (deleted: DELETE) and a Provenance naming the
//     content folder; a CDA R2 main file also gives header data; its main_document.hl7 is also
//     mapped as HL7 v2 when a message rule covers its type (mapping/src/extended_document.hpp).
//     The document's Patient id is the ADT-00 one: with --facility that facility, else the MSH-4
//     of the patient's ADT-00 file in the same store.
// Ids are deterministic, so a replaced record PUTs over its earlier version: one update, never a
// duplicate.
//
// Issue codes besides those of hl7v2::Parse, Mapper and StorageReader:
//   ssmix2.unreadable_file  error  a stored file could not be read
//   ssmix2.cda_unreadable   warning  an extended-storage main .xml file is not well-formed XML
//   hl7v2.no_message        error  a file held no usable HL7 message
// Not thread-safe; one converter per thread (the RuleSet may be shared).
#pragma once

#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/mapper.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::mapping {

struct ConvertStats {
  std::size_t files = 0;     // files read
  std::size_t messages = 0;  // messages mapped
  std::size_t unmapped = 0;  // messages kept as DocumentReference
  std::size_t unusable = 0;  // inputs that yielded no message
  std::map<std::string, std::size_t> put_by_type;
  std::map<std::string, std::size_t> deleted_by_type;
};

// One version of a stay's Encounter for MergeEncounterVersions: the resource as its message
// mapped it and how it counts (bundle.hpp EncounterVersionInfo: trigger, by_trigger, live).
struct VersionToMerge {
  const fhir::Node* resource = nullptr;
  std::string_view trigger;
  bool by_trigger = false;
  bool live = true;
};

// The Encounter for the versions of one stay, oldest first (the rule Converter applies per run,
// "Encounter merging" below): a by_trigger cancel (HL7 v2.5 ch. 3 pairs: A11 cancels A01/A04,
// A12 A02, A13 A03, A25 A16, A26 A15, A27 A14, A52 A21, A53 A22, A55 A54) first withdraws the
// latest earlier version of the trigger it cancels; the rest are deep-merged in order,
// period.end dropped when the latest status is neither finished nor cancelled. nullopt when no
// live version is left (the stay is fed only by deleted keys: DELETE). Public for the importer,
// which merges versions kept from earlier runs (OutputSink::EncounterVersion).
std::optional<fhir::Node> MergeEncounterVersions(const std::vector<VersionToMerge>& versions);

// The trigger an HL7 v2 cancel trigger cancels (A13 -> "A03"; A11 -> "A01", which also cancels
// A04), empty when `trigger` is no cancel.
std::string_view CancelledTrigger(std::string_view trigger) noexcept;

class Converter {
 public:
  Converter(const RuleSet& rules, MapOptions options) : mapper_(rules, std::move(options)) {}

  // Parses `bytes` (one or more HL7 v2 messages) and maps each message. `source` names the input
  // in issues and Provenance (a file name as the operator gave it). Returns the number of
  // messages mapped.
  std::size_t ConvertHl7(std::string_view bytes, const std::string& source, OutputSink& out,
                         IssueSink& issues);

  // Converts one SS-MIX2 record as described above.
  void ConvertRecord(const adapters::ssmix2::StorageRecord& record, OutputSink& out,
                     IssueSink& issues);

  const ConvertStats& Stats() const { return stats_; }
  // Returns the statistics gathered since the last call and starts counting from zero (a
  // parallel driver sums the part of each batch in input order).
  ConvertStats TakeStats() { return std::exchange(stats_, ConvertStats{}); }
  // Forgets the Encounter versions kept so far ("Encounter merging" below), so that what the next
  // records yield does not depend on what this converter saw before: a parallel driver whose
  // workers reuse one converter calls it per unit of work (two units of one patient, e.g. two
  // inputs inside one patient folder, must not merge on one worker and not on another).
  void ForgetEncounterVersions() {
    encounter_versions_.clear();
    versions_patient_.clear();
  }

 private:
  struct Mapped {
    std::vector<MappedResource> resources;
    std::string trigger;                // MSH-9.2 of the file's first message
    std::vector<std::string> patients;  // PID-3.1 of its messages (OutputSink::MessagePatient)
    bool ok = false;
  };
  // Reads and maps one stored file. `quiet` suppresses issues (for the previous version of a
  // snapshot, which was reported when it was current).
  Mapped MapFile(const adapters::ssmix2::StoredFile& file, IssueSink& issues, bool quiet);
  void ConvertExtended(const adapters::ssmix2::StorageRecord& record, OutputSink& out,
                       IssueSink& issues);

  // PUTs a mapped resource. Encounters are merged (below) before they are PUT; `info` goes to
  // OutputSink::EncounterVersion.
  void Emit(OutputSink& out, MappedResource&& r, const std::string& order,
            const EncounterVersionInfo& info);
  // A deleted SS-MIX2 key's Encounter (kDelete record): withdraws the key's versions; the flag-0
  // file's cancel message (`cancel`) takes their place as a version that is not live; then PUTs
  // the merge, or DELETEs when no live version is left and the key opened the stay (`opening`:
  // ADT-12, ADT-21, ADT-22), or leaves the Encounter alone (the run holds no live message of
  // the stay: a delta root; the importer merges it with earlier imports).
  void Withdraw(OutputSink& out, MappedResource&& r, const std::string& order,
                const EncounterVersionInfo& info, bool cancel, bool opening);
  // Merges the run's versions of Encounter `id` and PUTs the result; false when none is live.
  bool PutMerged(OutputSink& out, const std::string& id);

  Mapper mapper_;
  ConvertStats stats_;
  // Encounter merging (issue #4): several ADT messages (A14, A01, A02, A54, A03 …) yield the same
  // Encounter (id from PV1-19 etc.) and each PUTs it whole, so a later, sparser PV1 would wipe
  // what an earlier one set. Every version of an Encounter id seen for the current patient (SS-MIX2
  // record) or the current HL7 input is kept, ordered by `order` (SS-MIX2 発生日時, else the
  // message time MSH-7 (else EVN-2), then the message sequence), and what is PUT is their deep
  // merge in that order: a later member replaces an earlier one, an absent member keeps the earlier
  // value (objects merge member by member, participants by role (ATND/ADM), other arrays and
  // primitives are replaced); period.end is dropped when the latest status is neither finished nor
  // cancelled (a cancelled discharge, A13).
  // Cancels (digest §3: ADT cancel triggers count as deletions of the data type they cancel; §5
  // JIG targets): an SS-MIX2 key deleted (flag 0) withdraws its own version; when its flag-0 file
  // holds a cancel message (A13, A11, A12 …) that message's version takes the key's place (A13:
  // in-progress, no end; A11: cancelled; A12: the ward before the transfer), marked not live. An
  // HL7 v2 cancel message withdraws the latest earlier version of the trigger it cancels
  // (MergeEncounterVersions). A stay with no live version left is DELETEd when the run saw the
  // key that opened it deleted. The state is cleared when the patient changes, after each
  // ConvertHl7 call and by ForgetEncounterVersions, so memory stays bounded.
  struct EncounterVersion {
    std::string order;
    std::string slot;
    std::string trigger;
    bool by_trigger = false;
    bool live = true;
    fhir::Node resource;
  };
  std::map<std::string, std::vector<EncounterVersion>> encounter_versions_;
  std::string versions_patient_;
  std::size_t message_sequence_ = 0;
};

}  // namespace kakehashi::mapping
