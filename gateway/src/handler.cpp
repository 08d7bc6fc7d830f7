// The FHIR RESTful API (R4 §3.1.0) as Request -> Response. Each call takes one pooled store
// session; writes run in a store transaction that locks the resource key before the version
// check, so If-Match and version numbering are race-free across threads and processes.
#include "kakehashi/gateway/handler.hpp"

#include "detail/json.hpp"
#include "detail/json_node.hpp"
#include "detail/patch.hpp"
#include "detail/values.hpp"
#include "handler_util.hpp"
#include "indexer.hpp"
#include "kakehashi/fhir/r4/meta.hpp"
#include "kakehashi/gateway/health.hpp"
#include "read_cache.hpp"
#include "search.hpp"
#include "search_params.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <variant>

namespace kakehashi::gateway {

using detail::Fail;
using detail::Failure;
using detail::Json;
using detail::QueryParams;

namespace {

Failure StoreFailure(const ErrorCode& ec) {
  Failure f;
  if (ec == store::errc::kConflict) {
    f = Fail(409, "conflict", "a concurrent request changed the same resource; retry");
  } else if (ec == store::errc::kDuplicateKey) {
    // Decision 0023: after its bounded retry the key is taken for good (a version or id the
    // store already holds); a version conflict in FHIR terms (R4 §3.1.0.8, 409).
    f = Fail(409, "conflict", "the store already holds a version of this resource with this key");
  } else if (ec == store::errc::kUnavailable) {
    f = Fail(503, "transient", "the store is unavailable; retry");
  } else if (ec == store::errc::kIndexing) {
    // Decision 0055: the search index rows are being rebuilt; reads, history and writes work.
    f = Fail(503, "transient",
             "searches are unavailable while the search index is rebuilt after an upgrade; "
             "retry later (reads by id, history and writes are served)");
  } else {
    f = Fail(500, "exception", "the store failed: " + ec.message());
  }
  f.store_error = ec;
  return f;
}

// If-Match: W/"3" or "3" (R4 §3.1.0.8.1).
std::optional<std::int64_t> ParseETag(std::string_view value) {
  if (value.starts_with("W/")) value.remove_prefix(2);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size()) return std::nullopt;
  return v;
}

// A vread's version id: the digits of a versionId this server assigns (1, 2, ...), nothing after
// them ("1x" names no version: 404, not version 1).
std::optional<std::int64_t> ParseVersionId(std::string_view vid) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(vid.data(), vid.data() + vid.size(), v);
  if (ec != std::errc() || ptr != vid.data() + vid.size() || v < 1) return std::nullopt;
  return v;
}

enum class Prefer { kRepresentation, kMinimal, kOutcome };
Prefer ParsePrefer(std::string_view header) {
  if (header.find("return=minimal") != std::string_view::npos) return Prefer::kMinimal;
  if (header.find("return=OperationOutcome") != std::string_view::npos) return Prefer::kOutcome;
  return Prefer::kRepresentation;
}

// A request-independent write: the outcome of PUT/POST/DELETE on one resource.
struct WriteResult {
  int status = 200;  // 200 updated / 201 created / 204 deleted
  store::ResourceRow row;
};

// A resource ready to store: members in canonical order, validated, index rows extracted, and
// serialised once with its meta.versionId and meta.lastUpdated values cut out (each replaced by
// a one-character marker string while serialising). All of it happens before the write
// transaction; under the write lock Render() splices the values in (a copy instead of a tree
// walk and a serialisation), and comparing the text around them with the current version tells
// an unchanged resource without parsing it (Handler::WritePrepared). When a marker is not unique
// in the text (input data holding the same string), the tree is kept and serialised at write
// time instead.
struct Prepared {
  std::string text;
  std::size_t version_at = std::string::npos;  // offset of kVersionMark in text
  std::size_t instant_at = std::string::npos;  // offset of kInstantMark in text
  std::optional<Json> tree;                    // markers not unique
  store::IndexEntries index;
};

constexpr std::string_view kVersionMark = "\"\\u0001\"";  // Json::String("\x01") as written
constexpr std::string_view kInstantMark = "\"\\u0002\"";

std::size_t FindUnique(const std::string& text, std::string_view mark) {
  const std::size_t at = text.find(mark);
  if (at == std::string::npos || text.find(mark, at + 1) != std::string::npos) {
    return std::string::npos;
  }
  return at;
}

// The pieces of a marked text in order: text = pieces[0] v0 pieces[1] v1 pieces[2], where v0/v1
// are the quoted values at the two markers (version first when it comes first).
std::array<std::string_view, 3> Pieces(const Prepared& d) {
  const std::string_view text = d.text;
  const std::size_t first = std::min(d.version_at, d.instant_at);
  const std::size_t second = std::max(d.version_at, d.instant_at);
  const std::size_t mark = kVersionMark.size();
  return {text.substr(0, first), text.substr(first + mark, second - first - mark),
          text.substr(second + mark)};
}

// Serialises `ordered` (whose meta holds versionId and lastUpdated) into p.text with the two
// values as markers; keeps the tree when a marker is not unique.
void SetMarkedText(Json& ordered, Prepared& p) {
  Json* meta = ordered.Find("meta");
  meta->Set("versionId", Json::String("\x01"));
  meta->Set("lastUpdated", Json::String("\x02"));
  p.text = detail::ToJsonText(ordered);
  p.version_at = FindUnique(p.text, kVersionMark);
  p.instant_at = FindUnique(p.text, kInstantMark);
  if (p.version_at == std::string::npos || p.instant_at == std::string::npos) {
    p.text.clear();
    p.tree = std::move(ordered);
  }
}

// The stored text of `p` as version `version` written at `last_updated_us`: the same bytes as
// serialising the tree with those meta values.
std::string Render(Prepared& p, std::int64_t version, std::int64_t last_updated_us) {
  if (p.tree) {
    Json* meta = p.tree->Find("meta");
    meta->Set("versionId", Json::String(std::to_string(version)));
    meta->Set("lastUpdated", Json::String(detail::FormatInstant(last_updated_us)));
    return detail::ToJsonText(*p.tree);
  }
  std::string v = "\"" + std::to_string(version) + "\"";
  std::string instant = "\"" + detail::FormatInstant(last_updated_us) + "\"";
  const auto pieces = Pieces(p);
  const bool version_first = p.version_at < p.instant_at;
  std::string out;
  out.reserve(p.text.size() + 40);
  out += pieces[0];
  out += version_first ? v : instant;
  out += pieces[1];
  out += version_first ? instant : v;
  out += pieces[2];
  return out;
}

void AppendEntryResource(std::string& out, std::string_view full_url, std::string_view json,
                         std::string_view mode) {
  out += "{\"fullUrl\":";
  detail::AppendJsonString(full_url, out);
  out += ",\"resource\":";
  out += json;
  if (!mode.empty()) {
    out += ",\"search\":{\"mode\":\"";
    out += mode;
    out += "\"}";
  }
  out += '}';
}

// A write request as two closures over its prepared state (handler.hpp, PreparedRequest).
// Apply may run several times (the commit queue retries after a store error, each time after
// a rollback), so every apply closure starts again from its prepared state.
class WriteJob final : public PreparedRequest {
 public:
  using ApplyFn = std::function<std::optional<Failure>(store::Session&)>;
  using FinishFn = std::function<Response()>;
  // A store error behind a successful Apply (a batch entry's), or nullopt.
  using StoreErrorFn = std::function<std::optional<ErrorCode>()>;
  WriteJob(ApplyFn apply, FinishFn finish, std::size_t weight, StoreErrorFn store_error)
      : apply_(std::move(apply)),
        finish_(std::move(finish)),
        store_error_fn_(std::move(store_error)),
        weight_(weight) {}
  bool Apply(store::Session& session) override {
    failure_ = apply_(session);
    store_error_.reset();
    if (failure_) {
      store_error_ = failure_->store_error;
    } else if (store_error_fn_) {
      store_error_ = store_error_fn_();
    }
    return !failure_;
  }
  Response Finish(const ErrorCode* lost) override {
    // `lost` first: the last attempt ended in the transaction, whatever an earlier Apply said.
    if (lost != nullptr) return detail::FailureResponse(StoreFailure(*lost));
    if (failure_) return detail::FailureResponse(*failure_);
    return finish_();
  }
  const ErrorCode* StoreError() const override { return store_error_ ? &*store_error_ : nullptr; }
  std::size_t Weight() const override { return weight_; }

 private:
  ApplyFn apply_;
  FinishFn finish_;
  StoreErrorFn store_error_fn_;
  std::size_t weight_;
  std::optional<Failure> failure_;
  std::optional<ErrorCode> store_error_;
};

using Split = std::variant<Response, std::unique_ptr<PreparedRequest>>;

Split MakeJob(WriteJob::ApplyFn apply, WriteJob::FinishFn finish, std::size_t weight = 1,
              WriteJob::StoreErrorFn store_error = {}) {
  return std::unique_ptr<PreparedRequest>(std::make_unique<WriteJob>(
      std::move(apply), std::move(finish), weight, std::move(store_error)));
}

// A Put/Delete outcome kept in `out`; the failure, if any.
std::optional<Failure> Keep(std::variant<WriteResult, Failure>&& result, WriteResult& out) {
  if (auto* f = std::get_if<Failure>(&result)) return std::move(*f);
  out = std::move(std::get<WriteResult>(result));
  return std::nullopt;
}

}  // namespace

struct Handler::Impl {
  store::Store& store;
  HandlerOptions options;
  std::string capability;
  // Read cache (SQLite only, read_cache.hpp): entries are valid while the WAL-index header of
  // the database file shows no commit since they were read. The header is also read without
  // the cache: Store::ReadCurrent keeps its read transaction open while it is unchanged.
  std::unique_ptr<detail::ReadCache> cache;
  std::unique_ptr<detail::WalIndexWatch> wal;
  // Token :in / :not-in by a ValueSet stored here (decision 0043 §3): StoredValueSet.
  detail::StoredValueSetCodes stored_value_sets;
  detail::StoredCodeSystemCodes stored_code_systems;  // token :below / :above (decision 0056)

  Impl(store::Store& s, HandlerOptions o) : store(s), options(std::move(o)) {
    stored_value_sets = [this](std::string_view ref, std::size_t max) {
      return StoredValueSet(ref, max);
    };
    stored_code_systems = [this](std::string_view system, std::string_view code, bool below,
                                 std::size_t max) {
      return StoredCodeSystem(system, code, below, max);
    };
    capability = BuildCapabilityStatement();
    if (!options.read_cache_sqlite_file.empty() && store.Backend() == "sqlite") {
      wal = std::make_unique<detail::WalIndexWatch>(options.read_cache_sqlite_file);
      if (options.read_cache_bytes > 0) {
        cache = std::make_unique<detail::ReadCache>(options.read_cache_bytes);
      }
    }
  }

  std::string FullUrl(std::string_view type, std::string_view id) const {
    std::string url = options.base_url;
    url += '/';
    url += type;
    url += '/';
    url += id;
    return url;
  }

  // ---------------------------------------------------------------- resource preparation

  // Parses and checks a resource body: JSON, resourceType, id syntax, then the injected
  // validator. `type` is the type named by the URL (or the Bundle entry).
  std::optional<Failure> ParseResource(std::string_view body, std::string_view type,
                                       Json& out) const {
    detail::JsonError error;
    if (body.empty()) return Fail(400, "invalid", "the request has no resource body");
    if (!detail::ParseJson(body, out, error)) {
      return Fail(400, "invalid",
                  "malformed JSON at byte " + std::to_string(error.offset) + ": " + error.message);
    }
    return CheckResource(out, type);
  }

  std::optional<Failure> CheckResource(const Json& resource, std::string_view type) const {
    if (!resource.IsObject()) return Fail(400, "invalid", "the body is not a JSON object");
    std::string_view rt = resource.Str("resourceType");
    if (rt.empty()) return Fail(400, "invalid", "resourceType is missing");
    if (rt != type) {
      return Fail(
          400, "invalid",
          "resourceType " + std::string(rt) + " does not match the URL type " + std::string(type));
    }
    if (const Json* id = resource.Find("id"); id != nullptr) {
      if (!id->IsString() || !detail::IsValidId(id->Text())) {
        return Fail(400, "invalid", "id must match [A-Za-z0-9\\-\\.]{1,64} (R4 §2.6.2.7)");
      }
    }
    if (const Json* meta = resource.Find("meta"); meta != nullptr && !meta->IsObject()) {
      return Fail(400, "structure", "meta must be an object");
    }
    return std::nullopt;
  }

