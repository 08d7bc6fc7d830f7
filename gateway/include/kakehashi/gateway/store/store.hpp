// The FHIR resource store: one interface, two backends (SQLite embedded default, PostgreSQL).
//
// A Store hands out Sessions (pooled database connections). A Session reads current and past
// versions, runs searches over the index tables, and writes inside Begin()/Commit(): Write()
// replaces the current row, appends a history row and replaces the resource's index rows, all in
// the session's transaction. LockAndRead() serialises writers of one resource across threads and
// processes (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock on the
// resource key), so If-Match checks done between LockAndRead() and Write() cannot lose updates.
//
// Resources are stored as canonical JSON text (what the handler serialised, meta included).
// Thread-safety: a Store is shared by all threads; a Session is used by one thread at a time.
// Errors: store::errc (category "kakehashi.gateway.store").
#pragma once

#include "kakehashi/common/result.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kakehashi::gateway::store {

enum class errc {
  kBadUrl = 1,            // --db value is neither sqlite:PATH nor postgresql://…
  kOpenFailed = 2,        // the database could not be opened or connected to
  kQueryFailed = 3,       // a statement failed (message logged without values)
  kConflict = 4,          // a concurrent writer won (serialization failure, deadlock, busy)
  kNotInTransaction = 5,  // Write/LockAndRead outside Begin()/Commit()
  kUnsupported = 6,       // backend compiled out (KAKEHASHI_WITH_POSTGRES=OFF)
  kUnavailable = 7,       // the connection to the database was lost; the transaction is gone
  kCommitUnknown = 8,     // the connection was lost during COMMIT: committed or not, unknown
  kDuplicateKey = 9,      // a unique key is taken (PostgreSQL 23505, SQLITE_CONSTRAINT)
  kIndexing = 10,         // searches wait for a re-index (background_reindex.hpp)
};
const boost::system::error_category& store_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

// The interaction that wrote a version (R4 http.html "history": a history entry's
// `request.method`), kept in its history row (schema 10). kUnknown: a version written before
// schema 10, or by a writer that did not say (the history then infers it from the version).
enum class WriteMethod : std::uint8_t { kUnknown, kPost, kPut, kPatch, kDelete };

// One version of one resource.
struct ResourceRow {
  std::string type;
  std::string id;
  std::int64_t version = 0;          // 1, 2, …  (meta.versionId)
  std::int64_t last_updated_us = 0;  // microseconds since the Unix epoch, UTC (meta.lastUpdated)
  bool deleted = false;              // a delete marker: json is empty
  std::string json;                  // canonical JSON text of the resource
  // Write: stored with the history row; History: read back (other reads leave kUnknown).
  WriteMethod method{WriteMethod::kUnknown};
  // Session::Search with SearchQuery::sort only: the value of each sort key this row was
  // ordered by (text; nullopt: the resource has none), for the next page's SortCursor.
  std::vector<std::optional<std::string>>
      sort_values{};  // ({}: brace-initialised rows need not name it)
};

// Index rows extracted from one resource version by the search parameters (R4 §3.1.1.4).
struct TokenEntry {
  std::string param;
  std::string system;  // "" when the value has none
  std::string code;
};
struct StringEntry {
  std::string param;
  std::string value;  // NFKC case-folded (full/half width and case insensitive)
};
struct DateEntry {
  std::string param;
  std::int64_t low_us = 0;   // inclusive
  std::int64_t high_us = 0;  // inclusive
};
struct ReferenceEntry {
  std::string param;
  std::string target_type;  // "Patient" for "Patient/123"; "" for absolute/canonical URLs
  std::string target_id;    // "123"; the whole URL for absolute/canonical ones
};
struct QuantityEntry {
  std::string param;
  double value = 0;
  std::string system;
  std::string code;  // code, or unit when there is no code
};
// One pair of a composite parameter's component values taken from the same element (R4 search
// "Composite Search Parameters": Observation.component[i].code with that component's value).
// The first component is a token (system, code) or a reference (target type, target id); the
// second, by its type: token (system2, code2), reference (system2 = target type, code2 = id),
// string (code2, normalised as StringEntry), quantity (number, system2, code2 = unit code),
// date (low_us, high_us); unused fields stay empty / 0.
struct CompositeEntry {
  std::string param;
  std::string system1;
  std::string code1;
  std::string system2;
  std::string code2;
  double number = 0;
  std::int64_t low_us = 0;
  std::int64_t high_us = 0;
};
struct IndexEntries {
  std::vector<TokenEntry> tokens;
  std::vector<StringEntry> strings;
  std::vector<DateEntry> dates;
  std::vector<ReferenceEntry> references;
  std::vector<QuantityEntry> quantities;
  std::vector<CompositeEntry> composites;
  // `_text` and `_content` (decision 0041): the resource's narrative and its whole text, NFKC
  // case folded (gateway/src/text_search.hpp says which values); one idx_text row per resource
  // when either is not empty.
  std::string narrative;
  std::string content;
};

