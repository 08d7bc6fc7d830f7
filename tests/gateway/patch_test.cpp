// PATCH (R4 http.html "patch": JSON Patch RFC 6902 and FHIRPath Patch fhirpatch.html), conditional
// PATCH, and conditional references in single creates and updates (decision 0046), on SQLite and
// PostgreSQL; the patch engines alone in the detail cases.
#include "detail/patch.hpp"
#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "json_support.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "test_support.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;

const std::vector<std::pair<std::string, std::string>> kJsonPatch = {
    {"Content-Type", "application/json-patch+json"}};

Json J(const std::string& text) {
  return Parse(text);
}

// ------------------------------------------------------------------ JSON Patch engine

std::string PatchText(const std::string& doc, const std::string& patch, bool* ok = nullptr,
                      detail::PatchError* error = nullptr) {
  Json d = J(doc);
  detail::PatchError e;
  const bool applied = detail::ApplyJsonPatch(d, J(patch), e);
  if (ok != nullptr) *ok = applied;
  if (error != nullptr) *error = e;
  return applied ? detail::ToJsonText(d) : std::string();
}

TEST_CASE("patch: JSON Patch operations (RFC 6902 §4, RFC 6901 pointers)", "[patch]") {
  // RFC 6902 appendix A shapes, written anew.
  CHECK(PatchText(R"({"a":1})", R"([{"op":"add","path":"/b","value":[1,2]}])") ==
        R"({"a":1,"b":[1,2]})");
  CHECK(PatchText(R"({"a":[1,3]})", R"([{"op":"add","path":"/a/1","value":2}])") ==
        R"({"a":[1,2,3]})");
  CHECK(PatchText(R"({"a":[1]})", R"([{"op":"add","path":"/a/-","value":2}])") == R"({"a":[1,2]})");
  CHECK(PatchText(R"({"a":1,"b":2})", R"([{"op":"remove","path":"/a"}])") == R"({"b":2})");
  CHECK(PatchText(R"({"a":[1,2,3]})", R"([{"op":"remove","path":"/a/1"}])") == R"({"a":[1,3]})");
  CHECK(PatchText(R"({"a":1})", R"([{"op":"replace","path":"/a","value":{"x":true}}])") ==
        R"({"a":{"x":true}})");
  CHECK(PatchText(R"({"a":{"b":1},"c":{}})", R"([{"op":"move","from":"/a/b","path":"/c/d"}])") ==
        R"({"a":{},"c":{"d":1}})");
  CHECK(PatchText(R"({"a":[1,2,3]})", R"([{"op":"move","from":"/a/0","path":"/a/2"}])") ==
        R"({"a":[2,3,1]})");
  CHECK(PatchText(R"({"a":{"b":1}})", R"([{"op":"copy","from":"/a","path":"/c"}])") ==
        R"({"a":{"b":1},"c":{"b":1}})");
  // ~1 is '/', ~0 is '~' (RFC 6901 §4); "" is the whole document.
  CHECK(PatchText(R"({"a/b":1,"m~n":2})", R"([{"op":"replace","path":"/a~1b","value":3},)"
                                          R"({"op":"remove","path":"/m~0n"}])") == R"({"a/b":3})");
  CHECK(PatchText(R"({"a":1})", R"([{"op":"replace","path":"","value":{"z":0}}])") == R"({"z":0})");
  // test: numbers by value, objects whatever the member order.
  CHECK(PatchText(R"({"n":1.0,"o":{"a":1,"b":2}})",
                  R"([{"op":"test","path":"/n","value":1},)"
                  R"({"op":"test","path":"/o","value":{"b":2,"a":1}}])") ==
        R"({"n":1.0,"o":{"a":1,"b":2}})");
}

