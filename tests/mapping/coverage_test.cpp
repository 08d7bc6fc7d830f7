// Mapping coverage (issue #4): the guards and issues of the NK1 / DB1 / ZPR / OMD rules that the
// data-driven cases cannot assert (cases compare only the Bundle): a contact without details is
// left out with a warning (pat-1), DB1 is reported once as mapping.no_fhir_target (not as unused
// fields), modifiers that cannot be paired get one extension each, ODS-1 routes ODS-3.
#include "kakehashi/mapping/mapper.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/mapping/hl7v2_view.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace kakehashi;
using fhir::Node;

namespace {

class Sink final : public IssueSink {
 public:
  void Report(Issue issue) override { issues.push_back(std::move(issue)); }
  std::size_t Count(std::string_view code, std::string_view field_prefix = {}) const {
    std::size_t n = 0;
    for (const auto& i : issues) {
      if (i.code == code && i.where.field.rfind(field_prefix, 0) == 0) ++n;
    }
    return n;
  }
  std::vector<Issue> issues;
};

struct Mapped {
  mapping::MapResult result;
  Sink sink;
  const Node* Find(std::string_view type) const {
    for (const auto& x : result.resources) {
      if (x.type == type) return &x.resource;
    }
    return nullptr;
  }
};

void Map(const std::string& text, Mapped& out) {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  auto parsed = adapters::hl7v2::Parse(text, {}, out.sink);
  REQUIRE(parsed.messages.size() == 1);
  mapping::Hl7v2View view(parsed.messages.front());
  mapping::SourceInfo source;
  source.kind = "hl7v2";
  source.file = "coverage.hl7";
  mapping::MapOptions options;
  options.facility_code = "1312345679";
  mapping::Mapper mapper(*rules, options);
  out.result = mapper.Map(view, source, out.sink);
}

const std::string kAdt =
    "MSH|^~\\&|HIS|SEND|GW|RCV|20240501120000||ADT^A08^ADT_A01|C1|P|2.5\r"
    "EVN||20240501120000\r"
    "PID|0001||0000123456^^^^PI||SATO^HANAKO^^^^^L^A||19800401|F\r";

}  // namespace

TEST_CASE("coverage: NK1 without name/telecom/address/organization is left out (pat-1)",
          "[mapping]") {
  Mapped m;
  Map(kAdt +
          "NK1|1||UNK^Unknown^HL70063\rNK1|2|SATO^JIRO^^^^^L^A|SPO^Spouse^HL70063\r"
          "PV1|0001|O\r",
      m);
  const Node* patient = m.Find("Patient");
  REQUIRE(patient != nullptr);
  REQUIRE(patient->Find("contact") != nullptr);
  CHECK(patient->Find("contact")->Size() == 1);
  const Node& contact = patient->Find("contact")->Child(0);
  CHECK(contact.Find("name")->Find("family")->Text() == "SATO");
  const Node& coding = contact.Find("relationship")->Child(0).Find("coding")->Child(0);
  CHECK(coding.Find("system")->Text() == "http://terminology.hl7.org/CodeSystem/v3-RoleCode");
  CHECK(coding.Find("code")->Text() == "SPS");
  CHECK(m.sink.Count("mapping.element_incomplete") == 1);
}

TEST_CASE("coverage: DB1 is one no_fhir_target information issue, not unused fields", "[mapping]") {
  Mapped m;
  Map(kAdt + "PV1|0001|O\rDB1|1|PT||Y|20200101\rDB1|2|PT||N\r", m);
  // Reported once per message: the mapper drops repeats of a code at the same location.
  CHECK(m.sink.Count("mapping.no_fhir_target") == 1);
  CHECK(m.sink.Count("mapping.unused_field", "DB1") == 0);
  CHECK(m.sink.Count("mapping.unused_segment", "DB1") == 0);
  for (const auto& i : m.sink.issues) {
    if (i.code == "mapping.no_fhir_target") {
      CHECK(i.severity == Severity::kInformation);
      CHECK(i.message.find("20200101") == std::string::npos);  // no field values
    }
  }
  CHECK(m.Find("Patient")->Find("extension") == nullptr);
}