// What a store's index rows are made from (decision 0037). `fingerprint` names the definition:
// it differs whenever the rows extracted from some stored resource may differ (the gateway's:
// DefaultIndexDefinition). `extract` fills the rows of one current resource version from its
// stored JSON; false when the JSON cannot be read (the resource is then left without rows and
// counted as unreadable).
struct IndexDefinition {
  std::string fingerprint;
  std::function<bool(const ResourceRow& row, IndexEntries& out)> extract;
};

// The gateway's definition: gateway/src/indexer.cpp over the compiled R4 search parameters;
// its fingerprint hashes every (type, code, type, expression, derivation) of the registry, the
// indexer's hand-bumped version (indexer.hpp kIndexerVersion) and the ICU version (string values
// are NFKC case folded).
IndexDefinition DefaultIndexDefinition();

// One step of a re-index (Session::ReindexStep).
struct ReindexRequest {
  std::size_t limit = 500;  // resources per step (one transaction)
  bool restart = false;     // from the first resource, even when the store is up to date
  bool count = false;       // fill ReindexResult::remaining
  // Threads extracting the step's index entries besides the one writing them (0: that one
  // alone); the rows are the same either way (decision 0050).
  std::size_t workers = 0;
};
struct ReindexResult {
  bool done = false;            // the store's index rows are all of the definition
  std::int64_t resources = 0;   // re-indexed by this step
  std::int64_t unreadable = 0;  // of them, whose JSON `extract` could not read
  std::int64_t changed = 0;     // of them, whose rows in some index table were rewritten
  std::int64_t remaining = -1;  // with ReindexRequest::count: current resources still to do
};

// Search prefixes (R4 §3.1.1.5.6).
enum class Compare { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb, kAp };

struct Predicate;
// AND of ORs: each inner vector is one parameter occurrence with comma-separated alternatives.
using Conjunction = std::vector<std::vector<Predicate>>;

struct Predicate {
  enum class Kind {
    kId,
    kLastUpdated,
    kToken,
    kString,
    kDate,
    kReference,
    kQuantity,
    kMissing,
    kComposite,
    kText
  };
  enum class StringMatch { kPrefix, kExact, kContains };
  // A uri parameter's kToken predicate (R4 search.html#uri; uri rows have system ""): the whole
  // value (kExact), a value below it at a '/' boundary or itself (:below), or one above it (a
  // prefix of it at a '/' boundary after the authority) or itself (:above).
  enum class UriMatch { kExact, kBelow, kAbove };
  Kind kind = Kind::kId;
  std::string param;  // search parameter code ("name", "birthdate")
  // kId: value.  kToken: system (nullopt = any system, "" = no system) + code (empty = any code).
  std::optional<std::string> system;
  std::string value;
  bool negate = false;  // token :not
  StringMatch string_match = StringMatch::kPrefix;
  UriMatch uri_match = UriMatch::kExact;
  // kDate / kLastUpdated / kQuantity: comparator and the search value's range.
  Compare compare = Compare::kEq;
  std::int64_t low_us = 0;
  std::int64_t high_us = 0;
  double number_low = 0;
  double number_high = 0;
  double number = 0;
  // kReference: target (type may be empty = any type). With `chain`, the referenced resource of
  // chain_type must satisfy every clause of `chain` instead.
  std::string target_type;
  std::string chain_type;
  std::shared_ptr<const Conjunction> chain;
  // With `chain` and `reverse` (_has, R4 search.html "Reverse Chaining"): a resource of
  // chain_type that satisfies `chain` references this one (of target_type) through its
  // parameter `param`.
  bool reverse = false;
  // kComposite: one predicate per component, in order (the first kToken or kReference, the
  // second of its component's kind), matched by one stored pair (CompositeEntry).
  std::shared_ptr<const std::vector<Predicate>> components;
  // kMissing: true = the parameter has no index rows; table chosen by `missing_table`.
  bool missing = false;
  Kind missing_kind = Kind::kToken;
  // Tested per resource the rest of the query found (its own index rows, a correlated EXISTS),
  // never as a set of every matching row: for a filter on a query that another clause drives
  // (Patient/$everything's care dates, a patient's few resources among millions of dates).
  bool probe = false;
  // A forward chain (`chain`, not `reverse`) whose matches SqlSession::Search counted below its
  // threshold (decision 0042): few enough that the query is driven from them (their ids read
  // whole, as an identifier's), instead of scanning resources in result order. A chain marked
  // `probe` is the opposite: common, checked per resource through its references.
  bool few = false;
  // kReference without a type, instead of `param`: a compartment (Patient/$everything). The
  // resource is of one of these types and references target_type/value through that type's
  // parameter (pairs of (type, parameter code)), and is not that target itself.
  std::vector<std::pair<std::string, std::string>> links;
  // kText (`_text`, `_content`: param says which): every term (NFKC case folded, non-empty)
  // occurs in the resource's narrative / content as a substring (decision 0041).
  std::vector<std::string> terms;
  // kText, SQLite: the rks of the trigram index's candidates, when SqlSession::Search read them
  // all (fewer than its threshold; decision 0042): the search reads these rows instead of the
  // trigram index a second time.
  std::optional<std::vector<std::int64_t>> candidates;
};

