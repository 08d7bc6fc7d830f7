#include "kakehashi/gateway/handler.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "handler_util.hpp"
#include "json_support.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;

struct Fixture : testing::HandlerFixture {
  using HandlerFixture::HandlerFixture;
  // POST and return the new id.
  std::string Create(const std::string& type, const std::string& body) const {
    Response r = Do(Req("POST", "/fhir/" + type, body));
    INFO(r.body);
    REQUIRE(r.status == 201);
    return std::string(Parse(r.body).Str("id"));
  }
};

constexpr const char* kYamada =
    R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.392.100495.20.3.51.11311234567","value":"00012345"}],"name":[{"use":"official","family":"山田","given":["太郎"]},{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation","valueCode":"SYL"}],"family":"ﾔﾏﾀﾞ","given":["ﾀﾛｳ"]},{"family":"Yamada","given":["Taro"]}],"gender":"male","birthDate":"1980-04"})";
constexpr const char* kSuzuki =
    R"({"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"S-1"}],"name":[{"family":"鈴木","given":["花子"]},{"family":"スズキ","given":["ハナコ"]}],"gender":"female","birthDate":"1975-12-24"})";

void CrudAndVersioning(Backend backend) {
  Fixture f(backend);
  Response created = f.Do(Req("POST", "/fhir/Patient", kYamada));
  REQUIRE(created.status == 201);
  Json p = Parse(created.body);
  std::string id(p.Str("id"));
  CHECK(id.size() == 36);
  CHECK(p.Find("meta")->Str("versionId") == "1");
  CHECK(created.Header("ETag") == "W/\"1\"");
  CHECK(created.Header("Location") == "http://127.0.0.1:8080/fhir/Patient/" + id + "/_history/1");
  CHECK(created.Header("Last-Modified").ends_with(" GMT"));
  CHECK(created.Header("Content-Type") == "application/fhir+json; charset=utf-8");
  // Data survives: Japanese text, precision of birthDate.
  CHECK(p.Str("birthDate") == "1980-04");
  CHECK(p.Find("name")->Items()[0].Str("family") == "山田");

  Response read = f.Do(Req("GET", "/fhir/Patient/" + id));
  REQUIRE(read.status == 200);
  CHECK(read.body == created.body);
  CHECK(read.Header("ETag") == "W/\"1\"");
  Response not_modified =
      f.Do(Req("GET", "/fhir/Patient/" + id, "", {{"If-None-Match", "W/\"1\""}}));
  CHECK(not_modified.status == 304);

  // Update with the right version, then a stale If-Match: 412.
  Json changed = p;
  changed.Set("active", Json::Bool(true));
  Response upd = f.Do(
      Req("PUT", "/fhir/Patient/" + id, detail::ToJsonText(changed), {{"If-Match", "W/\"1\""}}));
  REQUIRE(upd.status == 200);
  CHECK(upd.Header("ETag") == "W/\"2\"");
  CHECK(Parse(upd.body).Find("meta")->Str("versionId") == "2");
  Response stale = f.Do(
      Req("PUT", "/fhir/Patient/" + id, detail::ToJsonText(changed), {{"If-Match", "W/\"1\""}}));
  CHECK(stale.status == 412);
  CHECK(Parse(stale.body).Str("resourceType") == "OperationOutcome");

  // vread of both versions.
  Response v1 = f.Do(Req("GET", "/fhir/Patient/" + id + "/_history/1"));
  REQUIRE(v1.status == 200);
  CHECK(Parse(v1.body).Find("active") == nullptr);
  Response v2 = f.Do(Req("GET", "/fhir/Patient/" + id + "/_history/2"));
  REQUIRE(v2.status == 200);
  CHECK(Parse(v2.body).Find("active")->AsBool());
  CHECK(f.Do(Req("GET", "/fhir/Patient/" + id + "/_history/9")).status == 404);
  // A version id is the whole segment: "1x" and "01x" name no version (not version 1).
  CHECK(f.Do(Req("GET", "/fhir/Patient/" + id + "/_history/1x")).status == 404);
  CHECK(f.Do(Req("GET", "/fhir/Patient/" + id + "/_history/0")).status == 404);

  // Prefer.
  Response minimal = f.Do(Req("PUT", "/fhir/Patient/" + id, detail::ToJsonText(changed),
                              {{"Prefer", "return=minimal"}}));
  CHECK(minimal.status == 200);
  CHECK(minimal.body.empty());
  Response outcome = f.Do(Req("PUT", "/fhir/Patient/" + id, detail::ToJsonText(changed),
                              {{"Prefer", "return=OperationOutcome"}}));
  CHECK(outcome.status == 200);
  CHECK(Parse(outcome.body).Str("resourceType") == "OperationOutcome");

  // Create-on-update with a client id; id mismatch is 400.
  Response cou =
      f.Do(Req("PUT", "/fhir/Patient/client-1", R"({"resourceType":"Patient","id":"client-1"})"));
  CHECK(cou.status == 201);
  CHECK(f.Do(Req("PUT", "/fhir/Patient/client-2", R"({"resourceType":"Patient","id":"other"})"))
            .status == 400);

  // Delete: 204, then read is 410, history shows the delete first.
  CHECK(f.Do(Req("DELETE", "/fhir/Patient/" + id)).status == 204);
  CHECK(f.Do(Req("GET", "/fhir/Patient/" + id)).status == 410);
  CHECK(f.Do(Req("DELETE", "/fhir/Patient/never")).status == 204);
  Response hist = f.Do(Req("GET", "/fhir/Patient/" + id + "/_history"));
  REQUIRE(hist.status == 200);
  Json hb = Parse(hist.body);
  CHECK(hb.Str("type") == "history");
  REQUIRE(hb.Find("entry")->Items().size() == 5);
  CHECK(hb.Find("entry")->Items()[0].Find("request")->Str("method") == "DELETE");
  CHECK(hb.Find("entry")->Items()[4].Find("request")->Str("method") == "POST");
  // Re-create after delete continues the version sequence.
  Response again =
      f.Do(Req("PUT", "/fhir/Patient/" + id, R"({"resourceType":"Patient","id":")" + id + R"("})"));
  CHECK(again.status == 201);
  CHECK(again.Header("ETag") == "W/\"6\"");
}
KAKEHASHI_BACKEND_TEST("handler: create, read, update, If-Match, vread, delete, history",
                       "[handler]", CrudAndVersioning)

void Errors(Backend backend) {
  Fixture f(backend);
  auto status_and_code = [&](const Request& r) {
    Response resp = f.Do(r);
    Json oo = Parse(resp.body);
    CHECK(oo.Str("resourceType") == "OperationOutcome");
    return std::make_pair(resp.status, std::string(oo.Find("issue")->Items()[0].Str("code")));
  };
  CHECK(status_and_code(Req("POST", "/fhir/Patient", "{\"resourceType\":")).first == 400);
  CHECK(status_and_code(Req("POST", "/fhir/Patient", "[1,2]")).first == 400);
  CHECK(status_and_code(Req("POST", "/fhir/Patient", "{\"resourceType\":\"Observation\"}")).first ==
        400);
  CHECK(status_and_code(Req("POST", "/fhir/Patient", "\xff\xfe")).first == 400);
  CHECK(status_and_code(Req("POST", "/fhir/Patient", std::string(200, '['))).first == 400);
  CHECK(status_and_code(Req("GET", "/fhir/Nonsense/1")).first == 404);
  CHECK(status_and_code(Req("GET", "/fhir/Patient/doesnotexist")).first == 404);
  CHECK(status_and_code(Req("OPTIONS", "/fhir/Patient/x")).first == 405);
  CHECK(f.Do(Req("OPTIONS", "/fhir/Patient/x")).Header("Allow") == "GET, PUT, DELETE, PATCH");
  CHECK(status_and_code(Req("GET", "/fhir/Patient?nosuchparam=1")).first == 400);
  CHECK(status_and_code(Req("GET", "/fhir/Patient?birthdate=notadate")).first == 400);
  CHECK(status_and_code(Req("GET", "/fhir/Patient/bad$id")).first == 400);
  CHECK(status_and_code(Req("GET", "/other")).first == 404);
  CHECK(status_and_code(
            Req("POST", "/fhir/Patient", "<Patient/>", {{"Content-Type", "application/fhir+xml"}}))
            .first == 415);
  CHECK(status_and_code(Req("GET", "/fhir/Patient?_format=xml")).first == 406);
  // Only the JSON names are served; Turtle and HTML are 406 like XML (not JSON under their name).
  CHECK(status_and_code(Req("GET", "/fhir/Patient?_format=ttl")).first == 406);
  CHECK(status_and_code(Req("GET", "/fhir/metadata?_format=text/html")).first == 406);
  CHECK(f.Do(Req("GET", "/fhir/metadata?_format=json")).status == 200);
  CHECK(f.Do(Req("GET", "/fhir/metadata?_format=application/fhir+json")).status == 200);
  CHECK(f.Do(Req("GET", "/fhir/metadata?_format=application%2Ffhir%2Bjson")).status == 200);
  // Accept (RFC 9110 §12.5.1): JSON forms are served, a list naming only other formats is 406;
  // _format overrides Accept.
  using Headers = std::vector<std::pair<std::string, std::string>>;
  for (const char* accept : {"application/fhir+json", "application/json; q=0.5", "*/*",
                             "application/*", "application/fhir+xml;q=1, application/json;q=0.2",
                             "application/fhir+json; fhirVersion=4.0"}) {
    INFO(accept);
    CHECK(f.Do(Req("GET", "/fhir/metadata", "", Headers{{"Accept", accept}})).status == 200);
  }
  for (const char* accept : {"application/fhir+xml", "text/turtle, application/xml",
                             "application/fhir+json;q=0", "text/*"}) {
    INFO(accept);
    auto [status, code] =
        status_and_code(Req("GET", "/fhir/Patient/doesnotexist", "", Headers{{"Accept", accept}}));
    CHECK(status == 406);
    CHECK(code == "not-supported");
  }
  CHECK(f.Do(Req("GET", "/fhir/metadata?_format=json", "",
                 Headers{{"Accept", "application/fhir+xml"}}))
            .status == 200);
  CHECK(status_and_code(Req("GET", "/fhir/metadata?_format=xml", "",
                            Headers{{"Accept", "application/fhir+json"}}))
            .first == 406);
  CHECK(status_and_code(Req("POST", "/fhir", R"({"resourceType":"Bundle","type":"collection"})"))
            .first == 400);
  CHECK(status_and_code(Req("PUT", "/fhir/Patient/x", R"({"resourceType":"Patient","id":"x"})",
                            {{"If-Match", "garbage"}}))
            .first == 400);
}
KAKEHASHI_BACKEND_TEST("handler: errors are OperationOutcomes with the right status", "[handler]",
                       Errors)

