// Node: the generic JSON-shaped tree (see node.hpp for the contract).
#include "kakehashi/fhir/node.hpp"

#include <algorithm>
#include <new>
#include <utility>

namespace kakehashi::fhir {

// ---- lifetime of the union (node.hpp: text_ for strings/numbers, container_ for objects and
// arrays; nothing for null and booleans) ----------------------------------------------------

void Node::Destroy() noexcept {
  if (HasText()) {
    text_.~basic_string();
  } else if (IsContainer()) {
    container_.~Container();
  }
  kind_ = Kind::kNull;
}

void Node::Become(Kind kind) {
  Destroy();
  if (kind == Kind::kString || kind == Kind::kNumber) {
    new (&text_) std::string();
  } else if (kind == Kind::kObject || kind == Kind::kArray) {
    new (&container_) Container();
  }
  kind_ = kind;
}

void Node::CopyFrom(const Node& other) {
  if (other.HasText()) {
    new (&text_) std::string(other.text_);
  } else if (other.IsContainer()) {
    new (&container_) Container(other.container_);
  }
  kind_ = other.kind_;  // after the copy: a throwing copy leaves *this null
  bool_ = other.bool_;
}

Node::Node(const Node& other) {
  CopyFrom(other);
}

Node& Node::operator=(const Node& other) {
  if (this != &other) {
    Node copy(other);  // before Destroy: `other` may live inside *this
    Destroy();
    StealFrom(copy);
  }
  return *this;
}

Node& Node::operator=(Node&& other) noexcept {
  if (this != &other) {
    Node taken(std::move(other));  // before Destroy: `other` may live inside *this
    Destroy();
    StealFrom(taken);
  }
  return *this;
}

Node Node::Bool(bool value) {
  Node n;
  n.kind_ = Kind::kBool;
  n.bool_ = value;
  return n;
}

Node Node::Number(std::string text) {
  Node n;
  new (&n.text_) std::string(std::move(text));
  n.kind_ = Kind::kNumber;
  return n;
}

Node Node::String(std::string text) {
  Node n;
  new (&n.text_) std::string(std::move(text));
  n.kind_ = Kind::kString;
  return n;
}

Node Node::Object() {
  Node n;
  n.Become(Kind::kObject);
  return n;
}

Node Node::Array() {
  Node n;
  n.Become(Kind::kArray);
  return n;
}

const Node* Node::Find(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  const std::vector<std::string>& keys = container_.keys;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &container_.children[i];
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

void Node::ReserveFirstMembers() {
  container_.keys.reserve(kFirstMembers);
  container_.children.reserve(kFirstMembers);
}

Node& Node::BecomeObjectAndAppend(std::string key, Node value) {
  Become(Kind::kObject);
  ReserveFirstMembers();
  container_.keys.push_back(std::move(key));
  return container_.children.emplace_back(std::move(value));
}

void Node::ReserveMembers(std::size_t members) {
  if (kind_ != Kind::kObject) Become(Kind::kObject);
  container_.keys.reserve(members);
  container_.children.reserve(members);
}

bool Node::Remove(std::string_view key) {
  if (kind_ != Kind::kObject) return false;
  Container& c = container_;
  for (std::size_t i = 0; i < c.keys.size(); ++i) {
    if (c.keys[i] == key) {
      c.keys.erase(c.keys.begin() + static_cast<std::ptrdiff_t>(i));
      c.children.erase(c.children.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  return false;
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
    case Node::Kind::kArray: return a.container_.children == b.container_.children;
    case Node::Kind::kObject: {
      if (a.container_.children.size() != b.container_.children.size()) return false;
      for (std::size_t i = 0; i < a.container_.keys.size(); ++i) {
        // Keys are unique per object (the reader rejects duplicates), so a lookup suffices.
        const Node* other = b.Find(a.container_.keys[i]);
        if (other == nullptr || !(a.container_.children[i] == *other)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace kakehashi::fhir
