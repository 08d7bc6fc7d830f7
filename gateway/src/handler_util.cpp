#include "handler_util.hpp"

#include "http_head.hpp"
#include "kakehashi/gateway/http.hpp"
#include "search_params.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <set>
#include <unordered_set>

namespace kakehashi::gateway::detail {

std::string OperationOutcomeJson(const Failure& failure) {
  Json oo = Json::Object();
  oo.Set("resourceType", Json::String("OperationOutcome"));
  Json& issues = oo.Set("issue", Json::Array());
  auto add = [&](std::string_view severity, std::string_view code, const std::string& text,
                 const std::string& expression) {
    Json issue = Json::Object();
    issue.Set("severity", Json::String(std::string(severity)));
    issue.Set("code", Json::String(std::string(code)));
    if (!text.empty()) issue.Set("diagnostics", Json::String(text));
    if (!expression.empty()) {
      Json& e = issue.Set("expression", Json::Array());
      e.Push(Json::String(expression));
    }
    issues.Push(std::move(issue));
  };
  if (failure.issues.empty()) {
    add(failure.status >= 500 ? "fatal" : (failure.status < 400 ? "information" : "error"),
        failure.code, failure.diagnostics, failure.expression);
  }
  for (const Issue& i : failure.issues) {
    std::string text(i.code);
    text += ": ";
    text += i.message;
    add(ToString(i.severity), failure.code, text, i.where.fhir_path);
  }
  return ToJsonText(oo);
}

Response FailureResponse(const Failure& failure) {
  Response r;
  r.status = failure.status;
  r.SetHeader("Content-Type", std::string(kFhirJson));
  r.body = OperationOutcomeJson(failure);
  // 503 is transient here (store unreachable, queue full): when to try again (RFC 9110 §10.2.3).
  if (failure.status == 503) r.SetHeader("Retry-After", "1");
  return r;
}

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = hex(text[i + 1]);
      int lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == '|' || c == ',') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

QueryParams ParseQuery(std::string_view query) {
  QueryParams out;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string_view k = eq == std::string_view::npos ? pair : pair.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      out.emplace_back(PercentDecode(k, true), PercentDecode(v, true));
    }
    start = amp + 1;
  }
  return out;
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

namespace {

// The weight (RFC 9110 §12.4.2: "q=" 0 to 1, up to three decimals) in thousandths; -1 when
// malformed.
int QValue(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return -1;
  int scale = 100;
  for (char c : v.substr(2)) {
    if (c < '0' || c > '9') return -1;
    q += (c - '0') * scale;
    scale /= 10;
  }
  return q > 1000 ? -1 : q;
}

}  // namespace

bool AcceptsJson(std::string_view accept) {
  if (TrimOws(accept).empty()) return true;
  // Per produced type: the specificity (3 exact, 2 application/*, 1 */*) and weight of the most
  // specific range naming it.
  int best_spec[2] = {0, 0};
  int best_q[2] = {0, 0};
  static constexpr std::string_view kProduced[2] = {"fhir+json", "json"};
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    const auto semi = range.find(';');
    std::string_view media = TrimOws(range.substr(0, semi));
    int q = 1000;
    if (semi != std::string_view::npos) {
      std::string_view params = range.substr(semi + 1);
      while (!params.empty()) {
        const auto next = params.find(';');
        std::string_view param = TrimOws(params.substr(0, next));
        params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && EqualsIgnoreCase(TrimOws(param.substr(0, eq)), "q")) {
          q = QValue(TrimOws(param.substr(eq + 1)));
        }
      }
    }
    const auto slash = media.find('/');
    if (q < 0 || slash == std::string_view::npos) continue;  // malformed range: ignored
    const std::string_view type = media.substr(0, slash);
    const std::string_view subtype = media.substr(slash + 1);
    for (int i = 0; i < 2; ++i) {
      int spec = 0;
      if (type == "*" && subtype == "*") {
        spec = 1;
      } else if (EqualsIgnoreCase(type, "application")) {
        spec = subtype == "*" ? 2 : EqualsIgnoreCase(subtype, kProduced[i]) ? 3 : 0;
      }
      if (spec > best_spec[i] || (spec == best_spec[i] && spec > 0 && q > best_q[i])) {
        best_spec[i] = spec;
        best_q[i] = q;
      }
    }
  }
  return best_q[0] > 0 || best_q[1] > 0;
}

const std::vector<std::string>& ResourceTypeNames() {
  static const std::vector<std::string> kNames = [] {
    std::set<std::string> s;
    for (auto& t : SearchParamRegistry::Instance().Types()) s.insert(t);
    // R4 resources without search parameters of their own.
    for (const char* t : {"Binary", "Parameters"}) s.insert(t);
    s.erase("Resource");
    s.erase("DomainResource");
    return std::vector<std::string>(s.begin(), s.end());
  }();
  return kNames;
}

bool IsResourceTypeName(std::string_view type) {
  // Hashed (asked for every read by id on the server's fast path); views of ResourceTypeNames().
  static const std::unordered_set<std::string_view> kTypes(ResourceTypeNames().begin(),
                                                           ResourceTypeNames().end());
  return kTypes.find(type) != kTypes.end();
}

// Time-ordered UUIDs (RFC 9562 §5.7 version 7, with the §6.2 method 1 counter in rand_a): 48-bit
// Unix milliseconds, a 12-bit per-process counter within the millisecond, then 62 random bits.
// Random (v4) ids scatter every insert over all (type, id) B-trees - the resources key, history
// and five by-resource index tables - so a transaction of 100 creates dirtied ~700 leaf pages
// that each went to the WAL; ordered ids append next to each other (docs/performance.md).
std::string NewId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static std::atomic<std::uint64_t> last{0};  // (ms << 12) | counter, strictly increasing
  const auto ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::uint64_t prev = last.load();
  std::uint64_t next = 0;
  do {
    next = (ms << 12) > prev ? (ms << 12) : prev + 1;  // counter overflow borrows the next ms
  } while (!last.compare_exchange_weak(prev, next));
  const std::uint64_t time_ms = next >> 12;
  const std::uint64_t counter = next & 0xFFF;
  const std::uint64_t a = (time_ms << 16) | 0x7000 | counter;                       // version 7
  const std::uint64_t b = (rng() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant
  // "%08x-%04x-%04x-%04x-%012x" of a's and b's 16 hex digits, written directly (snprintf was
  // ~2,800 instructions per created resource).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  auto put = [&](std::uint64_t v) {
    for (int shift = 60; shift >= 0; shift -= 4) {
      if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
      out[at++] = kHex[(v >> shift) & 0xF];
    }
  };
  put(a);
  put(b);
  return out;
}

std::int64_t NowUs() {
  static std::atomic<std::int64_t> last{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  std::int64_t prev = last.load();
  std::int64_t next = 0;
  do {
    next = now > prev ? now : prev + 1;
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

}  // namespace kakehashi::gateway::detail
