// Private building blocks of the gateway: JSON, date ranges, NFKC folding, FHIRPath subset,
// indexer, generated search parameters.
#include "compartment.hpp"
#include "detail/fhirpath_lite.hpp"
#include "detail/json.hpp"
#include "detail/values.hpp"
#include "handler_util.hpp"
#include "indexer.hpp"
#include "search.hpp"
#include "search_params.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>

namespace kakehashi::gateway::detail {
namespace {

Json P(std::string_view text) {
  Json j;
  JsonError e;
  REQUIRE(ParseJson(text, j, e));
  return j;
}

TEST_CASE("json: round trip keeps number text, order and unicode", "[detail]") {
  const std::string text =
      R"({"b":1.50,"a":[true,false,null,"\u5c71\u7530 \"q\""],"e":-0.0e+5,"c":{}})";
  Json j = P(text);
  CHECK(j.Find("b")->Text() == "1.50");
  CHECK(j.Find("a")->Items()[3].Text() == "山田 \"q\"");
  CHECK(ToJsonText(j) == R"({"b":1.50,"a":[true,false,null,"山田 \"q\""],"e":-0.0e+5,"c":{}})");
  CHECK(P("\"\\ud83d\\ude00\"").Text() == "\xF0\x9F\x98\x80");
}

TEST_CASE("json: malformed input is rejected at every truncation, never crashes", "[detail]") {
  const std::string text =
      R"({"resourceType":"Patient","name":[{"family":"山田","given":["太郎"]}],"x":1.5e3})";
  for (std::size_t n = 0; n < text.size(); ++n) {
    Json j;
    JsonError e;
    CHECK_FALSE(ParseJson(text.substr(0, n), j, e));
    CHECK_FALSE(e.message.empty());
  }
  for (const char* bad : {"{\"a\":1,\"a\":2}", "[1,]", "01", "1.", "\"\\x\"", "\"\xC0\xAF\"",
                          "\"\xED\xA0\x80\"", "\"\\ud800\"", "{} x", "tru", "\"a\nb\""}) {
    Json j;
    JsonError e;
    CHECK_FALSE(ParseJson(bad, j, e));
  }
  Json j;
  JsonError e;
  CHECK_FALSE(ParseJson(std::string(100, '[') + std::string(100, ']'), j, e));
  CHECK(e.message == "JSON nested too deeply");
}

TEST_CASE("json: AppendJsonString escapes quotes, backslashes and controls only", "[detail]") {
  auto quoted = [](std::string_view text) {
    std::string out = "x";
    AppendJsonString(text, out);
    return out;
  };
  CHECK(quoted("") == "x\"\"");
  CHECK(quoted("plain") == "x\"plain\"");
  CHECK(quoted("a\"b\\c\nd\re\tf") == R"(x"a\"b\\c\nd\re\tf")");
  CHECK(quoted(std::string_view("\x01\x1f\0z", 4)) == R"(x"\u0001\u001f\u0000z")");
  CHECK(quoted("\"") == R"(x"\"")");
  CHECK(quoted("佐藤/\x7f") == "x\"佐藤/\x7f\"");  // UTF-8, '/' and DEL as they are
  Json j;
  JsonError e;
  REQUIRE(ParseJson(R"({"a":"q\"\\\n\u0002佐"})", j, e));
  CHECK(ToJsonText(j) == R"({"a":"q\"\\\n\u0002佐"})");
}

TEST_CASE("handler_util: NewId is a UUID v7 text, increasing", "[detail]") {
  std::string prev;
  for (int i = 0; i < 200; ++i) {
    const std::string id = NewId();
    REQUIRE(id.size() == 36);
    for (std::size_t at = 0; at < id.size(); ++at) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        CHECK(id[at] == '-');
      } else {
        CHECK(((id[at] >= '0' && id[at] <= '9') || (id[at] >= 'a' && id[at] <= 'f')));
      }
    }
    CHECK(id[14] == '7');  // version 7 (RFC 9562 §5.7)
    CHECK(std::string_view("89ab").find(id[19]) != std::string_view::npos);  // variant 10
    CHECK(id > prev);  // time-ordered: the counter keeps ids of one millisecond in order
    prev = id;
  }
  // The first 48 bits are the Unix time in milliseconds (of the call: between the clock's
  // readings around it).
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto before = now_ms();
  const std::string id = NewId();
  const auto after = now_ms();
  const long long stamp = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
  CHECK(stamp >= before);
  CHECK(stamp <= after);
}

