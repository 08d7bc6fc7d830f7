// Re-index on upgrade (decision 0037): a store whose index rows were made by another index
// definition (an older kakehashi) gets the rows of the current one for every stored resource,
// resumably, without losing anything, on both backends.
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/health.hpp"
#include "kakehashi/gateway/store/background_reindex.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include "test_support.hpp"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kakehashi::gateway::store {
namespace {

using testing::Backend;

// "An older kakehashi": the gateway's own rows without those of Observation `code` (a search
// parameter it did not index yet), under a fingerprint of its own.
IndexDefinition OldDefinition() {
  IndexDefinition def = DefaultIndexDefinition();
  auto extract = def.extract;
  def.fingerprint = "test-old-" + def.fingerprint;
  def.extract = [extract](const ResourceRow& row, IndexEntries& out) {
    if (!extract(row, out)) return false;
    std::erase_if(out.tokens, [&](const TokenEntry& t) {
      return row.type == "Observation" && t.param == "code";
    });
    return true;
  };
  return def;
}

std::string Observation(int i) {
  return R"({"resourceType":"Observation","id":"o)" + std::to_string(i) +
         R"(","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},)"
         R"("subject":{"reference":"Patient/p1"}})";
}

// "o<i>", appended (GCC 12's -Wrestrict misreads "o" + std::to_string(i) once inlined).
std::string ObservationId(int i) {
  std::string id = "o";
  id += std::to_string(i);
  return id;
}

std::int64_t Count(Store& store, std::string param, std::string code) {
  auto session = store.OpenSession();
  REQUIRE(session);
  SearchQuery q;
  q.type = "Observation";
  Predicate p;
  p.kind = Predicate::Kind::kToken;
  p.param = std::move(param);
  p.value = std::move(code);
  q.where = {{p}};
  auto n = (*session)->Count(q);
  REQUIRE(n);
  return *n;
}

// A store holding o1..o5 (o5 deleted) and an Observation whose JSON cannot be read, every index
// row written by OldDefinition(); t->options then name it.
std::unique_ptr<testing::TestStore> OldStore(Backend backend) {
  auto t = testing::MakeStore(backend);
  t->store.reset();
  t->options.index = OldDefinition();
  t->store = t->OpenAnother();
  auto session = t->store->OpenSession();
  REQUIRE(session);
  Session& s = **session;
  const IndexDefinition old = OldDefinition();
  REQUIRE(s.Begin());
  for (int i = 1; i <= 5; ++i) {
    ResourceRow row{"Observation", ObservationId(i), 1, 1000 + i, false, Observation(i)};
    IndexEntries entries;
    REQUIRE(old.extract(row, entries));
    REQUIRE(s.LockAndRead(row.type, row.id));
    REQUIRE(s.Write(row, entries));
  }
  REQUIRE(s.Write({"Observation", "bad", 1, 1010, false, "{not json"}, {}));
  REQUIRE(s.Write({"Observation", "o5", 2, 1020, true, ""}, {}));
  REQUIRE(s.Commit());
  CHECK(Count(*t->store, "code", "2345-7") == 0);
  CHECK(Count(*t->store, "status", "final") == 4);
  return t;
}

// Closes t's store and sets t->options so that the next OpenAnother() opens it with the current
// index definition and no re-index on open: the tests then run or hold the re-index themselves.
void CloseForManualReindex(testing::TestStore& t) {
  t.store.reset();
  t.options.index.reset();
  t.options.reindex_on_open = false;
}

void ReindexOnOpen(Backend backend) {
  auto t = OldStore(backend);
  t->store.reset();
  t->options.index.reset();  // this kakehashi's definition: the rows are re-extracted on open
  t->store = t->OpenAnother();
  CHECK(Count(*t->store, "code", "2345-7") == 4);
  CHECK(Count(*t->store, "status", "final") == 4);  // the old rows are still found
  auto session = t->store->OpenSession();
  REQUIRE(session);
  Predicate subject;
  subject.kind = Predicate::Kind::kReference;
  subject.param = "patient";  // derived from subject
  subject.value = "p1";
  subject.target_type = "Patient";
  SearchQuery q;
  q.type = "Observation";
  q.where = {{subject}};
  auto rows = (*session)->Search(q);
  REQUIRE(rows);
  REQUIRE(rows->size() == 4);
  CHECK((*rows)[0].id == "o1");
  CHECK((*rows)[0].version == 1);  // no new version, nothing else changed
  CHECK((*rows)[0].json == Observation(1));
  auto deleted = (*session)->Read("Observation", "o5");
  REQUIRE(deleted);
  REQUIRE(deleted->has_value());
  CHECK((*deleted)->deleted);
  auto history = (*session)->History({"Observation", "o5", {}, {}, 10});
  REQUIRE(history);
  CHECK(history->size() == 2);
  // Up to date now: nothing to do, whatever is asked again.
  auto again = Reindex(*t->store, DefaultIndexDefinition());
  REQUIRE(again);
  CHECK_FALSE(again->ran);
  CHECK(again->resources == 0);
  // Forced (`kakehashi reindex --force`): everything again, same answers.
  ReindexOptions force;
  force.restart = true;
  auto forced = Reindex(*t->store, DefaultIndexDefinition(), force);
  REQUIRE(forced);
  CHECK(forced->ran);
  CHECK(forced->resources == 5);  // o1..o4 and the unreadable one, not the deleted o5
  CHECK(forced->unreadable == 1);
  CHECK(Count(*t->store, "code", "2345-7") == 4);
}
KAKEHASHI_BACKEND_TEST("store: index rows of an older definition are re-extracted on open",
                       "[store][reindex]", ReindexOnOpen)

