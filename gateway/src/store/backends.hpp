// Backend factories and the store's PHI-safe error logging (database messages can quote values,
// so only an event name and the numeric code or the SQLSTATE are logged).
#pragma once

#include "kakehashi/common/log.hpp"
#include "kakehashi/gateway/store/store.hpp"

namespace kakehashi::gateway::store::detail {

Result<std::unique_ptr<Store>> OpenSqliteStore(std::string_view path, const StoreOptions& options);
Result<std::unique_ptr<Store>> OpenPostgresStore(std::string_view url, const StoreOptions& options);

// Tests: called by every SQLite store's reaper right before it ends a reader's read transaction
// (nullptr: none), so a test can hold the reaper there.
void SetReaperEndingHookForTesting(void (*hook)());

void LogDbError(SafeText event, int code);
// `sqlstate`: a PostgreSQL SQLSTATE (five digits or upper-case letters), logged as
// "sqlstate=57P01"; anything else is logged as "?????" (it never comes from a value).
void LogDbState(SafeText event, std::string_view sqlstate, LogLevel level = LogLevel::kError);

}  // namespace kakehashi::gateway::store::detail
