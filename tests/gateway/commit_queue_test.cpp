// Group commit (commit_queue.hpp): several prepared write requests in one store transaction,
// each in its own savepoint. Jobs are queued before Start() so that they form one known group.
#include "kakehashi/gateway/commit_queue.hpp"

#include "detail/json.hpp"
#include "json_support.hpp"
#include "kakehashi/gateway/store/forwarding_session.hpp"
#include "test_support.hpp"

#ifdef KAKEHASHI_HAVE_POSTGRES
#include <libpq-fe.h>
#endif
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace kakehashi::gateway {
namespace {

using detail::Json;
using testing::Backend;
using testing::Parse;
using testing::Req;

struct TestJob final : CommitJob {
  explicit TestJob(std::unique_ptr<PreparedRequest> r)
      : CommitJob(std::move(r)), done(promise.get_future()) {}
  std::promise<void> promise;
  std::future<void> done;
  std::atomic<int> calls{0};
  void Done() noexcept override {
    ++calls;
    promise.set_value();
  }
  Response Wait() {
    done.wait();
    return Request().Finish(Lost());
  }
};

// A write request prepared for the queue (not applied yet).
std::shared_ptr<TestJob> Prepare(const Handler& h, const Request& r) {
  auto split = h.PrepareRequest(r);
  if (auto* answered = std::get_if<Response>(&split)) {
    FAIL("answered at once: " << answered->status << " " << answered->body);
  }
  return std::make_shared<TestJob>(std::move(std::get<std::unique_ptr<PreparedRequest>>(split)));
}

std::string Tx(const std::string& entries) {
  return R"({"resourceType":"Bundle","type":"transaction","entry":[)" + entries + "]}";
}

std::string PutEntry(const std::string& type, const std::string& id, const std::string& extra = {},
                     const std::string& if_match = {}) {
  std::string e = R"({"resource":{"resourceType":")" + type + R"(","id":")" + id + "\"" + extra +
                  R"(},"request":{"method":"PUT","url":")" + type + "/" + id + "\"";
  if (!if_match.empty()) {
    e += R"(,"ifMatch":")";
    for (char c : if_match) {
      if (c == '"') e += '\\';
      e += c;
    }
    e += '"';
  }
  return e + "}}";
}

// `whole`: CommitQueueOptions::whole_group_first (nullopt: the store's default, decision 0053).
void OneFailsAloneInAGroupWith(Backend backend, std::optional<bool> whole) {
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  REQUIRE(
      h.Handle(Req("PUT", "/fhir/Patient/a", R"({"resourceType":"Patient","id":"a"})")).status ==
      201);
  const std::string patient_b = R"({"resourceType":"Patient","id":"b","active":true})";
  std::vector<std::shared_ptr<TestJob>> jobs = {
      // 0: updates a to version 2
      Prepare(
          h, Req("PUT", "/fhir/Patient/a", R"({"resourceType":"Patient","id":"a","gender":"male"})",
                 {{"If-Match", "W/\"1\""}})),
      // 1: the same If-Match, applied after 0: 412, rolled back alone
      Prepare(h, Req("PUT", "/fhir/Patient/a",
                     R"({"resourceType":"Patient","id":"a","gender":"other"})",
                     {{"If-Match", "W/\"1\""}})),
      // 2: a transaction whose second entry fails inside: atomic, nothing of it is stored
      Prepare(h, Req("POST", "/fhir",
                     Tx(PutEntry("Organization", "o1") + "," +
                        PutEntry("Patient", "a", R"(,"active":false)", "W/\"7\"")))),
      // 3: a plain create
      Prepare(h, Req("POST", "/fhir/Patient", patient_b)),
      // 4, 5: the same conditional create twice: the second finds the first's resource
      Prepare(h, Req("POST", "/fhir/Patient",
                     R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"c"}]})",
                     {{"If-None-Exist", "identifier=urn:x|c"}})),
      Prepare(h, Req("POST", "/fhir/Patient",
                     R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"c"}]})",
                     {{"If-None-Exist", "identifier=urn:x|c"}})),
      // 6: a batch: its first entry stores, its second fails alone
      Prepare(h, Req("POST", "/fhir",
                     R"({"resourceType":"Bundle","type":"batch","entry":[)" +
                         PutEntry("Organization", "o2") + "," +
                         PutEntry("Patient", "a", "", "W/\"1\"") + "]}")),
      // 7: a delete of the transaction's resource that was never stored: nothing to delete
      Prepare(h, Req("DELETE", "/fhir/Organization/o1")),
  };
  CommitQueueOptions options;
  options.whole_group_first = whole;
  CommitQueue queue(h, options);
  for (auto& j : jobs) REQUIRE(queue.Submit(j));
  queue.Start();
  std::vector<Response> r;
  for (auto& j : jobs) r.push_back(j->Wait());
  queue.Stop();
  CHECK(queue.Stats().groups == 1);
  // Run whole first (SQLite by default): request 1's 412 rolls that transaction back and the
  // group runs again with savepoints.
  const bool whole_first = whole.value_or(backend == Backend::kSqlite);
  CHECK(queue.Stats().whole == 0);
  CHECK(queue.Stats().reruns == (whole_first ? 1 : 0));
  CHECK(queue.Stats().requests == jobs.size());
  CHECK(queue.Stats().largest == jobs.size());
  for (auto& j : jobs) CHECK(j->calls == 1);

  CHECK(r[0].status == 200);
  CHECK(r[0].Header("ETag") == "W/\"2\"");
  CHECK(r[1].status == 412);
  CHECK(r[1].body.find("OperationOutcome") != std::string::npos);
  CHECK(r[2].status == 412);
  CHECK(r[2].body.find("nothing was stored") != std::string::npos);
  CHECK(r[3].status == 201);
  CHECK(r[4].status == 201);
  REQUIRE(r[5].status == 200);
  CHECK(Parse(r[5].body).Str("id") == Parse(r[4].body).Str("id"));
  REQUIRE(r[6].status == 200);
  Json batch = Parse(r[6].body);
  CHECK(batch.Str("type") == "batch-response");
  REQUIRE(batch.Find("entry")->Items().size() == 2);
  CHECK(batch.Find("entry")->Items()[0].Find("response")->Str("status") == "201 Created");
  CHECK(batch.Find("entry")->Items()[1].Find("response")->Str("status") == "412");
  CHECK(r[7].status == 204);
  CHECK(r[7].Header("ETag").empty());

  // What the store holds: a at version 2 (male), b, one conditional patient, o2, no o1.
  Response a = h.Handle(Req("GET", "/fhir/Patient/a"));
  CHECK(a.Header("ETag") == "W/\"2\"");
  CHECK(Parse(a.body).Str("gender") == "male");
  CHECK(h.Handle(Req("GET", "/fhir/Patient/" + std::string(Parse(r[3].body).Str("id")))).status ==
        200);
  CHECK(Parse(h.Handle(Req("GET", "/fhir/Patient?identifier=urn:x|c")).body)
            .Find("entry")
            ->Items()
            .size() == 1);
  CHECK(h.Handle(Req("GET", "/fhir/Organization/o2")).status == 200);
  CHECK(h.Handle(Req("GET", "/fhir/Organization/o1")).status == 404);
  CHECK(
      Parse(h.Handle(Req("GET", "/fhir/Patient/a/_history")).body).Find("entry")->Items().size() ==
      2);
}
void OneFailsAloneInAGroup(Backend backend) {
  OneFailsAloneInAGroupWith(backend, std::nullopt);
}
KAKEHASHI_BACKEND_TEST("commit queue: a failing request rolls back alone, the group commits",
                       "[commit]", OneFailsAloneInAGroup)
void OneFailsAloneInAWholeGroup(Backend backend) {
  OneFailsAloneInAGroupWith(backend, true);
}
KAKEHASHI_BACKEND_TEST(
    "commit queue: a group run whole first, one request failing: run again with savepoints",
    "[commit]", OneFailsAloneInAWholeGroup)
void OneFailsAloneInASavepointGroup(Backend backend) {
  OneFailsAloneInAGroupWith(backend, false);
}
KAKEHASHI_BACKEND_TEST("commit queue: a group with savepoints only, one request failing",
                       "[commit]", OneFailsAloneInASavepointGroup)

