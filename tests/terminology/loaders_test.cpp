#include "kakehashi/terminology/loaders.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>

namespace kt = kakehashi::terminology;

namespace {
const kt::CodeSystemRegistry& R() {
  return kt::CodeSystemRegistry::Builtin();
}

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(KAKEHASHI_SOURCE_DIR) + "/tests/terminology/fixtures/" + name,
                   std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const kt::Concept* FindConcept(const kt::ParsedMaster& m, std::string_view system,
                               std::string_view code) {
  for (const auto& c : m.content.concepts) {
    if (c.system == system && c.code == code) return &c;
  }
  return nullptr;
}

std::string Prop(const kt::Concept& c, std::string_view name) {
  for (const auto& p : c.properties) {
    if (p.code == name) return p.value;
  }
  return {};
}

std::size_t CountMappings(const kt::ParsedMaster& m, std::string_view from, std::string_view code,
                          std::string_view to) {
  return static_cast<std::size_t>(std::count_if(
      m.content.mappings.begin(), m.content.mappings.end(), [&](const kt::Mapping& x) {
        return x.source_system == from && x.source_code == code && x.target_system == to;
      }));
}

constexpr std::string_view kHot13 = "http://medis.or.jp/CodeSystem/master-HOT13";
constexpr std::string_view kHot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
constexpr std::string_view kYj = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
}  // namespace

TEST_CASE("fixtures are in the real byte format (CP932, CRLF)", "[terminology]") {
  std::string hot = Fixture("hot_cp932_crlf_quoted.csv");
  REQUIRE_FALSE(hot.empty());
  CHECK(hot.find("\r\n") != std::string::npos);
  CHECK(hot.find("\x83\x7e\x83\x84") != std::string::npos);  // ミヤ in CP932
  CHECK(hot.find('"') == 0);
}

TEST_CASE("loader hot: CP932, CRLF, quoted fields, HOT9 multimap", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kHot, Fixture("hot_cp932_crlf_quoted.csv"), "hot.csv",
                           R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->encoding == "Windows-31J");
  CHECK_FALSE(m->header);
  CHECK(m->rows == 4);
  CHECK(m->skipped == 1);  // the HOT13 with a letter
  CHECK(m->version == "20240501");
  const kt::Concept* c13 = FindConcept(*m, kHot13, "1041958010101");
  REQUIRE(c13 != nullptr);
  CHECK(c13->display == "ミヤＢＭ錠");
  CHECK(Prop(*c13, "hot9") == "104195801");
  CHECK(Prop(*c13, "jan") == "4987123456789");
  REQUIRE(FindConcept(*m, kHot9, "104195801") != nullptr);
  REQUIRE(FindConcept(*m, "http://medis.or.jp/CodeSystem/master-HOT7", "1041958") != nullptr);
  // HOT9 is not unique: two YJ codes for the same HOT9, both kept.
  CHECK(CountMappings(*m, kHot9, "104195801", kYj) == 2);
  // Quoted field with a comma and one with a doubled quote survive.
  const kt::Concept* muco = FindConcept(*m, kHot13, "1038354010101");
  REQUIRE(muco != nullptr);
  CHECK(muco->display == "ムコダイン錠２５０ｍｇ");
  CHECK(Prop(*muco, "unit") == "250mg,1錠");
  CHECK(FindConcept(*m, "urn:oid:1.2.392.100495.20.1.71", "620002023") != nullptr);
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.load.bad_row");
  CHECK(sink.Issues()[0].where.line == 4);
  CHECK(sink.Issues()[0].message.find("10419X") == std::string::npos);
}

TEST_CASE("loader ssk-drug: レセ電 -> 薬価 -> 一般名 chain, abolished codes", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kSskDrug, Fixture("ssk_drug_cp932_crlf.csv"), "y.csv",
                           R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->rows == 2);
  const kt::Concept* gaster = FindConcept(*m, "urn:oid:1.2.392.100495.20.1.71", "610406079");
  REQUIRE(gaster != nullptr);
  CHECK(gaster->display == "ガスター散２％");
  CHECK(gaster->active);
  CHECK(Prop(*gaster, "kana") == "ｶﾞｽﾀｰｻﾝ2%");
  const kt::Concept* old = FindConcept(*m, "urn:oid:1.2.392.100495.20.1.71", "610406080");
  REQUIRE(old != nullptr);
  CHECK_FALSE(old->active);
  CHECK(Prop(*old, "abolished") == "20240331");
  const kt::Concept* general = FindConcept(
      *m, "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode", "2325003B2ZZZ");
  REQUIRE(general != nullptr);
  CHECK(general->display == "【般】ファモチジン散２％");
  CHECK(CountMappings(*m, "urn:oid:1.2.392.100495.20.1.71", "610406079",
                      "urn:oid:1.2.392.100495.20.1.72") == 1);
  CHECK(CountMappings(*m, "urn:oid:1.2.392.100495.20.1.72", "2325003B2029",
                      "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode") ==
        1);
  CHECK(sink.Issues().empty());
}

