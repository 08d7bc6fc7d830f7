// Backend-neutral SQL for the store: schema, the search-to-SQL translation and the row mapping.
// Backends provide only Query/Exec with '?' placeholders (PostgreSQL rewrites them to $n) and the
// transaction and locking primitives.
#pragma once

#include "kakehashi/gateway/store/store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
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

// Schema version 5: short integer keys in index rows. search_keys gives every (resource type,
// search parameter code) pair a small integer `pid`; resources get an integer key `rk` (SQLite:
// the rowid, INTEGER PRIMARY KEY; PostgreSQL: a BIGINT column from sequence resources_rk_seq,
// unique); every index table holds (pid, value…, rk) instead of (type, id, param, value…). The
// index tables are rebuilt from their version 4 rows (joined to search_keys and resources), not
// from the stored JSON.
std::vector<std::string> SchemaV5(Dialect dialect);

// Schema version 6: idx_composite, the rows of composite search parameters (one per pair of
// component values found on one element; decision 0038), keyed (pid, code1, num, low, high,
// code2, system1, system2, rk).
std::vector<std::string> SchemaV6(Dialect dialect);

// Schema version 7 (decision 0041): idx_text, one row per resource with its `_text` narrative
// and `_content` text (rk, narrative, content), NFKC case folded. SQLite adds idx_text_fts, an
// FTS5 table with the trigram tokenizer over both columns whose content is idx_text (external
// content, kept in step by triggers), so a term of 3 or more characters is a substring probe.
// PostgreSQL's trigram indexes (pg_trgm) are not part of it: TextIndexSql, tried on every open.
std::vector<std::string> SchemaV7(Dialect dialect);

// Schema version 8 (decision 0048), SQLite only: idx_text_fts without its insert trigger (the
// session feeds it a transaction's rows in one statement before COMMIT, a search or an update)
// and with columnsize=0; rebuilt from idx_text. PostgreSQL: nothing.
std::vector<std::string> SchemaV8(Dialect dialect);

// Schema version 9 (decision 0049): history rows keyed by the resource's rk and version
// (history_by_version, integers) instead of (type, id, version) texts; SQLite's seq is the rowid
// without AUTOINCREMENT. A current version's JSON is stored once, in resources: its history
// row's json is NULL until the next version of the resource copies it there (Write).
std::vector<std::string> SchemaV9(Dialect dialect);
// Version 10: history.method, the interaction that wrote the version (POST, PUT, PATCH,
// DELETE; NULL in rows written before, '' when the writer did not say). Adds a column only.
std::vector<std::string> SchemaV10(Dialect dialect);

// PostgreSQL: the GIN trigram indexes of idx_text's two columns, `ops` the qualified operator
// class ("public.gin_trgm_ops"). Created when pg_trgm is (or can be) installed; without them a
// `_text`/`_content` search reads every idx_text row (decision 0041).
std::vector<std::string> TextIndexSql(std::string_view ops);

// "INSERT INTO search_keys …" of every (type, code) of the compiled search parameters that is
// not there yet (a newer kakehashi may know more parameters). Run by the backends on every open,
// under their migration lock, before ReadParamKeys.
std::string SyncParamKeysSql();

// The re-index state (decision 0037): one row (id 1) with the fingerprint of the index
// definition the rows are of, and done_rk NULL when every resource's rows are, else the rk up to
// which they are (a re-index in progress; the others still have the rows of some earlier
// definition). Not part of the versioned schema: created if absent (and its row with fingerprint
// '' — unknown, so a database written before it is re-indexed) by the backends on every open,
// under their migration lock.
std::vector<std::string> IndexStateSql();

// The index tables, each holding rows (pid, …, rk) of current resources; a resource's rows are
// deleted from all of them when it is written again (Write) or re-indexed (ReindexStep).
inline constexpr std::string_view kIndexTables[] = {
    "idx_token", "idx_string",   "idx_string_prefix", "idx_date",
    "idx_ref",   "idx_quantity", "idx_composite",     "idx_text"};

// The current schema version and the statements that bring version - 1 to `version` (1..9);
// each backend runs the missing ones on open and records each version in kakehashi_migrations.
inline constexpr int kSchemaVersion = 10;
std::vector<std::string> Schema(int version, Dialect dialect);

// search_keys as read when the store was opened (immutable afterwards, shared by its sessions).
class ParamKeys {
 public:
  static constexpr std::int64_t kNone = -1;  // matches no index row
  // Rows of "SELECT pid, type, param FROM search_keys".
  explicit ParamKeys(const Rows& rows);
  std::int64_t Find(std::string_view type, std::string_view param) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using ByParam = std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>>;

 public:
  // The keys of one type, looked up once for the rows of one resource (SqlSession queues ~8-16
  // index rows per resource: the type's hash and lookup once instead of per row). Null: a type
  // without keys, whose every Find is kNone.
  using OfType = const ByParam*;
  OfType ForType(std::string_view type) const;
  static std::int64_t Find(OfType of_type, std::string_view param);

 private:
  std::unordered_map<std::string, ByParam, Hash, std::equal_to<>> by_type_;
};

