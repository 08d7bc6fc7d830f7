#include "kakehashi/fhir/r4/service_request.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/json.hpp"

namespace r4 = kakehashi::fhir::r4;

// ServiceRequest: resource identity and a lossless round trip through Node (id, meta, an extension
// on a primitive). The JP-CLINS examples are covered by typed_resources_test.cpp.
TEST_CASE("ServiceRequest: ToNode/FromNode round trip", "[typed][service_request]") {
  CHECK(r4::ServiceRequest::kResourceType == "ServiceRequest");
  r4::ServiceRequest resource;
  resource.id = "ex-1";
  resource.meta.Emplace().version_id = "2";
  resource.meta->last_updated = r4::Instant("2026-11-30T10:00:00.000+09:00");
  resource.meta->last_updated.extension.emplace_back().url = "http://example.org/ext";
  resource.meta->last_updated.extension.back().value_boolean = r4::Boolean(true);
  const kakehashi::fhir::Node node = resource.ToNode();
  CHECK(
      kakehashi::fhir::WriteJson(node) ==
      R"({"resourceType":"ServiceRequest","id":"ex-1","meta":{"versionId":"2","lastUpdated":"2026-11-30T10:00:00.000+09:00",)"
      R"("_lastUpdated":{"extension":[{"url":"http://example.org/ext","valueBoolean":true}]}}})");
  kakehashi::CollectingSink sink;
  auto back = r4::ServiceRequest::FromNode(node, sink);
  REQUIRE(back.has_value());
  CHECK(sink.Issues().empty());
  CHECK(*back->id.value == "ex-1");
  CHECK(back->ToNode() == node);
}