TEST_CASE("coverage: ZPR modifiers pair by repetition, or one extension each when they cannot",
          "[mapping]") {
  const std::string head =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240601090000||PPR^ZD1^PPR_ZD1|C2|P|2.5\r"
      "PID|0001||0000123456^^^^PI\r"
      "PRB|AD|20240601|20054174^X^MDCDX2|000000000000201\r";
  {
    Mapped m;
    Map(head +
            "ZPR|20001234^A^MDCDX2~20005678^B^MDCDX2|20054174^X^MDCDX2||K1AB^A^MDCDX2~M2CD^B^"
            "MDCDX2\r",
        m);
    const Node* ext = m.Find("Condition")->Find("extension");
    REQUIRE(ext != nullptr);
    REQUIRE(ext->Size() == 2);
    const Node& second = ext->Child(1).Find("valueCodeableConcept")->Find("coding")->Child(0);
    CHECK(second.Find("code")->Text() == "M2CD");
    CHECK(
        ext->Child(1).Find("valueCodeableConcept")->Find("coding")->Child(1).Find("code")->Text() ==
        "20005678");
    CHECK(m.sink.Count("mapping.modifier_unpaired") == 0);
  }
  {
    Mapped m;
    Map(head + "ZPR|||20007572^P^MDCDX2~20007573^Q^MDCDX2|||7572^P^MDCDX2\r", m);
    const Node* ext = m.Find("Condition")->Find("extension");
    REQUIRE(ext != nullptr);
    CHECK(ext->Size() == 3);
    CHECK(ext->Child(0).Find("url")->Text() ==
          "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/"
          "JP_Condition_DiseasePostfixModifier");
    CHECK(m.sink.Count("mapping.modifier_unpaired") == 1);
  }
}

TEST_CASE("coverage: ODS-1 routes ODS-3 to oralDiet, supplement or foodPreferenceModifier",
          "[mapping]") {
  Mapped m;
  Map("MSH|^~\\&|HIS|SEND|GW|RCV|20240401083000||OMD^O03^OMD_O03|C3|P|2.5\r"
      "PID|0001||0000123456^^^^PI\r"
      "ORC|NW|000000000077701\r"
      "ODS|||001^General^99DIET\rODS|S||S01^Thick^99DIET\rODS|P||P01^NoFish^99DIET\r",
      m);
  const Node* order = m.Find("NutritionOrder");
  REQUIRE(order != nullptr);
  CHECK(order->Find("dateTime")->Text() == "2024-04-01T08:30:00+09:00");  // MSH-7 fallback
  // Empty ODS-1 counts as D.
  CHECK(order->Find("oralDiet")
            ->Find("type")
            ->Child(0)
            .Find("coding")
            ->Child(0)
            .Find("code")
            ->Text() == "001");
  CHECK(order->Find("supplement")->Size() == 1);
  CHECK(order->Find("foodPreferenceModifier")->Child(0).Find("text")->Text() == "NoFish");
  CHECK(order->Find("status")->Text() == "active");
}

TEST_CASE("coverage: onset text and outcome date only where FHIR keeps them", "[mapping]") {
  const std::string head =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240601090000||PPR^ZD1^PPR_ZD1|C4|P|2.5\r"
      "PID|0001||0000123456^^^^PI\r";
  {
    // PRB-16 and PRB-17: the date wins, the text is reported as not kept; outcome N (not
    // recovered) does not end the condition, so PRB-15 is not an abatement (con-4).
    Mapped m;
    Map(head + "PRB|AD|20240601|20054174^X^MDCDX2|1||||||||||N^^HL70241|20240501|20240401|text\r",
        m);
    const Node* c = m.Find("Condition");
    REQUIRE(c != nullptr);
    CHECK(c->Find("onsetDateTime")->Text() == "2024-04-01");
    CHECK(c->Find("onsetString") == nullptr);
    CHECK(c->Find("abatementDateTime") == nullptr);
    // Both are reported under one code and location: the mapper keeps one per message.
    CHECK(m.sink.Count("mapping.value_not_kept") == 1);
  }
  {
    // PRB-1 DE: no clinicalStatus (con-5), so no abatement either (con-4).
    Mapped m;
    Map(head + "PRB|DE|20240601|20054174^X^MDCDX2|1|||||20240501\r", m);
    const Node* c = m.Find("Condition");
    REQUIRE(c != nullptr);
    CHECK(c->Find("clinicalStatus") == nullptr);
    CHECK(c->Find("abatementDateTime") == nullptr);
  }
}

TEST_CASE(
    "coverage: an OMD order of food preferences only keeps nor-1 through oralDiet.instruction",
    "[mapping]") {
  Mapped m;
  Map("MSH|^~\\&|HIS|SEND|GW|RCV|20240401083000||OMD^O03^OMD_O03|C5|P|2.5\r"
      "PID|0001||0000123456^^^^PI\r"
      "ORC|NW|000000000077702\r"
      "ODS|P||P01^NoFish^99DIET~P02^^99DIET\rODS|P||P03^NoEgg^99DIET|Allergy\r",
      m);
  const Node* order = m.Find("NutritionOrder");
  REQUIRE(order != nullptr);
  // Every ODS-3 repetition is a modifier; nor-1: oralDiet carries the preference texts.
  CHECK(order->Find("foodPreferenceModifier")->Size() == 3);
  REQUIRE(order->Find("oralDiet") != nullptr);
  CHECK(order->Find("oralDiet")->Find("instruction")->Text() == "NoFish / P02 / Allergy");
  CHECK(order->Find("oralDiet")->Find("type") == nullptr);
  CHECK(order->Find("supplement") == nullptr);
}