  // The validator's verdict on a prepared resource: `check` runs the hook into the sink.
  template <class Check>
  std::optional<Failure> Validate(const Check& check) const {
    CollectingSink sink;
    check(sink);
    Failure f = Fail(422, "processing", "the resource is not valid");
    for (const Issue& issue : sink.Issues()) {
      if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
        f.issues = sink.Issues();
        return f;
      }
    }
    return std::nullopt;
  }

  // ---------------------------------------------------------------- writes (inside Begin())

  // Prepared (above) before the write transaction, so the write lock covers only the version
  // check and the inserts (validation and index extraction are most of a write's CPU time).
  // `validate` false: a provisional version that is never committed (a transaction's first pass
  // over resources with conditional references, Impl::Bundle).
  std::variant<Prepared, Failure> Prepare(const std::string& type, const std::string& id,
                                          Json resource, bool validate = true) const {
    // id first after resourceType; meta.versionId/lastUpdated are the server's (R4 §3.1.0.5).
    // Order as R4 lists Resource's elements: resourceType, id, meta, then the rest as received.
    Json ordered = Json::Object();
    ordered.Set("resourceType", Json::String(type));
    ordered.Set("id", Json::String(id));
    Json* given = resource.Find("meta");
    ordered.Set("meta", given != nullptr ? std::move(*given) : Json::Object());
    for (auto& [k, v] : resource.Members()) {
      if (k == "resourceType" || k == "id" || k == "meta") continue;
      ordered.Members().emplace_back(std::move(k), std::move(v));
    }
    // Provisional versionId/lastUpdated (same members, same place) so the validator and the
    // indexer see the stored shape; Put() renders the final values under the write lock.
    Json* meta = ordered.Find("meta");  // after the appends: they may reallocate
    meta->Set("versionId", Json::String("1"));
    const std::int64_t now = detail::NowUs();
    meta->Set("lastUpdated", Json::String(detail::FormatInstant(now)));
    Prepared p;
    detail::IndexResource(ordered, p.index);
    SetMarkedText(ordered, p);
    if (options.node_validator && validate) {
      // The tree with the provisional values (decision 0052): `ordered` itself, whose text is
      // already in p.text, or a copy of the kept tree.
      Json provisional = p.tree ? *p.tree : std::move(ordered);
      Json* pmeta = provisional.Find("meta");
      pmeta->Set("versionId", Json::String("1"));
      pmeta->Set("lastUpdated", Json::String(detail::FormatInstant(now)));
      const fhir::Node node = detail::ToNode(std::move(provisional));
      if (auto f = Validate([&](IssueSink& sink) { options.node_validator(node, sink); })) {
        return *f;
      }
    } else if (options.validator && validate) {
      // The provisional text: the marked text with the provisional values spliced in, or the
      // kept tree serialised (its meta then holds them again).
      const std::string text = Render(p, 1, now);
      if (auto f = Validate([&](IssueSink& sink) { options.validator(text, sink); })) return *f;
    }
    return p;
  }

  // PUT semantics (create-on-update) of a prepared resource, inside Begin(). `if_match` checks
  // the current version. `fresh`: the id was just assigned by this server (POST), so no current
  // version can exist and none is read (an id taken anyway fails on the history key).
  // `method`: the interaction the history records (a fresh write is a POST).
  std::variant<WriteResult, Failure> Put(
      store::Session& session, const std::string& type, const std::string& id, Prepared& prepared,
      std::optional<std::int64_t> if_match, bool fresh = false,
      store::WriteMethod method = store::WriteMethod::kPut) const {
    std::optional<store::ResourceRow> cur;
    if (!fresh) {
      auto current = session.LockAndRead(type, id);
      if (!current) return StoreFailure(current.error());
      cur = std::move(*current);
    }
    if (if_match && (!cur || cur->version != *if_match)) {
      return Fail(412, "conflict",
                  "If-Match names version " + std::to_string(*if_match) +
                      " but the current version is " +
                      (cur ? std::to_string(cur->version) : std::string("none")));
    }
    store::ResourceRow row;
    row.type = type;
    row.id = id;
    row.version = cur ? cur->version + 1 : 1;
    row.last_updated_us = detail::NowUs();
    row.json = Render(prepared, row.version, row.last_updated_us);
    row.method = fresh ? store::WriteMethod::kPost : method;
    if (auto w = session.Write(row, prepared.index); !w) return StoreFailure(w.error());
    WriteResult result;
    result.status = (cur && !cur->deleted) ? 200 : 201;
    result.row = std::move(row);
    return result;
  }

  std::variant<WriteResult, Failure> Delete(store::Session& session, const std::string& type,
                                            const std::string& id,
                                            std::optional<std::int64_t> if_match) const {
    auto current = session.LockAndRead(type, id);
    if (!current) return StoreFailure(current.error());
    const std::optional<store::ResourceRow>& cur = *current;
    if (if_match && (!cur || cur->version != *if_match)) {
      return Fail(412, "conflict", "If-Match does not name the current version");
    }
    WriteResult result;
    result.status = 204;
    if (!cur || cur->deleted) {  // deleting nothing succeeds (R4 §3.1.0.7.1)
      if (cur) result.row = *cur;
      return result;
    }
    store::ResourceRow row;
    row.type = type;
    row.id = id;
    row.version = cur->version + 1;
    row.last_updated_us = detail::NowUs();
    row.deleted = true;
    row.method = store::WriteMethod::kDelete;
    if (auto w = session.Write(row, {}); !w) return StoreFailure(w.error());
    result.row = std::move(row);
    return result;
  }

  // Runs a prepared write in a transaction of its own (Handle; the server's commit queue
  // shares one among several).
  Response RunAlone(PreparedRequest& job) const {
    auto session = store.OpenSession();
    if (!session) return detail::FailureResponse(StoreFailure(session.error()));
    if (auto b = (*session)->Begin(); !b) return detail::FailureResponse(StoreFailure(b.error()));
    if (!job.Apply(**session)) {
      (*session)->Rollback();
      return job.Finish(nullptr);
    }
    if (auto c = (*session)->Commit(); !c) {
      const ErrorCode lost = c.error();
      return job.Finish(&lost);
    }
    return job.Finish(nullptr);
  }

  // A write branch of Route: answered, handed to the caller (`defer`), or run alone.
  Response Deliver(Split split, std::unique_ptr<PreparedRequest>* defer) const {
    if (auto* r = std::get_if<Response>(&split)) return std::move(*r);
    auto& job = std::get<std::unique_ptr<PreparedRequest>>(split);
    if (defer != nullptr) {
      *defer = std::move(job);
      return Response{};
    }
    return RunAlone(*job);
  }

  Response WriteResponse(const WriteResult& w, Prefer prefer, bool location) const {
    Response r;
    r.status = w.status;
    r.SetHeader("ETag", detail::FormatETag(w.row.version));
    r.SetHeader("Last-Modified", detail::FormatHttpDate(w.row.last_updated_us));
    if (location) {
      r.SetHeader("Location",
                  FullUrl(w.row.type, w.row.id) + "/_history/" + std::to_string(w.row.version));
    }
    if (w.status == 204) return r;
    switch (prefer) {
      case Prefer::kMinimal: break;
      case Prefer::kOutcome: {
        Failure info = Fail(w.status, "informational", w.status == 201 ? "created" : "updated");
        r.SetHeader("Content-Type", std::string(detail::kFhirJson));
        r.body = detail::OperationOutcomeJson(info);
        break;
      }
      case Prefer::kRepresentation:
        r.SetHeader("Content-Type", std::string(detail::kFhirJson));
        r.body = w.row.json;
        break;
    }
    return r;
  }

  // ---------------------------------------------------------------- interactions

  // The current version of type/id: from the cache when the database has not changed since
  // the entry was read, else from the store (then cached, tagged with the database state taken
  // before the read began, so a commit racing with the read makes the entry stale at once).
  Result<std::shared_ptr<const detail::CachedResource>> ReadCurrent(std::string_view type,
                                                                    std::string_view id) const {
    std::optional<detail::DbEpoch> epoch;
    if (wal) epoch = wal->Current();
    if (cache && epoch) {
      if (auto hit = cache->Find(type, id, *epoch)) return hit;
    }
    // The store may answer from a read transaction kept open while `epoch` is unchanged.
    KAKEHASHI_TRY(auto row, store.ReadCurrent(type, id, epoch));
    if (!row) return std::shared_ptr<const detail::CachedResource>();
    auto entry = detail::MakeCachedResource(std::move(*row));
    if (cache && epoch) {
      entry->epoch = *epoch;
      cache->Insert(type, id, entry);
    }
    return std::shared_ptr<const detail::CachedResource>(std::move(entry));
  }

  // _summary / _elements on read and vread (R4 search.html "Summary": "_summary ... can be used
  // with a read"; decision 0045): the subset, or a 400 for a bad value.
  static std::optional<Failure> ReadSubset(const QueryParams& params, detail::SubsetSpec& subset) {
    return detail::ParseSubsetParams(params, subset, false);
  }

  Response Read(const std::string& type, const std::string& id, const Request& request,
                const QueryParams& params = {}) const {
    detail::SubsetSpec subset;
    if (auto f = ReadSubset(params, subset)) return detail::FailureResponse(*f);
    auto row = ReadCurrent(type, id);
    if (!row) return detail::FailureResponse(StoreFailure(row.error()));
    if (!*row)
      return detail::FailureResponse(Fail(404, "not-found", type + "/" + id + " is not known"));
    const detail::CachedResource& r = **row;
    if (r.deleted) {
      Response resp =
          detail::FailureResponse(Fail(410, "deleted", type + "/" + id + " was deleted"));
      resp.SetHeader("ETag", detail::FormatETag(r.version));
      return resp;
    }
    if (auto inm = request.Header("If-None-Match"); !inm.empty()) {
      if (auto v = ParseETag(inm); v && *v == r.version) {
        Response resp;
        resp.status = 304;
        resp.SetHeader("ETag", detail::FormatETag(r.version));
        return resp;
      }
    }
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.SetHeader("ETag", std::string(r.etag()));
    resp.SetHeader("Last-Modified", std::string(r.last_modified()));
    // The stored canonical bytes, not re-serialised (unless a subset was asked for).
    resp.body = subset.Active() ? detail::Subset(std::string(r.json()), subset) : r.json();
    return resp;
  }

  Response VRead(const std::string& type, const std::string& id, std::string_view vid,
                 const QueryParams& params = {}) const {
    detail::SubsetSpec subset;
    if (auto f = ReadSubset(params, subset)) return detail::FailureResponse(*f);
    const std::optional<std::int64_t> parsed = ParseVersionId(vid);
    if (!parsed) return detail::FailureResponse(Fail(404, "not-found", "no such version"));
    const std::int64_t version = *parsed;
    auto session = store.OpenSession();
    if (!session) return detail::FailureResponse(StoreFailure(session.error()));
    auto row = (*session)->ReadVersion(type, id, version);
    if (!row) return detail::FailureResponse(StoreFailure(row.error()));
    if (!*row) return detail::FailureResponse(Fail(404, "not-found", "no such version"));
    if ((*row)->deleted) {
      Response resp = detail::FailureResponse(Fail(410, "deleted", "this version is a deletion"));
      resp.SetHeader("ETag", detail::FormatETag(version));
      return resp;
    }
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.SetHeader("ETag", detail::FormatETag(version));
    resp.SetHeader("Last-Modified", detail::FormatHttpDate((*row)->last_updated_us));
    resp.body = subset.Active() ? detail::Subset((*row)->json, subset) : std::move((*row)->json);
    return resp;
  }

  // The version an If-Match header names (R4 http.html 3.1.0.4.1, "Managing Resource
  // Contention"), none without the header; a malformed one is 400.
  static std::optional<Failure> IfMatchHeader(const Request& request,
                                              std::optional<std::int64_t>& if_match) {
    if (auto h = request.Header("If-Match"); !h.empty()) {
      if_match = ParseETag(h);
      if (!if_match) return Fail(400, "invalid", "malformed If-Match");
    }
    return std::nullopt;
  }

  Split Update(const std::string& type, const std::string& id, const Request& request) const {
    Json resource;
    if (auto f = ParseResource(request.body, type, resource)) return detail::FailureResponse(*f);
    if (std::string_view body_id = resource.Str("id"); body_id != id) {
      return detail::FailureResponse(
          Fail(400, "invalid", "the resource id must equal the id in the URL (R4 §3.1.0.4)"));
    }
    std::optional<std::int64_t> if_match;
    if (auto f = IfMatchHeader(request, if_match)) return detail::FailureResponse(*f);
    struct State {
      std::string type, id;
      std::optional<Prepared> prepared;
      Json resource;  // with conditional references: prepared once they are resolved
      std::optional<std::int64_t> if_match;
      Prefer prefer;
      WriteResult written;
    };
    auto st = std::make_shared<State>();
    st->type = type;
    st->id = id;
    st->if_match = if_match;
    st->prefer = ParsePrefer(request.Header("Prefer"));
    if (HasConditionalReference(resource)) {
      st->resource = std::move(resource);
    } else {
      auto prepared = Prepare(type, id, std::move(resource));
      if (auto* f = std::get_if<Failure>(&prepared)) return detail::FailureResponse(*f);
      st->prepared = std::move(std::get<Prepared>(prepared));
    }
    const bool resolve = !st->prepared;
    return MakeJob(
        [this, st, resolve](store::Session& s) -> std::optional<Failure> {
          if (resolve) {  // again on a retry: the matches may have changed
            auto prepared = PrepareResolved(s, st->type, st->id, st->resource);
            if (auto* f = std::get_if<Failure>(&prepared)) return *f;
            st->prepared = std::move(std::get<Prepared>(prepared));
          }
          return Keep(Put(s, st->type, st->id, *st->prepared, st->if_match), st->written);
        },
        [this, st] { return WriteResponse(st->written, st->prefer, st->written.status == 201); });
  }

  // A single write's resource with its conditional references resolved in `session` (decision
  // 0046: as in a transaction, R4 http.html "Conditional References"; 404 none, 412 several,
  // 400 criteria that filter nothing), then prepared. `resource` is left as sent.
  std::variant<Prepared, Failure> PrepareResolved(store::Session& session, const std::string& type,
                                                  const std::string& id,
                                                  const Json& resource) const {
    Json copy(resource);
    std::map<std::string, std::string> resolved;
    if (auto f = ResolveConditionalReferences(session, copy, type, resolved)) return *f;
    return Prepare(type, id, std::move(copy));
  }

  // The search parameters of If-None-Exist / ifNoneExist ("Type?" before them is ignored: the
  // resource's type is searched).
  static detail::QueryParams CriteriaParams(std::string_view if_none_exist) {
    std::string_view q = if_none_exist;
    if (auto qm = q.find('?'); qm != std::string_view::npos) q = q.substr(qm + 1);
    return detail::ParseQuery(q);
  }

  // Serialises conditional creates with the same criteria (inside Begin()): the store locks
  // the key "type/?" + the criteria's canonical form (detail::CriteriaKey: the same whatever
  // the order, repeats and encoding of the parameters), which can never be a resource id.
  static std::optional<Failure> LockCriteria(store::Session& session, const std::string& type,
                                             std::string_view if_none_exist) {
    auto canonical = detail::CriteriaKey(CriteriaParams(if_none_exist));
    if (!canonical) {
      return Fail(400, "invalid", "If-None-Exist takes search criteria, not _offset or _cursor");
    }
    auto locked = session.LockAndRead(type, "?" + *canonical);
    if (!locked) return StoreFailure(locked.error());
    return std::nullopt;
  }

  // Conditional create (R4 §3.1.0.8.2): 0 matches create, 1 returns it, more is 412.
  std::variant<std::optional<store::ResourceRow>, Failure> FindExisting(
      store::Session& session, const std::string& type, std::string_view if_none_exist) const {
    auto found = Matches(session, type, CriteriaParams(if_none_exist), "If-None-Exist");
    if (auto* f = std::get_if<Failure>(&found)) return *f;
    auto& rows = std::get<std::vector<store::ResourceRow>>(found);
    if (rows.size() > 1) {
      return Fail(412, "duplicate", "the If-None-Exist criteria match more than one resource");
    }
    if (rows.empty()) return std::optional<store::ResourceRow>();
    return std::optional<store::ResourceRow>(std::move(rows[0]));
  }

  // Conditional criteria other than If-None-Exist (a conditional update's or delete's query, a
  // conditional reference's search URI) as a search for at most two matches (enough to tell one
  // from several). R4 http.html: "Only filtering parameters are allowed": those that only shape
  // a result (_count, _sort, _include, …) are ignored; paging ones (_offset, _cursor), none at
  // all, unknown parameters and bad values are 400. `what` names the criteria in the message.
  std::optional<Failure> CriteriaSearch(const std::string& type, const QueryParams& params,
                                        std::string_view what, store::SearchQuery& query) const {
    if (!detail::CriteriaKey(params)) {
      return Fail(400, "invalid",
                  std::string(what) + " takes search criteria, not _offset or _cursor");
    }
    detail::SearchSpec spec;
    detail::SearchContext ctx{options.base_url, 2, 2, &options.value_set_codes};
    if (auto f = detail::BuildSearch(type, params, ctx, spec)) return f;
    if (spec.query.where.empty()) {
      return Fail(400, "invalid", std::string(what) + " has no search criteria");
    }
    query = std::move(spec.query);
    query.count = 2;
    return std::nullopt;
  }

  std::variant<std::vector<store::ResourceRow>, Failure> Matches(store::Session& session,
                                                                 const std::string& type,
                                                                 const QueryParams& params,
                                                                 std::string_view what) const {
    store::SearchQuery query;
    if (auto f = CriteriaSearch(type, params, what, query)) return *f;
    auto rows = session.Search(query);
    if (!rows) return StoreFailure(rows.error());
    return std::move(*rows);
  }

  // The id a conditional update or delete writes (R4 http.html 3.1.0.4.3 and 3.1.0.7.1),
  // decided inside the write transaction under the lock conditional creates take on the same
  // criteria (LockCriteria), so racing conditional writes with equal criteria see each other's
  // result. Update: no match creates (with the body's id, else a new one), one match updates it
  // unless the body's id names another resource (400), several are 412. Delete: no match
  // deletes nothing (an empty id), one deletes it, several are 412 (conditionalDelete "single").
  std::variant<std::string, Failure> ConditionalTarget(store::Session& session,
                                                       const std::string& type,
                                                       std::string_view criteria, bool update,
                                                       std::string_view body_id) const {
    if (auto f = LockCriteria(session, type, criteria)) return *f;
    auto found = Matches(session, type, CriteriaParams(criteria),
                         update ? "a conditional update" : "a conditional delete");
    if (auto* f = std::get_if<Failure>(&found)) return *f;
    auto& rows = std::get<std::vector<store::ResourceRow>>(found);
    if (rows.size() > 1) {
      return Fail(412, "multiple-matches",
                  std::string("the criteria of the conditional ") + (update ? "update" : "delete") +
                      " match more than one resource");
    }
    if (rows.empty()) {
      if (!update) return std::string();
      return body_id.empty() ? detail::NewId() : std::string(body_id);
    }
    if (update && !body_id.empty() && body_id != rows[0].id) {
      return Fail(400, "invalid",
                  "the resource id differs from the id of the resource the conditional update's "
                  "criteria match (R4 http.html 3.1.0.4.3)");
    }
    return std::move(rows[0].id);
  }

  // PUT [base]/Type?criteria (R4 http.html 3.1.0.4.3). The resource is prepared inside the
  // write transaction, once its id is known (again only when a retry finds another id).
  Split ConditionalUpdate(const std::string& type, const QueryParams& params,
                          const Request& request) const {
    Json resource;
    if (auto f = ParseResource(request.body, type, resource)) return detail::FailureResponse(*f);
    store::SearchQuery checked;  // the criteria fail here, before the queue, when malformed
    if (auto f = CriteriaSearch(type, params, "a conditional update", checked)) {
      return detail::FailureResponse(*f);
    }
    std::optional<std::int64_t> if_match;
    if (auto f = IfMatchHeader(request, if_match)) return detail::FailureResponse(*f);
    struct State {
      std::string type, criteria, body_id, id;
      Json resource;
      std::optional<Prepared> prepared;  // for `id`
      std::optional<std::int64_t> if_match;
      Prefer prefer;
      WriteResult written;
    };
    auto st = std::make_shared<State>();
    st->type = type;
    st->criteria = request.target;  // CriteriaParams reads what follows '?'
    st->body_id = std::string(resource.Str("id"));
    st->resource = std::move(resource);
    st->if_match = if_match;
    st->prefer = ParsePrefer(request.Header("Prefer"));
    return MakeJob(
        [this, st](store::Session& s) -> std::optional<Failure> {
          auto target = ConditionalTarget(s, st->type, st->criteria, true, st->body_id);
          if (auto* f = std::get_if<Failure>(&target)) return *f;
          std::string& id = std::get<std::string>(target);
          if (!st->prepared || st->id != id || HasConditionalReference(st->resource)) {
            auto prepared = PrepareResolved(s, st->type, id, st->resource);
            if (auto* f = std::get_if<Failure>(&prepared)) return *f;
            st->prepared = std::move(std::get<Prepared>(prepared));
            st->id = std::move(id);
          }
          return Keep(Put(s, st->type, st->id, *st->prepared, st->if_match), st->written);
        },
        [this, st] { return WriteResponse(st->written, st->prefer, st->written.status == 201); });
  }

  static Response DeleteResponse(const WriteResult& written) {
    Response r;
    r.status = 204;
    if (written.row.version > 0) r.SetHeader("ETag", detail::FormatETag(written.row.version));
    return r;
  }

  // DELETE [base]/Type?criteria (R4 http.html 3.1.0.7.1): 204 whether it matched none or one.
  Split ConditionalRemove(const std::string& type, const QueryParams& params,
                          const Request& request) const {
    store::SearchQuery checked;
    if (auto f = CriteriaSearch(type, params, "a conditional delete", checked)) {
      return detail::FailureResponse(*f);
    }
    std::optional<std::int64_t> if_match;
    if (auto f = IfMatchHeader(request, if_match)) return detail::FailureResponse(*f);
    struct State {
      std::string type, criteria;
      std::optional<std::int64_t> if_match;
      WriteResult written;
    };
    auto st = std::make_shared<State>(State{type, request.target, if_match, {}});
    return MakeJob(
        [this, st](store::Session& s) -> std::optional<Failure> {
          st->written = WriteResult{};
          st->written.status = 204;
          auto target = ConditionalTarget(s, st->type, st->criteria, false, {});
          if (auto* f = std::get_if<Failure>(&target)) return *f;
          const std::string& id = std::get<std::string>(target);
          if (id.empty()) return std::nullopt;  // nothing matched: nothing to delete
          return Keep(Delete(s, st->type, id, st->if_match), st->written);
        },
        [st] { return DeleteResponse(st->written); });
  }

  // ---------------------------------------------------------------- patch (decision 0046)

  // A patch document as received: JSON Patch (RFC 6902) or FHIRPath Patch (R4 fhirpatch.html).
  struct PatchDoc {
    bool json_patch = true;
    Json body;
  };

  // The patch format: Content-Type application/json-patch+json is JSON Patch; a FHIR JSON type
  // (application/fhir+json, application/json) carries a Parameters resource, FHIRPath Patch.
  // Without a Content-Type the body decides (an array or a Parameters object). 400 for a body
  // that is neither, 415 for other media types (CheckContentType).
  static std::optional<Failure> ParsePatch(const Request& request, PatchDoc& out) {
    if (request.body.empty()) return Fail(400, "invalid", "the PATCH request has no body");
    detail::JsonError error;
    if (!detail::ParseJson(request.body, out.body, error)) {
      return Fail(400, "invalid",
                  "malformed JSON at byte " + std::to_string(error.offset) + ": " + error.message);
    }
    const std::string_view ct = request.Header("Content-Type");
    if (ct.find("x-www-form-urlencoded") != std::string_view::npos) {
      return Fail(415, "not-supported",
                  "PATCH takes application/json-patch+json or application/fhir+json");
    }
    if (ct.find("json-patch") != std::string_view::npos) {
      out.json_patch = true;
    } else if (!ct.empty()) {
      out.json_patch = false;
    } else {
      out.json_patch = out.body.IsArray();
    }
    if (out.json_patch && !out.body.IsArray()) {
      return Fail(400, "invalid", "a JSON Patch document is an array of operations (RFC 6902 §3)");
    }
    if (!out.json_patch && (!out.body.IsObject() || out.body.Str("resourceType") != "Parameters")) {
      return Fail(400, "invalid",
                  "a FHIRPath Patch is a Parameters resource (R4 fhirpatch.html); JSON Patch "
                  "needs Content-Type application/json-patch+json");
    }
    return std::nullopt;
  }

  // RFC 5789 §2.2 status of a patch that failed: malformed 400, a state the patch assumed but
  // did not find (a `test` that fails, an absent target) 409, a result too large 422.
  static Failure PatchFailure(const detail::PatchError& e, bool json_patch) {
    int status = 400;
    std::string code = "invalid";
    switch (e.kind) {
      case detail::PatchErrorKind::kMalformed: break;
      case detail::PatchErrorKind::kUnsupported: code = "not-supported"; break;
      case detail::PatchErrorKind::kConflict:
        status = 409;
        code = "conflict";
        break;
      case detail::PatchErrorKind::kUnprocessable:
        status = 422;
        code = "processing";
        break;
    }
    Failure f = Fail(status, code,
                     std::string(json_patch ? "JSON Patch" : "FHIRPath Patch") + " operation " +
                         std::to_string(e.operation) + ": " + e.message);
    f.expression = json_patch ? "" : "Parameters.parameter[" + std::to_string(e.operation) + "]";
    return f;
  }

  // The patched current version of type/id, prepared (validated, indexed) inside the write
  // transaction under the resource's lock, so concurrent patches apply one after the other.
  std::variant<Prepared, Failure> PatchCurrent(store::Session& session, const std::string& type,
                                               const std::string& id, const PatchDoc& patch,
                                               std::optional<std::int64_t> if_match,
                                               std::int64_t& version) const {
    auto current = session.LockAndRead(type, id);
    if (!current) return StoreFailure(current.error());
    const std::optional<store::ResourceRow>& cur = *current;
    if (!cur) return Fail(404, "not-found", type + "/" + id + " is not known");
    if (cur->deleted) return Fail(410, "deleted", type + "/" + id + " was deleted");
    if (if_match && cur->version != *if_match) {
      return Fail(412, "conflict",
                  "If-Match names version " + std::to_string(*if_match) +
                      " but the current version is " + std::to_string(cur->version));
    }
    version = cur->version;
    Json resource;
    detail::JsonError error;
    if (!detail::ParseJson(cur->json, resource, error)) {
      return Fail(500, "exception", "the stored resource is not JSON");
    }
    detail::PatchError pe;
    const bool ok = patch.json_patch ? detail::ApplyJsonPatch(resource, patch.body, pe)
                                     : detail::ApplyFhirPathPatch(resource, type, patch.body, pe);
    if (!ok) return PatchFailure(pe, patch.json_patch);
    // The result must still be this resource (RFC 5789 §2.2: a patch that would make the
    // resource invalid is 422).
    if (auto f = CheckResource(resource, type)) {
      f->status = 422;
      f->code = "processing";
      f->diagnostics = "the patched resource: " + f->diagnostics;
      return *f;
    }
    if (resource.Str("id") != id) {
      return Fail(422, "processing", "the patch changes the resource id");
    }
    return PrepareResolved(session, type, id, resource);
  }

  // PATCH [base]/Type/id and PATCH [base]/Type?criteria (R4 http.html "patch"; conditional:
  // no match 404, one patches it, several 412).
  Split Patch(const std::string& type, const std::string& id, const QueryParams* criteria,
              const Request& request) const {
    PatchDoc patch;
    if (auto f = ParsePatch(request, patch)) return detail::FailureResponse(*f);
    if (criteria != nullptr) {
      store::SearchQuery checked;
      if (auto f = CriteriaSearch(type, *criteria, "a conditional patch", checked)) {
        return detail::FailureResponse(*f);
      }
    }
    std::optional<std::int64_t> if_match;
    if (auto f = IfMatchHeader(request, if_match)) return detail::FailureResponse(*f);
    struct State {
      std::string type, id, criteria;
      PatchDoc patch;
      std::optional<std::int64_t> if_match;
      Prefer prefer;
      WriteResult written;
    };
    auto st = std::make_shared<State>();
    st->type = type;
    st->id = id;
    if (criteria != nullptr) st->criteria = request.target;
    st->patch = std::move(patch);
    st->if_match = if_match;
    st->prefer = ParsePrefer(request.Header("Prefer"));
    return MakeJob(
        [this, st](store::Session& s) -> std::optional<Failure> {
          std::string target_id = st->id;
          if (!st->criteria.empty()) {
            auto target = PatchTarget(s, st->type, st->criteria);
            if (auto* f = std::get_if<Failure>(&target)) return *f;
            target_id = std::move(std::get<std::string>(target));
          }
          std::int64_t version = 0;
          auto prepared = PatchCurrent(s, st->type, target_id, st->patch, st->if_match, version);
          if (auto* f = std::get_if<Failure>(&prepared)) return *f;
          return Keep(Put(s, st->type, target_id, std::get<Prepared>(prepared), version, false,
                          store::WriteMethod::kPatch),
                      st->written);
        },
        [this, st] { return WriteResponse(st->written, st->prefer, false); });
  }

  // The id a conditional patch's criteria match, under the criteria lock (as ConditionalTarget).
  std::variant<std::string, Failure> PatchTarget(store::Session& session, const std::string& type,
                                                 std::string_view criteria) const {
    if (auto f = LockCriteria(session, type, criteria)) return *f;
    auto found = Matches(session, type, CriteriaParams(criteria), "a conditional patch");
    if (auto* f = std::get_if<Failure>(&found)) return *f;
    auto& rows = std::get<std::vector<store::ResourceRow>>(found);
    if (rows.empty()) {
      return Fail(404, "not-found", "the criteria of the conditional patch match no resource");
    }
    if (rows.size() > 1) {
      return Fail(412, "multiple-matches",
                  "the criteria of the conditional patch match more than one resource");
    }
    return std::move(rows[0].id);
  }

  Split Create(const std::string& type, const Request& request) const {
    Json resource;
    if (auto f = ParseResource(request.body, type, resource)) return detail::FailureResponse(*f);
    struct State {
      std::string type, id, if_none_exist;
      Json resource;  // a conditional create's, prepared only when it creates
      std::optional<Prepared> prepared;
      Prefer prefer;
      WriteResult written;
    };
    auto st = std::make_shared<State>();
    st->type = type;
    st->id = detail::NewId();
    st->if_none_exist = std::string(request.Header("If-None-Exist"));
    st->prefer = ParsePrefer(request.Header("Prefer"));
    // A plain create is prepared before the write lock; a conditional one only when it creates
    // (a match returns the existing resource whatever the body says).
    // So is one with conditional references (decision 0046): resolved inside the transaction,
    // again on a retry.
    const bool resolve = HasConditionalReference(resource);
    if (st->if_none_exist.empty() && !resolve) {
      auto prepared = Prepare(type, st->id, std::move(resource));
      if (auto* f = std::get_if<Failure>(&prepared)) return detail::FailureResponse(*f);
      st->prepared = std::move(std::get<Prepared>(prepared));
    } else {
      st->resource = std::move(resource);
    }
    return MakeJob(
        [this, st, resolve](store::Session& s) -> std::optional<Failure> {
          if (resolve && st->if_none_exist.empty()) {
            auto prepared = PrepareResolved(s, st->type, st->id, st->resource);
            if (auto* f = std::get_if<Failure>(&prepared)) return *f;
            st->prepared = std::move(std::get<Prepared>(prepared));
          }
          // The criteria are checked inside the write transaction under a lock on the
          // criteria, so two identical conditional creates cannot both create.
          if (!st->if_none_exist.empty()) {
            if (auto f = LockCriteria(s, st->type, st->if_none_exist)) return f;
            auto found = FindExisting(s, st->type, st->if_none_exist);
            if (auto* f = std::get_if<Failure>(&found)) return *f;
            if (auto& existing = std::get<std::optional<store::ResourceRow>>(found); existing) {
              st->written.status = 200;
              st->written.row = std::move(*existing);
              return std::nullopt;
            }
            if (!st->prepared || resolve) {  // a copy: a retry prepares it again
              auto prepared = PrepareResolved(s, st->type, st->id, st->resource);
              if (auto* f = std::get_if<Failure>(&prepared)) return *f;
              st->prepared = std::move(std::get<Prepared>(prepared));
            }
          }
          return Keep(Put(s, st->type, st->id, *st->prepared, std::nullopt, /*fresh=*/true),
                      st->written);
        },
        [this, st] { return WriteResponse(st->written, st->prefer, true); });
  }

  Split Remove(const std::string& type, const std::string& id, const Request& request) const {
    std::optional<std::int64_t> if_match;
    if (auto f = IfMatchHeader(request, if_match)) return detail::FailureResponse(*f);
    auto written = std::make_shared<WriteResult>();
    return MakeJob([this, type, id, if_match, written](
                       store::Session& s) { return Keep(Delete(s, type, id, if_match), *written); },
                   [written] { return DeleteResponse(*written); });
  }

  // ---------------------------------------------------------------- history

  // A history's parameters into `q` (and the echoed ones into `echo`); the failure, if any.
  std::optional<Failure> HistoryParams(const QueryParams& params, store::HistoryQuery& q,
                                       QueryParams& echo,
                                       detail::SubsetSpec* subset = nullptr) const {
    q.count = options.default_count;
    detail::SubsetSpec asked;  // _summary, _elements (decision 0045)
    if (auto f = detail::ParseSubsetParams(params, asked, false)) return f;
    if (subset != nullptr) *subset = asked;
    for (const auto& [k, v] : params) {
      if (k == "_count") {
        int n = 0;
        if (std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc() || n < 0) {
          return Fail(400, "invalid", "_count must be a non-negative integer");
        }
        q.count = std::min(n, options.max_count);
        echo.emplace_back(k, v);
      } else if (k == "_since") {
        auto range = detail::ParseFhirDateRange(v);
        if (!range) return Fail(400, "invalid", "_since must be an instant");
        q.since_us = range->low_us;
        echo.emplace_back(k, v);
      } else if (k == "_cursor") {
        std::int64_t seq = 0;
        if (std::from_chars(v.data(), v.data() + v.size(), seq).ec != std::errc()) {
          return Fail(400, "invalid", "invalid _cursor");
        }
        q.before_seq = seq;
      } else if (k == "_summary" || k == "_elements") {
        echo.emplace_back(k, v);
      } else if (k != "_format" && k != "_pretty") {
        return Fail(400, "not-supported", "history parameter '" + k + "' is not supported");
      }
    }
    return std::nullopt;
  }

  Response History(const std::string& type, const std::string& id,
                   const QueryParams& params) const {
    store::HistoryQuery q;
    q.type = type;
    q.id = id;
    QueryParams echo;
    detail::SubsetSpec subset;
    if (auto f = HistoryParams(params, q, echo, &subset)) return detail::FailureResponse(*f);
    auto session = store.OpenSession();
    if (!session) return detail::FailureResponse(StoreFailure(session.error()));
    if (!id.empty()) {
      auto cur = (*session)->Read(type, id);
      if (!cur) return detail::FailureResponse(StoreFailure(cur.error()));
      if (!*cur)
        return detail::FailureResponse(Fail(404, "not-found", type + "/" + id + " is not known"));
    }
    const int count = q.count;
    q.count = count + 1;
    auto rows = (*session)->History(q);
    if (!rows) return detail::FailureResponse(StoreFailure(rows.error()));
    bool more = static_cast<int>(rows->size()) > count;
    if (more) rows->resize(static_cast<std::size_t>(count));
    std::string self = options.base_url;
    if (!type.empty()) self += "/" + type;
    if (!id.empty()) self += "/" + id;
    self += "/_history";
    std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"history\"";
    out += ",\"link\":[{\"relation\":\"self\",\"url\":";
    detail::AppendJsonString(self + Encode(echo, params, "_cursor"), out);
    out += '}';
    if (more && !rows->empty()) {
      QueryParams next = echo;
      next.emplace_back("_cursor", std::to_string(rows->back().seq));
      out += ",{\"relation\":\"next\",\"url\":";
      detail::AppendJsonString(self + Encode(next, {}, ""), out);
      out += '}';
    }
    out += "],\"entry\":[";
    bool first = true;
    for (const auto& h : *rows) {
      if (!first) out += ',';
      first = false;
      const store::ResourceRow& r = h.row;
      out += "{\"fullUrl\":";
      detail::AppendJsonString(FullUrl(r.type, r.id), out);
      if (!r.deleted) {
        out += ",\"resource\":";
        out += subset.Active() ? detail::Subset(r.json, subset) : r.json;
      }
      // R4 http.html "history": the request that made the version. Its method is stored
      // (schema 10, decision 0043); a version written before is inferred: the first a POST,
      // a deletion a DELETE, others PUT.
      store::WriteMethod m = r.method;
      if (m == store::WriteMethod::kUnknown) {
        m = r.deleted        ? store::WriteMethod::kDelete
            : r.version == 1 ? store::WriteMethod::kPost
                             : store::WriteMethod::kPut;
      }
      const char* method = m == store::WriteMethod::kDelete  ? "DELETE"
                           : m == store::WriteMethod::kPost  ? "POST"
                           : m == store::WriteMethod::kPatch ? "PATCH"
                                                             : "PUT";
      std::string url = m == store::WriteMethod::kPost ? r.type : r.type + "/" + r.id;
      out += ",\"request\":{\"method\":\"";
      out += method;
      out += "\",\"url\":";
      detail::AppendJsonString(url, out);
      out += "},\"response\":{\"status\":\"";
      out += r.deleted ? "204" : (r.version == 1 ? "201" : "200");
      out += "\",\"etag\":";
      detail::AppendJsonString(detail::FormatETag(r.version), out);
      out += ",\"lastModified\":";
      detail::AppendJsonString(detail::FormatInstant(r.last_updated_us), out);
      out += "}}";
    }
    out += "]}";
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.body = std::move(out);
    return resp;
  }

  static std::string Encode(const QueryParams& params, const QueryParams&, std::string_view) {
    std::string out;
    for (const auto& [k, v] : params) {
      out += out.empty() ? '?' : '&';
      out += detail::PercentEncode(k);
      out += '=';
      out += detail::PercentEncode(v);
    }
    return out;
  }

  // ---------------------------------------------------------------- search

  using Codes = std::vector<std::pair<std::string, std::string>>;

  // The one stored resource of `type` (ValueSet, CodeSystem) whose `url` is `url`: nullopt when
  // none is, 400 multiple-matches when several are (a canonical names one resource).
  static std::variant<std::optional<store::ResourceRow>, Failure> StoredByUrl(
      store::Session& session, std::string_view type, std::string_view url) {
    store::SearchQuery q;
    q.type = std::string(type);
    q.count = 2;
    store::Predicate p;
    p.kind = store::Predicate::Kind::kToken;  // `url` is a uri parameter, indexed as a token
    p.param = "url";
    p.system = std::string();
    p.value = std::string(url);
    q.where.push_back({std::move(p)});
    auto rows = session.Search(q);
    if (!rows) return StoreFailure(rows.error());
    if (rows->size() > 1) {
      return Fail(400, "multiple-matches",
                  "several stored " + std::string(type) + "s have this url");
    }
    if (rows->empty()) return std::optional<store::ResourceRow>();
    return std::optional<store::ResourceRow>(std::move((*rows)[0]));
  }

  // The codes of a ValueSet stored here (R4 search.html "in": "the search parameter value is a
  // reference to a ValueSet resource" or its canonical url; decision 0043 §3), read on a session
  // of its own: `ValueSet/id`, or the one ValueSet whose `url` is `ref` (several: 400). R4
  // valueset.html "compose": each compose.include of a system with explicit concepts gives
  // them; one without concepts includes the whole code system, served when the server's
  // terminology knows it (its implicit value set, ValueSet/$expand's); compose.exclude of
  // explicit concepts removes them. A filter or an included valueSet is 400 not-supported. A
  // ValueSet without compose gives its expansion.contains codes. More than `max` codes: the
  // list is returned as it is when it passes `max` (the caller refuses it).
  std::variant<std::optional<Codes>, Failure> StoredValueSet(std::string_view ref,
                                                             std::size_t max) const {
    auto session = store.OpenSession();
    if (!session) return StoreFailure(session.error());
    std::optional<store::ResourceRow> row;
    if (ref.starts_with("ValueSet/")) {
      auto read = (*session)->Read("ValueSet", ref.substr(9));
      if (!read) return StoreFailure(read.error());
      if (*read && !(*read)->deleted) row = std::move(**read);
    } else {
      auto found = StoredByUrl(**session, "ValueSet", ref);
      if (auto* f = std::get_if<Failure>(&found)) return std::move(*f);
      row = std::move(std::get<std::optional<store::ResourceRow>>(found));
    }
    if (!row) return std::optional<Codes>();
    Json vs;
    detail::JsonError error;
    if (!detail::ParseJson(row->json, vs, error)) {
      return Fail(500, "exception", "the stored ValueSet is not JSON");
    }
    const std::string name = "ValueSet/" + row->id;
    Codes codes;
    const Json* compose = vs.Find("compose");
    if (compose != nullptr && compose->IsObject()) {
      const Json* includes = compose->Find("include");
      if (includes == nullptr || !includes->IsArray()) {
        return Fail(400, "invalid", name + " has no compose.include");
      }
      for (std::size_t i = 0; i < includes->Items().size() && codes.size() <= max; ++i) {
        const Json& inc = includes->Items()[i];
        const std::string where = name + " compose.include[" + std::to_string(i) + "]";
        if (inc.Find("filter") != nullptr || inc.Find("valueSet") != nullptr) {
          return Fail(400, "not-supported",
                      where + ": filters and included value sets are not expanded here");
        }
        const std::string system(inc.Str("system"));
        if (system.empty()) return Fail(400, "invalid", where + " has no system");
        if (const Json* concepts = inc.Find("concept"); concepts != nullptr) {
          if (!concepts->IsArray()) return Fail(400, "invalid", where + ".concept is no list");
          for (const Json& c : concepts->Items()) codes.emplace_back(system, c.Str("code"));
          continue;
        }
        // The whole code system (R4: "all codes in the code system"), when the terminology has it.
        std::optional<Codes> all;
        if (options.value_set_codes) all = options.value_set_codes(system, max);
        if (!all) {
          return Fail(400, "not-found",
                      where +
                          " includes a whole code system the server's terminology does not "
                          "know");
        }
        codes.insert(codes.end(), all->begin(), all->end());
      }
      if (const Json* excludes = compose->Find("exclude"); excludes != nullptr) {
        if (!excludes->IsArray()) return Fail(400, "invalid", name + " compose.exclude is no list");
        for (const Json& exc : excludes->Items()) {
          const Json* concepts = exc.Find("concept");
          if (concepts == nullptr || !concepts->IsArray() || exc.Find("filter") != nullptr ||
              exc.Find("valueSet") != nullptr) {
            return Fail(400, "not-supported",
                        name + " compose.exclude: only explicit concepts are expanded here");
          }
          const std::string_view system = exc.Str("system");
          for (const Json& c : concepts->Items()) {
            std::erase(codes, std::pair<std::string, std::string>(system, c.Str("code")));
          }
        }
      }
    } else if (const Json* expansion = vs.Find("expansion"); expansion != nullptr) {
      // expansion.contains, nested contains included (R4 ValueSet.expansion.contains.contains).
      std::vector<const Json*> todo = {expansion};
      while (!todo.empty() && codes.size() <= max) {
        const Json* node = todo.back();
        todo.pop_back();
        const Json* contains = node->Find("contains");
        if (contains == nullptr || !contains->IsArray()) continue;
        for (const Json& c : contains->Items()) {
          if (!c.Str("code").empty()) codes.emplace_back(c.Str("system"), c.Str("code"));
          todo.push_back(&c);
        }
      }
    } else {
      return Fail(400, "invalid", name + " has neither compose nor expansion");
    }
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    return std::optional<Codes>(std::move(codes));
  }

  // Token :below / :above by a CodeSystem stored here (R4 search.html "above"/"below";
  // codesystem.html: concept.concept nests the concepts a concept subsumes when
  // hierarchyMeaning is is-a, the meaning taken when it is absent; decision 0056 §4).
  // (The recursion is bounded by the JSON reader's nesting limit, detail::ParseJson.)
  static void CodesUnder(const Json& concepts, std::size_t max, std::vector<std::string>& out) {
    if (!concepts.IsArray()) return;
    for (const Json& c : concepts.Items()) {
      if (out.size() > max) return;
      if (!c.IsObject()) continue;
      if (!c.Str("code").empty()) out.emplace_back(c.Str("code"));
      if (const Json* sub = c.Find("concept"); sub != nullptr) CodesUnder(*sub, max, out);
    }
  }
  // Finds `code` in the concept tree: `path` holds the codes of the concepts above the list.
  static void Subsumption(const Json& concepts, std::string_view code, bool below, std::size_t max,
                          std::vector<std::string>& path, std::vector<std::string>& out,
                          bool& found) {
    if (!concepts.IsArray()) return;
    for (const Json& c : concepts.Items()) {
      if (!c.IsObject() || out.size() > max) continue;
      const Json* sub = c.Find("concept");
      if (c.Str("code") == code) {
        found = true;
        out.emplace_back(code);
        if (!below) {
          out.insert(out.end(), path.begin(), path.end());
        } else if (sub != nullptr) {
          CodesUnder(*sub, max, out);
        }
      }
      if (sub != nullptr) {
        path.emplace_back(c.Str("code"));
        Subsumption(*sub, code, below, max, path, out, found);
        path.pop_back();
      }
    }
  }

  std::variant<std::optional<std::vector<std::string>>, Failure> StoredCodeSystem(
      std::string_view system, std::string_view code, bool below, std::size_t max) const {
    using CodeList = std::vector<std::string>;
    auto session = store.OpenSession();
    if (!session) return StoreFailure(session.error());
    auto stored = StoredByUrl(**session, "CodeSystem", system);
    if (auto* f = std::get_if<Failure>(&stored)) return std::move(*f);
    if (!std::get<std::optional<store::ResourceRow>>(stored)) return std::optional<CodeList>();
    const store::ResourceRow& row = *std::get<std::optional<store::ResourceRow>>(stored);
    Json cs;
    detail::JsonError error;
    if (!detail::ParseJson(row.json, cs, error)) {
      return Fail(500, "exception", "the stored CodeSystem is not JSON");
    }
    const std::string name = "CodeSystem/" + row.id;
    const std::string_view meaning = cs.Str("hierarchyMeaning");
    if (!meaning.empty() && meaning != "is-a") {
      return Fail(400, "not-supported",
                  name + " has hierarchyMeaning " + std::string(meaning) +
                      ": only an is-a hierarchy is subsumption");
    }
    CodeList codes;
    bool found = false;
    if (const Json* concepts = cs.Find("concept"); concepts != nullptr) {
      std::vector<std::string> path;
      Subsumption(*concepts, code, below, max, path, codes, found);
    }
    if (!found) return Fail(400, "not-found", "the code is not a concept of " + name);
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    return std::optional<CodeList>(std::move(codes));
  }

  // References of `rows` through `param` (evaluated on the stored JSON) for _include.
  std::optional<Failure> Includes(store::Session& session, const detail::IncludeSpec& inc,
                                  const std::vector<store::ResourceRow>& rows,
                                  std::set<std::string>& seen,
                                  std::vector<store::ResourceRow>& out) const {
    const detail::CompiledParam* cp =
        detail::SearchParamRegistry::Instance().Find(inc.source_type, inc.param);
    if (cp == nullptr) return std::nullopt;
    std::vector<const Json*> values;
    for (const auto& row : rows) {
      if (row.type != inc.source_type) continue;  // (:iterate: rows of several types)
      Json resource;
      detail::JsonError error;
      if (!detail::ParseJson(row.json, resource, error)) continue;
      values.clear();
      for (const auto& path : cp->paths) detail::EvaluateFhirPath(resource, path, values);
      for (const Json* v : values) {
        std::string_view ref = v->Str("reference");
        std::string_view type = detail::ReferenceTargetType(ref);
        if (type.empty() || (!inc.target_type.empty() && type != inc.target_type)) continue;
        std::string id(ref.substr(ref.rfind('/') + 1));
        std::string key = std::string(type) + "/" + id;
        if (!seen.insert(key).second) continue;
        auto target = session.Read(type, id);
        if (!target) return StoreFailure(target.error());
        if (*target && !(*target)->deleted) out.push_back(std::move(**target));
      }
    }
    return std::nullopt;
  }

  // Resources of inc.source_type whose inc.param references one of `rows`: at most max_count
  // per call (the first in lastUpdated order); `cut` is set when there were more.
  std::optional<Failure> RevIncludes(store::Session& session, const detail::IncludeSpec& inc,
                                     const std::vector<store::ResourceRow>& rows,
                                     std::set<std::string>& seen,
                                     std::vector<store::ResourceRow>& out, bool& cut) const {
    if (rows.empty()) return std::nullopt;
    store::SearchQuery q;
    q.type = inc.source_type;
    q.count = options.max_count + 1;  // one more tells that some were left out
    std::vector<store::Predicate> any;
    for (const auto& row : rows) {
      if (!inc.target_type.empty() && row.type != inc.target_type) continue;
      store::Predicate p;
      p.kind = store::Predicate::Kind::kReference;
      p.param = inc.param;
      p.target_type = row.type;
      p.value = row.id;
      any.push_back(std::move(p));
    }
    if (any.empty()) return std::nullopt;
    q.where.push_back(std::move(any));
    auto found = session.Search(q);
    if (!found) return StoreFailure(found.error());
    if (found->size() > static_cast<std::size_t>(options.max_count)) {
      found->resize(static_cast<std::size_t>(options.max_count));
      cut = true;
    }
    for (auto& r : *found) {
      if (seen.insert(r.type + "/" + r.id).second) out.push_back(std::move(r));
    }
    return std::nullopt;
  }

  // The answer to _summary=count (R4 search.html "Summary"): a searchset Bundle with the total
  // and its self link, no entries. Search and Patient/$everything.
  static Response CountBundle(std::int64_t total, const std::string& self_url) {
    std::string out =
        "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":" + std::to_string(total) +
        ",\"link\":[{\"relation\":\"self\",\"url\":";
    detail::AppendJsonString(self_url, out);
    out += "}]}";
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.body = std::move(out);
    return resp;
  }

  Response Search(const std::string& type, const QueryParams& params) const {
    detail::SearchSpec spec;
    detail::SearchContext ctx{options.base_url,   options.default_count,
                              options.max_count,  &options.value_set_codes,
                              &stored_value_sets, &stored_code_systems};
    if (auto f = detail::BuildSearch(type, params, ctx, spec)) return detail::FailureResponse(*f);
    auto session = store.OpenSession();
    if (!session) return detail::FailureResponse(StoreFailure(session.error()));
    std::string self = options.base_url + "/" + type;
    if (spec.summary_count) {
      auto n = (*session)->Count(spec.query);
      if (!n) return detail::FailureResponse(StoreFailure(n.error()));
      return CountBundle(*n, self + Encode(spec.echo, {}, ""));
    }
    const int count = spec.query.count;
    spec.query.count = count + 1;  // one more row tells whether a next page exists
    auto rows = (*session)->Search(spec.query);
    if (!rows) return detail::FailureResponse(StoreFailure(rows.error()));
    const bool more = static_cast<int>(rows->size()) > count;
    if (more) rows->resize(static_cast<std::size_t>(count));
    std::optional<std::int64_t> total;
    const bool first_page = !spec.query.after && !spec.query.sort_after && spec.query.offset == 0;
    if (!more && first_page) {
      total = static_cast<std::int64_t>(rows->size());
    } else if (spec.total_accurate) {
      spec.query.count = count;
      auto n = (*session)->Count(spec.query);
      if (!n) return detail::FailureResponse(StoreFailure(n.error()));
      total = *n;
    }
    std::vector<store::ResourceRow> included;
    std::set<std::string> seen;
    for (const auto& r : *rows) seen.insert(r.type + "/" + r.id);
    // R4 search.html#include: every include of the matches, then the :iterate ones of what the
    // last round added, until a round adds nothing; at most kIncludeRounds rounds (a server may
    // bound the iteration; a cycle of references ends by itself, as nothing is added twice).
    // When the last round still added something, one more round is run and thrown away: if it
    // finds anything, the Bundle says the iteration was stopped (decision 0056: no silent cut).
    constexpr int kIncludeRounds = 4;
    std::vector<std::string> cut_revincludes;  // "Type:param" of each _revinclude that was cut
    bool iteration_cut = false;
    std::size_t from = 0;  // the last round's resources: (*rows) first, then included[from..]
    for (int round = 0; round <= kIncludeRounds; ++round) {
      std::vector<store::ResourceRow> frontier;
      if (round > 0) {
        frontier.assign(included.begin() + static_cast<std::ptrdiff_t>(from), included.end());
        if (frontier.empty()) break;
      }
      const bool probe = round == kIncludeRounds;  // not served: only whether it finds any
      std::vector<store::ResourceRow> beyond;
      std::vector<store::ResourceRow>& into = probe ? beyond : included;
      const std::vector<store::ResourceRow>& sources = round == 0 ? *rows : frontier;
      from = included.size();
      for (const auto& inc : spec.includes) {
        if (round > 0 && !inc.iterate) continue;
        if (auto f = Includes(**session, inc, sources, seen, into)) {
          return detail::FailureResponse(*f);
        }
      }
      for (const auto& inc : spec.revincludes) {
        if (round > 0 && !inc.iterate) continue;
        bool cut = false;
        if (auto f = RevIncludes(**session, inc, sources, seen, into, cut)) {
          return detail::FailureResponse(*f);
        }
        std::string name = inc.source_type + ":" + inc.param;
        if (cut && !probe &&
            std::find(cut_revincludes.begin(), cut_revincludes.end(), name) ==
                cut_revincludes.end()) {
          cut_revincludes.push_back(std::move(name));
        }
      }
      if (probe && !beyond.empty()) iteration_cut = true;
    }
    std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"";
    if (total) out += ",\"total\":" + std::to_string(*total);
    out += ",\"link\":[{\"relation\":\"self\",\"url\":";
    QueryParams self_params = spec.echo;
    for (const auto& [k, v] : params) {
      if (k == "_cursor" || k == "_offset") self_params.emplace_back(k, v);
    }
    detail::AppendJsonString(self + Encode(self_params, {}, ""), out);
    out += '}';
    if (more && !rows->empty()) {
      QueryParams next = spec.echo;
      if (spec.query.sort.empty()) {
        // Keyset cursor: stable while other resources are written (docs/gateway.md, paging).
        next.emplace_back("_cursor",
                          std::to_string(rows->back().last_updated_us) + "-" + rows->back().id);
      } else {
        // Keyset over the sort keys and the id (decision 0039): was `_offset`, which repeats or
        // skips rows when resources before the offset are written between pages.
        next.emplace_back("_cursor", detail::SortCursorText(store::SortCursor{
                                         rows->back().sort_values, rows->back().id}));
      }
      out += ",{\"relation\":\"next\",\"url\":";
      detail::AppendJsonString(self + Encode(next, {}, ""), out);
      out += '}';
    }
    out += "],\"entry\":[";
    bool first = true;
    auto emit = [&](const store::ResourceRow& r, std::string_view mode) {
      if (!first) out += ',';
      first = false;
      if (!spec.subset.Active()) {
        AppendEntryResource(out, FullUrl(r.type, r.id), r.json, mode);
      } else {
        AppendEntryResource(out, FullUrl(r.type, r.id), detail::Subset(r.json, spec.subset), mode);
      }
    };
    for (const auto& r : *rows) emit(r, "match");
    for (const auto& r : included) emit(r, "include");
    // R4 search.html#errors: "the search process MAY include an OperationOutcome in the search
    // set that contains additional hints and warnings", as an entry with search mode "outcome".
    // What the includes left out is said there (decision 0056), never cut silently.
    std::vector<std::string> warnings;
    if (!cut_revincludes.empty()) {
      // A _revinclude brings at most max_count resources per round (as other servers bound
      // included resources per page); R4 defines no paging of included resources.
      std::string text = "_revinclude ";
      for (std::size_t i = 0; i < cut_revincludes.size(); ++i) {
        text += (i == 0 ? "" : ", ") + cut_revincludes[i];
      }
      text += ": more than " + std::to_string(options.max_count) +
              " resources reference this page's resources; only the first " +
              std::to_string(options.max_count) +
              " (by lastUpdated) are included. A smaller _count, or a search by that reference "
              "parameter, gives them all.";
      warnings.push_back(std::move(text));
    }
    if (iteration_cut) {
      warnings.push_back(":iterate stopped after " + std::to_string(kIncludeRounds) +
                         " rounds; the resources included in the last round reference, or are "
                         "referenced by, resources that are not included. Search again from "
                         "them to follow further.");
    }
    if (!warnings.empty()) {
      if (!first) out += ',';
      first = false;
      out += "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[";
      for (std::size_t i = 0; i < warnings.size(); ++i) {
        if (i > 0) out += ',';
        out += "{\"severity\":\"warning\",\"code\":\"incomplete\",\"diagnostics\":";
        detail::AppendJsonString(warnings[i], out);
        out += '}';
      }
      out += "]},\"search\":{\"mode\":\"outcome\"}}";
    }
    out += "]}";
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.body = std::move(out);
    return resp;
  }

  // Patient/$everything (R4 Patient operation "everything"): the patient, its compartment and
  // the resources these reference, filtered and paged as detail::BuildEverything says
  // (docs/gateway.md, "Patient/$everything").
  Response Everything(const std::string& id, const QueryParams& params) const {
    detail::EverythingSpec spec;
    detail::SearchContext ctx{options.base_url, options.default_count, options.max_count,
                              &options.value_set_codes};
    if (auto f = detail::BuildEverything(id, params, ctx, spec)) {
      return detail::FailureResponse(*f);
    }
    auto session = store.OpenSession();
    if (!session) return detail::FailureResponse(StoreFailure(session.error()));
    auto patient = (*session)->Read("Patient", id);
    if (!patient) return detail::FailureResponse(StoreFailure(patient.error()));
    if (!*patient || (*patient)->deleted) {
      return detail::FailureResponse(Fail(404, "not-found", "Patient/" + id + " is not known"));
    }
    const bool admitted =
        spec.patient_admitted && (!spec.since_us || (*patient)->last_updated_us >= *spec.since_us);
    const std::string self = options.base_url + "/Patient/" + id + "/$everything";
    if (spec.summary_count) {
      // R4 search.html "Summary": count = the total of the three parts, no entries.
      std::int64_t total = admitted ? 1 : 0;
      if (spec.with_compartment) {
        spec.query.after.reset();
        auto n = (*session)->Count(spec.query);
        if (!n) return detail::FailureResponse(StoreFailure(n.error()));
        total += *n;
      }
      spec.referenced.after.reset();
      auto n = (*session)->CountReferenced(spec.referenced);
      if (!n) return detail::FailureResponse(StoreFailure(n.error()));
      total += *n;
      return CountBundle(total, self + Encode(spec.echo, {}, ""));
    }
    const int count = spec.query.count;
    const bool patient_here = admitted && spec.first_page && count > 0;
    const int want = count - (patient_here ? 1 : 0);  // rows of the two parts on this page
    // The compartment part (unless the cursor is past it), then, when it ends on this page, the
    // referenced part; one more row than wanted tells whether a next page exists.
    std::vector<store::ResourceRow> rows;
    std::size_t compartment_rows = 0;
    bool more = false;
    if (spec.with_compartment && !spec.in_referenced) {
      spec.query.count = want + 1;
      auto found = (*session)->Search(spec.query);
      if (!found) return detail::FailureResponse(StoreFailure(found.error()));
      rows = std::move(*found);
      more = static_cast<int>(rows.size()) > want;
      if (more) rows.resize(static_cast<std::size_t>(want));
      compartment_rows = rows.size();
    }
    if (!more) {
      const int left = want - static_cast<int>(rows.size());
      spec.referenced.count = left + 1;
      auto found = (*session)->Referenced(spec.referenced);
      if (!found) return detail::FailureResponse(StoreFailure(found.error()));
      more = static_cast<int>(found->size()) > left;
      if (more) found->resize(static_cast<std::size_t>(left));
      for (auto& r : *found) rows.push_back(std::move(r));
    }
    std::int64_t total = static_cast<std::int64_t>(rows.size()) + (admitted ? 1 : 0);
    if (more || !spec.first_page) {
      total = admitted ? 1 : 0;
      if (spec.with_compartment) {
        store::SearchQuery all = spec.query;
        all.after.reset();
        auto n = (*session)->Count(all);
        if (!n) return detail::FailureResponse(StoreFailure(n.error()));
        total += *n;
      }
      auto n = (*session)->CountReferenced(spec.referenced);
      if (!n) return detail::FailureResponse(StoreFailure(n.error()));
      total += *n;
    }
    std::string out =
        "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":" + std::to_string(total) +
        ",\"link\":[{\"relation\":\"self\",\"url\":";
    QueryParams self_params = spec.echo;
    for (const auto& [k, v] : params) {
      if (k == "_cursor") self_params.emplace_back(k, v);
    }
    detail::AppendJsonString(self + Encode(self_params, {}, ""), out);
    out += '}';
    if (more && count > 0) {
      QueryParams next = spec.echo;
      if (rows.empty()) {
        next.emplace_back("_cursor", "patient");  // this page held the Patient alone
      } else if (rows.size() > compartment_rows) {
        const store::ResourceRow& last = rows.back();
        next.emplace_back("_cursor", "ref_" + last.type + "_" + last.id);
      } else {
        const store::ResourceRow& last = rows.back();
        next.emplace_back("_cursor",
                          std::to_string(last.last_updated_us) + "_" + last.type + "_" + last.id);
      }
      out += ",{\"relation\":\"next\",\"url\":";
      detail::AppendJsonString(self + Encode(next, {}, ""), out);
      out += '}';
    }
    out += "],\"entry\":[";
    bool first = true;
    auto emit = [&](const store::ResourceRow& r, std::string_view mode) {
      if (!first) out += ',';
      first = false;
      // _summary / _elements (R4 search.html §3.1.1.5.8-9): each entry subsetted, SUBSETTED.
      if (!spec.subset.Active()) {
        AppendEntryResource(out, FullUrl(r.type, r.id), r.json, mode);
      } else {
        AppendEntryResource(out, FullUrl(r.type, r.id), detail::Subset(r.json, spec.subset), mode);
      }
    };
    if (patient_here) emit(**patient, "match");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      // R4 search.html: "include" for what is there because something else references it.
      emit(rows[i], i < compartment_rows ? "match" : "include");
    }
    out += "]}";
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.body = std::move(out);
    return resp;
  }

  // POST Patient/{id}/$everything (R4 operations.html, "Executing an Operation"): the IN
  // parameters in a Parameters resource, or as a form (application/x-www-form-urlencoded),
  // added to those of the URL. Each Parameters parameter needs the value type of the R4
  // OperationDefinition (start/end date, _since instant, _type code, _count integer; a
  // dateTime, string or other integer type is taken as well); anything else is 400.
  static std::optional<Failure> EverythingBody(const Request& request, QueryParams& params) {
    std::string_view ct = request.Header("Content-Type");
    if (ct.find("application/x-www-form-urlencoded") != std::string_view::npos) {
      for (auto& p : detail::ParseQuery(request.body)) params.push_back(std::move(p));
      return std::nullopt;
    }
    if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
    if (!ct.empty() && ct.find("json") == std::string_view::npos) {
      return Fail(415, "not-supported",
                  "POST $everything takes a Parameters resource (JSON) or a form body");
    }
    Json body;
    detail::JsonError error;
    if (!detail::ParseJson(request.body, body, error) || !body.IsObject() ||
        body.Str("resourceType") != "Parameters") {
      return Fail(400, "invalid", "the body must be a Parameters resource");
    }
    static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
        {"start", "valueDate"},         {"start", "valueDateTime"},     {"end", "valueDate"},
        {"end", "valueDateTime"},       {"_since", "valueInstant"},     {"_since", "valueDateTime"},
        {"_type", "valueCode"},         {"_type", "valueString"},       {"_count", "valueInteger"},
        {"_count", "valuePositiveInt"}, {"_count", "valueUnsignedInt"}, {"_summary", "valueCode"},
        {"_summary", "valueString"},    {"_elements", "valueString"},
    };
    const Json* list = body.Find("parameter");
    if (list == nullptr) return std::nullopt;
    if (!list->IsArray()) return Fail(400, "invalid", "Parameters.parameter must be an array");
    for (const Json& p : list->Items()) {
      const std::string name(p.IsObject() ? p.Str("name") : std::string_view());
      const Json* value = nullptr;
      std::string_view value_type;
      bool other = false;
      if (p.IsObject()) {
        for (const auto& [k, v] : p.Members()) {
          if (k.starts_with("value") && value == nullptr) {
            value = &v;
            value_type = k;
          } else if (k != "name" && k != "id" && k != "extension") {
            other = true;  // a second value, a resource, parts
          }
        }
      }
      const bool known = std::any_of(std::begin(kTypes), std::end(kTypes), [&](const auto& t) {
        return t.first == name && t.second == value_type;
      });
      const bool number = name == "_count";  // JSON numbers; the others are strings
      if (!known || other || value == nullptr ||
          (number ? !value->IsNumber() : !value->IsString())) {
        return Fail(400, "invalid",
                    name.empty() ? std::string("a $everything parameter needs a name and a value")
                                 : "$everything parameter '" + name +
                                       "' needs one value of its R4 type (start/end: date, "
                                       "_since: instant, _type: code, _count: integer, "
                                       "_summary: code, _elements: string)");
      }
      params.emplace_back(name, value->Text());
    }
    return std::nullopt;
  }

  // ---------------------------------------------------------------- batch / transaction

  struct Entry {
    std::size_t index = 0;
    std::string method;
    std::string url;     // as given
    std::string target;  // the GET request it stands for: "/fhir/" + url relative to the base
    std::string type;
    std::string id;
    QueryParams query;
    std::string full_url;
    std::string if_match;
    std::string if_none_exist;
    Json resource;
    bool has_resource = false;
    std::optional<Prepared> prepared;  // set by PrepareEntry before the write transaction
    // PrepareEntry's failure (`resource` was moved into it): a batch run again after a store
    // error (commit queue) answers it again instead of preparing what is left of the resource.
    std::optional<Failure> prepare_failed;
    bool failed = false;   // batch entry rejected while parsing
    std::string response;  // rendered response entry
    // A write done by RunEntry, rendered into `response` after the commit (outside the lock).
    std::optional<WriteResult> written;
    // PUT/DELETE Type?criteria (R4 http.html 3.1.0.4.3, 3.1.0.7.1): `id` is found inside the
    // write transaction (ConditionalTarget; empty: a delete that matched nothing).
    bool conditional_target = false;
    // The resource holds conditional references (`reference` = "Type?criteria"), resolved inside
    // the write transaction, so it is prepared there (ResolveConditionalReferences).
    bool conditional_refs = false;
    // A batch entry's resource as sent (after fullUrl rewriting), when it is prepared inside the
    // write transaction from what the store holds: a run again (commit queue) starts from it.
    std::optional<Json> original;
    // A transaction's GET entry (decision 0030): the point read the commit thread does after
    // the writes, so that a GET of what the transaction leaves absent fails the transaction;
    // the GET itself is answered after the commit. Set by PrecheckGet.
    enum class GetCheck {
      kNone,     // a search, a system or type history, an operation: fails on no state
      kCurrent,  // read: 404 when unknown, 410 when deleted
      kKnown,    // instance history: 404 when unknown
      kVersion,  // vread: 404 when the version is unknown, 410 when it is a deletion
      kLive,     // Patient/$everything: 404 when unknown or deleted
    };
    GetCheck get_check = GetCheck::kNone;
    std::int64_t get_version = 0;
    // A PATCH entry's patch (decision 0046): a Binary's JSON Patch or a Parameters' FHIRPath
    // Patch, applied by RunEntry to the version the transaction finds.
    std::optional<PatchDoc> patch;
  };

  static int MethodOrder(const std::string& m) {
    if (m == "DELETE") return 0;
    if (m == "POST") return 1;
    if (m == "PUT" || m == "PATCH") return 2;  // R4: "PUT or PATCH"
    return 3;
  }

  // The narrative's links to entries (R4 http.html, transaction processing rules: "<a href=""
  // & <img src="" in the narrative"): each href/src attribute value that is an entry's fullUrl
  // becomes the entry's Type/id. One scan of the div, whatever the number of entries.
  static std::string RewriteNarrativeLinks(std::string_view div,
                                           const std::map<std::string, std::string>& ids) {
    std::string out;
    std::size_t done = 0;  // div[0, done) is in `out`
    std::size_t at = 0;
    while ((at = div.find('=', at)) != std::string_view::npos) {
      const std::size_t eq = at++;
      std::size_t name_end = eq;
      while (name_end > 0 && (div[name_end - 1] == ' ' || div[name_end - 1] == '\t')) --name_end;
      std::size_t name_start = name_end;
      while (name_start > 0 && std::isalpha(static_cast<unsigned char>(div[name_start - 1]))) {
        --name_start;
      }
      const std::string_view name = div.substr(name_start, name_end - name_start);
      if (name != "href" && name != "src") continue;
      std::size_t open = eq + 1;
      while (open < div.size() && (div[open] == ' ' || div[open] == '\t')) ++open;
      if (open >= div.size() || (div[open] != '"' && div[open] != '\'')) continue;
      const std::size_t close = div.find(div[open], open + 1);
      if (close == std::string_view::npos) break;
      auto it = ids.find(std::string(div.substr(open + 1, close - open - 1)));
      if (it != ids.end()) {
        out.append(div.substr(done, open + 1 - done));
        out += it->second;
        done = close;
      }
      at = close + 1;
    }
    if (done == 0) return std::string();  // nothing rewritten
    out.append(div.substr(done));
    return out;
  }

  // Entry fullUrls -> Type/id in a resource about to be written (R4 http.html, transaction
  // processing rules: "Servers SHALL replace all matching links in the bundle, whether they are
  // found in the resource ids, resource references, elements of type uri, url, oid, uuid, and
  // <a href="" & <img src="" in the narrative"). Rewritten: every `reference`, every `url` that
  // links (in R4 an element named url is always of type uri or url: Attachment.url pointing at a
  // Binary entry, ...), the narrative's href/src, and (decision 0046) every other element whose
  // R4 type is uri, url, oid or uuid (Identifier.system, Coding.system, an extension's valueUri,
  // ...; canonical is a type of its own and is not rewritten). A `url` that is a canonical
  // identity is not a link and stays (R4 requires it absolute): a resource's own (ValueSet.url;
  // also of a contained resource) and an extension's. The element definitions are looked up
  // only for a string equal to an entry's fullUrl (rare), from the member names leading to it.
  struct RewriteScope {
    std::string_view resource_type;       // of the innermost resource holding the node
    std::vector<std::string_view> names;  // member names from that resource to the node
  };

  // Whether the element `scope.names` + `name` leads to has R4 type uri, url, oid or uuid.
  static bool IsUriElement(const RewriteScope& scope, std::string_view name) {
    const fhir::r4::TypeInfo* t = fhir::r4::FindType(scope.resource_type);
    for (std::string_view step : scope.names) {
      if (t == nullptr) return false;
      t = t->MatchElement(step).type;
    }
    if (t == nullptr) return false;
    const fhir::r4::ElementMatch m = t->MatchElement(name);
    if (m.type == nullptr || m.system_type) return false;
    const std::string_view code = m.type->name;
    return code == "uri" || code == "url" || code == "oid" || code == "uuid";
  }

  static void RewriteReferences(Json& node, const std::map<std::string, std::string>& ids) {
    RewriteScope scope;
    RewriteReferences(node, ids, false, scope);
  }

  // `url_links`: whether the `url` members of `node` (an object, or an array's objects) are
  // links.
  static void RewriteReferences(Json& node, const std::map<std::string, std::string>& ids,
                                bool url_links, RewriteScope& scope) {
    if (node.IsObject()) {
      if (std::string_view rt = node.Str("resourceType"); !rt.empty()) {
        RewriteScope inner{rt, {}};  // a resource (the root or a contained one)
        RewriteMembers(node, ids, url_links, inner);
      } else {
        RewriteMembers(node, ids, url_links, scope);
      }
    } else if (node.IsArray()) {
      for (auto& v : node.Items()) RewriteReferences(v, ids, url_links, scope);
    }
  }

  static void RewriteMembers(Json& node, const std::map<std::string, std::string>& ids,
                             bool url_links, RewriteScope& scope) {
    for (auto& [name, v] : node.Members()) {
      // As views: the length decides most comparisons without a call to memcmp.
      const std::string_view k = name;
      if ((k == std::string_view("reference") || (url_links && k == std::string_view("url"))) &&
          v.IsString()) {
        auto it = ids.find(v.Text());
        if (it != ids.end()) v = Json::String(it->second);
      } else if (k == std::string_view("div") && v.IsString()) {
        if (std::string div = RewriteNarrativeLinks(v.Text(), ids); !div.empty()) {
          v = Json::String(std::move(div));
        }
      } else if (v.IsString()) {
        if (k == std::string_view("url")) continue;  // a canonical identity (above)
        auto it = ids.find(v.Text());
        if (it != ids.end() && IsUriElement(scope, k)) v = Json::String(it->second);
      } else if (v.IsArray() && !v.Items().empty() && v.Items()[0].IsString()) {
        bool uri = false, known = false;  // the element type, looked up at the first hit
        for (Json& item : v.Items()) {
          if (!item.IsString()) continue;
          auto it = ids.find(item.Text());
          if (it == ids.end()) continue;
          if (!known) {
            uri = IsUriElement(scope, k);
            known = true;
          }
          if (uri) item = Json::String(it->second);
        }
      } else if (v.IsObject() || v.IsArray()) {
        // Extensions and contained resources carry canonical urls; everything else links.
        scope.names.push_back(k);
        RewriteReferences(v, ids,
                          k != std::string_view("extension") &&
                              k != std::string_view("modifierExtension") &&
                              k != std::string_view("contained"),
                          scope);
        scope.names.pop_back();
      }
    }
  }

  // A conditional reference (R4 http.html, transaction processing rules, "Conditional
  // References"): a search URI relative to the base that starts with a resource type,
  // "Patient?identifier=sys|val".
  static bool IsConditionalReference(std::string_view ref) {
    const std::size_t qm = ref.find('?');
    return qm != std::string_view::npos && qm > 0 && detail::IsResourceTypeName(ref.substr(0, qm));
  }

  static bool HasConditionalReference(const Json& node) {
    if (node.IsObject()) {
      for (const auto& [name, v] : node.Members()) {
        if (std::string_view(name) == "reference" && v.IsString()) {
          if (IsConditionalReference(v.Text())) return true;
        } else if (HasConditionalReference(v)) {
          return true;
        }
      }
    } else if (node.IsArray()) {
      for (const auto& v : node.Items()) {
        if (HasConditionalReference(v)) return true;
      }
    }
    return false;
  }

  // Every conditional `reference` under `node`, with its FHIRPath (`path` is node's).
  static void FindConditionalReferences(Json& node, std::string& path,
                                        std::vector<std::pair<Json*, std::string>>& out) {
    if (node.IsObject()) {
      for (auto& [name, v] : node.Members()) {
        const std::size_t at = path.size();
        path += '.';
        path += name;
        if (std::string_view(name) == "reference" && v.IsString()) {
          if (IsConditionalReference(v.Text())) out.emplace_back(&v, path);
        } else {
          FindConditionalReferences(v, path, out);
        }
        path.resize(at);
      }
    } else if (node.IsArray()) {
      for (std::size_t i = 0; i < node.Items().size(); ++i) {
        const std::size_t at = path.size();
        path += '[' + std::to_string(i) + ']';
        FindConditionalReferences(node.Items()[i], path, out);
        path.resize(at);
      }
    }
  }

  // Replaces each conditional reference of entry `index`'s resource by the Type/id of its one
  // match in `session` (R4 http.html: "if there is a single match, the server replaces the
  // search URI with a reference to the matching resource"; no match or several fail the
  // transaction). No match is 404, several 412 (as HAPI FHIR answers them; several is also what
  // If-None-Exist answers), criteria that are no filtering search 400. The failure's expression
  // locates the element (Bundle.entry[n].resource.subject.reference); the message never repeats
  // the criteria, which may hold patient data (an identifier). `resolved` keeps one pass's
  // answers (a Bundle repeating one criteria searches it once).
  std::optional<Failure> ResolveConditionalReferences(
      store::Session& session, Json& resource, std::size_t index,
      std::map<std::string, std::string>& resolved) const {
    return ResolveConditionalReferences(
        session, resource, "Bundle.entry[" + std::to_string(index) + "].resource", resolved);
  }

  // The same for a resource outside a Bundle (a single create, update or patch, decision 0046):
  // `path` names the resource in the failure's expression ("Observation").
  std::optional<Failure> ResolveConditionalReferences(
      store::Session& session, Json& resource, std::string path,
      std::map<std::string, std::string>& resolved) const {
    std::vector<std::pair<Json*, std::string>> refs;
    FindConditionalReferences(resource, path, refs);
    for (auto& [node, where] : refs) {
      const std::string uri = node->Text();
      auto it = resolved.find(uri);
      if (it == resolved.end()) {
        const std::string type = uri.substr(0, uri.find('?'));
        auto found = Matches(session, type, CriteriaParams(uri), "a conditional reference");
        std::optional<Failure> f;
        if (auto* failed = std::get_if<Failure>(&found)) {
          f = std::move(*failed);
        } else if (auto& rows = std::get<std::vector<store::ResourceRow>>(found); rows.empty()) {
          f = Fail(404, "not-found", "the conditional reference matches no resource");
        } else if (rows.size() > 1) {
          f = Fail(412, "multiple-matches",
                   "the conditional reference matches more than one resource");
        } else {
          it = resolved.emplace(uri, type + "/" + rows[0].id).first;
        }
        if (f) {
          if (f->expression.empty()) f->expression = where;
          return f;
        }
      }
      *node = Json::String(it->second);
    }
    return std::nullopt;
  }

  std::string ResponseEntry(const std::string& status, const store::ResourceRow* row,
                            bool with_resource, const Failure* failure) const {
    std::string out = "{";
    if (row != nullptr && !row->id.empty()) {
      out += "\"fullUrl\":";
      detail::AppendJsonString(FullUrl(row->type, row->id), out);
      out += ',';
      if (with_resource && !row->deleted && !row->json.empty()) {
        out += "\"resource\":";
        out += row->json;
        out += ',';
      }
    }
    out += "\"response\":{\"status\":";
    detail::AppendJsonString(status, out);
    if (row != nullptr && row->version > 0) {
      out += ",\"location\":";
      detail::AppendJsonString(
          row->type + "/" + row->id + "/_history/" + std::to_string(row->version), out);
      out += ",\"etag\":";
      detail::AppendJsonString(detail::FormatETag(row->version), out);
      out += ",\"lastModified\":";
      detail::AppendJsonString(detail::FormatInstant(row->last_updated_us), out);
    }
    if (failure != nullptr) {
      out += ",\"outcome\":";
      out += detail::OperationOutcomeJson(*failure);
    }
    out += "}}";
    return out;
  }

  static std::string StatusText(int status) {
    switch (status) {
      case 200: return "200 OK";
      case 201: return "201 Created";
      case 204: return "204 No Content";
      default: return std::to_string(status);
    }
  }

  // Validates and indexes a POST/PUT entry's resource once (no-op when already prepared).
  std::optional<Failure> PrepareEntry(Entry& e) const {
    if (e.prepare_failed) return e.prepare_failed;
    if (e.prepared || !e.has_resource) return std::nullopt;
    auto p = Prepare(e.type, e.id, std::move(e.resource));
    if (auto* f = std::get_if<Failure>(&p)) {
      e.prepare_failed = *f;
      return *f;
    }
    e.prepared = std::move(std::get<Prepared>(p));
    return std::nullopt;
  }

  // A transaction entry's failure that fails the whole transaction before anything is stored.
  // Validator issues (422) are rendered instead of the diagnostics, so each says which entry it
  // is about: its FHIRPath is rebased from the resource ("Observation.status") onto the Bundle
  // ("Bundle.entry[1].resource.status") and its message names the entry.
  static void Unwritten(Failure& f, std::size_t index) {
    const std::string entry = "transaction entry " + std::to_string(index);
    f.diagnostics = entry + " failed; nothing was stored: " + f.diagnostics;
    const std::string resource = "Bundle.entry[" + std::to_string(index) + "].resource";
    for (Issue& issue : f.issues) {
      std::string& path = issue.where.fhir_path;
      if (!path.starts_with("Bundle.entry[")) {
        const auto dot = path.find('.');
        path = dot == std::string::npos ? resource : resource + path.substr(dot);
      }
      issue.message = entry + " (nothing was stored): " + issue.message;
    }
  }

  // A GET entry's failure as its transaction reports it (the status of the GET's answer).
  static Failure GetFailed(int status) {
    return Fail(status, "processing", "the GET entry failed");
  }

  // A GET entry: read like a GET request (committed data, outside any transaction).
  std::optional<Failure> RunGet(Entry& e, std::string_view failed = "the GET entry failed") const {
    Request sub;
    sub.method = "GET";
    sub.target = e.target;
    Response r = Route(sub);
    if (r.status >= 400) {
      Failure f = Fail(r.status, "processing", std::string(failed));
      return f;
    }
    e.response = "{\"resource\":" + r.body + ",\"response\":{\"status\":\"200 OK\"}}";
    return std::nullopt;
  }

  // A transaction's GET entry before anything is written (decision 0030): what its URL alone
  // decides fails the transaction now (no such endpoint, method, malformed id or version, a
  // search's or a history's parameters, a type operation's answer), as the GET would answer it;
  // and the point read the commit thread does for it (Entry::GetCheck) is chosen.
  std::optional<Failure> PrecheckGet(Entry& e) const {
    Request sub;
    sub.method = "GET";
    sub.target = e.target;
    auto resolved = Resolve(sub);
    if (auto* r = std::get_if<Response>(&resolved)) {
      return GetFailed(r->status);
    }
    const Endpoint& ep = std::get<Endpoint>(resolved);
    e.type = ep.type;
    e.id = ep.id;
    switch (ep.kind) {
      case Endpoint::kSearch: {
        detail::SearchSpec spec;
        detail::SearchContext ctx{options.base_url,   options.default_count,
                                  options.max_count,  &options.value_set_codes,
                                  &stored_value_sets, &stored_code_systems};
        if (auto f = detail::BuildSearch(ep.type, ep.params, ctx, spec)) {
          return GetFailed(f->status);
        }
        break;
      }
      case Endpoint::kRead:
      case Endpoint::kVRead: {
        detail::SubsetSpec subset;
        if (auto f = ReadSubset(ep.params, subset)) return GetFailed(f->status);
        if (ep.kind == Endpoint::kRead) {
          e.get_check = Entry::GetCheck::kCurrent;
          break;
        }
        if (auto v = ParseVersionId(ep.vid)) {
          e.get_version = *v;
        } else {
          return GetFailed(404);
        }
        e.get_check = Entry::GetCheck::kVersion;
        break;
      }
      case Endpoint::kHistory: {
        store::HistoryQuery q;
        QueryParams echo;
        if (auto f = HistoryParams(ep.params, q, echo)) {
          return GetFailed(f->status);
        }
        if (!ep.id.empty()) e.get_check = Entry::GetCheck::kKnown;
        break;
      }
      case Endpoint::kOperation:
        // A type operation reads no resource of the store (TypeOperation: terminology): its
        // answer is the same before the writes as after, so it is given now, once, and a
        // failure fails the transaction unwritten (Finish keeps this response).
        return RunGet(e);
      case Endpoint::kEverything: {
        detail::EverythingSpec spec;
        detail::SearchContext ctx{options.base_url, options.default_count, options.max_count,
                                  &options.value_set_codes};
        if (auto f = detail::BuildEverything(ep.id, ep.params, ctx, spec)) {
          return GetFailed(f->status);
        }
        e.get_check = Entry::GetCheck::kLive;
        break;
      }
      default: break;
    }
    return std::nullopt;
  }

  // A transaction's GET entry on the commit thread, after its writes: one point read by key
  // (never a search), which fails the transaction when the GET will find nothing, as the GET
  // itself would have failed it (Read, VRead, History, Everything answer these statuses).
  std::optional<Failure> CheckGet(store::Session& session, const Entry& e) const {
    switch (e.get_check) {
      case Entry::GetCheck::kNone: return std::nullopt;
      case Entry::GetCheck::kVersion: {
        auto row = session.ReadVersion(e.type, e.id, e.get_version);
        if (!row) return StoreFailure(row.error());
        if (!*row) return GetFailed(404);
        if ((*row)->deleted) return GetFailed(410);
        return std::nullopt;
      }
      default: break;
    }
    auto row = session.Read(e.type, e.id);
    if (!row) return StoreFailure(row.error());
    if (!*row) return GetFailed(404);
    if ((*row)->deleted && e.get_check == Entry::GetCheck::kCurrent) return GetFailed(410);
    if ((*row)->deleted && e.get_check == Entry::GetCheck::kLive) return GetFailed(404);
    return std::nullopt;
  }

  // One entry inside an open transaction (a batch entry: inside its savepoint). A
  // transaction's GET entries are not run here (CheckGet, then after the commit).
  std::optional<Failure> RunEntry(store::Session& session, Entry& e) const {
    if (e.method == "GET") return RunGet(e);
    std::optional<std::int64_t> if_match;
    if (!e.if_match.empty()) {
      if_match = ParseETag(e.if_match);
      if (!if_match) return Fail(400, "invalid", "malformed ifMatch");
    }
    std::variant<WriteResult, Failure> result = Failure{};
    if (e.method == "DELETE" && e.id.empty()) {  // a conditional delete that matched nothing
      WriteResult nothing;
      nothing.status = 204;
      e.written = std::move(nothing);
      return std::nullopt;
    }
    if (e.method == "DELETE") {
      result = Delete(session, e.type, e.id, if_match);
    } else if (e.method == "PATCH") {
      std::int64_t version = 0;
      auto prepared = PatchCurrent(session, e.type, e.id, *e.patch, if_match, version);
      if (auto* f = std::get_if<Failure>(&prepared)) return *f;
      result = Put(session, e.type, e.id, std::get<Prepared>(prepared), version, false,
                   store::WriteMethod::kPatch);
    } else if (e.method == "POST") {
      if (!e.if_none_exist.empty()) {
        if (auto f = LockCriteria(session, e.type, e.if_none_exist)) return f;
        auto found = FindExisting(session, e.type, e.if_none_exist);
        if (auto* f = std::get_if<Failure>(&found)) return *f;
        if (auto& existing = std::get<std::optional<store::ResourceRow>>(found); existing) {
          e.response = ResponseEntry("200 OK", &*existing, true, nullptr);
          return std::nullopt;
        }
      }
      if (auto f = PrepareEntry(e)) return f;
      result = Put(session, e.type, e.id, *e.prepared, std::nullopt, /*fresh=*/true);
    } else {
      if (auto f = PrepareEntry(e)) return f;
      result = Put(session, e.type, e.id, *e.prepared, if_match);
    }
    if (auto* f = std::get_if<Failure>(&result)) return *f;
    e.written = std::move(std::get<WriteResult>(result));
    return std::nullopt;
  }

  // A transaction whose resources hold conditional references. R4 http.html lists "Resolve any
  // conditional references" after the DELETE, POST, PUT and GET steps, so their criteria see
  // the transaction's own writes (a Patient it creates, found by its identifier, also one that
  // itself holds a conditional reference). Pass 1 writes every entry inside a savepoint, the
  // resources with conditional references as sent (not validated; never committed); their
  // references are then searched in that state. Everything is rolled back to the savepoint and
  // written again with the references replaced (validated now), then the GET checks run. The
  // second write costs the commit thread only for Bundles with conditional references.
  std::optional<Failure> ApplyResolvingReferences(store::Session& s,
                                                  const std::vector<Entry*>& order) const {
    constexpr std::string_view kPass = "conditional_references";
    if (auto b = s.Savepoint(kPass); !b) return StoreFailure(b.error());
    for (Entry* e : order) {
      if (e->method == "GET") continue;
      if (e->conditional_refs && !e->prepared) {
        auto p = Prepare(e->type, e->id, Json(e->resource), /*validate=*/false);
        if (auto* f = std::get_if<Failure>(&p)) {
          Unwritten(*f, e->index);
          return *f;
        }
        e->prepared = std::move(std::get<Prepared>(p));
      }
      if (auto f = RunTransactionEntry(s, *e, order)) {
        Unwritten(*f, e->index);
        return f;
      }
    }
    std::map<std::string, std::string> resolved;
    for (Entry* e : order) {
      // A conditional create that found its match writes nothing: its references do not matter.
      if (!e->conditional_refs || !e->written) continue;
      if (auto f = ResolveConditionalReferences(s, e->resource, e->index, resolved)) {
        Unwritten(*f, e->index);
        return f;
      }
    }
    // Undoes pass 1 and ends the savepoint (store.hpp: rolling back to a savepoint releases it).
    if (auto r = s.RollbackToSavepoint(kPass); !r) return StoreFailure(r.error());
    for (Entry* e : order) {
      if (e->method == "GET") continue;
      e->written.reset();
      e->response.clear();
      if (e->conditional_refs) e->prepared.reset();  // prepared again, resolved and validated
      if (e->method == "PATCH" && e->conditional_target) e->id.clear();  // found again
    }
    for (Entry* e : order) {
      if (auto f = RunTransactionEntry(s, *e, order)) {
        Unwritten(*f, e->index);
        return f;
      }
    }
    return std::nullopt;
  }

  // What an entry's conditional criteria are called in messages.
  static std::string_view ConditionalWhat(std::string_view method) {
    if (method == "PUT") return "a conditional update";
    if (method == "PATCH") return "a conditional patch";
    return "a conditional delete";
  }

  // A conditional PATCH entry's target (R4 http.html "patch" and "Transactions": as the single
  // conditional patch, PatchTarget: no match 404, several 412), searched at the entry's own step
  // of the processing order (DELETE, POST, PUT or PATCH): the criteria see what the transaction's
  // DELETE and POST entries and its earlier PUT/PATCH entries wrote. In a transaction (`order`:
  // all its entries) the identity found must not be one another entry writes (R4: identities,
  // "including resolved identities from conditional update/delete", must not overlap in the
  // write steps): 400. A batch entry passes no order (each entry is a request of its own).
  std::optional<Failure> EntryPatchTarget(store::Session& s, Entry& e,
                                          const std::vector<Entry*>& order) const {
    auto target = PatchTarget(s, e.type, e.url);
    if (auto* f = std::get_if<Failure>(&target)) {
      f->expression = "Bundle.entry[" + std::to_string(e.index) + "].request.url";
      return *f;
    }
    e.id = std::move(std::get<std::string>(target));
    for (const Entry* o : order) {
      // Written in this transaction: DELETE, PUT and PATCH entries whose ids are known (later
      // conditional patches have none yet), POST entries that created their resource.
      if (o == &e || o->method == "GET" || o->id.empty() || o->type != e.type || o->id != e.id) {
        continue;
      }
      if (o->method == "POST" && !o->written) continue;  // a conditional create that matched
      Failure f = Fail(400, "invalid",
                       "the conditional patch matches the resource entry " +
                           std::to_string(o->index) + " writes too");
      f.expression = "Bundle.entry[" + std::to_string(e.index) + "].request.url";
      return f;
    }
    return std::nullopt;
  }

  // A transaction's entry at its step (pass 2 of ApplyResolvingReferences, or the only pass):
  // a GET's point check, a conditional patch's target, then the write.
  std::optional<Failure> RunTransactionEntry(store::Session& s, Entry& e,
                                             const std::vector<Entry*>& order) const {
    if (e.method == "GET") return CheckGet(s, e);
    if (e.method == "PATCH" && e.conditional_target) {
      if (auto f = EntryPatchTarget(s, e, order)) return f;
    }
    return RunEntry(s, e);
  }

  // A batch entry inside its savepoint: a conditional update or delete finds its id, and
  // conditional references are resolved against what the batch's earlier entries left (R4
  // defines conditional references for transactions only; a batch entry, a request of its own,
  // gets the same resolution, and a failure fails only the entry).
  std::optional<Failure> RunBatchEntry(store::Session& s, Entry& e) const {
    if (e.conditional_target && e.method == "PATCH") {
      if (auto f = EntryPatchTarget(s, e, {})) return f;
    } else if (e.conditional_target) {
      auto target = ConditionalTarget(s, e.type, e.url, e.method == "PUT",
                                      e.has_resource ? e.resource.Str("id") : std::string_view());
      if (auto* f = std::get_if<Failure>(&target)) return *f;
      e.id = std::move(std::get<std::string>(target));
    }
    if (e.conditional_refs) {
      std::map<std::string, std::string> resolved;
      if (auto f = ResolveConditionalReferences(s, e.resource, e.index, resolved)) return f;
    }
    return RunEntry(s, e);
  }

  // A PATCH entry (R4 http.html, "Transactions": a Binary resource holding a JSON Patch, or a
  // Parameters resource holding a FHIRPath Patch) on `Type/id`, or on `Type?criteria` (a
  // conditional patch: e.conditional_target, its id found at its step, EntryPatchTarget).
  static std::optional<Failure> EntryPatch(const Json& item, Entry& e) {
    const std::string where = "entry " + std::to_string(e.index) + ": ";
    if (!e.conditional_target && (e.id.empty() || !detail::IsValidId(e.id) || !e.query.empty())) {
      return Fail(400, "not-supported", where + "PATCH needs Type/id or Type?criteria");
    }
    const Json* res = item.Find("resource");
    if (res == nullptr || !res->IsObject()) {
      return Fail(400, "required", where + "a PATCH entry needs a Binary or Parameters resource");
    }
    PatchDoc doc;
    if (res->Str("resourceType") == "Parameters") {
      doc.json_patch = false;
      doc.body = *res;
    } else if (res->Str("resourceType") == "Binary") {
      if (res->Str("contentType").find("json-patch") == std::string_view::npos) {
        return Fail(400, "invalid",
                    where + "the Binary of a PATCH entry must be application/json-patch+json");
      }
      auto bytes = detail::DecodeBase64(res->Str("data"));
      detail::JsonError error;
      if (!bytes || !detail::ParseJson(*bytes, doc.body, error) || !doc.body.IsArray()) {
        return Fail(400, "invalid",
                    where + "the Binary's data is not a base64 JSON Patch array (RFC 6902 §3)");
      }
    } else {
      return Fail(400, "invalid",
                  where + "a PATCH entry needs a Binary (JSON Patch) or Parameters resource");
    }
    e.patch = std::move(doc);
    return std::nullopt;
  }

  // A malformed entry fails a transaction as a whole; in a batch it fails only itself.
  std::optional<Response> EntryFailed(bool atomic, Entry& e, std::vector<Entry>& entries,
                                      Failure failure) const {
    if (atomic) return detail::FailureResponse(failure);
    e.failed = true;
    e.response = ResponseEntry(std::to_string(failure.status), nullptr, false, &failure);
    entries.push_back(std::move(e));
    return std::nullopt;
  }

  Split Bundle(const Request& request, const BeforeCommit* before_commit = nullptr) const {
    Json bundle;
    if (auto f = ParseResource(request.body, "Bundle", bundle)) return detail::FailureResponse(*f);
    std::string_view kind = bundle.Str("type");
    if (kind != "transaction" && kind != "batch") {
      return detail::FailureResponse(
          Fail(400, "invalid", "POST to the base needs a Bundle of type batch or transaction"));
    }
    const bool atomic = kind == "transaction";
    std::vector<Entry> entries;
    std::map<std::string, std::string> ids;  // fullUrl -> Type/id (R4 §3.1.0.11.2)
    // (fullUrl, resource.meta.versionId; "" in a transaction) -> the first entry with them.
    std::map<std::pair<std::string, std::string>, std::size_t> full_urls;
    if (Json* list = bundle.Find("entry"); list != nullptr) {
      if (!list->IsArray())
        return detail::FailureResponse(Fail(400, "structure", "entry must be an array"));
      for (std::size_t i = 0; i < list->Items().size(); ++i) {
        Json& item = list->Items()[i];
        Entry e;
        e.index = i;
        const Json* req = item.Find("request");
        if (!item.IsObject() || req == nullptr || !req->IsObject()) {
          {
            if (auto r = EntryFailed(
                    atomic, e, entries,
                    Fail(400, "structure", "entry " + std::to_string(i) + " has no request")))
              return *r;
            continue;
          }
        }
        e.method = std::string(req->Str("method"));
        e.url = std::string(req->Str("url"));
        e.full_url = std::string(item.Str("fullUrl"));
        if (!e.full_url.empty()) {
          // R4 Bundle invariant bdl-7: a fullUrl is unique in a Bundle, unless the entries
          // carry different meta.versionId. In a transaction the entries' identities must not
          // overlap at all (http.html, transaction processing rules): a repeated fullUrl fails
          // it whatever the versions, else references to it would name either entry.
          const Json* res = item.Find("resource");
          const Json* meta = res != nullptr ? res->Find("meta") : nullptr;
          std::string version(meta != nullptr && !atomic ? meta->Str("versionId")
                                                         : std::string_view());
          auto [first, fresh] = full_urls.try_emplace({e.full_url, std::move(version)}, i);
          if (!fresh) {
            Failure f = Fail(400, "invalid",
                             "entry " + std::to_string(i) + " repeats the fullUrl of entry " +
                                 std::to_string(first->second) +
                                 " (a fullUrl is unique in a Bundle: R4 bdl-7)");
            f.expression = "Bundle.entry[" + std::to_string(i) + "].fullUrl";
            if (auto r = EntryFailed(atomic, e, entries, f)) return *r;
            continue;
          }
        }
        e.if_match = std::string(req->Str("ifMatch"));
        e.if_none_exist = std::string(req->Str("ifNoneExist"));
        std::string_view path = e.url;
        if (path.starts_with(options.base_url + "/"))
          path.remove_prefix(options.base_url.size() + 1);
        e.target = "/fhir/" + std::string(path);
        if (auto qm = path.find('?'); qm != std::string_view::npos) {
          e.query = detail::ParseQuery(path.substr(qm + 1));
          path = path.substr(0, qm);
        }
        auto slash = path.find('/');
        e.type = std::string(path.substr(0, slash));
        if (slash != std::string_view::npos) e.id = std::string(path.substr(slash + 1));
        if (e.method != "GET" && e.method != "POST" && e.method != "PUT" && e.method != "DELETE" &&
            e.method != "PATCH") {
          {
            if (auto r = EntryFailed(atomic, e, entries,
                                     Fail(400, "not-supported",
                                          "entry " + std::to_string(i) +
                                              ": method must be GET, POST, PUT, PATCH or DELETE")))
              return *r;
            continue;
          }
        }
        if (e.method != "GET" && !detail::IsResourceTypeName(e.type)) {
          {
            if (auto r = EntryFailed(
                    atomic, e, entries,
                    Fail(400, "invalid",
                         "entry " + std::to_string(i) + ": unknown resource type in request.url")))
              return *r;
            continue;
          }
        }
        // PUT/DELETE Type?criteria: a conditional update or delete (R4 http.html 3.1.0.4.3,
        // 3.1.0.7.1), its id found inside the write transaction.
        // PATCH Type?criteria: a conditional patch (R4 http.html "patch"), its id found at the
        // entry's step (EntryPatchTarget).
        e.conditional_target = (e.method == "PUT" || e.method == "DELETE" || e.method == "PATCH") &&
                               e.id.empty() && !e.query.empty();
        if ((e.method == "PUT" || e.method == "DELETE") && !e.conditional_target &&
            (e.id.empty() || !detail::IsValidId(e.id) || !e.query.empty())) {
          {
            if (auto r = EntryFailed(atomic, e, entries,
                                     Fail(400, "not-supported",
                                          "entry " + std::to_string(i) +
                                              ": PUT/DELETE need Type/id or Type?criteria")))
              return *r;
            continue;
          }
        }
        if (e.method == "PATCH") {
          if (auto f = EntryPatch(item, e)) {
            if (auto r = EntryFailed(atomic, e, entries, *f)) return *r;
            continue;
          }
          // A conditional patch's target is found only at its step: its fullUrl names nothing
          // the other entries' references could be rewritten to.
          if (!e.full_url.empty() && !e.conditional_target) ids[e.full_url] = e.type + "/" + e.id;
        }
        if (e.conditional_target) {
          store::SearchQuery checked;
          if (auto f = CriteriaSearch(e.type, e.query, ConditionalWhat(e.method), checked)) {
            f->diagnostics = "entry " + std::to_string(i) + ": " + f->diagnostics;
            f->expression = "Bundle.entry[" + std::to_string(i) + "].request.url";
            if (auto r = EntryFailed(atomic, e, entries, *f)) return *r;
            continue;
          }
        }
        if (e.method == "POST" || e.method == "PUT") {
          Json* res = item.Find("resource");
          if (res == nullptr) {
            {
              if (auto r = EntryFailed(
                      atomic, e, entries,
                      Fail(400, "required", "entry " + std::to_string(i) + " has no resource")))
                return *r;
              continue;
            }
          }
          e.resource = std::move(*res);  // the Bundle tree is not read again
          e.has_resource = true;
          if (auto f = CheckResource(e.resource, e.type)) {
            f->diagnostics = "entry " + std::to_string(i) + ": " + f->diagnostics;
            {
              if (auto r = EntryFailed(atomic, e, entries, *f)) return *r;
              continue;
            }
          }
          e.conditional_refs = HasConditionalReference(e.resource);
          if (e.method == "POST") {
            e.id = detail::NewId();
          } else if (!e.conditional_target && e.resource.Str("id") != e.id) {
            {
              if (auto r = EntryFailed(atomic, e, entries,
                                       Fail(400, "invalid",
                                            "entry " + std::to_string(i) +
                                                ": resource id differs from request.url")))
                return *r;
              continue;
            }
          }
          // A conditional update's id is known inside the transaction (Apply adds it).
          if (!e.full_url.empty() && !e.conditional_target) ids[e.full_url] = e.type + "/" + e.id;
        }
        entries.push_back(std::move(e));
      }
    }
    struct State {
      std::vector<Entry> entries;
      std::map<std::string, std::string> ids;
      // A conditional transaction rewrites references inside Apply from what its conditional
      // creates found; a retry (commit queue) starts again from this copy.
      std::optional<std::pair<std::vector<Entry>, std::map<std::string, std::string>>> pristine;
      bool ids_final = true;  // fullUrls were rewritten before the queue
      bool applied = false;
      std::optional<ErrorCode> entry_store_error;  // a batch entry's (commit queue retries)
    };
    auto st =
        std::make_shared<State>(State{std::move(entries), std::move(ids), {}, true, false, {}});
    const std::size_t weight = std::max<std::size_t>(1, st->entries.size());
    if (atomic) {
      // R4 http.html, transaction processing rules: a transaction fails when the identities its
      // write steps (DELETE, POST, PUT) touch overlap. POST ids are new; PUT and DELETE name
      // theirs.
      std::set<std::string> written;
      for (auto& e : st->entries) {
        if ((e.method != "PUT" && e.method != "DELETE" && e.method != "PATCH") ||
            e.conditional_target) {
          continue;
        }
        if (!written.insert(e.type + "/" + e.id).second) {
          return detail::FailureResponse(
              Fail(400, "invalid",
                   "transaction entry " + std::to_string(e.index) +
                       " writes a resource another entry writes too; nothing was stored"));
        }
      }
      // GET entries are answered after the commit, off the commit thread (decision 0030): what
      // their URLs alone decide fails the transaction now.
      for (auto& e : st->entries) {
        if (e.method != "GET") continue;
        if (auto f = PrecheckGet(e)) {
          Unwritten(*f, e.index);
          return detail::FailureResponse(*f);
        }
      }
      // Nothing to write (GET entries only): no write transaction, no commit thread (as a
      // batch, decision 0028); a GET that fails fails the transaction, which wrote nothing.
      if ((before_commit == nullptr || !*before_commit) &&
          std::all_of(st->entries.begin(), st->entries.end(),
                      [](const Entry& e) { return e.method == "GET"; })) {
        for (auto& e : st->entries) {
          if (!e.response.empty()) continue;  // an operation, answered by PrecheckGet
          if (auto f = RunGet(e)) {
            Unwritten(*f, e.index);
            return detail::FailureResponse(*f);
          }
        }
        return BundleResponse(st->entries, true);
      }
      // Without conditional creates, updates and deletes, references to entries are final
      // now: validate and index every resource before taking the write lock, so the
      // transaction holds it only for the inserts. Conditional creates, updates and deletes
      // find their ids inside the transaction first, and then every entry is prepared there;
      // so are the resources holding conditional references, whose targets are searched there.
      const bool ids_inside =
          std::any_of(st->entries.begin(), st->entries.end(), [](const Entry& e) {
            return (e.method == "POST" && !e.if_none_exist.empty()) ||
                   (e.conditional_target && e.method != "PATCH");
          });
      const bool refs_inside = std::any_of(st->entries.begin(), st->entries.end(),
                                           [](const Entry& e) { return e.conditional_refs; });
      st->ids_final = !ids_inside;
      if (!ids_inside) {
        for (auto& e : st->entries) {
          if (e.has_resource) RewriteReferences(e.resource, st->ids);
          if (e.conditional_refs) continue;
          if (auto f = PrepareEntry(e)) {
            Unwritten(*f, e.index);
            return detail::FailureResponse(*f);
          }
        }
      }
      if (ids_inside || refs_inside) st->pristine.emplace(st->entries, st->ids);
      return MakeJob(
          [this, st, before_commit](store::Session& s) -> std::optional<Failure> {
            if (st->applied && st->pristine) {
              st->entries = st->pristine->first;
              st->ids = st->pristine->second;
            }
            st->applied = true;
            for (auto& e : st->entries) {
              if (e.method == "GET") continue;  // an operation's answer (PrecheckGet) stays
              e.written.reset();
              e.response.clear();
              if (e.method == "PATCH" && e.conditional_target) e.id.clear();  // found at its step
            }
            bool targets = false;
            for (auto& e : st->entries) {
              if (e.method == "POST" && !e.if_none_exist.empty()) {
                if (auto f = LockCriteria(s, e.type, e.if_none_exist)) return f;
                auto found = FindExisting(s, e.type, e.if_none_exist);
                if (auto* f = std::get_if<Failure>(&found)) return *f;
                if (auto& existing = std::get<std::optional<store::ResourceRow>>(found); existing) {
                  if (!e.full_url.empty()) st->ids[e.full_url] = e.type + "/" + existing->id;
                }
              } else if (e.conditional_target && e.method != "PATCH") {
                // Decided before the writes, like the conditional creates' matches, so that
                // references to the entry's fullUrl can be rewritten.
                targets = true;
                auto target =
                    ConditionalTarget(s, e.type, e.url, e.method == "PUT",
                                      e.has_resource ? e.resource.Str("id") : std::string_view());
                if (auto* f = std::get_if<Failure>(&target)) {
                  Unwritten(*f, e.index);
                  return *f;
                }
                e.id = std::move(std::get<std::string>(target));
                if (e.method == "PUT" && !e.full_url.empty()) {
                  st->ids[e.full_url] = e.type + "/" + e.id;
                }
              }
            }
            if (targets) {
              // R4 http.html: resource identities, "including resolved identities from
              // conditional update/delete", must not overlap in the write steps.
              std::set<std::string> touched;
              for (const auto& e : st->entries) {
                if ((e.method != "PUT" && e.method != "DELETE" && e.method != "PATCH") ||
                    e.id.empty()) {
                  continue;
                }
                if (!touched.insert(e.type + "/" + e.id).second) {
                  return Fail(400, "invalid",
                              "transaction entry " + std::to_string(e.index) +
                                  " writes a resource another entry writes too (found by a "
                                  "conditional update or delete); nothing was stored");
                }
              }
            }
            if (!st->ids_final) {
              for (auto& e : st->entries) {
                if (e.has_resource && !e.prepared) RewriteReferences(e.resource, st->ids);
              }
            }
            std::vector<Entry*> order;
            for (auto& e : st->entries) order.push_back(&e);
            std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
              return MethodOrder(a->method) < MethodOrder(b->method);
            });
            if (std::any_of(order.begin(), order.end(),
                            [](const Entry* e) { return e->conditional_refs; })) {
              if (auto f = ApplyResolvingReferences(s, order)) return f;
            } else {
              // Every resource the writes lock and read, ahead of them (Session::LockMany:
              // PostgreSQL reads them in one round trip instead of one each).
              std::vector<store::ResourceKey> keys;
              for (const Entry* e : order) {
                if ((e->method == "PUT" || e->method == "DELETE" || e->method == "PATCH") &&
                    !e->id.empty()) {
                  keys.push_back({e->type, e->id});
                }
              }
              if (keys.size() > 1) {
                if (auto l = s.LockMany(keys); !l) return StoreFailure(l.error());
              }
              for (Entry* e : order) {
                if (auto f = RunTransactionEntry(s, *e, order)) {
                  Unwritten(*f, e->index);
                  return f;
                }
              }
            }
            if (before_commit != nullptr && *before_commit) {
              if (auto h = (*before_commit)(s); !h) return StoreFailure(h.error());
            }
            return std::nullopt;
          },
          [this, st] {
            // After the commit (the server runs this on a reader thread): the GET entries
            // read the committed state, this transaction's writes included (decision 0030).
            for (auto& e : st->entries) {
              if (e.method != "GET" || !e.response.empty()) continue;  // answered: PrecheckGet
              if (auto f = RunGet(e, "the GET entry failed after the transaction committed")) {
                e.response = ResponseEntry(std::to_string(f->status), nullptr, false, &*f);
              }
            }
            return BundleResponse(st->entries, true);
          },
          weight);
    }
    // A batch: each entry succeeds or fails alone, in a savepoint of its own. GET entries are
    // read after the commit (when the response is rendered), so they see the batch's writes.
    for (auto& e : st->entries) {
      if (e.failed) continue;
      if (e.has_resource) RewriteReferences(e.resource, st->ids);
      if (e.conditional_refs || e.conditional_target) {
        // Prepared inside the write transaction (its id or its references come from the store).
        if (e.has_resource) e.original = e.resource;
        continue;
      }
      if (e.method == "PUT" || (e.method == "POST" && e.if_none_exist.empty())) {
        if (auto f = PrepareEntry(e)) {  // outside the write transaction
          e.failed = true;
          e.response = ResponseEntry(std::to_string(f->status), nullptr, false, &*f);
        }
      }
    }
    auto respond = [this, st] {
      for (auto& e : st->entries) {
        if (e.failed || e.method != "GET") continue;
        if (auto f = RunGet(e)) {
          e.response = ResponseEntry(std::to_string(f->status), nullptr, false, &*f);
        }
      }
      return BundleResponse(st->entries, false);
    };
    // Nothing to write (only GET entries, or every write entry already rejected): no write
    // transaction, so no transaction id and no commit record (decision 0028); the GETs read
    // committed data as they would after a commit.
    if (std::none_of(st->entries.begin(), st->entries.end(),
                     [](const Entry& e) { return !e.failed && e.method != "GET"; })) {
      return respond();
    }
    return MakeJob(
        [this, st](store::Session& s) -> std::optional<Failure> {
          constexpr std::string_view kEntry = "batch_entry";
          st->entry_store_error.reset();
          for (auto& e : st->entries) {  // a retry starts again (entries rejected early stay)
            if (e.failed || e.method == "GET") continue;
            e.written.reset();
            e.response.clear();
            if (e.original) {
              e.resource = *e.original;
              e.prepared.reset();
              e.prepare_failed.reset();
            }
            if (e.conditional_target) e.id.clear();
          }
          for (auto& e : st->entries) {
            if (e.failed || e.method == "GET") continue;
            std::optional<Failure> f;
            if (auto b = s.Savepoint(kEntry); !b) {
              f = StoreFailure(b.error());
            } else {
              f = RunBatchEntry(s, e);
              if (!f) {
                if (auto r = s.ReleaseSavepoint(kEntry); !r) f = StoreFailure(r.error());
              }
              if (f) {
                // Undoes this entry alone; failing that, the transaction is lost.
                if (auto r = s.RollbackToSavepoint(kEntry); !r) return StoreFailure(r.error());
              }
            }
            if (f) {
              e.written.reset();
              e.response = ResponseEntry(std::to_string(f->status), nullptr, false, &*f);
              if (f->store_error && !st->entry_store_error) st->entry_store_error = f->store_error;
            }
          }
          return std::nullopt;
        },
        std::move(respond), weight, [st] { return st->entry_store_error; });
  }

  // The transaction-response / batch-response Bundle, rendered after the commit.
  Response BundleResponse(std::vector<Entry>& entries, bool atomic) const {
    for (auto& e : entries) {
      if (e.written)
        e.response = ResponseEntry(StatusText(e.written->status), &e.written->row, true, nullptr);
    }
    std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"";
    out += atomic ? "transaction-response" : "batch-response";
    out += "\",\"entry\":[";
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out += ',';
      out += entries[i].response;
    }
    out += "]}";
    Response resp;
    resp.SetHeader("Content-Type", std::string(detail::kFhirJson));
    resp.body = std::move(out);
    return resp;
  }

  // ---------------------------------------------------------------- capabilities

  std::string BuildCapabilityStatement() const {
    Json cs = Json::Object();
    cs.Set("resourceType", Json::String("CapabilityStatement"));
    cs.Set("status", Json::String("active"));
    cs.Set("date", Json::String("2026-11-30"));
    cs.Set("kind", Json::String("instance"));
    Json& software = cs.Set("software", Json::Object());
    software.Set("name", Json::String("kakehashi"));
    Json& impl = cs.Set("implementation", Json::Object());
    impl.Set("description", Json::String("kakehashi FHIR gateway"));
    impl.Set("url", Json::String(options.base_url));
    cs.Set("fhirVersion", Json::String("4.0.1"));
    Json& formats = cs.Set("format", Json::Array());
    formats.Push(Json::String("application/fhir+json"));
    formats.Push(Json::String("json"));
    Json& rest = cs.Set("rest", Json::Array()).Push(Json::Object());
    rest.Set("mode", Json::String("server"));
    // Result parameters have no element of their own in R4's CapabilityStatement: said here.
    rest.Set("documentation",
             Json::String("Result parameters: _count, _sort, _include and _revinclude (:iterate; "
                          "Type:* for every reference parameter of Type, Type:*:Target), "
                          "_total=accurate, _summary (true, text, data, count, false; true, "
                          "text, data and false also on read, vread and history) and _elements "
                          "(also on read, vread and history); subsets carry the SUBSETTED tag. "
                          "_contained and _containedType are not served (400)."));
    // Token modifiers (decisions 0045, 0043): :in / :not-in by the terminology's value sets
    // (only with a terminology) and by ValueSets stored here.
    const std::string token_documentation =
        std::string(
            "Modifiers :not, :text, :missing, :of-type (system|code|value: an Identifier "
            "whose type has that Coding, decision 0044), :in and :not-in (") +
        (options.value_set_codes ? "a ValueSet canonical of the server's terminology, as "
                                   "ValueSet/$expand lists it, or "
                                 : "") +
        "a ValueSet stored on this server, by ValueSet/id or its url: compose.include of explicit "
        "concepts" +
        (options.value_set_codes ? " or of whole code systems the terminology knows" : "") +
        ", compose.exclude of concepts, or expansion.contains; also at the end of chains and in "
        "_has; on a code element such as Patient.gender, a code of the system its R4 binding "
        "implies matches the element's value, decision 0056); :below and :above (system|code: "
        "the code and the codes under it, or above it, in the concept.concept is-a hierarchy "
        "of a CodeSystem stored on this server with that url, decision 0056; other systems, "
        "among them the terminology's flat code systems, 400 not-supported)";
    Json& resources = rest.Set("resource", Json::Array());
    const auto& registry = detail::SearchParamRegistry::Instance();
    static constexpr const char* kTypeInteractions[] = {
        "read",         "vread",  "update",      "delete", "history-instance",
        "history-type", "create", "search-type", "patch"};
    // searchRevInclude: `_revinclude=Source:param` is accepted for every reference parameter of
    // the registry BuildSearch reads (detail::SearchParamRegistry); it finds the Source resources
    // whose `param` points at a matched resource, so it is declared for each type the parameter
    // can target (SearchParamDef::targets; an empty list targets any type).
    std::map<std::string, std::vector<std::string>, std::less<>> revincludes;
    std::vector<std::string> any_target;
    for (const std::string& source : registry.Types()) {
      for (const auto& [code, param] : registry.ForType(source)) {
        if (param.def->type != detail::ParamType::kReference) continue;
        std::string name = source + ":" + code;
        std::string_view targets = param.def->targets;
        if (targets.empty()) any_target.push_back(name);
        while (!targets.empty()) {
          const auto comma = targets.find(',');
          revincludes[std::string(targets.substr(0, comma))].push_back(name);
          targets =
              comma == std::string_view::npos ? std::string_view() : targets.substr(comma + 1);
        }
      }
    }
    // Every type the handler serves (detail::IsResourceTypeName), Binary and Parameters (no
    // search parameters of their own: _id and _lastUpdated) included.
    for (const std::string& type : detail::ResourceTypeNames()) {
      Json r = Json::Object();
      r.Set("type", Json::String(type));
      Json& inter = r.Set("interaction", Json::Array());
      for (const char* code : kTypeInteractions) {
        Json i = Json::Object();
        i.Set("code", Json::String(code));
        inter.Push(std::move(i));
      }
      r.Set("versioning", Json::String("versioned-update"));
      r.Set("readHistory", Json::Bool(true));
      r.Set("updateCreate", Json::Bool(true));
      r.Set("conditionalCreate", Json::Bool(true));
      // If-None-Match with the current ETag is 304 (read and vread); If-Modified-Since is not
      // evaluated (the read is answered in full), so "not-match" and not "full-support".
      r.Set("conditionalRead", Json::String("not-match"));
      // PUT/DELETE [base]/Type?criteria, also as transaction and batch entries; a delete
      // whose criteria match several resources is 412.
      r.Set("conditionalUpdate", Json::Bool(true));
      r.Set("conditionalDelete", Json::String("single"));
      // Members in the R4 element order (searchInclude, searchRevInclude, searchParam); the
      // references are taken after the last Set (Set may move the members).
      r.Set("searchInclude", Json::Array());
      std::vector<std::string> revs = any_target;
      if (auto it = revincludes.find(type); it != revincludes.end()) {
        revs.insert(revs.end(), it->second.begin(), it->second.end());
      }
      // `Source:*` (R4 search.html "Including other resources": the wildcard for the search
      // parameter name) for each source type with a parameter that can reference this type.
      const std::size_t named = revs.size();
      for (std::size_t i = 0; i < named; ++i) {
        revs.push_back(revs[i].substr(0, revs[i].find(':')) + ":*");
      }
      std::sort(revs.begin(), revs.end());
      revs.erase(std::unique(revs.begin(), revs.end()), revs.end());
      const bool revs_empty = revs.empty();
      if (!revs.empty()) {
        Json rev = Json::Array();
        for (std::string& name : revs) rev.Push(Json::String(std::move(name)));
        r.Set("searchRevInclude", std::move(rev));
      }
      r.Set("searchParam", Json::Array());
      Json& inc = *r.Find("searchInclude");
      Json& sp = *r.Find("searchParam");
      for (const char* special : {"_id", "_lastUpdated"}) {
        Json p = Json::Object();
        p.Set("name", Json::String(special));
        p.Set("type", Json::String(std::string_view(special) == "_id" ? "token" : "date"));
        sp.Push(std::move(p));
      }
      // `_text` and `_content` (R4 SearchParameters Resource-text / Resource-content, type
      // string; their query language in words, decision 0041).
      for (const char* special : {"_text", "_content"}) {
        const bool text = std::string_view(special) == "_text";
        // _text is DomainResource's: not of Binary, Bundle, Parameters.
        if (text && (type == "Binary" || type == "Bundle" || type == "Parameters")) continue;
        Json p = Json::Object();
        p.Set("name", Json::String(special));
        p.Set("definition",
              Json::String(text ? "http://hl7.org/fhir/SearchParameter/DomainResource-text"
                                : "http://hl7.org/fhir/SearchParameter/Resource-content"));
        p.Set("type", Json::String("string"));
        p.Set("documentation",
              Json::String(std::string(text ? "The narrative (text.div without markup)"
                                            : "Every string value of the resource and its "
                                              "narrative") +
                           ", NFKC case folded; each term matches as a substring. Terms "
                           "separated by spaces must all occur, OR separates alternatives, "
                           "\"quoted phrase\" is one term; commas OR; no modifiers"));
        sp.Push(std::move(p));
      }
      static constexpr const char* kTypeNames[] = {"token",    "string", "date", "reference",
                                                   "quantity", "number", "uri",  "composite"};
      for (const auto& [code, param] : registry.ForType(type)) {
        Json p = Json::Object();
        p.Set("name", Json::String(code));
        // R4's SearchParameter ids: "Patient-name"; those of Resource without the '_'
        // ("Resource-tag"), for every type.
        std::string definition = "http://hl7.org/fhir/SearchParameter/";
        definition += param.def->resource_type;
        definition += '-';
        definition += std::string_view(code).substr(code.starts_with('_') ? 1 : 0);
        p.Set("definition", Json::String(std::move(definition)));
        p.Set("type", Json::String(kTypeNames[static_cast<int>(param.def->type)]));
        if (param.def->type == detail::ParamType::kUri) {
          // R4 CapabilityStatement has no element for modifiers: said in words.
          p.Set("documentation", Json::String("Matches the whole URI exactly; modifiers :below "
                                              "and :above (at '/' boundaries) and :missing"));
        } else if (param.def->type == detail::ParamType::kToken) {
          p.Set("documentation", Json::String(token_documentation));
        }
        if (param.def->type == detail::ParamType::kQuantity) {  // decision 0047
          p.Set("documentation",
                Json::String("With system http://unitsofmeasure.org and a UCUM unit kakehashi "
                             "converts, compares in canonical units (5.4|http://unitsofmeasure.org"
                             "|g/L matches 540 mg/dL); special units (Cel, [degF], [pH]), other "
                             "systems, no system and unknown or malformed units compare by value "
                             "and system|code as given. Modifier: :missing"));
        } else if (param.def->type == detail::ParamType::kComposite) {
          p.Set("documentation", Json::String("Components separated by '$'; a quantity component "
                                              "compares by system|code as given (no UCUM "
                                              "conversion). Modifier: :missing"));
        }
        if (param.def->type == detail::ParamType::kReference) {
          // Decision 0044: chains (R4 search.html "Chained parameters") and their limits.
          p.Set("documentation",
                Json::String("Modifiers :[type], :identifier (Reference.identifier, "
                             "[system|]value) and :missing. Chainable "
                             "(param[:Type].param...), the type required where the "
                             "parameter can reference several types; a criterion crosses at "
                             "most 3 references (chain links and _has levels together)"));
        }
        sp.Push(std::move(p));
        if (param.def->type == detail::ParamType::kReference) {
          inc.Push(Json::String(type + ":" + code));
        }
      }
      if (!inc.Items().empty()) inc.Push(Json::String(type + ":*"));  // the wildcard (R4 #include)
      if (!revs_empty) {
        // Reverse chaining (R4 search.html "Reverse Chaining"), for a type that some reference
        // parameter can point at (as searchRevInclude).
        Json p = Json::Object();
        p.Set("name", Json::String("_has"));
        p.Set("type", Json::String("special"));
        p.Set("documentation",
              Json::String("_has:Type:reference:parameter=value, nestable; a criterion "
                           "crosses at most 3 references (chain links and _has levels "
                           "together)"));
        sp.Push(std::move(p));
      }
      if (type == "Patient") {
        Json& ops = r.Set("operation", Json::Array());
        Json op = Json::Object();
        op.Set("name", Json::String("everything"));
        op.Set("definition",
               Json::String("http://hl7.org/fhir/OperationDefinition/Patient-everything"));
        op.Set("documentation",
               Json::String("GET or POST (Parameters or form). IN parameters: start, end, "
                            "_since, _type, _count (R4 OperationDefinition), and the search "
                            "result parameters _summary (true, text, data, count, false) and "
                            "_elements; subsetted entries carry the SUBSETTED tag"));
        ops.Push(std::move(op));
      }
      for (const TypeOperation& op : options.type_operations) {
        if (op.type != type) continue;
        Json* ops = r.Find("operation");
        if (ops == nullptr) ops = &r.Set("operation", Json::Array());
        Json o = Json::Object();
        o.Set("name", Json::String(op.name));
        o.Set("definition", Json::String(op.definition));
        ops->Push(std::move(o));
      }
      resources.Push(std::move(r));
    }
    Json& interactions = rest.Set("interaction", Json::Array());
    for (const char* code : {"transaction", "batch", "history-system"}) {
      Json i = Json::Object();
      i.Set("code", Json::String(code));
      if (std::string_view(code) != "history-system") {
        // R4 CapabilityStatement has no element for the entry kinds: said in words.
        i.Set("documentation",
              Json::String("Entries: GET; POST (ifNoneExist); PUT, DELETE and PATCH on Type/id "
                           "or Type?criteria (conditional: no match creates / deletes nothing / "
                           "is 404 for PATCH, several 412); PATCH carries a Binary "
                           "application/json-patch+json or a Parameters FHIRPath Patch. Processed "
                           "DELETE, POST, PUT/PATCH, GET; conditional references resolved"));
      }
      interactions.Push(std::move(i));
    }
    return detail::ToJsonText(cs);
  }

  // ---------------------------------------------------------------- routing

  Response MethodNotAllowed(std::string_view allowed) const {
    Response r = detail::FailureResponse(Fail(405, "not-supported", "method not allowed here"));
    r.SetHeader("Allow", std::string(allowed));
    return r;
  }

  // The interaction a request's method, target and headers name, found without its body and
  // without the store (R4 §3.1.0 URL patterns). Route runs it; Handler::AnswerFromHead uses the
  // failures alone, to answer a request before its body was sent.
  struct Endpoint {
    enum Kind {
      kBundle,      // POST [base]
      kMetadata,    // GET [base]/metadata
      kHistory,     // GET [base]/_history, [base]/Type/_history, [base]/Type/id/_history
      kSearch,      // GET [base]/Type
      kCreate,      // POST [base]/Type
      kSearchPost,  // POST [base]/Type/_search
      kOperation,   // GET|POST [base]/Type/$name
      kRead,        // GET|HEAD [base]/Type/id
      kUpdate,      // PUT [base]/Type/id
      kDelete,      // DELETE [base]/Type/id
      kCondUpdate,  // PUT [base]/Type?criteria
      kCondDelete,  // DELETE [base]/Type?criteria
      kPatch,       // PATCH [base]/Type/id
      kCondPatch,   // PATCH [base]/Type?criteria
      kEverything,  // GET|POST [base]/Patient/id/$everything
      kVRead,       // GET [base]/Type/id/_history/vid
      kLive,        // GET|HEAD /health/live (outside the base)
      kReady,       // GET|HEAD /health/ready
    };
    Kind kind = kMetadata;
    std::string type;  // "" for system-level interactions
    std::string id;
    std::string vid;
    QueryParams params;
    const TypeOperation* op = nullptr;
  };

  // /health/live and /health/ready (health.hpp, decision 0054): outside the FHIR base, so
  // nothing of a FHIR request's resolution (_format, Accept) applies; GET and HEAD only.
  std::variant<Response, Endpoint> ResolveHealth(const Request& request) const {
    if (request.method != "GET" && request.method != "HEAD") return MethodNotAllowed("GET, HEAD");
    Endpoint e;
    e.kind = request.target.starts_with("/health/live") ? Endpoint::kLive : Endpoint::kReady;
    return e;
  }

  // The endpoint, or the failure the head alone decides: 404 (outside the base, unknown type,
  // operation or endpoint), 405 (with Allow), 400 (malformed id), 406 (_format not JSON), 415 (POST
  // _search without a form body type).
  std::variant<Response, Endpoint> Resolve(const Request& request) const {
    std::string_view target = request.target;
    std::string_view query;
    if (auto qm = target.find('?'); qm != std::string_view::npos) {
      query = target.substr(qm + 1);
      target = target.substr(0, qm);
    }
    if (!(target == "/fhir" || target.starts_with("/fhir/"))) {
      if (target == "/health/live" || target == "/health/ready") return ResolveHealth(request);
      return detail::FailureResponse(Fail(404, "not-found", "the FHIR base is /fhir"));
    }
    target.remove_prefix(5);
    std::vector<std::string> seg;
    while (!target.empty()) {
      if (target.front() == '/') {
        target.remove_prefix(1);
        continue;
      }
      auto slash = target.find('/');
      seg.push_back(detail::PercentDecode(target.substr(0, slash), false));
      target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
    }
    Endpoint e;
    e.params = detail::ParseQuery(query);
    const std::string& m = request.method;
    // _format (R4 http.html, "Content Types and encodings"): json, application/json and
    // application/fhir+json (its
    // '+' may arrive decoded as a space) name the JSON format; xml, ttl, html and anything else
    // name a format this server does not produce: 406.
    // Without _format, the Accept field decides (RFC 9110 §12.5.1; _format overrides it): a
    // list that admits neither application/fhir+json nor application/json (directly,
    // application/* or */*, q > 0) is 406.
    if (auto fmt = std::find_if(e.params.begin(), e.params.end(),
                                [](const auto& p) { return p.first == "_format"; });
        fmt != e.params.end()) {
      if (fmt->second.find("json") == std::string::npos) {
        return detail::FailureResponse(Fail(406, "not-supported", "only JSON is supported"));
      }
    } else if (std::string_view accept = request.Header("Accept");
               !accept.empty() && !detail::AcceptsJson(accept)) {
      return detail::FailureResponse(
          Fail(406, "not-supported", "Accept admits no format this server produces (only JSON)"));
    }
    auto is = [&e](Endpoint::Kind kind) -> std::variant<Response, Endpoint> {
      e.kind = kind;
      return std::move(e);
    };
    if (seg.empty()) {
      if (m == "POST") return is(Endpoint::kBundle);
      return MethodNotAllowed("POST");
    }
    if (seg[0] == "metadata" && seg.size() == 1) {
      if (m != "GET") return MethodNotAllowed("GET");
      return is(Endpoint::kMetadata);
    }
    if (seg[0] == "_history" && seg.size() == 1) {
      if (m != "GET") return MethodNotAllowed("GET");
      return is(Endpoint::kHistory);
    }
    e.type = seg[0];
    if (!detail::IsResourceTypeName(e.type)) {
      return detail::FailureResponse(Fail(404, "not-supported", "unknown resource type"));
    }
    if (seg.size() == 1) {
      if (m == "GET") return is(Endpoint::kSearch);
      if (m == "POST") return is(Endpoint::kCreate);
      // Conditional update and delete (R4 http.html 3.1.0.4.3, 3.1.0.7.1): only with a query.
      if (m == "PUT" && !query.empty()) return is(Endpoint::kCondUpdate);
      if (m == "DELETE" && !query.empty()) return is(Endpoint::kCondDelete);
      if (m == "PATCH" && !query.empty()) return is(Endpoint::kCondPatch);
      return MethodNotAllowed("GET, POST");
    }
    if (seg.size() == 2 && seg[1] == "_search") {
      if (m != "POST") return MethodNotAllowed("POST");
      std::string_view ct = request.Header("Content-Type");
      if (!ct.empty() && ct.find("application/x-www-form-urlencoded") == std::string_view::npos) {
        return detail::FailureResponse(
            Fail(415, "not-supported", "POST _search needs application/x-www-form-urlencoded"));
      }
      return is(Endpoint::kSearchPost);
    }
    if (seg.size() == 2 && seg[1] == "_history") {
      if (m != "GET") return MethodNotAllowed("GET");
      return is(Endpoint::kHistory);
    }
    if (seg.size() == 2 && seg[1].starts_with('$')) {  // [base]/Type/$name (HandlerOptions)
      for (const TypeOperation& op : options.type_operations) {
        if (op.type != e.type || seg[1].compare(1, std::string::npos, op.name) != 0) continue;
        if (m != "GET" && m != "POST") return MethodNotAllowed("GET, POST");
        e.op = &op;
        return is(Endpoint::kOperation);
      }
      return detail::FailureResponse(Fail(404, "not-supported", "unknown operation"));
    }
    e.id = seg[1];
    if (!detail::IsValidId(e.id)) {
      return detail::FailureResponse(Fail(400, "invalid", "malformed resource id"));
    }
    if (seg.size() == 2) {
      if (m == "GET" || m == "HEAD") return is(Endpoint::kRead);
      if (m == "PUT") return is(Endpoint::kUpdate);
      if (m == "DELETE") return is(Endpoint::kDelete);
      if (m == "PATCH") return is(Endpoint::kPatch);
      return MethodNotAllowed("GET, PUT, DELETE, PATCH");
    }
    if (seg.size() == 3 && seg[2] == "$everything" && e.type == "Patient") {
      if (m != "GET" && m != "POST") return MethodNotAllowed("GET, POST");
      return is(Endpoint::kEverything);
    }
    if (seg[2] == "_history") {
      if (m != "GET") return MethodNotAllowed("GET");
      if (seg.size() == 3) return is(Endpoint::kHistory);
      if (seg.size() == 4) {
        e.vid = seg[3];
        return is(Endpoint::kVRead);
      }
    }
    return detail::FailureResponse(Fail(404, "not-found", "no such endpoint"));
  }

  // `defer`: when set, a write request is prepared into it instead of run (PrepareRequest).
  Response Route(const Request& request, std::unique_ptr<PreparedRequest>* defer = nullptr) const {
    auto resolved = Resolve(request);
    if (auto* failed = std::get_if<Response>(&resolved)) return std::move(*failed);
    Endpoint& e = std::get<Endpoint>(resolved);
    switch (e.kind) {
      case Endpoint::kBundle: return Deliver(Bundle(request), defer);
      case Endpoint::kMetadata: {
        Response r;
        r.SetHeader("Content-Type", std::string(detail::kFhirJson));
        r.body = capability;
        return r;
      }
      case Endpoint::kHistory: return History(e.type, e.id, e.params);
      case Endpoint::kSearch: return Search(e.type, e.params);
      case Endpoint::kCreate: return Deliver(Create(e.type, request), defer);
      case Endpoint::kSearchPost: {
        // POST _search: form body parameters plus any in the URL (R4 §3.1.1.0).
        for (auto& p : detail::ParseQuery(request.body)) e.params.push_back(std::move(p));
        return Search(e.type, e.params);
      }
      case Endpoint::kOperation: return e.op->run(request);
      case Endpoint::kRead: return Read(e.type, e.id, request, e.params);
      case Endpoint::kUpdate: return Deliver(Update(e.type, e.id, request), defer);
      case Endpoint::kDelete: return Deliver(Remove(e.type, e.id, request), defer);
      case Endpoint::kCondUpdate:
        return Deliver(ConditionalUpdate(e.type, e.params, request), defer);
      case Endpoint::kCondDelete:
        return Deliver(ConditionalRemove(e.type, e.params, request), defer);
      case Endpoint::kPatch: return Deliver(Patch(e.type, e.id, nullptr, request), defer);
      case Endpoint::kCondPatch: return Deliver(Patch(e.type, {}, &e.params, request), defer);
      case Endpoint::kEverything:
        if (request.method == "POST") {
          if (auto f = EverythingBody(request, e.params)) return detail::FailureResponse(*f);
        }
        return Everything(e.id, e.params);
      case Endpoint::kVRead: return VRead(e.type, e.id, e.vid, e.params);
      case Endpoint::kLive: return options.health->Live();
      case Endpoint::kReady: return options.health->Ready();
    }
    return detail::FailureResponse(Fail(500, "exception", "unknown endpoint kind"));
  }
};