struct SortKey {
  std::string param;  // "_id", "_lastUpdated", or a string/date/token parameter
  Predicate::Kind kind = Predicate::Kind::kId;
  bool descending = false;
};

// Keyset position in a search with SortKeys: the sort key values (as ResourceRow::sort_values
// gives them) and the id of the last row of the previous page. A key whose value is nullopt is
// a missing value (those sort last).
struct SortCursor {
  std::vector<std::optional<std::string>> values;  // one per SortKey
  std::string id;
};

struct SearchQuery {
  std::string type;  // resource type searched; empty: every type (compartment searches)
  std::vector<std::string> types;  // with `type` empty: only these types (empty: any)
  Conjunction where;
  // Empty: (lastUpdated, id) ascending, keyset-pageable; without a type (lastUpdated, type, id),
  // as ids are unique per type only. With keys: resources without a value for a key come last,
  // ascending or descending, on both backends.
  std::vector<SortKey> sort;
  int count = 20;
  std::int64_t offset = 0;  // rows skipped first (the `_offset` of links made before keysets)
  // Keyset cursor for the default sort: rows strictly after (last_updated_us, id); without a
  // type, after (last_updated_us, after_type, id).
  std::optional<std::pair<std::int64_t, std::string>> after;
  std::string after_type;
  // Keyset cursor for `sort` (needs `type`): rows strictly after this position in the sort
  // order (the keys, then id ascending). values.size() must equal sort.size().
  std::optional<SortCursor> sort_after;
};

// Patient/$everything's second part: the resources that the matches of `sources`, or the one
// resource source_type/source_id, reference through the index rows of their reference search
// parameters, without those matching `exclude` (served as the first part), in (type, id) order.
struct ReferencedQuery {
  Conjunction sources;  // over resources of any type
  std::string source_type;
  std::string source_id;
  Conjunction exclude;                  // empty: none excluded
  std::vector<std::string> types;       // only referenced resources of these types (empty: any)
  std::vector<std::string> skip_types;  // never referenced resources of these types
  Conjunction where;                    // more conditions on the referenced resources (_since)
  int count = 20;
  // Keyset cursor: rows strictly after this (type, id).
  std::optional<std::pair<std::string, std::string>> after;
};

struct HistoryQuery {
  std::string type;  // empty: whole system
  std::string id;    // empty: whole type
  std::optional<std::int64_t> since_us;
  // Newest first; keyset: rows strictly before this sequence number.
  std::optional<std::int64_t> before_seq;
  int count = 50;
};
struct HistoryRow {
  std::int64_t seq = 0;  // global order of writes
  ResourceRow row;
};

// A resource by its key (Session::LockMany).
struct ResourceKey {
  std::string_view type;
  std::string_view id;
};