TEST_CASE("loader medis-disease: 病名管理番号 <-> 交換用 <-> レセ電 <-> ICD-10", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kMedisDisease,
                           Fixture("medis_disease_cp932_crlf_quoted.csv"), "nmain.csv", R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->rows == 5);
  const kt::Concept* c =
      FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20058257");
  REQUIRE(c != nullptr);
  CHECK(c->display == "急性化膿性虫垂炎");
  CHECK(Prop(*c, "exCode") == "HR19");
  CHECK(Prop(*c, "icd10") == "K358");
  // Headerless: the ICD10 column's edition is unstated -> the WHO system, never assumed 2013.
  CHECK(CountMappings(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20058257",
                      "http://hl7.org/fhir/sid/icd-10") == 1);
  CHECK(CountMappings(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20058257",
                      "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full") == 0);
  CHECK(Prop(*c, "receipt") == "5409004");
  const kt::Concept* ex =
      FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-exCode", "HR19");
  REQUIRE(ex != nullptr);
  CHECK(ex->display == "急性化膿性虫垂炎");
  CHECK(FindConcept(*m, "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease", "0000999") !=
        nullptr);
  const kt::Concept* replaced =
      FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20000001");
  REQUIRE(replaced != nullptr);
  CHECK_FALSE(replaced->active);
  CHECK(Prop(*replaced, "replacedBy") == "20058257");
  CHECK(m->version == "20240601");
}

TEST_CASE("loader medis-disease: UTF-8 with BOM and a header with the ICD10-2013 column",
          "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kMedisDisease, Fixture("medis_disease_utf8_header.csv"),
                           "nmain.csv", R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->encoding == "UTF-8");
  CHECK(m->header);
  CHECK(m->rows == 1);
  const kt::Concept* c =
      FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20058257");
  REQUIRE(c != nullptr);
  CHECK(Prop(*c, "icd10") == "K35.8");  // the 2013 column wins over the older one
  CHECK(CountMappings(*m, "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "20058257",
                      "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full") == 1);
  CHECK(Prop(*c, "receipt") == "5409004");
}

TEST_CASE("loader medis-modifier", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kMedisModifier, Fixture("medis_modifier_cp932_crlf.csv"),
                           "mod.csv", R(), sink);
  REQUIRE(m.has_value());
  const kt::Concept* c =
      FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-modKeyNumber", "20007572");
  REQUIRE(c != nullptr);
  CHECK(c->display == "０期");
  CHECK(Prop(*c, "position") == "2");
  CHECK(FindConcept(*m, "http://medis.or.jp/CodeSystem/master-disease-modExCode", "7572") !=
        nullptr);
  CHECK(FindConcept(*m, "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterZ-disease-modifier",
                    "7572") != nullptr);
}

TEST_CASE("loader jlac10: header row detected, 15-char code kept with a warning", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kJlac10, Fixture("jlac10_cp932_crlf_header.csv"),
                           "jlac.csv", R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->header);
  CHECK(m->rows == 3);
  constexpr std::string_view kJ = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits";
  const kt::Concept* k = FindConcept(*m, kJ, "3H015000002326101");
  REQUIRE(k != nullptr);
  CHECK(k->display == "カリウム");
  CHECK(Prop(*k, "abbreviation") == "K");
  CHECK(Prop(*k, "material") == "023");
  CHECK(FindConcept(*m, kJ, "5A1002411023006") != nullptr);
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.check.bad_shape");
}

TEST_CASE("loader icd10: full and 3-digit systems", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto m = kt::ParseMaster(kt::MasterKind::kIcd10, Fixture("icd10_cp932_crlf.csv"), "icd.csv", R(),
                           sink);
  REQUIRE(m.has_value());
  CHECK(m->rows == 3);
  constexpr std::string_view kFull = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
  constexpr std::string_view kThree =
      "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-3digits";
  REQUIRE(FindConcept(*m, kFull, "K35.8") != nullptr);
  CHECK(FindConcept(*m, kFull, "K35.8")->display == "急性虫垂炎，その他及び詳細不明");
  CHECK(FindConcept(*m, kThree, "K26") != nullptr);
  CHECK(FindConcept(*m, kThree, "K35.8") == nullptr);
}

