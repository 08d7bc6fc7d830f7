// Terminology operations over REST (terminology_ops.hpp) through Handler::Handle: GET and POST
// (Parameters and form), OUT Parameters, paging, reverse translation, errors, CapabilityStatement.
#include "kakehashi/gateway/terminology_ops.hpp"

#include "kakehashi/fhir/json.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/store.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

namespace kakehashi::gateway {
namespace {

using fhir::Node;
using testing::Req;

struct Fixture {
  std::unique_ptr<testing::TestStore> t = testing::MakeStore(testing::Backend::kSqlite);
  std::unique_ptr<terminology::TerminologyStore> terms;
  std::unique_ptr<Handler> h;
  Fixture() {
    terminology::TerminologyStore::Options options;  // in memory: the built-in tables
    CollectingSink sink;
    auto store = terminology::TerminologyStore::Open(
        options, terminology::CodeSystemRegistry::Builtin(), sink);
    REQUIRE(store);
    terms = std::move(*store);
    HandlerOptions o;
    o.type_operations = TerminologyOperations(*terms);
    h = std::make_unique<Handler>(*t->store, std::move(o));
  }
  Node Do(const Request& r, int status) const {
    Response resp = h->Handle(r);
    INFO(r.method << " " << r.target << " -> " << resp.body);
    REQUIRE(resp.status == status);
    auto node = fhir::ParseJson(resp.body);
    REQUIRE(node);
    return std::move(*node);
  }
};

// The value of the first parameter `name` (valueX as text), "" when absent.
std::string ParamValue(const Node& params, std::string_view name) {
  const Node* list = params.Find("parameter");
  if (list == nullptr) return {};
  for (const Node& p : list->Items()) {
    const Node* n = p.Find("name");
    if (n == nullptr || n->Text() != name) continue;
    for (std::size_t i = 0; i < p.Size(); ++i) {
      if (p.Key(i).starts_with("value")) {
        const Node& v = p.Child(i);
        if (v.IsBool()) return v.AsBool() ? "true" : "false";
        return std::string(v.Text());
      }
    }
  }
  return {};
}

std::string IssueCode(const Node& oo) {
  const Node* issues = oo.Find("issue");
  REQUIRE(issues != nullptr);
  REQUIRE(issues->Size() > 0);
  return std::string(issues->Child(0).Find("code")->Text());
}

constexpr const char* kSex = "http://terminology.hl7.org/CodeSystem/v2-0001";

TEST_CASE("terminology ops: CodeSystem/$lookup", "[handler][terminology]") {
  Fixture f;
  // GET with any spelling of the system (the HL7 v2 table name).
  Node r = f.Do(Req("GET", "/fhir/CodeSystem/$lookup?system=HL70001&code=M"), 200);
  CHECK(r.ResourceType() == "Parameters");
  CHECK(ParamValue(r, "display") == "Male");
  CHECK(ParamValue(r, "system") == kSex);
  CHECK(ParamValue(r, "name") == "HL7 v2 0001 Administrative Sex");
  // POST Parameters with a Coding.
  Node p = f.Do(
      Req("POST", "/fhir/CodeSystem/$lookup",
          R"({"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":")" +
              std::string(kSex) + R"(","code":"F"}}]})"),
      200);
  CHECK(ParamValue(p, "display") == "Female");
  // GET with coding=system|code (token form), form POST.
  CHECK(ParamValue(
            f.Do(Req("GET", "/fhir/CodeSystem/$lookup?coding=" + std::string(kSex) + "%7CA"), 200),
            "display") == "Ambiguous");
  CHECK(ParamValue(f.Do(Req("POST", "/fhir/CodeSystem/$lookup", "system=HL70001&code=M",
                            {{"Content-Type", "application/x-www-form-urlencoded"}}),
                        200),
                   "display") == "Male");
  // Errors: missing parameters 400; unknown code / unknown system 404; bad body 400.
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/CodeSystem/$lookup?code=M"), 400)) == "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/CodeSystem/$lookup?system=HL70001"), 400)) == "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/CodeSystem/$lookup?system=HL70001&code=QQ"), 404)) ==
        "not-found");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/CodeSystem/$lookup?system=urn:example:nothing&code=1"),
                       404)) == "not-found");
  CHECK(IssueCode(f.Do(Req("POST", "/fhir/CodeSystem/$lookup", R"({"resourceType":"Patient"})"),
                       400)) == "invalid");
  CHECK(IssueCode(f.Do(Req("POST", "/fhir/CodeSystem/$lookup", "{not json"), 400)) == "invalid");
  // Other methods, unknown operations.
  CHECK(f.h->Handle(Req("DELETE", "/fhir/CodeSystem/$lookup")).status == 405);
  CHECK(f.h->Handle(Req("GET", "/fhir/CodeSystem/$subsumes")).status == 404);
}

