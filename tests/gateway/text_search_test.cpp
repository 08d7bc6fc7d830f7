// `_text`, `_content` and `_query` (decision 0041): the query language, what text a resource
// has, and the searches over HTTP on both backends (Japanese, AND/OR/phrases, short terms,
// paging, updates, deletes, re-index of a store written without idx_text rows).
#include "kakehashi/gateway/handler.hpp"

#include "detail/json.hpp"
#include "handler_fixture.hpp"
#include "json_support.hpp"
#include "store/sql_session.hpp"
#include "test_support.hpp"
#include "text_search.hpp"

#include <set>
#include <string>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;
using Set = std::set<std::string>;

TEST_CASE("text search: the query language", "[detail][text]") {
  std::string error;
  auto q = detail::ParseTextQuery("ﾔﾏﾀﾞ  糖尿病 OR \"Taro  Yamada\" x", error);
  REQUIRE(q);
  REQUIRE(q->alternatives.size() == 2);
  CHECK(q->alternatives[0] == std::vector<std::string>{"ヤマダ", "糖尿病"});
  CHECK(q->alternatives[1] == std::vector<std::string>{"taro yamada", "x"});
  // % and _ are ordinary characters of a term; so is a quoted AND.
  q = detail::ParseTextQuery("100% a_b \"AND\" \"(x)\"", error);
  REQUIRE(q);
  CHECK(q->alternatives[0] == std::vector<std::string>{"100%", "a_b", "and", "(x)"});
  for (const char* bad : {"", "   ", "\"abc", "\"\"", "\" \"", "OR a", "a OR", "a OR OR b",
                          "a AND b", "NOT a", "-a", "a*", "(a)", "a\"b", "\"a\"b"}) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(detail::ParseTextQuery(bad, error));
    CHECK_FALSE(error.empty());
  }
  std::string many;
  for (int i = 0; i < 17; ++i) many += "t ";
  CHECK_FALSE(detail::ParseTextQuery(many, error));
  CHECK_FALSE(detail::ParseTextQuery(std::string(257, 'a'), error));
  CHECK(detail::ParseTextQuery(std::string(256, 'a'), error));
}

TEST_CASE("text search: narrative and content of a resource", "[detail][text]") {
  Json json = Parse(
      R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"3","tag":[{"code":"secret"}]},)"
      R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>ﾔﾏﾀﾞ<b>太郎</b></p><p>A&amp;B &#x5C71;&lt;</p><!-- hidden --></div>"},)"
      R"("identifier":[{"system":"urn:oid:1.2.3","value":"MRN-7"}],)"
      R"("name":[{"family":"山田","given":["太郎"]}],"active":true,"multipleBirthInteger":2,)"
      R"("managingOrganization":{"reference":"Organization/o1","display":"東京病院"},)"
      R"("photo":[{"contentType":"image/png","data":"iVBORw0KGgo="}],)"
      R"("extension":[{"url":"http://example.org/x","valueString":"Ｅｘｔ"}]})");
  detail::ResourceText text = detail::ExtractText(json);
  // Markup dropped (a <p> ends a word, <b> does not), entities decoded, NFKC case folded.
  CHECK(text.narrative == "ヤマダ太郎 a&b 山<");
  CHECK(text.content == "generated ヤマダ太郎 a&b 山< mrn-7 山田 太郎 東京病院 image/png ext");
  // Not: resourceType, id, meta, system, reference, url, data, numbers, booleans.
  for (const char* absent : {"patient", "p1", "secret", "urn:oid", "organization/o1", "example.org",
                             "ivbor", "true", "hidden"}) {
    INFO(absent);
    CHECK(text.content.find(absent) == std::string::npos);
  }
  detail::ResourceText none =
      detail::ExtractText(Parse(R"({"resourceType":"Patient","active":true})"));
  CHECK(none.narrative.empty());
  CHECK(none.content.empty());
}

