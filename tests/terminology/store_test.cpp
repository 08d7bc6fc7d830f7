#include "kakehashi/terminology/store.hpp"

#include "kakehashi/terminology/code_table.hpp"
#include "kakehashi/terminology/errc.hpp"

#include "sql_database.hpp"  // private: the statement texts for the PostgreSQL test

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace kt = kakehashi::terminology;

namespace {
const kt::CodeSystemRegistry& R() {
  return kt::CodeSystemRegistry::Builtin();
}
constexpr const char* kYj = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
constexpr const char* kHot9 = "http://medis.or.jp/CodeSystem/master-HOT9";

kt::TerminologyContent Sample(const std::string& display) {
  kt::TerminologyContent c;
  kt::Concept yj;
  yj.system = kYj;
  yj.code = "2316009F1022";
  yj.display = display;
  yj.properties.push_back({"kana", "ﾐﾔBM"});
  c.concepts.push_back(yj);
  kt::Mapping m;
  m.map = kt::ConceptMapUrl("test");
  m.source_system = kHot9;
  m.source_code = "104195801";
  m.target_system = kYj;
  m.target_code = "2316009F1022";
  c.mappings.push_back(m);
  c.mappings.push_back(m);  // duplicates collapse
  return c;
}
}  // namespace

TEST_CASE("store: built-in tables are in the cache", "[terminology]") {
  kakehashi::CollectingSink sink;
  auto store = kt::TerminologyStore::Open({}, R(), sink);
  REQUIRE(store.has_value());
  const kt::Concept* male = (*store)->Find("http://hl7.org/fhir/administrative-gender", "male");
  REQUIRE(male != nullptr);
  CHECK(male->display == "Male");
  auto* maps = (*store)->MappingsFrom("http://terminology.hl7.org/CodeSystem/v2-0001", "M");
  REQUIRE(maps != nullptr);
  CHECK((*maps)[0]->target_code == "male");
  CHECK((*store)->HasSystem("http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits"));
  CHECK((*store)->ConceptCount("http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits") ==
        47);
  CHECK_FALSE((*store)->HasSystem(kHot9));
  CHECK((*store)->Stats().builtin_tables == kt::BuiltinTableFiles().size());
}