TEST_CASE("terminology ops: ValueSet/$validate-code", "[handler][terminology]") {
  Fixture f;
  Node ok = f.Do(Req("GET",
                     "/fhir/ValueSet/$validate-code?url=http%3A%2F%2Fterminology.hl7.org%2F"
                     "ValueSet%2Fv2-0001&code=M&system=HL70001"),
                 200);
  CHECK(ParamValue(ok, "result") == "true");
  CHECK(ParamValue(ok, "display") == "Male");
  Node bad = f.Do(Req("GET", "/fhir/ValueSet/$validate-code?system=HL70001&code=QQ"), 200);
  CHECK(ParamValue(bad, "result") == "false");
  CHECK_FALSE(ParamValue(bad, "message").empty());
  Node post = f.Do(
      Req("POST", "/fhir/ValueSet/$validate-code",
          R"({"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"http://terminology.hl7.org/CodeSystem/v2-0001"},{"name":"code","valueCode":"F"}]})"),
      200);
  CHECK(ParamValue(post, "result") == "true");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ValueSet/$validate-code?system=HL70001"), 400)) ==
        "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ValueSet/$validate-code?code=M"), 400)) == "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ValueSet/$validate-code?url=urn:example:vs&code=M"),
                       404)) == "not-found");
}

TEST_CASE("terminology ops: ValueSet/$expand with filter and paging", "[handler][terminology]") {
  Fixture f;
  const std::string url = "/fhir/ValueSet/$expand?url=" + std::string(kSex);
  Node all = f.Do(Req("GET", url), 200);
  CHECK(all.ResourceType() == "ValueSet");
  const Node* expansion = all.Find("expansion");
  REQUIRE(expansion != nullptr);
  CHECK(expansion->Find("total")->Text() == "6");
  REQUIRE(expansion->Find("contains") != nullptr);
  CHECK(expansion->Find("contains")->Size() == 6);
  // Page 2 of size 2: the 3rd and 4th codes in code order (A, F, M, N, O, U).
  Node page = f.Do(Req("GET", url + "&offset=2&count=2"), 200);
  const Node* contains = page.Find("expansion")->Find("contains");
  REQUIRE(contains != nullptr);
  REQUIRE(contains->Size() == 2);
  CHECK(contains->Child(0).Find("code")->Text() == "M");
  CHECK(page.Find("expansion")->Find("offset")->Text() == "2");
  CHECK(page.Find("expansion")->Find("total")->Text() == "6");
  // Filter on display.
  Node male = f.Do(Req("GET", url + "&filter=Male"), 200);
  REQUIRE(male.Find("expansion")->Find("contains") != nullptr);
  CHECK(male.Find("expansion")->Find("total")->Text() == "1");
  // POST Parameters.
  Node post = f.Do(Req("POST", "/fhir/ValueSet/$expand",
                       R"({"resourceType":"Parameters","parameter":[{"name":"url","valueUri":")" +
                           std::string(kSex) + R"("},{"name":"count","valueInteger":1}]})"),
                   200);
  CHECK(post.Find("expansion")->Find("contains")->Size() == 1);
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ValueSet/$expand"), 400)) == "required");
  CHECK(IssueCode(f.Do(Req("GET", url + "&count=-1"), 400)) == "invalid");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ValueSet/$expand?url=urn:example:vs"), 404)) ==
        "not-found");
}