// The statement (with '?' placeholders) and bound values that SqlSession::Search / Count run for
// `query`: here so that tests and bench/bench_search_plan can read its query plan.
void SearchSql(const SearchQuery& query, Dialect dialect, const ParamKeys& keys, std::string& sql,
               std::vector<Param>& params);
void CountSql(const SearchQuery& query, Dialect dialect, const ParamKeys& keys, std::string& sql,
              std::vector<Param>& params);

// SQLite `_text`/`_content`: how many resources a term must match (trigram candidates) to be
// checked per resource in result order instead of read from the trigram index, for a store
// whose largest rk is `resources` (SqlSession::CommonTextProbes).
std::int64_t CommonTextThreshold(std::int64_t resources);
// SQLite: `query` with its common `_text`/`_content` predicates marked `probe` and the others
// given their `candidates` (nullopt when no predicate has a trigram probe), reading their trigram
// candidates (up to the threshold) through `run` (SqlSession::Query, or a test's);
// `threshold` > 0 replaces CommonTextThreshold (StoreOptions::search_threshold).
using RunQuery = std::function<Result<Rows>(std::string_view sql, const std::vector<Param>&)>;
Result<std::optional<SearchQuery>> CommonTextProbes(const SearchQuery& query, const RunQuery& run,
                                                    std::int64_t threshold = 0);

// Chains (decision 0042): how many matches make a chain of `links` links "common" for a page of
// `page` rows in a store whose largest rk is `resources` (PlanChains).
std::int64_t ChainThreshold(std::int64_t resources, int page, int links);
// How few matches make a top-level chain read by value drive the query (`few`) instead of a scan
// of the type in result order testing membership in them (PlanChains).
std::int64_t ChainDriveThreshold(std::int64_t resources, int page);
// Both backends: `query` with each forward chain of its top-level clauses marked `few` or
// `probe` (nullopt: no chain, or an explicit sort, which reads every match anyway). Bottom-up,
// each link's matches are counted through `run` up to the threshold (`threshold` > 0 replaces
// ChainThreshold): a link whose referenced resources' criteria, or whose own matches, reach it
// is `probe` (checked per resource through its reference rows, as are the links above it); one
// under it is `few` (its ids read whole and joined by value), at the top only under
// ChainDriveThreshold (`drive` > 0 replaces it; else `threshold` does when > 0), else left
// unmarked (read by value, the type scanned in result order).
Result<std::optional<SearchQuery>> PlanChains(const SearchQuery& query, Dialect dialect,
                                              const ParamKeys& keys, const RunQuery& run,
                                              std::int64_t threshold = 0, std::int64_t drive = 0);

class SqlSession : public Session {
 public:
  SqlSession(Dialect dialect, std::shared_ptr<const ParamKeys> keys,
             std::int64_t search_threshold = 0)
      : dialect_(dialect), keys_(std::move(keys)), search_threshold_(search_threshold) {}

  Result<std::optional<ResourceRow>> Read(std::string_view type, std::string_view id) override;
  Result<std::optional<ResourceRow>> ReadVersion(std::string_view type, std::string_view id,
                                                 std::int64_t version) override;
  Result<std::vector<HistoryRow>> History(const HistoryQuery& query) override;
  Result<std::vector<ResourceRow>> Search(const SearchQuery& query) override;
  Result<std::int64_t> Count(const SearchQuery& query) override;
  Result<std::vector<ResourceRow>> Referenced(const ReferencedQuery& query) override;
  Result<std::int64_t> CountReferenced(const ReferencedQuery& query) override;
  Result<void> Write(const ResourceRow& row, const IndexEntries& index) override;
  Result<void> Savepoint(std::string_view name) override;
  Result<void> ReleaseSavepoint(std::string_view name) override;
  Result<void> RollbackToSavepoint(std::string_view name) override;
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpoints(
      std::string_view source) override;
  Result<void> WriteCheckpoint(std::string_view source, std::string_view unit,
                               std::string_view fingerprint) override;
  Result<std::optional<std::string>> ReadCheckpoint(std::string_view source,
                                                    std::string_view unit) override;
  Result<std::vector<std::string>> CheckpointSources(std::string_view unit) override;
  Result<std::size_t> CountCheckpoints(std::string_view source) override;
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpointsAfter(
      std::string_view source, std::string_view after, std::size_t limit) override;
  Result<void> WriteUnitResources(std::string_view source, std::string_view unit,
                                  std::string_view resources) override;
  Result<std::string> ReadUnitResources(std::string_view source, std::string_view unit) override;
  Result<void> DeleteCheckpoint(std::string_view source, std::string_view unit) override;
  Result<ReindexResult> ReindexStep(const IndexDefinition& def,
                                    const ReindexRequest& request) override;
  Result<int> SchemaVersion() override;

 protected:
  virtual Result<Rows> Query(std::string_view sql, const std::vector<Param>& params) = 0;
  virtual Result<void> Exec(std::string_view sql, const std::vector<Param>& params) = 0;
  virtual bool InTransaction() const = 0;

