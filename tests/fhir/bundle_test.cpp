#include "kakehashi/fhir/r4/bundle.hpp"

#include <catch2/catch.hpp>

#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/r4/patient.hpp"

namespace r4 = kakehashi::fhir::r4;

TEST_CASE("Bundle: entries hold any resource as Node", "[typed][bundle]") {
  r4::Bundle bundle;
  bundle.type = "transaction";
  r4::Patient patient;
  patient.id = "p1";
  auto& entry = bundle.entry.emplace_back();
  entry.full_url = "urn:uuid:00000000-0000-4000-8000-000000000001";
  entry.resource = patient.ToNode();
  entry.request.Emplace().method = "PUT";
  entry.request->url = "Patient/p1";
  CHECK(
      kakehashi::fhir::WriteJson(bundle.ToNode()) ==
      R"({"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000001",)"
      R"("resource":{"resourceType":"Patient","id":"p1"},"request":{"method":"PUT","url":"Patient/p1"}}]})");
  kakehashi::CollectingSink sink;
  auto back = r4::Bundle::FromNode(bundle.ToNode(), sink);
  REQUIRE(back.has_value());
  REQUIRE(back->entry.size() == 1);
  CHECK(back->entry[0].resource.ResourceType() == "Patient");
  CHECK(back->entry[0].request->method.value == std::optional<std::string>("PUT"));
}