TEST_CASE("patch: JSON Patch failures are classified and stop the patch", "[patch]") {
  auto kind = [](const std::string& doc, const std::string& patch) {
    bool ok = true;
    detail::PatchError e;
    PatchText(doc, patch, &ok, &e);
    REQUIRE_FALSE(ok);
    return e.kind;
  };
  using K = detail::PatchErrorKind;
  CHECK(kind(R"({})", R"({"op":"add"})") == K::kMalformed);  // not an array
  CHECK(kind(R"({})", R"([{"op":"frobnicate","path":"/a"}])") == K::kMalformed);
  CHECK(kind(R"({})", R"([{"op":"add","path":"a","value":1}])") == K::kMalformed);  // no '/'
  CHECK(kind(R"({})", R"([{"op":"add","path":"/a~2","value":1}])") == K::kMalformed);
  CHECK(kind(R"({})", R"([{"op":"add","path":"/a"}])") == K::kMalformed);   // no value
  CHECK(kind(R"({})", R"([{"op":"move","path":"/a"}])") == K::kMalformed);  // no from
  CHECK(kind(R"({"a":[]})", R"([{"op":"add","path":"/a/x","value":1}])") == K::kMalformed);
  CHECK(kind(R"({})", R"([{"op":"remove","path":"/a"}])") == K::kConflict);
  CHECK(kind(R"({})", R"([{"op":"replace","path":"/a","value":1}])") == K::kConflict);
  CHECK(kind(R"({})", R"([{"op":"add","path":"/a/b","value":1}])") == K::kConflict);
  CHECK(kind(R"({"a":[1]})", R"([{"op":"add","path":"/a/2","value":1}])") == K::kConflict);
  CHECK(kind(R"({"a":[1]})", R"([{"op":"add","path":"/a/01","value":1}])") == K::kMalformed);
  CHECK(kind(R"({"a":1})", R"([{"op":"test","path":"/a","value":"1"}])") == K::kConflict);
  CHECK(kind(R"({"a":{}})", R"([{"op":"move","from":"/a","path":"/a/b"}])") == K::kConflict);
  CHECK(kind(R"({"a":1})", R"([{"op":"remove","path":""}])") == K::kUnprocessable);
  // Copying the document into itself doubles it each time: stopped by the growth limit, or by
  // the nesting limit first.
  std::string doubling = "[";
  for (int i = 0; i < 80; ++i) {
    if (i > 0) doubling += ',';
    doubling += R"({"op":"copy","from":"","path":"/a)" + std::to_string(i) + "\"}";
  }
  doubling += "]";
  CHECK(kind(R"({"s":")" + std::string(4096, 'x') + "\"}", doubling) == K::kUnprocessable);
  std::string deep = "[";
  for (int i = 0; i < 70; ++i) {
    if (i > 0) deep += ',';
    std::string path;
    for (int j = 0; j <= i; ++j) path += "/n";
    deep += R"({"op":"add","path":")" + path + R"(","value":{}})";
  }
  deep += "]";
  CHECK(kind(R"({})", deep) == K::kUnprocessable);
  // The failing operation is reported by its index.
  bool ok = true;
  detail::PatchError e;
  PatchText(R"({"a":1})",
            R"([{"op":"replace","path":"/a","value":2},{"op":"remove","path":"/zz"}])", &ok, &e);
  CHECK_FALSE(ok);
  CHECK(e.operation == 1);
}

TEST_CASE("patch: base64 of a Binary's data (RFC 4648 §4)", "[patch]") {
  CHECK(detail::DecodeBase64("W10=") == std::optional<std::string>("[]"));
  CHECK(detail::DecodeBase64("eyJh\nIjox fQ==") == std::optional<std::string>("{\"a\":1}"));
  CHECK(detail::DecodeBase64("") == std::optional<std::string>(""));
  CHECK_FALSE(detail::DecodeBase64("W1*="));
  CHECK_FALSE(detail::DecodeBase64("W1=0"));
}

// ------------------------------------------------------------------ FHIRPath Patch engine

std::string Op(const std::string& parts) {
  return R"({"name":"operation","part":[)" + parts + "]}";
}
std::string Params(const std::string& ops) {
  return R"({"resourceType":"Parameters","parameter":[)" + ops + "]}";
}
std::string Part(const std::string& name, const std::string& member, const std::string& value) {
  return R"({"name":")" + name + R"(",")" + member + "\":" + value + "}";
}
std::string Type(const std::string& t) {
  return Part("type", "valueCode", "\"" + t + "\"");
}
std::string Path(const std::string& p) {
  return Part("path", "valueString", "\"" + p + "\"");
}

std::string FhirPatch(const std::string& doc, const std::string& params,
                      detail::PatchError* error = nullptr) {
  Json d = J(doc);
  detail::PatchError e;
  const bool ok = detail::ApplyFhirPathPatch(d, std::string(d.Str("resourceType")), J(params), e);
  if (error != nullptr) *error = e;
  return ok ? detail::ToJsonText(d) : std::string("FAILED");
}