void QueueOrder(Backend backend) {
  // Writes to one resource apply in the order they were queued: version i+1 holds write i.
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  std::vector<std::shared_ptr<TestJob>> jobs;
  for (int i = 0; i < 12; ++i) {
    jobs.push_back(Prepare(h, Req("PUT", "/fhir/Basic/seq",
                                  R"({"resourceType":"Basic","id":"seq","code":{"text":")" +
                                      std::to_string(i) + "\"}}")));
  }
  CommitQueueOptions options;
  options.max_group = 5;  // 12 jobs: groups of 5, 5 and 2
  CommitQueue queue(h, options);
  for (auto& j : jobs) REQUIRE(queue.Submit(j));
  queue.Start();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Response r = jobs[i]->Wait();
    CHECK(r.status == (i == 0 ? 201 : 200));
    CHECK(r.Header("ETag") == "W/\"" + std::to_string(i + 1) + "\"");
  }
  queue.Stop();
  CHECK(queue.Stats().groups == 3);
  CHECK(queue.Stats().largest == 5);
  // SQLite (decision 0053): every group committed whole, without savepoints.
  CHECK(queue.Stats().whole == (backend == Backend::kSqlite ? 3 : 0));
  CHECK(queue.Stats().reruns == 0);
  for (int v = 1; v <= 12; ++v) {
    Response r = h.Handle(Req("GET", "/fhir/Basic/seq/_history/" + std::to_string(v)));
    REQUIRE(r.status == 200);
    CHECK(Parse(r.body).Find("code")->Str("text") == std::to_string(v - 1));
  }
}
KAKEHASHI_BACKEND_TEST("commit queue: requests apply in queue order", "[commit]", QueueOrder)

// Two gateways (Stores) on one database, each with its handler and commit queue (started unless
// `start` is false, so that a test can queue a known group first; `o1`: q1's options); h1
// creates the counter Basic/counter at "0" (NextCounterUpdate) before the second Store opens.
struct TwoGateways {
  explicit TwoGateways(Backend backend, CommitQueueOptions o1 = {}, bool start = true)
      : t(testing::MakeStore(backend)),
        h1(*t->store, {}),
        other(CreateCounterThenOpenAnother()),
        h2(*other, {}),
        q1(h1, std::move(o1)),
        q2(h2) {
    if (start) {
      q1.Start();
      q2.Start();
    }
  }
  std::unique_ptr<testing::TestStore> t;
  Handler h1;
  std::unique_ptr<gateway::store::Store> other;
  Handler h2;
  CommitQueue q1;
  CommitQueue q2;

 private:
  std::unique_ptr<gateway::store::Store> CreateCounterThenOpenAnother() {
    REQUIRE(h1.Handle(Req("PUT", "/fhir/Basic/counter",
                          R"({"resourceType":"Basic","id":"counter","code":{"text":"0"}})"))
                .status == 201);
    return t->OpenAnother();
  }
};

