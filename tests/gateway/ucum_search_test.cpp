// Quantity search across UCUM units (R4 search.html "quantity", decision 0047): values with the
// UCUM system compare in canonical units on both backends; anything else compares as received.
#include "kakehashi/gateway/handler.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "json_support.hpp"
#include "search_params.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;
using V = std::vector<std::string>;

constexpr std::string_view kUcum = "http://unitsofmeasure.org";

struct Fixture : testing::HandlerFixture {
  using HandlerFixture::HandlerFixture;
  // An Observation with valueQuantity {value, system, code}; "" leaves system/code out.
  void Obs(const std::string& id, const std::string& value, std::string_view system,
           std::string_view code, std::string_view component = "") const {
    std::string q = R"({"value":)" + value;
    if (!system.empty()) q += R"(,"system":")" + std::string(system) + "\"";
    if (!code.empty()) q += R"(,"code":")" + std::string(code) + "\"";
    q += R"(,"unit":")" + std::string(code.empty() ? "mg/dL" : code) + "\"}";
    std::string body =
        R"({"resourceType":"Observation","id":")" + id +
        R"(","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]})";
    if (component.empty()) {
      body += R"(,"valueQuantity":)" + q + "}";
    } else {
      body += R"(,"component":[{"code":{"coding":[{"system":"http://loinc.org","code":")" +
              std::string(component) + R"("}]},"valueQuantity":)" + q + "}]}";
    }
    PutBody("Observation", id, body);
  }
  V Ids(const std::string& query) const {
    V ids = HandlerFixture::Ids("/fhir/Observation?" + query + "&_count=100");
    std::sort(ids.begin(), ids.end());
    return ids;
  }
};

std::string Q(std::string_view number, std::string_view unit) {
  return "value-quantity=" + std::string(number) + "|" + std::string(kUcum) + "|" +
         std::string(unit);
}

void Fill(const Fixture& f) {
  f.Obs("mgdl", "540", kUcum, "mg/dL");
  f.Obs("gl", "5.4", kUcum, "g/L");
  f.Obs("gdl", "1", kUcum, "g/dL");  // 10 g/L
  f.Obs("mmol", "5.5", kUcum, "mmol/L");
  f.Obs("umol", "5500", kUcum, "umol/L");
  f.Obs("wbc3", "7.2", kUcum, "10*3/uL");
  f.Obs("wbc9", "7.2", kUcum, "10*9/L");
  f.Obs("pct", "45", kUcum, "%");
  f.Obs("cel", "36.5", kUcum, "Cel");
  f.Obs("gram", "0.006", kUcum, "g");
  f.Obs("nosys", "540", "", "mg/dL");              // no system: not UCUM, kept as received
  f.Obs("bad", "3", kUcum, "mg//dL");              // malformed UCUM code: an opaque code
  f.Obs("local", "540", "urn:local", "mg/dL");     // another system
  f.Obs("comp", "540", kUcum, "mg/dL", "2339-0");  // a component's value
}