TEST_CASE("patch: FHIRPath Patch subset (R4 fhirpatch.html)", "[patch]") {
  const std::string pat =
      R"({"resourceType":"Patient","id":"p","name":[{"family":"A","given":["x","y"]},{"family":"B"}],)"
      R"("birthDate":"1970-01-01"})";
  // replace a primitive, by index into a list
  CHECK(
      FhirPatch(pat, Params(Op(Type("replace") + "," + Path("Patient.name[1].family") + "," +
                               Part("value", "valueString", "\"C\"")))) ==
      R"({"resourceType":"Patient","id":"p","name":[{"family":"A","given":["x","y"]},{"family":"C"}],"birthDate":"1970-01-01"})");
  // add: a repeating element appends, a single one is set
  CHECK(
      FhirPatch(pat, Params(Op(Type("add") + "," + Path("Patient") + "," +
                               Part("name", "valueString", "\"gender\"") + "," +
                               Part("value", "valueCode", "\"female\"")) +
                            "," +
                            Op(Type("add") + "," + Path("Patient") + "," +
                               Part("name", "valueString", "\"telecom\"") + "," +
                               Part("value", "valueContactPoint",
                                    R"({"system":"phone","value":"1"})")))) ==
      R"({"resourceType":"Patient","id":"p","name":[{"family":"A","given":["x","y"]},{"family":"B"}],"birthDate":"1970-01-01","gender":"female","telecom":[{"system":"phone","value":"1"}]})");
  // insert at 0, move 1 -> 0, delete one element (the list stays) and a single element
  CHECK(
      FhirPatch(pat, Params(Op(Type("insert") + "," + Path("Patient.name[0].given") + "," +
                               Part("value", "valueString", "\"w\"") + "," +
                               Part("index", "valueInteger", "0")))) ==
      R"({"resourceType":"Patient","id":"p","name":[{"family":"A","given":["w","x","y"]},{"family":"B"}],"birthDate":"1970-01-01"})");
  CHECK(
      FhirPatch(pat, Params(Op(Type("move") + "," + Path("Patient.name") + "," +
                               Part("source", "valueInteger", "1") + "," +
                               Part("destination", "valueInteger", "0")) +
                            "," + Op(Type("delete") + "," + Path("Patient.name[1].given[1]")) +
                            "," + Op(Type("delete") + "," + Path("Patient.birthDate")) + "," +
                            Op(Type("delete") + "," + Path("Patient.gender")))) ==
      R"({"resourceType":"Patient","id":"p","name":[{"family":"B"},{"family":"A","given":["x"]}]})");
  CHECK(
      FhirPatch(pat, Params(Op(Type("insert") + "," + Path("Patient.name") + "," +
                               Part("value", "valueHumanName", R"({"family":"Z"})") + "," +
                               Part("index", "valueInteger", "1")))) ==
      R"({"resourceType":"Patient","id":"p","name":[{"family":"A","given":["x","y"]},{"family":"Z"},{"family":"B"}],"birthDate":"1970-01-01"})");
  // a choice element named without its type; replace changes its type
  const std::string obs =
      R"({"resourceType":"Observation","status":"final","code":{"text":"t"},"valueString":"s"})";
  CHECK(
      FhirPatch(obs, Params(Op(Type("replace") + "," + Path("Observation.value") + "," +
                               Part("value", "valueQuantity", R"({"value":1})")))) ==
      R"({"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1}})");

  auto kind = [](const std::string& doc, const std::string& params) {
    detail::PatchError e;
    CHECK(FhirPatch(doc, params, &e) == "FAILED");
    return e.kind;
  };
  using K = detail::PatchErrorKind;
  CHECK(kind(pat, Params(Op(Type("delete") + "," + Path("Patient.name.where(family='A')")))) ==
        K::kUnsupported);
  CHECK(kind(pat, Params(Op(Type("delete") + "," + Path("Patient.name.first()")))) ==
        K::kUnsupported);
  CHECK(kind(pat, Params(Op(Type("delete") + "," + Path("Patient.nosuch")))) == K::kMalformed);
  CHECK(kind(pat, Params(Op(Type("delete") + "," + Path("Observation.status")))) == K::kMalformed);
  CHECK(kind(pat, Params(Op(Type("delete") + "," + Path("Patient.name")))) == K::kConflict);
  CHECK(kind(pat, Params(Op(Type("replace") + "," + Path("Patient.gender") + "," +
                            Part("value", "valueCode", "\"male\"")))) == K::kConflict);
  CHECK(kind(pat, Params(Op(Type("add") + "," + Path("Patient") + "," +
                            Part("name", "valueString", "\"birthDate\"") + "," +
                            Part("value", "valueDate", "\"2000-01-01\"")))) == K::kConflict);
  CHECK(
      kind(pat, Params(Op(Type("add") + "," + Path("Patient") + "," +
                          Part("name", "valueString", "\"contact\"") + "," +
                          R"({"name":"value","part":[{"name":"gender","valueCode":"male"}]})"))) ==
      K::kUnsupported);
  CHECK(kind(pat, Params(Op(Type("frob") + "," + Path("Patient")))) == K::kMalformed);
  CHECK(kind(pat, R"({"resourceType":"Patient"})") == K::kMalformed);
  CHECK(kind(pat, Params(R"({"name":"other"})")) == K::kMalformed);
}

// ------------------------------------------------------------------ the interaction

struct Fx : testing::HandlerFixture {
  using HandlerFixture::HandlerFixture;
  Response Do(const Request& r) const {
    Response resp = h->Handle(r);
    UNSCOPED_INFO(r.method << " " << r.target << " -> " << resp.status << " " << resp.body);
    return resp;
  }
};

const std::string kPat =
    R"({"resourceType":"Patient","id":"pa","active":true,)"
    R"("identifier":[{"system":"urn:mrn","value":"PA-1"}],"name":[{"family":"Old"}]})";

