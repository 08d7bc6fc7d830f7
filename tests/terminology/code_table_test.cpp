#include "kakehashi/terminology/code_table.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace kt = kakehashi::terminology;

namespace {
const kt::CodeSystemRegistry& R() {
  return kt::CodeSystemRegistry::Builtin();
}
const std::string kHeader =
    "source_system\tsource_code\ttarget_system\ttarget_code\tdisplay\tversion\tcomment\n";
}  // namespace

// The guard STYLE.md asks for: every built-in table parses, with no duplicate key and no unknown
// system URI; the embedded copies are exactly the files in terminology/tables/.
TEST_CASE("code tables: every built-in table is valid", "[terminology]") {
  kakehashi::CollectingSink sink;
  std::set<std::string> names;
  for (const auto& f : kt::BuiltinTableFiles()) {
    INFO(f.name);
    names.insert(std::string(f.name));
    std::string stem(f.name.substr(0, f.name.size() - 4));
    auto table = kt::ParseCodeTable(stem, f.text, R(), sink);
    CHECK(table.has_value());
    if (table) CHECK_FALSE(table->rows.empty());
    // Same bytes as the source tree (the build embeds the files, no drift).
    std::ifstream in(
        std::string(KAKEHASHI_SOURCE_DIR) + "/terminology/tables/" + std::string(f.name),
        std::ios::binary);
    std::string disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(disk == f.text);
  }
  for (const auto& entry : std::filesystem::directory_iterator(std::string(KAKEHASHI_SOURCE_DIR) +
                                                               "/terminology/tables")) {
    if (entry.path().extension() == ".tsv")
      CHECK(names.count(entry.path().filename().string()) == 1);
  }
  for (const auto& issue : sink.Issues()) FAIL_CHECK(issue.ToString());
  CHECK(names.size() >= 15);
}

TEST_CASE("code tables: duplicate keys and unknown systems are rejected", "[terminology]") {
  kakehashi::CollectingSink sink;
  std::string dup = kHeader +
                    "HL70001\tM\thttp://hl7.org/fhir/administrative-gender\tmale\tMale\t\t\n"
                    "http://terminology.hl7.org/CodeSystem/v2-0001\tM\thttp://hl7.org/fhir/"
                    "administrative-gender\tfemale\tFemale\t\t\n";
  auto r = kt::ParseCodeTable("dup", dup, R(), sink, "dup.tsv");
  CHECK(r.error() == kt::errc::kTableSyntax);
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].code == "terminology.table.duplicate_key");
  CHECK(sink.Issues()[0].where.line == 3);
  CHECK(sink.Issues()[0].where.source == "dup.tsv");

  sink.Clear();
  std::string unknown =
      kHeader +
      "http://example.org/cs\tM\thttp://hl7.org/fhir/administrative-gender\tmale\tMale\t\t\n"
      "HL70001\tF\thttp://example.org/other\tfemale\tFemale\t\t\n";
  CHECK(kt::ParseCodeTable("u", unknown, R(), sink).error() == kt::errc::kTableSyntax);
  REQUIRE(sink.Issues().size() == 2);
  CHECK(sink.Issues()[0].code == "terminology.table.unknown_system");
  CHECK(sink.Issues()[1].code == "terminology.table.unknown_system");

  // Same source code to two different target systems, or in two versions, is not a duplicate.
  sink.Clear();
  std::string ok =
      kHeader +
      "HL70063\tSEL\thttp://terminology.hl7.org/CodeSystem/v3-RoleCode\tONESELF\tself\t\t\n"
      "HL70063\tSEL\thttp://terminology.hl7.org/CodeSystem/"
      "subscriber-relationship\tself\tSelf\t\t\n"
      "HL70063\tSPO\thttp://terminology.hl7.org/CodeSystem/"
      "v3-RoleCode\tSPS\tspouse\tjp-core-1.1.2\t\n"
      "HL70063\tSPO\thttp://terminology.hl7.org/CodeSystem/"
      "v3-RoleCode\tSPS\tspouse\tjp-core-1.2.0\t\n";
  auto table = kt::ParseCodeTable("ok", ok, R(), sink);
  REQUIRE(table.has_value());
  CHECK(table->rows.size() == 4);
  CHECK(table->rows[0].source_system == "http://terminology.hl7.org/CodeSystem/v2-0063");
}

