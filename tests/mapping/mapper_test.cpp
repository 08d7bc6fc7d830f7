#include "kakehashi/mapping/mapper.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/mapping/hl7v2_view.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi;
using fhir::Node;

namespace {

struct Fixture {
  Fixture() {
    auto loaded = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
    REQUIRE(loaded.has_value());
    rules = std::move(*loaded);
  }
  mapping::MapResult Map(const std::string& text, mapping::MapOptions options = {}) {
    auto parsed = adapters::hl7v2::Parse(text, {}, issues);
    REQUIRE(parsed.messages.size() == 1);
    message = std::move(parsed.messages.front());
    mapping::Hl7v2View view(message);
    mapping::SourceInfo source;
    source.kind = "hl7v2";
    source.file = "test.hl7";
    mapping::Mapper mapper(rules, std::move(options));
    return mapper.Map(view, source, issues);
  }
  const Node* Find(const mapping::MapResult& r, std::string_view type) {
    for (const auto& x : r.resources) {
      if (x.type == type) return &x.resource;
    }
    return nullptr;
  }
  std::size_t Count(std::string_view code) {
    std::size_t n = 0;
    for (const auto& i : issues.Issues()) n += i.code == code ? 1 : 0;
    return n;
  }
  mapping::RuleSet rules;
  adapters::hl7v2::Message message;
  CollectingSink issues;
};

const char* kAdt =
    "MSH|^~\\&|HIS|1312345679|GW|RCV|20240401093000||ADT^A08^ADT_A01|C1|P|2.5\r"
    "EVN||20240401093000\r"
    "PID|0001||0012345678^^^^PI||山本^万里子^^^^^L^I~ﾔﾏﾓﾄ^ﾏﾘｺ^^^^^L^P||198004|X|||"
    "^^^^100-0005^JPN^H^東京都千代田区丸の内一丁目１−１||^PRN^PH^^^^^^^^^03-0000-0000\r";

}  // namespace

