// The fixture of the handler-level tests: a Handler over a fresh test store (test_support.hpp)
// on one backend, with the request helpers they share. A test file derives its own fixture
// from it for what only it needs.
#pragma once

#include "detail/json.hpp"
#include "json_support.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "test_support.hpp"

#include <memory>
#include <string>
#include <vector>

namespace kakehashi::gateway::testing {

struct HandlerFixture {
  std::unique_ptr<TestStore> t;
  std::unique_ptr<Handler> h;
  explicit HandlerFixture(Backend backend, HandlerOptions options = {}) : t(MakeStore(backend)) {
    Reopen(std::move(options));
  }
  // A new Handler on the same store (as a restarted server sees it).
  void Reopen(HandlerOptions options = {}) {
    h = std::make_unique<Handler>(*t->store, std::move(options));
  }
  Response Do(const Request& r) const { return h->Handle(r); }
  // PUT `body` as type/id; it must be created or updated.
  void PutBody(const std::string& type, const std::string& id, const std::string& body) const {
    Response r = Do(Req("PUT", "/fhir/" + type + "/" + id, body));
    INFO(body << " -> " << r.body);
    REQUIRE((r.status == 201 || r.status == 200));
  }
  // The ids of the resources of a searchset page (GET `target`, which must answer 200), in order.
  std::vector<std::string> Ids(const std::string& target) const {
    Response r = Do(Req("GET", target));
    INFO(target << " -> " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> ids;
    const detail::Json b = Parse(r.body);
    if (const detail::Json* e = b.Find("entry")) {
      for (const detail::Json& entry : e->Items()) {
        ids.emplace_back(entry.Find("resource")->Str("id"));
      }
    }
    return ids;
  }
};

}  // namespace kakehashi::gateway::testing