void UcumSearch(Backend backend) {
  Fixture f(backend);
  Fill(f);
  // Mass concentration: 540 mg/dL = 5.4 g/L = 5400 g/m3 (canonical); the value's implicit
  // precision converts too: 5.40 g/L is [5.395, 5.405) g/L.
  CHECK(f.Ids(Q("5.4", "g/L")) == V{"gl", "mgdl"});
  CHECK(f.Ids(Q("540", "mg/dL")) == V{"gl", "mgdl"});
  CHECK(f.Ids(Q("5.40", "g/L")) == V{"gl", "mgdl"});
  CHECK(f.Ids(Q("541", "mg/dL")).empty());
  CHECK(f.Ids(Q("0.54", "g/dL")) == V{"gl", "mgdl"});
  CHECK(f.Ids(Q("gt5", "g/L")) == V{"gdl", "gl", "mgdl"});
  CHECK(f.Ids(Q("gt5.4", "g/L")) == V{"gdl"});
  CHECK(f.Ids(Q("ge5400", "mg/L")) == V{"gdl", "gl", "mgdl"});
  CHECK(f.Ids(Q("lt1000", "mg/dL")) == V{"gl", "mgdl"});
  CHECK(f.Ids(Q("ne5.4", "g/L")) == V{"gdl"});
  CHECK(f.Ids(Q("ap5", "g/L")) == V{"gl", "mgdl"});  // 5 +- 10 %: [4.5, 5.5) g/L
  CHECK(f.Ids(Q("eb1", "g/dL")) == V{"gl", "mgdl"});
  // R4's example: gt5.4|http://unitsofmeasure.org|mg matches 0.006 g.
  CHECK(f.Ids(Q("gt5.4", "mg")) == V{"gram"});
  CHECK(f.Ids(Q("6", "mg")) == V{"gram"});
  // Substance concentration; molar <-> mass is not converted (needs a molecular weight).
  CHECK(f.Ids(Q("5.5", "mmol/L")) == V{"mmol", "umol"});
  CHECK(f.Ids(Q("5500", "umol/L")) == V{"mmol", "umol"});
  CHECK(f.Ids(Q("5.5", "mmol/L") + ",5.4|" + std::string(kUcum) + "|g/L") ==
        V{"gl", "mgdl", "mmol", "umol"});
  CHECK(f.Ids(Q("99", "mg/dL")).empty());  // 5.5 mmol/L glucose is 99 mg/dL, not converted
  // Counts per volume: 10*3/uL = 10*9/L.
  CHECK(f.Ids(Q("7.2", "10*3/uL")) == V{"wbc3", "wbc9"});
  CHECK(f.Ids(Q("7.2", "10*9/L")) == V{"wbc3", "wbc9"});
  CHECK(f.Ids(Q("7200", "/uL")) == V{"wbc3", "wbc9"});
  // % stays %: a dimensionless 45 % is 0.45; it meets no concentration.
  CHECK(f.Ids(Q("45", "%")) == V{"pct"});
  CHECK(f.Ids(Q("0.45", "1")) == V{"pct"});
  CHECK(f.Ids(Q("gt0", "%")) == V{"pct"});
  // A special unit compares only with itself, as given.
  CHECK(f.Ids(Q("36.5", "Cel")) == V{"cel"});
  CHECK(f.Ids(Q("309.65", "K")).empty());
  // No system, another system: as received (today's comparison).
  CHECK(f.Ids("value-quantity=540||mg/dL") == V{"local", "mgdl", "nosys"});
  CHECK(f.Ids("value-quantity=5.4||g/L") == V{"gl"});
  CHECK(f.Ids("value-quantity=540|urn:local|mg/dL") == V{"local"});
  CHECK(f.Ids("value-quantity=540") == V{"local", "mgdl", "nosys"});
  // A malformed or unknown unit in the query is an opaque code: 200, compared as received.
  CHECK(f.Ids(Q("3", "mg//dL")) == V{"bad"});
  CHECK(f.Ids(Q("5.4", "mg/")).empty());
  CHECK(f.Ids(Q("5.4", "%7Bx")).empty());
  CHECK(f.Ids(Q("5.4", "xyz/L")).empty());
  CHECK(
      f.Ids(Q("5.4", "(((((((((((((((((((((((((((((((((((((g))))))))))))))))))))))))))))))))))))"))
          .empty());
  // Unions read the canonical rows of their parts; composites compare as received.
  CHECK(f.Ids("combo-value-quantity=5.4|" + std::string(kUcum) + "|g/L") ==
        V{"comp", "gl", "mgdl"});
  CHECK(f.Ids("component-value-quantity=5.4|" + std::string(kUcum) + "|g/L") == V{"comp"});
  CHECK(f.Ids("component-code-value-quantity=http://loinc.org|2339-0$540|" + std::string(kUcum) +
              "|mg/dL") == V{"comp"});
  CHECK(f.Ids("component-code-value-quantity=http://loinc.org|2339-0$5.4|" + std::string(kUcum) +
              "|g/L")
            .empty());
  // The canonical rows are no values of their own: :missing and the plain search see the rows
  // as received only.
  CHECK(f.Ids("value-quantity:missing=true") == V{"comp"});
  // An update replaces them.
  f.Obs("gl", "2", kUcum, "g/L");
  CHECK(f.Ids(Q("5.4", "g/L")) == V{"mgdl"});
  CHECK(f.Ids(Q("200", "mg/dL")) == V{"gl"});
}
KAKEHASHI_BACKEND_TEST("ucum: quantity search in canonical units", "[ucum]", UcumSearch)