class Session {
 public:
  virtual ~Session() = default;
  virtual Result<std::optional<ResourceRow>> Read(std::string_view type, std::string_view id) = 0;
  virtual Result<std::optional<ResourceRow>> ReadVersion(std::string_view type, std::string_view id,
                                                         std::int64_t version) = 0;
  virtual Result<std::vector<HistoryRow>> History(const HistoryQuery& query) = 0;
  virtual Result<std::vector<ResourceRow>> Search(const SearchQuery& query) = 0;  // not deleted
  virtual Result<std::int64_t> Count(const SearchQuery& query) = 0;
  // ReferencedQuery's resources (not deleted); its count ignores `after` and `count`. The
  // defaults return errc::kUnsupported (test doubles).
  virtual Result<std::vector<ResourceRow>> Referenced(const ReferencedQuery& query);
  virtual Result<std::int64_t> CountReferenced(const ReferencedQuery& query);

  virtual Result<void> Begin() = 0;
  virtual Result<void> Commit() = 0;
  virtual void Rollback() noexcept = 0;  // no-op outside a transaction
  // Inside Begin(): locks the resource key against other writers, then reads the current row
  // (deleted markers included).
  virtual Result<std::optional<ResourceRow>> LockAndRead(std::string_view type,
                                                         std::string_view id) = 0;
  // Inside Begin(): LockAndRead of several resources ahead of their writes (a transaction
  // Bundle's entries): every key is locked and its current row read, and LockAndRead of one of
  // them afterwards (before a Write, savepoint rollback or the end of the transaction) answers
  // with that row instead of asking the database. PostgreSQL: two statements in one round trip
  // instead of one round trip per resource (StoreOptions::postgres_bulk). The default does
  // nothing (each LockAndRead then locks and reads itself).
  virtual Result<void> LockMany(std::span<const ResourceKey> keys);
  // Inside Begin(): stores `row` as the current version, appends it to history and replaces its
  // index rows with `index` (ignored when row.deleted).
  virtual Result<void> Write(const ResourceRow& row, const IndexEntries& index) = 0;

  // Inside Begin(): savepoints (SQL SAVEPOINT; `name` is [a-z_]+, nestable), so that one part of
  // a transaction can be undone alone: the commit queue (commit_queue.hpp) runs each request of
  // a group in its own, a batch Bundle each entry. ReleaseSavepoint keeps the part's writes in
  // the transaction and may fail (a key conflict of rows still queued): then roll back to it.
  // RollbackToSavepoint undoes the part and ends the savepoint; an error there means the
  // transaction itself is lost (roll it back). The defaults return errc::kUnsupported.
  virtual Result<void> Savepoint(std::string_view name);
  virtual Result<void> ReleaseSavepoint(std::string_view name);
  virtual Result<void> RollbackToSavepoint(std::string_view name);

  // Import checkpoints (`kakehashi import`, docs/gateway.md "Import"): one row per finished unit
  // of an import source (an SS-MIX2 patient folder, an HL7 v2 file) with a fingerprint of what was
  // imported. WriteCheckpoint runs inside Begin() so a unit's checkpoint commits or rolls back
  // with its resources; a restarted import skips units whose fingerprint is unchanged. The table
  // is created on first use. The defaults return errc::kUnsupported (test doubles).
  virtual Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpoints(
      std::string_view source);  // (unit, fingerprint) pairs of `source`
  virtual Result<void> WriteCheckpoint(std::string_view source, std::string_view unit,
                                       std::string_view fingerprint);
  // Point reads, so that a reader needs no whole source in memory: one unit's fingerprint
  // (nullopt: no checkpoint), the sources holding a checkpoint of `unit` (sorted; served by the
  // index import_checkpoints_unit on (unit, source)), and the number of checkpoints of `source`.
  virtual Result<std::optional<std::string>> ReadCheckpoint(std::string_view source,
                                                            std::string_view unit);
  virtual Result<std::vector<std::string>> CheckpointSources(std::string_view unit);
  virtual Result<std::size_t> CountCheckpoints(std::string_view source);
  // One page of ReadCheckpoints: at most `limit` (unit, fingerprint) pairs of `source` whose unit
  // sorts after `after` (bytewise; "" for the first page), in unit order, so that a reader of a
  // large source holds one page at a time: the next page starts after the last unit returned; a
  // page shorter than `limit` is the last.
  virtual Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpointsAfter(
      std::string_view source, std::string_view after, std::size_t limit);
  // What a unit wrote ("Type/id" lines), kept beside its checkpoint so that a later import can
  // delete what the unit no longer yields (a record or a whole patient folder removed from an
  // SS-MIX2 store). WriteUnitResources (inside Begin()) replaces the list; ReadUnitResources
  // returns "" when there is none; DeleteCheckpoint (inside Begin()) removes a unit's checkpoint
  // and list. Same table life cycle and defaults as the checkpoints.
  virtual Result<void> WriteUnitResources(std::string_view source, std::string_view unit,
                                          std::string_view resources);
  virtual Result<std::string> ReadUnitResources(std::string_view source, std::string_view unit);
  virtual Result<void> DeleteCheckpoint(std::string_view source, std::string_view unit);