void ReindexResumes(Backend backend) {
  auto t = OldStore(backend);
  CloseForManualReindex(*t);
  t->store = t->OpenAnother();
  const IndexDefinition current = DefaultIndexDefinition();
  {
    // Interrupted after its first step of two resources.
    auto session = t->store->OpenSession();
    REQUIRE(session);
    ReindexRequest request;
    request.limit = 2;
    request.count = true;
    auto step = (*session)->ReindexStep(current, request);
    REQUIRE(step);
    CHECK_FALSE(step->done);
    CHECK(step->resources == 2);
    CHECK(step->remaining == 3);
  }
  CHECK(Count(*t->store, "code", "2345-7") == 2);  // o1, o2: what a search sees meanwhile
  CHECK(Count(*t->store, "status", "final") == 4);
  // Resumed: the rest only.
  auto rest = Reindex(*t->store, current);
  REQUIRE(rest);
  CHECK(rest->ran);
  CHECK(rest->resources == 3);
  CHECK(rest->unreadable == 1);
  CHECK(Count(*t->store, "code", "2345-7") == 4);
}
KAKEHASHI_BACKEND_TEST("store: an interrupted re-index resumes where it stopped",
                       "[store][reindex]", ReindexResumes)

// Two gateways opening the same upgraded database re-index it together: each step continues
// the progress the other committed, so no resource is done twice.
void ReindexTwoProcesses(Backend backend) {
  auto t = OldStore(backend);
  CloseForManualReindex(*t);
  auto a = t->OpenAnother();
  auto b = t->OpenAnother();
  const IndexDefinition current = DefaultIndexDefinition();
  ReindexOptions one_at_a_time;
  one_at_a_time.batch = 1;
  Result<ReindexReport> ra = make_error_code(errc::kUnsupported);
  Result<ReindexReport> rb = make_error_code(errc::kUnsupported);
  std::thread other([&] { rb = Reindex(*b, current, one_at_a_time); });
  ra = Reindex(*a, current, one_at_a_time);
  other.join();
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK(ra->resources + rb->resources == 5);
  CHECK(ra->unreadable + rb->unreadable == 1);
  CHECK(Count(*a, "code", "2345-7") == 4);
  CHECK(Count(*b, "code", "2345-7") == 4);
}
KAKEHASHI_BACKEND_TEST("store: two stores re-index one database without repeating a resource",
                       "[store][reindex]", ReindexTwoProcesses)

// "An older kakehashi" of another kind: every Observation had one token row more (status
// "older"), which the current definition does not extract, so a re-index must delete it.
IndexDefinition ExtraRowDefinition() {
  IndexDefinition def = DefaultIndexDefinition();
  auto extract = def.extract;
  def.fingerprint = "test-extra-" + def.fingerprint;
  def.extract = [extract](const ResourceRow& row, IndexEntries& out) {
    if (!extract(row, out)) return false;
    if (row.type == "Observation") out.tokens.push_back({"status", "", "older"});
    return true;
  };
  return def;
}

// Observation i with a quantity whose value has no exact binary form (REAL index columns).
std::string QuantityObservation(int i) {
  std::string json = R"({"resourceType":"Observation","id":"q)";
  json += std::to_string(i);
  json +=
      R"(","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},)";
  json += R"("valueQuantity":{"value":)";
  json += std::to_string(i);
  json += R"(.1,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}})";
  return json;
}

