// In-memory cache of current resource versions for read by id (GET [base]/Type/id), so a cached
// read costs no store session and no SQL. SQLite only, and exact whoever writes the database
// (this process, another Store, another process): an entry is served only while the database
// has seen no commit since the entry's store read began. "No commit" is read from the WAL-index
// header in the database's `-shm` file (https://www.sqlite.org/walformat.html §2.1: iChange is
// incremented by every transaction, mxFrame and the salts move with the WAL), which every
// connection of every process updates on commit. Any commit therefore makes every entry stale
// (it is refilled by its next read): the cache pays off for read-mostly traffic, which read by id
// is. PostgreSQL has no such cheap signal (docs/gateway.md, "Read cache").
//
// Thread-safety: every member may be called concurrently.
#pragma once

#include "kakehashi/gateway/store/store.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace kakehashi::gateway::detail {

// The state of a SQLite WAL database as of its last commit: change_and_frame = iChange << 32 |
// mxFrame, salts = aSalt[0] << 32 | aSalt[1]. Also what Store::ReadCurrent takes.
using DbEpoch = store::DbState;

// The epoch in the 96 bytes at the start of `<db>-shm` (both copies of the WAL-index header,
// walformat.html §2.1); nullopt when the copies differ (a writer is between them) or the index is
// not initialised.
std::optional<DbEpoch> DecodeWalIndexHeader(const unsigned char* header96);

// Reads the WAL-index header of `<db>-shm` (two copies; they differ while a writer updates them)
// from SQLite's own shared mapping of it: no system call per read. The watch keeps one idle
// SQLite connection to the database open, which maps the -shm and holds SQLite's shared "DMS"
// lock on it, so no process can truncate or re-initialise the file while the mapping is used
// (walformat.html §2: only a process that gets the DMS lock exclusively, i.e. the first to
// open the database, resets it).
class WalIndexWatch {
 public:
  explicit WalIndexWatch(std::string db_file);
  ~WalIndexWatch();
  WalIndexWatch(const WalIndexWatch&) = delete;
  WalIndexWatch& operator=(const WalIndexWatch&) = delete;
  // nullopt: no database (yet), not in WAL mode, a header being written, or not initialised:
  // do not cache.
  std::optional<DbEpoch> Current();

 private:
  bool Open();  // under open_mutex_; true when header_ is set

  std::string db_file_;
  std::atomic<const volatile unsigned char*> header_{nullptr};  // SQLite's mapping, offset 0
  std::mutex open_mutex_;
  ::sqlite3* db_ = nullptr;  // keeps the mapping and the DMS lock
};

// One current version, with the header fields of its 200 response pre-rendered next to the
// body in one allocation: a cached read appends two contiguous ranges instead of formatting and
// checking each field, and the fill allocates once.
class CachedResource {
 public:
  CachedResource(std::int64_t version, std::int64_t last_updated_us, bool deleted,
                 std::string_view json);
  CachedResource(const CachedResource&) = delete;
  CachedResource& operator=(const CachedResource&) = delete;

  std::int64_t version = 0;
  std::int64_t last_updated_us = 0;
  bool deleted = false;
  DbEpoch epoch;  // the database state it was read at (or after)

  std::string_view json() const;           // the stored canonical bytes (empty when deleted)
  std::string_view etag() const;           // W/"n"
  std::string_view last_modified() const;  // IMF-fixdate
  // "Content-Type: application/fhir+json\r\nETag: W/\"n\"\r\nLast-Modified: DATE\r\n": the
  // fields every 200 of this version carries, each line ending in CRLF.
  std::string_view Fields200() const;
  std::size_t StorageBytes() const { return bytes_.size(); }
  // gzip of json(), computed on the first request that accepts gzip (then shared).
  std::shared_ptr<const std::string> Gzip() const;

