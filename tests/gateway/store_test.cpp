#include "kakehashi/gateway/store/store.hpp"

#include "test_support.hpp"

#include <thread>

namespace kakehashi::gateway::store {
namespace {

using testing::Backend;

ResourceRow Row(std::string id, std::int64_t version, std::int64_t lu, std::string json) {
  ResourceRow r;
  r.type = "Patient";
  r.id = std::move(id);
  r.version = version;
  r.last_updated_us = lu;
  r.json = std::move(json);
  return r;
}

void WriteOne(Session& s, const ResourceRow& row, const IndexEntries& index) {
  REQUIRE(s.Begin());
  auto cur = s.LockAndRead(row.type, row.id);
  REQUIRE(cur);
  REQUIRE(s.Write(row, index));
  REQUIRE(s.Commit());
}

void ReadWriteHistory(Backend backend) {
  auto t = testing::MakeStore(backend);
  // Reads by id wait for a database server on PostgreSQL only (decision 0034).
  CHECK(t->store->ReadsInProcess() == (backend == Backend::kSqlite));
  auto s = t->store->OpenSession();
  REQUIRE(s);
  Session& session = **s;
  IndexEntries idx;
  idx.strings.push_back({"family", "yamada"});
  WriteOne(session, Row("p1", 1, 1000, R"({"resourceType":"Patient","id":"p1"})"), idx);
  WriteOne(session, Row("p1", 2, 2000, R"({"resourceType":"Patient","id":"p1","active":true})"),
           idx);

  auto cur = session.Read("Patient", "p1");
  REQUIRE(cur);
  REQUIRE(cur->has_value());
  CHECK((*cur)->version == 2);
  CHECK((*cur)->last_updated_us == 2000);
  CHECK((*cur)->json == R"({"resourceType":"Patient","id":"p1","active":true})");

  auto v1 = session.ReadVersion("Patient", "p1", 1);
  REQUIRE(v1);
  REQUIRE(v1->has_value());
  CHECK((*v1)->json == R"({"resourceType":"Patient","id":"p1"})");
  auto none = session.ReadVersion("Patient", "p1", 3);
  REQUIRE(none);
  CHECK_FALSE(none->has_value());

  HistoryQuery hq;
  hq.type = "Patient";
  hq.id = "p1";
  auto h = session.History(hq);
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK((*h)[0].row.version == 2);  // newest first
  CHECK((*h)[1].row.version == 1);
  CHECK((*h)[0].seq > (*h)[1].seq);

  // Delete marker: current row flagged, index rows gone.
  ResourceRow del = Row("p1", 3, 3000, "");
  del.deleted = true;
  WriteOne(session, del, {});
  auto after = session.Read("Patient", "p1");
  REQUIRE(after);
  REQUIRE(after->has_value());
  CHECK((*after)->deleted);
  SearchQuery q;
  q.type = "Patient";
  auto found = session.Search(q);
  REQUIRE(found);
  CHECK(found->empty());
}
KAKEHASHI_BACKEND_TEST("store: read, vread, history, delete marker", "[store]", ReadWriteHistory)

// Records a ReadCurrentMany: each key's answer (once), and the waits between them.
struct ManySink final : Store::ReadSink {
  std::vector<std::optional<Result<std::optional<ResourceRow>>>> rows;
  int calls = 0;
  int waits = 0;
  explicit ManySink(std::size_t n) : rows(n) {}
  void Read(std::size_t i, Result<std::optional<ResourceRow>> row) override {
    ++calls;
    REQUIRE(i < rows.size());
    CHECK_FALSE(rows[i].has_value());  // once per key
    rows[i].emplace(std::move(row));
  }
  void Waiting() override { ++waits; }
};

void ReadCurrentMany(Backend backend, bool pipeline) {
  // Decision 0040: several reads by id in one call (PostgreSQL: one pipelined round trip)
  // answer each key once with what ReadCurrent would: current versions, deletion markers,
  // nothing for unknown ids, duplicates alike.
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  WriteOne(**s, Row("a", 1, 1000, R"({"resourceType":"Patient","id":"a"})"), {});
  WriteOne(**s, Row("a", 2, 2000, R"({"resourceType":"Patient","id":"a","active":true})"), {});
  WriteOne(**s, Row("b", 1, 3000, R"({"resourceType":"Patient","id":"b"})"), {});
  ResourceRow gone = Row("b", 2, 4000, "");
  gone.deleted = true;
  WriteOne(**s, gone, {});
  s->reset();
  std::unique_ptr<Store> other;
  Store* store = t->store.get();
  if (!pipeline) {
    t->options.postgres_pipeline = false;
    other = t->OpenAnother();
    store = other.get();
  }
  const std::vector<Store::ReadKey> keys = {{"Patient", "a"}, {"Patient", "nobody"},
                                            {"Patient", "b"}, {"Observation", "a"},
                                            {"Patient", "a"}, {"Patient", "it's"}};
  ManySink sink(keys.size());
  store->ReadCurrentMany(keys, sink);
  CHECK(sink.calls == static_cast<int>(keys.size()));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    INFO("key " << i);
    REQUIRE(sink.rows[i].has_value());
    REQUIRE(*sink.rows[i]);
    auto alone = store->ReadCurrent(keys[i].type, keys[i].id, std::nullopt);
    REQUIRE(alone);
    const auto& many = **sink.rows[i];
    REQUIRE(many.has_value() == alone->has_value());
    if (!many) continue;
    CHECK(many->type == (*alone)->type);
    CHECK(many->id == (*alone)->id);
    CHECK(many->version == (*alone)->version);
    CHECK(many->last_updated_us == (*alone)->last_updated_us);
    CHECK(many->deleted == (*alone)->deleted);
    CHECK(many->json == (*alone)->json);
  }
  REQUIRE(**sink.rows[0]);
  CHECK((**sink.rows[0])->version == 2);
  CHECK((**sink.rows[0])->json == R"({"resourceType":"Patient","id":"a","active":true})");
  CHECK_FALSE(**sink.rows[1]);
  REQUIRE(**sink.rows[2]);
  CHECK((**sink.rows[2])->deleted);
  CHECK((**sink.rows[2])->version == 2);
  CHECK_FALSE(**sink.rows[3]);
  CHECK_FALSE(**sink.rows[5]);
  // The pooled connection is usable after the pipeline: a write and a read on it.
  auto again = store->OpenSession();
  REQUIRE(again);
  WriteOne(**again, Row("c", 1, 5000, R"({"resourceType":"Patient","id":"c"})"), {});
  ManySink one(1);
  const std::vector<Store::ReadKey> c = {{"Patient", "c"}};
  store->ReadCurrentMany(c, one);
  REQUIRE(one.rows[0].has_value());
  REQUIRE(*one.rows[0]);
  REQUIRE(**one.rows[0]);
  CHECK((**one.rows[0])->version == 1);
  CHECK(one.waits == 0);
}

void ReadCurrentManyPipelined(Backend backend) {
  ReadCurrentMany(backend, /*pipeline=*/true);
}

KAKEHASHI_BACKEND_TEST("store: several reads by id in one call", "[store]",
                       ReadCurrentManyPipelined)

TEST_CASE("store: several reads by id in one call, no pipeline mode [postgresql]",
          "[store][.postgres]") {
  ReadCurrentMany(Backend::kPostgres, /*pipeline=*/false);
}

void SearchIndexes(Backend backend) {
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  Session& session = **s;
  for (int i = 0; i < 5; ++i) {
    IndexEntries idx;
    idx.tokens.push_back({"gender", "", i % 2 == 0 ? "male" : "female"});
    idx.tokens.push_back({"identifier", "urn:mrn", "M" + std::to_string(i)});
    idx.strings.push_back({"name", i < 2 ? "やまだ" : "suzuki"});
    idx.dates.push_back({"birthdate", i * 1000, i * 1000 + 999});
    idx.references.push_back({"organization", "Organization", i < 3 ? "o1" : "o2"});
    WriteOne(session, Row("p" + std::to_string(i), 1, 100 + i, "{}"), idx);
    // Index rows are kept for the type's search parameters only (search_keys): quantities on
    // Observations.
    IndexEntries obs;
    obs.quantities.push_back({"value-quantity", 1.0 * i, "http://unitsofmeasure.org", "mg"});
    ResourceRow o = Row("q" + std::to_string(i), 1, 100 + i, "{}");
    o.type = "Observation";
    WriteOne(session, o, obs);
  }
  auto count = [&](Conjunction where, std::string type = "Patient") {
    SearchQuery q;
    q.type = std::move(type);
    q.where = std::move(where);
    auto n = session.Count(q);
    REQUIRE(n);
    return *n;
  };
  Predicate male;
  male.kind = Predicate::Kind::kToken;
  male.param = "gender";
  male.value = "male";
  CHECK(count({{male}}) == 3);
  male.negate = true;
  CHECK(count({{male}}) == 2);

  Predicate id;
  id.kind = Predicate::Kind::kToken;
  id.param = "identifier";
  id.system = "urn:mrn";
  id.value = "M3";
  CHECK(count({{id}}) == 1);
  id.system = "urn:other";
  CHECK(count({{id}}) == 0);

  Predicate name;
  name.kind = Predicate::Kind::kString;
  name.param = "name";
  name.value = "やま";
  CHECK(count({{name}}) == 2);
  name.string_match = Predicate::StringMatch::kExact;
  CHECK(count({{name}}) == 0);
  name.string_match = Predicate::StringMatch::kContains;
  name.value = "zuk";
  CHECK(count({{name}}) == 3);

  Predicate date;
  date.kind = Predicate::Kind::kDate;
  date.param = "birthdate";
  date.compare = Compare::kGe;
  date.low_us = 2000;
  date.high_us = 2999;
  CHECK(count({{date}}) == 3);
  date.compare = Compare::kLt;
  CHECK(count({{date}}) == 2);
  date.compare = Compare::kEq;
  CHECK(count({{date}}) == 1);

  Predicate qty;
  qty.kind = Predicate::Kind::kQuantity;
  qty.param = "value-quantity";
  qty.compare = Compare::kGt;
  qty.number = 2.5;
  CHECK(count({{qty}}, "Observation") == 2);
  qty.target_type = "kg";  // unit code mismatch
  CHECK(count({{qty}}, "Observation") == 0);
  qty.param = "combo-value-quantity";  // derived: value-quantity | component-value-quantity
  qty.target_type.clear();
  CHECK(count({{qty}}, "Observation") == 2);

  Predicate ref;
  ref.kind = Predicate::Kind::kReference;
  ref.param = "organization";
  ref.target_type = "Organization";
  ref.value = "o1";
  CHECK(count({{ref}}) == 3);
  // AND of two parameters, OR inside one.
  Predicate female = male;
  female.negate = false;
  female.value = "female";
  CHECK(count({{ref}, {female}}) == 1);
  Predicate ref2 = ref;
  ref2.value = "o2";
  CHECK(count({{ref, ref2}}) == 5);

  // Keyset paging over (lastUpdated, id) and explicit sort.
  SearchQuery q;
  q.type = "Patient";
  q.count = 2;
  auto page1 = session.Search(q);
  REQUIRE(page1);
  REQUIRE(page1->size() == 2);
  CHECK((*page1)[0].id == "p0");
  q.after = std::make_pair((*page1)[1].last_updated_us, (*page1)[1].id);
  auto page2 = session.Search(q);
  REQUIRE(page2);
  REQUIRE(page2->size() == 2);
  CHECK((*page2)[0].id == "p2");
  q.after.reset();
  q.sort.push_back({"birthdate", Predicate::Kind::kDate, true});
  auto sorted = session.Search(q);
  REQUIRE(sorted);
  REQUIRE(sorted->size() == 2);
  CHECK((*sorted)[0].id == "p4");
}
KAKEHASHI_BACKEND_TEST("store: token, string, date, quantity, reference predicates", "[store]",
                       SearchIndexes)

void WriteOutsideTransaction(Backend backend) {
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  auto w = (*s)->Write(Row("x", 1, 1, "{}"), {});
  REQUIRE_FALSE(w);
  CHECK(w.error() == errc::kNotInTransaction);
  // Rollback discards.
  REQUIRE((*s)->Begin());
  REQUIRE((*s)->Write(Row("x", 1, 1, "{}"), {}));
  (*s)->Rollback();
  auto r = (*s)->Read("Patient", "x");
  REQUIRE(r);
  CHECK_FALSE(r->has_value());
}
KAKEHASHI_BACKEND_TEST("store: writes need a transaction; rollback discards", "[store]",
                       WriteOutsideTransaction)

// Index rows are queued across the resources of a transaction and inserted in batches
// (SqlSession::FlushPending): searches inside the transaction see them, a second write of the
// same resource replaces them, a rollback drops them, and batch boundaries lose nothing.
void QueuedIndexRows(Backend backend) {
  auto t = testing::MakeStore(backend);
  auto s = t->store->OpenSession();
  REQUIRE(s);
  Session& session = **s;
  auto count = [&](const std::string& code) {
    Predicate p;
    p.kind = Predicate::Kind::kToken;
    p.param = "identifier";
    p.value = code;
    SearchQuery q;
    q.type = "Patient";
    q.where = {{p}};
    auto n = session.Count(q);
    REQUIRE(n);
    return *n;
  };
  auto index = [](const std::string& code, int rows) {
    IndexEntries idx;
    for (int i = 0; i < rows; ++i) {
      std::string value = code;
      if (i > 0) {
        value += '-';
        value += std::to_string(i);
      }
      idx.tokens.push_back({"identifier", "urn:x", value});
    }
    return idx;
  };
  REQUIRE(session.Begin());
  // 150 resources of 2 rows and one of 130 rows: several full batches and a remainder.
  for (int i = 0; i < 150; ++i) {
    std::string id = std::to_string(i);
    id.insert(id.begin(), 'q');  // not "q" + …: GCC 12 -Wrestrict false positive
    REQUIRE(session.Write(Row(id, 1, 10 + i, "{}"), index("A", 2)));
  }
  REQUIRE(session.Write(Row("big", 1, 500, "{}"), index("B", 130)));
  // Queued current and history rows are read back inside the transaction.
  auto queued = session.Read("Patient", "big");
  REQUIRE(queued);
  REQUIRE(queued->has_value());
  CHECK((*queued)->last_updated_us == 500);
  auto v1 = session.ReadVersion("Patient", "q149", 1);
  REQUIRE(v1);
  CHECK(v1->has_value());
  HistoryQuery hq;
  hq.type = "Patient";
  hq.count = 1000;
  auto h = session.History(hq);
  REQUIRE(h);
  CHECK(h->size() == 151);
  CHECK(count("A") == 150);  // pending rows are inserted before the search
  CHECK(count("B-129") == 1);
  // A new version of q0 in the same transaction replaces its rows, pending ones included.
  REQUIRE(session.Write(Row("q0", 2, 600, "{}"), index("C", 1)));
  REQUIRE(session.Write(Row("q1", 2, 601, "{}"), index("D", 1)));  // queued again
  REQUIRE(session.Write(Row("q1", 3, 602, "{}"), index("E", 1)));  // then replaced
  REQUIRE(session.Commit());
  CHECK(count("A") == 148);
  CHECK(count("A-1") == 148);
  CHECK(count("C") == 1);
  CHECK(count("D") == 0);
  CHECK(count("E") == 1);
  CHECK(count("B-64") == 1);
  auto q1 = session.Read("Patient", "q1");
  REQUIRE(q1);
  REQUIRE(q1->has_value());
  CHECK((*q1)->version == 3);
  CHECK((*q1)->last_updated_us == 602);
  // Queued rows of a rolled-back transaction never reach a later one.
  REQUIRE(session.Begin());
  REQUIRE(session.Write(Row("r1", 1, 700, "{}"), index("F", 3)));
  session.Rollback();
  REQUIRE(session.Begin());
  REQUIRE(session.Write(Row("r2", 1, 701, "{}"), index("G", 1)));
  REQUIRE(session.Commit());
  CHECK(count("F") == 0);
  CHECK(count("F-2") == 0);
  CHECK(count("G") == 1);
  auto r1 = session.Read("Patient", "r1");
  REQUIRE(r1);
  CHECK_FALSE(r1->has_value());
}
KAKEHASHI_BACKEND_TEST("store: index rows queued across a transaction's writes", "[store]",
                       QueuedIndexRows)

TEST_CASE("store: bad URLs are rejected with codes", "[store]") {
  auto a = OpenStore("mysql://x");
  REQUIRE_FALSE(a);
  CHECK(a.error() == errc::kBadUrl);
  CHECK(a.error().message() == "database URL must be sqlite:PATH or postgresql://...");
  auto b = OpenStore("sqlite:/nonexistent-dir/x/y.sqlite");
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::kOpenFailed);
  for (int e = 1; e <= 6; ++e) {
    CHECK_FALSE(make_error_code(static_cast<errc>(e)).message().empty());
    CHECK(make_error_code(static_cast<errc>(e)).message() != "unknown store error");
  }
  CHECK(std::string(store_category().name()) == "kakehashi.gateway.store");
}

TEST_CASE("store: sqlite :memory: is shared by the pool", "[store]") {
  auto s = OpenStore("sqlite::memory:");
  REQUIRE(s);
  CHECK((*s)->Backend() == "sqlite");
  auto a = (*s)->OpenSession();
  REQUIRE(a);
  REQUIRE((*a)->Begin());
  REQUIRE((*a)->Write(Row("m", 1, 1, "{}"), {}));
  REQUIRE((*a)->Commit());
  auto b = (*s)->OpenSession();  // a second pooled connection
  REQUIRE(b);
  auto r = (*b)->Read("Patient", "m");
  REQUIRE(r);
  CHECK(r->has_value());
}

}  // namespace
}  // namespace kakehashi::gateway::store