namespace {

HandlerOptions WithHealth(store::Store& store, HandlerOptions options) {
  if (!options.health) options.health = std::make_shared<Health>(store);
  return options;
}

}  // namespace

Handler::Handler(store::Store& store, HandlerOptions options)
    : impl_(std::make_unique<Impl>(store, WithHealth(store, std::move(options)))) {}
Handler::~Handler() = default;

const HandlerOptions& Handler::Options() const {
  return impl_->options;
}

Result<std::shared_ptr<const detail::CachedResource>> Handler::ReadCurrent(
    std::string_view type, std::string_view id) const {
  return impl_->ReadCurrent(type, id);
}

std::shared_ptr<const detail::CachedResource> Handler::ReadCached(std::string_view type,
                                                                  std::string_view id) const {
  if (!impl_->cache || !impl_->wal) return nullptr;
  auto epoch = impl_->wal->Current();
  if (!epoch) return nullptr;
  return impl_->cache->Find(type, id, *epoch);
}

std::shared_ptr<const detail::CachedResource> Handler::TryReadCurrent(std::string_view type,
                                                                      std::string_view id) const {
  if (!impl_->wal) return nullptr;
  auto epoch = impl_->wal->Current();
  if (!epoch) return nullptr;
  // The row is at `epoch` or newer (Store::ReadCurrent's rule), so the entry is tagged with it.
  auto row = impl_->store.TryReadCurrent(type, id, *epoch);
  if (!row) return nullptr;
  auto entry = detail::MakeCachedResource(std::move(*row));
  if (impl_->cache) {
    entry->epoch = *epoch;
    impl_->cache->Insert(type, id, entry, /*wait=*/false);  // on an io thread: never waits
  }
  return entry;
}