void JapaneseAndTokenSearch(Backend backend) {
  Fixture f(backend);
  std::string yamada = f.Create("Patient", kYamada);
  std::string suzuki = f.Create("Patient", kSuzuki);
  using V = std::vector<std::string>;
  CHECK(f.Ids("/fhir/Patient?name=%E5%B1%B1%E7%94%B0") == V{yamada});  // 山田
  // Full-width katakana query matches the half-width kana stored (NFKC): ヤマダ vs ﾔﾏﾀﾞ.
  CHECK(f.Ids("/fhir/Patient?name=%E3%83%A4%E3%83%9E%E3%83%80") == V{yamada});
  // Full-width Latin ＹＡＭＡ matches "Yamada" (NFKC + case fold), prefix match.
  CHECK(f.Ids("/fhir/Patient?family=%EF%BC%B9%EF%BC%A1%EF%BC%AD%EF%BC%A1") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?name:exact=yama").empty());
  CHECK(f.Ids("/fhir/Patient?name:contains=mad") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?given=%E8%8A%B1%E5%AD%90") == V{suzuki});  // 花子
  CHECK(f.Ids("/fhir/Patient?name=yamada,suzuki") == V{yamada});  // "suzuki" is not a stored name
  CHECK(f.Ids("/fhir/Patient?name=yamada,%E9%88%B4%E6%9C%A8").size() == 2);  // OR

  CHECK(f.Ids("/fhir/Patient?gender=male") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?gender:not=male") == V{suzuki});
  // :not with alternatives matches none of them (was ORed: NOT male OR NOT female = everyone).
  CHECK(f.Ids("/fhir/Patient?gender:not=male,female").empty());
  CHECK(f.Ids("/fhir/Patient?gender:not=male,other") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?identifier=urn:mrn|S-1") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?identifier=S-1") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?identifier=urn:other|S-1").empty());
  CHECK(f.Ids("/fhir/Patient?identifier=urn:mrn|").size() == 1);
  CHECK(f.Ids("/fhir/Patient?_id=" + yamada) == V{yamada});
  CHECK(f.Ids("/fhir/Patient?_id=" + yamada + "," + suzuki).size() == 2);
  CHECK(f.Ids("/fhir/Patient?gender=male&name=suzuki").empty());  // AND

  // Dates keep precision: 1980-04 is the whole month.
  CHECK(f.Ids("/fhir/Patient?birthdate=1980-04") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?birthdate=1980").size() == 1);
  CHECK(f.Ids("/fhir/Patient?birthdate=1980-04-10").empty());  // eq: search range must contain it
  CHECK(f.Ids("/fhir/Patient?birthdate=ge1980-01-01") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?birthdate=lt1980-01-01") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?birthdate=le1975-12-24") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?birthdate=gt1975-12-24") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?birthdate=sa1975-12-31") == V{yamada});
  CHECK(f.Ids("/fhir/Patient?birthdate=eb1976") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?birthdate=ne1980-04") == V{suzuki});
  CHECK(f.Ids("/fhir/Patient?birthdate=ge1975-12-24T00:00:00%2B09:00").size() == 2);
  CHECK(f.Ids("/fhir/Patient?birthdate=ap1975-12-20").size() >= 1);
  CHECK(f.Ids("/fhir/Patient?birthdate:missing=true").empty());
  CHECK(f.Ids("/fhir/Patient?_lastUpdated=gt2000-01-01").size() == 2);
  CHECK(f.Ids("/fhir/Patient?_lastUpdated=lt2000-01-01").empty());

  // _sort, _summary=count, _elements, POST _search.
  CHECK(f.Ids("/fhir/Patient?_sort=birthdate") == V{suzuki, yamada});
  CHECK(f.Ids("/fhir/Patient?_sort=-birthdate") == V{yamada, suzuki});
  Response count = f.Do(Req("GET", "/fhir/Patient?_summary=count"));
  CHECK(Parse(count.body).Find("total")->Text() == "2");
  CHECK(Parse(count.body).Find("entry") == nullptr);
  Response el = f.Do(Req("GET", "/fhir/Patient?_id=" + yamada + "&_elements=gender"));
  // The parsed Bundle must outlive `res` (a reference into it).
  const Json subset = Parse(el.body);
  const Json& res = *subset.Find("entry")->Items()[0].Find("resource");
  CHECK(res.Str("gender") == "male");
  CHECK(res.Find("name") == nullptr);
  CHECK(res.Find("meta")->Find("tag")->Items()[0].Str("code") == "SUBSETTED");
  Response post = f.Do(Req("POST", "/fhir/Patient/_search", "gender=female",
                           {{"Content-Type", "application/x-www-form-urlencoded"}}));
  REQUIRE(post.status == 200);
  CHECK(Parse(post.body).Find("entry")->Items()[0].Find("resource")->Str("id") == suzuki);
}
KAKEHASHI_BACKEND_TEST("handler: string (NFKC), token, date and result parameters", "[handler]",
                       JapaneseAndTokenSearch)

void ReferencesQuantitiesIncludes(Backend backend) {
  Fixture f(backend);
  std::string yamada = f.Create("Patient", kYamada);
  std::string suzuki = f.Create("Patient", kSuzuki);
  auto obs = [&](const std::string& patient, const std::string& value) {
    return f.Create(
        "Observation",
        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/)" +
            patient +
            R"("},"effectiveDateTime":"2024-03-05T09:30:00+09:00","valueQuantity":{"value":)" +
            value + R"(,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}})");
  };
  std::string o1 = obs(yamada, "5.4");
  std::string o2 = obs(yamada, "120");
  std::string o3 = obs(suzuki, "99.5");
  using V = std::vector<std::string>;
  CHECK(f.Ids("/fhir/Observation?patient=Patient/" + yamada) == V{o1, o2});
  CHECK(f.Ids("/fhir/Observation?patient=" + suzuki) == V{o3});
  CHECK(f.Ids("/fhir/Observation?subject=Patient/" + suzuki) == V{o3});
  CHECK(f.Ids("/fhir/Observation?subject:Patient=" + suzuki) == V{o3});
  CHECK(f.Ids("/fhir/Observation?subject=http://127.0.0.1:8080/fhir/Patient/" + suzuki) == V{o3});
  // Chained: subject:Patient.identifier and patient.name.
  CHECK(f.Ids("/fhir/Observation?subject:Patient.identifier=urn:mrn|S-1") == V{o3});
  CHECK(f.Ids("/fhir/Observation?patient.name=%E5%B1%B1%E7%94%B0") == V{o1, o2});
  CHECK(f.Ids("/fhir/Observation?patient.gender=female,male").size() == 3);
  CHECK(f.Ids("/fhir/Observation?code=http://loinc.org|2345-7").size() == 3);
  CHECK(f.Ids("/fhir/Observation?code=http://snomed.info/sct|2345-7").empty());
  // Quantity with implicit precision: 5.4 matches [5.35, 5.45).
  CHECK(f.Ids("/fhir/Observation?value-quantity=5.4") == V{o1});
  CHECK(f.Ids("/fhir/Observation?value-quantity=5") == V{o1});  // 5 means [4.5, 5.5)
  CHECK(f.Ids("/fhir/Observation?value-quantity=5.0").empty());
  CHECK(f.Ids("/fhir/Observation?value-quantity=gt99|http://unitsofmeasure.org|mg/dL") ==
        V{o2, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=lt100||mg/dL") == V{o1, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=gt99||mmol/L").empty());
  // The other prefixes (R4 search.html#prefix): ne, ge, le, sa, eb, ap (10 % of the value).
  CHECK(f.Ids("/fhir/Observation?value-quantity=ne5.4") == V{o2, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=ge99.5") == V{o2, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=le99.5") == V{o1, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=sa99.5") == V{o2});
  CHECK(f.Ids("/fhir/Observation?value-quantity=eb99.5") == V{o1});
  CHECK(f.Ids("/fhir/Observation?value-quantity=ap100") == V{o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=ap110") == V{o2, o3});
  CHECK(f.Ids("/fhir/Observation?value-quantity=5.4|http://unitsofmeasure.org|mg/dL") == V{o1});
  CHECK(f.Do(Req("GET", "/fhir/Observation?value-quantity=x5")).status == 400);
  // Date with time zone: 09:30+09:00 is 00:30Z.
  CHECK(f.Ids("/fhir/Observation?date=2024-03-05").size() == 3);
  CHECK(f.Ids("/fhir/Observation?date=gt2024-03-05T00:31:00Z").empty());
  CHECK(f.Ids("/fhir/Observation?date=ge2024-03-05T00:30:00Z").size() == 3);
  // Every precision of the search value: year, month, minutes, seconds, with a zone.
  CHECK(f.Ids("/fhir/Observation?date=2024").size() == 3);
  CHECK(f.Ids("/fhir/Observation?date=2024-03").size() == 3);
  CHECK(f.Ids("/fhir/Observation?date=2024-03-05T09:30%2B09:00").size() == 3);
  CHECK(f.Ids("/fhir/Observation?date=2024-03-05T00:30:00Z").size() == 3);
  CHECK(f.Ids("/fhir/Observation?date=2024-03-05T00:31Z").empty());
  CHECK(f.Ids("/fhir/Observation?date=lt2024-03-05T00:30:00.5Z").size() == 3);

  // _include and _revinclude.
  Response inc = f.Do(Req("GET", "/fhir/Observation?_id=" + o3 + "&_include=Observation:subject"));
  Json b = Parse(inc.body);
  REQUIRE(b.Find("entry")->Items().size() == 2);
  CHECK(b.Find("entry")->Items()[1].Find("resource")->Str("id") == suzuki);
  CHECK(b.Find("entry")->Items()[1].Find("search")->Str("mode") == "include");
  Response rev =
      f.Do(Req("GET", "/fhir/Patient?_id=" + yamada + "&_revinclude=Observation:subject"));
  CHECK(Parse(rev.body).Find("entry")->Items().size() == 3);

  // $everything.
  Response every = f.Do(Req("GET", "/fhir/Patient/" + yamada + "/$everything"));
  REQUIRE(every.status == 200);
  std::set<std::string> ids;
  Json everything = Parse(every.body);
  for (const Json& e : everything.Find("entry")->Items()) {
    ids.insert(std::string(e.Find("resource")->Str("id")));
  }
  CHECK(ids == std::set<std::string>{yamada, o1, o2});
}
KAKEHASHI_BACKEND_TEST("handler: reference, chain, quantity, _include, $everything", "[handler]",
                       ReferencesQuantitiesIncludes)

// Next links of a Bundle, relative to the server (empty: none).
std::string NextLink(const Json& bundle) {
  if (const Json* links = bundle.Find("link")) {
    for (const Json& l : links->Items()) {
      if (l.Str("relation") == "next") {
        return std::string(l.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
      }
    }
  }
  return {};
}

void SortMissingElementsAndId(Backend backend) {
  Fixture f(backend);
  std::string yamada = f.Create("Patient", kYamada);  // 1980-04
  std::string none = f.Create("Patient", R"({"resourceType":"Patient","gender":"other"})");
  std::string suzuki = f.Create("Patient", kSuzuki);  // 1975-12-24
  using V = std::vector<std::string>;
  // A resource without a value of the sort key comes last in both directions on both backends
  // (was: first ascending on SQLite, first descending on PostgreSQL).
  CHECK(f.Ids("/fhir/Patient?_sort=birthdate") == V{suzuki, yamada, none});
  CHECK(f.Ids("/fhir/Patient?_sort=-birthdate") == V{yamada, suzuki, none});
  CHECK(f.Ids("/fhir/Patient?_sort=family,_id").back() == none);
  CHECK(f.Ids("/fhir/Patient?_sort=-family").back() == none);
  // _id takes no modifier (was accepted and ignored: _id:not=x found x).
  CHECK(f.Do(Req("GET", "/fhir/Patient?_id:not=" + yamada)).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/Patient?_id:missing=true")).status == 400);

  // _elements keeps the mandatory elements (R4: Observation status and code, min 1), and a
  // choice element is named by its element name or its typed name.
  std::string obs = f.Create(
      "Observation",
      R"({"resourceType":"Observation","status":"final","code":{"text":"BP"},"subject":{"reference":"Patient/)" +
          yamada + R"("},"valueQuantity":{"value":120,"unit":"mmHg"},"note":[{"text":"n"}]})");
  for (const char* elements : {"subject,value", "subject,valueQuantity"}) {
    Response r = f.Do(Req("GET", "/fhir/Observation?_id=" + obs + "&_elements=" + elements));
    REQUIRE(r.status == 200);
    const Json b = Parse(r.body);
    const Json& res = *b.Find("entry")->Items()[0].Find("resource");
    INFO(elements << " -> " << r.body);
    CHECK(res.Str("status") == "final");
    CHECK(res.Find("code") != nullptr);
    CHECK(res.Find("subject") != nullptr);
    CHECK(res.Find("valueQuantity") != nullptr);
    CHECK(res.Find("note") == nullptr);
    CHECK(res.Find("meta")->Find("tag")->Items()[0].Str("code") == "SUBSETTED");
  }
}
KAKEHASHI_BACKEND_TEST("handler: _sort puts missing values last, _id modifiers, _elements",
                       "[handler]", SortMissingElementsAndId)

void IncludeIterate(Backend backend) {
  // _include:iterate / _revinclude:iterate (R4 search.html#include): also applied to what was
  // included, round after round. Observation -> Patient -> Practitioner; Provenance -> Observation.
  Fixture f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Practitioner/doc",
                   R"({"resourceType":"Practitioner","id":"doc","name":[{"family":"Ito"}]})"))
              .status == 201);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Patient/pat",
              R"({"resourceType":"Patient","id":"pat","generalPractitioner":[{"reference":"Practitioner/doc"}]})"))
          .status == 201);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Observation/obs",
              R"({"resourceType":"Observation","id":"obs","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pat"}})"))
          .status == 201);
  REQUIRE(
      f
          .Do(Req(
              "PUT", "/fhir/Provenance/prov",
              R"({"resourceType":"Provenance","id":"prov","target":[{"reference":"Observation/obs"}],"recorded":"2024-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/doc"}}]})"))
          .status == 201);
  auto entries = [&](const std::string& url) {
    Response r = f.Do(Req("GET", url));
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    std::set<std::string> out;
    const Json b = Parse(r.body);
    for (const Json& e : b.Find("entry")->Items()) {
      const Json& res = *e.Find("resource");
      out.insert(std::string(e.Find("search")->Str("mode")) + ":" +
                 std::string(res.Str("resourceType")) + "/" + std::string(res.Str("id")));
    }
    return out;
  };
  using S = std::set<std::string>;
  CHECK(entries("/fhir/Observation?_id=obs&_include=Observation:subject") ==
        S{"match:Observation/obs", "include:Patient/pat"});
  CHECK(entries("/fhir/Observation?_id=obs&_include=Observation:subject"
                "&_include:iterate=Patient:general-practitioner") ==
        S{"match:Observation/obs", "include:Patient/pat", "include:Practitioner/doc"});
  // Without :iterate an include of another type than the searched one is refused.
  CHECK(
      f.Do(Req("GET", "/fhir/Observation?_id=obs&_include=Patient:general-practitioner")).status ==
      400);
  CHECK(entries("/fhir/Patient?_id=pat&_revinclude=Observation:subject"
                "&_revinclude:iterate=Provenance:target") ==
        S{"match:Patient/pat", "include:Observation/obs", "include:Provenance/prov"});
  // Both kinds, and a cycle (Practitioner already included) ends.
  CHECK(entries("/fhir/Patient?_id=pat&_revinclude=Observation:subject"
                "&_revinclude:iterate=Provenance:target&_include:iterate=Provenance:agent"
                "&_include:iterate=Patient:general-practitioner") ==
        S{"match:Patient/pat", "include:Observation/obs", "include:Provenance/prov",
          "include:Practitioner/doc"});
  // The wildcard (R4 search.html "Including other resources": "*" for the search parameter
  // name): every reference parameter of the source type; a target type narrows it.
  CHECK(entries("/fhir/Provenance?_id=prov&_include=Provenance:*") ==
        S{"match:Provenance/prov", "include:Observation/obs", "include:Practitioner/doc"});
  CHECK(entries("/fhir/Provenance?_id=prov&_include=Provenance:*:Practitioner") ==
        S{"match:Provenance/prov", "include:Practitioner/doc"});
  CHECK(entries("/fhir/Practitioner?_id=doc&_revinclude=Provenance:*") ==
        S{"match:Practitioner/doc", "include:Provenance/prov"});
  CHECK(entries("/fhir/Practitioner?_id=doc&_revinclude=Patient:*"
                "&_revinclude:iterate=Observation:*") ==
        S{"match:Practitioner/doc", "include:Patient/pat", "include:Observation/obs"});
  CHECK(entries("/fhir/Patient?_id=pat&_include=Patient:*&_revinclude=Observation:*") ==
        S{"match:Patient/pat", "include:Practitioner/doc", "include:Observation/obs"});
  // A bare "*" (no source type), a type without reference parameters, an unknown target: 400.
  CHECK(f.Do(Req("GET", "/fhir/Patient?_id=pat&_include=*")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/Patient?_id=pat&_revinclude=*")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/Binary?_revinclude=Binary:*")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/Patient?_include=Patient:*:NoSuchType")).status == 400);
}
KAKEHASHI_BACKEND_TEST("handler: _include:iterate and _revinclude:iterate", "[handler]",
                       IncludeIterate)

void RevIncludeCut(Backend backend) {
  // A _revinclude brings at most max_count resources per round; when there were more, the
  // Bundle says so in an OperationOutcome entry (search mode "outcome", R4 search.html#errors)
  // instead of cutting silently (checked: before, 3 of 5 with nothing said).
  HandlerOptions options;
  options.max_count = 3;
  Fixture f(backend, options);
  const std::string p = f.Create("Patient", kYamada);
  std::vector<std::string> obs;
  for (int i = 0; i < 5; ++i) {
    obs.push_back(f.Create(
        "Observation",
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/)" +
            p + R"("}})"));
  }
  auto modes = [&](const std::string& url, std::string* diagnostics = nullptr) {
    Response r = f.Do(Req("GET", url));
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const Json b = Parse(r.body);
    for (const Json& e : b.Find("entry")->Items()) {
      const Json& res = *e.Find("resource");
      out.push_back(std::string(e.Find("search")->Str("mode")) + ":" +
                    std::string(res.Str("resourceType")));
      if (res.Str("resourceType") == "OperationOutcome" && diagnostics != nullptr) {
        const Json& issue = res.Find("issue")->Items()[0];
        CHECK(issue.Str("severity") == "warning");
        CHECK(issue.Str("code") == "incomplete");
        *diagnostics = std::string(issue.Str("diagnostics"));
      }
    }
    return out;
  };
  using V = std::vector<std::string>;
  std::string said;
  CHECK(modes("/fhir/Patient?_id=" + p + "&_revinclude=Observation:subject", &said) ==
        V{"match:Patient", "include:Observation", "include:Observation", "include:Observation",
          "outcome:OperationOutcome"});
  CHECK(said.find("Observation:subject") != std::string::npos);
  CHECK(said.find(p) == std::string::npos);  // no patient data
  // Exactly max_count: nothing was left out, nothing said.
  REQUIRE(f.Do(Req("DELETE", "/fhir/Observation/" + obs[0])).status == 204);
  REQUIRE(f.Do(Req("DELETE", "/fhir/Observation/" + obs[1])).status == 204);
  CHECK(modes("/fhir/Patient?_id=" + p + "&_revinclude=Observation:subject") ==
        V{"match:Patient", "include:Observation", "include:Observation", "include:Observation"});
}
KAKEHASHI_BACKEND_TEST("handler: a _revinclude cut at max_count says so in an outcome entry",
                       "[handler]", RevIncludeCut)