void PatchInteraction(Backend backend) {
  Fx f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/pa", kPat)).status == 201);

  // JSON Patch: a new version, ETag, history entry; the representation by default.
  Response r = f.Do(Req("PATCH", "/fhir/Patient/pa",
                        R"([{"op":"test","path":"/name/0/family","value":"Old"},)"
                        R"({"op":"replace","path":"/name/0/family","value":"New"},)"
                        R"({"op":"add","path":"/gender","value":"female"}])",
                        kJsonPatch));
  REQUIRE(r.status == 200);
  CHECK(r.Header("ETag") == "W/\"2\"");
  Json body = Parse(r.body);
  CHECK(body.Find("name")->Items()[0].Str("family") == "New");
  CHECK(body.Str("gender") == "female");
  CHECK(body.Find("meta")->Str("versionId") == "2");
  Json read = Parse(f.Do(Req("GET", "/fhir/Patient/pa")).body);
  CHECK(read.Find("name")->Items()[0].Str("family") == "New");
  Json history = Parse(f.Do(Req("GET", "/fhir/Patient/pa/_history")).body);
  CHECK(history.Find("entry")->Items().size() == 2);
  // The index follows the patch: the new family name is found, the old one is not.
  CHECK(Parse(f.Do(Req("GET", "/fhir/Patient?family=New")).body).Find("entry")->Items().size() ==
        1);
  CHECK(Parse(f.Do(Req("GET", "/fhir/Patient?family=Old")).body).Find("entry")->Items().empty());

  // If-Match: the current version patches, an older one is 412.
  CHECK(f.Do(Req("PATCH", "/fhir/Patient/pa", R"([{"op":"remove","path":"/gender"}])",
                 {{"Content-Type", "application/json-patch+json"}, {"If-Match", "W/\"1\""}}))
            .status == 412);
  r = f.Do(Req("PATCH", "/fhir/Patient/pa", R"([{"op":"remove","path":"/gender"}])",
               {{"Content-Type", "application/json-patch+json"},
                {"If-Match", "W/\"2\""},
                {"Prefer", "return=minimal"}}));
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(r.Header("ETag") == "W/\"3\"");

  // FHIRPath Patch with Prefer: return=OperationOutcome.
  r = f.Do(Req("PATCH", "/fhir/Patient/pa",
               Params(Op(Type("replace") + "," + Path("Patient.active") + "," +
                         Part("value", "valueBoolean", "false"))),
               {{"Content-Type", "application/fhir+json"}, {"Prefer", "return=OperationOutcome"}}));
  CHECK(r.status == 200);
  CHECK(Parse(r.body).Str("resourceType") == "OperationOutcome");
  read = Parse(f.Do(Req("GET", "/fhir/Patient/pa")).body);
  CHECK(read.Find("active")->AsBool() == false);
  CHECK(read.Find("meta")->Str("versionId") == "4");

  // Failures leave the resource unchanged (version 4).
  auto status = [&](const std::string& target, const std::string& patch,
                    std::vector<std::pair<std::string, std::string>> headers = kJsonPatch) {
    return f.Do(Req("PATCH", target, patch, std::move(headers))).status;
  };
  CHECK(status("/fhir/Patient/pa", R"([{"op":"test","path":"/active","value":true}])") == 409);
  CHECK(status("/fhir/Patient/pa", R"([{"op":"remove","path":"/birthDate"}])") == 409);
  CHECK(status("/fhir/Patient/pa", R"([{"op":"remove","path":"birthDate"}])") == 400);
  CHECK(status("/fhir/Patient/pa", R"({"op":"remove"})") == 400);
  CHECK(status("/fhir/Patient/pa", R"([{"op":"remove",)") == 400);  // malformed JSON
  CHECK(status("/fhir/Patient/pa", "") == 400);
  CHECK(status("/fhir/Patient/pa", R"([{"op":"replace","path":"/id","value":"other"}])") == 422);
  CHECK(status("/fhir/Patient/pa",
               R"([{"op":"replace","path":"/resourceType","value":"Basic"}])") == 422);
  CHECK(status("/fhir/Patient/pa", R"([])", {{"Content-Type", "application/xml-patch+xml"}}) ==
        415);
  CHECK(status("/fhir/Patient/pa", R"([])", {{"Content-Type", "application/fhir+json"}}) == 400);
  CHECK(status("/fhir/Patient/nope", R"([])") == 404);
  CHECK(f.Do(Req("GET", "/fhir/Patient/pa")).Header("ETag") == "W/\"4\"");
  // A deleted resource is 410.
  REQUIRE(f.Do(Req("PUT", "/fhir/Basic/gone", R"({"resourceType":"Basic","id":"gone"})")).status ==
          201);
  REQUIRE(f.Do(Req("DELETE", "/fhir/Basic/gone")).status == 204);
  CHECK(status("/fhir/Basic/gone", R"([])") == 410);

  // Conditional PATCH: one match patches it, none 404, several 412, no criteria 400.
  r = f.Do(Req("PATCH", "/fhir/Patient?identifier=urn:mrn|PA-1",
               R"([{"op":"add","path":"/birthDate","value":"1980-02-03"}])", kJsonPatch));
  CHECK(r.status == 200);
  CHECK(Parse(r.body).Str("id") == "pa");
  CHECK(Parse(r.body).Str("birthDate") == "1980-02-03");
  CHECK(status("/fhir/Patient?identifier=urn:mrn|NONE", R"([])") == 404);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Patient/pb",
              R"({"resourceType":"Patient","id":"pb","identifier":[{"system":"urn:mrn","value":"PA-1"}]})"))
          .status == 201);
  CHECK(status("/fhir/Patient?identifier=urn:mrn|PA-1", R"([])") == 412);
  CHECK(status("/fhir/Patient?_count=1", R"([])") == 400);
}
KAKEHASHI_BACKEND_TEST("handler: PATCH (JSON Patch, FHIRPath Patch, conditional)", "[handler]",
                       PatchInteraction)

TEST_CASE("handler: PATCH results are validated like any write (422)", "[handler]") {
  HandlerOptions options;
  options.validator = [](std::string_view json, IssueSink& sink) {
    if (json.find("\"gender\":\"robot\"") != std::string_view::npos) {
      Location where;
      where.fhir_path = "Patient.gender";
      sink.Error("conformance.binding.not_in_value_set", where, "not a gender");
    }
  };
  Fx f(Backend::kSqlite, options);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/pa", kPat)).status == 201);
  Response r = f.Do(Req("PATCH", "/fhir/Patient/pa",
                        R"([{"op":"add","path":"/gender","value":"robot"}])", kJsonPatch));
  CHECK(r.status == 422);
  CHECK(f.Do(Req("GET", "/fhir/Patient/pa")).Header("ETag") == "W/\"1\"");
}

