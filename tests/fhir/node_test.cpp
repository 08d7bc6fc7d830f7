#include "kakehashi/fhir/node.hpp"

#include <catch2/catch.hpp>

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
