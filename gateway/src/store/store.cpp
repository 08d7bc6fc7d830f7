// OpenStore: picks the backend from the --db URL; the error category of the store.
#include "kakehashi/gateway/store/store.hpp"

#include "detail/json.hpp"
#include "indexer.hpp"
#include "store/backends.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace kakehashi::gateway::store {

namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kakehashi.gateway.store"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::kBadUrl: return "database URL must be sqlite:PATH or postgresql://...";
      case errc::kOpenFailed: return "the database could not be opened";
      case errc::kQueryFailed: return "a database statement failed";
      case errc::kConflict: return "a concurrent writer changed the same resource";
      case errc::kNotInTransaction: return "write outside a transaction";
      case errc::kUnsupported: return "this database backend is not built in";
      case errc::kUnavailable: return "the connection to the database was lost";
      case errc::kCommitUnknown:
        return "the connection to the database was lost during commit; the write may or may not "
               "be stored";
      case errc::kDuplicateKey: return "a row with the same key is already stored";
      case errc::kIndexing: return "the search index is being rebuilt";
    }
    return "unknown store error";
  }
};

}  // namespace

const boost::system::error_category& store_category() noexcept {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

Result<std::vector<std::pair<std::string, std::string>>> Session::ReadCheckpoints(
    std::string_view /*source*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::WriteCheckpoint(std::string_view /*source*/, std::string_view /*unit*/,
                                      std::string_view /*fingerprint*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::optional<std::string>> Session::ReadCheckpoint(std::string_view /*source*/,
                                                           std::string_view /*unit*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::vector<std::string>> Session::CheckpointSources(std::string_view /*unit*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::size_t> Session::CountCheckpoints(std::string_view /*source*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::vector<std::pair<std::string, std::string>>> Session::ReadCheckpointsAfter(
    std::string_view /*source*/, std::string_view /*after*/, std::size_t /*limit*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::WriteUnitResources(std::string_view /*source*/, std::string_view /*unit*/,
                                         std::string_view /*resources*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::string> Session::ReadUnitResources(std::string_view /*source*/,
                                               std::string_view /*unit*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::DeleteCheckpoint(std::string_view /*source*/, std::string_view /*unit*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::vector<ResourceRow>> Session::Referenced(const ReferencedQuery& /*query*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::int64_t> Session::CountReferenced(const ReferencedQuery& /*query*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::LockMany(std::span<const ResourceKey> /*keys*/) {
  return {};
}

Result<void> Session::Savepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::ReleaseSavepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::RollbackToSavepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<ReindexResult> Session::ReindexStep(const IndexDefinition& /*def*/,
                                           const ReindexRequest& /*request*/) {
  return make_error_code(errc::kUnsupported);
}

Result<int> Session::SchemaVersion() {
  return make_error_code(errc::kUnsupported);
}

IndexDefinition DefaultIndexDefinition() {
  IndexDefinition def;
  def.fingerprint = gateway::detail::IndexFingerprint();
  def.extract = [](const ResourceRow& row, IndexEntries& out) {
    gateway::detail::Json resource;
    gateway::detail::JsonError error;
    if (!gateway::detail::ParseJson(row.json, resource, error) || !resource.IsObject()) {
      return false;
    }
    gateway::detail::IndexResource(resource, out);
    return true;
  };
  return def;
}

std::string ReindexProgressText(std::int64_t done, std::int64_t total,
                                std::chrono::steady_clock::duration elapsed) {
  std::string text =
      "re-indexed " + std::to_string(done) + " of " + std::to_string(total) + " resources";
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (done > 0 && seconds > 0) {
    const double rate = static_cast<double>(done) / seconds;
    char tail[96];
    std::snprintf(tail, sizeof tail, " (%.0f/s, about %.0f s left)", rate,
                  static_cast<double>(std::max<std::int64_t>(0, total - done)) / rate);
    text += tail;
  }
  return text;
}

Result<ReindexResult> ReindexStepRetrying(Session& session, const IndexDefinition& def,
                                          const ReindexRequest& request) {
  Result<ReindexResult> step = session.ReindexStep(def, request);
  // A deadlock with a writer (PostgreSQL) or a busy database: the step was rolled back.
  for (int runs = 1; runs < 8 && !step && step.error() == errc::kConflict; ++runs) {
    step = session.ReindexStep(def, request);
  }
  return step;
}

Result<ReindexReport> Reindex(Store& store, const IndexDefinition& def,
                              const ReindexOptions& options) {
  KAKEHASHI_TRY(auto session, store.OpenSession());
  ReindexReport report;
  ReindexRequest request;
  request.limit = std::max<std::size_t>(1, options.batch);
  request.restart = options.restart;
  request.count = true;
  if (options.workers == SIZE_MAX) {
    const unsigned cores = std::thread::hardware_concurrency();
    request.workers = cores > 1 ? cores - 1 : 0;
  } else {
    request.workers = options.workers;
  }
  std::int64_t total = 0;
  while (true) {
    if (report.ran && options.stop && options.stop()) break;
    KAKEHASHI_TRY(auto step, ReindexStepRetrying(*session, def, request));
    request.restart = false;
    if (request.count && step.remaining >= 0) {
      total = step.remaining + step.resources;
      request.count = false;
    }
    if (step.done) break;
    report.ran = true;
    report.resources += step.resources;
    report.unreadable += step.unreadable;
    report.changed += step.changed;
    if (options.progress) options.progress(report.resources, std::max(total, report.resources));
  }
  return report;
}

Result<std::optional<ResourceRow>> Store::ReadCurrent(std::string_view type, std::string_view id,
                                                      const std::optional<DbState>& /*seen*/) {
  KAKEHASHI_TRY(auto session, OpenSession());
  return session->Read(type, id);
}

std::optional<ResourceRow> Store::TryReadCurrent(std::string_view, std::string_view,
                                                 const DbState&) {
  return std::nullopt;
}

void Store::ReadCurrentMany(std::span<const ReadKey> keys, ReadSink& sink) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) sink.Waiting();
    sink.Read(i, ReadCurrent(keys[i].type, keys[i].id, std::nullopt));
  }
}