void IterateCut(Backend backend) {
  // :iterate runs at most 4 rounds; when the resources of the last round lead to more, the
  // Bundle says so in an OperationOutcome entry (search mode "outcome", R4 search.html#errors;
  // decision 0056) instead of stopping silently (checked: before, p5 was left out unsaid).
  // A chain of Patients p0 -> p1 -> ... by Patient.link.other.
  Fixture f(backend);
  auto patient = [&](int i, int links_to) {
    std::string body = R"({"resourceType":"Patient","id":"p)" + std::to_string(i) + "\"";
    if (links_to >= 0) {
      body += R"(,"link":[{"other":{"reference":"Patient/p)" + std::to_string(links_to) +
              R"("},"type":"seealso"}])";
    }
    REQUIRE(f.Do(Req("PUT", "/fhir/Patient/p" + std::to_string(i), body + "}")).status == 201);
  };
  for (int i = 0; i < 5; ++i) patient(i, i + 1);
  patient(5, -1);
  auto entries = [&](const std::string& url, std::string* said) {
    Response r = f.Do(Req("GET", url));
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const Json b = Parse(r.body);
    for (const Json& e : b.Find("entry")->Items()) {
      const Json& res = *e.Find("resource");
      out.push_back(std::string(e.Find("search")->Str("mode")) + ":" +
                    std::string(res.Str("resourceType")) + "/" + std::string(res.Str("id")));
      if (res.Str("resourceType") == "OperationOutcome") {
        const Json& issue = res.Find("issue")->Items()[0];
        CHECK(issue.Str("severity") == "warning");
        CHECK(issue.Str("code") == "incomplete");
        *said = std::string(issue.Str("diagnostics"));
      }
    }
    return out;
  };
  using V = std::vector<std::string>;
  std::string said;
  // From p0: rounds 1-4 bring p1..p4; p4 links to p5, which a fifth round would bring.
  CHECK(entries("/fhir/Patient?_id=p0&_include:iterate=Patient:link", &said) ==
        V{"match:Patient/p0", "include:Patient/p1", "include:Patient/p2", "include:Patient/p3",
          "include:Patient/p4", "outcome:OperationOutcome/"});
  CHECK(said.find(":iterate stopped after 4 rounds") != std::string::npos);
  // From p1: p2..p5 in four rounds, and p5 links nowhere: complete, nothing said.
  said.clear();
  CHECK(entries("/fhir/Patient?_id=p1&_include:iterate=Patient:link", &said) ==
        V{"match:Patient/p1", "include:Patient/p2", "include:Patient/p3", "include:Patient/p4",
          "include:Patient/p5"});
  CHECK(said.empty());
  // _revinclude:iterate the other way: from p5, p4..p1 in four rounds, p0 beyond them.
  CHECK(entries("/fhir/Patient?_id=p5&_revinclude:iterate=Patient:link", &said) ==
        V{"match:Patient/p5", "include:Patient/p4", "include:Patient/p3", "include:Patient/p2",
          "include:Patient/p1", "outcome:OperationOutcome/"});
  CHECK(said.find(":iterate stopped") != std::string::npos);
}
KAKEHASHI_BACKEND_TEST("handler: an :iterate stopped at 4 rounds says so in an outcome entry",
                       "[handler]", IterateCut)

void EverythingPaging(Backend backend) {
  // Patient/$everything's IN parameters (R4 OperationDefinition Patient-everything): _count with
  // next links, _since, _type, start/end; the compartment of another patient stays out.
  Fixture f(backend);
  std::string p = f.Create("Patient", kYamada);
  std::string other = f.Create("Patient", kSuzuki);
  auto obs = [&](const std::string& patient, const std::string& when) {
    return f.Create(
        "Observation",
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/)" +
            patient + R"("},"effectiveDateTime":")" + when + R"("})");
  };
  std::string o2023 = obs(p, "2023-06-01");
  std::string o2024 = obs(p, "2024-03-05T09:30:00+09:00");
  obs(other, "2024-03-05");
  // No `date` parameter value (Observation without effective): kept by start/end.
  std::string undated = f.Create(
      "Observation",
      R"({"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"Patient/)" +
          p + R"("}})");
  // Condition has no R4 `date` parameter: kept by start/end.
  std::string cond =
      f.Create("Condition", R"({"resourceType":"Condition","subject":{"reference":"Patient/)" + p +
                                R"("},"code":{"text":"c"}})");
  // Two resources of different types with the same id in one transaction (one lastUpdated):
  // the cursor orders by type too, so paging one by one neither skips nor repeats them.
  Response tx = f.Do(Req(
      "POST", "/fhir",
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"resource":{"resourceType":"Encounter","id":"same","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/)" +
          p +
          R"("}},"request":{"method":"PUT","url":"Encounter/same"}},)"
          R"({"resource":{"resourceType":"AllergyIntolerance","id":"same","patient":{"reference":"Patient/)" +
          p + R"("}},"request":{"method":"PUT","url":"AllergyIntolerance/same"}}]})"));
  INFO(tx.body);
  REQUIRE(tx.status == 200);
  const std::set<std::string> all{"Patient/" + p,           "Observation/" + o2023,
                                  "Observation/" + o2024,   "Observation/" + undated,
                                  "Condition/" + cond,      "Encounter/same",
                                  "AllergyIntolerance/same"};
  auto keys = [](const Json& b) {
    std::vector<std::string> out;
    if (const Json* e = b.Find("entry")) {
      for (const Json& entry : e->Items()) {
        const Json& r = *entry.Find("resource");
        out.push_back(std::string(r.Str("resourceType")) + "/" + std::string(r.Str("id")));
      }
    }
    return out;
  };
  auto get = [&](const std::string& url) {
    Response r = f.Do(Req("GET", url));
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    return Parse(r.body);
  };
  auto set_of = [&](const std::string& query) {
    std::vector<std::string> v = keys(get("/fhir/Patient/" + p + "/$everything" + query));
    return std::set<std::string>(v.begin(), v.end());
  };
  // Without parameters: everything on one page, the Patient first.
  Json whole = get("/fhir/Patient/" + p + "/$everything");
  CHECK(keys(whole).front() == "Patient/" + p);
  CHECK(set_of("") == all);
  CHECK(whole.Find("total")->Text() == "7");
  CHECK(NextLink(whole).empty());
  // Paged by 1, 2 and 3 while a resource is written mid-way: each existing one exactly once.
  for (int size : {1, 2, 3}) {
    std::set<std::string> seen;
    std::string url = "/fhir/Patient/" + p + "/$everything?_count=" + std::to_string(size);
    int pages = 0;
    std::string late;
    while (!url.empty()) {
      Json page = get(url);
      CHECK(page.Find("total")->Text() == std::to_string(7 + (late.empty() ? 0 : 1)));
      std::vector<std::string> k = keys(page);
      CHECK(static_cast<int>(k.size()) <= size);
      for (const auto& key : k) CHECK(seen.insert(key).second);
      url = NextLink(page);
      if (++pages == 2) late = "Observation/" + obs(p, "2025-01-01");
      REQUIRE(pages < 20);
    }
    for (const auto& key : all) CHECK(seen.count(key) == 1);
    CHECK(seen.count(late) == 1);  // written after the cursor: found at the end
    REQUIRE(f.Do(Req("DELETE", "/fhir/" + late)).status == 204);
  }
  // _type: only those types (the Patient only when named); repeated and comma lists are ORed.
  CHECK(set_of("?_type=Observation") == std::set<std::string>{"Observation/" + o2023,
                                                              "Observation/" + o2024,
                                                              "Observation/" + undated});
  CHECK(set_of("?_type=Patient") == std::set<std::string>{"Patient/" + p});
  CHECK(set_of("?_type=Condition,Encounter&_type=Patient") ==
        std::set<std::string>{"Patient/" + p, "Condition/" + cond, "Encounter/same"});
  // start/end: care dates through each type's `date` parameter; undated and date-less types
  // stay.
  const std::set<std::string> kept{"Patient/" + p, "Observation/" + undated, "Condition/" + cond,
                                   "Encounter/same", "AllergyIntolerance/same"};
  std::set<std::string> in2024 = kept;
  in2024.insert("Observation/" + o2024);
  CHECK(set_of("?start=2024-01-01") == in2024);
  CHECK(set_of("?start=2024-01-01&end=2024-12-31") == in2024);
  std::set<std::string> upto2023 = kept;
  upto2023.insert("Observation/" + o2023);
  CHECK(set_of("?end=2023-12") == upto2023);
  CHECK(set_of("?start=2023-06-01&end=2024-03-05") == all);
  // _since: updated at or after the instant (the Patient too).
  Json one = get("/fhir/Observation/" + o2024);
  const std::string since(one.Find("meta")->Str("lastUpdated"));
  std::set<std::string> after = set_of("?_since=" + detail::PercentEncode(since));
  CHECK(after.count("Observation/" + o2024) == 1);
  CHECK(after.count("Observation/" + o2023) == 0);
  CHECK(after.count("Patient/" + p) == 0);
  CHECK(after.count("Encounter/same") == 1);
  // _count=0: the total only.
  Json count0 = get("/fhir/Patient/" + p + "/$everything?_count=0");
  CHECK(count0.Find("total")->Text() == "7");
  CHECK(keys(count0).empty());
  // Bad parameters are refused, not ignored.
  for (const char* bad : {"?_count=x", "?_type=Nope", "?_since=never", "?start=x", "?foo=1",
                          "?_cursor=zz", "?_cursor=1_Nope_x"}) {
    INFO(bad);
    CHECK(f.Do(Req("GET", "/fhir/Patient/" + p + "/$everything" + bad)).status == 400);
  }
  CHECK(f.Do(Req("GET", "/fhir/Patient/nosuch/$everything")).status == 404);
}
KAKEHASHI_BACKEND_TEST("handler: Patient/$everything paging, _type, _since, start/end", "[handler]",
                       EverythingPaging)

void EverythingCompartment(Backend backend) {
  // Patient/$everything returns the whole R4 Patient compartment (CompartmentDefinition
  // "patient": Observation performer, Coverage beneficiary, Group member, a Patient's link, ...)
  // and, each once, what the Patient and its compartment reference (Medication, Practitioner,
  // Organization, Location). Before: only `patient`/`subject` links, nothing referenced.
  Fixture f(backend);
  auto put = [&](const std::string& type, const std::string& id, const std::string& members) {
    Response r =
        f.Do(Req("PUT", "/fhir/" + type + "/" + id,
                 R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + members + "}"));
    INFO(r.body);
    REQUIRE((r.status == 201 || r.status == 200));
  };
  put("Organization", "org", R"(,"name":"Hospital")");
  put("Organization", "payer", R"(,"name":"Insurer")");
  put("Practitioner", "dr", R"(,"name":[{"family":"Ito"}])");
  put("Practitioner", "other-dr", R"(,"name":[{"family":"Ueda"}])");
  put("Location", "ward", R"(,"name":"Ward 3")");
  put("Medication", "med", R"(,"code":{"text":"aspirin"})");
  put("Patient", "p", R"(,"managingOrganization":{"reference":"Organization/org"})");
  put("Patient", "q", R"(,"link":[{"other":{"reference":"Patient/p"},"type":"seealso"}])");
  put("Patient", "stranger", R"(,"gender":"other")");
  // In the compartment through a parameter other than patient/subject: performer, beneficiary,
  // member, link; the referenced ones (dr twice) through medication, requester, location, payor.
  put("Observation", "by-p",
      R"(,"status":"final","code":{"text":"self-measured"},"subject":{"reference":"Patient/stranger"},"performer":[{"reference":"Patient/p"}],"effectiveDateTime":"2023-01-01")");
  put("MedicationRequest", "rx",
      R"(,"status":"active","intent":"order","subject":{"reference":"Patient/p"},"medicationReference":{"reference":"Medication/med"},"requester":{"reference":"Practitioner/dr"})");
  put("Encounter", "enc",
      R"(,"status":"finished","class":{"code":"IMP"},"subject":{"reference":"Patient/p"},"participant":[{"individual":{"reference":"Practitioner/dr"}}],"location":[{"location":{"reference":"Location/ward"}}],"period":{"start":"2024-05-01"})");
  put("Coverage", "cov",
      R"(,"status":"active","beneficiary":{"reference":"Patient/p"},"payor":[{"reference":"Organization/payer"}])");
  put("Group", "grp",
      R"(,"type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p"}}])");
  // A reference to a resource that does not exist adds nothing; the stranger's own resources
  // and what only they reference stay out.
  put("Observation", "dangling",
      R"(,"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p"},"performer":[{"reference":"Practitioner/nobody"}])");
  put("Observation", "theirs",
      R"(,"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/stranger"},"performer":[{"reference":"Practitioner/other-dr"}])");
  using S = std::set<std::string>;
  const S compartment{"Patient/p",     "Patient/q",    "Observation/by-p", "MedicationRequest/rx",
                      "Encounter/enc", "Coverage/cov", "Group/grp",        "Observation/dangling"};
  const S referenced{"Organization/org", "Organization/payer", "Practitioner/dr", "Location/ward",
                     "Medication/med"};
  S all = compartment;
  all.insert(referenced.begin(), referenced.end());
  // Entries as "mode:Type/id", walking the next links (method and body for the first request).
  auto walk = [&](std::string method, std::string url, std::string body = {},
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::vector<std::string> out;
    std::string total;
    for (int page = 0; !url.empty(); ++page) {
      Response r = f.Do(Req(method, url, body, headers));
      INFO(method << " " << url << " -> " << r.body);
      REQUIRE(r.status == 200);
      const Json b = Parse(r.body);
      if (total.empty()) total = b.Find("total")->Text();
      CHECK(b.Find("total")->Text() == total);
      if (const Json* e = b.Find("entry")) {
        for (const Json& entry : e->Items()) {
          const Json& res = *entry.Find("resource");
          out.push_back(std::string(entry.Find("search")->Str("mode")) + ":" +
                        std::string(res.Str("resourceType")) + "/" + std::string(res.Str("id")));
        }
      }
      url = NextLink(b);
      method = "GET";
      body.clear();
      headers.clear();
      REQUIRE(page < 40);
    }
    CHECK(total == std::to_string(out.size()));
    return out;
  };
  auto keys = [](const std::vector<std::string>& entries) {
    S out;
    for (const auto& e : entries) out.insert(e.substr(e.find(':') + 1));
    CHECK(out.size() == entries.size());  // each once
    return out;
  };
  std::vector<std::string> whole = walk("GET", "/fhir/Patient/p/$everything");
  CHECK(keys(whole) == all);
  CHECK(whole.front() == "match:Patient/p");
  for (const auto& e : whole) {
    const std::string key = e.substr(e.find(':') + 1);
    CHECK(e.starts_with(referenced.count(key) ? "include:" : "match:"));
  }
  // Paged by 1, 2, 5: the same entries in the same order, each once.
  for (int size : {1, 2, 5}) {
    INFO("_count=" << size);
    CHECK(walk("GET", "/fhir/Patient/p/$everything?_count=" + std::to_string(size)) == whole);
  }
  // _type filters both parts: a referenced type alone, or mixed.
  CHECK(keys(walk("GET", "/fhir/Patient/p/$everything?_type=Practitioner")) ==
        S{"Practitioner/dr"});
  CHECK(keys(walk("GET", "/fhir/Patient/p/$everything?_type=Patient,Organization&_count=1")) ==
        S{"Patient/p", "Patient/q", "Organization/org", "Organization/payer"});
  // start/end: the referenced resources are those of the compartment resources kept (the
  // Encounter of 2024-05 is out, and Location/ward with it; dr stays through the request).
  S until2023 = all;
  until2023.erase("Encounter/enc");
  until2023.erase("Location/ward");
  CHECK(keys(walk("GET", "/fhir/Patient/p/$everything?end=2023-12-31")) == until2023);
  // _since filters the referenced part too.
  put("Practitioner", "dr", R"(,"name":[{"family":"Ito"}],"gender":"male")");
  const Json dr = Parse(f.Do(Req("GET", "/fhir/Practitioner/dr")).body);
  const std::string since(dr.Find("meta")->Str("lastUpdated"));
  CHECK(keys(walk("GET", "/fhir/Patient/p/$everything?_since=" + detail::PercentEncode(since))) ==
        S{"Practitioner/dr"});
  // Written between pages: the walk still serves each resource that was there once.
  {
    std::string url = "/fhir/Patient/p/$everything?_count=3";
    S seen;
    for (int page = 0; !url.empty(); ++page) {
      Response r = f.Do(Req("GET", url));
      REQUIRE(r.status == 200);
      const Json b = Parse(r.body);
      for (const Json& entry : b.Find("entry")->Items()) {
        const Json& res = *entry.Find("resource");
        CHECK(seen.insert(std::string(res.Str("resourceType")) + "/" + std::string(res.Str("id")))
                  .second);
      }
      url = NextLink(b);
      if (page == 1) put("Medication", "late", R"(,"code":{"text":"late"})");
      if (page == 2) {
        put("MedicationRequest", "rx2",
            R"(,"status":"active","intent":"order","subject":{"reference":"Patient/p"},"medicationReference":{"reference":"Medication/late"})");
      }
      REQUIRE(page < 40);
    }
    for (const auto& key : all) CHECK(seen.count(key) == 1);
  }
  // POST with a Parameters body (R4 operations.html), or a form: as the query parameters.
  const std::vector<std::string> typed =
      walk("GET", "/fhir/Patient/p/$everything?_type=Observation,Medication&_count=2");
  CHECK(
      walk(
          "POST", "/fhir/Patient/p/$everything",
          R"({"resourceType":"Parameters","parameter":[{"name":"_type","valueCode":"Observation"},{"name":"_type","valueCode":"Medication"},{"name":"_count","valueInteger":2}]})",
          {{"Content-Type", "application/fhir+json"}}) == typed);
  CHECK(walk("POST", "/fhir/Patient/p/$everything", "_type=Observation,Medication&_count=2",
             {{"Content-Type", "application/x-www-form-urlencoded"}}) == typed);
  CHECK(
      keys(walk(
          "POST", "/fhir/Patient/p/$everything?_type=Medication",
          R"({"resourceType":"Parameters","parameter":[{"name":"end","valueDate":"2023-12-31"}]})",
          {{"Content-Type", "application/fhir+json"}})) == S{"Medication/med", "Medication/late"});
  for (const char* bad :
       {R"({"resourceType":"Parameters","parameter":[{"name":"_count","valueString":"2"}]})",
        R"({"resourceType":"Parameters","parameter":[{"name":"foo","valueString":"2"}]})",
        R"({"resourceType":"Parameters","parameter":[{"name":"start"}]})",
        R"({"resourceType":"Parameters","parameter":[{"name":"start","valueDate":"x"}]})",
        R"({"resourceType":"Patient"})", "{"}) {
    INFO(bad);
    CHECK(f.Do(Req("POST", "/fhir/Patient/p/$everything", bad,
                   {{"Content-Type", "application/fhir+json"}}))
              .status == 400);
  }
  CHECK(f.Do(Req("POST", "/fhir/Patient/p/$everything", "x", {{"Content-Type", "text/plain"}}))
            .status == 415);
  // The cursor's timestamp is all digits, its type a type, its id an id (was: "12x_…" paged
  // from 12); _format is decided with the request line (406 unless JSON).
  for (const char* bad : {"?_cursor=12x_Observation_a", "?_cursor=x_Observation_a",
                          "?_cursor=ref_Nope_a", "?_cursor=ref_Observation_", "?_cursor=ref"}) {
    INFO(bad);
    CHECK(f.Do(Req("GET", std::string("/fhir/Patient/p/$everything") + bad)).status == 400);
  }
  CHECK(f.Do(Req("GET", "/fhir/Patient/p/$everything?_format=xml")).status == 406);
  CHECK(f.Do(Req("GET", "/fhir/Patient/p/$everything?_format=json")).status == 200);
}
KAKEHASHI_BACKEND_TEST("handler: Patient/$everything: the R4 compartment and what it references",
                       "[handler]", EverythingCompartment)