  // Re-index (decision 0037): one step, in a transaction of its own (not inside Begin()). When
  // the store records `def` as the definition of all its index rows (and !request.restart), the
  // step is done and writes nothing. Otherwise the next request.limit current resources after
  // the recorded progress (in rk order; from the first when the recorded definition is another
  // one) get the rows def.extract makes from their stored JSON instead of theirs, and the
  // progress is recorded in the same transaction: an interrupted re-index resumes where it
  // stopped, and steps of several processes (SQLite: the write lock; PostgreSQL: a row lock on
  // the progress) continue each other's instead of repeating it. Writers of those resources are
  // excluded while the step runs (SQLite: the write lock; PostgreSQL: the resources' advisory
  // locks, as LockAndRead's). The default returns errc::kUnsupported.
  virtual Result<ReindexResult> ReindexStep(const IndexDefinition& def,
                                            const ReindexRequest& request);

  // The schema version the database records (the largest of kakehashi_migrations; OpenStore
  // brings it to the version this kakehashi writes): one cheap statement that reaches the
  // database, outside Begin() (the readiness check, health.hpp). The default returns
  // errc::kUnsupported.
  virtual Result<int> SchemaVersion();
};

// An opaque state of the database that changes with every commit, whoever makes it (SQLite: the
// WAL-index header of the -shm file, gateway/src/read_cache.hpp reads it).
struct DbState {
  std::uint64_t change_and_frame = 0;
  std::uint64_t salts = 0;
  bool operator==(const DbState&) const = default;
};

class Store {
 public:
  virtual ~Store() = default;
  // A pooled session; blocks while all pooled connections are in use. The session returns its
  // connection to the pool when destroyed (rolling back an open transaction).
  virtual Result<std::unique_ptr<Session>> OpenSession() = 0;
  virtual std::string_view Backend() const = 0;  // "sqlite" or "postgresql"
  // Read by id outside any Session (the handler's read path; deleted markers included).
  // `seen`: the database state the caller observed right before the call, or nullopt. The row
  // is never older than the database at `seen`. A backend may answer from a read transaction
  // kept open across calls while `seen` is still the state it began under (SQLite: no BEGIN,
  // COMMIT and file locks per read; such a transaction ends within ~100 ms, so it never holds
  // checkpoints back for long). Default: Read on a pooled session.
  virtual Result<std::optional<ResourceRow>> ReadCurrent(std::string_view type, std::string_view id,
                                                         const std::optional<DbState>& seen);
  // ReadCurrent for a thread that must never wait (the server's io threads, decision 0051): the
  // row (a deletion marker included) when it was read without waiting for the disk or a lock,
  // at `seen` or newer as ReadCurrent's; nullopt when the read would have waited, when there is
  // no row, or on an error: the caller then uses ReadCurrent on a thread that may wait. SQLite
  // reads the pages already in memory (its nowait VFS, store/sqlite_nowait.hpp); the default
  // (PostgreSQL, decorators) always returns nullopt.
  virtual std::optional<ResourceRow> TryReadCurrent(std::string_view type, std::string_view id,
                                                    const DbState& seen);
  // True when ReadCurrent is answered in this process from a database file it reads itself
  // (SQLite); false when it waits for a database server's answer, and first perhaps for a pooled
  // connection (PostgreSQL; the default). The server lets a finished read by id wait for the
  // next ones of its batch only behind reads of the first kind (decision 0034).
  virtual bool ReadsInProcess() const { return false; }

  // Several reads by id, each as ReadCurrent(type, id, nullopt) (decision 0040). Every key gets
  // exactly one sink.Read(i, row) (i: its index in `keys`), in any order, as soon as its row is
  // known; sink.Waiting() is called before a wait for the next (the caller hands on what it
  // has). PostgreSQL sends them in one round trip (libpq's pipeline mode); the default reads
  // them in turn with ReadCurrent.
  struct ReadKey {
    std::string_view type;
    std::string_view id;
  };
  class ReadSink {
   public:
    virtual void Read(std::size_t i, Result<std::optional<ResourceRow>> row) = 0;
    virtual void Waiting() = 0;

   protected:
    ~ReadSink() = default;
  };
  virtual void ReadCurrentMany(std::span<const ReadKey> keys, ReadSink& sink);
};

