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
#include <unordered_map>

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

// One current version, with its response headers pre-rendered.
struct CachedResource {
  std::int64_t version = 0;
  std::int64_t last_updated_us = 0;
  bool deleted = false;
  std::string json;           // the stored canonical bytes (empty when deleted)
  std::string etag;           // W/"n"
  std::string last_modified;  // IMF-fixdate
  DbEpoch epoch;              // the database state it was read at (or after)
  // gzip of `json`, computed on the first request that accepts gzip (then shared).
  std::shared_ptr<const std::string> Gzip() const;

 private:
  mutable std::mutex gzip_mutex_;
  mutable std::shared_ptr<const std::string> gzip_;
};

std::shared_ptr<CachedResource> MakeCachedResource(store::ResourceRow&& row);

class ReadCache {
 public:
  // `budget_bytes`: approximate bound on the bytes held (JSON, gzip, keys); oldest fills are
  // evicted first (FIFO per shard).
  explicit ReadCache(std::size_t budget_bytes);

  // The entry of type/id if it was read at `now`.
  std::shared_ptr<const CachedResource> Find(std::string_view type, std::string_view id,
                                             const DbEpoch& now);
  // Stores (or replaces) the entry of type/id; `entry->epoch` is the epoch taken before its
  // store read began.
  void Insert(std::string_view type, std::string_view id,
              std::shared_ptr<const CachedResource> entry);

  std::size_t Bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<const CachedResource>, Hash, std::equal_to<>>
        map;
    std::deque<std::string> order;  // first fill order, for eviction
    std::size_t bytes = 0;
  };
  static constexpr std::size_t kShards = 16;
  Shard& ShardOf(std::string_view key);

  std::size_t shard_budget_;
  std::atomic<std::size_t> bytes_{0};
  Shard shards_[kShards];
};

}  // namespace kakehashi::gateway::detail