void NoLostUpdateThroughQueues(Backend backend) {
  // Two gateways (Stores), each with its commit queue and two writer threads: read + If-Match
  // retry. Writers of one queue share groups, so a group often holds two updates of the one
  // resource, the second of which fails alone (412) and is retried.
  TwoGateways g(backend);
  Handler& h1 = g.h1;
  Handler& h2 = g.h2;
  CommitQueue& q1 = g.q1;
  CommitQueue& q2 = g.q2;
  std::atomic<int> successes{0};
  std::atomic<int> unexpected{0};  // no Catch assertion inside the threads (not thread-safe)
  auto writer = [&](const Handler& h, CommitQueue& q) {
    for (int i = 0; i < 10; ++i) {
      while (true) {
        auto next = testing::NextCounterUpdate(h);
        if (!next) {
          ++unexpected;
          return;
        }
        auto split = h.PrepareRequest(
            Req("PUT", "/fhir/Basic/counter", next->body, {{"If-Match", next->etag}}));
        auto* prepared = std::get_if<std::unique_ptr<PreparedRequest>>(&split);
        if (prepared == nullptr) {
          ++unexpected;
          return;
        }
        auto job = std::make_shared<TestJob>(std::move(*prepared));
        if (!q.Submit(job)) {
          ++unexpected;
          return;
        }
        Response put = job->Wait();
        if (put.status == 200) {
          ++successes;
          break;
        }
        if (put.status != 412 && put.status != 409) {
          ++unexpected;
          return;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, std::cref(h1), std::ref(q1));
  threads.emplace_back(writer, std::cref(h1), std::ref(q1));
  threads.emplace_back(writer, std::cref(h2), std::ref(q2));
  threads.emplace_back(writer, std::cref(h2), std::ref(q2));
  for (auto& th : threads) th.join();
  q1.Stop();
  q2.Stop();
  REQUIRE(unexpected == 0);
  Json final_state = Parse(h1.Handle(Req("GET", "/fhir/Basic/counter")).body);
  CHECK(successes == 40);
  CHECK(final_state.Find("code")->Str("text") == "40");
  CHECK(final_state.Find("meta")->Str("versionId") == "41");
}
KAKEHASHI_BACKEND_TEST("commit queue: concurrent If-Match writers lose no update (two gateways)",
                       "[commit]", NoLostUpdateThroughQueues)

TEST_CASE("commit queue: bounded, Stop drains what is queued, then refuses", "[commit]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  Handler h(*t->store, {});
  CommitQueueOptions options;
  options.max_queued = 3;
  CommitQueue queue(h, options);
  std::vector<std::shared_ptr<TestJob>> jobs;
  for (int i = 0; i < 4; ++i) {
    jobs.push_back(Prepare(h, Req("PUT", "/fhir/Basic/b" + std::to_string(i),
                                  R"({"resourceType":"Basic","id":"b)" + std::to_string(i) +
                                      R"(","code":{"text":"x"}})")));
  }
  CHECK(queue.Submit(jobs[0]));
  CHECK(queue.Submit(jobs[1]));
  CHECK(queue.Submit(jobs[2]));
  CHECK_FALSE(queue.Submit(jobs[3]));  // full: not taken, never completed
  queue.Stop();                        // not started: drained on this thread
  for (int i = 0; i < 3; ++i) {
    CHECK(jobs[i]->Wait().status == 201);
    CHECK(h.Handle(Req("GET", "/fhir/Basic/b" + std::to_string(i))).status == 200);
  }
  CHECK(jobs[3]->calls == 0);
  CHECK(h.Handle(Req("GET", "/fhir/Basic/b3")).status == 404);
  CHECK_FALSE(queue.Submit(jobs[3]));  // stopped
  CHECK(queue.Stats().groups == 1);
}

TEST_CASE("commit queue: reads and early failures are answered without the queue", "[commit]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  Handler h(*t->store, {});
  auto read = h.PrepareRequest(Req("GET", "/fhir/Patient/none"));
  REQUIRE(std::holds_alternative<Response>(read));
  CHECK(std::get<Response>(read).status == 404);
  auto bad = h.PrepareRequest(Req("PUT", "/fhir/Patient/x", "{not json"));
  REQUIRE(std::holds_alternative<Response>(bad));
  CHECK(std::get<Response>(bad).status == 400);
  auto xml = h.PrepareRequest(
      Req("POST", "/fhir/Patient", "<Patient/>", {{"Content-Type", "application/fhir+xml"}}));
  REQUIRE(std::holds_alternative<Response>(xml));
  CHECK(std::get<Response>(xml).status == 415);
  // A prepared write does nothing until it is applied.
  auto put =
      h.PrepareRequest(Req("PUT", "/fhir/Patient/x", R"({"resourceType":"Patient","id":"x"})"));
  REQUIRE(std::holds_alternative<std::unique_ptr<PreparedRequest>>(put));
  CHECK(h.Handle(Req("GET", "/fhir/Patient/x")).status == 404);
}

TEST_CASE("commit queue: the after_apply hook fires for every group, one request included",
          "[commit]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  Handler h(*t->store, {});
  std::vector<std::size_t> seen;  // the commit thread's calls; read after Stop()
  CommitQueueOptions options;
  options.after_apply = [&](std::size_t i) { seen.push_back(i); };
  CommitQueue queue(h, options);
  auto one = Prepare(h, Req("PUT", "/fhir/Basic/h1", R"({"resourceType":"Basic","id":"h1"})"));
  REQUIRE(queue.Submit(one));
  queue.Start();
  CHECK(one->Wait().status == 201);
  queue.Stop();
  CHECK(seen == std::vector<std::size_t>{0});
  CHECK(queue.Stats().groups == 1);

  seen.clear();
  CommitQueue two(h, options);
  auto a = Prepare(h, Req("PUT", "/fhir/Basic/h2", R"({"resourceType":"Basic","id":"h2"})"));
  auto b = Prepare(h, Req("PUT", "/fhir/Basic/h3", R"({"resourceType":"Basic","id":"h3"})"));
  REQUIRE(two.Submit(a));
  REQUIRE(two.Submit(b));
  two.Start();
  CHECK(a->Wait().status == 201);
  CHECK(b->Wait().status == 201);
  two.Stop();
  CHECK(seen == std::vector<std::size_t>{0, 1});
}

// ---------------------------------------------------------------- retries (decision 0016)

// A store whose sessions fail on purpose, as a real database would: LockAndRead of a named
// resource ("Type/id"; a conditional create locks "Type/?criteria"), Begin, or Commit, a number
// of times (-1: always) with a given error. A failed Commit rolls back, except `commit_unknown`:
// it commits and then reports errc::kCommitUnknown (the connection broke before the answer).
struct Faults {
  struct Rule {
    int times = 0;
    ErrorCode error;
  };
  std::mutex mutex;
  std::map<std::string, Rule> locks;
  Rule begin;
  Rule commit;
  bool commit_unknown = false;
  int commits = 0;  // Commit calls
  bool Take(Rule& r, ErrorCode& out) {
    if (r.times == 0) return false;
    if (r.times > 0) --r.times;
    out = r.error;
    return true;
  }
};

ErrorCode Err(store::errc e) {
  return make_error_code(e);
}

class FaultySession final : public store::ForwardingSession {
 public:
  FaultySession(std::unique_ptr<store::Session> inner, Faults& f)
      : ForwardingSession(std::move(inner)), f_(f) {}
  Result<void> Begin() override {
    ErrorCode e;
    {
      std::lock_guard lock(f_.mutex);
      if (f_.Take(f_.begin, e)) return e;
    }
    return Inner().Begin();
  }
  Result<void> Commit() override {
    ErrorCode e;
    bool unknown = false;
    {
      std::lock_guard lock(f_.mutex);
      ++f_.commits;
      if (!f_.Take(f_.commit, e)) return Inner().Commit();
      unknown = f_.commit_unknown;
    }
    if (unknown) {
      if (auto c = Inner().Commit(); !c) return c.error();
    } else {
      Inner().Rollback();
    }
    return e;
  }
  Result<std::optional<store::ResourceRow>> LockAndRead(std::string_view type,
                                                        std::string_view id) override {
    ErrorCode e;
    {
      std::lock_guard lock(f_.mutex);
      auto it = f_.locks.find(std::string(type) + "/" + std::string(id));
      if (it != f_.locks.end() && f_.Take(it->second, e)) return e;
    }
    return Inner().LockAndRead(type, id);
  }

 private:
  Faults& f_;
};

class FaultyStore final : public store::Store {
 public:
  FaultyStore(store::Store& inner, Faults& f) : inner_(inner), f_(f) {}
  Result<std::unique_ptr<store::Session>> OpenSession() override {
    auto s = inner_.OpenSession();
    if (!s) return s.error();
    return std::unique_ptr<store::Session>(std::make_unique<FaultySession>(std::move(*s), f_));
  }
  std::string_view Backend() const override { return inner_.Backend(); }

 private:
  store::Store& inner_;
  Faults& f_;
};

// Runs `requests` as one group through a queue over `store` (faults injected), answers them.
std::vector<Response> RunOneGroup(const Handler& h, const std::vector<Request>& requests,
                                  CommitQueue::Counters* stats = nullptr) {
  std::vector<std::shared_ptr<TestJob>> jobs;
  for (const Request& r : requests) jobs.push_back(Prepare(h, r));
  CommitQueue queue(h);
  for (auto& j : jobs) REQUIRE(queue.Submit(j));
  queue.Start();
  std::vector<Response> out;
  for (auto& j : jobs) out.push_back(j->Wait());
  queue.Stop();
  for (auto& j : jobs) CHECK(j->calls == 1);
  CHECK(queue.Stats().groups == 1);
  if (stats != nullptr) *stats = queue.Stats();
  return out;
}

std::size_t Matches(const Handler& h, const std::string& search) {
  const Json* entries = Parse(h.Handle(Req("GET", search)).body).Find("entry");
  return entries == nullptr ? 0 : entries->Items().size();
}

void EachAnsweredForItself(Backend backend, bool commit_fails) {
  // One group whose requests meet store errors: "bad" always fails its lock (a statement
  // error: 500, for it alone), "unlucky" and a batch entry fail their first lock with a conflict
  // (a deadlock victim: run again alone, succeed). With `commit_fails`, the group's commit fails
  // too (SQLITE_BUSY / a serialization failure at COMMIT): every request runs again alone. Either
  // way each answer is the request's own and the store holds each write exactly once.
  auto t = testing::MakeStore(backend);
  Handler plain(*t->store, {});
  REQUIRE(plain.Handle(Req("PUT", "/fhir/Patient/a", R"({"resourceType":"Patient","id":"a"})"))
              .status == 201);
  Faults faults;
  faults.locks["Patient/bad"] = {-1, Err(store::errc::kQueryFailed)};
  faults.locks["Patient/unlucky"] = {1, Err(store::errc::kConflict)};
  faults.locks["Patient/unlucky2"] = {1, Err(store::errc::kConflict)};
  if (commit_fails) faults.commit = {1, Err(store::errc::kConflict)};
  FaultyStore faulty(*t->store, faults);
  Handler h(faulty, {});
  const std::string cond =
      R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"c"}]})";
  const std::string tx_cond = Tx(
      R"({"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-0000000000aa","resource":{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"t"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:x|t"}},)"
      R"({"resource":{"resourceType":"Observation","id":"tobs","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0f0d5d6e-0000-4000-8000-0000000000aa"}},"request":{"method":"PUT","url":"Observation/tobs"}})");
  CommitQueue::Counters stats;
  std::vector<Response> r = RunOneGroup(
      h,
      {
          Req("PUT", "/fhir/Patient/a", R"({"resourceType":"Patient","id":"a","gender":"male"})",
              {{"If-Match", "W/\"1\""}}),  // 0: 200, version 2
          Req("PUT", "/fhir/Patient/a", R"({"resourceType":"Patient","id":"a","gender":"other"})",
              {{"If-Match", "W/\"1\""}}),  // 1: 412 (after 0)
          Req("POST", "/fhir/Patient",
              R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"p"}]})"),  // 2
          Req("POST", "/fhir/Patient", cond, {{"If-None-Exist", "identifier=urn:x|c"}}),  // 3: 201
          Req("POST", "/fhir/Patient", cond, {{"If-None-Exist", "identifier=urn:x|c"}}),  // 4: 200
          Req("PUT", "/fhir/Patient/bad", R"({"resourceType":"Patient","id":"bad"})"),    // 5: 500
          Req("PUT", "/fhir/Patient/unlucky",
              R"({"resourceType":"Patient","id":"unlucky"})"),  // 6: 201 when run again
          Req("POST", "/fhir", tx_cond),                        // 7: 200
          Req("POST", "/fhir",
              R"({"resourceType":"Bundle","type":"batch","entry":[)" +
                  PutEntry("Organization", "b1") + "," + PutEntry("Patient", "unlucky2") +
                  "]}"),  // 8: both entries 201
          // 9: a conditional update creating a Patient and a conditional reference to it
          // (resolved after the writes, in a savepoint of its own: decision 0036): 200
          Req("POST", "/fhir",
              Tx(R"({"resource":{"resourceType":"Observation","id":"cqobs","status":"final","code":{"text":"x"},)"
                 R"("subject":{"reference":"Patient?identifier=urn:x|cq"}},"request":{"method":"PUT","url":"Observation/cqobs"}},)"
                 R"({"resource":{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"cq"}]},)"
                 R"("request":{"method":"PUT","url":"Patient?identifier=urn:x|cq"}})")),
      },
      &stats);
  CHECK(r[0].status == 200);
  CHECK(r[0].Header("ETag") == "W/\"2\"");
  CHECK(r[1].status == 412);
  CHECK(r[2].status == 201);
  CHECK(r[3].status == 201);
  REQUIRE(r[4].status == 200);
  CHECK(Parse(r[4].body).Str("id") == Parse(r[3].body).Str("id"));
  CHECK(r[5].status == 500);
  CHECK(r[5].body.find("OperationOutcome") != std::string::npos);
  CHECK(r[6].status == 201);
  CHECK(r[6].Header("ETag") == "W/\"1\"");
  REQUIRE(r[7].status == 200);
  REQUIRE(r[8].status == 200);
  Json batch = Parse(r[8].body);
  REQUIRE(batch.Find("entry")->Items().size() == 2);
  CHECK(batch.Find("entry")->Items()[0].Find("response")->Str("status") == "201 Created");
  CHECK(batch.Find("entry")->Items()[1].Find("response")->Str("status") == "201 Created");
  REQUIRE(r[9].status == 200);
  // Re-runs: 5, 6 and 8 alone after the group; with the commit lost, all ten.
  CHECK(stats.retries == (commit_fails ? 10u : 3u));

  // Stored exactly once each: a at version 2 (male, two history entries), one Patient per
  // identifier, the transaction's Observation referring to its conditional Patient.
  Response a = plain.Handle(Req("GET", "/fhir/Patient/a"));
  CHECK(a.Header("ETag") == "W/\"2\"");
  CHECK(Parse(a.body).Str("gender") == "male");
  CHECK(Parse(plain.Handle(Req("GET", "/fhir/Patient/a/_history")).body)
            .Find("entry")
            ->Items()
            .size() == 2);
  CHECK(Matches(plain, "/fhir/Patient?identifier=urn:x|p") == 1);
  CHECK(Matches(plain, "/fhir/Patient?identifier=urn:x|c") == 1);
  CHECK(Matches(plain, "/fhir/Patient?identifier=urn:x|t") == 1);
  CHECK(plain.Handle(Req("GET", "/fhir/Patient/bad")).status == 404);
  for (const char* target :
       {"/fhir/Patient/unlucky", "/fhir/Patient/unlucky2", "/fhir/Organization/b1"}) {
    Response got = plain.Handle(Req("GET", target));
    CHECK(got.status == 200);
    CHECK(got.Header("ETag") == "W/\"1\"");
  }
  Json obs = Parse(plain.Handle(Req("GET", "/fhir/Observation/tobs")).body);
  Json tpat = Parse(plain.Handle(Req("GET", "/fhir/Patient?identifier=urn:x|t")).body);
  CHECK(obs.Find("subject")->Str("reference") ==
        "Patient/" + std::string(tpat.Find("entry")->Items()[0].Find("resource")->Str("id")));
  // Once each, the Observation referring to the Patient of this run (a run again after a lost
  // commit creates it anew, from the Bundle as sent).
  REQUIRE(Matches(plain, "/fhir/Patient?identifier=urn:x|cq") == 1);
  Json cqpat = Parse(plain.Handle(Req("GET", "/fhir/Patient?identifier=urn:x|cq")).body);
  Json cqobs = Parse(plain.Handle(Req("GET", "/fhir/Observation/cqobs")).body);
  CHECK(cqobs.Find("subject")->Str("reference") ==
        "Patient/" + std::string(cqpat.Find("entry")->Items()[0].Find("resource")->Str("id")));
  CHECK(cqobs.Find("meta")->Str("versionId") == "1");
}
KAKEHASHI_BACKEND_TEST(
    "commit queue: store errors are retried per request, each answered for itself",
    "[commit][retry]", [](Backend b) { EachAnsweredForItself(b, false); })