// Decision 0050: steps that end inside the extraction threads' chunks (32 resources), several
// extraction threads, a resumption mid-way with another step size; then forced re-indexes with
// and without threads find every row already as they would write it (rows identical), and the
// rows an older definition had in excess are gone.
void ReindexThreadsAndBoundaries(Backend backend) {
  constexpr int kCount = 70;
  auto t = testing::MakeStore(backend);
  t->store.reset();
  t->options.index = ExtraRowDefinition();
  t->store = t->OpenAnother();
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    Session& s = **session;
    const IndexDefinition old = ExtraRowDefinition();
    REQUIRE(s.Begin());
    for (int i = 1; i <= kCount; ++i) {
      std::string id = "q";
      id += std::to_string(i);
      ResourceRow row{"Observation", std::move(id), 1, 1000 + i, false, QuantityObservation(i)};
      IndexEntries entries;
      REQUIRE(old.extract(row, entries));
      REQUIRE(s.LockAndRead(row.type, row.id));
      REQUIRE(s.Write(row, entries));
    }
    REQUIRE(s.Commit());
  }
  CHECK(Count(*t->store, "status", "older") == kCount);
  CloseForManualReindex(*t);
  t->store = t->OpenAnother();
  const IndexDefinition current = DefaultIndexDefinition();
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    ReindexRequest request;
    request.limit = 33;  // one chunk and one resource of the next
    request.workers = 2;
    request.count = true;
    auto step = (*session)->ReindexStep(current, request);
    REQUIRE(step);
    CHECK(step->resources == 33);
    CHECK(step->changed == 33);
    CHECK(step->remaining == kCount - 33);
  }
  CHECK(Count(*t->store, "status", "older") == kCount - 33);  // the rest: old rows still
  CHECK(Count(*t->store, "status", "final") == kCount);
  ReindexOptions rest;
  rest.batch = 5;
  rest.workers = 1;
  auto resumed = Reindex(*t->store, current, rest);
  REQUIRE(resumed);
  CHECK(resumed->resources == kCount - 33);
  CHECK(resumed->changed == kCount - 33);
  CHECK(Count(*t->store, "status", "older") == 0);
  CHECK(Count(*t->store, "status", "final") == kCount);
  CHECK(Count(*t->store, "code", "2345-7") == kCount);
  for (std::size_t workers : {std::size_t{0}, std::size_t{3}}) {
    ReindexOptions force;
    force.restart = true;
    force.workers = workers;
    force.batch = workers == 0 ? 500 : 4;
    auto forced = Reindex(*t->store, current, force);
    REQUIRE(forced);
    CHECK(forced->resources == kCount);
    CHECK(forced->changed == 0);  // every stored row is the one it would write
  }
  // A search over the REAL column still finds the values (nothing was rewritten wrongly).
  auto session = t->store->OpenSession();
  REQUIRE(session);
  Predicate quantity;
  quantity.kind = Predicate::Kind::kQuantity;
  quantity.param = "value-quantity";
  quantity.compare = Compare::kGt;
  quantity.number = 60.5;  // q61..q70
  SearchQuery q;
  q.type = "Observation";
  q.where = {{quantity}};
  auto n = (*session)->Count(q);
  REQUIRE(n);
  CHECK(*n == 10);
}
KAKEHASHI_BACKEND_TEST("store: re-index steps across thread chunks write only changed rows",
                       "[store][reindex]", ReindexThreadsAndBoundaries)