TEST_CASE("code tables: header, columns and version are checked", "[terminology]") {
  kakehashi::CollectingSink sink;
  CHECK(kt::ParseCodeTable("h", "a\tb\n", R(), sink).error() == kt::errc::kTableSyntax);
  CHECK(sink.Issues().back().code == "terminology.table.columns");
  sink.Clear();
  CHECK(kt::ParseCodeTable("c", kHeader + "HL70001\tM\n", R(), sink).error() ==
        kt::errc::kTableSyntax);
  CHECK(sink.Issues().back().code == "terminology.table.columns");
  sink.Clear();
  CHECK(
      kt::ParseCodeTable("v", kHeader + "HL70001\tM\t\t\tMale\tjp-core-9\t\n", R(), sink).error() ==
      kt::errc::kTableSyntax);
  CHECK(sink.Issues().back().code == "terminology.table.bad_version");
  sink.Clear();
  CHECK(kt::ParseCodeTable("m", kHeader + "HL70001\tM\tHL70002\t\tMale\t\t\n", R(), sink).error() ==
        kt::errc::kTableSyntax);
  CHECK(sink.Issues().back().code == "terminology.table.missing_code");
  // Comments, blank lines and CRLF are fine.
  sink.Clear();
  auto t =
      kt::ParseCodeTable("ok", "# c\r\n" + kHeader + "\r\nHL70001\tM\t\t\tMale\t\t\r\n", R(), sink);
  REQUIRE(t.has_value());
  REQUIRE(t->rows.size() == 1);
  CHECK(t->rows[0].display == "Male");
  CHECK(t->rows[0].line == 4);
}

TEST_CASE("code tables: content and site overrides shadow file by file", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto dir = std::filesystem::temp_directory_path() / "kakehashi_term_site_tables";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "v2-0001-administrative-gender.tsv");
    f << kHeader << "HL70001\tM\thttp://hl7.org/fhir/administrative-gender\tmale\t男性\t\t\n";
    std::ofstream g(dir / "site-extra.tsv");
    g << kHeader << "99LAB\t1\tJC10\t3H015000002326101\tK\t\t\n";
    std::ofstream ignored(dir / "notes.txt");
    ignored << "not a table";
  }
  auto tables = kt::LoadCodeTables(R(), dir, sink);
  REQUIRE(tables.has_value());
  CHECK(tables->size() == kt::BuiltinTableFiles().size() + 1);
  bool saw_override = false;
  for (const auto& t : *tables) {
    if (t.name == "v2-0001-administrative-gender") {
      REQUIRE(t.rows.size() == 1);  // the site file replaced the built-in one entirely
      CHECK(t.rows[0].display == "男性");
      saw_override = true;
      auto content = t.ToContent();
      REQUIRE(content.mappings.size() == 1);
      CHECK(content.mappings[0].map == "urn:kakehashi:conceptmap:v2-0001-administrative-gender");
      CHECK(content.mappings[0].target_code == "male");
    }
    if (t.name == "site-extra") {
      CHECK(t.rows[0].source_system == "urn:kakehashi:code-system:99LAB");
      CHECK(t.rows[0].target_system == "http://medis.or.jp/CodeSystem/master-JLAC10-17digits");
    }
  }
  CHECK(saw_override);
  CHECK(kt::LoadCodeTables(R(), dir / "missing", sink).error() == kt::errc::kIoError);
  std::filesystem::remove_all(dir);
}