KAKEHASHI_BACKEND_TEST("commit queue: a failed group commit runs every request again alone",
                       "[commit][retry]", [](Backend b) { EachAnsweredForItself(b, true); })

TEST_CASE("commit queue: a request that keeps conflicting gets 409 after bounded retries alone",
          "[commit][retry]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  Faults faults;
  faults.locks["Patient/hot"] = {-1, Err(store::errc::kConflict)};
  faults.locks["Patient/gone"] = {-1, Err(store::errc::kUnavailable)};
  FaultyStore faulty(*t->store, faults);
  Handler h(faulty, {});
  CommitQueue::Counters stats;
  std::vector<Response> r =
      RunOneGroup(h,
                  {Req("PUT", "/fhir/Patient/p1", R"({"resourceType":"Patient","id":"p1"})"),
                   Req("PUT", "/fhir/Patient/hot", R"({"resourceType":"Patient","id":"hot"})"),
                   Req("PUT", "/fhir/Patient/gone", R"({"resourceType":"Patient","id":"gone"})"),
                   Req("PUT", "/fhir/Patient/p2", R"({"resourceType":"Patient","id":"p2"})")},
                  &stats);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 409);
  CHECK(r[2].status == 503);
  CHECK(r[2].Header("Retry-After") == "1");
  CHECK(r[3].status == 201);
  // hot and gone: out of the group once, then kCommitAttempts runs alone.
  CHECK(stats.retries == 2u * kCommitAttempts);
  Handler plain(*t->store, {});
  CHECK(plain.Handle(Req("GET", "/fhir/Patient/hot")).status == 404);
  CHECK(plain.Handle(Req("GET", "/fhir/Patient/p2")).status == 200);
}

TEST_CASE("commit queue: a batch run again keeps its invalid conditional create rejected",
          "[commit][retry]") {
  // A batch's conditional create is prepared (validated) inside the transaction; when it is
  // invalid (422) and another entry of the batch meets a transient store error, the batch runs
  // again alone. The second run must reject the same resource again, not store what the first
  // run left of it (its members were moved into the failed preparation).
  auto t = testing::MakeStore(Backend::kSqlite);
  Faults faults;
  faults.locks["Patient/unlucky3"] = {1, Err(store::errc::kConflict)};
  FaultyStore faulty(*t->store, faults);
  HandlerOptions options;
  options.validator = [](std::string_view json, IssueSink& sink) {
    if (json.find("\"gender\":\"unknown\"") != std::string_view::npos) {
      sink.Error("test.refused", {}, "refused by the test validator");
    }
  };
  Handler h(faulty, options);
  const std::string batch =
      R"({"resourceType":"Bundle","type":"batch","entry":[)"
      R"({"resource":{"resourceType":"Patient","gender":"unknown","identifier":[{"system":"urn:x","value":"v"}]},)"
      R"("request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:x|v"}},)" +
      PutEntry("Patient", "unlucky3") + "]}";
  CommitQueue::Counters stats;
  std::vector<Response> r = RunOneGroup(h, {Req("POST", "/fhir", batch)}, &stats);
  CHECK(stats.retries == 1u);
  REQUIRE(r[0].status == 200);
  Json out = Parse(r[0].body);
  REQUIRE(out.Find("entry")->Items().size() == 2);
  CHECK(out.Find("entry")->Items()[0].Find("response")->Str("status") == "422");
  CHECK(out.Find("entry")->Items()[1].Find("response")->Str("status") == "201 Created");
  Handler plain(*t->store, {});
  CHECK(Matches(plain, "/fhir/Patient?gender=unknown") == 0);
  CHECK(Matches(plain, "/fhir/Patient") == 1);  // unlucky3 only
}

TEST_CASE("commit queue: a group that cannot begin is tried again whole; never split",
          "[commit][retry]") {
  auto t = testing::MakeStore(Backend::kSqlite);
  Faults faults;
  faults.begin = {2, Err(store::errc::kConflict)};  // SQLITE_BUSY at BEGIN IMMEDIATE, twice
  FaultyStore faulty(*t->store, faults);
  Handler h(faulty, {});
  CommitQueue::Counters stats;
  std::vector<Response> r =
      RunOneGroup(h,
                  {Req("PUT", "/fhir/Patient/b1", R"({"resourceType":"Patient","id":"b1"})"),
                   Req("PUT", "/fhir/Patient/b2", R"({"resourceType":"Patient","id":"b2"})")},
                  &stats);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 201);
  CHECK(stats.retries == 0);
  CHECK(faults.commits == 1);  // one transaction for both

  // Begin failing for good (not transient): everyone gets the error, nobody is retried alone.
  Faults broken;
  broken.begin = {-1, Err(store::errc::kQueryFailed)};
  FaultyStore dead(*t->store, broken);
  Handler hd(dead, {});
  r = RunOneGroup(hd,
                  {Req("PUT", "/fhir/Patient/b3", R"({"resourceType":"Patient","id":"b3"})"),
                   Req("PUT", "/fhir/Patient/b4", R"({"resourceType":"Patient","id":"b4"})")},
                  &stats);
  CHECK(r[0].status == 500);
  CHECK(r[1].status == 500);
  CHECK(stats.retries == 0);
}

