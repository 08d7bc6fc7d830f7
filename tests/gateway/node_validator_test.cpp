// HandlerOptions::node_validator (decision 0052): the conformance hook gets the tree the handler
// prepared instead of the JSON text parsed again. Pinned here: that tree is exactly what
// fhir::ParseJson of the text hook's argument gives (same values, same member order), on every
// write path that validates (create, update, transaction entries with rewritten references,
// patch), including a resource whose text keeps its tree (a value equal to the handler's markers).
#include "detail/json.hpp"
#include "detail/json_node.hpp"
#include "handler_fixture.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "test_support.hpp"

#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

namespace kakehashi::gateway {
namespace {

using testing::Backend;
using testing::HandlerFixture;

// The node as written in its own member order (not canonical), with the values that differ
// between two runs (the provisional lastUpdated, the id a POST is given) blanked.
std::string Shape(const fhir::Node& node) {
  fhir::WriteOptions as_is;
  as_is.canonical = false;
  static const std::regex instant("\"lastUpdated\":\"[^\"]*\"");
  static const std::regex observation_id("\"resourceType\":\"Observation\",\"id\":\"[^\"]*\"");
  std::string text =
      std::regex_replace(fhir::WriteJson(node, as_is), instant, "\"lastUpdated\":\"T\"");
  return std::regex_replace(text, observation_id, "\"resourceType\":\"Observation\",\"id\":\"N\"");
}

// A write session run against a handler whose hook records what it was given (as Shape).
std::vector<std::string> Run(bool tree_hook) {
  auto seen = std::make_shared<std::vector<std::string>>();
  HandlerOptions options;
  if (tree_hook) {
    options.node_validator = [seen](const fhir::Node& resource, IssueSink&) {
      seen->push_back(Shape(resource));
    };
  } else {
    options.validator = [seen](std::string_view json, IssueSink& sink) {
      auto node = fhir::ParseJson(json);
      if (!node) {
        sink.Error("test.unreadable", {}, "the text hook's argument did not parse");
        return;
      }
      seen->push_back(Shape(*node));
    };
  }
  HandlerFixture f(Backend::kSqlite, options);
  // Escapes, non-ASCII (raw and as a surrogate pair), number text, nested arrays, null items,
  // empty containers, a given meta with a tag and the members out of R4 order.
  const std::string patient =
      R"({"name":[{"family":"山田\"q\\b\n\t\u0007","given":["太郎","\ud83d\ude00"]}],)"
      R"("resourceType":"Patient","id":"p1","meta":{"tag":[{"code":"x"}],"versionId":"9"},)"
      R"("extension":[{"url":"http://e","valueDecimal":1.50},{"url":"http://f","valueInteger":-0}],)"
      R"("active":true,"x":[null,{},[],1e3,false]})";
  f.PutBody("Patient", "p1", patient);
  // A value equal to the version marker: the handler keeps that resource's tree.
  f.PutBody("Basic", "b1",
            R"({"resourceType":"Basic","id":"b1","code":{"text":"\u0001"},"subject":)"
            R"({"reference":"Patient/p1"}})");
  Response created = f.Do(testing::Req(
      "POST", "/fhir/Observation",
      R"({"resourceType":"Observation","id":"ignored","status":"final","code":{"text":"c"},)"
      R"("valueQuantity":{"value":100.0,"unit":"mg/dL"}})"));
  REQUIRE(created.status == 201);
  // A transaction: PUT entries (fixed ids) whose reference to another entry's fullUrl is
  // rewritten before validation.
  Response tx = f.Do(testing::Req(
      "POST", "/fhir",
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":)"
      R"({"resourceType":"Patient","id":"p2","gender":"female"},)"
      R"("request":{"method":"PUT","url":"Patient/p2"}},)"
      R"({"resource":{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"d"},)"
      R"("subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}},)"
      R"("request":{"method":"PUT","url":"Observation/o2"}}]})"));
  INFO(tx.body);
  REQUIRE(tx.status == 200);
  Response patched = f.Do(testing::Req("PATCH", "/fhir/Patient/p2",
                                       R"([{"op":"add","path":"/birthDate","value":"2000-01-02"}])",
                                       {{"Content-Type", "application/json-patch+json"}}));
  INFO(patched.body);
  REQUIRE(patched.status == 200);
  return *seen;
}

TEST_CASE("handler: the tree hook gets what the text hook's text parses to", "[handler]") {
  const std::vector<std::string> text = Run(false);
  const std::vector<std::string> tree = Run(true);
  REQUIRE(text.size() == 6);
  REQUIRE(tree.size() == text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    INFO("write " << i);
    CHECK(tree[i] == text[i]);
  }
  // The POST's id is the server's; the rest is as sent, behind resourceType, id and meta.
  CHECK(text[0].starts_with(
      R"({"resourceType":"Patient","id":"p1","meta":{"tag":[{"code":"x"}],"versionId":"1",)"
      R"("lastUpdated":"T"},"name":[{"family":"山田\"q\\b\n\t\u0007","given":["太郎","😀"]}],)"));
  CHECK(text[1].find(R"("code":{"text":"\u0001"})") != std::string::npos);
  CHECK(text[4].find(R"("subject":{"reference":"Patient/p2"})") != std::string::npos);
  CHECK(text[5].find(R"("birthDate":"2000-01-02")") != std::string::npos);
}

TEST_CASE("handler: the tree hook rejects with 422 and stores nothing", "[handler]") {
  HandlerOptions options;
  options.node_validator = [](const fhir::Node& resource, IssueSink& sink) {
    const fhir::Node* gender = resource.Find("gender");
    if (gender != nullptr && gender->Text() == "robot") {
      Location where;
      where.fhir_path = "Patient.gender";
      sink.Error("conformance.binding.not_in_value_set", where, "gender is not in the value set");
    }
  };
  HandlerFixture f(Backend::kSqlite, options);
  Response bad =
      f.Do(testing::Req("POST", "/fhir/Patient", R"({"resourceType":"Patient","gender":"robot"})"));
  REQUIRE(bad.status == 422);
  CHECK(bad.body.find("Patient.gender") != std::string::npos);
  CHECK(f.Ids("/fhir/Patient").empty());
  CHECK(f.Do(testing::Req("POST", "/fhir/Patient", R"({"resourceType":"Patient","gender":"male"})"))
            .status == 201);
}

TEST_CASE("gateway json: ToNode equals fhir::ParseJson of the written text", "[detail]") {
  for (const char* text :
       {R"({"a":1.50,"b":[true,false,null,-0,1E+3],"c":{},"d":[],"e":"\u0000x\"y\\z\/"})",
        R"(["日本語","\ud83d\ude00",{"z":1,"a":2,"m":{"k":[[[]]]}}])", R"("only a string")",
        R"(12.000)", R"(null)"}) {
    INFO(text);
    detail::Json tree;
    detail::JsonError error;
    REQUIRE(detail::ParseJson(text, tree, error));
    auto parsed = fhir::ParseJson(detail::ToJsonText(tree));
    REQUIRE(parsed);
    const fhir::Node converted = detail::ToNode(std::move(tree));
    CHECK(converted == *parsed);
    CHECK(Shape(converted) == Shape(*parsed));  // member order too
  }
}

}  // namespace
}  // namespace kakehashi::gateway
