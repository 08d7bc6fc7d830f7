// The handler over a store whose Nth call fails: every failure point of a transaction Bundle
// and of a single update must give an OperationOutcome (never a crash) and leave the store
// all-or-nothing.
#include "kakehashi/gateway/handler.hpp"

#include "kakehashi/gateway/commit_queue.hpp"

#include "test_support.hpp"

namespace kakehashi::gateway {
namespace {

class Countdown {
 public:
  explicit Countdown(int fail_at) : left_(fail_at) {}
  bool Fail() { return --left_ == 0; }
  bool Fired() const { return left_ <= 0; }

 private:
  int left_;
};

ErrorCode Injected() {
  return make_error_code(store::errc::kQueryFailed);
}

class FailingSession final : public store::Session {
 public:
  FailingSession(std::unique_ptr<store::Session> inner, Countdown& countdown)
      : inner_(std::move(inner)), countdown_(countdown) {}
  Result<std::optional<store::ResourceRow>> Read(std::string_view type,
                                                 std::string_view id) override {
    if (countdown_.Fail()) return Injected();
    return inner_->Read(type, id);
  }
  Result<std::optional<store::ResourceRow>> ReadVersion(std::string_view type, std::string_view id,
                                                        std::int64_t version) override {
    if (countdown_.Fail()) return Injected();
    return inner_->ReadVersion(type, id, version);
  }
  Result<std::vector<store::HistoryRow>> History(const store::HistoryQuery& q) override {
    if (countdown_.Fail()) return Injected();
    return inner_->History(q);
  }
  Result<std::vector<store::ResourceRow>> Search(const store::SearchQuery& q) override {
    if (countdown_.Fail()) return Injected();
    return inner_->Search(q);
  }
  Result<std::int64_t> Count(const store::SearchQuery& q) override {
    if (countdown_.Fail()) return Injected();
    return inner_->Count(q);
  }
  Result<void> Begin() override {
    if (countdown_.Fail()) return Injected();
    return inner_->Begin();
  }
  Result<void> Commit() override {
    if (countdown_.Fail()) {
      inner_->Rollback();
      return Injected();
    }
    return inner_->Commit();
  }
  void Rollback() noexcept override { inner_->Rollback(); }
  Result<std::optional<store::ResourceRow>> LockAndRead(std::string_view type,
                                                        std::string_view id) override {
    if (countdown_.Fail()) return Injected();
    return inner_->LockAndRead(type, id);
  }
  Result<void> Write(const store::ResourceRow& row, const store::IndexEntries& index) override {
    if (countdown_.Fail()) return Injected();
    return inner_->Write(row, index);
  }
  Result<void> Savepoint(std::string_view name) override {
    if (countdown_.Fail()) return Injected();
    return inner_->Savepoint(name);
  }
  Result<void> ReleaseSavepoint(std::string_view name) override {
    if (countdown_.Fail()) return Injected();
    return inner_->ReleaseSavepoint(name);
  }
  Result<void> RollbackToSavepoint(std::string_view name) override {
    if (countdown_.Fail()) {
      // The statement failed: what remains of the transaction is unknown, as after a real
      // failure here (the caller must roll it all back).
      return Injected();
    }
    return inner_->RollbackToSavepoint(name);
  }

 private:
  std::unique_ptr<store::Session> inner_;
  Countdown& countdown_;
};

class FailingStore final : public store::Store {
 public:
  FailingStore(store::Store& inner, int fail_at) : inner_(inner), countdown_(fail_at) {}
  Result<std::unique_ptr<store::Session>> OpenSession() override {
    if (countdown_.Fail()) return Injected();
    auto s = inner_.OpenSession();
    if (!s) return s.error();
    return std::unique_ptr<store::Session>(
        std::make_unique<FailingSession>(std::move(*s), countdown_));
  }
  std::string_view Backend() const override { return inner_.Backend(); }
  bool Fired() const { return countdown_.Fired(); }

 private:
  store::Store& inner_;
  Countdown countdown_;
};

TEST_CASE("fault injection: a transaction is all-or-nothing at every failure point",
          "[handler][faults]") {
  const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","id":"fa","name":[{"family":"x"}]},"request":{"method":"PUT","url":"Patient/fa"}},
    {"resource":{"resourceType":"Observation","id":"fo","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0f0d5d6e-0000-4000-8000-000000000001"}},"request":{"method":"PUT","url":"Observation/fo"}},
    {"resource":{"resourceType":"Organization","id":"fg"},"request":{"method":"PUT","url":"Organization/fg"}}]})";
  int succeeded_at = 0;
  for (int n = 1; n < 40 && succeeded_at == 0; ++n) {
    auto t = testing::MakeStore(testing::Backend::kSqlite);
    FailingStore failing(*t->store, n);
    Handler h(failing, {});
    Response r = h.Handle(testing::Req("POST", "/fhir", tx));
    Handler plain(*t->store, {});
    const int stored = (plain.Handle(testing::Req("GET", "/fhir/Patient/fa")).status == 200) +
                       (plain.Handle(testing::Req("GET", "/fhir/Observation/fo")).status == 200) +
                       (plain.Handle(testing::Req("GET", "/fhir/Organization/fg")).status == 200);
    INFO("failing call " << n << " -> " << r.status << " " << r.body);
    if (r.status == 200) {
      CHECK(stored == 3);
      succeeded_at = n;
    } else {
      CHECK(r.status == 500);
      CHECK(r.body.find("OperationOutcome") != std::string::npos);
      CHECK(stored == 0);
    }
  }
  CHECK(succeeded_at > 5);  // the loop reached past every store call of the transaction
}

