#include "kakehashi/fhir/node.hpp"

#include <catch2/catch.hpp>

#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

using kakehashi::fhir::Node;

TEST_CASE("Node kinds and accessors", "[node]") {
  CHECK(Node().IsNull());
  CHECK(Node::Null().kind() == Node::Kind::kNull);
  CHECK(Node::Bool(true).AsBool());
  CHECK_FALSE(Node::Bool(false).AsBool());
  CHECK(Node::Number("1.50").Text() == "1.50");  // decimals keep their text
  CHECK(Node::String("abc").Text() == "abc");
  CHECK(Node::Object().IsObject());
  CHECK(Node::Array().IsArray());
  CHECK(Node::Bool(true).Text().empty());
}

TEST_CASE("Node objects keep member order and replace on Set", "[node]") {
  Node o = Node::Object();
  o.Set("b", Node::String("1"));
  o.Set("a", Node::String("2"));
  o.Set("b", Node::String("3"));
  REQUIRE(o.Size() == 2);
  CHECK(o.Key(0) == "b");
  CHECK(o.Child(0).Text() == "3");
  CHECK(o.Key(1) == "a");
  REQUIRE(o.Find("a") != nullptr);
  CHECK(o.Find("a")->Text() == "2");
  CHECK(o.Find("zz") == nullptr);
  CHECK(o.Remove("b"));
  CHECK_FALSE(o.Remove("b"));
  CHECK(o.Size() == 1);
  CHECK(Node::String("x").Find("a") == nullptr);

  Node fresh;  // a null node becomes an object / array on first use
  fresh.Set("k", Node::Bool(true));
  CHECK(fresh.IsObject());
  Node list;
  list.Push(Node::Number("1"));
  CHECK(list.IsArray());
  CHECK(list.Items().size() == 1);
}

TEST_CASE("Node::ResourceType", "[node]") {
  Node p = Node::Object();
  CHECK(p.ResourceType().empty());
  p.Set("resourceType", Node::String("Patient"));
  CHECK(p.ResourceType() == "Patient");
  p.Set("resourceType", Node::Number("1"));
  CHECK(p.ResourceType().empty());
}

TEST_CASE("Node equality is semantic", "[node]") {
  Node a = Node::Object();
  a.Set("x", Node::Number("1.0"));
  a.Set("y", Node::String("s"));
  Node b = Node::Object();
  b.Set("y", Node::String("s"));
  b.Set("x", Node::Number("1.0"));
  CHECK(a == b);  // member order is ignored
  b.Set("x", Node::Number("1"));
  CHECK_FALSE(a == b);  // numbers compare by text: 1.0 and 1 differ in precision
  Node arr1 = Node::Array();
  arr1.Push(Node::String("a"));
  arr1.Push(Node::String("b"));
  Node arr2 = Node::Array();
  arr2.Push(Node::String("b"));
  arr2.Push(Node::String("a"));
  CHECK_FALSE(arr1 == arr2);  // arrays by order
  CHECK_FALSE(Node::String("1") == Node::Number("1"));
  CHECK(Node() == Node::Null());
  CHECK_FALSE(Node::Bool(true) == Node::Bool(false));
  Node c = a;
  c.Set("z", Node());
  CHECK_FALSE(a == c);
}

TEST_CASE("Node::Append adds without lookup", "[node]") {
  Node o;
  o.Append("a", Node::Number("1"));
  o.Append("b", Node::Number("2"));
  REQUIRE(o.IsObject());
  REQUIRE(o.Size() == 2);
  CHECK(o.Key(1) == "b");
  CHECK(o.Find("b")->Text() == "2");
}

// Strings and containers share storage (node.hpp): every kind change, copy and move must leave
// exactly one live value, including when a descendant is assigned over its ancestor.
TEST_CASE("Node kinds share storage safely", "[node]") {
  CHECK(sizeof(Node) <= 56);
  Node n = Node::String("a long string that does not fit the small-string buffer");
  CHECK(n.Size() == 0);
  CHECK(n.Items().empty());
  n.Set("k", Node::Number("1"));  // a string becomes an object
  REQUIRE(n.IsObject());
  CHECK(n.Text().empty());
  CHECK(n.Find("k")->Text() == "1");
  n.Push(Node::Bool(true));  // an object becomes an array
  REQUIRE(n.IsArray());
  CHECK(n.Size() == 1);
  n = Node::Number("2.50");  // an array becomes a number
  CHECK(n.Text() == "2.50");
  CHECK(n.Size() == 0);

  Node tree = Node::Object();
  tree.Set("a", Node::Object()).Set("b", Node::String("a long value, not a small string ...."));
  tree.Set("list", Node::Array()).Push(Node::String("x"));
  const Node copy = tree;                          // deep copy
  tree = std::move(tree.Find("a")->Find("b")[0]);  // move a descendant over its ancestor
  CHECK(tree.Text() == "a long value, not a small string ....");
  Node again = copy;
  again = again.Find("list")->Child(0);  // copy a descendant over its ancestor
  CHECK(again.Text() == "x");
  CHECK(copy.Find("a")->Find("b")->Text() == "a long value, not a small string ....");
  Node moved(std::move(again));
  CHECK(moved.Text() == "x");
  Node self = copy;
  const Node& alias = self;
  self = alias;  // self-assignment keeps the value
  CHECK(self == copy);
  std::vector<Node> many;
  for (int i = 0; i < 100; ++i) many.push_back(copy);  // growth moves them
  CHECK(many.back() == copy);
  CHECK(Node::Bool(true) == Node::Bool(true));
  CHECK_FALSE(Node::Bool(true) == Node::Bool(false));
}

