#include "kakehashi/mapping/bundle.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi;
using fhir::Node;

TEST_CASE("bundle: transaction with PUT and DELETE, one entry per resource", "[mapping]") {
  mapping::BundleBuilder b;
  Node p = Node::Object();
  p.Set("resourceType", Node::String("Patient"));
  p.Set("id", Node::String("p1"));
  b.Put("Patient", "p1", p);
  b.Put("Condition", "c1", Node::Object());
  b.Delete("MedicationRequest", "m1");
  Node p2 = p;
  p2.Set("gender", Node::String("female"));
  b.Put("Patient", "p1", p2);   // a newer version replaces the earlier entry in place
  b.Delete("Condition", "c1");  // a delete after a put wins
  REQUIRE(b.Size() == 3);
  Node bundle = b.Build();
  CHECK(bundle.Find("resourceType")->Text() == "Bundle");
  CHECK(bundle.Find("type")->Text() == "transaction");
  const Node& entries = *bundle.Find("entry");
  REQUIRE(entries.Size() == 3);
  CHECK(entries.Child(0).Find("fullUrl")->Text() == "urn:uuid:p1");
  CHECK(entries.Child(0).Find("request")->Find("method")->Text() == "PUT");
  CHECK(entries.Child(0).Find("request")->Find("url")->Text() == "Patient/p1");
  CHECK(entries.Child(0).Find("resource")->Find("gender")->Text() == "female");
  CHECK(entries.Child(1).Find("request")->Find("method")->Text() == "DELETE");
  CHECK(entries.Child(1).Find("request")->Find("url")->Text() == "Condition/c1");
  CHECK(entries.Child(1).Find("resource") == nullptr);
  CHECK(entries.Child(1).Find("fullUrl") == nullptr);
  CHECK(entries.Child(2).Find("request")->Find("url")->Text() == "MedicationRequest/m1");
  CHECK(mapping::BundleBuilder().Build().Find("entry") == nullptr);
}

TEST_CASE("BundleBuilder: each entry carries its Type/id key, given or built once", "[mapping]") {
  mapping::BundleBuilder b;
  b.Put("Patient", "p1", fhir::Node::Object());
  b.Put("Observation", "o1", "Observation/o1", fhir::Node::Object());
  b.Delete("Patient", "p2");
  b.Put("Observation", "o1", "Observation/o1", fhir::Node::Array());  // replaces in place
  REQUIRE(b.Size() == 3);
  CHECK(b.Entries()[0].key == "Patient/p1");
  CHECK(b.Entries()[1].key == "Observation/o1");
  CHECK(b.Entries()[1].resource.IsArray());
  CHECK(b.Entries()[2].key == "Patient/p2");
  const fhir::Node bundle = b.Build();
  CHECK(bundle.Find("entry")->Child(1).Find("request")->Find("url")->Text() == "Observation/o1");
  CHECK(bundle.Find("entry")->Child(2).Find("request")->Find("url")->Text() == "Patient/p2");
}