namespace {

// OpenStore's progress line: only for 10,000 resources and more, at most every 5 s and at the
// end, with the rate so far and the time left at that rate (counts only: nothing of the
// resources themselves).
std::function<void(std::int64_t, std::int64_t)> StderrProgress() {
  struct State {
    bool started = false;
    std::chrono::steady_clock::time_point start;
    std::chrono::steady_clock::time_point last;
  };
  auto state = std::make_shared<State>();
  return [state](std::int64_t done, std::int64_t total) {
    if (total < 10000) return;
    const auto now = std::chrono::steady_clock::now();
    if (!state->started) {
      state->started = true;
      state->start = now;
      state->last = now;
      std::fprintf(stderr,
                   "kakehashi: the index definition changed (decision 0037): re-indexing %lld "
                   "resources before opening the database; `kakehashi reindex` does this ahead "
                   "of a restart\n",
                   static_cast<long long>(total));
    }
    if (done < total && now - state->last < std::chrono::seconds(5)) return;
    state->last = now;
    std::fprintf(stderr, "kakehashi: %s\n",
                 ReindexProgressText(done, total, now - state->start).c_str());
  };
}

Result<std::unique_ptr<Store>> OpenBackend(std::string_view url, const StoreOptions& options) {
  if (url.starts_with("sqlite://")) return detail::OpenSqliteStore(url.substr(9), options);
  if (url.starts_with("sqlite:")) return detail::OpenSqliteStore(url.substr(7), options);
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return detail::OpenPostgresStore(url, options);
  }
  return make_error_code(errc::kBadUrl);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options) {
  KAKEHASHI_TRY(auto store, OpenBackend(url, options));
  if (options.reindex_on_open) {
    ReindexOptions reindex;
    reindex.progress = StderrProgress();
    KAKEHASHI_TRY_VOID(
        Reindex(*store, options.index ? *options.index : DefaultIndexDefinition(), reindex));
  }
  return Result<std::unique_ptr<Store>>(std::move(store));
}

namespace detail {

namespace {
Logger& DbLogger() {
  static Logger logger(stderr, LogLevel::kWarn);
  return logger;
}
}  // namespace

void LogDbError(SafeText event, int code) {
  DbLogger().Log(LogLevel::kError, event, {{"code", code}});
}

void LogDbState(SafeText event, std::string_view sqlstate, LogLevel level) {
  const bool valid =
      sqlstate.size() == 5 && std::all_of(sqlstate.begin(), sqlstate.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
      });
  DbLogger().Log(level, event,
                 {{"sqlstate", SafeText::FromCode(valid ? sqlstate : std::string_view("?????"))}});
}

}  // namespace detail

}  // namespace kakehashi::gateway::store
