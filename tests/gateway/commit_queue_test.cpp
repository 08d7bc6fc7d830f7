// Group commit (commit_queue.hpp): several prepared write requests in one store transaction,
// each in its own savepoint. Jobs are queued before Start() so that they form one known group.
#include "kakehashi/gateway/commit_queue.hpp"

#include "detail/json.hpp"
#include "json_support.hpp"
#include "test_support.hpp"

#include <atomic>
#include <future>
#include <thread>

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

void OneFailsAloneInAGroup(Backend backend) {
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
  CommitQueue queue(h);
  for (auto& j : jobs) REQUIRE(queue.Submit(j));
  queue.Start();
  std::vector<Response> r;
  for (auto& j : jobs) r.push_back(j->Wait());
  queue.Stop();
  CHECK(queue.Stats().groups == 1);
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
KAKEHASHI_BACKEND_TEST("commit queue: a failing request rolls back alone, the group commits",
                       "[commit]", OneFailsAloneInAGroup)

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
  for (int v = 1; v <= 12; ++v) {
    Response r = h.Handle(Req("GET", "/fhir/Basic/seq/_history/" + std::to_string(v)));
    REQUIRE(r.status == 200);
    CHECK(Parse(r.body).Find("code")->Str("text") == std::to_string(v - 1));
  }
}
KAKEHASHI_BACKEND_TEST("commit queue: requests apply in queue order", "[commit]", QueueOrder)

void NoLostUpdateThroughQueues(Backend backend) {
  // Two gateways (Stores), each with its commit queue and two writer threads: read + If-Match
  // retry. Writers of one queue share groups, so a group often holds two updates of the one
  // resource, the second of which fails alone (412) and is retried.
  auto t = testing::MakeStore(backend);
  Handler h1(*t->store, {});
  REQUIRE(h1.Handle(Req("PUT", "/fhir/Basic/counter",
                        R"({"resourceType":"Basic","id":"counter","code":{"text":"0"}})"))
              .status == 201);
  auto other = t->OpenAnother();
  Handler h2(*other, {});
  CommitQueue q1(h1);
  CommitQueue q2(h2);
  q1.Start();
  q2.Start();
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

}  // namespace
}  // namespace kakehashi::gateway
