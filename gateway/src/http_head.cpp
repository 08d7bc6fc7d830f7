// RFC 9112 request head: request-line = method SP request-target SP HTTP-version CRLF (§3),
// field-line = field-name ":" OWS field-value OWS CRLF (§5), then CRLF. One pass over the lines;
// a head that arrives in pieces is parsed again from its start (heads are small, and almost all
// arrive in one read).
#include "http_head.hpp"

#include "kakehashi/gateway/http.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace kakehashi::gateway::detail {

namespace {

// tchar (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
// "_" / "`" / "|" / "~" / DIGIT / ALPHA, as a table (the head of every request goes through it).
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

bool IsTokenChar(unsigned char c) {
  return kTokenChars[c];
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// field-value characters: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5).
bool IsValueChar(unsigned char c) {
  return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

// True when the comma-separated list `value` holds `token` (case-insensitive).
bool ListHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool ParseRequestLine(std::string_view line, RequestHead& out) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(out.method) || out.target.empty()) return false;
  // RFC 3986 wants a target of ASCII, but clients send what the user typed: curl sends
  // `?name=山本` as raw UTF-8 bytes. Bytes >= 0x80 are taken as if percent-encoded (as Beast's
  // parser, which frames requests with a body, already does); the query's decoding then checks
  // that the value is UTF-8 (400 otherwise). Controls, space and DEL are refused.
  for (char c : out.target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  if (version == "HTTP/1.1") {
    out.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    out.minor_version = 0;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view RequestHead::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

HeadStatus ParseRequestHead(std::string_view buffer, std::size_t limit, RequestHead& out) {
  out.headers.clear();
  out.has_body = false;
  std::size_t pos = 0;
  // Empty lines before the request line are ignored (RFC 9112 §2.2), within the limit.
  while (pos + 1 < buffer.size() && buffer[pos] == '\r' && buffer[pos + 1] == '\n') pos += 2;
  bool first = true;
  bool have_length = false;
  std::uint64_t content_length = 0;
  bool chunked_or_te = false;
  std::string_view connection;
  while (true) {
    auto lf = buffer.find('\n', pos);
    if (lf == std::string_view::npos) {
      return buffer.size() >= limit ? HeadStatus::kTooLarge : HeadStatus::kNeedMore;
    }
    if (lf + 1 > limit) return HeadStatus::kTooLarge;
    if (lf == pos || buffer[lf - 1] != '\r') return HeadStatus::kBad;  // bare LF
    std::string_view line = buffer.substr(pos, lf - 1 - pos);
    pos = lf + 1;
    if (first) {
      if (!ParseRequestLine(line, out)) return HeadStatus::kBad;
      first = false;
      continue;
    }
    if (line.empty()) break;                                                   // end of the head
    if (line.front() == ' ' || line.front() == '\t') return HeadStatus::kBad;  // obs-fold
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return HeadStatus::kBad;
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return HeadStatus::kBad;  // also whitespace before the colon
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!IsValueChar(static_cast<unsigned char>(c))) return HeadStatus::kBad;
    }
    value = TrimOws(value);
    out.headers.emplace_back(name, value);
    if (EqualsIgnoreCase(name, "content-length")) {
      // 1*DIGIT; repeated fields must agree (RFC 9112 §6.3).
      std::uint64_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
        return HeadStatus::kBad;
      }
      if (have_length && n != content_length) return HeadStatus::kBad;
      have_length = true;
      content_length = n;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked_or_te = true;
    } else if (EqualsIgnoreCase(name, "connection")) {
      connection = value;
    }
  }
  out.size = pos;
  out.has_body = chunked_or_te || content_length > 0;
  if (out.minor_version == 1) {
    out.keep_alive = connection.empty() || !ListHas(connection, "close");
  } else {
    out.keep_alive = !connection.empty() && ListHas(connection, "keep-alive");
  }
  return HeadStatus::kDone;
}

}  // namespace kakehashi::gateway::detail
