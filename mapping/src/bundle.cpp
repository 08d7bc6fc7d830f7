#include "kakehashi/mapping/bundle.hpp"

#include <algorithm>

namespace kakehashi::mapping {

using fhir::Node;

namespace {

std::string Key(const std::string& type, const std::string& id) {
  std::string key;
  key.reserve(type.size() + 1 + id.size());
  key.append(type).append(1, '/').append(id);
  return key;
}

}  // namespace

void BundleBuilder::Add(BundleEntry entry) {
  const std::string& key = entry.key;
  auto it =
      std::lower_bound(index_.begin(), index_.end(), key,
                       [&](std::size_t a, const std::string& k) { return entries_[a].key < k; });
  if (it != index_.end() && entries_[*it].key == key) {
    entries_[*it] = std::move(entry);
    return;
  }
  index_.insert(it, entries_.size());
  entries_.push_back(std::move(entry));
}

void BundleBuilder::Put(const std::string& type, const std::string& id, Node resource) {
  Add({BundleEntry::Method::kPut, type, id, std::move(resource), Key(type, id)});
}

void BundleBuilder::Put(const std::string& type, const std::string& id, std::string key,
                        Node resource) {
  Add({BundleEntry::Method::kPut, type, id, std::move(resource), std::move(key)});
}

void BundleBuilder::Delete(const std::string& type, const std::string& id) {
  Add({BundleEntry::Method::kDelete, type, id, Node(), Key(type, id)});
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
    request.Set("url", Node::String(e.key));
    entry.Set("request", std::move(request));
    entries.Push(std::move(entry));
  }
  if (entries.Size() == 0) bundle.Remove("entry");
  return bundle;
}

}  // namespace kakehashi::mapping
