// A strict HTTP/1.1 request-head parser over the connection's read buffer (RFC 9112 §2-§5):
// request line and header fields as views into the buffer, no allocation per field. The server
// parses every request head with it; a request with a body (Content-Length > 0 or any
// Transfer-Encoding) is then re-parsed by Beast's parser, which owns body framing (chunked).
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::gateway::detail {

// `s` without leading and trailing optional whitespace (SP, HTAB; RFC 9110 §5.6.3).
std::string_view TrimOws(std::string_view s);

struct RequestHead {
  std::string_view method;  // token, e.g. "GET"
  std::string_view target;  // origin-form as received (visible ASCII, no spaces)
  int minor_version = 1;    // HTTP/1.0 or HTTP/1.1
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // values without OWS
  std::size_t size = 0;    // bytes of the head, blank line included
  bool has_body = false;   // Content-Length > 0 or Transfer-Encoding present
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; 1.0 only with "keep-alive"

  // First header with this name (case-insensitive), "" when absent.
  std::string_view Header(std::string_view name) const;
};

enum class HeadStatus {
  kNeedMore,  // no complete head yet and still under the limit
  kDone,      // `out` filled
  kBad,       // malformed: answer 400 and close
  kTooLarge,  // no complete head within `limit` bytes: answer 431 and close
};

// Parses the head at the start of `buffer`. Leading empty lines are skipped (RFC 9112 §2.2).
// Rejected: bare LF line ends, obs-fold (a line starting with SP/HTAB), whitespace before the
// colon, control characters, versions other than HTTP/1.0 and 1.1, a malformed or conflicting
// Content-Length. `out` views point into `buffer`.
HeadStatus ParseRequestHead(std::string_view buffer, std::size_t limit, RequestHead& out);

}  // namespace kakehashi::gateway::detail