struct Fixture : testing::HandlerFixture {
  using HandlerFixture::HandlerFixture;
  void Put(const std::string& type, const std::string& id, const std::string& members) const {
    PutBody(type, id, R"({"resourceType":")" + type + R"(","id":")" + id + "\"" + members + "}");
  }
  // Spaces and quotes of `query` percent-encoded, as a client sends them.
  static std::string Target(const std::string& query) {
    std::string out = "/fhir/";
    for (char c : query) {
      if (c == ' ') {
        out += "%20";
      } else if (c == '"') {
        out += "%22";
      } else {
        out += c;
      }
    }
    return out;
  }
  Set Ids(const std::string& query) const {
    const std::vector<std::string> ids = HandlerFixture::Ids(Target(query));
    return {ids.begin(), ids.end()};
  }
};

std::string Narrative(const std::string& xhtml) {
  return R"(,"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)" +
         xhtml + R"(</div>"})";
}

void TextAndContent(Backend backend) {
  Fixture f(backend);
  f.Put("Patient", "p1",
        Narrative("<p>ヤマダ タロウ 様</p><p><b>糖尿病</b>の記録</p>") +
            R"(,"name":[{"family":"山田","given":["太郎"]}],"gender":"male")");
  f.Put("Patient", "p2",
        Narrative("サトウ ハナコ") +
            R"(,"identifier":[{"system":"urn:mrn","value":"MRN-777"}],)"
            R"("name":[{"family":"佐藤","given":["花子"]}],"gender":"female")");
  f.Put("Patient", "p3", R"(,"name":[{"family":"Yamada","given":["Hanako"]}],"gender":"female")");
  f.Put("Observation", "o1",
        R"(,"status":"final","code":{"text":"血糖値"},"valueString":"高い 100%")");
  // Narrative: full/half width and case, kana; a 1-character term; the narrative only.
  CHECK(f.Ids("Patient?_text=ﾔﾏﾀﾞ") == Set{"p1"});
  CHECK(f.Ids("Patient?_text=糖尿病") == Set{"p1"});
  CHECK(f.Ids("Patient?_text=様") == Set{"p1"});
  CHECK(f.Ids("Patient?_text=ｻﾄｳ") == Set{"p2"});
  CHECK(f.Ids("Patient?_text=山田").empty());  // in the data, not in the narrative
  CHECK(f.Ids("Patient?_text=ヤマダ サトウ").empty());
  // Content: every string value and the narrative.
  CHECK(f.Ids("Patient?_content=山田") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=糖尿病") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=YAMADA") == Set{"p3"});
  CHECK(f.Ids("Patient?_content=ｙａｍａｄａ hanako") == Set{"p3"});
  CHECK(f.Ids("Patient?_content=mrn-777") == Set{"p2"});
  CHECK(f.Ids("Patient?_content=urn:mrn").empty());  // systems are not content
  CHECK(f.Ids("Patient?_content=佐") == Set{"p2"});  // short terms: checked on every row
  CHECK(f.Ids("Patient?_content=田 太") == Set{"p1"});
  CHECK(f.Ids("Observation?_content=血糖") == Set{"o1"});
  CHECK(f.Ids("Observation?_content=0%25") == Set{"o1"});  // '%' is a character, not a wildcard
  CHECK(f.Ids("Observation?_content=1_0").empty());        // so is '_'
  CHECK(f.Ids("Observation?_content=高%25").empty());
  // AND, OR, phrases, commas.
  CHECK(f.Ids("Patient?_content=山田 male") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=山田 female").empty());
  CHECK(f.Ids("Patient?_content=山田 OR 佐藤") == Set{"p1", "p2"});
  CHECK(f.Ids("Patient?_content=山田 female OR 花子 female") == Set{"p2"});
  CHECK(f.Ids("Patient?_content=山田,佐藤,hanako") == Set{"p1", "p2", "p3"});
  CHECK(f.Ids("Patient?_content=\"ヤマダ タロウ\"") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=\"タロウ ヤマダ\"").empty());
  CHECK(f.Ids("Patient?_text=\"ﾀﾛｳ 様\"") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=no-such-text").empty());
  CHECK(f.Ids("Patient?_content=%27%3B DROP TABLE resources%3B").empty());
  // With other parameters, repeated (AND), and paged with _count.
  CHECK(f.Ids("Patient?_content=山田 OR 佐藤&gender=female") == Set{"p2"});
  CHECK(f.Ids("Patient?_content=花子&_content=佐藤") == Set{"p2"});
  CHECK(f.Ids("Patient?_content=花子&_content=山田").empty());
  CHECK(f.Ids("Patient?_content=花子&_text=サトウ") == Set{"p2"});
  Set paged;
  std::string next = Fixture::Target("Patient?_content=hanako OR 太郎 OR 佐藤&_count=1");
  for (int page = 0; page < 5 && !next.empty(); ++page) {
    Response r = f.Do(Req("GET", next));
    INFO(r.body);
    REQUIRE(r.status == 200);
    Json b = Parse(r.body);
    REQUIRE(b.Find("entry") != nullptr);
    CHECK(b.Find("entry")->Items().size() == 1);
    paged.emplace(b.Find("entry")->Items()[0].Find("resource")->Str("id"));
    next.clear();
    for (const Json& link : b.Find("link")->Items()) {
      if (link.Str("relation") != "next") continue;
      next = std::string(link.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
    }
  }
  CHECK(paged == Set{"p1", "p2", "p3"});
  // Refused with an OperationOutcome, never run or ignored.
  for (const char* q : {"Patient?_content=", "Patient?_content=\"abc", "Patient?_content=OR",
                        "Patient?_content=a OR", "Patient?_content=a AND b", "Patient?_content=(a)",
                        "Patient?_content=-a", "Patient?_text=a*", "Patient?_text:exact=a",
                        "Patient?_content:contains=a", "Binary?_text=a"}) {
    INFO(q);
    Response r = f.Do(Req("GET", Fixture::Target(q)));
    CHECK(r.status == 400);
    CHECK(Parse(r.body).Str("resourceType") == "OperationOutcome");
  }
  Response named = f.Do(Req("GET", "/fhir/Patient?_query=current-high-risk"));
  CHECK(named.status == 400);
  Json outcome = Parse(named.body);
  REQUIRE(outcome.Find("issue") != nullptr);
  CHECK(outcome.Find("issue")->Items()[0].Str("code") == "not-supported");
  CHECK(outcome.Find("issue")->Items()[0].Find("diagnostics")->Text().find("current-high-risk") !=
        std::string::npos);
  // An update replaces the text; a delete removes it.
  f.Put("Patient", "p1",
        Narrative("<p>更新済み</p>") + R"(,"name":[{"family":"山田","given":["太郎"]}])");
  CHECK(f.Ids("Patient?_text=糖尿病").empty());
  CHECK(f.Ids("Patient?_content=山田 male").empty());  // the gender is gone too
  CHECK(f.Ids("Patient?_text=更新済み") == Set{"p1"});
  CHECK(f.Ids("Patient?_content=更新") == Set{"p1"});
  REQUIRE(f.Do(Req("DELETE", "/fhir/Patient/p2")).status == 204);
  CHECK(f.Ids("Patient?_content=佐藤").empty());
  CHECK(f.Ids("Patient?_text=サトウ").empty());
  CHECK(f.Ids("Patient?_content=hanako") == Set{"p3"});
  // The CapabilityStatement lists both on every type (_text not on those without narrative).
  Json cs = Parse(f.Do(Req("GET", "/fhir/metadata")).body);
  for (const Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    Set names;
    for (const Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == "_text" || p.Str("name") == "_content") {
        CHECK(p.Str("type") == "string");
        CHECK(p.Str("documentation").find("OR") != std::string_view::npos);
      }
      names.emplace(p.Str("name"));
    }
    INFO(res.Str("type"));
    CHECK(names.count("_content") == 1);
    const bool domain = res.Str("type") != "Binary" && res.Str("type") != "Bundle" &&
                        res.Str("type") != "Parameters";
    CHECK(names.count("_text") == (domain ? 1u : 0u));
    CHECK(names.count("_query") == 0);
  }
}
KAKEHASHI_BACKEND_TEST("handler: _text and _content (Japanese, AND/OR/phrases, short terms)",
                       "[handler][text]", TextAndContent)

