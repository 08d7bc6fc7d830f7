// Node: a JSON-shaped tree that keeps FHIR's lexical forms. It is the generic representation of
// any R4 resource (the gateway and conformance/ work on it) and what typed classes convert to.
//
// - Numbers keep their text ("1.50" stays "1.50"): FHIR decimals carry precision.
// - Objects keep member order as inserted; WriteJson(…, canonical) reorders by the R4 metadata.
// - Primitive extensions are ordinary members ("_birthDate"), so they survive.
//
// Value semantics; copying copies the subtree. Not thread-safe for concurrent mutation.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::fhir {

class Node {
 public:
  enum class Kind : unsigned char { kNull, kBool, kNumber, kString, kObject, kArray };

  Node() = default;  // null
  static Node Null() { return Node(); }
  static Node Bool(bool value);
  static Node Number(std::string text);  // text must be a JSON number; not checked here
  static Node String(std::string text);
  static Node Object();
  static Node Array();

  Kind kind() const { return kind_; }
  bool IsNull() const { return kind_ == Kind::kNull; }
  bool IsBool() const { return kind_ == Kind::kBool; }
  bool IsNumber() const { return kind_ == Kind::kNumber; }
  bool IsString() const { return kind_ == Kind::kString; }
  bool IsObject() const { return kind_ == Kind::kObject; }
  bool IsArray() const { return kind_ == Kind::kArray; }

  bool AsBool() const { return bool_; }
  // The string value, or a number's text. Empty for other kinds.
  const std::string& Text() const { return text_; }

  // Objects: keys and values in insertion order (Key(i) belongs to Child(i)).
  std::size_t Size() const { return children_.size(); }  // members or items
  const std::string& Key(std::size_t i) const { return keys_[i]; }
  const Node& Child(std::size_t i) const { return children_[i]; }
  Node& Child(std::size_t i) { return children_[i]; }
  const Node* Find(std::string_view key) const;
  Node* Find(std::string_view key);
  // Replaces the value of an existing key or appends a new member. Returns the stored value.
  Node& Set(std::string key, Node value);
  bool Remove(std::string_view key);
  // Appends a member without looking for an existing one: the caller guarantees `key` is new
  // (readers that already checked for duplicates). Turns a null node into an object.
  Node& Append(std::string key, Node value);

  // Arrays.
  const std::vector<Node>& Items() const { return children_; }
  Node& Push(Node value);

  // Convenience for resources: the "resourceType" string, empty when absent.
  std::string_view ResourceType() const;

  // Semantic equality: object member order is ignored, numbers compare by text, arrays by order.
  friend bool operator==(const Node& a, const Node& b);

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<std::string> keys_;  // objects only, parallel to children_
  std::vector<Node> children_;
};

}  // namespace kakehashi::fhir
