#include "kakehashi/mapping/converter.hpp"

#include "kakehashi/fhir/json.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace kakehashi;

namespace {

// Records what the converter emits.
class Recorder final : public mapping::OutputSink {
 public:
  void Put(const std::string& type, const std::string& id, fhir::Node) override {
    log.push_back("PUT " + type + "/" + id);
  }
  void Delete(const std::string& type, const std::string& id) override {
    log.push_back("DELETE " + type + "/" + id);
  }
  std::size_t Count(std::string_view prefix) const {
    std::size_t n = 0;
    for (const auto& l : log) n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  std::vector<std::string> log;
};

std::string Ppr(const std::string& control_id, std::initializer_list<const char*> problems) {
  std::string m = "MSH|^~\\&|HIS|SEND|GW|RCV|20240601100000||PPR^ZD1^PPR_ZD1|" + control_id +
                  "|P|2.5\rPID|0001||0000000001^^^^PI\r";
  for (const char* id : problems) {
    m += std::string("PRB|AD|20240601|20054174^胃炎^MDCDX2|") + id + "|||20240601\r";
  }
  return m;
}

// An ADT message of stay V1 (HL7 v2.5; EVN-2 = MSH-7 = `when`); `pv1_tail` starts at PV1-3.
std::string Adt(const char* trigger, const char* control, const char* when,
                const std::string& pv1_tail) {
  return std::string("MSH|^~\\&|HIS|SEND|GW|RCV|") + when + "||ADT^" + trigger + "|" + control +
         "|P|2.5\rEVN||" + when + "\rPID|0001||0000000001^^^^PI\rPV1|0001|I|" + pv1_tail + "\r";
}

// PV1-3 = `ward`, PV1-19 = V1 (16 fields after PV1-3); PV1-44/45 follow after 25/26 more bars.
std::string WardTo19(const char* ward) {
  return std::string(ward) + std::string(16, '|') + "V1";
}

// The JSON of the one Encounter that `messages` HL7 v2 messages in `input` yield.
std::string EncounterOfHl7(const mapping::RuleSet& rules, const std::string& input,
                           std::size_t messages) {
  mapping::Converter converter(rules, {});
  mapping::BundleBuilder bundle;
  CollectingSink issues;
  REQUIRE(converter.ConvertHl7(input, "input.hl7", bundle, issues) == messages);
  std::size_t encounters = 0;
  std::string text;
  for (const auto& e : bundle.Entries()) {
    if (e.type != "Encounter") continue;
    ++encounters;
    fhir::WriteJson(e.resource, text);
  }
  REQUIRE(encounters == 1);
  return text;
}

struct Store {
  Store() {
    root = fs::temp_directory_path() / ("kakehashi_conv_" + std::to_string(::getpid()));
    fs::remove_all(root);
  }
  ~Store() { fs::remove_all(root); }
  adapters::ssmix2::StoredFile Add(const std::string& name, const std::string& text) {
    auto parsed = adapters::ssmix2::ParseFileName(name);
    REQUIRE(parsed);
    fs::path dir = root / "000/000/0000000001" / parsed->care_date / parsed->data_type;
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << text;
    return {dir / name,
            "000/000/0000000001/" + parsed->care_date + "/" + parsed->data_type + "/" + name,
            *parsed};
  }
  fs::path root;
};

}  // namespace

TEST_CASE("converter: a snapshot deletes what the newer version no longer lists", "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Store store;
  adapters::ssmix2::StorageRecord record;
  record.type = adapters::ssmix2::FindDataType("PPR-01");
  record.superseded.push_back(
      store.Add("0000000001_-_PPR-01_999999999999999_20240501100000000_01_2",
                Ppr("A1", {"101", "102", "103"})));
  record.file = store.Add("0000000001_-_PPR-01_999999999999999_20240601100000000_01_1",
                          Ppr("A2", {"101", "103"}));
  mapping::Converter converter(*rules, {});
  Recorder out;
  CollectingSink issues;
  converter.ConvertRecord(record, out, issues);
  CHECK(out.Count("DELETE Condition/") == 1);
  CHECK(out.Count("PUT Condition/") == 2);
  CHECK(out.Count("PUT Provenance/") == 1);
  CHECK(out.Count("DELETE Provenance/") == 0);
  CHECK(converter.Stats().deleted_by_type.at("Condition") == 1);
  CHECK(converter.Stats().messages == 1);  // the previous version is read, not counted
  // The deleted one is the condition that disappeared (PRB-4 102): converting the old version
  // alone yields its id among the three.
  mapping::Converter alone(*rules, {});
  Recorder old_out;
  adapters::ssmix2::StorageRecord old_record;
  old_record.type = record.type;
  old_record.file = record.superseded.front();
  alone.ConvertRecord(old_record, old_out, issues);
  std::string deleted = out.log.front().substr(7);
  bool found = false;
  for (const auto& l : old_out.log) found = found || l == "PUT " + deleted;
  CHECK(found);
  for (const auto& l : out.log) CHECK(l != "PUT " + deleted);
}

TEST_CASE("converter: a deleted key deletes what its message yields, never puts", "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Store store;
  adapters::ssmix2::StorageRecord record;
  record.action = adapters::ssmix2::Action::kDelete;
  record.type = adapters::ssmix2::FindDataType("PPR-01");
  record.file = store.Add("0000000001_-_PPR-01_999999999999999_20240601100000000_01_0",
                          Ppr("D1", {"201", "202"}));
  mapping::Converter converter(*rules, {});
  Recorder out;
  CollectingSink issues;
  converter.ConvertRecord(record, out, issues);
  CHECK(out.Count("DELETE Condition/") == 2);
  CHECK(out.Count("PUT ") == 0);
}

TEST_CASE("converter: unreadable files and non-HL7 bytes are issues, not crashes", "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  mapping::Converter converter(*rules, {});
  Recorder out;
  CollectingSink issues;
  adapters::ssmix2::StorageRecord record;
  record.file.path = "/nonexistent/kakehashi/file";
  record.file.relative = "x/y";
  converter.ConvertRecord(record, out, issues);
  CHECK(out.log.empty());
  bool unreadable = false;
  for (const auto& i : issues.Issues())
    unreadable = unreadable || i.code == "ssmix2.unreadable_file";
  CHECK(unreadable);
  CHECK(converter.ConvertHl7("not hl7 at all\n", "x.txt", out, issues) == 0);
  CHECK(converter.Stats().unusable == 2);
  CHECK(out.log.empty());
}

TEST_CASE(
    "converter: an extended-storage record is a DocumentReference; main_document.hl7 is "
    "also mapped when a rule covers it",
    "[mapping]") {
  Store store;
  const std::string type = "L-OBSERVATIONS^OBSERVATIONS^99ZL01";
  const std::string folder = "0000000001_20240401_" + type + "_V1_20240401120000000_1";
  const fs::path dir = store.root / "000/000/0000000001/20240401" / type / folder;
  fs::create_directories(dir);
  std::ofstream(dir / "main_document.hl7", std::ios::binary)
      << "MSH|^~\\&|VITAL|1312345679|GW|RCV|20240401120000||ORU^R30^ORU_R30|V1|P|2.5\r"
         "PID|0001||0000000001^^^^PI\rOBR|1||V1\r"
         "OBX|1|NM|9A751000000000001^収縮期血圧^JC10||128|mmHg^mmHg^ISO+|||||F\r";
  adapters::ssmix2::StorageRecord record;
  record.file.path = dir / "main_document.hl7";
  record.file.relative = "000/000/0000000001/20240401/" + type + "/" + folder;
  auto name =
      adapters::ssmix2::ParseFileName("0000000001_20240401_" + type + "_V1_20240401120000000_-_1");
  REQUIRE(name);
  record.file.name = *name;
  record.extended_type = type;
  record.extended_files = {"main_document.hl7"};

  // Built-in rules: the content folder is a DocumentReference, and main_document.hl7 (ORU^R30,
  // message/EXT-VITALS.json) is mapped too: an Observation per OBX plus its Provenance.
  auto builtin = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(builtin.has_value());
  mapping::MapOptions options;
  options.facility_code = "1312345679";
  {
    mapping::Converter converter(*builtin, options);
    Recorder out;
    CollectingSink issues;
    converter.ConvertRecord(record, out, issues);
    // Provenances: one for the message, one for the content folder (the document's source).
    CHECK(out.log.size() == 4);
    CHECK(out.Count("PUT DocumentReference/") == 1);
    CHECK(out.Count("PUT Observation/") == 1);
    CHECK(out.Count("PUT Provenance/") == 2);
    CHECK(converter.Stats().messages == 1);
    CHECK(issues.Counts().Errors() == 0);
  }
  // A site rule set without a rule for ORU^R30 (the built-in one shadowed by an OUL^R22-only
  // file): only the DocumentReference, no unmapped-message copy of the same file.
  const fs::path site = store.root / "site";
  fs::create_directories(site / "message");
  std::ofstream(site / "message" / "EXT-VITALS.json")
      << R"({ "data_type": "EXT-VITALS", "messages": ["OUL^R99"], "context": ["PID"],
              "resources": [{ "resource": "Observation_Vitals", "each": "OBX" }] })";
  auto with_site = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), site);
  REQUIRE(with_site.has_value());
  {
    mapping::Converter converter(*with_site, options);
    Recorder out;
    CollectingSink issues;
    converter.ConvertRecord(record, out, issues);
    CHECK(out.log.size() == 2);
    CHECK(out.Count("PUT DocumentReference/") == 1);
    CHECK(out.Count("PUT Provenance/") == 1);
  }
  // The content folder renamed _0: one DELETE of the same DocumentReference.
  mapping::Converter converter(*builtin, options);
  Recorder put;
  CollectingSink issues;
  converter.ConvertRecord(record, put, issues);
  record.action = adapters::ssmix2::Action::kDelete;
  Recorder del;
  converter.ConvertRecord(record, del, issues);
  REQUIRE(del.log.size() == 1);
  CHECK(del.log[0] == "DELETE" + put.log[0].substr(3));
}