// Set/Append/Push take the value by rvalue reference (moved in once) and build the key in place,
// so a value or key that lives inside the node itself must be taken before anything it lives in
// is destroyed or reallocated.
TEST_CASE("Node::Set/Append/Push with keys and values from the node itself", "[node]") {
  const std::string long_text = "a long value, not a small string, lives on the heap ....";
  // A descendant appended to its own object, at the moment the member vectors regrow (4 -> 8).
  Node o = Node::Object();
  for (const char* key : {"k0", "k1", "k2", "k3"}) o.Append(key, Node::String(long_text));
  REQUIRE(o.Size() == 4);
  o.Append("moved", std::move(o.Child(2)));
  REQUIRE(o.Size() == 5);
  CHECK(o.Child(4).Text() == long_text);
  CHECK(o.Child(2).IsNull());             // moved from
  o.Append(o.Key(0), Node::Number("7"));  // a key copied from the object while it regrows
  CHECK(o.Key(5) == "k0");
  // Set replacing a member by a copy of another member, and by one of its own descendants.
  o.Set("k1", o.Child(3));
  CHECK(o.Find("k1")->Text() == long_text);
  o.Set("nested", Node::Object()).Set("inner", Node::String(long_text));
  o.Set("nested", std::move(*o.Find("nested")->Find("inner")));
  CHECK(o.Find("nested")->Text() == long_text);
  // Set/Append on a node of another kind: the key and value may live in the value replaced.
  Node s = Node::String(long_text);
  s.Set(s.Text(), Node::Bool(true));
  REQUIRE(s.IsObject());
  CHECK(s.Key(0) == long_text);
  Node arr = Node::Array();
  arr.Push(Node::String(long_text));
  arr.Append("first", std::move(arr.Child(0)));
  REQUIRE(arr.IsObject());
  CHECK(arr.Find("first")->Text() == long_text);
  Node obj = Node::Object();
  obj.Append("x", Node::String(long_text));
  obj.Push(std::move(obj.Child(0)));  // an object becomes an array holding its old member
  REQUIRE(obj.IsArray());
  CHECK(obj.Child(0).Text() == long_text);
  // Keys from string views and literals; lvalue values are copied, the source kept.
  Node k;
  const Node value = Node::String(long_text);
  k.Append(std::string_view("view"), value);
  k.Set("literal", value);
  CHECK(k.Find("view")->Text() == long_text);
  CHECK(k.Find("literal")->Text() == long_text);
  CHECK(value.Text() == long_text);
  Node list;
  list.Push(value);
  CHECK(list.Child(0) == value);
}

TEST_CASE("Node::ReserveMembers keeps the members and their order", "[node]") {
  Node o;
  o.ReserveMembers(16);  // a null node becomes an (empty) object
  REQUIRE(o.IsObject());
  CHECK(o.Size() == 0);
  for (int i = 0; i < 20; ++i) o.Append(std::to_string(i), Node::Number(std::to_string(i * 2)));
  o.ReserveMembers(8);  // fewer than present: nothing lost
  REQUIRE(o.Size() == 20);
  CHECK(o.Key(19) == "19");
  CHECK(o.Find("7")->Text() == "14");
}

TEST_CASE("Node text, keys and items are views into the node", "[node]") {
  // Decision 0035: no std::string / std::vector of the storage escapes through the reader API,
  // so the storage can change without touching callers.
  static_assert(std::is_same_v<decltype(Node().Text()), std::string_view>);
  static_assert(std::is_same_v<decltype(Node().Key(0)), std::string_view>);
  static_assert(std::is_same_v<decltype(Node().Items()), std::span<const Node>>);
  Node o = Node::Object();
  o.Append("system", Node::String("urn:oid:1.2.392.100495.20.3.51.11234567890"));
  o.Append("code", Node::Number("12"));
  CHECK(o.Key(0) == "system");
  CHECK(o.Child(0).Text() == "urn:oid:1.2.392.100495.20.3.51.11234567890");
  CHECK(o.Find("code")->Text() == "12");
  CHECK(o.Text().empty());         // not a string: empty view
  REQUIRE(o.Items().size() == 2);  // an object's items are its values, in order
  CHECK(o.Items()[1].Text() == "12");
  CHECK(Node::String(std::string_view("abcdef").substr(2, 3)).Text() == "cde");
  CHECK(Node::Number(std::string_view("1.50")).IsNumber());
  CHECK(Node::String("x").IsString());  // a literal is not ambiguous
  CHECK(Node().Items().empty());
  CHECK(Node::String("x").Items().empty());
}