  // Rows of Write() not inserted yet: the resources, history and index rows of a transaction go
  // in as multi-row INSERTs across its resources instead of a few statements per resource.
  // Flushed before a statement that reads them (Search, Count, History; Read and ReadVersion
  // of a resource still queued) or deletes index rows (Write of an existing resource);
  // backends flush before COMMIT and drop them on rollback.
  // `text_index` false (savepoints): the FTS5 rows of the queued idx_text rows stay queued.
  Result<void> FlushPending(bool text_index = true);
  void DropPending() noexcept;
  // SQLite (decision 0048): forgets the idx_text rows queued for idx_text_fts and the savepoint
  // marks; the backend calls it when a transaction begins and when it is rolled back.
  void ResetTextIndex() noexcept;
  // PostgreSQL bulk writes (StoreOptions::postgres_bulk): `rows` queued rows of one index
  // table, `params` row by row in the order of `table_columns` ("idx_x (a, b, …)"), stored in
  // one COPY FROM STDIN. Called by FlushTable for copy_rows_ rows and more; nullopt (the
  // default): not supported, the rows are INSERTed.
  virtual std::optional<Result<void>> CopyRows(std::string_view table_columns,
                                               const std::vector<Param>& params, std::size_t rows);
  // Rows of one index table from which they are copied (CopyRows) instead of INSERTed; 0:
  // never. When set, a table's rows are also held until kCopyHoldRows (not flushed every
  // kInsertBatch), so that a large transaction's rows go in a few COPYs.
  std::size_t copy_rows_ = 0;
  static constexpr std::size_t kCopyHoldRows = 16384;

  Dialect dialect_;
  std::shared_ptr<const ParamKeys> keys_;
  std::int64_t search_threshold_;  // StoreOptions::search_threshold (0: computed)

 private:
  Result<void> EnsureCheckpointTable();
  Result<void> FlushTable(std::size_t table);
  Result<void> FlushVersions();
  // SQLite (decision 0048): one INSERT … SELECT that gives idx_text_fts the idx_text rows of
  // text_queue_ (in rk order), so FTS5 writes one segment for them instead of one per statement.
  Result<void> FlushTextIndex();
  // The rk of a resource not stored yet. SQLite: MAX(rk) + 1, + 2, … read once per batch of
  // resources (writers hold the database's write lock); PostgreSQL: nextval of
  // resources_rk_seq, fetched 32 at a time (256 with copy_rows_).
  Result<std::int64_t> NewResourceKey();
  // Queues the index rows of resource `rk` (its rows in every index table deleted before).
  Result<void> QueueIndexRows(std::int64_t rk, const ResourceRow& row, const IndexEntries& index);
  Result<ReindexResult> ReindexInTransaction(const IndexDefinition& def,
                                             const ReindexRequest& request);
  // Re-index step: rows changed by the step only.
  Result<void> ReplaceChangedRows(std::size_t table, std::int64_t after, std::int64_t last,
                                  const std::vector<std::int64_t>& rks,
                                  const std::vector<std::size_t>& bounds,
                                  std::vector<unsigned char>& changed);
  bool checkpoint_table_ = false;
  // QueueIndexRows keeps every row queued instead of inserting kInsertBatch at a time (a re-index
  // step compares them with the stored ones first; FlushTable inserts them in chunks).
  bool hold_pending_ = false;
  std::int64_t next_rk_ = 0;           // SQLite: 0 = read MAX(rk) first
  std::vector<std::int64_t> rk_pool_;  // PostgreSQL: fetched, unused sequence values
  struct PendingRows {
    std::vector<Param> params;
    std::size_t rows = 0;
  };
  std::vector<PendingRows> pending_ = std::vector<PendingRows>(8);  // by index table
  bool has_pending_ = false;
  PendingRows pending_resources_;  // resources rows (with rk); the history rows are made of them
  std::vector<std::string_view> pending_methods_;               // history.method of each queued row
  std::set<std::pair<std::string, std::string>> pending_keys_;  // (type, id) queued
  // SQLite (decision 0048): the rk of every idx_text row written or queued in this transaction
  // that idx_text_fts does not have yet. FTS5 flushes its pending terms as a new segment at the
  // end of every statement (and savepoint) once it takes part in a transaction, so it is fed
  // only at FlushPending (before COMMIT, a search, an update's deletes), never per savepoint.
  std::vector<std::int64_t> text_queue_;
  // Open savepoints, innermost last, each with the rks given to idx_text_fts since it began:
  // rolling back to it undoes those FTS5 rows, so they are queued again (the rows still in
  // idx_text are found again, those rolled back are not).
  struct TextMark {
    std::string name;
    std::vector<std::int64_t> flushed;
  };
  std::vector<TextMark> text_marks_;
};

// Builds the WHERE clause of a search over alias `r` (a resources row). Exposed for tests.
void AppendConjunction(const Conjunction& where, std::string_view alias, std::string_view type,
                       Dialect dialect, const ParamKeys& keys, std::string& sql,
                       std::vector<Param>& params, int depth = 0, bool correlated = false);

// True when some AND-ed parameter only has alternatives that select few rows (ids, token codes,
// reference targets): then the index tables drive the query.
bool IsSelective(const Conjunction& where);

}  // namespace kakehashi::gateway::store::detail
