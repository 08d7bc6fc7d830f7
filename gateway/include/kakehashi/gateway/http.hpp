// Plain HTTP request/response values exchanged between the socket layer (server.hpp) and the
// FHIR handler (handler.hpp). No sockets, no Beast types: the handler is tested on these directly.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::gateway {

struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // origin-form, still percent-encoded: "/fhir/Patient?name=%E5%B1%B1"
  std::vector<std::pair<std::string, std::string>> headers;  // names as received
  std::string body;

  // First header with this name (case-insensitive), "" when absent.
  std::string_view Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  void SetHeader(std::string name, std::string value);
  std::string_view Header(std::string_view name) const;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace kakehashi::gateway