void Paging(Backend backend) {
  Fixture f(backend);
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) {
    created.insert(f.Create("Patient", R"({"resourceType":"Patient","gender":"other"})"));
  }
  // Walk next links while a new matching resource is written mid-way: no duplicates, nothing
  // that existed at the start is skipped.
  std::set<std::string> seen;
  std::string url = "/fhir/Patient?gender=other&_count=3";
  int pages = 0;
  while (!url.empty()) {
    Response r = f.Do(Req("GET", url));
    REQUIRE(r.status == 200);
    Json b = Parse(r.body);
    for (const Json& e : b.Find("entry")->Items()) {
      CHECK(seen.insert(std::string(e.Find("resource")->Str("id"))).second);
    }
    url.clear();
    for (const Json& l : b.Find("link")->Items()) {
      if (l.Str("relation") == "next") {
        url = std::string(l.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
      }
    }
    if (++pages == 1) f.Create("Patient", R"({"resourceType":"Patient","gender":"other"})");
    REQUIRE(pages < 10);
  }
  for (const auto& id : created) CHECK(seen.count(id) == 1);
  CHECK(seen.size() == 8);
  Response total = f.Do(Req("GET", "/fhir/Patient?_count=2&_total=accurate"));
  CHECK(Parse(total.body).Find("total")->Text() == "8");
}
KAKEHASHI_BACKEND_TEST("handler: keyset paging is stable while data changes", "[handler]", Paging)

// Walks the next links from `url`, calling between(page number) after each page; the ids in the
// order served.
std::vector<std::string> WalkIds(const Fixture& f, std::string url,
                                 const std::function<void(int)>& between = {}) {
  std::vector<std::string> ids;
  for (int page = 1; !url.empty(); ++page) {
    Response r = f.Do(Req("GET", url));
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    const Json b = Parse(r.body);
    if (const Json* e = b.Find("entry")) {
      for (const Json& entry : e->Items()) ids.emplace_back(entry.Find("resource")->Str("id"));
    }
    url = NextLink(b);
    if (between) between(page);
    REQUIRE(page < 50);
  }
  return ids;
}

void SortedPaging(Backend backend) {
  // _sort pages by a keyset over the sort keys and the id (decision 0039): writes between pages
  // neither repeat nor skip a resource that was there throughout. With the old _offset links
  // the insert before the cursor repeated a row and the delete skipped one (checked).
  Fixture f(backend);
  auto put = [&](const std::string& id, const std::string& members) {
    Response r = f.Do(Req("PUT", "/fhir/Patient/" + id,
                          R"({"resourceType":"Patient","id":")" + id + "\"" + members + "}"));
    INFO(r.body);
    REQUIRE((r.status == 201 || r.status == 200));
  };
  put("a", R"(,"birthDate":"1990-01-01","name":[{"family":"Sato"}])");
  put("b", R"(,"birthDate":"1980-05-05","name":[{"family":"Abe"}])");
  put("c", R"(,"birthDate":"1980-05-05","name":[{"family":"Abe"}])");  // tie: the id decides
  put("d", R"(,"birthDate":"1980-05-05","name":[{"family":"Kato"}])");
  put("e", R"(,"birthDate":"1970-03-03")");    // no family: last among its birthDate
  put("f", R"(,"name":[{"family":"Ueda"}])");  // no birthDate: after every dated one
  put("g", R"(,"gender":"other")");            // neither
  using V = std::vector<std::string>;
  const V order{"a", "b", "c", "d", "e", "f", "g"};
  const std::string sorted = "/fhir/Patient?_sort=-birthdate,family&_count=2";
  CHECK(WalkIds(f, sorted) == order);
  CHECK(WalkIds(f, "/fhir/Patient?_sort=-birthdate,family&_count=1") == order);
  CHECK(WalkIds(f, "/fhir/Patient?_sort=-birthdate,family&_count=3") == order);
  // Writes between pages: after page 1 (a, b) a new first resource and an update of a seen one
  // that keeps its keys; after page 2 (c, d) a seen one is deleted. The rest come once each.
  V walked = WalkIds(f, sorted, [&](int page) {
    if (page == 1) {
      put("new", R"(,"birthDate":"2000-01-01")");
      put("b", R"(,"birthDate":"1980-05-05","name":[{"family":"Abe"}],"gender":"male")");
    }
    if (page == 2) REQUIRE(f.Do(Req("DELETE", "/fhir/Patient/c")).status == 204);
  });
  CHECK(walked == order);
  // Ascending, the missing values still last; `_id` and `_lastUpdated` keys.
  CHECK(WalkIds(f, "/fhir/Patient?_sort=birthdate,_id&_count=2") ==
        V{"e", "b", "d", "a", "new", "f", "g"});
  CHECK(WalkIds(f, "/fhir/Patient?_sort=-_id&_count=3") == V{"new", "g", "f", "e", "d", "b", "a"});
  CHECK(WalkIds(f, "/fhir/Patient?_sort=_lastUpdated&_count=2").size() == 7);
  // A resource whose sort key changes between pages is served at its new place: once more when
  // it moves past the cursor ("a" after page 1, now born last), not at all when it moves before
  // it ("g", not yet served, now born first).
  walked = WalkIds(f, sorted, [&](int page) {
    if (page != 1) return;
    put("a", R"(,"birthDate":"1900-01-01","name":[{"family":"Sato"}])");
    put("g", R"(,"birthDate":"2020-01-01")");
  });
  CHECK(walked == V{"new", "a", "b", "d", "e", "a", "f"});
  // Quantities keep every digit in the cursor: 0.3 and 0.30000000000000004 are two values.
  for (const char* v : {"0.30000000000000004", "0.3", "1"}) {
    f.Create(
        "Observation",
        std::string(
            R"({"resourceType":"Observation","status":"final","code":{"text":"q"},"valueQuantity":{"value":)") +
            v + "}}");
  }
  V quantities = WalkIds(f, "/fhir/Observation?_sort=value-quantity&_count=1");
  CHECK(quantities.size() == 3);
  CHECK(std::set<std::string>(quantities.begin(), quantities.end()).size() == 3);
  // A link made before keysets (_offset) still gives its page; its next link is a cursor.
  Response old = f.Do(Req("GET", "/fhir/Patient?_sort=-_id&_count=3&_offset=3"));
  REQUIRE(old.status == 200);
  const Json ob = Parse(old.body);
  CHECK(ob.Find("entry")->Items()[0].Find("resource")->Str("id") == "e");
  CHECK(NextLink(ob).find("_cursor=s.") != std::string::npos);
  CHECK(NextLink(ob).find("_offset") == std::string::npos);
  // A cursor belongs to its order: another number of keys, another kind of value, a default
  // order's cursor with _sort, a sorted one without, garbage: 400.
  for (const char* bad :
       {"?_sort=_id,birthdate&_cursor=s.v61.a", "?_sort=birthdate&_cursor=s.v7a.a",
        "?_sort=birthdate&_cursor=12-a", "?_cursor=s.v61.a", "?_sort=_id&_cursor=s.n.a",
        "?_sort=_id&_cursor=s.vz1.a", "?_sort=_id&_cursor=s.v61.", "?_cursor=12x-a"}) {
    INFO(bad);
    CHECK(f.Do(Req("GET", std::string("/fhir/Patient") + bad)).status == 400);
  }
}
KAKEHASHI_BACKEND_TEST("handler: _sort pages by a keyset stable while data changes", "[handler]",
                       SortedPaging)