TEST_CASE("coverage: ORC-1 PA/CH, NK1-3 OTH/UNK and OBR-4 JJ1017/LENDO map without warnings",
          "[mapping]") {
  Mapped omg;
  Map("MSH|^~\\&|HIS|SEND|GW|RCV|20240403091500||OMG^O19^OMG_O19|C6|P|2.5\r"
      "PID|0001||0000456789^^^^PI\r"
      "ORC|PA|000000000099903\rOBR|1|000000000099903||1000000000000003^Xray^JJ1017\r"
      "ORC|CH|000000000099904||||||000000000099903\r"
      "OBR|1|000000000099904||2000000000000004^Scope^LENDO\r",
      omg);
  CHECK(omg.sink.Count("mapping.unmapped_code") == 0);
  CHECK(omg.sink.Count("mapping.unknown_code_system") == 0);
  std::size_t orders = 0;
  for (const auto& r : omg.result.resources) {
    if (r.type != "ServiceRequest") continue;
    ++orders;
    CHECK(r.resource.Find("status")->Text() == "active");  // parent and child orders stand
    CHECK(r.resource.Find("code")->Find("coding")->Child(0).Find("system")->Text().rfind(
              "urn:kakehashi:code-system:", 0) == 0);  // local: no registry identity given
  }
  CHECK(orders == 2);

  Mapped adt;
  Map(kAdt + "NK1|1|SATO^TARO|OTH^Other^HL70063\rNK1|2|SATO^JIRO|UNK^Unknown^HL70063\r", adt);
  CHECK(adt.sink.Count("mapping.unmapped_code") == 0);
  const Node* patient = adt.Find("Patient");
  REQUIRE(patient != nullptr);
  REQUIRE(patient->Find("contact") != nullptr);
  CHECK(patient->Find("contact")->Size() == 2);
}

namespace {

// Keeps fatal and error issues only (as `convert` without --issues): warnings and information
// issues must come in through CountOnly, counted by code, never built and reported.
class CountingSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    if (!Keeps(issue.severity)) ++built_but_not_kept;
    ++by_code[std::string(issue.code)];
  }
  bool Keeps(Severity severity) const override { return severity <= Severity::kError; }
  void CountOnly(Severity severity, std::string_view code, std::string_view field) override {
    CHECK_FALSE(Keeps(severity));
    ++by_code[std::string(code)];
    fields.emplace_back(field);
  }
  std::size_t built_but_not_kept = 0;
  std::map<std::string, std::size_t> by_code;
  std::vector<std::string> fields;
};

}  // namespace

TEST_CASE("coverage: a sink that only counts warnings gets the same counts, nothing built",
          "[mapping]") {
  // Unused fields and segments (information; two OBX-4 and two NTE: repeats of a code at one
  // field are dropped, counted or reported alike) and facility_unknown (warning, no facility).
  const std::string text =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240501120000||ADT^A08^ADT_A01|C1|P|2.5\r"
      "EVN||20240501120000\r"
      "PID|0001||0000123456^^^^PI||SATO^HANAKO^^^^^L^A||19800401|F|||||||||||||||||||||||X\r"
      "PV1|0001|O\rZZ1|1|A\rZZ1|2|B\r";
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Sink parse_issues;
  auto parsed = adapters::hl7v2::Parse(text, {}, parse_issues);
  REQUIRE(parsed.messages.size() == 1);
  mapping::Hl7v2View view(parsed.messages.front());
  mapping::SourceInfo source;
  source.kind = "hl7v2";
  source.file = "coverage.hl7";
  mapping::Mapper mapper(*rules, mapping::MapOptions{});

  Sink all;
  const mapping::MapResult full = mapper.Map(view, source, all);
  CountingSink counting;
  const mapping::MapResult counted = mapper.Map(view, source, counting);

  std::map<std::string, std::size_t> reported;
  for (const auto& issue : all.issues) ++reported[std::string(issue.code)];
  CHECK(reported["mapping.facility_unknown"] >= 1);
  CHECK(reported["mapping.unused_field"] >= 1);
  CHECK(all.Count("mapping.unused_segment", "ZZ1") == 1);  // ZZ1 twice: one issue
  CHECK(counting.by_code == reported);
  CHECK(counting.built_but_not_kept == 0);
  CHECK(std::find(counting.fields.begin(), counting.fields.end(), "ZZ1") != counting.fields.end());
  REQUIRE(full.resources.size() == counted.resources.size());
  for (std::size_t i = 0; i < full.resources.size(); ++i) {
    CHECK(full.resources[i].resource == counted.resources[i].resource);
  }
}