TEST_CASE("store: Put persists to SQLite, survives reopen, replaces by source", "[terminology]") {
  auto path = std::filesystem::temp_directory_path() / "kakehashi_term_store" / "t.sqlite";
  std::filesystem::remove_all(path.parent_path());
  kakehashi::CollectingSink sink;
  kt::TerminologyStore::Options options;
  options.db = "sqlite:" + path.string();
  options.builtin_tables = false;
  {
    auto store = kt::TerminologyStore::Open(options, R(), sink);
    REQUIRE(store.has_value());
    kt::LoadRecord rec;
    rec.kind = "hot";
    rec.source = "hot";
    rec.file = "a.csv";
    rec.loaded_at = "2026-11-30T00:00:00Z";
    REQUIRE((*store)->Put(Sample("ミヤＢＭ錠"), rec).has_value());
    CHECK((*store)->IsLoaded("hot"));
    CHECK((*store)->MappingsFrom(kHot9, "104195801")->size() == 1);
  }
  auto store = kt::TerminologyStore::Open(options, R(), sink);
  REQUIRE(store.has_value());
  const kt::Concept* c = (*store)->Find(kYj, "2316009F1022");
  REQUIRE(c != nullptr);
  CHECK(c->display == "ミヤＢＭ錠");
  REQUIRE(c->properties.size() == 1);
  CHECK(c->properties[0].value == "ﾐﾔBM");
  REQUIRE((*store)->MappingsTo(kYj, "2316009F1022") != nullptr);
  auto stats = (*store)->Stats();
  REQUIRE(stats.loads.size() == 1);
  CHECK(stats.loads[0].concepts == 1);
  CHECK(stats.loads[0].mappings == 1);
  CHECK(stats.concepts_by_system[kYj] == 1);

  // A second load of the same source replaces the first one.
  kt::LoadRecord rec;
  rec.kind = "hot";
  rec.source = "hot";
  kt::TerminologyContent other;
  kt::Concept yj;
  yj.system = kYj;
  yj.code = "9999999F9999";
  yj.display = "other";
  other.concepts.push_back(yj);
  REQUIRE((*store)->Put(other, rec).has_value());
  CHECK((*store)->Find(kYj, "2316009F1022") == nullptr);
  CHECK((*store)->Find(kYj, "9999999F9999") != nullptr);
  CHECK((*store)->MappingsFrom(kHot9, "104195801") == nullptr);
  CHECK((*store)->Stats().loads.size() == 1);
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("store: preload = false reads the database on first use, with the same answers",
          "[terminology]") {
  auto path = std::filesystem::temp_directory_path() / "kakehashi_term_store_lazy" / "t.sqlite";
  std::filesystem::remove_all(path.parent_path());
  kakehashi::CollectingSink sink;
  kt::TerminologyStore::Options options;
  options.db = "sqlite:" + path.string();
  {
    auto writer = kt::TerminologyStore::Open(options, R(), sink);
    REQUIRE(writer.has_value());
    kt::LoadRecord rec;
    rec.kind = "hot";
    rec.source = "hot";
    REQUIRE((*writer)->Put(Sample("ミヤＢＭ錠"), rec).has_value());
  }
  options.preload = false;
  auto store = kt::TerminologyStore::Open(options, R(), sink);
  REQUIRE(store.has_value());
  auto& lazy = **store;
  // Nothing of the database is in the cache yet; the loads are known.
  CHECK(lazy.Stats().concepts_by_system.count(kYj) == 0);
  CHECK(lazy.IsLoaded("hot"));
  CHECK(lazy.HasSystem(kYj));
  CHECK_FALSE(lazy.HasSystem(kHot9));  // only a mapping source, no concept
  const kt::Concept* c = lazy.Find(kYj, "2316009F1022");
  REQUIRE(c != nullptr);
  CHECK(c->display == "ミヤＢＭ錠");
  REQUIRE(c->properties.size() == 1);
  CHECK(c->properties[0].value == "ﾐﾔBM");
  CHECK(lazy.Find(kYj, "2316009F1022") == c);  // kept: the same address on the next use
  CHECK(lazy.Find(kYj, "0000000X0000") == nullptr);
  CHECK(lazy.Find(kYj, "0000000X0000") == nullptr);  // absence is kept too
  // Built-in tables still answer, merged with the database.
  const kt::Concept* male = lazy.Find("http://hl7.org/fhir/administrative-gender", "male");
  REQUIRE(male != nullptr);
  CHECK(male->display == "Male");
  REQUIRE(lazy.MappingsFrom("http://terminology.hl7.org/CodeSystem/v2-0001", "M") != nullptr);
  const auto* from = lazy.MappingsFrom(kHot9, "104195801");
  REQUIRE(from != nullptr);
  CHECK(from->size() == 1);  // the duplicate row collapsed
  CHECK((*from)[0]->target_code == "2316009F1022");
  const auto* to = lazy.MappingsTo(kYj, "2316009F1022");
  REQUIRE(to != nullptr);
  CHECK((*to)[0]->source_code == "104195801");
  CHECK(lazy.MappingsFrom(kHot9, "000000001") == nullptr);
  // Concurrent lookups (the convert workers share one store).
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        char code[16];
        std::snprintf(code, sizeof code, "X%d", (i + t) % 50);
        if (lazy.Find(kYj, code) != nullptr) ++wrong;
        const kt::Concept* hit = lazy.Find(kYj, "2316009F1022");
        if (hit == nullptr || hit->display != "ミヤＢＭ錠") ++wrong;
        if (lazy.MappingsTo(kYj, "2316009F1022") == nullptr) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  // A Put through the lazy store is read back from the database.
  kt::LoadRecord rec;
  rec.kind = "hot";
  rec.source = "hot";
  REQUIRE(lazy.Put(Sample("新しい名称"), rec).has_value());
  REQUIRE(lazy.Find(kYj, "2316009F1022") != nullptr);
  CHECK(lazy.Find(kYj, "2316009F1022")->display == "新しい名称");
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("store: unsupported database URLs", "[terminology]") {
  kakehashi::CollectingSink sink;
  kt::TerminologyStore::Options options;
  options.db = "postgresql://localhost/x";
  CHECK(kt::TerminologyStore::Open(options, R(), sink).error() == kt::errc::kUnsupportedDb);
  options.db = "sqlite:";
  CHECK(kt::TerminologyStore::Open(options, R(), sink).error() == kt::errc::kUnsupportedDb);
  options.db = "sqlite:/proc/nonexistent/dir/x.sqlite";
  CHECK(kt::TerminologyStore::Open(options, R(), sink).error() == kt::errc::kDatabase);
}

// The same DDL and write statements on PostgreSQL (digest: the store must run on both). Uses the
// throwaway cluster of tests/gateway (fixture gateway_pg, tools/pg_test_server.sh) or
// $KAKEHASHI_TEST_PG_URL; runs the exact statement texts through psql with PREPARE/EXECUTE.
TEST_CASE("store: schema and statements run on PostgreSQL", "[.postgres]") {
  std::string url;
  if (const char* env = std::getenv("KAKEHASHI_TEST_PG_URL")) url = env;
  if (url.empty()) {
    std::ifstream in(std::string(KAKEHASHI_BINARY_DIR) + "/tests/gateway/pg/url");
    std::getline(in, url);
  }
  REQUIRE_FALSE(url.empty());
  std::string schema = "kakehashi_term_test_" + std::to_string(::getpid());
  std::string script = "\\set ON_ERROR_STOP 1\nCREATE SCHEMA " + schema + ";\nSET search_path TO " +
                       schema + ";\n" + kt::TerminologySchemaSql(kt::SqlDialect::kPostgres) + "\n";
  auto prep = [&](const char* name, int n, std::string_view sql) {
    std::string types;
    for (int i = 0; i < n; ++i) types += i == 0 ? "text" : ", text";
    script += "PREPARE " + std::string(name) + " (" + types + ") AS " + std::string(sql) + ";\n";
  };
  prep("ins_concept", 6, kt::kInsertConcept);
  prep("ins_property", 5, kt::kInsertProperty);
  prep("ins_mapping", 10, kt::kInsertMapping);
  prep("upsert_load", 7, kt::kUpsertLoad);
  prep("del_concepts", 1, kt::kDeleteConcepts);
  // Twice each: the second run takes the ON CONFLICT paths.
  for (int i = 0; i < 2; ++i) {
    script +=
        "EXECUTE ins_concept('http://medis.or.jp/CodeSystem/master-HOT9', '104195801', "
        "'ミヤＢＭ錠', "
        "'true', '', 'hot');\n"
        "EXECUTE ins_property('http://medis.or.jp/CodeSystem/master-HOT9', '104195801', 'yj', "
        "'2316009F1022', 'hot');\n"
        "EXECUTE ins_mapping('urn:kakehashi:conceptmap:hot', "
        "'http://medis.or.jp/CodeSystem/master-HOT9', "
        "'104195801', 'http://capstandard.jp/iyaku.info/CodeSystem/YJ-code', '2316009F1022', "
        "'ミヤＢＭ錠', "
        "'equivalent', '', '', 'hot');\n"
        "EXECUTE upsert_load('hot', 'hot', 'hot.csv', '20240501', '1', '1', "
        "'2026-11-30T00:00:00Z');\n";
  }
  script +=
      "SELECT 'concepts=' || count(*) FROM term_concept;\n"
      "SELECT 'mappings=' || count(*) FROM term_mapping;\n"
      "EXECUTE del_concepts('hot');\n"
      "SELECT 'after_delete=' || count(*) FROM term_concept;\n"
      "DROP SCHEMA " +
      schema + " CASCADE;\n";
  auto path = std::filesystem::temp_directory_path() / (schema + ".sql");
  {
    std::ofstream out(path);
    out << script;
  }
  std::string cmd = "psql '" + url + "' -q -t -A -f '" + path.string() + "' 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  int rc = ::pclose(pipe);
  std::filesystem::remove(path);
  INFO(output);
  CHECK(rc == 0);
  CHECK(output.find("concepts=1") != std::string::npos);
  CHECK(output.find("mappings=1") != std::string::npos);
  CHECK(output.find("after_delete=0") != std::string::npos);
}
