#include "kakehashi/gateway/loader.hpp"

#include "test_support.hpp"

#include <fstream>

namespace kakehashi::gateway {
namespace {

TEST_CASE("loader: NDJSON and Bundles; bad lines become issues, good ones are stored", "[loader]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  Handler h(*t->store, {});
  auto dir = std::filesystem::temp_directory_path() / ("kakehashi-load-" + testing::RandomSuffix());
  std::filesystem::create_directories(dir / "sub");
  {
    std::ofstream nd(dir / "a.ndjson");
    nd << R"({"resourceType":"Patient","id":"p1","gender":"male"})"
       << "\n";
    nd << "{not json\n\n";
    nd << R"({"resourceType":"Patient","id":"bad id"})"
       << "\n";
    nd << R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}})"
       << "\n";
    std::ofstream b(dir / "sub" / "b.json");
    b << R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Organization","id":"o1"}}]})";
    std::ofstream tx(dir / "sub" / "c.json");
    tx << R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PUT","url":"Patient/p2"}}]})";
    std::ofstream ignored(dir / "notes.txt");
    ignored << "x";
  }
  CollectingSink sink;
  auto stats = LoadPath(h, dir, sink, 2);
  REQUIRE(stats);
  CHECK(stats->files == 3);
  CHECK(stats->resources == 4);
  CHECK(stats->rejected == 2);
  REQUIRE(sink.Issues().size() == 2);
  CHECK(sink.Issues()[0].code == "gateway.load.bad_json");
  CHECK(sink.Issues()[0].where.line == 2);
  CHECK(sink.Issues()[1].code == "gateway.load.rejected");
  CHECK(sink.Issues()[1].where.line == 4);
  for (const char* target : {"/fhir/Patient/p1", "/fhir/Patient/p2", "/fhir/Organization/o1"}) {
    CHECK(h.Handle(testing::Req("GET", target)).status == 200);
  }
  // Idempotent: loading again updates instead of duplicating.
  CollectingSink again;
  REQUIRE(LoadPath(h, dir, again, 2));
  CHECK(h.Handle(testing::Req("GET", "/fhir/Patient?_summary=count")).body.find("\"total\":2") !=
        std::string::npos);
  auto missing = LoadPath(h, dir / "nope", again);
  CHECK_FALSE(missing);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kakehashi::gateway