void ReadOnlyBatchHasNoTransaction(Backend backend) {
  // A batch Bundle with nothing to write (only GET entries, or its writes rejected before the
  // store) is answered without a write transaction: no transaction id, no commit record
  // (decision 0028). Begin fails for good here, so any transaction would show as an error.
  auto t = testing::MakeStore(backend);
  Handler plain(*t->store, {});
  REQUIRE(plain.Handle(Req("PUT", "/fhir/Patient/g1", R"({"resourceType":"Patient","id":"g1"})"))
              .status == 201);
  Faults faults;
  faults.begin = {-1, Err(store::errc::kQueryFailed)};
  FaultyStore faulty(*t->store, faults);
  Handler h(faulty, {});
  const std::string gets = R"({"resourceType":"Bundle","type":"batch","entry":[)"
                           R"({"request":{"method":"GET","url":"Patient/g1"}},)"
                           R"({"request":{"method":"GET","url":"Patient?_id=g1"}},)"
                           R"({"request":{"method":"GET","url":"Patient/none"}}]})";
  auto check = [](const Response& r) {
    REQUIRE(r.status == 200);
    Json b = Parse(r.body);
    CHECK(b.Str("type") == "batch-response");
    const auto& e = b.Find("entry")->Items();
    REQUIRE(e.size() == 3);
    CHECK(e[0].Find("response")->Str("status") == "200 OK");
    CHECK(e[0].Find("resource")->Str("id") == "g1");
    CHECK(e[1].Find("response")->Str("status") == "200 OK");
    CHECK(e[2].Find("response")->Str("status").starts_with("404"));
  };
  check(h.Handle(Req("POST", "/fhir", gets)));
  auto split = h.PrepareRequest(Req("POST", "/fhir", gets));
  REQUIRE(std::holds_alternative<Response>(split));  // never queued for the commit thread
  check(std::get<Response>(split));
  // A write entry rejected while preparing leaves nothing to write either.
  Response rejected = h.Handle(Req("POST", "/fhir",
                                   R"({"resourceType":"Bundle","type":"batch","entry":[)"
                                   R"({"request":{"method":"GET","url":"Patient/g1"}},)"
                                   R"({"resource":{"resourceType":"Patient","id":"g2"},)"
                                   R"("request":{"method":"PUT","url":"Patient/g9"}}]})"));
  REQUIRE(rejected.status == 200);
  Json rb = Parse(rejected.body);
  CHECK(rb.Find("entry")->Items()[0].Find("response")->Str("status") == "200 OK");
  CHECK(rb.Find("entry")->Items()[1].Find("response")->Str("status").starts_with("4"));
  CHECK(faults.commits == 0);
  // A batch that writes still needs its transaction (and gets Begin's error).
  Response write = h.Handle(Req("POST", "/fhir",
                                R"({"resourceType":"Bundle","type":"batch","entry":[)"
                                R"({"resource":{"resourceType":"Patient","id":"g3"},)"
                                R"("request":{"method":"PUT","url":"Patient/g3"}}]})"));
  CHECK(write.status == 500);
}
KAKEHASHI_BACKEND_TEST("commit queue: a batch of GETs only runs no write transaction", "[commit]",
                       ReadOnlyBatchHasNoTransaction)

TEST_CASE("commit queue: a commit of unknown outcome is never run again", "[commit][retry]") {
  // The connection broke during COMMIT, which had in fact committed: the requests answer 500
  // (saying the outcome is unknown) and are not applied a second time.
  for (const std::size_t size : {std::size_t{1}, std::size_t{2}}) {
    auto t = testing::MakeStore(Backend::kSqlite);
    Faults faults;
    faults.commit = {1, Err(store::errc::kCommitUnknown)};
    faults.commit_unknown = true;
    FaultyStore faulty(*t->store, faults);
    Handler h(faulty, {});
    std::vector<Request> requests = {
        Req("POST", "/fhir/Patient",
            R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"u"}]})")};
    if (size == 2) {
      requests.push_back(Req("PUT", "/fhir/Patient/u2", R"({"resourceType":"Patient","id":"u2"})"));
    }
    CommitQueue::Counters stats;
    std::vector<Response> r = RunOneGroup(h, requests, &stats);
    for (const Response& one : r) {
      CHECK(one.status == 500);
      CHECK(one.body.find("may or may not be stored") != std::string::npos);
    }
    CHECK(stats.retries == 0);
    CHECK(faults.commits == 1);
    Handler plain(*t->store, {});
    CHECK(Matches(plain, "/fhir/Patient?identifier=urn:x|u") == 1);
    if (size == 2) CHECK(plain.Handle(Req("GET", "/fhir/Patient/u2")).Header("ETag") == "W/\"1\"");
  }
}

TEST_CASE("commit queue: a cross-gateway deadlock ends as a retry alone [postgresql]",
          "[commit][retry][.postgres]") {
  // Two gateways (Stores, queues) on one PostgreSQL database. Each group updates d0 and d1 in
  // opposite orders; the hook holds both groups after their first update until both have it,
  // so each then waits for the other's lock: PostgreSQL aborts one (40P01, after
  // deadlock_timeout), whose request is rolled back to its savepoint and run again alone once
  // its group committed. Before decision 0016 it was answered 409.
  auto t = testing::MakeStore(Backend::kPostgres);
  auto other = t->OpenAnother();
  Handler h1(*t->store, {});
  Handler h2(*other, {});
  for (const char* id : {"d0", "d1"}) {
    REQUIRE(h1.Handle(Req("PUT", std::string("/fhir/Basic/") + id,
                          std::string(R"({"resourceType":"Basic","id":")") + id +
                              R"(","code":{"text":"start"}})"))
                .status == 201);
  }
  std::latch both_first(2);
  auto hold_once = [&both_first] {  // each queue's first group waits after its first request
    return [&both_first, held = std::make_shared<std::atomic<bool>>(false)](std::size_t i) {
      if (i == 0 && !held->exchange(true)) both_first.arrive_and_wait();
    };
  };
  auto put = [](const Handler& h, const std::string& id, const std::string& text) {
    return Prepare(
        h, Req("PUT", "/fhir/Basic/" + id,
               R"({"resourceType":"Basic","id":")" + id + R"(","code":{"text":")" + text + "\"}}"));
  };
  CommitQueueOptions o1;
  o1.after_apply = hold_once();
  CommitQueueOptions o2;
  o2.after_apply = hold_once();
  CommitQueue q1(h1, o1);
  CommitQueue q2(h2, o2);
  std::vector<std::shared_ptr<TestJob>> jobs = {put(h1, "d0", "q1"), put(h1, "d1", "q1"),
                                                put(h2, "d1", "q2"), put(h2, "d0", "q2")};
  REQUIRE(q1.Submit(jobs[0]));
  REQUIRE(q1.Submit(jobs[1]));
  REQUIRE(q2.Submit(jobs[2]));
  REQUIRE(q2.Submit(jobs[3]));
  q1.Start();
  q2.Start();
  for (auto& j : jobs) CHECK(j->Wait().status == 200);
  q1.Stop();
  q2.Stop();
  CHECK(q1.Stats().groups == 1);
  CHECK(q2.Stats().groups == 1);
  CHECK(q1.Stats().retries + q2.Stats().retries == 1);  // the deadlock's victim
  for (const char* id : {"d0", "d1"}) {
    const std::string base = std::string("/fhir/Basic/") + id;
    CHECK(h1.Handle(Req("GET", base)).Header("ETag") == "W/\"3\"");
    std::multiset<std::string> texts;
    for (int v = 2; v <= 3; ++v) {
      Response r = h1.Handle(Req("GET", base + "/_history/" + std::to_string(v)));
      REQUIRE(r.status == 200);
      texts.insert(std::string(Parse(r.body).Find("code")->Str("text")));
    }
    CHECK(texts == std::multiset<std::string>{"q1", "q2"});  // each write once, none lost
  }
}

#ifdef KAKEHASHI_HAVE_POSTGRES
// One statement on an admin connection to `url`; the first value of its result ("" if none).
std::string PgAdmin(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  std::string out;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) out = "ok";
    PQclear(r);
  }
  PQfinish(c);
  return out;
}

TEST_CASE("commit queue: PostgreSQL connections killed under the pool: the group runs on new ones",
          "[commit][retry][.postgres]") {
  // A database of its own (so that terminating its backends touches no other test), a store
  // with a schema (a reconnection must set search_path again). Every pooled connection is
  // terminated, as by a server restart; the next group's BEGIN fails with errc::kUnavailable,
  // the group is tried again on new connections, and every request is applied once.
  const std::string url = testing::PostgresUrl();
  REQUIRE(!url.empty());
  const std::size_t slash = url.rfind('/');
  REQUIRE(slash != std::string::npos);
  const std::string db = "kk_kill_" + testing::RandomSuffix();
  REQUIRE(PgAdmin(url, "CREATE DATABASE " + db) == "ok");
  const std::string db_url = url.substr(0, slash + 1) + db;
  {
    store::StoreOptions options;
    options.postgres_schema = "s1";
    auto opened = store::OpenStore(db_url, options);
    REQUIRE(opened);
    Handler h(**opened, {});
    REQUIRE(h.Handle(Req("PUT", "/fhir/Patient/k0", R"({"resourceType":"Patient","id":"k0"})"))
                .status == 201);
    const std::string killed = PgAdmin(
        url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
                 db + "'");
    CHECK(killed != "0");
    CHECK(!killed.empty());
    CommitQueue::Counters stats;
    std::vector<Response> r = RunOneGroup(
        h,
        {Req("PUT", "/fhir/Patient/k1", R"({"resourceType":"Patient","id":"k1"})"),
         Req("POST", "/fhir/Patient",
             R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"k"}]})"),
         Req("PUT", "/fhir/Patient/k0", R"({"resourceType":"Patient","id":"k0","active":true})",
             {{"If-Match", "W/\"1\""}})},
        &stats);
    CHECK(r[0].status == 201);
    CHECK(r[1].status == 201);
    CHECK(r[2].status == 200);
    CHECK(h.Handle(Req("GET", "/fhir/Patient/k0")).Header("ETag") == "W/\"2\"");
    CHECK(h.Handle(Req("GET", "/fhir/Patient/k1")).Header("ETag") == "W/\"1\"");
    CHECK(Matches(h, "/fhir/Patient?identifier=urn:x|k") == 1);
  }
  CHECK(PgAdmin(url, "DROP DATABASE " + db + " WITH (FORCE)") == "ok");
}
// Decision 0023 tests on PostgreSQL: a COMMIT whose answer was lost (resolved by txid_status),
// reads and writes after the pooled connection was terminated, the SQLSTATE in the log, and two
// gateways racing to create the same resource.

