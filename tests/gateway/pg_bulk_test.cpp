// PostgreSQL bulk writes (StoreOptions::postgres_bulk): a transaction Bundle's resources are
// locked and read in one round trip (Session::LockMany) and large index-row sets go in with COPY
// FROM STDIN; the rows stored must be those of the row-at-a-time path.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif

#include <algorithm>
#include <string>
#include <vector>

namespace kakehashi::gateway {
namespace {

#ifdef KAKEHASHI_HAVE_POSTGRES

// A transaction Bundle of PUTs of `n` Patients (several names: hundreds of string rows) and `n`
// Observations (a quantity, a composite), `round` in their text so a second round changes
// every resource. Strings hold the characters COPY's text format escapes (\, tab, newline).
std::string Bundle(int n, int round) {
  const std::string r = std::to_string(round);
  std::string b = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
  for (int i = 0; i < n; ++i) {
    const std::string n_text = std::to_string(i);
    if (i > 0) b += ',';
    b += R"({"resource":{"resourceType":"Patient","id":"p)";
    b += n_text;
    b += R"(","name":[{"family":"Yamada\\back\tslash )";
    b += r;
    b += R"(","given":["Taro\nJiro","たろう )";
    b += n_text;
    b += R"("]},{"text":"山田 太郎 \"quoted\""}],"gender":"male","birthDate":"1970-01-)";
    b += std::to_string(10 + i % 19);
    b += R"("},"request":{"method":"PUT","url":"Patient/p)";
    b += n_text;
    b += R"("}},{"resource":{"resourceType":"Observation","id":"o)";
    b += n_text;
    b += R"(","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},)";
    b += R"("subject":{"reference":"Patient/p)";
    b += n_text;
    b += R"("},"valueQuantity":{"value":)";
    b += n_text;
    b += '.';
    b += r;
    b += R"(7,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"},)";
    b += R"("component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},)";
    b += R"("valueQuantity":{"value":0.1,"unit":"mmHg","system":"http://unitsofmeasure.org",)";
    b += R"("code":"mm[Hg]"}}]},"request":{"method":"PUT","url":"Observation/o)";
    b += n_text;
    b += R"("}})";
  }
  b += "]}";
  return b;
}

// The rows of one store's schema, keyed by (type, id) instead of rk and without the write times
// (both stores were written at other times): resources, history and every index table.
std::vector<std::string> Dump(const std::string& url, const std::string& schema) {
  PGconn* conn = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(conn) == CONNECTION_OK);
  PQclear(PQexec(conn, ("SET search_path TO " + schema).c_str()));
  const char* queries[] = {
      "SELECT type, id, version, deleted, COALESCE((NULLIF(json, '')::jsonb #- "
      "'{meta,lastUpdated}')::text, '') FROM resources ORDER BY 1, 2",
      "SELECT r.type, r.id, h.version, h.deleted, h.json IS NULL, COALESCE((NULLIF(h.json, "
      "'')::jsonb #- '{meta,lastUpdated}')::text, '') FROM history h JOIN resources r USING (rk) "
      "ORDER BY 1, 2, 3",
      "SELECT r.type, r.id, t.pid, t.system, t.code FROM idx_token t JOIN resources r USING (rk) "
      "ORDER BY 1, 2, 3, 4, 5",
      "SELECT r.type, r.id, t.pid, t.value FROM idx_string t JOIN resources r USING (rk) ORDER BY "
      "1, 2, 3, 4",
      "SELECT r.type, r.id, t.pid, t.prefix, t.id, t.last_updated = r.last_updated FROM "
      "idx_string_prefix t JOIN resources r USING (rk) ORDER BY 1, 2, 3, 4",
      "SELECT r.type, r.id, t.pid, t.low, t.high FROM idx_date t JOIN resources r USING (rk) ORDER "
      "BY 1, 2, 3, 4, 5",
      "SELECT r.type, r.id, t.pid, t.target_type, t.target_id FROM idx_ref t JOIN resources r "
      "USING (rk) ORDER BY 1, 2, 3, 4, 5",
      "SELECT r.type, r.id, t.pid, t.value, t.system, t.code FROM idx_quantity t JOIN resources r "
      "USING (rk) ORDER BY 1, 2, 3, 4, 5, 6",
      "SELECT r.type, r.id, t.pid, t.system1, t.code1, t.system2, t.code2, t.num, t.low, t.high "
      "FROM idx_composite t JOIN resources r USING (rk) ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
      "SELECT r.type, r.id, t.narrative, t.content FROM idx_text t JOIN resources r USING (rk) "
      "ORDER BY 1, 2",
  };
  std::vector<std::string> out;
  for (const char* q : queries) {
    PGresult* res = PQexec(conn, q);
    INFO(q);
    REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
    out.push_back(std::string("== ") + q);
    for (int r = 0; r < PQntuples(res); ++r) {
      std::string line;
      for (int c = 0; c < PQnfields(res); ++c) {
        line += PQgetvalue(res, r, c);
        line += '|';
      }
      out.push_back(std::move(line));
    }
    PQclear(res);
  }
  PQfinish(conn);
  return out;
}