TEST_CASE("terminology ops: ConceptMap/$translate incl. reverse", "[handler][terminology]") {
  Fixture f;
  Node fwd = f.Do(Req("GET", "/fhir/ConceptMap/$translate?system=HL70001&code=M"), 200);
  CHECK(ParamValue(fwd, "result") == "true");
  const Node* match = nullptr;
  for (const Node& p : fwd.Find("parameter")->Items()) {
    if (p.Find("name")->Text() == "match") match = &p;
  }
  REQUIRE(match != nullptr);
  const Node* concept_part = nullptr;
  for (const Node& part : match->Find("part")->Items()) {
    if (part.Find("name")->Text() == "concept") concept_part = part.Find("valueCoding");
  }
  REQUIRE(concept_part != nullptr);
  CHECK(concept_part->Find("system")->Text() == "http://hl7.org/fhir/administrative-gender");
  CHECK(concept_part->Find("code")->Text() == "male");

  Node rev = f.Do(
      Req("POST", "/fhir/ConceptMap/$translate",
          R"({"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"http://hl7.org/fhir/administrative-gender","code":"female"}},{"name":"reverse","valueBoolean":true}]})"),
      200);
  CHECK(ParamValue(rev, "result") == "true");
  CHECK(rev.Find("parameter") != nullptr);
  bool back_to_f = false;
  for (const Node& p : rev.Find("parameter")->Items()) {
    if (p.Find("name")->Text() != "match") continue;
    for (const Node& part : p.Find("part")->Items()) {
      if (const Node* c = part.Find("valueCoding"))
        back_to_f = back_to_f || c->Find("code")->Text() == "F";
    }
  }
  CHECK(back_to_f);
  Node none = f.Do(Req("GET", "/fhir/ConceptMap/$translate?system=HL70001&code=QQ"), 200);
  CHECK(ParamValue(none, "result") == "false");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ConceptMap/$translate?system=HL70001"), 400)) ==
        "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ConceptMap/$translate?code=M"), 400)) == "required");
  CHECK(IssueCode(f.Do(Req("GET", "/fhir/ConceptMap/$translate?system=HL70001&code=M&reverse=x"),
                       400)) == "invalid");
}

TEST_CASE("terminology ops: the CapabilityStatement lists exactly the operations served",
          "[handler][terminology]") {
  Fixture f;
  Node cs = f.Do(Req("GET", "/fhir/metadata"), 200);
  std::map<std::string, std::set<std::string>> ops;
  for (const Node& r : cs.Find("rest")->Child(0).Find("resource")->Items()) {
    if (const Node* list = r.Find("operation")) {
      for (const Node& op : list->Items())
        ops[std::string(r.Find("type")->Text())].emplace(op.Find("name")->Text());
    }
  }
  CHECK(ops["CodeSystem"] == std::set<std::string>{"lookup"});
  CHECK(ops["ValueSet"] == std::set<std::string>{"expand", "validate-code"});
  CHECK(ops["ConceptMap"] == std::set<std::string>{"translate"});
  CHECK(ops["Patient"] == std::set<std::string>{"everything"});
  // Without the operations configured they are neither listed nor served.
  Handler plain(*f.t->store, {});
  CHECK(plain.Handle(Req("GET", "/fhir/metadata")).body.find("\"lookup\"") == std::string::npos);
  CHECK(plain.Handle(Req("GET", "/fhir/CodeSystem/$lookup?system=HL70001&code=M")).status == 404);
}

}  // namespace
}  // namespace kakehashi::gateway