void UriSearch(Backend backend) {
  // uri parameters (R4 search.html#uri): the whole value, no system|code split; :below and
  // :above at '/' boundaries; :missing. ValueSet.url and DocumentReference location.
  Fixture f(backend);
  auto put = [&](const std::string& type, const std::string& id, const std::string& members) {
    Response r =
        f.Do(Req("PUT", "/fhir/" + type + "/" + id,
                 R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + members + "}"));
    INFO(r.body);
    REQUIRE(r.status == 201);
  };
  put("ValueSet", "v123", R"(,"url":"http://acme.org/fhir/ValueSet/123","status":"active")");
  put("ValueSet", "v1234", R"(,"url":"http://acme.org/fhir/ValueSet/1234","status":"active")");
  put("ValueSet", "vsub", R"(,"url":"http://acme.org/fhir/ValueSet/123/sub","status":"active")");
  put("ValueSet", "vroot", R"(,"url":"http://acme.org/fhir","status":"active")");
  put("ValueSet", "vbar", R"(,"url":"http://a.example/codes|2.0","status":"active")");
  put("ValueSet", "vcomma", R"(,"url":"http://acme.org/fhir/ValueSet/a,b","status":"active")");
  put("ValueSet", "vnone", R"(,"status":"active")");
  put("DocumentReference", "doc1",
      R"(,"status":"current","content":[{"attachment":{"url":"http://h.example/docs/1.pdf"}}])");
  put("DocumentReference", "doc2",
      R"(,"status":"current","content":[{"attachment":{"url":"http://h.example/docs1.pdf"}}])");
  auto ids = [&](const std::string& query) {
    std::vector<std::string> v = f.Ids("/fhir/" + query + "&_sort=_id");
    return std::set<std::string>(v.begin(), v.end());
  };
  using Set = std::set<std::string>;
  // Exact: the whole value; a string prefix or a longer URI is another value.
  CHECK(ids("ValueSet?url=http://acme.org/fhir/ValueSet/123") == Set{"v123"});
  CHECK(ids("ValueSet?url=http://acme.org/fhir/ValueSet/12").empty());
  // A '|' is part of the URI, escaped or not (a token would read system|code).
  CHECK(ids("ValueSet?url=http://a.example/codes%7C2.0") == Set{"vbar"});
  CHECK(ids("ValueSet?url=http://a.example/codes%5C%7C2.0") == Set{"vbar"});
  CHECK(ids("ValueSet?url=http://a.example/codes").empty());
  // An escaped comma is a literal; an unescaped one separates alternatives.
  CHECK(ids("ValueSet?url=http://acme.org/fhir/ValueSet/a%5C,b") == Set{"vcomma"});
  CHECK(ids("ValueSet?url=http://acme.org/fhir/ValueSet/a,http://acme.org/fhir") == Set{"vroot"});
  // :below: the value and what lies under it at a '/' boundary, not a mere string prefix.
  CHECK(ids("ValueSet?url:below=http://acme.org/fhir/ValueSet/123") == Set{"v123", "vsub"});
  CHECK(ids("ValueSet?url:below=http://acme.org/fhir/") == Set{"v123", "v1234", "vsub", "vcomma"});
  CHECK(ids("ValueSet?url:below=http://acme.org/fhir") ==
        Set{"v123", "v1234", "vsub", "vcomma", "vroot"});
  CHECK(ids("DocumentReference?location:below=http://h.example/docs") == Set{"doc1"});
  // :above: the stored URIs the value lies under (or equals).
  CHECK(ids("ValueSet?url:above=http://acme.org/fhir/ValueSet/123/sub/_history/5") ==
        Set{"v123", "vsub", "vroot"});
  CHECK(ids("ValueSet?url:above=http://acme.org/fhir/ValueSet/1234") == Set{"v1234", "vroot"});
  CHECK(ids("ValueSet?url:above=http://acme.org/fhirx/y").empty());
  CHECK(ids("DocumentReference?location:above=http://h.example/docs/1.pdf") == Set{"doc1"});
  // :missing.
  CHECK(ids("ValueSet?url:missing=true") == Set{"vnone"});
  CHECK(ids("ValueSet?url:missing=false").size() == 6);
  // Modifiers of other types are refused, not ignored.
  CHECK(f.Do(Req("GET", "/fhir/ValueSet?url:not=http://acme.org/fhir")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/ValueSet?url:text=acme")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/ValueSet?url:above=" + std::string(65, '/'))).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/ValueSet?url=")).status == 400);
}
KAKEHASHI_BACKEND_TEST("handler: uri parameters (exact, :below, :above, :missing)", "[handler]",
                       UriSearch)

// Composite parameters (R4 search.html "Composite Search Parameters"): the components' values,
// '$'-separated, must be found on ONE element (the resource for code-value-*, one
// Observation.component for component-*, either for combo-*, one DocumentReference.relatesTo).
void CompositeSearch(Backend backend) {
  Fixture f(backend);
  auto put = [&](const std::string& type, const std::string& id, const std::string& rest) {
    Response r = f.Do(Req("PUT", "/fhir/" + type + "/" + id,
                          R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + rest + "}"));
    INFO(r.body);
    REQUIRE(r.status < 300);
  };
  auto loinc = [](const std::string& code) {
    return R"({"coding":[{"system":"http://loinc.org","code":")" + code + R"("}]})";
  };
  auto mmhg = [](const std::string& value) {
    return R"({"value":)" + value +
           R"(,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"})";
  };
  auto bp = [&](const std::string& id, const std::string& systolic, const std::string& diastolic) {
    put("Observation", id,
        R"(,"status":"final","code":)" + loinc("85354-9") + R"(,"component":[{"code":)" +
            loinc("8480-6") + R"(,"valueQuantity":)" + mmhg(systolic) + R"(},{"code":)" +
            loinc("8462-4") + R"(,"valueQuantity":)" + mmhg(diastolic) + "}]");
  };
  bp("bp1", "150", "90");   // systolic above 140
  bp("bp2", "120", "145");  // only the diastolic above 140
  put("Observation", "glu",
      R"(,"status":"final","code":)" + loinc("2339-0") +
          R"(,"valueQuantity":{"value":95,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"})");
  put("Observation", "neg",
      R"(,"status":"final","code":)" + loinc("5778-6") +
          R"(,"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009"}],"text":"陰性"})");
  put("Observation", "dt",
      R"(,"status":"final","code":)" + loinc("21112-8") + R"(,"valueDateTime":"2024-05-01")");
  put("Observation", "str",
      R"(,"status":"final","code":)" + loinc("8251-1") + R"(,"valueString":"Positive a$b")");
  put("DocumentReference", "doc",
      R"(,"status":"current","content":[{"attachment":{"url":"http://h.example/1.pdf"}}],)"
      R"("relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/old1"}},)"
      R"({"code":"appends","target":{"reference":"DocumentReference/old2"}}])");
  auto ids = [&](const std::string& query) {
    std::vector<std::string> v = f.Ids("/fhir/" + query);
    return std::set<std::string>(v.begin(), v.end());
  };
  using Set = std::set<std::string>;
  // Same component: bp2's diastolic 145 is no systolic above 140.
  CHECK(ids("Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140") ==
        Set{"bp1"});
  CHECK(ids("Observation?component-code-value-quantity=8462-4$gt140") == Set{"bp2"});
  CHECK(ids("Observation?component-code-value-quantity=8480-6$lt140") == Set{"bp2"});
  // The two plain parameters ANDed pair any component with any other: both match.
  CHECK(ids("Observation?component-code=8480-6&component-value-quantity=gt140") ==
        Set{"bp1", "bp2"});
  // Units, system|code of the second component; the first component's system.
  CHECK(ids("Observation?component-code-value-quantity=8480-6$150|http://"
            "unitsofmeasure.org|mm[Hg]") == Set{"bp1"});
  CHECK(ids("Observation?component-code-value-quantity=8480-6$150||mg/dL").empty());
  CHECK(ids("Observation?component-code-value-quantity=http://other|8480-6$150").empty());
  // code-value-*: Observation.code with Observation.value[x].
  CHECK(ids("Observation?code-value-quantity=2339-0$95") == Set{"glu"});
  CHECK(ids("Observation?code-value-quantity=2339-0$lt90").empty());
  CHECK(ids("Observation?code-value-quantity=8480-6$150").empty());  // a component, not the code
  CHECK(ids("Observation?code-value-concept=5778-6$http://snomed.info/sct|260385009") ==
        Set{"neg"});
  CHECK(ids("Observation?code-value-concept=2339-0$260385009").empty());
  CHECK(ids("Observation?code-value-date=21112-8$ge2024-05") == Set{"dt"});
  CHECK(ids("Observation?code-value-date=21112-8$lt2024").empty());
  // String component: starts with, NFKC case folded; "\$" is a literal '$'.
  CHECK(ids("Observation?code-value-string=8251-1$POSI") == Set{"str"});
  CHECK(ids("Observation?code-value-string=8251-1$positive%20a%5C$b") == Set{"str"});
  CHECK(ids("Observation?code-value-string=8251-1$negative").empty());
  // combo-*: the Observation's own code and value or a component's.
  CHECK(ids("Observation?combo-code-value-quantity=8480-6$gt140") == Set{"bp1"});
  CHECK(ids("Observation?combo-code-value-quantity=2339-0$ge95") == Set{"glu"});
  CHECK(ids("Observation?combo-code-value-concept=5778-6$260385009") == Set{"neg"});
  // Comma: OR of pairs; repeated: AND.
  CHECK(ids("Observation?component-code-value-quantity=8480-6$gt140,8462-4$gt140") ==
        Set{"bp1", "bp2"});
  CHECK(ids("Observation?component-code-value-quantity=8480-6$gt100&"
            "component-code-value-quantity=8462-4$lt100") == Set{"bp1"});
  // :missing (R4 lists it for every parameter type).
  CHECK(ids("Observation?code-value-quantity:missing=false") == Set{"glu"});
  CHECK(ids("Observation?component-code-value-quantity:missing=false") == Set{"bp1", "bp2"});
  CHECK(ids("Observation?component-code-value-quantity:missing=true").size() == 4);
  // DocumentReference relationship = relatesto (reference) $ relation (token), same relatesTo.
  CHECK(ids("DocumentReference?relationship=DocumentReference/old1$replaces") == Set{"doc"});
  CHECK(ids("DocumentReference?relationship=old2$appends") == Set{"doc"});
  CHECK(ids("DocumentReference?relationship=DocumentReference/old1$appends").empty());
  // An update replaces the pairs.
  bp("bp2", "120", "80");
  CHECK(ids("Observation?component-code-value-quantity=8462-4$gt140").empty());
  CHECK(ids("Observation?component-code-value-quantity=8462-4$80") == Set{"bp2"});
  // Bad values and unsupported forms are 400, never ignored.
  for (const char* bad :
       {"component-code-value-quantity=8480-6", "component-code-value-quantity=8480-6$abc",
        "component-code-value-quantity=8480-6$1$2", "component-code-value-quantity:exact=8480-6$1",
        "code-value-date=21112-8$2024-13", "_sort=code-value-quantity"}) {
    INFO(bad);
    CHECK(f.Do(Req("GET", std::string("/fhir/Observation?") + bad)).status == 400);
  }
}
KAKEHASHI_BACKEND_TEST("handler: composite parameters pair values of one element", "[handler]",
                       CompositeSearch)

// :exact compares the value as received (R4: casing, accents, width); the plain and :contains
// searches stay NFKC case folded. :text searches a token's display texts like a string.
void ExactAndTextSearch(Backend backend) {
  Fixture f(backend);
  std::string full =
      f.Create("Patient", R"({"resourceType":"Patient","name":[{"family":"サトウ"}]})");
  std::string half = f.Create("Patient", R"({"resourceType":"Patient","name":[{"family":"ｻﾄｳ"}]})");
  std::string latin = f.Create(
      "Patient",
      R"({"resourceType":"Patient","name":[{"family":"Yamada"}],"identifier":[{"type":{"text":"カルテ番号"},"system":"urn:mrn","value":"7"}]})");
  using V = std::vector<std::string>;
  auto sorted = [&](const std::string& q) {
    V v = f.Ids(q);
    std::sort(v.begin(), v.end());
    return v;
  };
  V both{full, half};
  std::sort(both.begin(), both.end());
  CHECK(f.Ids("/fhir/Patient?name:exact=%EF%BD%BB%EF%BE%84%EF%BD%B3") == V{half});  // ｻﾄｳ
  CHECK(f.Ids("/fhir/Patient?name:exact=%E3%82%B5%E3%83%88%E3%82%A6") == V{full});  // サトウ
  CHECK(f.Ids("/fhir/Patient?family:exact=%E3%82%B5%E3%83%88%E3%82%A6") == V{full});
  CHECK(f.Ids("/fhir/Patient?name:exact=%E3%82%B5%E3%83%88").empty());      // サト: whole string
  CHECK(sorted("/fhir/Patient?name=%EF%BD%BB%EF%BE%84%EF%BD%B3") == both);  // plain: NFKC
  CHECK(sorted("/fhir/Patient?name:contains=%E3%83%88%E3%82%A6") == both);  // トウ
  CHECK(f.Ids("/fhir/Patient?name:exact=Yamada") == V{latin});
  CHECK(f.Ids("/fhir/Patient?name:exact=yamada").empty());  // casing counts
  CHECK(f.Ids("/fhir/Patient?name:exact=Yamada,%EF%BD%BB%EF%BE%84%EF%BD%B3").size() == 2);
  // :text on tokens: CodeableConcept.text, Coding.display, Identifier.type.text.
  const std::string obs = f.Create(
      "Observation",
      R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"ｸﾞﾙｺｰｽ"}],"text":"血糖値"}})");
  const std::string cond =
      f.Create("Condition", R"({"resourceType":"Condition","subject":{"reference":"Patient/)" +
                                latin + R"("},"code":{"text":"2型糖尿病"}})");
  CHECK(f.Ids("/fhir/Observation?code:text=%E3%82%B0%E3%83%AB%E3%82%B3") == V{obs});  // グルコ
  CHECK(f.Ids("/fhir/Observation?code:text=%E8%A1%80%E7%B3%96") == V{obs});           // 血糖
  CHECK(f.Ids("/fhir/Observation?combo-code:text=%E8%A1%80%E7%B3%96") == V{obs});
  CHECK(f.Ids("/fhir/Observation?code:text=2339").empty());                 // the code is no text
  CHECK(f.Ids("/fhir/Observation?code:text=%E7%B3%96").empty());            // 糖: starts with
  CHECK(f.Ids("/fhir/Condition?code:text=%EF%BC%92%E5%9E%8B") == V{cond});  // ２型 (NFKC)
  CHECK(f.Ids("/fhir/Patient?identifier:text=%E3%82%AB%E3%83%AB%E3%83%86") == V{latin});
  CHECK(f.Do(Req("GET", "/fhir/Observation?code:text=")).status == 400);
  CHECK(f.Do(Req("GET", "/fhir/Patient?name:exact=")).status == 400);
}
KAKEHASHI_BACKEND_TEST("handler: :exact keeps case and width, :text searches token texts",
                       "[handler]", ExactAndTextSearch)

void ResourceParameters(Backend backend) {
  // R4 search.html "Parameters for all resources": _profile and _source are uri parameters on
  // meta.profile / meta.source, _tag and _security token parameters on the meta.tag /
  // meta.security Codings; every type has them (Binary too).
  Fixture f(backend);
  auto put = [&](const std::string& type, const std::string& id, const std::string& members) {
    Response r =
        f.Do(Req("PUT", "/fhir/" + type + "/" + id,
                 R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + members + "}"));
    INFO(r.body);
    REQUIRE((r.status == 201 || r.status == 200));
  };
  const std::string jp_patient = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient";
  put("Patient", "m1",
      R"(,"meta":{"profile":[")" + jp_patient +
          R"("],"source":"urn:oid:1.2.392.100495.20.3.51.11311234567#batch1",)"
          R"("tag":[{"system":"http://example.org/tags","code":"import"}],)"
          R"("security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality",)"
          R"("code":"R"}]})");
  put("Patient", "m2", R"(,"meta":{"tag":[{"system":"http://example.org/tags","code":"manual"}]})");
  put("Observation", "o1",
      R"(,"meta":{"profile":["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_LabResult"]},)"
      R"("status":"final","code":{"text":"x"})");
  put("Binary", "b1",
      R"(,"meta":{"tag":[{"system":"http://example.org/tags","code":"import"}]},)"
      R"("contentType":"text/plain")");
  auto ids = [&](const std::string& query) {
    std::vector<std::string> v = f.Ids("/fhir/" + query + "&_sort=_id");
    return std::set<std::string>(v.begin(), v.end());
  };
  using Set = std::set<std::string>;
  CHECK(ids("Patient?_profile=" + jp_patient) == Set{"m1"});
  CHECK(ids("Patient?_profile:below=http://jpfhir.jp/fhir/core") == Set{"m1"});
  CHECK(ids("Patient?_profile:missing=true") == Set{"m2"});
  CHECK(ids("Observation?_profile:below=http://jpfhir.jp/fhir/core/StructureDefinition") ==
        Set{"o1"});
  CHECK(ids("Patient?_source=urn:oid:1.2.392.100495.20.3.51.11311234567%23batch1") == Set{"m1"});
  CHECK(ids("Patient?_tag=import") == Set{"m1"});
  CHECK(ids("Patient?_tag=http://example.org/tags|manual") == Set{"m2"});
  CHECK(ids("Patient?_tag=http://other.example|manual").empty());
  CHECK(ids("Patient?_tag:not=import") == Set{"m2"});
  CHECK(ids("Patient?_tag=import,manual") == Set{"m1", "m2"});
  CHECK(ids("Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R") ==
        Set{"m1"});
  CHECK(ids("Patient?_security:missing=true") == Set{"m2"});
  CHECK(ids("Binary?_tag=import") == Set{"b1"});
  // An update that drops the tag drops its row.
  put("Patient", "m1", R"(,"gender":"male")");
  CHECK(ids("Patient?_tag=import").empty());
  CHECK(ids("Patient?_profile:missing=true") == Set{"m1", "m2"});
  // The other Resource parameters are still refused, not ignored.
  for (const char* q : {"Patient?_query=x", "Patient?_tagx=import", "Patient?_tag:below=import"}) {
    INFO(q);
    CHECK(f.Do(Req("GET", std::string("/fhir/") + q)).status == 400);
  }
}
KAKEHASHI_BACKEND_TEST("handler: _profile, _tag, _security and _source on every type", "[handler]",
                       ResourceParameters)