bool Handler::ReadsInProcess() const {
  return impl_->store.ReadsInProcess();
}

void Handler::ReadCurrentMany(std::span<const store::Store::ReadKey> keys,
                              store::Store::ReadSink& sink) const {
  impl_->store.ReadCurrentMany(keys, sink);
}

Response Handler::Transaction(const Request& request, const BeforeCommit& before_commit) const {
  return impl_->Deliver(impl_->Bundle(request, &before_commit), nullptr);
}

// ---------------------------------------------------------------- bulk writes (handler.hpp)

// A prepared resource of the bulk-write API: Prepared (top of this file) with its key. A
// resource whose markers are not unique always counts as changed.
struct PreparedResource::Data {
  std::string type;
  std::string id;
  Prepared p;
};

PreparedResource::PreparedResource() = default;
PreparedResource::~PreparedResource() = default;
PreparedResource::PreparedResource(PreparedResource&&) noexcept = default;
PreparedResource& PreparedResource::operator=(PreparedResource&&) noexcept = default;
const std::string& PreparedResource::Type() const {
  return data_->type;
}
const std::string& PreparedResource::Id() const {
  return data_->id;
}

Result<std::unique_ptr<store::Session>> Handler::OpenSession() const {
  return impl_->store.OpenSession();
}

std::optional<PreparedResource> Handler::PrepareWrite(std::string_view type, std::string_view id,
                                                      std::string_view json,
                                                      IssueSink& issues) const {
  auto report = [&](const Failure& f) {
    bool error = false;
    for (const Issue& issue : f.issues) {
      error = error || issue.severity == Severity::kError || issue.severity == Severity::kFatal;
      issues.Report(issue);
    }
    if (!error) issues.Error("gateway.write.invalid", {}, f.diagnostics);
  };
  if (!detail::IsResourceTypeName(type)) {
    report(Fail(400, "invalid", "unknown resource type"));
    return std::nullopt;
  }
  if (!detail::IsValidId(id)) {
    report(Fail(400, "invalid", "id must match [A-Za-z0-9\\-\\.]{1,64} (R4 §2.6.2.7)"));
    return std::nullopt;
  }
  Json resource;
  if (auto f = impl_->ParseResource(json, type, resource)) {
    report(*f);
    return std::nullopt;
  }
  if (resource.Str("id") != id) {
    report(Fail(400, "invalid", "the resource id differs from the id it is written as"));
    return std::nullopt;
  }
  auto prepared = impl_->Prepare(std::string(type), std::string(id), std::move(resource));
  if (auto* f = std::get_if<Failure>(&prepared)) {
    report(*f);
    return std::nullopt;
  }
  PreparedResource out;
  out.data_ = std::make_unique<PreparedResource::Data>();
  PreparedResource::Data& d = *out.data_;
  d.type = std::string(type);
  d.id = std::string(id);
  d.p = std::move(std::get<Prepared>(prepared));
  return out;
}

