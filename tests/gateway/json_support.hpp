// JSON helpers for the handler-level tests of tests/gateway (they need the gateway's private
// JSON, detail/json.hpp, which tests outside gateway_test do not see; test_support.hpp stays
// free of it).
#pragma once

#include "detail/json.hpp"
#include "test_support.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::gateway::testing {

// A response body parsed as JSON; a test failure (showing the text) when it is not JSON.
inline detail::Json Parse(const std::string& text) {
  detail::Json j;
  detail::JsonError e;
  INFO(text);
  REQUIRE(detail::ParseJson(text, j, e));
  return j;
}

// The documentation of search parameter `name` of `type` in CapabilityStatement `cs`; empty
// when the statement does not list it.
inline std::string SearchParamDocumentation(const detail::Json& cs, std::string_view type,
                                            std::string_view name) {
  for (const detail::Json& res : cs.Find("rest")->Items()[0].Find("resource")->Items()) {
    if (res.Str("type") != type) continue;
    for (const detail::Json& p : res.Find("searchParam")->Items()) {
      if (p.Str("name") == name) return std::string(p.Str("documentation"));
    }
  }
  return {};
}

// The no-lost-update tests' counter (Basic/counter, code.text a number) read through `h`: the
// PUT body with the number plus one and the ETag it was read at (for If-Match); nullopt when it
// cannot be read. No Catch calls: the writer threads use it (Catch is not thread-safe).
struct CounterUpdate {
  std::string body;
  std::string etag;
};
inline std::optional<CounterUpdate> NextCounterUpdate(const Handler& h) {
  Response cur = h.Handle(Req("GET", "/fhir/Basic/counter"));
  detail::Json b;
  detail::JsonError e;
  const bool parsed = cur.status == 200 && detail::ParseJson(cur.body, b, e);
  detail::Json* code = parsed ? b.Find("code") : nullptr;
  if (code == nullptr) return std::nullopt;
  const int n = std::stoi(std::string(code->Str("text")));
  code->Set("text", detail::Json::String(std::to_string(n + 1)));
  return CounterUpdate{detail::ToJsonText(b), std::string(cur.Header("ETag"))};
}

}  // namespace kakehashi::gateway::testing
