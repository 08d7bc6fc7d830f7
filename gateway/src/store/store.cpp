// OpenStore: picks the backend from the --db URL; the error category of the store.
#include "kakehashi/gateway/store/store.hpp"

#include "store/backends.hpp"

#include <algorithm>

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

Result<void> Session::Savepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::ReleaseSavepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<void> Session::RollbackToSavepoint(std::string_view /*name*/) {
  return make_error_code(errc::kUnsupported);
}

Result<std::optional<ResourceRow>> Store::ReadCurrent(std::string_view type, std::string_view id,
                                                      const std::optional<DbState>& /*seen*/) {
  KAKEHASHI_TRY(auto session, OpenSession());
  return session->Read(type, id);
}

void Store::ReadCurrentMany(std::span<const ReadKey> keys, ReadSink& sink) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) sink.Waiting();
    sink.Read(i, ReadCurrent(keys[i].type, keys[i].id, std::nullopt));
  }
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options) {
  if (url.starts_with("sqlite://")) return detail::OpenSqliteStore(url.substr(9), options);
  if (url.starts_with("sqlite:")) return detail::OpenSqliteStore(url.substr(7), options);
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return detail::OpenPostgresStore(url, options);
  }
  return make_error_code(errc::kBadUrl);
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

void LogDbState(SafeText event, std::string_view sqlstate) {
  const bool valid =
      sqlstate.size() == 5 && std::all_of(sqlstate.begin(), sqlstate.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
      });
  DbLogger().Log(LogLevel::kError, event,
                 {{"sqlstate", SafeText::FromCode(valid ? sqlstate : std::string_view("?????"))}});
}

}  // namespace detail

}  // namespace kakehashi::gateway::store
