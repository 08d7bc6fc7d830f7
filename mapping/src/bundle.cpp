#include "kakehashi/mapping/bundle.hpp"

#include <algorithm>

namespace kakehashi::mapping {

using fhir::Node;

void BundleBuilder::Add(BundleEntry entry) {
  std::string key = entry.type + "/" + entry.id;
  auto it = std::lower_bound(index_.begin(), index_.end(), key,
                             [](const auto& a, const std::string& k) { return a.first < k; });
  if (it != index_.end() && it->first == key) {
    entries_[it->second] = std::move(entry);
    return;
  }
  index_.insert(it, {std::move(key), entries_.size()});
  entries_.push_back(std::move(entry));
}

void BundleBuilder::Put(const std::string& type, const std::string& id, Node resource) {
  Add({BundleEntry::Method::kPut, type, id, std::move(resource)});
}

void BundleBuilder::Delete(const std::string& type, const std::string& id) {
  Add({BundleEntry::Method::kDelete, type, id, Node()});
}

Node BundleBuilder::Build() const {
  Node bundle = Node::Object();
  bundle.Set("resourceType", Node::String("Bundle"));
  bundle.Set("type", Node::String("transaction"));
  Node& entries = bundle.Set("entry", Node::Array());
  for (const auto& e : entries_) {
    Node entry = Node::Object();
    Node request = Node::Object();
    if (e.method == BundleEntry::Method::kPut) {
      entry.Set("fullUrl", Node::String("urn:uuid:" + e.id));
      entry.Set("resource", e.resource);
      request.Set("method", Node::String("PUT"));
    } else {
      request.Set("method", Node::String("DELETE"));
    }
    request.Set("url", Node::String(e.type + "/" + e.id));
    entry.Set("request", std::move(request));
    entries.Push(std::move(entry));
  }
  if (entries.Size() == 0) bundle.Remove("entry");
  return bundle;
}

}  // namespace kakehashi::mapping