void DeceasedAndValueString(Backend backend) {
  // Patient deceased (R4 token, "Patient.deceased.exists() and Patient.deceased != false"): true
  // for deceasedBoolean true and for any deceasedDateTime, false for deceasedBoolean false and
  // for a patient without deceased[x]. Observation value-string: "(Observation.value as string)
  // | (Observation.value as CodeableConcept).text".
  Fixture f(backend);
  auto put = [&](const std::string& type, const std::string& id, const std::string& members) {
    Response r =
        f.Do(Req("PUT", "/fhir/" + type + "/" + id,
                 R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + members + "}"));
    INFO(r.body);
    REQUIRE(r.status == 201);
  };
  put("Patient", "d1", R"(,"deceasedBoolean":true)");
  put("Patient", "d2", R"(,"deceasedDateTime":"2020-01-01")");
  put("Patient", "d3", R"(,"deceasedBoolean":false)");
  put("Patient", "d4", R"(,"gender":"female")");
  const std::string obs = R"(,"status":"final","code":{"text":"x"})";
  put("Observation", "v1", obs + R"(,"valueString":"Positive")");
  put("Observation", "v2",
      obs + R"(,"valueCodeableConcept":{"text":"陽性","coding":[{"code":"P"}]})");
  put("Observation", "v3", obs + R"(,"valueCodeableConcept":{"coding":[{"code":"N"}]})");
  put("Observation", "v4", obs + R"(,"valueQuantity":{"value":5})");
  auto ids = [&](const std::string& query) {
    std::vector<std::string> v = f.Ids("/fhir/" + query + "&_sort=_id");
    return std::set<std::string>(v.begin(), v.end());
  };
  using Set = std::set<std::string>;
  CHECK(ids("Patient?deceased=true") == Set{"d1", "d2"});
  CHECK(ids("Patient?deceased=false") == Set{"d3", "d4"});
  CHECK(ids("Patient?deceased:not=true") == Set{"d3", "d4"});
  CHECK(ids("Patient?deceased:missing=true").empty());  // the expression always has a value
  CHECK(ids("Patient?deceased=yes").empty());
  CHECK(ids("Observation?value-string=pos") == Set{"v1"});
  CHECK(ids("Observation?value-string=陽") == Set{"v2"});
  CHECK(ids("Observation?value-string:exact=陽性") == Set{"v2"});
  CHECK(ids("Observation?value-string:missing=true") == Set{"v3", "v4"});
}
KAKEHASHI_BACKEND_TEST(
    "handler: Patient deceased and Observation value-string (CodeableConcept.text)", "[handler]",
    DeceasedAndValueString)

// Prefix searches on a string parameter are driven by idx_string_prefix (the first 8 code
// points of each value, in (lastUpdated, id) order): longer values, other clauses, updates,
// deletes and keyset paging must behave as the scan did.
void StringPrefixSearch(Backend backend) {
  Fixture f(backend);
  auto patient = [&](const std::string& family, const std::string& gender) {
    return f.Create("Patient", R"({"resourceType":"Patient","name":[{"family":")" + family +
                                   R"("}],"gender":")" + gender + R"("})");
  };
  std::string a = patient("Abcdefghijk", "male");    // longer than the stored prefixes
  std::string b = patient("abcdefghXYZ", "female");  // same first 8 code points
  std::string c = patient("佐藤", "male");
  std::string d = patient("佐藤木", "female");
  std::string e = patient("ｻﾄｳ", "male");           // half-width kana, NFKC: サトウ
  std::string g = patient("abcdefg hijk", "male");  // the 8th code point is a space
  using V = std::vector<std::string>;
  CHECK(f.Ids("/fhir/Patient?name=abcdefgh") == V{a, b});
  CHECK(f.Ids("/fhir/Patient?name=abcdefg") == V{a, b, g});
  CHECK(f.Ids("/fhir/Patient?name=abcdefg%20h") == V{g});
  CHECK(f.Ids("/fhir/Patient?name=abcdefg%20x").empty());
  CHECK(f.Ids("/fhir/Patient?name=ABCDEFGHIJ") == V{a});
  CHECK(f.Ids("/fhir/Patient?family=abcdefghx") == V{b});
  CHECK(f.Ids("/fhir/Patient?name=abcdefghijkl").empty());
  CHECK(f.Ids("/fhir/Patient?name=%E4%BD%90%E8%97%A4") == V{c, d});  // 佐藤
  CHECK(f.Ids("/fhir/Patient?name=%E4%BD%90%E8%97%A4&gender=female") == V{d});
  CHECK(f.Ids("/fhir/Patient?name=%E3%82%B5%E3%83%88") == V{e});  // サト
  CHECK(f.Ids("/fhir/Patient?name:exact=%E4%BD%90%E8%97%A4") == V{c});
  // An update moves the resource to the end of the default order; a delete removes it.
  Response read = f.Do(Req("GET", "/fhir/Patient/" + c));
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/" + c, read.body)).status == 200);
  CHECK(f.Ids("/fhir/Patient?name=%E4%BD%90%E8%97%A4") == V{d, c});
  REQUIRE(f.Do(Req("DELETE", "/fhir/Patient/" + d)).status == 204);
  CHECK(f.Ids("/fhir/Patient?name=%E4%BD%90%E8%97%A4") == V{c});
  // A renamed resource no longer matches its old prefix.
  REQUIRE(
      f.Do(Req("PUT", "/fhir/Patient/" + e,
               R"({"resourceType":"Patient","id":")" + e + R"(","name":[{"family":"Tanaka"}]})"))
          .status == 200);
  CHECK(f.Ids("/fhir/Patient?name=%E3%82%B5%E3%83%88").empty());
  CHECK(f.Ids("/fhir/Patient?name=tana") == V{e});
  // Keyset paging over the prefix index.
  std::set<std::string> made;
  for (int i = 0; i < 5; ++i) made.insert(patient("Kobayashi", "other"));
  std::set<std::string> seen;
  std::string url = "/fhir/Patient?name=koba&_count=2";
  int pages = 0;
  while (!url.empty()) {
    Response r = f.Do(Req("GET", url));
    REQUIRE(r.status == 200);
    Json page = Parse(r.body);
    for (const Json& entry : page.Find("entry")->Items()) {
      CHECK(seen.insert(std::string(entry.Find("resource")->Str("id"))).second);
    }
    url.clear();
    for (const Json& l : page.Find("link")->Items()) {
      if (l.Str("relation") == "next") {
        url = std::string(l.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
      }
    }
    REQUIRE(++pages < 10);
  }
  CHECK(pages == 3);
  CHECK(seen == made);
}
KAKEHASHI_BACKEND_TEST("handler: string prefix search over the prefix index", "[handler]",
                       StringPrefixSearch)

void Transactions(Backend backend) {
  Fixture f(backend);
  const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"佐藤"}]},"request":{"method":"POST","url":"Patient"}},
    {"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000002","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000001"}},"request":{"method":"POST","url":"Observation"}},
    {"resource":{"resourceType":"Organization","id":"org1","name":"病院"},"request":{"method":"PUT","url":"Organization/org1"}}]})";
  Response r = f.Do(Req("POST", "/fhir", tx));
  INFO(r.body);
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  CHECK(b.Str("type") == "transaction-response");
  REQUIRE(b.Find("entry")->Items().size() == 3);
  CHECK(b.Find("entry")->Items()[0].Find("response")->Str("status") == "201 Created");
  std::string patient_id(b.Find("entry")->Items()[0].Find("resource")->Str("id"));
  const Json& obs = *b.Find("entry")->Items()[1].Find("resource");
  CHECK(obs.Find("subject")->Str("reference") == "Patient/" + patient_id);
  CHECK(f.Ids("/fhir/Observation?patient=" + patient_id).size() == 1);
  CHECK(f.Do(Req("GET", "/fhir/Organization/org1")).status == 200);

  // Not only `reference`: an Attachment.url and the narrative's <a href> / <img src> naming an
  // entry's fullUrl are rewritten too (R4 http.html: all matching links in the bundle); an
  // Identifier's string value equal to a fullUrl is data and stays.
  const std::string links = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000011","resource":{"resourceType":"Binary","contentType":"text/plain","data":"eA=="},"request":{"method":"POST","url":"Binary"}},
    {"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000012","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"DocumentReference","status":"current",
      "masterIdentifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000011"},
      "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:0f0d5d6e-0000-4000-8000-000000000012\">patient</a><img src='urn:uuid:0f0d5d6e-0000-4000-8000-000000000011'/><a href=\"urn:uuid:not-an-entry\">x</a></div>"},
      "subject":{"reference":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000012"},
      "content":[{"attachment":{"url":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000011"}}]},
     "request":{"method":"POST","url":"DocumentReference"}}]})";
  Response lr = f.Do(Req("POST", "/fhir", links));
  INFO(lr.body);
  REQUIRE(lr.status == 200);
  Json lb = Parse(lr.body);
  const std::string binary =
      "Binary/" + std::string(lb.Find("entry")->Items()[0].Find("resource")->Str("id"));
  const std::string patient =
      "Patient/" + std::string(lb.Find("entry")->Items()[1].Find("resource")->Str("id"));
  const Json& doc = *lb.Find("entry")->Items()[2].Find("resource");
  CHECK(doc.Find("subject")->Str("reference") == patient);
  CHECK(doc.Find("content")->Items()[0].Find("attachment")->Str("url") == binary);
  CHECK(doc.Find("text")->Str("div") == "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"" +
                                            patient + "\">patient</a><img src='" + binary +
                                            "'/><a href=\"urn:uuid:not-an-entry\">x</a></div>");
  CHECK(doc.Find("masterIdentifier")->Str("value") ==
        "urn:uuid:0f0d5d6e-0000-4000-8000-000000000011");

  // A canonical url is an identity, not a link to an entry: a ValueSet's (or a contained
  // resource's) own `url` and an extension's `url` stay as sent even when an entry's fullUrl
  // equals them (a package uploaded as a transaction: fullUrl = canonical url). Rewritten to
  // "ValueSet/vs1" they were relative (R4: "an absolute URI") and the canonical was lost; a
  // reference to the same fullUrl is still rewritten.
  const std::string canon = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"http://example.org/fhir/ValueSet/vs1","resource":{"resourceType":"ValueSet","id":"vs1","url":"http://example.org/fhir/ValueSet/vs1","status":"active",
      "contained":[{"resourceType":"CodeSystem","id":"cs","url":"http://example.org/fhir/ValueSet/vs1","status":"active","content":"not-present"}]},"request":{"method":"PUT","url":"ValueSet/vs1"}},
    {"fullUrl":"http://example.org/fhir/StructureDefinition/ext","resource":{"resourceType":"Binary","id":"ext","contentType":"text/plain"},"request":{"method":"PUT","url":"Binary/ext"}},
    {"resource":{"resourceType":"Patient","id":"canon",
      "extension":[{"url":"http://example.org/fhir/StructureDefinition/ext","valueString":"x"}],
      "photo":[{"url":"http://example.org/fhir/StructureDefinition/ext"}],
      "managingOrganization":{"reference":"http://example.org/fhir/ValueSet/vs1"}},
     "request":{"method":"PUT","url":"Patient/canon"}}]})";
  Response cr = f.Do(Req("POST", "/fhir", canon));
  INFO(cr.body);
  REQUIRE(cr.status == 200);
  Json vs = Parse(f.Do(Req("GET", "/fhir/ValueSet/vs1")).body);
  CHECK(vs.Str("url") == "http://example.org/fhir/ValueSet/vs1");
  CHECK(vs.Find("contained")->Items()[0].Str("url") == "http://example.org/fhir/ValueSet/vs1");
  Json cp = Parse(f.Do(Req("GET", "/fhir/Patient/canon")).body);
  CHECK(cp.Find("extension")->Items()[0].Str("url") ==
        "http://example.org/fhir/StructureDefinition/ext");
  CHECK(cp.Find("photo")->Items()[0].Str("url") == "Binary/ext");
  CHECK(cp.Find("managingOrganization")->Str("reference") == "ValueSet/vs1");

  // Atomic: the second entry fails (stale ifMatch), so the first is not stored either.
  const std::string bad = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Patient","id":"tx-a"},"request":{"method":"PUT","url":"Patient/tx-a"}},
    {"resource":{"resourceType":"Organization","id":"org1","name":"x"},"request":{"method":"PUT","url":"Organization/org1","ifMatch":"W/\"7\""}}]})";
  Response failed = f.Do(Req("POST", "/fhir", bad));
  CHECK(failed.status == 412);
  CHECK(f.Do(Req("GET", "/fhir/Patient/tx-a")).status == 404);

  // Batch: entries succeed or fail independently.
  const std::string batch = R"({"resourceType":"Bundle","type":"batch","entry":[
    {"resource":{"resourceType":"Patient","id":"b-a"},"request":{"method":"PUT","url":"Patient/b-a"}},
    {"resource":{"resourceType":"Organization","id":"org1"},"request":{"method":"PUT","url":"Organization/org1","ifMatch":"W/\"7\""}},
    {"request":{"method":"GET","url":"Patient/b-a"}},
    {"request":{"method":"GET","url":"http://127.0.0.1:8080/fhir/Patient/b-a"}}]})";
  Response br = f.Do(Req("POST", "/fhir", batch));
  REQUIRE(br.status == 200);
  Json bb = Parse(br.body);
  CHECK(bb.Str("type") == "batch-response");
  CHECK(bb.Find("entry")->Items()[0].Find("response")->Str("status") == "201 Created");
  CHECK(bb.Find("entry")->Items()[1].Find("response")->Str("status") == "412");
  CHECK(bb.Find("entry")->Items()[1].Find("response")->Find("outcome") != nullptr);
  CHECK(bb.Find("entry")->Items()[2].Find("resource")->Str("id") == "b-a");
  // request.url may also be absolute under this server's base (Bundle.entry.request.url).
  CHECK(bb.Find("entry")->Items()[3].Find("response")->Str("status") == "200 OK");
  CHECK(bb.Find("entry")->Items()[3].Find("resource")->Str("id") == "b-a");

  // Malformed Bundles.
  CHECK(
      f
          .Do(Req(
              "POST", "/fhir",
              R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]})"))
          .status == 400);
  CHECK(f.Do(Req("POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":{}})"))
            .status == 400);
  CHECK(
      f
          .Do(Req(
              "POST", "/fhir",
              R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient"}}]})"))
          .status == 400);
  CHECK(
      f
          .Do(Req(
              "POST", "/fhir",
              R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Patient"}}]})"))
          .status == 400);
}
KAKEHASHI_BACKEND_TEST("handler: transaction (atomic, urn:uuid rewritten) and batch", "[handler]",
                       Transactions)