TEST_CASE("converter: a deleted ADT key withdraws its own contribution, never the stay",
          "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Store store;
  const std::string pid = "PID|0001||0000000001^^^^PI\r";
  auto adt01 = [&](const char* trigger, const char* doctor) {
    return std::string("MSH|^~\\&|HIS|SEND|GW|RCV|20240405093000||ADT^") + trigger +
           "|C1|P|2.5\rEVN||20240405093000||||20240405090000\r" + pid + "PV1|0001|I|||||" + doctor +
           "^Doctor||||||||||||V1\r";
  };
  adapters::ssmix2::StorageRecord a01;
  a01.type = adapters::ssmix2::FindDataType("ADT-22");
  a01.file = store.Add(
      "0000000001_20240401_ADT-22_999999999999999_20240401110000000_01_1",
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401110000||ADT^A01|C0|P|2.5\rEVN||20240401110000\r" + pid +
          "PV1|0001|I|3A^301^2||||D001^Old|||01|||||||D002^Adm||V1|||||||||||||||||||||||||"
          "20240401100000\r");
  adapters::ssmix2::StorageRecord deleted;
  deleted.type = adapters::ssmix2::FindDataType("ADT-01");
  deleted.action = adapters::ssmix2::Action::kDelete;
  auto encounter_of = [](const mapping::BundleBuilder& bundle) {
    std::string text;
    std::size_t n = 0;
    for (const auto& e : bundle.Entries()) {
      if (e.type != "Encounter") continue;
      ++n;
      if (e.method == mapping::BundleEntry::Method::kDelete) return std::string("DELETE");
      fhir::WriteJson(e.resource, text);
    }
    CHECK(n <= 1);
    return text;
  };
  for (const char* trigger : {"A55", "A54"}) {
    INFO(trigger);
    // The flag-0 file is the cancel A55 (naming the reinstated attending D001), or a copy of the
    // A54 (D009) it deletes: either way the attending change is withdrawn; the admission stays.
    deleted.file = store.Add(std::string("0000000001_-_ADT-01_999999999999999_2024040510000000") +
                                 (trigger[2] == '5' ? "0" : "1") + "_01_0",
                             adt01(trigger, trigger[2] == '5' ? "D001" : "D009"));
    mapping::Converter converter(*rules, {});
    mapping::BundleBuilder bundle;
    CollectingSink issues;
    converter.ConvertRecord(deleted, bundle, issues);  // under "-": read first
    converter.ConvertRecord(a01, bundle, issues);
    const std::string text = encounter_of(bundle);
    CHECK(text.find("\"D001\"") != std::string::npos);
    CHECK(text.find("\"D009\"") == std::string::npos);
    CHECK(text.find("\"D002\"") != std::string::npos);
    CHECK(text.find("3A 301 2") != std::string::npos);
    for (const auto& i : issues.Issues()) {  // no warning: the withdrawal is the rule
      INFO(i.ToString());
      CHECK((i.severity == Severity::kInformation || i.code == "mapping.facility_unknown"));
    }
    // Alone (a delta root): the run holds no live message of the stay, so its Encounter is left
    // alone (neither a DELETE nor a sparse PUT); `kakehashi import` merges it across imports.
    mapping::Converter alone(*rules, {});
    Recorder out;
    CollectingSink quiet;
    alone.ConvertRecord(deleted, out, quiet);
    CHECK(out.log.empty());
  }
  // The key that opened the stay (ADT-22) deleted and nothing live left: DELETE.
  adapters::ssmix2::StorageRecord a11;
  a11.type = adapters::ssmix2::FindDataType("ADT-22");
  a11.action = adapters::ssmix2::Action::kDelete;
  a11.file = store.Add(
      "0000000001_20240401_ADT-22_999999999999999_20240402110000000_01_0",
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240402110000||ADT^A11|C3|P|2.5\rEVN||20240402110000\r" + pid +
          "PV1|0001|I|||||||||||||||||V1\r");
  mapping::Converter converter(*rules, {});
  Recorder out;
  CollectingSink quiet;
  converter.ConvertRecord(a11, out, quiet);
  CHECK(out.log.size() == 1);
  CHECK(out.Count("DELETE Encounter/") == 1);
}

