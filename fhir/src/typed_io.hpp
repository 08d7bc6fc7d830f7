// Node <-> typed member conversions used by the generated classes (fhir/src/generated/r4_*.cpp).
// Private to the fhir module.
//
// Put(node, "name", member) writes a member in FHIR JSON form: primitives as "name" plus "_name"
// (id/extensions; arrays aligned with nulls, http://hl7.org/fhir/R4/json.html#primitive), complex
// values through ToNode(), nothing for empty values. Get(node, "name", member) is the inverse and
// is lenient: the shape was checked by CheckResource before, so mismatches are skipped.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/fhir/r4/datatypes.hpp"
#include "kakehashi/fhir/r4/primitive.hpp"

namespace kakehashi::fhir::r4::io {

// --- primitives ---
Node ValueOf(const StringValue& v);
Node ValueOf(const BooleanValue& v);
Node ValueOf(const IntegerValue& v);
Node ValueOf(const DecimalValue& v);
void SetValue(const Node& n, StringValue& v);
void SetValue(const Node& n, BooleanValue& v);
void SetValue(const Node& n, IntegerValue& v);
void SetValue(const Node& n, DecimalValue& v);
bool HasValue(const StringValue& v);
bool HasValue(const BooleanValue& v);
bool HasValue(const IntegerValue& v);
bool HasValue(const DecimalValue& v);

Node ExtrasOf(const PrimitiveBase& v);  // {"id":…, "extension":[…]}
void SetExtras(const Node& n, PrimitiveBase& v);
std::string Underscore(std::string_view name);

template <class P>
requires std::is_base_of_v<PrimitiveBase, P>
void Put(Node& node, std::string_view name, const P& v) {
  if (HasValue(v)) node.Set(std::string(name), ValueOf(v));
  if (v.HasExtras()) node.Set(Underscore(name), ExtrasOf(v));
}

template <class P>
requires std::is_base_of_v<PrimitiveBase, P>
void Get(const Node& node, std::string_view name, P& v) {
  if (const Node* value = node.Find(name)) SetValue(*value, v);
  if (const Node* extras = node.Find(Underscore(name)); extras && extras->IsObject())
    SetExtras(*extras, v);
}

// --- plain strings (Element.id, Extension.url: JSON attributes without "_x") ---
void Put(Node& node, std::string_view name, const std::string& v);
void Get(const Node& node, std::string_view name, std::string& v);

// --- contained resources and Bundle.entry.resource: kept as generic Nodes ---
void Put(Node& node, std::string_view name, const Node& v);
void Get(const Node& node, std::string_view name, Node& v);
void Put(Node& node, std::string_view name, const std::vector<Node>& v);
void Get(const Node& node, std::string_view name, std::vector<Node>& v);

// --- complex values and primitives held in a Box (single elements, choice alternatives) ---
template <class T>
void Put(Node& node, std::string_view name, const Box<T>& v) {
  if (!v) return;
  if constexpr (std::is_base_of_v<PrimitiveBase, T>) {
    Put(node, name, *v);
  } else {
    Node child = v->ToNode();
    if (child.Size() > 0) node.Set(std::string(name), std::move(child));
  }
}

template <class T>
void Get(const Node& node, std::string_view name, Box<T>& v) {
  if constexpr (std::is_base_of_v<PrimitiveBase, T>) {
    if (node.Find(name) == nullptr && node.Find(Underscore(name)) == nullptr) return;
    Get(node, name, v.Emplace());
  } else {
    const Node* child = node.Find(name);
    if (child == nullptr || !child->IsObject()) return;
    v.Emplace().Read(*child);
  }
}

// --- arrays ---
template <class T>
void Put(Node& node, std::string_view name, const std::vector<T>& v) {
  if (v.empty()) return;
  if constexpr (std::is_base_of_v<PrimitiveBase, T>) {
    Node values = Node::Array();
    Node extras = Node::Array();
    bool any_value = false;
    bool any_extras = false;
    for (const T& item : v) {
      const bool has = HasValue(item);
      values.Push(has ? ValueOf(item) : Node());
      extras.Push(item.HasExtras() ? ExtrasOf(item) : Node());
      any_value = any_value || has;
      any_extras = any_extras || item.HasExtras();
    }
    if (any_value) node.Set(std::string(name), std::move(values));
    if (any_extras) node.Set(Underscore(name), std::move(extras));
  } else {
    Node items = Node::Array();
    for (const T& item : v) {
      Node child = item.ToNode();
      if (child.Size() > 0) items.Push(std::move(child));
    }
    if (items.Size() > 0) node.Set(std::string(name), std::move(items));
  }
}

template <class T>
void Get(const Node& node, std::string_view name, std::vector<T>& v) {
  v.clear();
  const Node* items = node.Find(name);
  if constexpr (std::is_base_of_v<PrimitiveBase, T>) {
    const Node* extras = node.Find(Underscore(name));
    const std::size_t n = std::max(items && items->IsArray() ? items->Size() : 0,
                                   extras && extras->IsArray() ? extras->Size() : 0);
    v.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (items && items->IsArray() && i < items->Size()) SetValue(items->Child(i), v[i]);
      if (extras && extras->IsArray() && i < extras->Size() && extras->Child(i).IsObject())
        SetExtras(extras->Child(i), v[i]);
    }
  } else {
    if (items == nullptr || !items->IsArray()) return;
    v.reserve(items->Size());
    for (const Node& item : items->Items()) {
      if (!item.IsObject()) continue;
      v.emplace_back().Read(item);
    }
  }
}

// Resource FromNode helper: resourceType and CheckResource. Returns an error to propagate, or
// an empty code when `node` may be read.
boost::system::error_code CheckForRead(const Node& node, std::string_view resource_type,
                                       IssueSink& issues);

}  // namespace kakehashi::fhir::r4::io
