// Node: the generic JSON-shaped tree (see node.hpp for the contract).
#include "kakehashi/fhir/node.hpp"

#include <algorithm>
#include <utility>

namespace kakehashi::fhir {

Node Node::Bool(bool value) {
  Node n;
  n.kind_ = Kind::kBool;
  n.bool_ = value;
  return n;
}

Node Node::Number(std::string text) {
  Node n;
  n.kind_ = Kind::kNumber;
  n.text_ = std::move(text);
  return n;
}

Node Node::String(std::string text) {
  Node n;
  n.kind_ = Kind::kString;
  n.text_ = std::move(text);
  return n;
}

Node Node::Object() {
  Node n;
  n.kind_ = Kind::kObject;
  return n;
}

Node Node::Array() {
  Node n;
  n.kind_ = Kind::kArray;
  return n;
}

const Node* Node::Find(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return &children_[i];
  }
  return nullptr;
}

Node* Node::Find(std::string_view key) {
  return const_cast<Node*>(static_cast<const Node&>(*this).Find(key));
}

// Room for a few members up front: most FHIR objects (Coding, Identifier, Reference, Period,
// HumanName) have 2-4 members, and growing both vectors 1 -> 2 -> 4 cost four extra
// allocations and moves per object on the conversion path.
constexpr std::size_t kFirstMembers = 4;

Node& Node::Set(std::string key, Node value) {
  if (kind_ != Kind::kObject) {  // a null (default) node becomes an object on first Set
    *this = Object();
  }
  if (Node* existing = Find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  if (keys_.capacity() == 0) {
    keys_.reserve(kFirstMembers);
    children_.reserve(kFirstMembers);
  }
  keys_.push_back(std::move(key));
  children_.push_back(std::move(value));
  return children_.back();
}

Node& Node::Append(std::string key, Node value) {
  if (kind_ != Kind::kObject) *this = Object();
  if (keys_.capacity() == 0) {
    keys_.reserve(kFirstMembers);
    children_.reserve(kFirstMembers);
  }
  keys_.push_back(std::move(key));
  children_.push_back(std::move(value));
  return children_.back();
}

bool Node::Remove(std::string_view key) {
  if (kind_ != Kind::kObject) return false;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) {
      keys_.erase(keys_.begin() + static_cast<std::ptrdiff_t>(i));
      children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  return false;
}

Node& Node::Push(Node value) {
  if (kind_ != Kind::kArray) *this = Array();  // a null (default) node becomes an array
  children_.push_back(std::move(value));
  return children_.back();
}

std::string_view Node::ResourceType() const {
  const Node* type = Find("resourceType");
  return type != nullptr && type->IsString() ? std::string_view(type->text_) : std::string_view();
}

bool operator==(const Node& a, const Node& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Node::Kind::kNull: return true;
    case Node::Kind::kBool: return a.bool_ == b.bool_;
    case Node::Kind::kNumber:
    case Node::Kind::kString: return a.text_ == b.text_;
    case Node::Kind::kArray: return a.children_ == b.children_;
    case Node::Kind::kObject: {
      if (a.children_.size() != b.children_.size()) return false;
      for (std::size_t i = 0; i < a.keys_.size(); ++i) {
        // Keys are unique per object (the reader rejects duplicates), so a lookup suffices.
        const Node* other = b.Find(a.keys_[i]);
        if (other == nullptr || !(a.children_[i] == *other)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace kakehashi::fhir
