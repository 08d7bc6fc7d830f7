// Health endpoints (health.hpp, decision 0054). The body follows the shape of
// draft-inadarei-api-health-check (application/health+json; "status": "pass" | "warn" |
// "fail"): the members below "checks" are kakehashi's own, counts and names only.
#include "kakehashi/gateway/health.hpp"

#include "detail/json.hpp"

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

namespace kakehashi::gateway {

namespace {

std::string Integer(std::int64_t v) {
  return std::to_string(v);
}

std::string Decimal(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", std::isfinite(v) ? v : 0.0);
  return text;
}

// The re-index member: running, failed, done, total, and while running the rate and time left.
// nullopt: no background re-index.
detail::Json ReindexCheck(const std::optional<store::BackgroundReindex::Progress>& progress) {
  using detail::Json;
  Json check = Json::Object();
  if (!progress) {
    check.Set("status", Json::String("pass"));
    check.Set("running", Json::Bool(false));
    return check;
  }
  const auto& p = *progress;
  check.Set("status", Json::String(p.failed ? "fail" : p.running ? "warn" : "pass"));
  check.Set("running", Json::Bool(p.running));
  check.Set("failed", Json::Bool(p.failed));
  check.Set("done", Json::Number(Integer(p.done)));
  check.Set("total", Json::Number(Integer(p.total)));
  if (p.running && p.rate > 0) {
    check.Set("ratePerSecond", Json::Number(Decimal(p.rate)));
    check.Set("secondsLeft", Json::Number(Integer(std::llround(p.seconds_left))));
  }
  return check;
}

Response Answer(bool pass, std::string_view description, detail::Json checks) {
  using detail::Json;
  Json body = Json::Object();
  body.Set("status", Json::String(pass ? "pass" : "fail"));
  body.Set("description", Json::String(std::string(description)));
  body.Set("checks", std::move(checks));
  Response r;
  r.status = pass ? 200 : 503;
  r.SetHeader("Content-Type", "application/health+json");
  r.SetHeader("Cache-Control", "no-store");
  if (!pass) r.SetHeader("Retry-After", "1");
  r.body = detail::ToJsonText(body);
  return r;
}

}  // namespace

Health::Health(store::Store& store, const store::BackgroundReindex* reindex)
    : store_(store), reindex_(reindex) {}

void Health::SetDraining() {
  draining_.store(true, std::memory_order_release);
}

std::optional<store::BackgroundReindex::Progress> Health::Progress() const {
  if (reindex_ == nullptr) return std::nullopt;
  return reindex_->Status();
}

bool Health::Draining() const {
  return draining_.load(std::memory_order_acquire);
}

Response Health::Live() const {
  using detail::Json;
  Json checks = Json::Object();
  Json store = Json::Object();
  store.Set("backend", Json::String(std::string(store_.Backend())));
  checks.Set("store", std::move(store));
  checks.Set("reindex", ReindexCheck(Progress()));
  checks.Set("draining", Json::Bool(Draining()));
  return Answer(true, "the process answers", std::move(checks));
}

Response Health::Ready() const {
  using detail::Json;
  Json checks = Json::Object();
  Json store = Json::Object();
  store.Set("backend", Json::String(std::string(store_.Backend())));
  bool reachable = false;
  if (auto session = store_.OpenSession()) {
    if (auto version = (*session)->SchemaVersion()) {
      reachable = true;
      store.Set("schemaVersion", Json::Number(Integer(*version)));
    }
  }
  // Only that it failed: the error's text may name the database host or file.
  store.Set("status", Json::String(reachable ? "pass" : "fail"));
  checks.Set("store", std::move(store));
  const auto progress = Progress();
  const bool indexed = !progress || (!progress->running && !progress->failed);
  checks.Set("reindex", ReindexCheck(progress));
  const bool draining = Draining();
  checks.Set("draining", Json::Bool(draining));
  std::string_view why = "ready";
  if (draining) {
    why = "the server is shutting down";
  } else if (!reachable) {
    why = "the database does not answer";
  } else if (!indexed) {
    why = "the search index is being rebuilt; searches answer 503 until it is done";
  }
  return Answer(reachable && indexed && !draining, why, std::move(checks));
}

}  // namespace kakehashi::gateway