// Polls `done` every 5 ms, at most ~20 s (a bound for a hung server, not a timing assertion).
bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 4000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// A store on `t`'s database and schema whose COMMITs call `hook` (StoreOptions).
std::unique_ptr<store::Store> OpenWithCommitHook(const testing::TestStore& t,
                                                 std::function<void(bool, int, int)> hook) {
  store::StoreOptions options = t.options;
  options.postgres_commit_hook = std::move(hook);
  auto s = store::OpenStore(t.url, options);
  REQUIRE(s);
  return std::move(*s);
}

// The client side of a connection breaks: `socket` becomes a socket whose peer is closed, so
// libpq reads the end of the connection instead of what the server sent (a network failure).
bool BreakSocket(int socket) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return false;
  ::close(pair[1]);
  const bool ok = ::dup2(pair[0], socket) == socket;
  ::close(pair[0]);
  return ok;
}

// Captures what the process writes to stderr (the store's log lines) until Stop().
class StderrCapture {
 public:
  StderrCapture()
      : file_(std::filesystem::temp_directory_path() /
              ("kakehashi-stderr-" + testing::RandomSuffix())) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(file_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { Stop(); }
  std::string Stop() {
    if (saved_ < 0) return text_;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::ifstream in(file_);
    std::stringstream all;
    all << in.rdbuf();
    text_ = all.str();
    std::error_code ec;
    std::filesystem::remove(file_, ec);
    return text_;
  }

 private:
  std::filesystem::path file_;
  int saved_ = -1;
  std::string text_;
};

// A create by PUT and a conditional create, tagged.
std::vector<Request> OutcomeRequests(const std::string& tag) {
  return {
      Req("PUT", "/fhir/Patient/" + tag, R"({"resourceType":"Patient","id":")" + tag + "\"}"),
      Req("POST", "/fhir/Patient",
          R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":")" + tag + "\"}]}",
          {{"If-None-Exist", "identifier=urn:x|" + tag}})};
}

// Both of OutcomeRequests(tag) stored exactly once.
void CheckStoredOnce(const Handler& h, const std::string& tag) {
  Response p = h.Handle(Req("GET", "/fhir/Patient/" + tag));
  CHECK(p.status == 200);
  CHECK(p.Header("ETag") == "W/\"1\"");
  CHECK(Matches(h, "/fhir/Patient/" + tag + "/_history") == 1);
  CHECK(Matches(h, "/fhir/Patient?identifier=urn:x|" + tag) == 1);
}

TEST_CASE("commit queue: a COMMIT answer lost after it committed answers success [postgresql]",
          "[commit][retry][.postgres]") {
  // The first COMMIT reaches the server; the hook waits until its server process is idle again
  // (the transaction committed), then breaks the client's socket before libpq reads the answer.
  // The store asks a new connection txid_status(): committed, so both requests answer 201 and
  // are not run again (before decision 0023: 500, "may or may not be stored").
  auto t = testing::MakeStore(Backend::kPostgres);
  const std::string url = t->url;
  std::atomic<bool> fired{false};
  std::atomic<int> hook_failures{0};
  auto hooked = OpenWithCommitHook(*t, [&](bool sent, int pid, int socket) {
    if (!sent || fired.exchange(true)) return;
    const std::string state =
        "SELECT state FROM pg_stat_activity WHERE pid = " + std::to_string(pid);
    if (!WaitUntil([&] { return PgAdmin(url, state) == "idle"; })) ++hook_failures;
    if (!BreakSocket(socket)) ++hook_failures;
  });
  Handler h(*hooked, {});
  CommitQueue::Counters stats;
  StderrCapture log;
  std::vector<Response> r = RunOneGroup(h, OutcomeRequests("lostok"), &stats);
  const std::string logged = log.Stop();
  CHECK(fired);
  CHECK(hook_failures == 0);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 201);
  CHECK(stats.retries == 0);
  // libpq saw the connection end without an answer: logged as class 08, not "code=0".
  CHECK(logged.find("store.postgres.connection_lost sqlstate=08006") != std::string::npos);
  CHECK(logged.find("code=0") == std::string::npos);
  Handler plain(*t->store, {});
  CheckStoredOnce(plain, "lostok");
}

TEST_CASE("commit queue: a COMMIT sent to a terminated backend is run again [postgresql]",
          "[commit][retry][.postgres]") {
  // The hook terminates the session's server process right before the first COMMIT is sent
  // (pg_terminate_backend from another connection) and waits until it is gone. The COMMIT fails;
  // txid_status() says aborted, so nothing of the group is stored and each request runs again
  // alone (decision 0016) and succeeds (before decision 0023: 500, outcome unknown).
  auto t = testing::MakeStore(Backend::kPostgres);
  const std::string url = t->url;
  std::atomic<bool> fired{false};
  std::atomic<int> hook_failures{0};
  auto hooked = OpenWithCommitHook(*t, [&](bool sent, int pid, int) {
    if (sent || fired.exchange(true)) return;
    const std::string p = std::to_string(pid);
    if (PgAdmin(url, "SELECT pg_terminate_backend(" + p + ")") != "t") ++hook_failures;
    if (!WaitUntil([&] {
          return PgAdmin(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + p) == "0";
        })) {
      ++hook_failures;
    }
  });
  Handler h(*hooked, {});
  CommitQueue::Counters stats;
  StderrCapture log;
  std::vector<Response> r = RunOneGroup(h, OutcomeRequests("lostno"), &stats);
  const std::string logged = log.Stop();
  CHECK(fired);
  CHECK(hook_failures == 0);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 201);
  CHECK(stats.retries == 2);  // each request alone once
  // The server's SQLSTATE (57P01 admin_shutdown) or libpq's loss (08006), never "code=0".
  INFO(logged);
  CHECK((logged.find("store.postgres.connection_lost sqlstate=57P01") != std::string::npos ||
         logged.find("store.postgres.connection_lost sqlstate=08006") != std::string::npos));
  CHECK(logged.find("code=0") == std::string::npos);
  Handler plain(*t->store, {});
  CheckStoredOnce(plain, "lostno");
}

TEST_CASE("commit queue: a COMMIT that never reached a live backend is resolved [postgresql]",
          "[commit][retry][.postgres]") {
  // A network failure before COMMIT arrives: the hook breaks the client's socket right before
  // COMMIT is sent but keeps the server's end open (a duplicate of the descriptor), so the
  // server process stays "idle in transaction" and txid_status() says "in progress". The store
  // terminates that process (it still runs the transaction's xid), which rolls it back; asked
  // again the status is "aborted", so each request runs again alone and succeeds (without the
  // termination the status would stay "in progress" and both would answer 500).
  auto t = testing::MakeStore(Backend::kPostgres);
  const std::string url = t->url;
  std::atomic<bool> fired{false};
  std::atomic<int> hook_failures{0};
  std::atomic<int> held_pid{0};
  int kept = -1;  // the server's end of the broken connection, closed at the end
  auto hooked = OpenWithCommitHook(*t, [&](bool sent, int pid, int socket) {
    if (sent || fired.exchange(true)) return;
    held_pid = pid;
    kept = ::dup(socket);
    if (kept < 0 || !BreakSocket(socket)) ++hook_failures;
  });
  Handler h(*hooked, {});
  CommitQueue::Counters stats;
  std::vector<Response> r = RunOneGroup(h, OutcomeRequests("lostlive"), &stats);
  CHECK(fired);
  CHECK(hook_failures == 0);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 201);
  CHECK(stats.retries == 2);
  // The held server process was ended by the store, not by the closed socket (still open).
  CHECK(PgAdmin(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                         std::to_string(held_pid.load())) == "0");
  if (kept >= 0) ::close(kept);
  Handler plain(*t->store, {});
  CheckStoredOnce(plain, "lostlive");
}

