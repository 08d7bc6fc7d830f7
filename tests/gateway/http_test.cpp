#include "kakehashi/gateway/http.hpp"

#include <catch2/catch.hpp>

namespace kakehashi::gateway {
namespace {

TEST_CASE("http: header lookup is case-insensitive; SetHeader replaces", "[http]") {
  Request r;
  r.headers = {{"Content-Type", "application/fhir+json"}, {"if-match", "W/\"2\""}};
  CHECK(r.Header("content-type") == "application/fhir+json");
  CHECK(r.Header("If-Match") == "W/\"2\"");
  CHECK(r.Header("Prefer").empty());
  Response resp;
  resp.SetHeader("ETag", "W/\"1\"");
  resp.SetHeader("etag", "W/\"2\"");
  CHECK(resp.headers.size() == 1);
  CHECK(resp.Header("ETAG") == "W/\"2\"");
  CHECK(EqualsIgnoreCase("Abc", "aBC"));
  CHECK_FALSE(EqualsIgnoreCase("Abc", "aBCd"));
}

}  // namespace
}  // namespace kakehashi::gateway