void ConcurrentPatch(Backend backend) {
  // Two gateways append to one list by JSON Patch without If-Match: the patch applies to the
  // current version under the resource's lock, so every append survives.
  Fx f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Basic/list",
                   R"({"resourceType":"Basic","id":"list","code":{"text":"l"},"identifier":[]})"))
              .status == 201);
  auto second = f.t->OpenAnother();
  Handler h2(*second, {});
  std::atomic<int> unexpected{0};
  auto writer = [&](const Handler& h, const std::string& who) {
    for (int i = 0; i < 15; ++i) {
      const std::string patch = R"([{"op":"add","path":"/identifier/-","value":{"value":")" + who +
                                std::to_string(i) + "\"}}]";
      while (true) {
        Response r = h.Handle(Req("PATCH", "/fhir/Basic/list", patch, kJsonPatch));
        if (r.status == 200) break;
        if (r.status != 409 && r.status != 503) {
          ++unexpected;
          return;
        }
      }
    }
  };
  std::thread t1(writer, std::cref(*f.h), "a");
  std::thread t2(writer, std::cref(h2), "b");
  t1.join();
  t2.join();
  REQUIRE(unexpected == 0);
  Json final_state = Parse(f.Do(Req("GET", "/fhir/Basic/list")).body);
  CHECK(final_state.Find("identifier")->Items().size() == 30);
  CHECK(final_state.Find("meta")->Str("versionId") == "31");
}
KAKEHASHI_BACKEND_TEST("handler: concurrent PATCH loses no update (two gateways)", "[handler]",
                       ConcurrentPatch)

// ------------------------------------------------------------------ conditional references

void SingleWriteConditionalReferences(Backend backend) {
  Fx f(backend);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Patient/cr",
              R"({"resourceType":"Patient","id":"cr","identifier":[{"system":"urn:mrn","value":"CR"}]})"))
          .status == 201);
  const std::string obs_head =
      R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":")";
  // create
  Response r =
      f.Do(Req("POST", "/fhir/Observation", obs_head + R"(Patient?identifier=urn:mrn|CR"}})"));
  REQUIRE(r.status == 201);
  const std::string id(Parse(r.body).Str("id"));
  CHECK(Parse(r.body).Find("subject")->Str("reference") == "Patient/cr");
  // the index holds the resolved target
  CHECK(Parse(f.Do(Req("GET", "/fhir/Observation?subject=Patient/cr")).body)
            .Find("entry")
            ->Items()
            .size() == 1);
  // update, and conditional create/update
  r = f.Do(Req(
      "PUT", "/fhir/Observation/" + id,
      R"({"resourceType":"Observation","id":")" + id +
          R"(","status":"amended","code":{"text":"x"},"subject":{"reference":"Patient?identifier=urn%3Amrn%7CCR"}})"));
  REQUIRE(r.status == 200);
  CHECK(Parse(r.body).Find("subject")->Str("reference") == "Patient/cr");
  r = f.Do(
      Req("POST", "/fhir/Observation", obs_head + R"(Patient?identifier=urn:mrn|CR"}})",
          {{"If-None-Exist", "code:text=nomatch"}, {"Content-Type", "application/fhir+json"}}));
  CHECK(r.status == 201);
  CHECK(Parse(r.body).Find("subject")->Str("reference") == "Patient/cr");
  r = f.Do(Req(
      "PUT", "/fhir/Observation?identifier=urn:o|1",
      R"({"resourceType":"Observation","identifier":[{"system":"urn:o","value":"1"}],"status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=urn:mrn|CR"}})"));
  CHECK(r.status == 201);
  CHECK(Parse(r.body).Find("subject")->Str("reference") == "Patient/cr");
  // a patch that writes a conditional reference
  r = f.Do(Req(
      "PATCH", "/fhir/Observation/" + id,
      R"([{"op":"add","path":"/performer","value":[{"reference":"Patient?identifier=urn:mrn|CR"}]}])",
      kJsonPatch));
  CHECK(r.status == 200);
  CHECK(Parse(r.body).Find("performer")->Items()[0].Str("reference") == "Patient/cr");

  // Failures: none 404, several 412, not filtering 400; nothing stored, expression located.
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Patient/d1",
              R"({"resourceType":"Patient","id":"d1","identifier":[{"system":"urn:mrn","value":"D"}]})"))
          .status == 201);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Patient/d2",
              R"({"resourceType":"Patient","id":"d2","identifier":[{"system":"urn:mrn","value":"D"}]})"))
          .status == 201);
  r = f.Do(Req("POST", "/fhir/Observation", obs_head + R"(Patient?identifier=urn:mrn|NONE"}})"));
  CHECK(r.status == 404);
  CHECK(r.body.find("Observation.subject.reference") != std::string::npos);
  CHECK(r.body.find("NONE") == std::string::npos);  // the criteria are not repeated
  CHECK(f.Do(Req("POST", "/fhir/Observation", obs_head + R"(Patient?identifier=urn:mrn|D"}})"))
            .status == 412);
  CHECK(f.Do(Req("POST", "/fhir/Observation", obs_head + R"(Patient?_count=1"}})")).status == 400);
  CHECK(
      f
          .Do(Req(
              "PUT", "/fhir/Observation/" + id,
              R"({"resourceType":"Observation","id":")" + id +
                  R"(","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=urn:mrn|D"}})"))
          .status == 412);
  CHECK(Parse(f.Do(Req("GET", "/fhir/Observation?_summary=count")).body).Find("total")->Text() ==
        "3");
}
KAKEHASHI_BACKEND_TEST("handler: conditional references in single creates, updates and patches",
                       "[handler]", SingleWriteConditionalReferences)