TEST_CASE("store: PostgreSQL reads and writes after the pooled connection was terminated",
          "[store][.postgres]") {
  // One pooled connection (max_connections 1) in a database of its own, terminated before each
  // step: a read by id, a search and a write without the commit queue each run on a new
  // connection (with its schema set again) instead of answering 503 (decision 0023).
  const std::string url = testing::PostgresUrl();
  REQUIRE(!url.empty());
  const std::size_t slash = url.rfind('/');
  REQUIRE(slash != std::string::npos);
  const std::string db = "kk_reconnect_" + testing::RandomSuffix();
  REQUIRE(PgAdmin(url, "CREATE DATABASE " + db) == "ok");
  const std::string db_url = url.substr(0, slash + 1) + db;
  auto terminate = [&] {
    return PgAdmin(url,
                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname "
                   "= '" +
                       db + "'");
  };
  {
    store::StoreOptions options;
    options.postgres_schema = "s1";
    options.max_connections = 1;
    auto opened = store::OpenStore(db_url, options);
    REQUIRE(opened);
    Handler h(**opened, {});
    REQUIRE(h.Handle(Req("PUT", "/fhir/Patient/r1", R"({"resourceType":"Patient","id":"r1"})"))
                .status == 201);
    CHECK(terminate() == "1");
    Response read = h.Handle(Req("GET", "/fhir/Patient/r1"));
    CHECK(read.status == 200);
    CHECK(read.Header("ETag") == "W/\"1\"");
    CHECK(terminate() == "1");
    CHECK(Matches(h, "/fhir/Patient?_id=r1") == 1);
    CHECK(terminate() == "1");
    Response write = h.Handle(Req("PUT", "/fhir/Patient/r1",
                                  R"({"resourceType":"Patient","id":"r1","active":true})",
                                  {{"If-Match", "W/\"1\""}}));
    CHECK(write.status == 200);
    CHECK(write.Header("ETag") == "W/\"2\"");
    CHECK(terminate() == "1");
    CHECK(h.Handle(Req("POST", "/fhir/Patient", R"({"resourceType":"Patient","active":false})"))
              .status == 201);
    CHECK(Matches(h, "/fhir/Patient") == 2);
  }
  CHECK(PgAdmin(url, "DROP DATABASE " + db + " WITH (FORCE)") == "ok");
}

TEST_CASE("commit queue: two gateways racing to create one resource [postgresql]",
          "[commit][retry][.postgres]") {
  // q1's group creates Basic/race by PUT and a Basic by conditional create; it is held after
  // both were applied (their advisory locks taken) until q2's group, doing the same, waits on
  // the first lock. Then q1 commits: q2's PUT reads version 1 and writes version 2, q2's
  // conditional create finds q1's resource. No unique violation and no retry: the per-resource
  // and per-criteria locks order the two creators (decision 0023).
  const std::string url = testing::PostgresUrl();
  std::atomic<int> hook_failures{0};
  std::promise<void> q1_holds;  // q2 starts only then, so q1 takes the locks first
  CommitQueueOptions o1;
  o1.after_apply = [&](std::size_t i) {
    if (i != 1) return;
    q1_holds.set_value();
    if (!WaitUntil([&] {
          return PgAdmin(url,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                         "granted") == "1";
        })) {
      ++hook_failures;
    }
  };
  TwoGateways g(Backend::kPostgres, std::move(o1), /*start=*/false);
  auto requests = [](const Handler& h, const std::string& text) {
    return std::vector<std::shared_ptr<TestJob>>{
        Prepare(h, Req("PUT", "/fhir/Basic/race",
                       R"({"resourceType":"Basic","id":"race","code":{"text":")" + text + "\"}}")),
        Prepare(h,
                Req("POST", "/fhir/Basic",
                    R"({"resourceType":"Basic","code":{"coding":[{"system":"urn:r","code":"c"}]}})",
                    {{"If-None-Exist", "code=urn:r|c"}}))};
  };
  auto j1 = requests(g.h1, "q1");
  auto j2 = requests(g.h2, "q2");
  for (auto& j : j1) REQUIRE(g.q1.Submit(j));
  for (auto& j : j2) REQUIRE(g.q2.Submit(j));
  g.q1.Start();
  q1_holds.get_future().wait();
  g.q2.Start();
  std::vector<Response> r1, r2;
  for (auto& j : j1) r1.push_back(j->Wait());
  for (auto& j : j2) r2.push_back(j->Wait());
  g.q1.Stop();
  g.q2.Stop();
  CHECK(hook_failures == 0);
  CHECK(r1[0].status == 201);
  CHECK(r1[0].Header("ETag") == "W/\"1\"");
  CHECK(r2[0].status == 200);
  CHECK(r2[0].Header("ETag") == "W/\"2\"");
  CHECK(r1[1].status == 201);
  REQUIRE(r2[1].status == 200);
  CHECK(Parse(r2[1].body).Str("id") == Parse(r1[1].body).Str("id"));
  CHECK(g.q1.Stats().retries + g.q2.Stats().retries == 0);
  CHECK(g.q1.Stats().groups == 1);
  CHECK(g.q2.Stats().groups == 1);
  Json race = Parse(g.h1.Handle(Req("GET", "/fhir/Basic/race")).body);
  CHECK(race.Find("code")->Str("text") == "q2");
  CHECK(Matches(g.h1, "/fhir/Basic?code=urn:r|c") == 1);
}

TEST_CASE("commit queue: two gateways' conditional creates with reordered criteria [postgresql]",
          "[commit][.postgres]") {
  // The same criteria in another order, encoding and with a result parameter lock one key
  // (CriteriaKey): q1's group (a conditional create, then one finding it in its transaction)
  // holds it until q2's transaction entry (ifNoneExist) and q2's conditional create wait on it;
  // then both find q1's resource. With a lock key per
  // spelling q2 would not wait (hook_failures) and would create two more.
  const std::string url = testing::PostgresUrl();
  std::atomic<int> hook_failures{0};
  std::promise<void> q1_holds;
  CommitQueueOptions o1;
  o1.after_apply = [&](std::size_t i) {
    if (i != 1) return;
    q1_holds.set_value();
    if (!WaitUntil([&] {
          return PgAdmin(url,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                         "granted") == "1";
        })) {
      ++hook_failures;
    }
  };
  TwoGateways g(Backend::kPostgres, std::move(o1), /*start=*/false);
  const std::string basic =
      R"({"resourceType":"Basic","identifier":[{"system":"urn:r","value":"b1"}],)"
      R"("code":{"coding":[{"system":"urn:r","code":"c"}]}})";
  auto j1 = Prepare(g.h1, Req("POST", "/fhir/Basic", basic,
                              {{"If-None-Exist", "identifier=urn:r|b1&code=urn:r|c"}}));
  auto j2 = Prepare(
      g.h2, Req("POST", "/fhir",
                R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + basic +
                    R"(,"request":{"method":"POST","url":"Basic","ifNoneExist":)"
                    R"("Basic?code=urn%3Ar%7Cc&_format=json&identifier=urn:r|b1"}}]})"));
  auto j3 =
      Prepare(g.h2, Req("POST", "/fhir/Basic", basic,
                        {{"If-None-Exist", "code=urn:r|c&identifier=urn:r%7cb1&code=urn:r|c"}}));
  auto j1b = Prepare(g.h1, Req("POST", "/fhir/Basic", basic,
                               {{"If-None-Exist", "_count=1&code=urn:r|c&identifier=urn:r|b1"}}));
  REQUIRE(g.q1.Submit(j1));
  REQUIRE(g.q1.Submit(j1b));
  REQUIRE(g.q2.Submit(j2));
  REQUIRE(g.q2.Submit(j3));
  g.q1.Start();
  q1_holds.get_future().wait();
  g.q2.Start();
  Response r1 = j1->Wait();
  Response r1b = j1b->Wait();
  Response r2 = j2->Wait();
  Response r3 = j3->Wait();
  g.q1.Stop();
  g.q2.Stop();
  CHECK(hook_failures == 0);
  REQUIRE(r1.status == 201);
  const std::string id(Parse(r1.body).Str("id"));
  REQUIRE(r1b.status == 200);
  CHECK(Parse(r1b.body).Str("id") == id);
  REQUIRE(r2.status == 200);
  Json entry = Parse(r2.body).Find("entry")->Items()[0];
  CHECK(entry.Find("response")->Str("status") == "200 OK");
  CHECK(entry.Find("resource")->Str("id") == id);
  REQUIRE(r3.status == 200);
  CHECK(Parse(r3.body).Str("id") == id);
  CHECK(Matches(g.h1, "/fhir/Basic?identifier=urn:r|b1") == 1);
}