TEST_CASE("text search: a common term is checked per resource on SQLite", "[detail][text]") {
  using store::detail::Dialect;
  using store::detail::Param;
  const store::detail::ParamKeys keys(store::detail::Rows{});
  store::SearchQuery q;
  q.type = "Observation";
  store::Predicate p;
  p.kind = store::Predicate::Kind::kText;
  p.param = "_text";
  p.terms = {"血糖値"};
  q.where = {{p}};
  std::string sql;
  std::vector<Param> params;
  // A term of 3 characters: its matches read from the trigram index (the query driven by them).
  store::detail::SearchSql(q, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("idx_text_fts") != std::string::npos);
  CHECK(sql.find("+r.type") != std::string::npos);
  // Marked common (SqlSession::CommonTextProbes): resources in result order, each one's own
  // idx_text row checked, no trigram index.
  q.where[0][0].probe = true;
  store::detail::SearchSql(q, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("idx_text_fts") == std::string::npos);
  CHECK(sql.find("+r.type") == std::string::npos);
  CHECK(sql.find("instr(x0.narrative, ?)") != std::string::npos);
  CHECK(params == std::vector<Param>{std::string("Observation"), std::string("血糖値"),
                                     std::int64_t{20}, std::int64_t{0}});
  // A rare term (decision 0042): the candidates read by CommonTextProbes (fewer than the
  // threshold) are searched, not the trigram index a second time; none: nothing is read.
  q.where[0][0].probe = false;
  std::vector<std::string> seen;
  std::size_t found = 2;
  const store::detail::RunQuery run =
      [&](std::string_view text, const std::vector<Param>&) -> Result<store::detail::Rows> {
    seen.emplace_back(text);
    store::detail::Rows rows;
    for (std::size_t i = 0; i < found; ++i) rows.push_back({std::to_string(7 + i)});
    return rows;
  };
  auto planned = store::detail::CommonTextProbes(q, run, 3);
  REQUIRE(planned);
  REQUIRE(*planned);
  CHECK(seen ==
        std::vector<std::string>{"SELECT rowid FROM idx_text_fts WHERE narrative LIKE ? LIMIT ?"});
  CHECK(!(*planned)->where[0][0].probe);
  CHECK((*planned)->where[0][0].candidates == std::vector<std::int64_t>{7, 8});
  store::detail::SearchSql(**planned, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("idx_text_fts") == std::string::npos);
  CHECK(sql.find("+r.type = ? AND ((r.rk IN (?, ?) AND EXISTS") != std::string::npos);
  CHECK(params == std::vector<Param>{std::string("Observation"), std::int64_t{7}, std::int64_t{8},
                                     std::string("血糖値"), std::int64_t{20}, std::int64_t{0}});
  found = 0;
  planned = store::detail::CommonTextProbes(q, run, 3);
  REQUIRE(planned);
  REQUIRE(*planned);
  store::detail::SearchSql(**planned, Dialect::kSqlite, keys, sql, params);
  CHECK(sql.find("(1 = 0)") != std::string::npos);
  found = 3;  // the threshold: common
  planned = store::detail::CommonTextProbes(q, run, 3);
  REQUIRE(planned);
  REQUIRE(*planned);
  CHECK((*planned)->where[0][0].probe);
  CHECK(!(*planned)->where[0][0].candidates);
  // The threshold: about 1.15 sqrt(resources), at least 50.
  CHECK(store::detail::CommonTextThreshold(0) == 50);
  CHECK(store::detail::CommonTextThreshold(210000) == 526);
  CHECK(store::detail::CommonTextThreshold(1000000) == 1150);
}