// ------------------------------------------------------------------ fullUrl rewriting

void FullUrlsInUriElements(Backend backend) {
  // R4 http.html, transaction processing rules: matching links are replaced in "elements of type
  // uri, url, oid, uuid" too; a string element equal to a fullUrl is data, a canonical is not
  // replaced, a resource's own url stays (decision 0036).
  Fx f(backend);
  const std::string a = "urn:uuid:0f0d5d6e-0000-4000-8000-0000000000a1";
  const std::string o = "urn:oid:1.2.392.999.1";
  const std::string tx =
      R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":")" +
      a + R"(","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
    {"fullUrl":")" +
      o +
      R"(","resource":{"resourceType":"Organization","name":"o"},"request":{"method":"POST","url":"Organization"}},
    {"resource":{"resourceType":"CarePlan","status":"active","intent":"plan",
      "implicitRules":")" +
      a + R"(",
      "extension":[{"url":"http://example.org/ext-uri","valueUri":")" +
      o + R"("},
                   {"url":"http://example.org/ext-string","valueString":")" +
      o + R"("}],
      "identifier":[{"system":")" +
      o + R"(","value":")" + a + R"("}],
      "instantiatesCanonical":[")" +
      a + R"("],
      "instantiatesUri":["http://example.org/other",")" +
      a + R"("],
      "contained":[{"resourceType":"Endpoint","id":"ep","status":"active",
        "connectionType":{"code":"hl7-fhir-rest"},"payloadType":[{"text":"x"}],"address":")" +
      a + R"("}],
      "subject":{"reference":")" +
      a + R"("}},
     "request":{"method":"POST","url":"CarePlan"}}]})";
  Response r = f.Do(Req("POST", "/fhir", tx));
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  const auto& e = b.Find("entry")->Items();
  const std::string patient = "Patient/" + std::string(e[0].Find("resource")->Str("id"));
  const std::string org = "Organization/" + std::string(e[1].Find("resource")->Str("id"));
  const Json& cp = *e[2].Find("resource");
  CHECK(cp.Find("subject")->Str("reference") == patient);
  CHECK(cp.Str("implicitRules") == patient);                        // uri
  CHECK(cp.Find("extension")->Items()[0].Str("valueUri") == org);   // uri
  CHECK(cp.Find("extension")->Items()[1].Str("valueString") == o);  // string
  CHECK(cp.Find("identifier")->Items()[0].Str("system") == org);    // uri
  CHECK(cp.Find("identifier")->Items()[0].Str("value") == a);       // string
  CHECK(cp.Find("instantiatesCanonical")->Items()[0].Text() == a);  // canonical
  CHECK(cp.Find("instantiatesUri")->Items()[0].Text() == "http://example.org/other");
  CHECK(cp.Find("instantiatesUri")->Items()[1].Text() == patient);    // uri list
  CHECK(cp.Find("contained")->Items()[0].Str("address") == patient);  // url
}
KAKEHASHI_BACKEND_TEST("handler: transaction fullUrls are rewritten in uri/url/oid/uuid elements",
                       "[handler]", FullUrlsInUriElements)

// ------------------------------------------------------------------ PATCH entries in Bundles

void BundlePatchEntries(Backend backend) {
  Fx f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/pa", kPat)).status == 201);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/pb", R"({"resourceType":"Patient","id":"pb"})")).status ==
          201);
  // [{"op":"replace","path":"/active","value":false}] and [{"op":"test","path":"/active",...true}]
  const std::string replace_active =
      "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6ZmFsc2V9XQ==";
  const std::string test_active = "W3sib3AiOiJ0ZXN0IiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6dHJ1ZX1d";
  // [{"op":"add","path":"/active","value":true}]
  const std::string add_active = "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2FjdGl2ZSIsInZhbHVlIjp0cnVlfV0=";
  auto binary = [](const std::string& data) {
    return R"({"resourceType":"Binary","contentType":"application/json-patch+json","data":")" +
           data + "\"}";
  };
  const std::string fhirpath = Params(Op(Type("add") + "," + Path("Patient") + "," +
                                         Part("name", "valueString", "\"gender\"") + "," +
                                         Part("value", "valueCode", "\"male\"")));
  auto bundle = [](const std::string& type, const std::string& entries) {
    return R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)" + entries + "]}";
  };
  auto entry = [](const std::string& url, const std::string& resource) {
    return R"({"resource":)" + resource + R"(,"request":{"method":"PATCH","url":")" + url + "\"}}";
  };
  // A transaction: a JSON Patch in a Binary, a FHIRPath Patch in a Parameters, applied in
  // R4's PUT/PATCH step.
  Response r = f.Do(Req("POST", "/fhir",
                        bundle("transaction", entry("Patient/pa", binary(replace_active)) + "," +
                                                  entry("Patient/pb", fhirpath))));
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("status") == "200 OK");
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("etag") == "W/\"2\"");
  CHECK(Parse(f.Do(Req("GET", "/fhir/Patient/pa")).body).Find("active")->AsBool() == false);
  CHECK(Parse(f.Do(Req("GET", "/fhir/Patient/pb")).body).Str("gender") == "male");
  // A failing test fails the transaction: nothing stored (pb stays at version 2).
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", entry("Patient/pb", binary(add_active)) + "," +
                                         entry("Patient/pa", binary(test_active)))));
  CHECK(r.status == 409);
  CHECK(f.Do(Req("GET", "/fhir/Patient/pb")).Header("ETag") == "W/\"2\"");
  // A batch: the failing entry fails alone.
  r = f.Do(Req("POST", "/fhir",
               bundle("batch", entry("Patient/pa", binary(test_active)) + "," +
                                   entry("Patient/pb", binary(add_active)))));
  REQUIRE(r.status == 200);
  b = Parse(r.body);
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("status") == "409");
  CHECK(b.Find("entry")->Items()[1].Find("response")->Str("status") == "200 OK");
  CHECK(f.Do(Req("GET", "/fhir/Patient/pb")).Header("ETag") == "W/\"3\"");
  // Malformed PATCH entries are 400: a Binary of another type, bad base64, neither an id nor
  // criteria, no resource; two writes of one resource in a transaction too.
  auto status = [&](const std::string& entries) {
    return f.Do(Req("POST", "/fhir", bundle("transaction", entries))).status;
  };
  CHECK(status(entry("Patient/pa",
                     R"({"resourceType":"Binary","contentType":"text/plain","data":"eA=="})")) ==
        400);
  CHECK(status(entry("Patient/pa", binary("!!!"))) == 400);
  CHECK(status(entry("Patient?", binary(replace_active))) == 400);
  CHECK(status(R"({"request":{"method":"PATCH","url":"Patient/pa"}})") == 400);
  CHECK(status(entry("Patient/pa", fhirpath) + "," + entry("Patient/pa", fhirpath)) == 400);
  CHECK(f.Do(Req("GET", "/fhir/Patient/pa")).Header("ETag") == "W/\"2\"");
}
KAKEHASHI_BACKEND_TEST("handler: PATCH entries in transactions and batches", "[handler]",
                       BundlePatchEntries)