TEST_CASE("commit queue: conditional creates with reordered OR-values lock one key [postgresql]",
          "[commit][.postgres]") {
  // q1 runs one conditional create alone (a group of one: after_apply fires for it too) and
  // holds its criteria lock until q2's create, whose OR-list has the same alternatives in
  // another order and repeated, waits on it; q2 then finds q1's resource. With a key per
  // spelling of the list (before decision 0028) q2 would not wait (hook_failures) and would
  // create a second resource.
  const std::string url = testing::PostgresUrl();
  std::atomic<int> hook_failures{0};
  std::atomic<int> hook_calls{0};
  std::promise<void> q1_holds;
  CommitQueueOptions o1;
  o1.after_apply = [&](std::size_t i) {
    if (i != 0 || hook_calls++ > 0) return;
    q1_holds.set_value();
    if (!WaitUntil([&] {
          return PgAdmin(url,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                         "granted") == "1";
        })) {
      ++hook_failures;
    }
  };
  TwoGateways g(Backend::kPostgres, std::move(o1), /*start=*/false);
  const std::string basic =
      R"({"resourceType":"Basic","identifier":[{"system":"urn:r","value":"o1"}],)"
      R"("code":{"coding":[{"system":"urn:r","code":"c"}]}})";
  auto j1 = Prepare(
      g.h1, Req("POST", "/fhir/Basic", basic, {{"If-None-Exist", "identifier=urn:r|o1,urn:r|o2"}}));
  auto j2 = Prepare(g.h2, Req("POST", "/fhir/Basic", basic,
                              {{"If-None-Exist", "identifier=urn:r|o2,urn:r|o1,urn:r%7Co2"}}));
  REQUIRE(g.q1.Submit(j1));
  REQUIRE(g.q2.Submit(j2));
  g.q1.Start();
  q1_holds.get_future().wait();
  g.q2.Start();
  Response r1 = j1->Wait();
  Response r2 = j2->Wait();
  g.q1.Stop();
  g.q2.Stop();
  CHECK(hook_failures == 0);
  CHECK(hook_calls == 1);
  REQUIRE(r1.status == 201);
  REQUIRE(r2.status == 200);
  CHECK(Parse(r2.body).Str("id") == Parse(r1.body).Str("id"));
  CHECK(Matches(g.h1, "/fhir/Basic?identifier=urn:r|o1") == 1);
}
#endif

void TakenKeyIsAnswered409(Backend backend) {
  // A unique key taken for good (decision 0023): a history row of Patient/dup's version 2 is
  // inserted behind the store's back, so the PUT updating it to version 2 collides with that row
  // on every run (history_by_version (rk, version); PostgreSQL 23505, SQLite SQLITE_CONSTRAINT).
  // It is run once alone after its group, once more, then answered 409; its neighbour commits.
  auto t = testing::MakeStore(backend);
  Handler h(*t->store, {});
  REQUIRE(h.Handle(Req("PUT", "/fhir/Patient/dup", R"({"resourceType":"Patient","id":"dup"})"))
              .status == 201);
  if (backend == Backend::kSqlite) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(t->file.c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "INSERT INTO history (rk, version, last_updated, deleted, json) SELECT rk, "
                       "2, 0, 0, '{}' FROM resources WHERE id = 'dup'",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  } else {
#ifdef KAKEHASHI_HAVE_POSTGRES
    REQUIRE(PgAdmin(t->url, "INSERT INTO " + t->options.postgres_schema +
                                ".history (rk, version, last_updated, deleted, json) SELECT rk, "
                                "2, 0, 0, '{}' FROM " +
                                t->options.postgres_schema + ".resources WHERE id = 'dup'") ==
            "ok");
#endif
  }
  CommitQueue::Counters stats;
  std::vector<Response> r = RunOneGroup(
      h,
      {Req("PUT", "/fhir/Patient/dup2", R"({"resourceType":"Patient","id":"dup2"})"),
       Req("PUT", "/fhir/Patient/dup", R"({"resourceType":"Patient","id":"dup","active":true})")},
      &stats);
  CHECK(r[0].status == 201);
  CHECK(r[1].status == 409);
  CHECK(r[1].body.find("already holds a version") != std::string::npos);
  CHECK(stats.retries == 2);  // out of the group once, then one more run alone
  CHECK(Parse(h.Handle(Req("GET", "/fhir/Patient/dup")).body).Find("meta")->Str("versionId") ==
        "1");
  CHECK(h.Handle(Req("GET", "/fhir/Patient/dup2")).status == 200);
  // Without the queue (Handler::Handle): 409 at once.
  CHECK(h.Handle(Req("PUT", "/fhir/Patient/dup", R"({"resourceType":"Patient","id":"dup"})"))
            .status == 409);
}
KAKEHASHI_BACKEND_TEST("commit queue: a unique key taken for good ends 409 after one retry",
                       "[commit][retry]", TakenKeyIsAnswered409)

void TwoQueuesOverlappingGroups(Backend backend) {
  // Two gateways on one database, two writer threads each. Every round a writer queues two
  // requests at once, in an order that depends on the thread: an If-Match update of the counter
  // (NextCounterUpdate) and a plain update of one of three shared resources. Groups therefore
  // hold several resources' locks taken in different orders in the two processes (PostgreSQL:
  // deadlocks; SQLite: one writer at a time). Every answer must be a clean one (200/201, 412
  // for a stale If-Match, 409 only after its retries), the queues must drain, and what is stored
  // must count exactly the successful updates.
  TwoGateways g(backend);
  Handler& h1 = g.h1;
  Handler& h2 = g.h2;
  CommitQueue& q1 = g.q1;
  CommitQueue& q2 = g.q2;
  constexpr int kRounds = 12;
  std::atomic<int> counter_ok{0};
  std::array<std::atomic<int>, 3> shared_ok{};
  std::atomic<int> unexpected{0};  // no Catch assertion inside the threads (not thread-safe)
  auto writer = [&](const Handler& h, CommitQueue& q, int thread) {
    for (int round = 0; round < kRounds; ++round) {
      auto next = testing::NextCounterUpdate(h);
      if (!next) {
        ++unexpected;
        return;
      }
      const int k = (round + thread) % 3;
      const std::string sid = "s" + std::to_string(k);
      std::vector<Request> requests = {
          Req("PUT", "/fhir/Basic/counter", next->body, {{"If-Match", next->etag}}),
          Req("PUT", "/fhir/Basic/" + sid,
              R"({"resourceType":"Basic","id":")" + sid + R"(","code":{"text":"t)" +
                  std::to_string(thread) + "r" + std::to_string(round) + "\"}}")};
      if ((thread + round) % 2 == 1) std::swap(requests[0], requests[1]);
      std::vector<std::shared_ptr<TestJob>> jobs;
      for (const Request& r : requests) {
        auto split = h.PrepareRequest(r);
        auto* prepared = std::get_if<std::unique_ptr<PreparedRequest>>(&split);
        if (prepared == nullptr) {
          ++unexpected;
          return;
        }
        jobs.push_back(std::make_shared<TestJob>(std::move(*prepared)));
        if (!q.Submit(jobs.back())) {
          ++unexpected;
          return;
        }
      }
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        const Response r = jobs[i]->Wait();
        const bool is_counter = requests[i].target == "/fhir/Basic/counter";
        if (r.status == 200 || r.status == 201) {
          if (is_counter) {
            ++counter_ok;
          } else {
            ++shared_ok[static_cast<std::size_t>(k)];
          }
        } else if (!(r.status == 409 || (is_counter && r.status == 412))) {
          ++unexpected;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, std::cref(h1), std::ref(q1), 0);
  threads.emplace_back(writer, std::cref(h1), std::ref(q1), 1);
  threads.emplace_back(writer, std::cref(h2), std::ref(q2), 2);
  threads.emplace_back(writer, std::cref(h2), std::ref(q2), 3);
  for (auto& th : threads) th.join();
  q1.Stop();
  q2.Stop();
  REQUIRE(unexpected == 0);
  Json counter = Parse(h1.Handle(Req("GET", "/fhir/Basic/counter")).body);
  CHECK(counter_ok > 0);
  CHECK(counter.Find("code")->Str("text") == std::to_string(counter_ok.load()));
  CHECK(counter.Find("meta")->Str("versionId") == std::to_string(counter_ok.load() + 1));
  for (std::size_t k = 0; k < 3; ++k) {
    Response s = h2.Handle(Req("GET", "/fhir/Basic/s" + std::to_string(k)));
    REQUIRE(s.status == 200);
    CHECK(s.Header("ETag") == "W/\"" + std::to_string(shared_ok[k].load()) + "\"");
  }
  INFO("retries: " << q1.Stats().retries + q2.Stats().retries);
  CHECK(q1.Stats().requests + q2.Stats().requests == 4u * kRounds * 2u);
}
KAKEHASHI_BACKEND_TEST("commit queue: two gateways, overlapping groups: no lost update, no hang",
                       "[commit][retry]", TwoQueuesOverlappingGroups)

}  // namespace
}  // namespace kakehashi::gateway
