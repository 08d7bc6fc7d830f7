// Output assembly: FHIR R4 transaction Bundles (PUT with the deterministic ids, DELETE for
// deleted or removed records) and NDJSON lines, built as fhir::Node trees.
#pragma once

#include "kakehashi/fhir/node.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::mapping {

// How one Encounter version of a stay counts in the merge (converter.hpp "Encounter merging",
// MergeEncounterVersions).
struct EncounterVersionInfo {
  // The merge time, 17 digits yyyyMMddHHmmssfff (SS-MIX2: the file name's 発生日時; HL7 v2 input:
  // MSH-7, else EVN-2; empty when there is none).
  std::string_view when;
  // The source message (SS-MIX2: the record key of digest §3, FileName::Key(); HL7 v2 input: the
  // message's 1-based position in the input, 8 digits). A later version of a slot replaces the
  // earlier ones (a corrected record; a deleted key).
  std::string_view slot;
  std::string_view trigger;  // MSH-9.2 of the message ("A03"); empty when absent
  // An HL7 v2 message (not an SS-MIX2 record): a cancel trigger (A13 …) withdraws the latest
  // earlier version of the trigger it cancels (A03), as SS-MIX2 does by deleting the key.
  bool by_trigger = false;
  // False for the version of a deleted SS-MIX2 key (its flag-0 file's cancel message): it still
  // contributes (A13: in-progress), but a stay that only deleted keys feed is deleted.
  bool live = true;
};

// Receives conversion output in order (converter.hpp).
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Put(const std::string& type, const std::string& id, fhir::Node resource) = 0;
  virtual void Delete(const std::string& type, const std::string& id) = 0;
  // Every Encounter version the Converter maps, before the versions of one stay are merged and
  // PUT (converter.hpp "Encounter merging"), with what the merge needs to redo it across runs
  // (EncounterVersionInfo). `resource` is the Encounter as its message mapped it, or null when
  // the version withdraws its slot's contribution (a deleted SS-MIX2 key whose flag-0 file is
  // not a cancel message). A caller that merges across runs keeps them (the importer); the
  // default ignores them.
  virtual void EncounterVersion(const std::string& /*id*/, const EncounterVersionInfo& /*info*/,
                                const fhir::Node* /*resource*/) {}
  // Called before the Puts and Deletes of each HL7 v2 message and of each SS-MIX2 record with
  // their merge time (EncounterVersionInfo::when: MSH-7 else EVN-2, or the record's 発生日時), so
  // that a caller can order them against other runs (the importer remembers deletes across
  // import units by it). The default ignores it.
  virtual void MessageTime(std::string_view /*when*/) {}
  // After MessageTime, the PID-3.1 (first repetition, first component; empty without a PID) of
  // the HL7 v2 message, or of each message of the SS-MIX2 record's file and of the previous
  // version it is compared with: the patient the patient-scoped ids of the Puts and Deletes that
  // follow derive from (the rules' id hashes read "PID-3.1"), so that a caller can tell which
  // patient each key belongs to (the importer finds other units writing the same keys by it).
  // The default ignores it.
  virtual void MessagePatient(std::string_view /*pid3*/) {}
};

struct BundleEntry {
  enum class Method { kPut, kDelete };
  Method method = Method::kPut;
  std::string type;
  std::string id;
  fhir::Node resource;  // null for kDelete
  std::string key;      // "Type/id", built once per entry (the url of its request, bdl-7's key)
};

// Accumulates entries in order. The same (type, id) given twice keeps one entry: the later
// one replaces the earlier in place (a newer version of a record, or a delete after a put).
class BundleBuilder final : public OutputSink {
 public:
  void Put(const std::string& type, const std::string& id, fhir::Node resource) override;
  // The same with the entry's "Type/id" already built by the caller (`key` == type + "/" + id).
  void Put(const std::string& type, const std::string& id, std::string key, fhir::Node resource);
  void Delete(const std::string& type, const std::string& id) override;
  const std::vector<BundleEntry>& Entries() const { return entries_; }
  std::size_t Size() const { return entries_.size(); }
  // Moves the entries out (in order) and leaves the builder empty.
  std::vector<BundleEntry> TakeEntries() {
    index_.clear();
    return std::move(entries_);
  }

  // {"resourceType":"Bundle","type":"transaction","entry":[{fullUrl, resource,
  //  request:{method:"PUT", url:"Type/id"}} | {request:{method:"DELETE", url:"Type/id"}}]}.
  // fullUrl = "urn:uuid:<id>" (ids are UUID-shaped). bdl-7 holds: one entry per (type, id).
  fhir::Node Build() const;

 private:
  std::vector<BundleEntry> entries_;
  std::vector<std::size_t> index_;  // entries_ positions, sorted by their key
  void Add(BundleEntry entry);
};

}  // namespace kakehashi::mapping