TEST_CASE("values: FormatInstant writes every field, before 1970 and at a year's ends",
          "[detail]") {
  CHECK(FormatInstant(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(FormatInstant(-1) == "1969-12-31T23:59:59.999999Z");
  CHECK(FormatInstant(1796188200123456) == "2026-12-02T05:10:00.123456Z");
  CHECK(FormatInstant(951782399000007) == "2000-02-28T23:59:59.000007Z");
  auto r = ParseFhirDateRange("0001");
  REQUIRE(r);
  CHECK(FormatInstant(r->low_us) == "0001-01-01T00:00:00.000000Z");
  r = ParseFhirDateRange("9999-12-31");
  REQUIRE(r);
  CHECK(FormatInstant(r->high_us) == "9999-12-31T23:59:59.999999Z");
  // Outside four-digit years (not a FHIR instant): still the same layout as printf's %04d.
  CHECK(FormatInstant(r->high_us + 1) == "10000-01-01T00:00:00.000000Z");
  CHECK(FormatInstant(-62135596800000000 - 1) == "0000-12-31T23:59:59.999999Z");
}

TEST_CASE("values: FHIR date precision becomes a range", "[detail]") {
  auto r = ParseFhirDateRange("1980");
  REQUIRE(r);
  CHECK(FormatInstant(r->low_us) == "1980-01-01T00:00:00.000000Z");
  CHECK(FormatInstant(r->high_us) == "1980-12-31T23:59:59.999999Z");
  r = ParseFhirDateRange("2024-02");
  REQUIRE(r);
  CHECK(FormatInstant(r->high_us) == "2024-02-29T23:59:59.999999Z");
  r = ParseFhirDateRange("2024-03-05T09:30:00+09:00");
  REQUIRE(r);
  CHECK(FormatInstant(r->low_us) == "2024-03-05T00:30:00.000000Z");
  CHECK(r->high_us - r->low_us == 999999);
  r = ParseFhirDateRange("2024-03-05T09:30:00.25Z");
  REQUIRE(r);
  CHECK(FormatInstant(r->low_us) == "2024-03-05T09:30:00.250000Z");
  CHECK(r->high_us - r->low_us == 9999);
  for (const char* bad : {"", "80", "1980-13", "1980-02-30", "1980-01-01T25:00", "1980-01-01X",
                          "1980-01-01T10:00:00+9"}) {
    CHECK_FALSE(ParseFhirDateRange(bad));
  }
  CHECK(FormatHttpDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST_CASE("values: NFKC case folding matches full/half width and case", "[detail]") {
  CHECK(NormalizeForSearch("ＹＡＭＡＤＡ") == "yamada");
  CHECK(NormalizeForSearch("ﾔﾏﾀﾞ") == "ヤマダ");
  CHECK(NormalizeForSearch("山田\u3000 太郎") == "山田 太郎");
  CHECK(NormalizeForSearch("１２３") == "123");
}

TEST_CASE("values: the ASCII shortcut of NormalizeForSearch folds as ICU does", "[detail]") {
  // "é" (U+00E9, its own NFKC case fold, composing with no ASCII character) sends the text
  // through ICU; alone, an ASCII character takes the shortcut. Every one of the 128 must agree.
  const std::string e = "\xC3\xA9";
  for (int c = 0; c < 128; ++c) {
    INFO(c);
    const std::string one(1, static_cast<char>(c));
    CHECK(NormalizeForSearch(e + one) == e + NormalizeForSearch(one));
    CHECK(NormalizeForSearch(one + e) == NormalizeForSearch(one) + e);
  }
  CHECK(NormalizeForSearch("Final 2345-7 MG/DL") == "final 2345-7 mg/dl");
  CHECK(NormalizeForSearch("  A \t\n B  ") == "a b");
}

TEST_CASE("fhirpath: the search-expression subset", "[detail]") {
  Json obs = P(
      R"({"resourceType":"Observation","subject":{"reference":"Patient/1"},"valueQuantity":{"value":5},"effectivePeriod":{"start":"2020"},"status":"final","statusReason":{"text":"x"}})");
  auto eval = [&](std::string_view expr) {
    auto paths = CompileFhirPath(expr);
    REQUIRE(paths);
    std::vector<const Json*> out;
    for (auto& p : *paths) EvaluateFhirPath(obs, p, out);
    return out.size();
  };
  CHECK(eval("Observation.subject.where(resolve() is Patient)") == 1);
  CHECK(eval("Observation.subject.where(resolve() is Group)") == 0);
  CHECK(eval("(Observation.value as Quantity)") == 1);
  CHECK(eval("Observation.value.as(CodeableConcept)") == 0);
  CHECK(eval("Observation.effective") == 1);  // choice: effectivePeriod
  CHECK(eval("Observation.status") == 1);     // not statusReason
  CHECK(eval("Observation.subject | Observation.status") == 2);
  CHECK(eval("Patient.name") == 0);
  CHECK_FALSE(CompileFhirPath("Bundle.entry[0].resource"));
  // (X as T).b: a member of the selected choice.
  Json coded = P(R"({"resourceType":"Observation","valueCodeableConcept":{"text":"陽性"}})");
  auto texts = CompileFhirPath("(Observation.value as CodeableConcept).text");
  REQUIRE(texts);
  std::vector<const Json*> found;
  EvaluateFhirPath(coded, (*texts)[0], found);
  REQUIRE(found.size() == 1);
  CHECK(found[0]->Text() == "陽性");
  found.clear();
  EvaluateFhirPath(obs, (*texts)[0], found);  // valueQuantity: not the choice selected
  CHECK(found.empty());
  CHECK_FALSE(CompileFhirPath("(Observation.value as CodeableConcept)text"));
  CHECK_FALSE(CompileFhirPath("(Observation.value).text"));
  // X.exists() and X != false: exactly one boolean per resource.
  auto deceased = CompileFhirPath("Patient.deceased.exists() and Patient.deceased != false");
  REQUIRE(deceased);
  auto value = [&](const char* json) {
    std::vector<const Json*> out;
    EvaluateFhirPath(P(json), (*deceased)[0], out);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0]->IsBool());
    return out[0]->AsBool();
  };
  CHECK(value(R"({"resourceType":"Patient","deceasedBoolean":true})"));
  CHECK(value(R"({"resourceType":"Patient","deceasedDateTime":"2020"})"));
  CHECK_FALSE(value(R"({"resourceType":"Patient","deceasedBoolean":false})"));
  CHECK_FALSE(value(R"({"resourceType":"Patient"})"));
  CHECK_FALSE(CompileFhirPath("Patient.deceased.exists() and Patient.active != false"));
  CHECK_FALSE(CompileFhirPath("Patient.deceased.exists() and Patient.deceased != true"));
  CHECK(ReferenceTargetType("http://x/fhir/Patient/1/_history/2") == "Patient");
  CHECK(ReferenceTargetType("#contained").empty());
}

TEST_CASE("search params: generated table compiles completely", "[detail]") {
  std::size_t rows = 0;
  const auto& reg = SearchParamRegistry::Instance();
  for (const auto& def : SearchParamDefs()) {
    INFO(def.resource_type << "." << def.code << ": " << def.expression);
    if (def.type == ParamType::kComposite) {
      // Contexts and components are compiled by the registry, which drops what fails.
      REQUIRE(reg.Find(def.resource_type, def.code) != nullptr);
      CHECK(reg.Find(def.resource_type, def.code)->components.size() == 2);
    } else {
      CHECK(CompileFhirPath(def.expression));
    }
    ++rows;
  }
  CHECK(rows > 1500);
  CHECK(CompositeParamDefs().size() >= 10);
  // Composites: the same-component pairs; the union is found like combo-code's.
  const CompiledParam* cvq = reg.Find("Observation", "component-code-value-quantity");
  REQUIRE(cvq != nullptr);
  CHECK(cvq->components[0].code == "component-code");
  CHECK(cvq->components[1].type == ParamType::kQuantity);
  CHECK(reg.Find("Observation", "combo-code-value-quantity")->union_of ==
        std::vector<std::string>{"code-value-quantity", "component-code-value-quantity"});
  CHECK(reg.Find("Observation", "code-value-quantity")->union_of.empty());
  // DocumentReference relationship: relatesto (reference, relatesTo.target) $ relation (token,
  // relatesTo.code); the R4 bundle swaps the two expressions, the generator puts them back.
  const CompiledParam* rel = reg.Find("DocumentReference", "relationship");
  REQUIRE(rel != nullptr);
  CHECK(rel->components[0].type == ParamType::kReference);
  CHECK(rel->components[0].paths.at(0).steps.at(0).name == "target");
  CHECK(rel->components[1].paths.at(0).steps.at(0).name == "code");
  // :exact and :text rows (idx_string) map like their parameter.
  CHECK(reg.Find("Patient", "name")->variant_code == "name:exact");
  CHECK(reg.Find("Observation", "code")->variant_code == "code:text");
  CHECK(reg.Find("Observation", "combo-code")->variant_code.empty());
  CHECK(reg.IndexedAs("Observation", "combo-code:text").codes ==
        std::vector<std::string>{"code:text", "component-code:text"});
  REQUIRE(reg.Find("Patient", "name") != nullptr);
  CHECK(reg.Find("Patient", "name")->def->type == ParamType::kString);
  CHECK(reg.Find("Observation", "patient")->def->targets == "Patient");
  CHECK(reg.Find("Patient", "nonsense") == nullptr);
}

TEST_CASE("patient compartment: every link is a served reference parameter to Patient",
          "[detail]") {
  // The generated R4 Patient compartment (gen_compartment.py) must name parameters the search
  // registry indexes, or Patient/$everything would silently miss a link.
  const auto& reg = SearchParamRegistry::Instance();
  std::size_t links = 0;
  for (const CompartmentLink& link : PatientCompartment()) {
    INFO(link.resource_type << "." << link.param);
    CHECK(IsResourceTypeName(link.resource_type));
    const CompiledParam* p = reg.Find(link.resource_type, link.param);
    REQUIRE(p != nullptr);
    CHECK(p->def->type == ParamType::kReference);
    CHECK((p->def->targets.empty() || p->def->targets.find("Patient") != std::string_view::npos));
    ++links;
  }
  CHECK(links == 102);
}

TEST_CASE("resource type names: the served R4 types, exact spelling only", "[detail]") {
  for (std::string_view t :
       {"Patient", "Observation", "Encounter", "Binary", "Parameters", "CodeSystem", "ValueSet"}) {
    CHECK(IsResourceTypeName(t));
  }
  for (std::string_view t :
       {"", "patient", "PATIENT", "Patient ", "Patients", "Resource", "DomainResource", "Foo"}) {
    CHECK_FALSE(IsResourceTypeName(t));
  }
  CHECK(IsResourceTypeName(std::string_view("Patient/p1").substr(0, 7)));  // a view, not a string
}

TEST_CASE("indexer: values of a JP patient", "[detail]") {
  Json p = P(
      R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"001"}],"name":[{"family":"ﾔﾏﾀﾞ","given":["ﾀﾛｳ"]}],"telecom":[{"system":"phone","value":"03-1234"}],"gender":"male","birthDate":"1980-04","managingOrganization":{"reference":"Organization/o1"}})");
  store::IndexEntries idx;
  IndexResource(p, idx);
  auto has_token = [&](std::string_view param, std::string_view system, std::string_view code) {
    for (auto& t : idx.tokens) {
      if (t.param == param && t.system == system && t.code == code) return true;
    }
    return false;
  };
  CHECK(has_token("identifier", "urn:x", "001"));
  CHECK(has_token("gender", "", "male"));
  CHECK(has_token("phone", "", "03-1234"));
  CHECK(has_token("telecom", "", "03-1234"));
  bool family = false;
  for (auto& s : idx.strings) family |= s.param == "family" && s.value == "ヤマダ";
  CHECK(family);
  bool org = false;
  for (auto& r : idx.references) {
    org |= r.param == "organization" && r.target_type == "Organization" && r.target_id == "o1";
  }
  CHECK(org);
  bool birth = false;
  for (auto& d : idx.dates) {
    birth |= d.param == "birthdate" && FormatInstant(d.low_us) == "1980-04-01T00:00:00.000000Z";
  }
  CHECK(birth);
}