TEST_CASE("fault injection: update and search fail cleanly", "[handler][faults]") {
  for (int n = 1; n < 12; ++n) {
    auto t = testing::MakeStore(testing::Backend::kSqlite);
    Handler plain(*t->store, {});
    REQUIRE(plain
                .Handle(testing::Req("PUT", "/fhir/Patient/u",
                                     R"({"resourceType":"Patient","id":"u"})"))
                .status == 201);
    FailingStore failing(*t->store, n);
    Handler h(failing, {});
    Response r = h.Handle(testing::Req("PUT", "/fhir/Patient/u",
                                       R"({"resourceType":"Patient","id":"u","active":true})"));
    Response after = plain.Handle(testing::Req("GET", "/fhir/Patient/u"));
    if (r.status == 200) {
      CHECK(after.Header("ETag") == "W/\"2\"");
    } else {
      CHECK(r.status == 500);
      CHECK(after.Header("ETag") == "W/\"1\"");
    }
    FailingStore failing2(*t->store, n);
    Handler h2(failing2, {});
    Response s = h2.Handle(
        testing::Req("GET", "/fhir/Patient?_id=u&_revinclude=Observation:subject&_total=accurate"));
    CHECK((s.status == 200 || s.status == 500));
  }
}

struct WaitJob final : CommitJob {
  using CommitJob::CommitJob;
  int calls = 0;
  void Done() noexcept override { ++calls; }
};

TEST_CASE("fault injection: a group commit answers each request truthfully at every failure point",
          "[commit][faults]") {
  // Three requests in one group (a PUT, a two-resource transaction, a PUT); one store call fails
  // (a statement error), each call in turn. Every request answered 2xx is stored completely and
  // every other one not at all. A failure before the group's transaction began (its session, its
  // BEGIN) fails them all (500, nothing applied, not a request's fault); any later one is retried
  // (the request alone, or all of them alone when the transaction was lost) and all succeed.
  const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Patient","id":"g2"},"request":{"method":"PUT","url":"Patient/g2"}},
    {"resource":{"resourceType":"Organization","id":"g2"},"request":{"method":"PUT","url":"Organization/g2"}}]})";
  int points = 0;
  for (int n = 1; n < 200; ++n) {
    auto t = testing::MakeStore(testing::Backend::kSqlite);
    FailingStore failing(*t->store, n);
    Handler h(failing, {});
    std::vector<std::shared_ptr<WaitJob>> jobs;
    for (const Request& r :
         {testing::Req("PUT", "/fhir/Patient/g1", R"({"resourceType":"Patient","id":"g1"})"),
          testing::Req("POST", "/fhir", tx),
          testing::Req("PUT", "/fhir/Patient/g3", R"({"resourceType":"Patient","id":"g3"})")}) {
      auto split = h.PrepareRequest(r);
      REQUIRE(std::holds_alternative<std::unique_ptr<PreparedRequest>>(split));
      jobs.push_back(
          std::make_shared<WaitJob>(std::move(std::get<std::unique_ptr<PreparedRequest>>(split))));
    }
    CommitQueue queue(h);
    for (auto& j : jobs) REQUIRE(queue.Submit(j));
    queue.Stop();  // one group, applied on this thread
    Handler plain(*t->store, {});
    auto stored = [&](const char* target) {
      return plain.Handle(testing::Req("GET", target)).status == 200;
    };
    const bool s1 = stored("/fhir/Patient/g1");
    const bool s2p = stored("/fhir/Patient/g2");
    const bool s2o = stored("/fhir/Organization/g2");
    const bool s3 = stored("/fhir/Patient/g3");
    int ok = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      REQUIRE(jobs[i]->calls == 1);
      Response r = jobs[i]->Request().Finish(jobs[i]->Lost());
      INFO("failing call " << n << ", request " << i << " -> " << r.status << " " << r.body);
      const bool success = r.status == 200 || r.status == 201;
      if (!success) {
        CHECK(r.status == 500);
        CHECK(r.body.find("OperationOutcome") != std::string::npos);
      }
      ok += success;
      if (i == 0) CHECK(success == s1);
      if (i == 1) {
        CHECK(success == s2p);
        CHECK(success == s2o);
      }
      if (i == 2) CHECK(success == s3);
    }
    INFO("failing call " << n);
    if (!failing.Fired()) {  // past the last store call: nothing failed
      CHECK(ok == 3);
      break;
    }
    ++points;
    CHECK(ok == (n <= 2 ? 0 : 3));  // 1: the group's session, 2: its BEGIN
    CHECK(queue.Stats().groups == 1);
  }
  CHECK(points > 10);  // the loop reached past every store call of the group and its retries
}

}  // namespace
}  // namespace kakehashi::gateway
