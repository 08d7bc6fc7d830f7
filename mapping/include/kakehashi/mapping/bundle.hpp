// Output assembly: FHIR R4 transaction Bundles (PUT with the deterministic ids, DELETE for
// deleted or removed records) and NDJSON lines, built as fhir::Node trees.
#pragma once

#include "kakehashi/fhir/node.hpp"

#include <string>
#include <vector>

namespace kakehashi::mapping {

// Receives conversion output in order (converter.hpp).
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Put(const std::string& type, const std::string& id, fhir::Node resource) = 0;
  virtual void Delete(const std::string& type, const std::string& id) = 0;
};

struct BundleEntry {
  enum class Method { kPut, kDelete };
  Method method = Method::kPut;
  std::string type;
  std::string id;
  fhir::Node resource;  // null for kDelete
};

// Accumulates entries in order. The same (type, id) given twice keeps one entry: the later
// one replaces the earlier in place (a newer version of a record, or a delete after a put).
class BundleBuilder final : public OutputSink {
 public:
  void Put(const std::string& type, const std::string& id, fhir::Node resource) override;
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
  std::vector<std::pair<std::string, std::size_t>> index_;  // "Type/id" -> entry, sorted
  void Add(BundleEntry entry);
};

}  // namespace kakehashi::mapping