struct StoreOptions {
  int max_connections = 8;
  // PostgreSQL only: a schema ([a-z0-9_]+) created if absent and used as search_path, so several
  // independent stores (tenants, test cases) can share one database. Empty: the default schema.
  std::string postgres_schema;
  // Tests only (PostgreSQL): called on the committing thread around every COMMIT with the
  // server process id of the session's connection (PQbackendPID) and its client socket: with
  // `sent` false right before COMMIT is sent, with `sent` true after it was sent and before its
  // answer is read. Tests break the connection at those points (decision 0023).
  std::function<void(bool sent, int backend_pid, int socket)> postgres_commit_hook;
  // PostgreSQL: inside a transaction, statements whose result is not needed at once are sent in
  // libpq's pipeline mode and their results read with the next one that needs an answer, so a
  // request's statements share one round trip (decision 0028). False: one round trip per
  // statement, as before (benchmarks compare the two).
  bool postgres_pipeline = true;
  // PostgreSQL bulk writes: Session::LockMany locks and reads a transaction's resources in one
  // round trip, and an index table's rows queued by a transaction are held (up to 16,384) and
  // sent with COPY FROM STDIN once there are 256 or more, instead of as 64-row INSERTs. The rows
  // stored are the same either way. False: the row-at-a-time path (tests and benchmarks compare
  // the two).
  bool postgres_bulk = true;
  // Tests only (PostgreSQL): called with the text of every statement a session sends (Query,
  // Exec and COPY; not BEGIN, COMMIT or the store's own migration statements).
  std::function<void(std::string_view sql)> postgres_statement_hook;
  // The definition the store's index rows must be of (decision 0037); nullopt:
  // DefaultIndexDefinition(). With reindex_on_open, OpenStore re-indexes (Reindex) before it
  // returns when the rows were made by another definition (an older kakehashi, or a database
  // that records none), printing progress on stderr for 10,000 resources and more.
  std::optional<IndexDefinition> index;
  bool reindex_on_open = true;
  // How many matches make a search criterion "common" for the plan choices of Session::Search
  // (a `_text` term, a chain: decisions 0041, 0042); 0: computed from the store's size. Tests
  // set a small value so that both plans run on a small store.
  std::int64_t search_threshold = 0;
};

struct ReindexOptions {
  // Resources per step (one transaction). Larger steps cost more CPU per resource (decision
  // 0050 measured 2,000 against 500), so 500 stays the default.
  std::size_t batch = 500;
  bool restart = false;  // re-index everything even when the store is up to date
  // Extraction threads besides the writing one (ReindexRequest::workers); SIZE_MAX: one per
  // core but one.
  std::size_t workers = SIZE_MAX;
  // Called after every step with the resources done so far and the total to do.
  std::function<void(std::int64_t done, std::int64_t total)> progress;
  // Asked before every step but the first: true stops the re-index there (Reindex returns what
  // was done; it resumes from there the next time).
  std::function<bool()> stop;
};
struct ReindexReport {
  bool ran = false;  // false: the rows were already of the definition
  std::int64_t resources = 0;
  std::int64_t unreadable = 0;
  std::int64_t changed = 0;  // resources whose rows the definition changed (ReindexResult)
};
// "re-indexed DONE of TOTAL resources (RATE/s, about N s left)": the progress line of `serve`'s
// open and of `kakehashi reindex` (decision 0050); without the parentheses before a resource.
std::string ReindexProgressText(std::int64_t done, std::int64_t total,
                                std::chrono::steady_clock::duration elapsed);
// session.ReindexStep, run again while it loses a deadlock or a busy wait (errc::kConflict: the
// step was rolled back), at most 8 times in a row; the last outcome.
Result<ReindexResult> ReindexStepRetrying(Session& session, const IndexDefinition& def,
                                          const ReindexRequest& request);
// Runs ReindexStep until it is done (each step as ReindexStepRetrying).
Result<ReindexReport> Reindex(Store& store, const IndexDefinition& def,
                              const ReindexOptions& options = {});

// "sqlite:PATH" (":memory:" allowed, one shared in-memory database per Store), "sqlite://PATH",
// or "postgresql://…" / "postgres://…" (libpq connection URI). Creates the schema when absent and
// records it in the migrations table.
Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options = {});

}  // namespace kakehashi::gateway::store

template <>
struct boost::system::is_error_code_enum<kakehashi::gateway::store::errc> : std::true_type {};
