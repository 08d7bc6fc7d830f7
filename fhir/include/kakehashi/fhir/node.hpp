// Node: a JSON-shaped tree that keeps FHIR's lexical forms. It is the generic representation of
// any R4 resource (the gateway and conformance/ work on it) and what typed classes convert to.
//
// - Numbers keep their text ("1.50" stays "1.50"): FHIR decimals carry precision.
// - Objects keep member order as inserted; WriteJson(…, canonical) reorders by the R4 metadata.
// - Primitive extensions are ordinary members ("_birthDate"), so they survive.
//
// Value semantics; copying copies the subtree. Not thread-safe for concurrent mutation.
// Layout: a string (strings, numbers) or the member/item vectors (objects, arrays) share one
// union, so a Node is 56 bytes instead of 88: conversions build, move and destroy millions.
#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::fhir {

class Node {
 public:
  // Order matters: the kinds from kNumber on hold a value (HasValue).
  enum class Kind : unsigned char { kNull, kBool, kNumber, kString, kObject, kArray };

  Node() {}  // null
  Node(const Node& other);
  Node(Node&& other) noexcept { StealFrom(other); }  // `other` is left null
  Node& operator=(const Node& other);
  Node& operator=(Node&& other) noexcept;  // `other` may be a descendant of *this
  ~Node() {
    if (HasValue()) Destroy();  // null, booleans and moved-from nodes: nothing to free
  }

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
  const std::string& Text() const { return HasText() ? text_ : EmptyText(); }

  // Objects: keys and values in insertion order (Key(i) belongs to Child(i)).
  std::size_t Size() const {  // members or items; 0 for other kinds
    return IsContainer() ? container_.children.size() : 0;
  }
  const std::string& Key(std::size_t i) const { return container_.keys[i]; }  // objects
  const Node& Child(std::size_t i) const { return container_.children[i]; }
  Node& Child(std::size_t i) { return container_.children[i]; }
  const Node* Find(std::string_view key) const;
  Node* Find(std::string_view key);
  // Replaces the value of an existing key or appends a new member. Returns the stored value.
  Node& Set(std::string key, Node value);
  bool Remove(std::string_view key);
  // Appends a member without looking for an existing one: the caller guarantees `key` is new
  // (readers that already checked for duplicates). Turns a null node into an object.
  Node& Append(std::string key, Node value);

  // Arrays.
  const std::vector<Node>& Items() const {  // empty for scalars
    return IsContainer() ? container_.children : EmptyItems();
  }
  Node& Push(Node value);

  // Convenience for resources: the "resourceType" string, empty when absent.
  std::string_view ResourceType() const;

  // Semantic equality: object member order is ignored, numbers compare by text, arrays by order.
  friend bool operator==(const Node& a, const Node& b);

 private:
  struct Container {
    std::vector<std::string> keys;  // objects only, parallel to children
    std::vector<Node> children;
  };

  bool HasText() const { return kind_ == Kind::kString || kind_ == Kind::kNumber; }
  bool IsContainer() const { return kind_ == Kind::kObject || kind_ == Kind::kArray; }
  bool HasValue() const { return kind_ >= Kind::kNumber; }  // text_ or container_ is live
  static const std::string& EmptyText();
  static const std::vector<Node>& EmptyItems();
  void Destroy() noexcept;
  void Become(Kind kind);  // destroys the value, default-constructs `kind`
  // *this holds no value; takes other's and leaves `other` null (its emptied value destroyed
  // here, inline, so that the moved-from node's destructor has nothing to do). Inline: moves
  // are the most frequent Node operation when trees are built (vector growth, Append, Push).
  void StealFrom(Node& other) noexcept {
    kind_ = other.kind_;
    bool_ = other.bool_;
    if (HasText()) {
      new (&text_) std::string(std::move(other.text_));
      other.text_.~basic_string();
      other.kind_ = Kind::kNull;
    } else if (IsContainer()) {
      new (&container_) Container(std::move(other.container_));
      other.container_.~Container();
      other.kind_ = Kind::kNull;
    }
  }
  void CopyFrom(const Node& other);  // *this holds no value

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  union {
    std::string text_;     // kString, kNumber
    Container container_;  // kObject, kArray
  };
};

}  // namespace kakehashi::fhir