TEST_CASE("converter: ADT messages of one stay merge into one Encounter in storing order",
          "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Store store;
  const std::string pid = "PID|0001||0000000001^^^^PI\r";
  // ADT-01 (A54, new attending D009) sits under "-" and is read first, but was stored after the
  // admission; ADT-22 (A01) holds the ward, the admitting doctor and PV1-44.
  adapters::ssmix2::StorageRecord a54;
  a54.type = adapters::ssmix2::FindDataType("ADT-01");
  a54.file = store.Add("0000000001_-_ADT-01_999999999999999_20240405100000000_01_1",
                       "MSH|^~\\&|HIS|SEND|GW|RCV|20240405100000||ADT^A54|C2|P|2.5\r"
                       "EVN||20240405100000||||20240405090000\r" +
                           pid + "PV1|0001|I|||||D009^New||||||||||||V1\r");
  adapters::ssmix2::StorageRecord a01;
  a01.type = adapters::ssmix2::FindDataType("ADT-22");
  a01.file = store.Add(
      "0000000001_20240401_ADT-22_999999999999999_20240401110000000_01_1",
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401110000||ADT^A01|C1|P|2.5\rEVN||20240401110000\r" + pid +
          "PV1|0001|I|3A^301^2||||D001^Old|||01|||||||D002^Adm||V1|||||||||||||||||||||||||"
          "20240401100000\r");
  mapping::Converter converter(*rules, {});
  mapping::BundleBuilder bundle;
  CollectingSink issues;
  converter.ConvertRecord(a54, bundle, issues);
  converter.ConvertRecord(a01, bundle, issues);
  const fhir::Node* encounter = nullptr;
  std::size_t encounters = 0;
  for (const auto& e : bundle.Entries()) {
    if (e.type == "Encounter") {
      ++encounters;
      encounter = &e.resource;
    }
  }
  REQUIRE(encounters == 1);
  std::string text;
  fhir::WriteJson(*encounter, text);
  // The A01's admission data survive the sparser A54, and the A54 (stored later) decides the
  // attending: D009, not D001.
  CHECK(text.find("\"start\":\"2024-04-01T10:00:00+09:00\"") != std::string::npos);
  CHECK(text.find("\"D002\"") != std::string::npos);
  CHECK(text.find("\"D009\"") != std::string::npos);
  CHECK(text.find("\"D001\"") == std::string::npos);
  CHECK(text.find("3A 301 2") != std::string::npos);
}