TEST_CASE("store: PostgreSQL bulk writes store the rows of the row-at-a-time path",
          "[store][.postgres]") {
  const std::string url = testing::PostgresUrl();
  if (url.empty()) FAIL("no PostgreSQL: set KAKEHASHI_TEST_PG_URL or run via ctest");
  int single_reads = 0;
  int copies = 0;
  auto open = [&](bool bulk, const std::string& schema) {
    store::StoreOptions options;
    options.postgres_schema = schema;
    options.postgres_bulk = bulk;
    if (bulk) {
      options.postgres_statement_hook = [&](std::string_view sql) {
        if (sql.starts_with("SELECT type, id, version, last_updated, deleted, json FROM resources "
                            "WHERE type = ? AND id = ?")) {
          ++single_reads;
        }
        if (sql.starts_with("COPY ")) ++copies;
      };
    }
    auto s = store::OpenStore(url, options);
    REQUIRE(s);
    return std::move(*s);
  };
  const std::string bulk_schema = "t_" + testing::RandomSuffix();
  const std::string rows_schema = "t_" + testing::RandomSuffix();
  auto bulk = open(true, bulk_schema);
  auto rows = open(false, rows_schema);
  Handler hb(*bulk, {});
  Handler hr(*rows, {});
  // Created, then every resource changed (LockMany finds them), then two deleted and one
  // created in a mixed Bundle.
  for (int round = 1; round <= 2; ++round) {
    const std::string body = Bundle(150, round);
    auto b = hb.Handle(testing::Req("POST", "/fhir", body));
    auto r = hr.Handle(testing::Req("POST", "/fhir", body));
    INFO(b.body);
    REQUIRE(b.status == 200);
    REQUIRE(r.status == 200);
  }
  const std::string mixed =
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"request":{"method":"DELETE","url":"Patient/p3"}},)"
      R"({"request":{"method":"DELETE","url":"Observation/o4"}},)"
      R"({"resource":{"resourceType":"Patient","id":"new","gender":"female"},)"
      R"("request":{"method":"PUT","url":"Patient/new"}}]})";
  REQUIRE(hb.Handle(testing::Req("POST", "/fhir", mixed)).status == 200);
  REQUIRE(hr.Handle(testing::Req("POST", "/fhir", mixed)).status == 200);
  // The bulk path: no resource read one at a time, index rows copied.
  CHECK(single_reads == 0);
  CHECK(copies > 0);
  bulk.reset();
  rows.reset();
  const auto a = Dump(url, bulk_schema);
  const auto b = Dump(url, rows_schema);
  CHECK(a.size() > 3000);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(i);
    CHECK(a[i] == b[i]);
  }
  // What was compared includes version 3 (a deletion) of Patient/p3.
  CHECK(std::find(a.begin(), a.end(), "Patient|p3|3|1||") != a.end());
}

#endif

}  // namespace
}  // namespace kakehashi::gateway