Result<WriteOutcome> Handler::WritePrepared(store::Session& session,
                                            PreparedResource resource) const {
  PreparedResource::Data& r = *resource.data_;
  Prepared& d = r.p;
  KAKEHASHI_TRY(auto current, session.LockAndRead(r.type, r.id));
  const std::optional<store::ResourceRow>& cur = current;
  if (cur && !cur->deleted && !d.tree) {
    // Unchanged: the stored text is the pieces around two quoted values.
    const auto pieces = Pieces(d);
    std::string_view stored = cur->json;
    bool same = stored.starts_with(pieces[0]);
    std::size_t at = pieces[0].size();
    for (int i = 1; same && i < 3; ++i) {
      // A quoted value (versionId digits or an instant: no quote or backslash inside).
      same = at < stored.size() && stored[at] == '"';
      const std::size_t end = same ? stored.find('"', at + 1) : std::string_view::npos;
      same = same && end != std::string_view::npos;
      if (!same) break;
      at = end + 1;
      if (i == 1) {
        same = stored.substr(at, pieces[1].size()) == pieces[1];
        at += pieces[1].size();
      } else {
        same = stored.substr(at) == pieces[2];
      }
    }
    if (same) return WriteOutcome::kUnchanged;
  }
  store::ResourceRow row;
  row.type = r.type;
  row.id = r.id;
  row.version = cur ? cur->version + 1 : 1;
  row.last_updated_us = detail::NowUs();
  row.json = Render(d, row.version, row.last_updated_us);
  row.method = store::WriteMethod::kPut;  // the bulk-write API writes as a REST PUT does
  KAKEHASHI_TRY_VOID(session.Write(row, d.index));
  return (cur && !cur->deleted) ? WriteOutcome::kUpdated : WriteOutcome::kCreated;
}

