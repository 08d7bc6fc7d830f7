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
#include <span>
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
  // From a view (another node's Text(), a part of one): the text is copied. The `const char*`
  // overloads keep literals unambiguous between the two.
  static Node Number(std::string_view text) { return Number(std::string(text)); }
  static Node String(std::string_view text) { return String(std::string(text)); }
  static Node Number(const char* text) { return Number(std::string(text)); }
  static Node String(const char* text) { return String(std::string(text)); }
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
  // The string value, or a number's text. Empty for other kinds. A view into the node: valid
  // while the node lives and is not changed.
  std::string_view Text() const { return HasText() ? std::string_view(text_) : std::string_view(); }

  // Objects: keys and values in insertion order (Key(i) belongs to Child(i)).
  std::size_t Size() const {  // members or items; 0 for other kinds
    return IsContainer() ? container_.children.size() : 0;
  }
  std::string_view Key(std::size_t i) const { return container_.keys[i]; }  // objects (a view)
  const Node& Child(std::size_t i) const { return container_.children[i]; }
  Node& Child(std::size_t i) { return container_.children[i]; }
  const Node* Find(std::string_view key) const;
  Node* Find(std::string_view key);
  // Replaces the value of an existing key or appends a new member. Returns the stored value.
  // `key` is anything a std::string is constructed from (a literal, a string_view, a string to
  // copy or move); the key string is built in place, and only when the member is new. The value
  // is moved in (or copied from an lvalue): one Node move per member, not two.
  template <class K>
  Node& Set(K&& key, Node&& value) {
    if (kind_ != Kind::kObject)
      return BecomeObjectAndAppend(std::string(std::forward<K>(key)), std::move(value));
    if (Node* existing = Find(std::string_view(key))) {
      *existing = std::move(value);
      return *existing;
    }
    return Append(std::forward<K>(key), std::move(value));
  }
  template <class K>
  Node& Set(K&& key, const Node& value) {
    return Set(std::forward<K>(key), Node(value));
  }
  bool Remove(std::string_view key);
  // Appends a member without looking for an existing one: the caller guarantees `key` is new
  // (readers that already checked for duplicates). Turns a null node into an object. `value`
  // may be a descendant of *this (it is moved before the member vectors are reallocated).
  template <class K>
  Node& Append(K&& key, Node&& value) {
    if (kind_ != Kind::kObject)
      return BecomeObjectAndAppend(std::string(std::forward<K>(key)), std::move(value));
    Container& c = container_;
    if (c.keys.capacity() == 0) ReserveFirstMembers();  // empty: nothing `value` could be in
    c.keys.emplace_back(std::forward<K>(key));
    return c.children.emplace_back(std::move(value));
  }
  template <class K>
  Node& Append(K&& key, const Node& value) {
    return Append(std::forward<K>(key), Node(value));
  }
  // Room for `members` members of an object (a null node becomes an object), so that a builder
  // that knows how many members are coming appends them without regrowing the vectors.
  void ReserveMembers(std::size_t members);

  // Arrays.
  std::span<const Node> Items() const {  // empty for scalars; an object's values for objects
    return IsContainer() ? std::span<const Node>(container_.children) : std::span<const Node>();
  }
  Node& Push(Node&& value) {
    if (kind_ != Kind::kArray) {    // a null (default) node becomes an array
      Node kept(std::move(value));  // first: `value` may live inside the value Become destroys
      Become(Kind::kArray);
      return container_.children.emplace_back(std::move(kept));
    }
    return container_.children.emplace_back(std::move(value));
  }
  Node& Push(const Node& value) { return Push(Node(value)); }

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
  void Destroy() noexcept;
  void Become(Kind kind);      // destroys the value, default-constructs `kind`
  void ReserveFirstMembers();  // an object's first allocation (node.cpp: kFirstMembers)
  // Set/Append on a node that is not an object yet (null, or another kind that is replaced): key
  // and value are taken first, since either may live inside the value Become destroys.
  Node& BecomeObjectAndAppend(std::string key, Node value);
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