void RepeatedFullUrls(Backend backend) {
  // R4 Bundle invariant bdl-7: a fullUrl is unique in a Bundle unless the entries carry different
  // meta.versionId; a transaction's entries must not overlap at all (http.html, transaction
  // processing rules), else a reference to the fullUrl would name either new resource.
  Fixture f(backend);
  auto bundle = [](std::string_view type, std::string_view v1, std::string_view v2) {
    auto meta = [](std::string_view v) {
      return v.empty() ? std::string() : R"("meta":{"versionId":")" + std::string(v) + R"("},)";
    };
    return R"({"resourceType":"Bundle","type":")" + std::string(type) + R"(","entry":[
      {"fullUrl":"urn:uuid:9d1b7c52-0f6e-4a58-b2c4-3e6f1a2b4c5d","resource":{"resourceType":"Patient",)" +
           meta(v1) + R"("gender":"male"},"request":{"method":"POST","url":"Patient"}},
      {"fullUrl":"urn:uuid:9d1b7c52-0f6e-4a58-b2c4-3e6f1a2b4c5d","resource":{"resourceType":"Patient",)" +
           meta(v2) + R"("gender":"female"},"request":{"method":"POST","url":"Patient"}},
      {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
        "subject":{"reference":"urn:uuid:9d1b7c52-0f6e-4a58-b2c4-3e6f1a2b4c5d"}},
       "request":{"method":"POST","url":"Observation"}}]})";
  };
  for (auto [v1, v2] : {std::pair{"", ""}, std::pair{"1", "2"}}) {
    Response r = f.Do(Req("POST", "/fhir", bundle("transaction", v1, v2)));
    INFO(r.body);
    REQUIRE(r.status == 400);
    const Json oo = Parse(r.body);
    const Json& issue = oo.Find("issue")->Items()[0];
    CHECK(issue.Find("expression")->Items()[0].Text() == "Bundle.entry[1].fullUrl");
    CHECK(std::string(issue.Str("diagnostics")).find("repeats the fullUrl of entry 0") !=
          std::string::npos);
    CHECK(f.Ids("/fhir/Patient").empty());
    CHECK(f.Ids("/fhir/Observation").empty());
  }
  // A batch fails the repeating entry alone; different versions keep bdl-7.
  Response same = f.Do(Req("POST", "/fhir", bundle("batch", "", "")));
  INFO(same.body);
  REQUIRE(same.status == 200);
  const Json b = Parse(same.body);
  const auto& e = b.Find("entry")->Items();
  REQUIRE(e.size() == 3);
  CHECK(e[0].Find("response")->Str("status") == "201 Created");
  CHECK(e[1].Find("response")->Str("status") == "400");
  CHECK(e[2].Find("response")->Str("status") == "201 Created");
  CHECK(f.Ids("/fhir/Patient").size() == 1);
  Response versions = f.Do(Req("POST", "/fhir", bundle("batch", "1", "2")));
  INFO(versions.body);
  REQUIRE(versions.status == 200);
  CHECK(Parse(versions.body).Find("entry")->Items()[1].Find("response")->Str("status") ==
        "201 Created");
  CHECK(f.Ids("/fhir/Patient").size() == 3);
}
KAKEHASHI_BACKEND_TEST("handler: a repeated fullUrl fails a transaction, its entry in a batch",
                       "[handler]", RepeatedFullUrls)

void TransactionGets(Backend backend) {
  // A transaction's GET entries are answered after its writes and see them (R4 http.html,
  // transaction processing rules: DELETE, POST, PUT, then GET); decision 0030.
  Fixture f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/tg-old",
                   R"({"resourceType":"Patient","id":"tg-old","name":[{"family":"Kato"}]})"))
              .status == 201);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/tg-gone", R"({"resourceType":"Patient","id":"tg-gone"})"))
              .status == 201);
  // GETs listed first still run last: a read and a search of the resource the PUT creates, a
  // read of what the DELETE removes would fail, so it is read by version instead.
  const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"request":{"method":"GET","url":"Patient/tg-new"}},
    {"request":{"method":"GET","url":"Patient?family=Kato&_sort=_id"}},
    {"request":{"method":"GET","url":"Patient/tg-gone/_history/1"}},
    {"resource":{"resourceType":"Patient","id":"tg-new","name":[{"family":"Kato"}]},"request":{"method":"PUT","url":"Patient/tg-new"}},
    {"request":{"method":"DELETE","url":"Patient/tg-gone"}}]})";
  Response r = f.Do(Req("POST", "/fhir", tx));
  INFO(r.body);
  REQUIRE(r.status == 200);
  Json b = Parse(r.body);
  CHECK(b.Str("type") == "transaction-response");
  const auto& e = b.Find("entry")->Items();
  REQUIRE(e.size() == 5);
  CHECK(e[0].Find("response")->Str("status") == "200 OK");
  CHECK(e[0].Find("resource")->Str("id") == "tg-new");
  CHECK(e[0].Find("resource")->Find("meta")->Str("versionId") == "1");
  const Json& found = *e[1].Find("resource");
  CHECK(found.Str("type") == "searchset");
  REQUIRE(found.Find("total") != nullptr);
  CHECK(found.Find("total")->Text() == "2");
  REQUIRE(found.Find("entry")->Items().size() == 2);
  CHECK(found.Find("entry")->Items()[0].Find("resource")->Str("id") == "tg-new");
  CHECK(found.Find("entry")->Items()[1].Find("resource")->Str("id") == "tg-old");
  CHECK(e[2].Find("resource")->Str("id") == "tg-gone");
  CHECK(e[3].Find("response")->Str("status") == "201 Created");
  CHECK(e[4].Find("response")->Str("status") == "204 No Content");

  // A GET of what the transaction leaves absent fails it as a whole: nothing is stored.
  auto fails = [&](const std::string& get, int status) {
    const std::string bad =
        R"({"resourceType":"Bundle","type":"transaction","entry":[)"
        R"({"resource":{"resourceType":"Patient","id":"tg-no"},"request":{"method":"PUT","url":"Patient/tg-no"}},)"
        R"({"request":{"method":"GET","url":")" +
        get + R"("}}]})";
    Response failed = f.Do(Req("POST", "/fhir", bad));
    INFO(get << " -> " << failed.body);
    CHECK(failed.status == status);
    CHECK(failed.body.find("nothing was stored") != std::string::npos);
    CHECK(f.Do(Req("GET", "/fhir/Patient/tg-no")).status == 404);
  };
  fails("Patient/tg-none", 404);             // read of an unknown id (commit thread, point read)
  fails("Patient/tg-gone", 410);             // read of a deleted one
  fails("Patient/tg-new/_history/9", 404);   // vread of an unknown version
  fails("Patient/tg-gone/_history/2", 410);  // vread of a deletion
  fails("Patient/tg-none/_history", 404);    // history of an unknown id
  fails("Patient/tg-gone/$everything", 404);
  fails("Patient?nosuch=1", 400);  // decided by the URL alone, before anything is written
  fails("Nothing/x", 404);
  // The read the transaction's own PUT makes good succeeds.
  const std::string own =
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"request":{"method":"GET","url":"Patient/tg-own/_history"}},)"
      R"({"request":{"method":"GET","url":"http://127.0.0.1:8080/fhir/Patient/tg-own"}},)"
      R"({"resource":{"resourceType":"Patient","id":"tg-own"},"request":{"method":"PUT","url":"Patient/tg-own"}}]})";
  Response ok = f.Do(Req("POST", "/fhir", own));
  INFO(ok.body);
  CHECK(ok.status == 200);
  CHECK(ok.body.find("\"type\":\"history\"") != std::string::npos);
  // An absolute request.url under this server's base is the same GET.
  CHECK(Parse(ok.body).Find("entry")->Items()[1].Find("resource")->Str("id") == "tg-own");

  // Only GET entries: answered without a write transaction; a failing GET fails it.
  Response gets = f.Do(Req("POST", "/fhir",
                           R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                           R"({"request":{"method":"GET","url":"Patient/tg-old"}}]})"));
  CHECK(gets.status == 200);
  CHECK(Parse(gets.body).Find("entry")->Items()[0].Find("resource")->Str("id") == "tg-old");
  CHECK(f.Do(Req("POST", "/fhir",
                 R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                 R"({"request":{"method":"GET","url":"Patient/tg-old"}},)"
                 R"({"request":{"method":"GET","url":"Patient/tg-none"}}]})"))
            .status == 404);

  // Identities overlapping in the write steps fail the transaction (R4 http.html).
  Response overlap = f.Do(Req(
      "POST", "/fhir",
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"resource":{"resourceType":"Patient","id":"tg-twice"},"request":{"method":"PUT","url":"Patient/tg-twice"}},)"
      R"({"request":{"method":"DELETE","url":"Patient/tg-twice"}}]})"));
  CHECK(overlap.status == 400);
  CHECK(overlap.body.find("another entry writes too") != std::string::npos);
  CHECK(f.Do(Req("GET", "/fhir/Patient/tg-twice")).status == 404);
}
KAKEHASHI_BACKEND_TEST("handler: a transaction's GET entries see its writes", "[handler]",
                       TransactionGets)

void TransactionGetsDecidedByUrl(Backend backend) {
  // A GET entry that fails on its URL alone (a history's parameters, a type operation, which
  // reads no resource of the store) fails the transaction before anything is written, as it
  // did when GET entries ran inside the transaction (R4 http.html: a transaction succeeds or
  // fails as a whole). Was: the PUT committed and only the GET's entry carried the 400.
  std::atomic<int> probes{0};
  HandlerOptions options;
  TypeOperation probe;
  probe.type = "Patient";
  probe.name = "probe";
  probe.definition = "http://example.org/OperationDefinition/probe";
  probe.run = [&probes](const Request& request) {
    ++probes;
    Response r;
    if (request.target.find("code=") == std::string::npos) {
      r.status = 400;
      r.body =
          R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required"}]})";
      return r;
    }
    r.body = R"({"resourceType":"Parameters","parameter":[{"name":"result","valueBoolean":true}]})";
    return r;
  };
  options.type_operations.push_back(std::move(probe));
  Fixture f(backend, std::move(options));
  auto tx = [](const std::string& get) {
    return R"({"resourceType":"Bundle","type":"transaction","entry":[)"
           R"({"resource":{"resourceType":"Patient","id":"tgu"},"request":{"method":"PUT","url":"Patient/tgu"}},)"
           R"({"request":{"method":"GET","url":")" +
           get + R"("}}]})";
  };
  for (const char* get :
       {"_history?_count=x", "Patient/_history?_since=never", "Patient/tgu/_history?nosuch=1",
        "Patient/$probe", "Patient/tgu/$everything?_count=x", "Patient/tgu/$everything?_type=No"}) {
    Response r = f.Do(Req("POST", "/fhir", tx(get)));
    INFO(get << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("nothing was stored") != std::string::npos);
    CHECK(f.Do(Req("GET", "/fhir/Patient/tgu")).status == 404);
  }
  CHECK(probes == 1);
  // An operation that succeeds is answered once, with its own body.
  Response ok = f.Do(Req("POST", "/fhir", tx("Patient/$probe?code=1")));
  INFO(ok.body);
  REQUIRE(ok.status == 200);
  CHECK(probes == 2);
  Json b = Parse(ok.body);
  const auto& e = b.Find("entry")->Items();
  REQUIRE(e.size() == 2);
  CHECK(e[1].Find("resource")->Str("resourceType") == "Parameters");
  CHECK(e[1].Find("response")->Str("status") == "200 OK");
  CHECK(f.Do(Req("GET", "/fhir/Patient/tgu")).status == 200);
}
KAKEHASHI_BACKEND_TEST("handler: a transaction's GET decided by its URL fails it unwritten",
                       "[handler]", TransactionGetsDecidedByUrl)

void ConditionalCreate(Backend backend) {
  Fixture f(backend);
  std::string id = f.Create("Patient", kSuzuki);
  Response again =
      f.Do(Req("POST", "/fhir/Patient", kSuzuki, {{"If-None-Exist", "identifier=urn:mrn|S-1"}}));
  CHECK(again.status == 200);
  CHECK(Parse(again.body).Str("id") == id);
  Response fresh =
      f.Do(Req("POST", "/fhir/Patient", kYamada, {{"If-None-Exist", "identifier=urn:mrn|nope"}}));
  CHECK(fresh.status == 201);
  f.Create("Patient", kSuzuki);
  Response many =
      f.Do(Req("POST", "/fhir/Patient", kSuzuki, {{"If-None-Exist", "identifier=urn:mrn|S-1"}}));
  CHECK(many.status == 412);
  // Paging parameters are not criteria (they would hide matches).
  const std::size_t patients = f.Ids("/fhir/Patient").size();
  Response paged = f.Do(Req("POST", "/fhir/Patient", kYamada,
                            {{"If-None-Exist", "identifier=urn:mrn|Y-9&_offset=1"}}));
  CHECK(paged.status == 400);
  CHECK(f.Ids("/fhir/Patient").size() == patients);
}
KAKEHASHI_BACKEND_TEST("handler: conditional create (If-None-Exist)", "[handler]",
                       ConditionalCreate)

void ConcurrentConditionalCreate(Backend backend) {
  // Two gateways race to create the same patient conditionally, each giving the same criteria
  // in another order and encoding: exactly one resource results (one lock key for both).
  Fixture f(backend);
  auto other = f.t->OpenAnother();
  Handler h2(*other, {});
  // Catch2 v2 assertions are not thread-safe (concurrent CHECKs corrupt its heap): the threads
  // only count, the test thread asserts after join.
  std::atomic<int> unexpected{0};
  std::atomic<int> created{0};
  auto racer = [&](const Handler& h, const std::string& criteria) {
    for (int i = 0; i < 10; ++i) {
      Response r = h.Handle(Req("POST", "/fhir/Patient", kSuzuki, {{"If-None-Exist", criteria}}));
      if (r.status == 201) {
        ++created;
      } else if (r.status != 200) {
        ++unexpected;
      }
    }
  };
  std::thread t1(racer, std::cref(*f.h), "identifier=urn:mrn|S-1&birthdate=1975-12-24");
  std::thread t2(racer, std::cref(h2),
                 "Patient?birthdate=1975-12-24&_format=json&identifier=urn%3Amrn%7CS-1");
  t1.join();
  t2.join();
  CHECK(unexpected == 0);
  CHECK(created == 1);
  CHECK(f.Ids("/fhir/Patient?identifier=urn:mrn|S-1").size() == 1);
}
KAKEHASHI_BACKEND_TEST("handler: concurrent conditional creates make one resource", "[handler]",
                       ConcurrentConditionalCreate)

void HistoryLevels(Backend backend) {
  Fixture f(backend);
  std::string a = f.Create("Patient", kSuzuki);
  f.Create("Organization", R"({"resourceType":"Organization","name":"x"})");
  Response type = f.Do(Req("GET", "/fhir/Patient/_history"));
  REQUIRE(type.status == 200);
  CHECK(Parse(type.body).Find("entry")->Items().size() == 1);
  Response sys = f.Do(Req("GET", "/fhir/_history?_count=1"));
  REQUIRE(sys.status == 200);
  Json sb = Parse(sys.body);
  CHECK(sb.Find("entry")->Items().size() == 1);
  CHECK(sb.Find("entry")->Items()[0].Find("resource")->Str("resourceType") == "Organization");
  bool has_next = false;
  for (const Json& l : sb.Find("link")->Items()) has_next |= l.Str("relation") == "next";
  CHECK(has_next);
  CHECK(Parse(f.Do(Req("GET", "/fhir/_history?_since=2999-01-01")).body)
            .Find("entry")
            ->Items()
            .empty());
  CHECK(f.Do(Req("GET", "/fhir/Patient/nope/_history")).status == 404);
  (void)a;
}
KAKEHASHI_BACKEND_TEST("handler: history at type and system level", "[handler]", HistoryLevels)