TEST_CASE("mapper: ADT^A08 -> JP_Patient", "[mapping]") {
  Fixture f;
  auto r = f.Map(kAdt);
  CHECK(r.mapped);
  CHECK(r.data_type == "ADT-00");
  const Node* p = f.Find(r, "Patient");
  REQUIRE(p != nullptr);
  CHECK(p->Find("meta")->Find("profile")->Child(0).Text() ==
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient");
  CHECK(p->Find("birthDate")->Text() == "1980-04");  // precision kept, never a padded day
  const Node& id = p->Find("identifier")->Child(0);
  CHECK(id.Find("system")->Text() == "urn:oid:1.2.392.100495.20.3.51.11312345679");
  CHECK(id.Find("value")->Text() == "0012345678");
  const Node& names = *p->Find("name");
  REQUIRE(names.Size() == 2);
  CHECK(names.Child(0).Find("extension")->Child(0).Find("valueCode")->Text() == "IDE");
  CHECK(names.Child(0).Find("text")->Text() == "山本 万里子");
  CHECK(names.Child(1).Find("extension")->Child(0).Find("valueCode")->Text() == "SYL");
  CHECK(names.Child(1).Find("family")->Text() == "ヤマモト");  // half-width kana -> full-width
  CHECK(p->Find("address")->Child(0).Find("postalCode")->Text() == "100-0005");
  CHECK(p->Find("telecom")->Child(0).Find("value")->Text() == "03-0000-0000");
  CHECK(p->Find("gender") == nullptr);  // "X" is not in HL7 0001: left out, warned
  CHECK(f.Count("mapping.unmapped_code") == 1);
  for (const auto& issue : f.issues.Issues()) {
    CHECK(issue.message.find("0012345678") == std::string::npos);  // no PHI in messages
  }
  // EVN is unused (reported once as a segment).
  CHECK(f.Count("mapping.unused_segment") == 1);
  // The Provenance points at the Patient and names MSH-10.
  const Node* prov = f.Find(r, "Provenance");
  REQUIRE(prov != nullptr);
  CHECK(prov->Find("target")->Child(0).Find("reference")->Text() ==
        "Patient/" + std::string(p->Find("id")->Text()));
  CHECK(prov->Find("entity")->Child(0).Find("what")->Find("identifier")->Find("value")->Text() ==
        "C1");
  CHECK(prov->Find("recorded")->Text() == "2024-04-01T09:30:00+09:00");
}

TEST_CASE("mapper: ids are stable across runs and profile sets switch URIs", "[mapping]") {
  Fixture f;
  auto a = f.Map(kAdt);
  auto b = f.Map(kAdt);
  CHECK(a.resources.front().id == b.resources.front().id);
  mapping::MapOptions v120;
  v120.profile = mapping::ProfileSet::kJpCore120;
  auto c = f.Map(
      "MSH|^~\\&|HIS|1312345679|GW|RCV|20240401130000||OUL^R22^OUL_R22|C5|P|2.5\r"
      "PID|0001||0012345678^^^^PI\r"
      "SPM|1|S0001||023^血清^JC10|||||||||||||202404010900\r"
      "OBR|1|22222|S0001|E001^生化学^99O03|||202404010900\r"
      "OBX|1|NM|3A010000002327101^総蛋白^JC10||7.0|g/dL^g/dL^ISO+|6.6-8.1||||F\r",
      v120);
  const Node* obs = f.Find(c, "Observation");
  REQUIRE(obs != nullptr);
  CHECK(obs->Find("code")->Find("coding")->Child(0).Find("system")->Text() ==
        "http://medis.or.jp/CodeSystem/master-JLAC10-17digits");
  CHECK(obs->Find("valueQuantity")->Find("value")->Text() == "7.0");  // decimal text kept
  CHECK(obs->Find("effectiveDateTime")->Text() == "2024-04-01T09:00:00+09:00");  // SPM-17
  const Node* spec = f.Find(c, "Specimen");
  REQUIRE(spec != nullptr);
  CHECK(spec->Find("meta")->Find("profile")->Child(0).Text() ==
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Specimen_Common");
  CHECK(obs->Find("specimen")->Find("reference")->Text() ==
        "Specimen/" + std::string(spec->Find("id")->Text()));
}

TEST_CASE("mapper: code_system answers remembered across messages stay with their Mapper",
          "[mapping]") {
  // code_system remembers the URIs of coding-system names per thread across messages
  // (MessageMemo::rules_id). Mappers of different profile sets used alternately on one thread,
  // and a Mapper made after another was destroyed (maybe at its address), each get their own
  // spelling. A Quantity's MR9P unit system comes straight from code_system (the Coding binder
  // leaves Quantities alone).
  Fixture f;
  auto parsed = adapters::hl7v2::Parse(
      "MSH|^~\\&|HIS|1312345679|GW|RCV|20240401130000||OUL^R22^OUL_R22|C5|P|2.5\r"
      "PID|0001||0012345678^^^^PI\r"
      "SPM|1|S0001||023^血清^JC10|||||||||||||202404010900\r"
      "OBR|1|22222|S0001|E001^生化学^99O03|||202404010900\r"
      "OBX|1|NM|3A010000002327101^総蛋白^JC10||7.0|mg^mg^MR9P|6.6-8.1||||F\r",
      {}, f.issues);
  REQUIRE(parsed.messages.size() == 1);
  const mapping::Hl7v2View view(parsed.messages.front());
  mapping::SourceInfo source;
  source.kind = "hl7v2";
  source.file = "test.hl7";
  const std::string oid = "urn:oid:1.2.392.100495.20.2.101";
  const std::string url = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUnitMERIT9Code";
  auto unit_system = [&](const mapping::Mapper& mapper) {
    const auto result = mapper.Map(view, source, f.issues);
    const Node* obs = f.Find(result, "Observation");
    REQUIRE(obs != nullptr);
    const Node* quantity = obs->Find("valueQuantity");
    REQUIRE(quantity != nullptr);
    REQUIRE(quantity->Find("system") != nullptr);
    return std::string(quantity->Find("system")->Text());
  };
  mapping::MapOptions v112;
  mapping::MapOptions v120;
  v120.profile = mapping::ProfileSet::kJpCore120;
  const mapping::Mapper m112(f.rules, v112);
  const mapping::Mapper m120(f.rules, v120);
  for (int round = 0; round < 2; ++round) {
    CHECK(unit_system(m112) == oid);
    CHECK(unit_system(m120) == url);
  }
  for (const auto& options : {v120, v112, v120}) {
    const mapping::Mapper once(f.rules, options);
    CHECK(unit_system(once) == (options.profile == mapping::ProfileSet::kJpCore120 ? url : oid));
  }
}

TEST_CASE("mapper: a type without rules becomes a DocumentReference", "[mapping]") {
  Fixture f;
  auto r = f.Map(
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401083000||OMI^Z23^OMI_Z23|U1|P|2.5\r"
      "PID|0001||0012345678^^^^PI\r");
  CHECK_FALSE(r.mapped);
  REQUIRE(r.resources.size() == 2);
  CHECK(r.resources[0].type == "DocumentReference");
  CHECK(r.resources[1].type == "Provenance");
  const Node& doc = r.resources[0].resource;
  const Node& attachment = *doc.Find("content")->Child(0).Find("attachment");
  CHECK(attachment.Find("data")->Text().rfind("TVNIfF5+XCZ8", 0) == 0);  // base64("MSH|^~\&|")
  CHECK(doc.Find("subject")->Find("reference")->Text().rfind("Patient/", 0) == 0);
  CHECK(f.Count("mapping.unmapped_message") == 1);
  CHECK(f.Count("mapping.facility_unknown") == 1);
}