TEST_CASE("converter: extended-storage CDA header, malformed XML and non-CDA XML", "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  Store store;
  const std::string type = "^退院時サマリー^^18842-5^退院時サマリー^LN";
  auto record_for = [&](const std::string& key, const std::string& xml) {
    const std::string folder = "0000000001_20240401_" + type + "_" + key + "_20240401120000000_1";
    const fs::path dir = store.root / "000/000/0000000001/20240401" / type / folder;
    fs::create_directories(dir);
    std::ofstream(dir / "document.xml", std::ios::binary) << xml;
    adapters::ssmix2::StorageRecord record;
    record.file.path = dir / "document.xml";
    record.file.relative = "000/000/0000000001/20240401/" + type + "/" + folder;
    auto name = adapters::ssmix2::ParseFileName(folder.substr(0, folder.size() - 2) + "_-_1");
    REQUIRE(name);
    record.file.name = *name;
    record.extended_type = type;
    record.extended_files = {"document.xml"};
    return record;
  };
  auto convert = [&](const adapters::ssmix2::StorageRecord& record, CollectingSink& issues) {
    mapping::Converter converter(*rules, {});
    mapping::BundleBuilder bundle;
    converter.ConvertRecord(record, bundle, issues);
    REQUIRE(bundle.Size() == 2);  // DocumentReference + Provenance
    CHECK(bundle.Entries()[1].type == "Provenance");
    std::string text;
    fhir::WriteJson(bundle.Entries()[0].resource, text);
    return text;
  };
  auto warned = [](const CollectingSink& issues) {
    std::size_t n = 0;
    for (const auto& i : issues.Issues()) n += i.code == "ssmix2.cda_unreadable" ? 1 : 0;
    return n;
  };
  {  // A prefixed CDA header, time without zone (JST), an organisation author.
    CollectingSink issues;
    const std::string doc = convert(
        record_for("C1",
                   "<?xml version=\"1.0\"?><cda:ClinicalDocument xmlns:cda=\"urn:hl7-org:v3\">"
                   "<cda:id root=\"1.2.3\"/><cda:code code=\"18842-5\" "
                   "codeSystem=\"2.16.840.1.113883.6.1\"/><cda:title>T</cda:title>"
                   "<cda:effectiveTime value=\"202404011230\"/><cda:author><cda:assignedAuthor>"
                   "<cda:representedOrganization><cda:name>病院</cda:name>"
                   "</cda:representedOrganization></cda:assignedAuthor></cda:author>"
                   "</cda:ClinicalDocument>"),
        issues);
    CHECK(warned(issues) == 0);
    CHECK(doc.find("\"masterIdentifier\":{\"system\":\"urn:ietf:rfc:3986\",\"value\":"
                   "\"urn:oid:1.2.3\"}") != std::string::npos);
    CHECK(doc.find("\"creation\":\"2024-04-01T12:30:00+09:00\"") != std::string::npos);
    CHECK(doc.find("\"description\":\"T\"") != std::string::npos);
    CHECK(doc.find("\"author\":[{\"display\":\"病院\"}]") != std::string::npos);
    // The type folder already has LOINC 18842-5: no second copy from the header.
    CHECK(doc.find("18842-5") == doc.rfind("18842-5"));
  }
  {  // Not well-formed: kept, warned, no header data.
    CollectingSink issues;
    const std::string doc = convert(record_for("C2", "<ClinicalDocument><title>x</titl>"), issues);
    CHECK(warned(issues) == 1);
    CHECK(doc.find("description") == std::string::npos);
    CHECK(doc.find("\"data\"") != std::string::npos);
  }
  {  // Well-formed XML that is not CDA: kept, no warning, no header data.
    CollectingSink issues;
    const std::string doc = convert(record_for("C3", "<report><title>x</title></report>"), issues);
    CHECK(warned(issues) == 0);
    CHECK(doc.find("description") == std::string::npos);
  }
}