 private:
  std::string bytes_;  // Fields200(), then json()
  std::uint32_t etag_at_ = 0;
  std::uint32_t etag_size_ = 0;
  std::uint32_t date_at_ = 0;
  std::uint32_t date_size_ = 0;
  std::uint32_t json_at_ = 0;
  mutable std::mutex gzip_mutex_;
  mutable std::shared_ptr<const std::string> gzip_;
};

std::shared_ptr<CachedResource> MakeCachedResource(store::ResourceRow&& row);

// The cache's index: open addressing with linear probing (backward-shift deletion), the key
// (inline when short, as std::string keeps it), its hash and the entry pointer in one slot, so a
// lookup touches one slot before the entry itself (a node-based map adds a bucket and a node).
// Not thread-safe; `hash` must be the same function of the key on every call and not 0.
class EntryTable {
 public:
  using Value = std::shared_ptr<const CachedResource>;
  Value* Find(std::string_view key, std::uint64_t hash);
  // The slot of `key`, added empty when absent (second: true when added).
  std::pair<Value*, bool> TryEmplace(std::string_view key, std::uint64_t hash);
  // False when absent.
  bool Erase(std::string_view key, std::uint64_t hash);
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;  // 0: empty
    std::string key;
    Value value;
  };
  std::size_t IndexOf(std::string_view key, std::uint64_t hash) const;  // or npos
  void Grow();

  std::vector<Slot> slots_;  // power-of-two size, at most half full
  std::size_t size_ = 0;
};

class ReadCache {
 public:
  // `budget_bytes`: approximate bound on the bytes held (JSON, gzip, keys); oldest fills are
  // evicted first (FIFO per shard).
  explicit ReadCache(std::size_t budget_bytes);

  // The entry of type/id if it was read at `now`. Never waits: when another thread holds the
  // key's shard (an Insert, typically a reader thread's fill), it answers nullptr, a miss, and
  // the caller reads the store. An io thread's lookup thus never blocks on a reader that was
  // preempted holding the shard (decision 0027: an io thread never waits for a lock; session 15
  // measured 14 of 17 lock waits of the io threads there, docs/performance.md).
  std::shared_ptr<const CachedResource> Find(std::string_view type, std::string_view id,
                                             const DbEpoch& now);
  // Stores (or replaces) the entry of type/id; `entry->epoch` is the epoch taken before its
  // store read began. With `wait` false (an io thread's fill, decision 0051), a shard held
  // elsewhere skips the fill (counted in BusyMisses) instead of waiting.
  void Insert(std::string_view type, std::string_view id,
              std::shared_ptr<const CachedResource> entry, bool wait = true);

  std::size_t Bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Finds answered nullptr, and fills without `wait` skipped, because the shard was held
  // elsewhere.
  std::uint64_t BusyMisses() const { return busy_misses_.load(std::memory_order_relaxed); }

 private:
  // A shard's keys are spread over kTables tables, so that a table's growth (a new slot array:
  // its first-touch page faults cost ~20 µs each on the VM of docs/performance.md, and every
  // key is moved) stays short: with one table per shard, filling 100,000 entries stalled the
  // filling request for up to tens of ms (section "Read tail latency (session 7)").
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kTables = 16;  // per shard
  struct Shard {
    std::mutex mutex;
    EntryTable tables[kTables];
    std::deque<std::string> order;  // first fill order, for eviction; one per key held
    std::size_t bytes = 0;
    EntryTable& TableOf(std::uint64_t hash) { return tables[(hash >> 56) & (kTables - 1)]; }
  };
  static constexpr std::size_t ShardIndex(std::uint64_t hash) { return hash >> 60; }  // 16
  static_assert(kShards == 16 && kTables == 16);

  std::size_t shard_budget_;
  std::atomic<std::size_t> bytes_{0};
  std::atomic<std::uint64_t> busy_misses_{0};
  Shard shards_[kShards];
  friend struct ReadCacheTestAccess;  // tests hold a shard
};

}  // namespace kakehashi::gateway::detail