Result<WriteOutcome> Handler::WriteDelete(store::Session& session, std::string_view type,
                                          std::string_view id) const {
  KAKEHASHI_TRY(auto current, session.LockAndRead(type, id));
  if (!current || current->deleted) return WriteOutcome::kAbsent;
  store::ResourceRow row;
  row.type = std::string(type);
  row.id = std::string(id);
  row.version = current->version + 1;
  row.last_updated_us = detail::NowUs();
  row.deleted = true;
  row.method = store::WriteMethod::kDelete;
  KAKEHASHI_TRY_VOID(session.Write(row, {}));
  return WriteOutcome::kDeleted;
}

namespace {

// 415 for a body that is neither JSON nor a form. `has_body`: the request carries a body.
std::optional<Response> CheckContentType(const Request& request, bool has_body) {
  const std::string& m = request.method;
  if ((m == "POST" || m == "PUT" || m == "PATCH") && has_body) {
    std::string_view ct = request.Header("Content-Type");
    bool form = ct.find("application/x-www-form-urlencoded") != std::string_view::npos;
    if (!ct.empty() && !form && ct.find("json") == std::string_view::npos) {
      return detail::FailureResponse(
          Fail(415, "not-supported", "send application/fhir+json (XML is not supported)"));
    }
  }
  return std::nullopt;
}

}  // namespace