// Conditional PATCH entries (R4 http.html "patch": PATCH Type?criteria; "Transactions": the
// PATCH step comes after the DELETE and POST steps): no match 404, one patched, several 412.
void BundleConditionalPatchEntries(Backend backend) {
  Fx f(backend);
  auto patient = [](const std::string& id, const std::string& mrn) {
    return R"({"resourceType":"Patient","id":")" + id +
           R"(","active":true,"identifier":[{"system":"urn:mrn","value":")" + mrn + "\"}]}";
  };
  f.PutBody("Patient", "pa", patient("pa", "A"));
  f.PutBody("Patient", "pb", patient("pb", "B"));
  f.PutBody("Patient", "pc", patient("pc", "B"));
  // [{"op":"replace","path":"/active","value":false}]
  const std::string binary =
      R"({"resourceType":"Binary","contentType":"application/json-patch+json","data":")"
      "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6ZmFsc2V9XQ==\"}";
  auto patch = [&](const std::string& url) {
    return R"({"resource":)" + binary + R"(,"request":{"method":"PATCH","url":")" + url + "\"}}";
  };
  auto write = [](const std::string& method, const std::string& url, const std::string& res) {
    return R"({"resource":)" + res + R"(,"request":{"method":")" + method + R"(","url":")" + url +
           "\"}}";
  };
  auto bundle = [](const std::string& type, const std::string& entries) {
    return R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)" + entries + "]}";
  };
  auto active = [&](const std::string& id) {
    Response r = f.Do(Req("GET", "/fhir/Patient/" + id));
    REQUIRE(r.status == 200);
    return Parse(r.body).Find("active")->AsBool();
  };
  auto version = [&](const std::string& id) {
    return f.Do(Req("GET", "/fhir/Patient/" + id)).Header("ETag");
  };

  // One match: patched, the entry answers its new version.
  Response r =
      f.Do(Req("POST", "/fhir", bundle("transaction", patch("Patient?identifier=urn:mrn|A"))));
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("status") == "200 OK");
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("etag") == "W/\"2\"");
  CHECK(b.Find("entry")
            ->Items()[0]
            .Find("response")
            ->Str("location")
            .starts_with("Patient/pa/_history/2"));
  CHECK_FALSE(active("pa"));

  // No match 404, several 412, no criteria 400: the transaction fails unwritten (pa's own PUT
  // in it is not stored).
  const std::string put_pa = write("PUT", "Patient/pa", patient("pa", "A2"));
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", put_pa + "," + patch("Patient?identifier=urn:mrn|NONE"))));
  CHECK(r.status == 404);
  CHECK(r.body.find("Bundle.entry[1].request.url") != std::string::npos);
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", put_pa + "," + patch("Patient?identifier=urn:mrn|B"))));
  CHECK(r.status == 412);
  CHECK(f.Do(Req("POST", "/fhir", bundle("transaction", put_pa + "," + patch("Patient?_count=1"))))
            .status == 400);
  CHECK(version("pa") == "W/\"2\"");
  CHECK(active("pb"));
  CHECK(active("pc"));

  // Processing order: the DELETE step runs first, so the criteria that matched pb and pc match
  // pc alone (the entries are listed PATCH first).
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", patch("Patient?identifier=urn:mrn|B") + "," +
                                         R"({"request":{"method":"DELETE","url":"Patient/pb"}})")));
  REQUIRE(r.status == 200);
  b = Parse(r.body);
  CHECK(b.Find("entry")
            ->Items()[0]
            .Find("response")
            ->Str("location")
            .starts_with("Patient/pc/_history/2"));
  CHECK_FALSE(active("pc"));
  CHECK(f.Do(Req("GET", "/fhir/Patient/pb")).status == 410);

  // The POST step too comes first: a resource the transaction creates is found, and since the
  // POST writes it, the identities overlap (R4: the transaction fails, 400), as do a PUT's.
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", patch("Patient?identifier=urn:mrn|NEW") + "," +
                                         write("POST", "Patient", patient("x", "NEW")))));
  CHECK(r.status == 400);
  CHECK(r.body.find("entry 1 writes too") != std::string::npos);
  r = f.Do(Req("POST", "/fhir",
               bundle("transaction", write("PUT", "Patient/pa", patient("pa", "A")) + "," +
                                         patch("Patient?identifier=urn:mrn|A"))));
  CHECK(r.status == 400);
  CHECK(f.Ids("/fhir/Patient?identifier=urn:mrn|NEW").empty());
  CHECK(version("pa") == "W/\"2\"");

  // Two conditional patches of one resource in one transaction overlap as well.
  f.PutBody("Patient", "pd", patient("pd", "D"));
  CHECK(f.Do(Req("POST", "/fhir",
                 bundle("transaction",
                        patch("Patient?identifier=urn:mrn|D") + "," + patch("Patient?_id=pd"))))
            .status == 400);
  CHECK(active("pd"));

  // A batch: each conditional patch succeeds or fails alone.
  f.PutBody("Patient", "pe", patient("pe", "E"));
  f.PutBody("Patient", "pf", patient("pf", "F"));
  f.PutBody("Patient", "pg", patient("pg", "F"));
  r = f.Do(Req("POST", "/fhir",
               bundle("batch", patch("Patient?identifier=urn:mrn|E") + "," +
                                   patch("Patient?identifier=urn:mrn|NONE") + "," +
                                   patch("Patient?identifier=urn:mrn|F") + "," +
                                   patch("Patient?identifier=urn:mrn|D"))));
  REQUIRE(r.status == 200);
  b = Parse(r.body);
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("status") == "200 OK");
  CHECK(b.Find("entry")->Items()[1].Find("response")->Str("status") == "404");
  CHECK(b.Find("entry")->Items()[2].Find("response")->Str("status") == "412");
  CHECK(b.Find("entry")->Items()[3].Find("response")->Str("status") == "200 OK");
  CHECK_FALSE(active("pe"));
  CHECK_FALSE(active("pd"));
  CHECK(active("pf"));
}
KAKEHASHI_BACKEND_TEST("handler: conditional PATCH entries in transactions and batches",
                       "[handler]", BundleConditionalPatchEntries)