TEST_CASE("search params: unions of other parameters are not indexed twice", "[detail]") {
  const auto& reg = SearchParamRegistry::Instance();
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  // Observation.code | Observation.component.code
  REQUIRE(reg.Find("Observation", "combo-code") != nullptr);
  CHECK(sorted(reg.Find("Observation", "combo-code")->union_of) ==
        std::vector<std::string>{"code", "component-code"});
  CHECK(sorted(reg.Find("Observation", "combo-value-quantity")->union_of) ==
        std::vector<std::string>{"component-value-quantity", "value-quantity"});
  CHECK(reg.Find("Observation", "code")->union_of.empty());
  CHECK(reg.IndexedAs("Observation", "code").codes == std::vector<std::string>{"code"});
  CHECK(reg.IndexedAs("Observation", "combo-code").codes.size() == 2);
  CHECK(reg.IndexedAs("Observation", "combo-code").only_target.empty());
  CHECK(reg.IndexedAs("Observation", "nonsense").codes == std::vector<std::string>{"nonsense"});
  // A restriction: patient = Observation.subject.where(resolve() is Patient).
  CHECK(reg.IndexedAs("Observation", "patient").codes == std::vector<std::string>{"subject"});
  CHECK(reg.IndexedAs("Observation", "patient").only_target == "Patient");
  CHECK(reg.Find("Observation", "subject")->union_of.empty());
  // Not a restriction: AllergyIntolerance.patient is an element of its own.
  CHECK(reg.Find("AllergyIntolerance", "patient")->union_of.empty());
  // Every union is made of indexed parameters of the same type whose paths it contains.
  std::size_t unions = 0;
  for (const std::string& type : reg.Types()) {
    for (const auto& [code, param] : reg.ForType(type)) {
      for (const std::string& part : param.union_of) {
        INFO(type << "." << code << " = ... | " << part);
        const CompiledParam* p = reg.Find(type, part);
        REQUIRE(p != nullptr);
        CHECK(p->union_of.empty());
        CHECK(p->def->type == param.def->type);
        if (param.only_target.empty()) {
          CHECK(p->paths.size() < param.paths.size());
        } else {
          CHECK(param.union_of.size() == 1);
          CHECK(p->def->type == ParamType::kReference);
          CHECK(p->paths.size() == param.paths.size());
        }
      }
      unions += param.union_of.empty() ? 0 : 1;
    }
  }
  CHECK(unions >= 4);

  Json obs = P(
      R"({"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120}}],"valueQuantity":{"value":5.4,"code":"mg/dL"}})");
  store::IndexEntries idx;
  IndexResource(obs, idx);
  std::vector<std::string> params;
  for (const auto& t : idx.tokens) params.push_back(t.param + "=" + t.code);
  for (const auto& q : idx.quantities) params.push_back(q.param);
  for (const auto& r : idx.references) params.push_back(r.param + "=" + r.target_id);
  CHECK(sorted(params) == std::vector<std::string>{"code=2345-7", "component-code=8480-6",
                                                   "component-value-quantity", "status=final",
                                                   "subject=p1", "value-quantity"});
}