// Decision 0055: `serve` listens while it re-indexes. The background re-index is held after its
// second step (its progress callback waits for the test), so what is served meanwhile is
// checked at a known point without sleeping.
void ServeDuringReindex(Backend backend) {
  auto t = OldStore(backend);
  CloseForManualReindex(*t);
  t->store = t->OpenAnother();
  std::mutex mutex;
  std::condition_variable cv;
  bool reached = false;
  bool release = false;
  ReindexOptions options;
  options.batch = 2;
  options.progress = [&](std::int64_t, std::int64_t) {
    std::unique_lock lock(mutex);
    reached = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  auto started = BackgroundReindex::Start(*t->store, DefaultIndexDefinition(), options);
  REQUIRE(started);
  BackgroundReindex& bg = **started;
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return reached; });
  }
  const auto during = bg.Status();
  CHECK(during.running);
  CHECK(during.done == 4);   // the first step (o1, o2) and the held one (o3, o4)
  CHECK(during.total == 5);  // and the unreadable one
  HandlerOptions handler_options;
  handler_options.health = std::make_shared<Health>(bg.Store(), &bg);
  Handler h(bg.Store(), handler_options);
  // Decision 0054: not ready while the re-index runs; its progress in the body, counts only.
  auto ready = h.Handle(testing::Req("GET", "/health/ready"));
  CHECK(ready.status == 503);
  CHECK(ready.body.find(R"("running":true)") != std::string::npos);
  CHECK(ready.body.find(R"("done":4,"total":5)") != std::string::npos);
  CHECK(ready.body.find(R"("ratePerSecond":)") != std::string::npos);
  CHECK(ready.body.find(R"("secondsLeft":)") != std::string::npos);
  CHECK(ready.body.find(R"("schemaVersion":10)") != std::string::npos);  // the store answers
  auto live = h.Handle(testing::Req("GET", "/health/live"));
  CHECK(live.status == 200);
  CHECK(live.body.find(R"("done":4,"total":5)") != std::string::npos);
  // Searches: 503 with Retry-After and an OperationOutcome, also a conditional create.
  auto search = h.Handle(testing::Req("GET", "/fhir/Observation?code=2345-7"));
  CHECK(search.status == 503);
  CHECK(search.Header("Retry-After") == "1");
  CHECK(search.body.find("\"OperationOutcome\"") != std::string::npos);
  CHECK(search.body.find("\"transient\"") != std::string::npos);
  auto conditional = h.Handle(testing::Req("POST", "/fhir/Observation", Observation(9),
                                           {{"If-None-Exist", "code=2345-7"}}));
  CHECK(conditional.status == 503);
  // Reads, history, writes and /metadata are served.
  CHECK(h.Handle(testing::Req("GET", "/fhir/Observation/o1")).status == 200);
  CHECK(h.Handle(testing::Req("GET", "/fhir/Observation/o1/_history")).status == 200);
  CHECK(h.Handle(testing::Req("GET", "/fhir/metadata")).status == 200);
  CHECK(h.Handle(testing::Req("PUT", "/fhir/Observation/o6", Observation(6))).status == 201);
  {
    std::lock_guard lock(mutex);
    release = true;
    cv.notify_all();
  }
  auto report = bg.Wait();
  REQUIRE(report);
  CHECK(report->resources == 6);  // o1..o4, the unreadable one and o6 (written meanwhile)
  CHECK(report->unreadable == 1);
  CHECK(report->changed == 4);  // o6's rows were the new definition's already: not rewritten
  CHECK_FALSE(bg.Status().running);
  auto after = h.Handle(testing::Req("GET", "/fhir/Observation?code=2345-7&_summary=count"));
  CHECK(after.status == 200);
  CHECK(after.body.find("\"total\":5") != std::string::npos);
  CHECK(Count(*t->store, "code", "2345-7") == 5);
  CHECK(h.Handle(testing::Req("GET", "/health/ready")).status == 200);
}
KAKEHASHI_BACKEND_TEST("store: serve during a re-index: searches 503, the rest served",
                       "[store][reindex]", ServeDuringReindex)

// The ids a search of Observations by one predicate finds, in order.
std::vector<std::string> SearchIds(Store& store, Predicate p) {
  auto session = store.OpenSession();
  REQUIRE(session);
  SearchQuery q;
  q.type = "Observation";
  q.where = {{std::move(p)}};
  q.count = 100;
  auto rows = (*session)->Search(q);
  REQUIRE(rows);
  std::vector<std::string> ids;
  for (const auto& row : *rows) ids.push_back(row.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Predicate Token(std::string param, std::string code) {
  Predicate p;
  p.kind = Predicate::Kind::kToken;
  p.param = std::move(param);
  p.value = std::move(code);
  return p;
}

// Holds every background re-index's progress callback until released, counting the arrivals.
struct Hold {
  std::mutex mutex;
  std::condition_variable cv;
  int reached = 0;
  bool release = false;
  std::function<void(std::int64_t, std::int64_t)> Callback() {
    return [this](std::int64_t, std::int64_t) {
      std::unique_lock lock(mutex);
      ++reached;
      cv.notify_all();
      cv.wait(lock, [this] { return release; });
    };
  }
  void WaitFor(int n) {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return reached >= n; });
  }
  void Release() {
    std::lock_guard lock(mutex);
    release = true;
    cv.notify_all();
  }
};