// Terms common enough to pass CommonTextThreshold (SQLite: checked per resource in result order)
// find the same resources, in the same order and pages, as rare ones read from the trigram index.
void TextCommonTerm(Backend backend) {
  Fixture f(backend);
  std::vector<std::string> all;
  for (int i = 0; i < 70; ++i) {
    std::string id = i < 10 ? "o0" : "o";
    id += std::to_string(i);
    std::string text = "血糖値 glucose";
    if (i % 20 == 0) text += " rarexyz";
    f.Put("Observation", id, Narrative(text) + R"(,"status":"final","code":{"text":"bg"})");
    all.push_back(id);
  }
  f.Put("Patient", "p1", Narrative("血糖値なし") + R"(,"name":[{"family":"山田"}])");
  // Every page of the common term, in (lastUpdated, id) order.
  std::vector<std::string> paged;
  std::string next = "/fhir/Observation?_text=%E8%A1%80%E7%B3%96%E5%80%A4&_count=8";
  for (int page = 0; page < 20 && !next.empty(); ++page) {
    Response r = f.Do(Req("GET", next));
    INFO(r.body);
    REQUIRE(r.status == 200);
    Json b = Parse(r.body);
    for (const Json& e : b.Find("entry")->Items())
      paged.emplace_back(e.Find("resource")->Str("id"));
    next.clear();
    for (const Json& link : b.Find("link")->Items()) {
      if (link.Str("relation") != "next") continue;
      next = std::string(link.Str("url")).substr(std::string("http://127.0.0.1:8080").size());
    }
  }
  CHECK(paged == all);
  CHECK(f.Ids("Observation?_text=glucose rarexyz") == Set{"o00", "o20", "o40", "o60"});
  CHECK(f.Ids("Observation?_text=rarexyz OR nothing") == Set{"o00", "o20", "o40", "o60"});
  CHECK(f.Ids("Observation?_content=血糖値&_id=o07,o33") == Set{"o07", "o33"});
  CHECK(f.Ids("Patient?_text=血糖値") == Set{"p1"});
  CHECK(f.Ids("Patient?_text=glucose").empty());
  Response count = f.Do(Req("GET", "/fhir/Observation?_text=glucose&_summary=count"));
  REQUIRE(count.status == 200);
  CHECK(Parse(count.body).Find("total")->Text() == "70");
}
KAKEHASHI_BACKEND_TEST("handler: a common _text term pages like a rare one", "[handler][text]",
                       TextCommonTerm)