void NoLostUpdate(Backend backend) {
  // Two writers increment a counter with read + If-Match retry; every successful update counts.
  Fixture f(backend);
  REQUIRE(f.Do(Req("PUT", "/fhir/Basic/counter",
                   R"({"resourceType":"Basic","id":"counter","code":{"text":"0"}})"))
              .status == 201);
  auto second = f.t->OpenAnother();  // writer 2 uses another Store: another "gateway"
  Handler h2(*second, {});
  std::atomic<int> successes{0};
  std::atomic<int> unexpected{0};  // no Catch assertion inside the threads (not thread-safe)
  auto writer = [&](const Handler& h) {
    for (int i = 0; i < 15; ++i) {
      while (true) {
        auto next = testing::NextCounterUpdate(h);  // not Parse(): no Catch calls in threads
        if (!next) {
          ++unexpected;
          return;
        }
        Response put =
            h.Handle(Req("PUT", "/fhir/Basic/counter", next->body, {{"If-Match", next->etag}}));
        if (put.status == 200) {
          ++successes;
          break;
        }
        if (put.status != 412 && put.status != 409) {
          ++unexpected;
          return;
        }
      }
    }
  };
  std::thread t1(writer, std::cref(*f.h));
  std::thread t2(writer, std::cref(h2));
  t1.join();
  t2.join();
  REQUIRE(unexpected == 0);
  Json final_state = Parse(f.Do(Req("GET", "/fhir/Basic/counter")).body);
  CHECK(successes == 30);
  CHECK(final_state.Find("code")->Str("text") == "30");
  CHECK(final_state.Find("meta")->Str("versionId") == "31");
}
KAKEHASHI_BACKEND_TEST("handler: concurrent If-Match writers lose no update (two gateways)",
                       "[handler]", NoLostUpdate)

void TwoGateways(Backend backend) {
  Fixture f(backend);
  auto other = f.t->OpenAnother();
  Handler h2(*other, {});
  std::string id = f.Create("Patient", kYamada);
  Response r = h2.Handle(Req("GET", "/fhir/Patient?name=%E5%B1%B1%E7%94%B0"));
  CHECK(Parse(r.body).Find("entry")->Items()[0].Find("resource")->Str("id") == id);
  CHECK(h2.Handle(Req("DELETE", "/fhir/Patient/" + id)).status == 204);
  CHECK(f.Do(Req("GET", "/fhir/Patient/" + id)).status == 410);
}
KAKEHASHI_BACKEND_TEST("handler: two gateways share one database", "[handler]", TwoGateways)

TEST_CASE("handler: injected validator rejects with 422 and its issues", "[handler]") {
  HandlerOptions options;
  options.validator = [](std::string_view json, IssueSink& sink) {
    if (json.find("\"gender\":\"robot\"") != std::string_view::npos) {
      Location where;
      where.fhir_path = "Patient.gender";
      sink.Error("conformance.binding.not_in_value_set", where,
                 "gender is not in the required value set");
    }
  };
  Fixture f(Backend::kSqlite, options);
  Response bad =
      f.Do(Req("POST", "/fhir/Patient", R"({"resourceType":"Patient","gender":"robot"})"));
  REQUIRE(bad.status == 422);
  Json oo = Parse(bad.body);
  const Json& issue = oo.Find("issue")->Items()[0];
  CHECK(issue.Str("severity") == "error");
  CHECK(issue.Find("expression")->Items()[0].Text() == "Patient.gender");
  CHECK(std::string(issue.Str("diagnostics")).starts_with("conformance.binding.not_in_value_set"));
  CHECK(f.Ids("/fhir/Patient").empty());  // nothing stored

  // In a transaction the issues say which entry they are about: the expression is rebased onto
  // the Bundle (Bundle.entry[1].resource.gender), the message names the entry.
  const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Patient","gender":"robot"},"request":{"method":"POST","url":"Patient"}}]})";
  Response failed = f.Do(Req("POST", "/fhir", tx));
  INFO(failed.body);
  REQUIRE(failed.status == 422);
  const Json txoo = Parse(failed.body);
  REQUIRE(txoo.Find("issue")->Items().size() == 1);
  const Json& txissue = txoo.Find("issue")->Items()[0];
  CHECK(txissue.Find("expression")->Items()[0].Text() == "Bundle.entry[1].resource.gender");
  CHECK(std::string(txissue.Str("diagnostics"))
            .starts_with("conformance.binding.not_in_value_set: transaction entry 1 (nothing was "
                         "stored): gender is not in the required value set"));
  CHECK(f.Ids("/fhir/Patient").empty());  // the valid entry 0 was not stored either
  // A batch answers each entry alone: the outcome of entry 1 is about its own resource.
  std::string batch = tx;
  batch.replace(batch.find("transaction"), 11, "batch");
  Response each = f.Do(Req("POST", "/fhir", batch));
  INFO(each.body);
  REQUIRE(each.status == 200);
  const Json b = Parse(each.body);
  const Json& second = *b.Find("entry")->Items()[1].Find("response");
  CHECK(second.Str("status") == "422");
  CHECK(second.Find("outcome")->Find("issue")->Items()[0].Find("expression")->Items()[0].Text() ==
        "Patient.gender");
  CHECK(f.Ids("/fhir/Patient").size() == 1);

  CHECK(
      f.Do(Req("POST", "/fhir/Patient", R"({"resourceType":"Patient","gender":"male"})")).status ==
      201);
}

TEST_CASE("handler: metadata tells what is supported", "[handler]") {
  Fixture f(Backend::kSqlite);
  Response r = f.Do(Req("GET", "/fhir/metadata"));
  REQUIRE(r.status == 200);
  Json cs = Parse(r.body);
  CHECK(cs.Str("resourceType") == "CapabilityStatement");
  CHECK(cs.Str("fhirVersion") == "4.0.1");
  const Json* patient = nullptr;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") == "Patient") patient = &res;
  }
  REQUIRE(patient != nullptr);
  std::set<std::string> params;
  for (const Json& p : patient->Find("searchParam")->Items())
    params.insert(std::string(p.Str("name")));
  for (const char* p : {"_id", "_lastUpdated", "name", "family", "birthdate", "identifier",
                        "gender", "_profile", "_tag", "_security", "_source", "deceased"}) {
    CHECK(params.count(p) == 1);
  }
  // The Resource parameters on every type, defined by R4's Resource-* SearchParameters.
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    std::map<std::string, std::string> definitions;
    for (const Json& p : res.Find("searchParam")->Items()) {
      definitions[std::string(p.Str("name"))] = std::string(p.Str("definition"));
    }
    INFO(res.Str("type"));
    CHECK(definitions["_tag"] == "http://hl7.org/fhir/SearchParameter/Resource-tag");
    CHECK(definitions["_profile"] == "http://hl7.org/fhir/SearchParameter/Resource-profile");
    CHECK(definitions["_security"] == "http://hl7.org/fhir/SearchParameter/Resource-security");
    CHECK(definitions["_source"] == "http://hl7.org/fhir/SearchParameter/Resource-source");
  }
  CHECK(patient->Find("operation")->Items()[0].Str("name") == "everything");
  // uri parameters say which modifiers they take (R4 CapabilityStatement has no element).
  std::size_t uri_params = 0;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("type") != "uri") continue;
      ++uri_params;
      CHECK(p.Str("documentation").find(":below and :above") != std::string_view::npos);
    }
  }
  CHECK(uri_params > 40);
  // Composite parameters are declared with their type.
  std::set<std::string> composites;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != "Observation" && res.Str("type") != "DocumentReference") continue;
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("type") == "composite") composites.insert(std::string(p.Str("name")));
    }
  }
  CHECK(composites == std::set<std::string>{"code-value-concept", "code-value-date",
                                            "code-value-quantity", "code-value-string",
                                            "combo-code-value-concept", "combo-code-value-quantity",
                                            "component-code-value-concept",
                                            "component-code-value-quantity", "relationship"});
  CHECK(f.Do(Req("POST", "/fhir/metadata", "{}")).status == 405);
  // The types listed are the types served: Binary and Parameters (no search parameters of their
  // own) too, with the interactions the handler answers for them; an unlisted type is 404.
  std::set<std::string> listed;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    listed.insert(std::string(res.Str("type")));
  }
  CHECK(listed.count("Binary") == 1);
  CHECK(listed.count("Parameters") == 1);
  CHECK(listed.count("Resource") == 0);
  CHECK(listed.count("DomainResource") == 0);
  CHECK(f.Do(Req("POST", "/fhir/Binary", R"({"resourceType":"Binary","contentType":"text/plain"})"))
            .status == 201);
  CHECK(f.Do(Req("GET", "/fhir/Binary?_id=x")).status == 200);
  CHECK(f.Do(Req("GET", "/fhir/DomainResource/x")).status == 404);
  // searchRevInclude: the reference parameters that can point at the type, each one answered by
  // a search with _revinclude (R4 CapabilityStatement.rest.resource.searchRevInclude).
  REQUIRE(patient->Find("searchRevInclude") != nullptr);
  std::set<std::string> revs;
  for (const Json& v : patient->Find("searchRevInclude")->Items()) revs.insert(v.Text());
  CHECK(revs.count("Observation:subject") == 1);
  CHECK(revs.count("Observation:patient") == 1);
  CHECK(revs.count("Encounter:subject") == 1);
  CHECK(revs.count("Observation:device") == 0);  // targets Device and DeviceMetric only
  CHECK(revs.count("Patient:name") == 0);        // not a reference parameter
  CHECK(revs.size() > 100);
  CHECK(revs.count("Observation:*") == 1);  // the wildcard for each source type
  CHECK(revs.count("Patient:*") == 1);      // Patient.link, general-practitioner (other types)
  std::set<std::string> incs;
  for (const Json& v : patient->Find("searchInclude")->Items()) incs.insert(v.Text());
  CHECK(incs.count("Patient:general-practitioner") == 1);
  CHECK(incs.count("Patient:*") == 1);
  REQUIRE(f.Do(Req("PUT", "/fhir/Patient/rv1",
                   R"({"resourceType":"Patient","id":"rv1","name":[{"family":"Rev"}]})"))
              .status == 201);
  REQUIRE(f.Do(Req("POST", "/fhir/Observation",
                   R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
                   R"("subject":{"reference":"Patient/rv1"}})"))
              .status == 201);
  for (const std::string& rev : revs) {
    INFO(rev);
    Response found = f.Do(Req("GET", "/fhir/Patient?family=Rev&_revinclude=" + rev));
    REQUIRE(found.status == 200);
    const std::size_t entries = Parse(found.body).Find("entry")->Items().size();
    CHECK(entries ==
          (rev == "Observation:subject" || rev == "Observation:patient" || rev == "Observation:*"
               ? 2
               : 1));
  }
}

TEST_CASE("handler: AnswerFromHead answers what Handle answers whatever the body", "[handler]") {
  Fixture f(Backend::kSqlite);
  const std::string body = R"({"resourceType":"Patient","id":"h1"})";
  const std::vector<std::pair<std::string, std::string>> xml = {
      {"Content-Type", "application/fhir+xml"}};
  const std::vector<std::pair<std::string, std::string>> json = {
      {"Content-Type", "application/fhir+json"}};
  struct Case {
    Request request;
    int status;
    std::string allow;
  };
  const std::vector<Case> decided = {
      {Req("PUT", "/fhir/NoSuchType/h1", body), 404, ""},
      {Req("POST", "/elsewhere", body), 404, ""},
      {Req("POST", "/fhir/Patient/$nosuch", body), 404, ""},
      {Req("PUT", "/fhir/Patient/h1/extra", body), 404, ""},
      {Req("POST", "/fhir/Patient/h1", body), 405, "GET, PUT, DELETE, PATCH"},
      {Req("PUT", "/fhir/Patient", body), 405, "GET, POST"},
      {Req("PATCH", "/fhir/Patient", body), 405, "GET, POST"},
      {Req("PUT", "/fhir", body), 405, "POST"},
      {Req("PUT", "/fhir/Patient/bad_id!", body), 400, ""},
      {Req("PUT", "/fhir/Patient/h1?_format=xml", body), 406, ""},
      {Req("PUT", "/fhir/Patient/h1", "<Patient/>", xml), 415, ""},
      {Req("POST", "/fhir/Patient/_search", "name=x", json), 415, ""},
  };
  for (const Case& c : decided) {
    INFO(c.request.method << " " << c.request.target);
    Request head_only = c.request;
    head_only.body.clear();
    std::optional<Response> early = f.h->AnswerFromHead(head_only);
    REQUIRE(early.has_value());
    CHECK(early->status == c.status);
    CHECK(std::string(early->Header("Allow")) == c.allow);
    CHECK(Parse(early->body).Str("resourceType") == "OperationOutcome");
    Response full = f.Do(c.request);  // the same answer once the body is there
    CHECK(full.status == c.status);
    CHECK(full.body == early->body);
  }
  // These need the body (or the store): no early answer, and nothing was written by asking.
  const std::vector<Request> open = {
      Req("PUT", "/fhir/Patient/h1", body),
      Req("POST", "/fhir/Patient", body),
      Req("POST", "/fhir", R"({"resourceType":"Bundle","type":"batch"})"),
      Req("POST", "/fhir/Patient/_search", "name=x",
          {{"Content-Type", "application/x-www-form-urlencoded"}}),
      Req("DELETE", "/fhir/Patient/h1", body),
  };
  for (const Request& r : open) {
    INFO(r.method << " " << r.target);
    Request head_only = r;
    head_only.body.clear();
    CHECK_FALSE(f.h->AnswerFromHead(head_only).has_value());
  }
  CHECK(f.Do(Req("GET", "/fhir/Patient/h1")).status == 404);
}

// Percent-decoded parameters that are not UTF-8 (%FF) are 400 on both backends: PostgreSQL used
// to refuse the text in the statement (500, SQLSTATE 22021) where SQLite answered 200.
void NotUtf8Parameters(Backend backend) {
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  REQUIRE(
      h.Handle(Req("PUT", "/fhir/Patient/u1", R"({"resourceType":"Patient","id":"u1"})")).status ==
      201);
  for (const char* target : {"/fhir/Patient?identifier=%FF", "/fhir/Patient?family=%C3",
                             "/fhir/Patient?_id=%FF", "/fhir/Patient?_cursor=1-%FF",
                             "/fhir/Patient?%FF=1", "/fhir/Patient/u1/$everything?_cursor=%FF"}) {
    Response r = h.Handle(Req("GET", target));
    INFO(target << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("UTF-8") != std::string::npos);
  }
  // Also as If-None-Exist and a conditional update's criteria.
  CHECK(h.Handle(Req("POST", "/fhir/Patient", R"({"resourceType":"Patient"})",
                     {{"If-None-Exist", "identifier=%FF"}}))
            .status == 400);
  CHECK(h.Handle(Req("PUT", "/fhir/Patient?identifier=%FF", R"({"resourceType":"Patient"})"))
            .status == 400);
  CHECK(h.Handle(Req("GET", "/fhir/Patient?family=%E3%82%A2")).status == 200);
}
KAKEHASHI_BACKEND_TEST("handler: search parameters that are not UTF-8 are 400", "[handler]",
                       NotUtf8Parameters)

}  // namespace
}  // namespace kakehashi::gateway