TEST_CASE("search: escaped separators stay literal until the value's own parser", "[detail]") {
  // R4 search, "Escaping Search Parameters": "\," "\$" "\|" "\\" are literal characters.
  // Only an unescaped ',' separates alternatives, and a token splits system|code at its first
  // unescaped '|'; each part is unescaped after the split.
  auto where = [](std::string_view query) {
    SearchSpec spec;
    auto failure = BuildSearch("Patient", ParseQuery(query), SearchContext{}, spec);
    REQUIRE_FALSE(failure);
    return spec.query.where;
  };
  SECTION("an escaped pipe is part of the code, not the system separator") {
    auto w = where("identifier=http://x\\|y");
    REQUIRE(w.size() == 1);
    REQUIRE(w[0].size() == 1);
    CHECK_FALSE(w[0][0].system.has_value());
    CHECK(w[0][0].value == "http://x|y");
  }
  SECTION("escaped pipes on both sides of the real separator") {
    auto w = where("identifier=urn:s\\|1|a\\|b");
    REQUIRE(w.size() == 1);
    REQUIRE(w[0].size() == 1);
    REQUIRE(w[0][0].system.has_value());
    CHECK(*w[0][0].system == "urn:s|1");
    CHECK(w[0][0].value == "a|b");
  }
  SECTION("an escaped backslash before an unescaped pipe: the pipe separates") {
    auto w = where("identifier=a\\\\|b");
    REQUIRE(w.size() == 1);
    REQUIRE(w[0].size() == 1);
    REQUIRE(w[0][0].system.has_value());
    CHECK(*w[0][0].system == "a\\");
    CHECK(w[0][0].value == "b");
  }
  SECTION("an escaped comma stays inside one alternative") {
    auto w = where("identifier=urn:s|a\\,b,urn:s|c");
    REQUIRE(w.size() == 1);
    REQUIRE(w[0].size() == 2);
    CHECK(*w[0][0].system == "urn:s");
    CHECK(w[0][0].value == "a,b");
    CHECK(*w[0][1].system == "urn:s");
    CHECK(w[0][1].value == "c");
  }
  SECTION("strings, ids and chained values are unescaped whole") {
    auto w = where("family=a\\|b\\$c\\\\d\\,e");
    REQUIRE(w.size() == 1);
    REQUIRE(w[0].size() == 1);
    CHECK(w[0][0].value == NormalizeForSearch("a|b$c\\d,e"));
    w = where("_id=x\\,y,z");
    REQUIRE(w[0].size() == 2);
    CHECK(w[0][0].value == "x,y");
    CHECK(w[0][1].value == "z");
  }
  SECTION("chained token: the escape reaches the chained parameter's parser") {
    SearchSpec spec;
    REQUIRE_FALSE(BuildSearch("Observation",
                              ParseQuery("subject:Patient.identifier=http://x\\|y,urn:s|z"),
                              SearchContext{}, spec));
    REQUIRE(spec.query.where.size() == 1);
    REQUIRE(spec.query.where[0].size() == 1);
    REQUIRE(spec.query.where[0][0].chain);
    const auto& chain = *spec.query.where[0][0].chain;
    REQUIRE(chain.size() == 1);
    REQUIRE(chain[0].size() == 2);
    CHECK_FALSE(chain[0][0].system.has_value());
    CHECK(chain[0][0].value == "http://x|y");
    CHECK(*chain[0][1].system == "urn:s");
    CHECK(chain[0][1].value == "z");
  }
}