// Stores written before decision 0047 have no canonical rows: the re-index on open (decision
// 0037) fills them.
void UcumReindex(Backend backend) {
  Fixture f(backend);
  f.h.reset();
  f.t->store.reset();
  store::IndexDefinition old = store::DefaultIndexDefinition();
  auto extract = old.extract;
  old.fingerprint = "test-before-0047-" + old.fingerprint;
  old.extract = [extract](const store::ResourceRow& row, store::IndexEntries& out) {
    if (!extract(row, out)) return false;
    std::erase_if(out.quantities, [](const store::QuantityEntry& q) {
      return q.param.ends_with(detail::kUcumSuffix);
    });
    return true;
  };
  f.t->options.index = old;
  f.t->store = f.t->OpenAnother();
  {  // rows as the older kakehashi wrote them
    auto session = f.t->store->OpenSession();
    REQUIRE(session);
    store::Session& w = **session;
    REQUIRE(w.Begin());
    int n = 0;
    for (auto [id, value, code] : {std::tuple{"mgdl", "540", "mg/dL"}, {"gl", "5.4", "g/L"}}) {
      store::ResourceRow row{
          "Observation",
          id,
          1,
          1000 + ++n,
          false,
          R"({"resourceType":"Observation","id":")" + std::string(id) +
              R"(","status":"final","code":{"text":"x"},"valueQuantity":{"value":)" + value +
              R"(,"system":"http://unitsofmeasure.org","code":")" + code + R"("}})"};
      store::IndexEntries entries;
      REQUIRE(old.extract(row, entries));
      CHECK(!entries.quantities.empty());
      REQUIRE(w.LockAndRead(row.type, row.id));
      REQUIRE(w.Write(row, entries));
    }
    REQUIRE(w.Commit());
  }
  f.Reopen();
  CHECK(f.Ids(Q("5.4", "g/L")).empty());  // no canonical rows yet
  CHECK(f.Ids("value-quantity=5.4||g/L") == V{"gl"});
  f.h.reset();
  f.t->store.reset();
  f.t->options.index = store::DefaultIndexDefinition();
  f.t->store = f.t->OpenAnother();
  f.Reopen();
  CHECK(f.Ids(Q("5.4", "g/L")) == V{"gl", "mgdl"});
  CHECK(f.Ids("value-quantity=5.4||g/L") == V{"gl"});
}
KAKEHASHI_BACKEND_TEST("ucum: the re-index on open adds the canonical rows", "[ucum]", UcumReindex)

TEST_CASE("ucum: the CapabilityStatement says how quantities compare", "[ucum]") {
  Fixture f(Backend::kSqlite);
  Response r = f.Do(Req("GET", "/fhir/metadata"));
  REQUIRE(r.status == 200);
  Json cs = Parse(r.body);
  bool quantity = false;
  bool composite = false;
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != "Observation") continue;
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == "value-quantity") {
        quantity = p.Str("documentation").find("canonical units") != std::string_view::npos;
      }
      if (p.Str("name") == "code-value-quantity") {
        composite = p.Str("documentation").find("no UCUM") != std::string_view::npos;
      }
    }
  }
  CHECK(quantity);
  CHECK(composite);
}

}  // namespace
}  // namespace kakehashi::gateway