// A store written before idx_text existed (rows without narrative/content, another index
// definition) gets them by the re-index on open.
void TextReindex(Backend backend) {
  auto t = testing::MakeStore(backend);
  t->store.reset();
  store::IndexDefinition old = store::DefaultIndexDefinition();
  auto extract = old.extract;
  old.fingerprint = "test-old-" + old.fingerprint;
  old.extract = [extract](const store::ResourceRow& row, store::IndexEntries& out) {
    if (!extract(row, out)) return false;
    out.narrative.clear();
    out.content.clear();
    return true;
  };
  t->options.index = old;
  t->store = t->OpenAnother();
  {
    // Written as an older kakehashi did: its rows, none in idx_text.
    auto session = t->store->OpenSession();
    REQUIRE(session);
    store::Session& s = **session;
    store::ResourceRow row{"Patient",
                           "r1",
                           1,
                           1000,
                           false,
                           R"({"resourceType":"Patient","id":"r1")" + Narrative("ｽｽﾞｷ") +
                               R"(,"name":[{"family":"鈴木"}]})"};
    store::IndexEntries entries;
    REQUIRE(old.extract(row, entries));
    CHECK(entries.strings.size() > 0);
    CHECK(entries.content.empty());
    REQUIRE(s.Begin());
    REQUIRE(s.LockAndRead(row.type, row.id));
    REQUIRE(s.Write(row, entries));
    REQUIRE(s.Commit());
    Handler h(*t->store, HandlerOptions{});
    Response r = h.Handle(Req("GET", "/fhir/Patient?_content=鈴木"));
    REQUIRE(r.status == 200);
    INFO(r.body);
    CHECK(Parse(r.body).Find("entry")->Items().empty());
    CHECK(h.Handle(Req("GET", "/fhir/Patient?family=鈴木")).body.find("r1") != std::string::npos);
  }
  t->store.reset();
  t->options.index.reset();
  t->store = t->OpenAnother();
  Handler h(*t->store, HandlerOptions{});
  for (const char* q :
       {"/fhir/Patient?_content=鈴木", "/fhir/Patient?_text=スズキ", "/fhir/Patient?_content=鈴"}) {
    INFO(q);
    Response r = h.Handle(Req("GET", q));
    REQUIRE(r.status == 200);
    const Json* entry = Parse(r.body).Find("entry");
    REQUIRE(entry != nullptr);
    CHECK(entry->Items().size() == 1);
  }
}
KAKEHASHI_BACKEND_TEST("store: _text/_content rows of an older store are filled on re-index",
                       "[store][reindex][text]", TextReindex)

}  // namespace
}  // namespace kakehashi::gateway