TEST_CASE("conditional-create criteria: one lock key per match set, never shared", "[detail]") {
  auto key = [](std::string_view query) { return CriteriaKey(ParseQuery(query)).value_or("-"); };
  const std::string base = key("identifier=urn:mrn|S-1&family=Suzuki");
  CHECK(base == "family=Suzuki&identifier=urn:mrn|S-1");
  // Order, repeats, percent-encoding ('+' and %20 are both a space; hex case) and parameters
  // that only shape the result do not change the match set, so not the key.
  CHECK(key("family=Suzuki&identifier=urn:mrn|S-1") == base);
  CHECK(key("family=Suzuki&identifier=urn:mrn|S-1&family=Suzuki") == base);
  CHECK(key("identifier=urn%3amrn%7CS-1&%66amily=Suzuki") == base);
  CHECK(key("_format=json&identifier=urn:mrn|S-1&_count=5&family=Suzuki&_pretty=true&_sort=-"
            "_id&_summary=count&_total=none&_elements=id&_include=Patient:organization&_"
            "revinclude=Observation:subject") == base);
  CHECK(key("&family=Suzuki&&identifier=urn:mrn|S-1&") == base);
  CHECK(key("family=Hanako+Suzuki") == key("family=Hanako%20Suzuki"));
  // Different criteria never share a key: other values, modifiers, a parameter more or less,
  // and values holding the separators themselves.
  CHECK(key("identifier=urn:mrn|S-1") != base);
  CHECK(key("identifier=urn:mrn|S-1&family:exact=Suzuki") != base);
  CHECK(key("identifier=urn:mrn|S-2&family=Suzuki") != base);
  CHECK(key("identifier=urn:mrn|S-1&family=Suzuki&given=Hanako") != base);
  CHECK(key("family=a%26identifier%3Db") != key("family=a&identifier=b"));
  CHECK(key("family=a%26identifier%3Db") == "family=a%26identifier%3Db");
  CHECK(key("family=%2525") != key("family=%25"));
  CHECK(key("family=a,b") != key("family=a&family=b"));
  CHECK(key("_id=x") != key("_lastUpdated=x"));
  // The alternatives of one value are ORed: a set, whatever their order or repeats, and a
  // percent-encoded comma separates as well (decision 0028).
  const std::string ab = key("identifier=urn:r|a,urn:r|b&family=Suzuki");
  CHECK(ab == "family=Suzuki&identifier=urn:r|a,urn:r|b");
  CHECK(key("identifier=urn:r|b,urn:r|a&family=Suzuki") == ab);
  CHECK(key("family=Suzuki&identifier=urn:r|b,urn:r|a,urn:r|b") == ab);
  CHECK(key("identifier=urn:r|b%2Curn:r|a&family=Suzuki") == ab);
  CHECK(key("_id=y,x") == key("_id=x,y"));
  CHECK(key("subject:Patient.identifier=b,a") == key("subject:Patient.identifier=a,b"));
  // ... but other alternatives, a list split over two parameters (AND, not OR), an escaped
  // comma (a literal one inside one alternative) and other parameters keep their own keys.
  CHECK(key("identifier=urn:r|a&family=Suzuki") != ab);
  CHECK(key("identifier=urn:r|a,urn:r|c&family=Suzuki") != ab);
  CHECK(key("identifier=urn:r|a&identifier=urn:r|b&family=Suzuki") != ab);
  CHECK(key("family=a\\,b") != key("family=a,b"));
  CHECK(key("family=a\\,b") != key("family=b\\,a"));
  CHECK(key("family=a\\\\,b") == key("family=b,a\\\\"));  // a backslash ends "a"
  CHECK(key("family=a\\\\,b") != key("family=a\\,b"));
  CHECK(key("family=a,b&given=c") != key("family=a&given=b,c"));
  // An escaped '|' is a literal inside the code, an unescaped one separates system|code: two
  // different searches, two keys (R4 search, "Escaping Search Parameters").
  CHECK(key("identifier=http://x\\|y") != key("identifier=http://x|y"));
  CHECK(key("identifier=a\\|b,c") == key("identifier=c,a\\|b"));
  CHECK(key("family=a,b&given=c") == key("given=c&family=b,a"));
  // Paging parameters change which matches are seen: not criteria.
  CHECK_FALSE(CriteriaKey(ParseQuery("identifier=urn:mrn|S-1&_offset=1")));
  CHECK_FALSE(CriteriaKey(ParseQuery("_cursor=1-a&identifier=urn:mrn|S-1")));
}

