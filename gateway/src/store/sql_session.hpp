// Backend-neutral SQL for the store: schema, the search-to-SQL translation and the row mapping.
// Backends provide only Query/Exec with '?' placeholders (PostgreSQL rewrites them to $n) and the
// transaction and locking primitives.
#pragma once

#include "kakehashi/gateway/store/store.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kakehashi::gateway::store::detail {

using Param = std::variant<std::string, std::int64_t, double>;
using Rows = std::vector<std::vector<std::string>>;

enum class Dialect { kSqlite, kPostgres };

// Schema version 1, one statement per element. Identical tables on both backends. The
// *_by_resource indexes cover every column so correlated probes never touch the table rows; the
// value indexes end with id so IN sub-queries are covered by them (SQLite has no statistics and
// would otherwise prefer the covering by-resource index).
std::vector<std::string> SchemaV1(Dialect dialect);

// Schema version 2: idx_string_prefix, the first 1..kStringPrefixChars code points of every
// string index value with the resource's last_updated, so a prefix search (the default for
// string parameters) reads matches in result order from one index range instead of scanning
// resources and probing each. The last statement fills it from a version 1 database.
inline constexpr std::size_t kStringPrefixChars = 8;
std::vector<std::string> SchemaV2(Dialect dialect);

// Schema version 3: parameters stored as the union of others (CompiledParam::union_of, e.g.
// Observation combo-code) lose their own index rows, which duplicated the others'.
std::vector<std::string> SchemaV3(Dialect dialect);

// Schema version 4 (SQLite only; nothing on PostgreSQL): the index tables idx_token, idx_string,
// idx_date, idx_ref and idx_quantity become WITHOUT ROWID tables keyed by their by-value index
// (one B-tree per row less, the one that held the rows); duplicate rows of a resource are
// dropped (inserts are INSERT OR IGNORE).
std::vector<std::string> SchemaV4(Dialect dialect);

// The current schema version and the statements that bring version - 1 to `version` (1..4);
// each backend runs the missing ones on open and records each version in kakehashi_migrations.
inline constexpr int kSchemaVersion = 4;
std::vector<std::string> Schema(int version, Dialect dialect);

class SqlSession : public Session {
 public:
  explicit SqlSession(Dialect dialect) : dialect_(dialect) {}

  Result<std::optional<ResourceRow>> Read(std::string_view type, std::string_view id) override;
  Result<std::optional<ResourceRow>> ReadVersion(std::string_view type, std::string_view id,
                                                 std::int64_t version) override;
  Result<std::vector<HistoryRow>> History(const HistoryQuery& query) override;
  Result<std::vector<ResourceRow>> Search(const SearchQuery& query) override;
  Result<std::int64_t> Count(const SearchQuery& query) override;
  Result<void> Write(const ResourceRow& row, const IndexEntries& index) override;
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpoints(
      std::string_view source) override;
  Result<void> WriteCheckpoint(std::string_view source, std::string_view unit,
                               std::string_view fingerprint) override;
  Result<void> WriteUnitResources(std::string_view source, std::string_view unit,
                                  std::string_view resources) override;
  Result<std::string> ReadUnitResources(std::string_view source, std::string_view unit) override;
  Result<void> DeleteCheckpoint(std::string_view source, std::string_view unit) override;

 protected:
  virtual Result<Rows> Query(std::string_view sql, const std::vector<Param>& params) = 0;
  virtual Result<void> Exec(std::string_view sql, const std::vector<Param>& params) = 0;
  virtual bool InTransaction() const = 0;

  // Rows of Write() not inserted yet: the resources, history and index rows of a transaction go
  // in as multi-row INSERTs across its resources instead of a few statements per resource.
  // Flushed before a statement that reads them (Search, Count, History; Read and ReadVersion
  // of a resource still queued) or deletes index rows (Write of an existing resource);
  // backends flush before COMMIT and drop them on rollback.
  Result<void> FlushPending();
  void DropPending() noexcept;

  Dialect dialect_;

 private:
  Result<void> EnsureCheckpointTable();
  Result<void> FlushTable(std::size_t table);
  Result<void> FlushVersions();
  bool checkpoint_table_ = false;
  struct PendingRows {
    std::vector<Param> params;
    std::size_t rows = 0;
  };
  std::vector<PendingRows> pending_ = std::vector<PendingRows>(6);  // by index table
  bool has_pending_ = false;
  PendingRows pending_resources_;  // resources and history rows (the same parameters)
  std::set<std::pair<std::string, std::string>> pending_keys_;  // (type, id) queued
};

// Builds the WHERE clause of a search over alias `r` (a resources row). Exposed for tests.
void AppendConjunction(const Conjunction& where, std::string_view alias, std::string_view type,
                       Dialect dialect, std::string& sql, std::vector<Param>& params, int depth = 0,
                       bool correlated = false);

// True when some AND-ed parameter only has alternatives that select few rows (ids, token codes,
// reference targets): then the index tables drive the query.
bool IsSelective(const Conjunction& where);

}  // namespace kakehashi::gateway::store::detail