// Issue #6 "many stateless gateways, one database" (decisions 0054, 0055): two gateways start on
// one upgraded database and re-index it in the background together. Each is held after its
// own second step (its progress callback), so both are mid-way at a known point without
// sleeping: both refuse searches and are not ready, both serve reads and writes. Released, the
// two finish the one re-index between them: every resource done once (the reports add up),
// and the index rows are those a freshly written store has (same search results, and a forced
// re-index finds nothing to change).
void TwoGatewaysReindexInBackground(Backend backend) {
  auto t = OldStore(backend);
  CloseForManualReindex(*t);
  auto store_a = t->OpenAnother();
  auto store_b = t->OpenAnother();
  Hold hold;
  ReindexOptions options;
  options.batch = 1;
  options.progress = hold.Callback();
  auto started_a = BackgroundReindex::Start(*store_a, DefaultIndexDefinition(), options);
  REQUIRE(started_a);
  hold.WaitFor(1);  // A: its first step and one more (o1, o2)
  auto started_b = BackgroundReindex::Start(*store_b, DefaultIndexDefinition(), options);
  REQUIRE(started_b);
  hold.WaitFor(2);  // B: continuing A's progress (o3, o4)
  BackgroundReindex& a = **started_a;
  BackgroundReindex& b = **started_b;
  CHECK(a.Status().done == 2);
  CHECK(b.Status().done == 2);
  CHECK(a.Status().running);
  CHECK(b.Status().running);
  HandlerOptions options_a;
  options_a.health = std::make_shared<Health>(a.Store(), &a);
  Handler gateway_a(a.Store(), options_a);
  HandlerOptions options_b;
  options_b.health = std::make_shared<Health>(b.Store(), &b);
  Handler gateway_b(b.Store(), options_b);
  for (Handler* g : {&gateway_a, &gateway_b}) {
    CHECK(g->Handle(testing::Req("GET", "/fhir/Observation?code=2345-7")).status == 503);
    CHECK(g->Handle(testing::Req("GET", "/health/ready")).status == 503);
    CHECK(g->Handle(testing::Req("GET", "/health/live")).status == 200);
  }
  // Writes on either gateway, each read back through the other.
  CHECK(gateway_a.Handle(testing::Req("PUT", "/fhir/Observation/o6", Observation(6))).status ==
        201);
  CHECK(gateway_b.Handle(testing::Req("PUT", "/fhir/Observation/o7", Observation(7))).status ==
        201);
  CHECK(gateway_b.Handle(testing::Req("GET", "/fhir/Observation/o6")).status == 200);
  CHECK(gateway_a.Handle(testing::Req("GET", "/fhir/Observation/o7")).status == 200);
  CHECK(gateway_a.Handle(testing::Req("GET", "/fhir/Observation/o1")).status == 200);
  hold.Release();
  auto report_a = a.Wait();
  auto report_b = b.Wait();
  REQUIRE(report_a);
  REQUIRE(report_b);
  // o1..o4, the unreadable one, o6 and o7: each once, by one gateway or the other.
  CHECK(report_a->resources + report_b->resources == 7);
  CHECK(report_a->unreadable + report_b->unreadable == 1);
  CHECK(report_a->changed + report_b->changed == 4);  // o6, o7 were written with new rows
  for (Handler* g : {&gateway_a, &gateway_b}) {
    auto count = g->Handle(testing::Req("GET", "/fhir/Observation?code=2345-7&_summary=count"));
    CHECK(count.status == 200);
    CHECK(count.body.find("\"total\":6") != std::string::npos);
    CHECK(g->Handle(testing::Req("GET", "/health/ready")).status == 200);
  }
  // A store written fresh with the same resources finds the same ones.
  auto fresh = testing::MakeStore(backend);
  {
    Handler writer(*fresh->store, {});
    for (int i : {1, 2, 3, 4, 6, 7}) {
      std::string target = "/fhir/Observation/";
      target += ObservationId(i);
      REQUIRE(writer.Handle(testing::Req("PUT", target, Observation(i))).status == 201);
    }
  }
  Predicate subject;
  subject.kind = Predicate::Kind::kReference;
  subject.param = "patient";
  subject.value = "p1";
  subject.target_type = "Patient";
  for (const Predicate& p : {Token("code", "2345-7"), Token("status", "final"), subject}) {
    const auto found = SearchIds(*store_a, p);
    CHECK(found.size() == 6);
    CHECK(found == SearchIds(*fresh->store, p));
    CHECK(found == SearchIds(*store_b, p));
  }
  // And every stored row is what a fresh extraction writes: a forced re-index changes nothing.
  ReindexOptions force;
  force.restart = true;
  auto forced = Reindex(*store_a, DefaultIndexDefinition(), force);
  REQUIRE(forced);
  CHECK(forced->resources == 7);
  CHECK(forced->changed == 0);
}
KAKEHASHI_BACKEND_TEST("store: two gateways re-index one database in the background together",
                       "[store][reindex][health]", TwoGatewaysReindexInBackground)

}  // namespace
}  // namespace kakehashi::gateway::store