TEST_CASE("loaders: wrong kind, undecodable bytes, unterminated quote", "[terminology]") {
  kakehashi::CollectingSink sink;
  // A JLAC10 file given as HOT: no row fits -> kMasterFormat, an error issue.
  auto wrong = kt::ParseMaster(kt::MasterKind::kHot, Fixture("jlac10_cp932_crlf_header.csv"),
                               "x.csv", R(), sink);
  CHECK(wrong.error() == kt::errc::kMasterFormat);
  CHECK(sink.Issues().back().code == "terminology.load.no_rows");
  sink.Clear();
  // 0x85 0x40 is unmapped in CP932; 0xFF is never a lead byte.
  std::string bad = "K35,\xff\x85\x40\r\nK26,x\r\n";
  auto m = kt::ParseMaster(kt::MasterKind::kIcd10, bad, "bad.csv", R(), sink);
  REQUIRE(m.has_value());
  CHECK(m->rows == 2);
  bool encoding_warned = false;
  for (const auto& i : sink.Issues()) encoding_warned |= i.code == "terminology.load.encoding";
  CHECK(encoding_warned);
  sink.Clear();
  auto q = kt::ParseMaster(kt::MasterKind::kIcd10, "K35,\"open\r\n", "q.csv", R(), sink);
  REQUIRE(q.has_value());
  CHECK(sink.Issues().front().code == "terminology.load.csv_quote");
}

TEST_CASE("loaders: kind names", "[terminology]") {
  for (auto k : kt::AllMasterKinds()) CHECK(kt::MasterKindFromString(kt::ToString(k)) == k);
  CHECK_FALSE(kt::MasterKindFromString("hot9").has_value());
  CHECK(kt::AllMasterKinds().size() == 7);
}

TEST_CASE("LoadMasterFile: into a store, conceptmap TSV, missing file", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto store = kt::TerminologyStore::Open({}, R(), sink);
  REQUIRE(store.has_value());
  std::string dir = std::string(KAKEHASHI_SOURCE_DIR) + "/tests/terminology/fixtures/";
  auto rec =
      kt::LoadMasterFile(kt::MasterKind::kHot, dir + "hot_cp932_crlf_quoted.csv", **store, sink);
  REQUIRE(rec.has_value());
  CHECK(rec->kind == "hot");
  CHECK(rec->file == "hot_cp932_crlf_quoted.csv");
  CHECK((*store)->IsLoaded("hot"));
  CHECK((*store)->Find(kYj, "2316009F1030") != nullptr);
  auto cm = kt::LoadMasterFile(kt::MasterKind::kConceptMap, dir + "site-lab.tsv", **store, sink);
  REQUIRE(cm.has_value());
  CHECK(cm->source == "conceptmap:site-lab");
  auto* maps = (*store)->MappingsFrom("urn:kakehashi:code-system:99LAB", "10222");
  REQUIRE(maps != nullptr);
  CHECK((*maps)[0]->target_code == "3A010000002327101");
  CHECK((*maps)[0]->map == "urn:kakehashi:conceptmap:site-lab");
  CHECK(kt::LoadMasterFile(kt::MasterKind::kHot, dir + "nope.csv", **store, sink).error() ==
        kt::errc::kIoError);
}

// Every prefix of every fixture, for every kind: truncated or foreign input never crashes, and a
// prefix never yields more rows than the whole file.
TEST_CASE("loaders: every prefix of every fixture under every kind", "[terminology]") {
  const char* files[] = {"hot_cp932_crlf_quoted.csv",
                         "ssk_drug_cp932_crlf.csv",
                         "medis_disease_cp932_crlf_quoted.csv",
                         "medis_disease_utf8_header.csv",
                         "medis_modifier_cp932_crlf.csv",
                         "jlac10_cp932_crlf_header.csv",
                         "icd10_cp932_crlf.csv",
                         "site-lab.tsv"};
  std::size_t parsed = 0;
  for (const char* name : files) {
    std::string bytes = Fixture(name);
    REQUIRE_FALSE(bytes.empty());
    for (auto kind : kt::AllMasterKinds()) {
      kakehashi::NullSink sink;
      auto whole = kt::ParseMaster(kind, bytes, name, R(), sink);
      std::size_t whole_rows = whole ? whole->rows : 0;
      for (std::size_t n = 0; n < bytes.size(); ++n) {
        auto m = kt::ParseMaster(kind, std::string_view(bytes).substr(0, n), name, R(), sink);
        if (!m) continue;
        ++parsed;
        if (kind != kt::MasterKind::kConceptMap) CHECK(m->rows <= whole_rows);
        CHECK(m->skipped <= m->rows);
      }
    }
  }
  CHECK(parsed > 100);
}