TEST_CASE("AcceptsJson: Accept media ranges and q-values (RFC 9110 12.5.1)", "[detail]") {
  CHECK(AcceptsJson(""));
  CHECK(AcceptsJson("application/fhir+json"));
  CHECK(AcceptsJson("application/json"));
  CHECK(AcceptsJson("Application/FHIR+JSON; fhirVersion=4.0"));
  CHECK(AcceptsJson("application/*"));
  CHECK(AcceptsJson("*/*"));
  CHECK(AcceptsJson("application/fhir+xml;q=0.9, application/json;q=0.1"));
  CHECK(AcceptsJson("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  CHECK(AcceptsJson("application/fhir+json ; q=1.000"));
  CHECK_FALSE(AcceptsJson("application/fhir+xml"));
  CHECK_FALSE(AcceptsJson("application/xml, text/turtle"));
  CHECK_FALSE(AcceptsJson("text/*"));
  CHECK_FALSE(AcceptsJson("application/fhir+json;q=0"));
  CHECK_FALSE(AcceptsJson("application/json;q=0.000, application/fhir+json;q=0"));
  // The most specific range decides: */* does not bring back a JSON type refused by name.
  CHECK_FALSE(AcceptsJson("application/fhir+json;q=0, application/json;q=0, */*"));
  CHECK(AcceptsJson("application/fhir+json;q=0, */*"));  // application/json via */*
  CHECK_FALSE(AcceptsJson("application/*;q=0, */*"));
  // Malformed ranges (no '/', a q outside 0-1) are ignored.
  CHECK_FALSE(AcceptsJson("json"));
  CHECK_FALSE(AcceptsJson("application/json;q=2"));
  CHECK(AcceptsJson("garbage, application/json"));
}

// IndexResource evaluates only the paths whose first step names a member of the resource (or a
// choice form of it); the rows must be those of every path.
TEST_CASE("indexer: choice members, meta and absent members give the rows of every path",
          "[detail]") {
  auto tokens = [](const store::IndexEntries& idx, std::string_view param) {
    std::vector<std::string> out;
    for (const auto& t : idx.tokens) {
      if (t.param == param) out.push_back(t.system + "|" + t.code);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto dates = [](const store::IndexEntries& idx, std::string_view param) {
    std::vector<std::string> out;
    for (const auto& d : idx.dates) {
      if (d.param == param) out.push_back(FormatInstant(d.low_us) + "/" + FormatInstant(d.high_us));
    }
    return out;
  };
  Json obs = P(
      R"({"resourceType":"Observation","meta":{"tag":[{"system":"urn:t","code":"import"}],"profile":["http://x/p"]},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"effectivePeriod":{"start":"2024-01-01","end":"2024-01-02"},"valueCodeableConcept":{"coding":[{"system":"urn:v","code":"pos"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"code":"mm[Hg]"}}]})");
  store::IndexEntries idx;
  IndexResource(obs, idx);
  CHECK(tokens(idx, "status") == std::vector<std::string>{"|final"});
  CHECK(tokens(idx, "_tag") == std::vector<std::string>{"urn:t|import"});
  CHECK(tokens(idx, "value-concept") == std::vector<std::string>{"urn:v|pos"});
  CHECK(tokens(idx, "component-code") == std::vector<std::string>{"http://loinc.org|8462-4"});
  CHECK(dates(idx, "date") ==
        std::vector<std::string>{"2024-01-01T00:00:00.000000Z/2024-01-02T23:59:59.999999Z"});
  CHECK(tokens(idx, "_profile") == std::vector<std::string>{"|http://x/p"});  // uri: token rows
  std::vector<std::string> composites;
  for (const auto& c : idx.composites) {
    composites.push_back(c.param + " " + c.code1 + " " + c.code2 + " " + std::to_string(c.number));
  }
  std::sort(composites.begin(), composites.end());
  CHECK(composites ==
        std::vector<std::string>{"code-value-concept 8480-6 pos 0.000000",
                                 "component-code-value-quantity 8462-4 mm[Hg] 80.000000"});
  CHECK(idx.quantities.size() == 1);  // component-value-quantity; no value-quantity
  // Members the paths do not name: no rows from them; a Patient without deceased[x] is false,
  // with deceasedDateTime true (X.exists() and X != false, evaluated without a member too).
  Json patient = P(R"({"resourceType":"Patient","gender":"male","unknownMember":{"code":"x"}})");
  store::IndexEntries pidx;
  IndexResource(patient, pidx);
  CHECK(tokens(pidx, "deceased") == std::vector<std::string>{"|false"});
  CHECK(tokens(pidx, "gender") == std::vector<std::string>{"|male"});
  CHECK(pidx.tokens.size() == 2);
  CHECK(pidx.strings.empty());
  Json dead = P(R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01"})");
  store::IndexEntries didx;
  IndexResource(dead, didx);
  CHECK(tokens(didx, "deceased") == std::vector<std::string>{"|true"});
}

}  // namespace
}  // namespace kakehashi::gateway::detail