// A history entry's request is the interaction that made the version (R4 http.html "history":
// Bundle.entry.request), PATCH included (before schema 10 a patched version was listed as PUT
// and a version created by PUT as POST).
void HistoryMethods(Backend backend) {
  Fx f(backend);
  auto requests = [&](const std::string& target) {
    Response r = f.Do(Req("GET", target));
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const Json body = Parse(r.body);
    for (const Json& e : body.Find("entry")->Items()) {
      const Json& req = *e.Find("request");
      out.push_back(std::string(req.Str("method")) + " " + std::string(req.Str("url")) + " " +
                    std::string(e.Find("response")->Str("status")));
    }
    return out;
  };
  using V = std::vector<std::string>;
  f.PutBody("Patient", "ph", R"({"resourceType":"Patient","id":"ph","active":true})");
  REQUIRE(f.Do(Req("PATCH", "/fhir/Patient/ph",
                   R"([{"op":"replace","path":"/active","value":false}])", kJsonPatch))
              .status == 200);
  // [{"op":"replace","path":"/active","value":false}] in a transaction entry.
  const std::string entry =
      R"({"resource":{"resourceType":"Binary","contentType":"application/json-patch+json",)"
      R"("data":"W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6ZmFsc2V9XQ=="},)"
      R"("request":{"method":"PATCH","url":"Patient/ph"}})";
  REQUIRE(f.Do(Req("POST", "/fhir",
                   R"({"resourceType":"Bundle","type":"transaction","entry":[)" + entry + "]}"))
              .status == 200);
  f.PutBody("Patient", "ph", R"({"resourceType":"Patient","id":"ph"})");
  REQUIRE(f.Do(Req("DELETE", "/fhir/Patient/ph")).status == 204);
  CHECK(requests("/fhir/Patient/ph/_history") == V{"DELETE Patient/ph 204", "PUT Patient/ph 200",
                                                   "PATCH Patient/ph 200", "PATCH Patient/ph 200",
                                                   "PUT Patient/ph 201"});
  Response created = f.Do(Req("POST", "/fhir/Patient", R"({"resourceType":"Patient"})"));
  REQUIRE(created.status == 201);
  const std::string id(Parse(created.body).Str("id"));
  CHECK(requests("/fhir/Patient/" + id + "/_history") == V{"POST Patient 201"});
  CHECK(requests("/fhir/_history?_count=2") == V{"POST Patient 201", "DELETE Patient/ph 204"});
}
KAKEHASHI_BACKEND_TEST("handler: history entries carry the method that made each version",
                       "[handler]", HistoryMethods)

}  // namespace
}  // namespace kakehashi::gateway