TEST_CASE("converter: a cancelled discharge (A13) after A03 leaves the stay open", "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  const char* when = "20240410110000";
  const std::string to19 = WardTo19("3A^301^2");  // PV1-44 admission, PV1-45 discharge
  const std::string input = Adt("A01", "C1", when, to19 + std::string(25, '|') + "20240401100000") +
                            Adt("A03", "C2", when, to19 + std::string(26, '|') + "20240410103000") +
                            Adt("A13", "C3", when, to19);
  const std::string text = EncounterOfHl7(*rules, input, 3);
  CHECK(text.find("\"status\":\"in-progress\"") != std::string::npos);
  CHECK(text.find("\"start\":\"2024-04-01T10:00:00+09:00\"") != std::string::npos);
  CHECK(text.find("\"end\"") == std::string::npos);  // the A03's PV1-45 does not survive A13
}

TEST_CASE("converter: a late cancel of an earlier event leaves a discharged stay finished",
          "[mapping]") {
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  REQUIRE(rules.has_value());
  const std::string admit = Adt("A01", "C1", "20240401100000",
                                WardTo19("3A^301^2") + std::string(25, '|') + "20240401100000");
  const std::string transfer = Adt("A02", "C2", "20240405090000", WardTo19("4B^402^1"));
  const std::string discharge = Adt("A03", "C3", "20240410103000",
                                    WardTo19("4B^402^1") + std::string(26, '|') + "20240410103000");
  {  // A12 after the A03: the transfer is reversed, the stay stays finished with its end.
    const std::string text = EncounterOfHl7(
        *rules,
        admit + transfer + discharge + Adt("A12", "C4", "20240411090000", WardTo19("3A^301^2")), 4);
    CHECK(text.find("\"status\":\"finished\"") != std::string::npos);
    CHECK(text.find("\"end\":\"2024-04-10T10:30:00+09:00\"") != std::string::npos);
  }
  {  // The A13 after the same A03 still reopens the stay (it cancels the latest event).
    const std::string text = EncounterOfHl7(
        *rules,
        admit + transfer + discharge + Adt("A13", "C4", "20240411090000", WardTo19("4B^402^1")), 4);
    CHECK(text.find("\"status\":\"in-progress\"") != std::string::npos);
    CHECK(text.find("\"end\"") == std::string::npos);
  }
  {  // An A12 before the discharge sets the status as before (nothing later than the A02).
    const std::string text = EncounterOfHl7(
        *rules, admit + transfer + Adt("A12", "C4", "20240406090000", WardTo19("3A^301^2")), 3);
    CHECK(text.find("\"status\":\"in-progress\"") != std::string::npos);
  }
}