Response Handler::Handle(const Request& request) const {
  if (auto r = CheckContentType(request, !request.body.empty())) return std::move(*r);
  Response r = impl_->Route(request);
  if (request.method == "HEAD") r.body.clear();
  return r;
}

Handler::Work Handler::Classify(const Request& request) const {
  if (CheckContentType(request, !request.body.empty())) return Work::kNoStore;
  auto resolved = impl_->Resolve(request);
  const auto* e = std::get_if<Impl::Endpoint>(&resolved);
  if (e == nullptr) return Work::kNoStore;
  switch (e->kind) {
    case Impl::Endpoint::kMetadata:
    case Impl::Endpoint::kLive: return Work::kNoStore;
    case Impl::Endpoint::kBundle: return Work::kBundle;
    case Impl::Endpoint::kCreate:
    case Impl::Endpoint::kUpdate:
    case Impl::Endpoint::kDelete:
    case Impl::Endpoint::kCondUpdate:
    case Impl::Endpoint::kCondDelete:
    case Impl::Endpoint::kPatch:
    case Impl::Endpoint::kCondPatch: return Work::kWrite;
    default: return Work::kRead;
  }
}

std::optional<Response> Handler::AnswerFromHead(const Request& request) const {
  if (auto r = CheckContentType(request, true)) return std::move(*r);
  auto resolved = impl_->Resolve(request);
  if (auto* failed = std::get_if<Response>(&resolved)) return std::move(*failed);
  return std::nullopt;
}

std::variant<Response, std::unique_ptr<PreparedRequest>> Handler::PrepareRequest(
    const Request& request) const {
  if (auto r = CheckContentType(request, !request.body.empty())) return std::move(*r);
  std::unique_ptr<PreparedRequest> job;
  Response r = impl_->Route(request, &job);
  if (job) return job;
  if (request.method == "HEAD") r.body.clear();
  return r;
}

}  // namespace kakehashi::gateway
