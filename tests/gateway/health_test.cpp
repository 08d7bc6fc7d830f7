// Health endpoints (health.hpp, decision 0054) through Handler::Handle: /health/live never
// touches the store, /health/ready answers 503 when the store does not answer or the server
// drains; both application/health+json, no-store, outside the FHIR base.
#include "kakehashi/gateway/health.hpp"

#include "kakehashi/gateway/handler.hpp"
#include "test_support.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace kakehashi::gateway {
namespace {

using testing::Req;

bool Has(const Response& r, std::string_view text) {
  return r.body.find(text) != std::string::npos;
}

// A store whose sessions cannot be opened (the database is down), counting the attempts.
class DownStore final : public store::Store {
 public:
  Result<std::unique_ptr<store::Session>> OpenSession() override {
    ++opened;
    return make_error_code(store::errc::kUnavailable);
  }
  std::string_view Backend() const override { return "postgresql"; }
  std::atomic<int> opened{0};
};

TEST_CASE("health: live and ready over a reachable store", "[health]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  Handler h(*t->store, {});
  auto live = h.Handle(Req("GET", "/health/live"));
  CHECK(live.status == 200);
  CHECK(live.Header("Content-Type") == "application/health+json");
  CHECK(live.Header("Cache-Control") == "no-store");
  CHECK(Has(live, R"("status":"pass")"));
  CHECK(Has(live, R"("backend":"sqlite")"));
  CHECK(Has(live, R"("draining":false)"));
  auto ready = h.Handle(Req("GET", "/health/ready"));
  CHECK(ready.status == 200);
  CHECK(ready.Header("Cache-Control") == "no-store");
  CHECK(Has(ready, R"("status":"pass")"));
  CHECK(Has(ready, R"("schemaVersion":10)"));
  CHECK(Has(ready, R"("reindex":{"status":"pass","running":false})"));
  // HEAD: the same status, no body; other methods 405 with Allow; other paths stay 404.
  auto head = h.Handle(Req("HEAD", "/health/ready"));
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  auto post = h.Handle(Req("POST", "/health/ready", "{}"));
  CHECK(post.status == 405);
  CHECK(post.Header("Allow") == "GET, HEAD");
  CHECK(h.Handle(Req("GET", "/health")).status == 404);
  CHECK(h.Handle(Req("GET", "/health/liveness")).status == 404);
  // Not FHIR: absent from the CapabilityStatement.
  auto metadata = h.Handle(Req("GET", "/fhir/metadata"));
  CHECK_FALSE(Has(metadata, "health"));
  // The server runs /health/live on its io thread, /health/ready (a store statement) on a
  // reader thread.
  CHECK(h.Classify(Req("GET", "/health/live")) == Handler::Work::kNoStore);
  CHECK(h.Classify(Req("GET", "/health/ready")) == Handler::Work::kRead);
}

TEST_CASE("health: draining makes ready 503, live stays 200", "[health]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  HandlerOptions options;
  options.health = std::make_shared<Health>(*t->store);
  Handler h(*t->store, options);
  REQUIRE(h.Handle(Req("GET", "/health/ready")).status == 200);
  options.health->SetDraining();
  auto ready = h.Handle(Req("GET", "/health/ready"));
  CHECK(ready.status == 503);
  CHECK(ready.Header("Retry-After") == "1");
  CHECK(ready.Header("Cache-Control") == "no-store");
  CHECK(Has(ready, R"("status":"fail")"));
  CHECK(Has(ready, R"("draining":true)"));
  CHECK(Has(ready, "shutting down"));
  auto live = h.Handle(Req("GET", "/health/live"));
  CHECK(live.status == 200);
  CHECK(Has(live, R"("draining":true)"));
}

TEST_CASE("health: a store that does not answer makes ready 503; live never asks it", "[health]") {
  DownStore store;
  Handler h(store, {});
  store.opened = 0;
  auto live = h.Handle(Req("GET", "/health/live"));
  CHECK(live.status == 200);
  CHECK(store.opened == 0);
  auto ready = h.Handle(Req("GET", "/health/ready"));
  CHECK(ready.status == 503);
  CHECK(store.opened == 1);
  CHECK(Has(ready, R"("store":{"backend":"postgresql","status":"fail"})"));
  CHECK(Has(ready, "the database does not answer"));
}

}  // namespace
}  // namespace kakehashi::gateway
