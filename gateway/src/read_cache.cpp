// Why the WAL-index header and not per-key invalidation on write: several Stores (tests, tools)
// and several processes (`kakehashi import` into the served file) may write one SQLite
// database, and a cache that only hears this handler's writes would serve their old versions.
// The header is read from the mapping SQLite itself made of the -shm (xShmMap of the watch's own
// connection), not from a mapping or a file descriptor of our own: SQLite's DMS lock, held by
// that connection, is what keeps the file from being truncated under a mapping (a truncated
// mapping faults with SIGBUS), and closing a descriptor of our own on the -shm would drop every
// POSIX lock this process holds on it, SQLite's included.
#include "read_cache.hpp"

#include "detail/values.hpp"
#include "gzip.hpp"
#include "handler_util.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

namespace kakehashi::gateway::detail {

namespace {

thread_local std::string tls_key;

std::string_view Key(std::string_view type, std::string_view id) {
  tls_key.assign(type);
  tls_key += '/';
  tls_key += id;
  return tls_key;
}

// Not 0 (the empty slot of EntryTable). The table indexes with the low bits, the shard and its
// table are taken from the top 8 bits, so that the keys of one table do not all share their low
// bits.
std::uint64_t HashOf(std::string_view key) {
  const std::uint64_t h = std::hash<std::string_view>{}(key);
  return h == 0 ? 1 : h;
}

std::size_t EntryBytes(std::string_view key, const CachedResource& e) {
  // Map node, control block and strings: a rough constant for the fixed parts.
  return key.size() + e.StorageBytes() + 192;
}

// WAL-index header (walformat.html §2.1), native byte order, 48 bytes, stored twice.
constexpr std::size_t kHeaderSize = 48;
constexpr std::size_t kChangeAt = 8;  // iChange
constexpr std::size_t kInitAt = 12;   // isInit
constexpr std::size_t kFrameAt = 16;  // mxFrame
constexpr std::size_t kSaltAt = 32;   // aSalt[2]

std::uint32_t U32(const unsigned char* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

std::optional<DbEpoch> DecodeWalIndexHeader(const unsigned char* h) {
  if (std::memcmp(h, h + kHeaderSize, kHeaderSize) != 0 || h[kInitAt] == 0) return std::nullopt;
  DbEpoch e;
  e.change_and_frame = (std::uint64_t{U32(h + kChangeAt)} << 32) | U32(h + kFrameAt);
  e.salts = (std::uint64_t{U32(h + kSaltAt)} << 32) | U32(h + kSaltAt + 4);
  return e;
}

WalIndexWatch::WalIndexWatch(std::string db_file) : db_file_(std::move(db_file)) {}

WalIndexWatch::~WalIndexWatch() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

bool WalIndexWatch::Open() {
  if (db_ == nullptr) {
    // Never creates the database (no SQLITE_OPEN_CREATE).
    if (sqlite3_open_v2(db_file_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
      return false;
    }
    sqlite3_busy_timeout(db_, 1000);
  }
  // A read transaction opens the WAL and maps its index (a fresh connection learns the journal
  // mode from the file only then); the mode is asked, never set.
  if (sqlite3_exec(db_, "BEGIN; SELECT count(*) FROM sqlite_schema; COMMIT", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }
  std::string mode;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    if (const unsigned char* text = sqlite3_column_text(stmt, 0)) {
      mode = reinterpret_cast<const char*>(text);
    }
  }
  sqlite3_finalize(stmt);
  if (mode != "wal") return false;
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr || file->pMethods->iVersion < 2 ||
      file->pMethods->xShmMap == nullptr) {
    return false;
  }
  // Region 0 (32 KiB, walformat.html §2), already mapped by the read above: not extended.
  void volatile* region = nullptr;
  if (file->pMethods->xShmMap(file, 0, 32 * 1024, 0, &region) != SQLITE_OK || region == nullptr) {
    return false;
  }
  header_.store(static_cast<const volatile unsigned char*>(region), std::memory_order_release);
  return true;
}

std::optional<DbEpoch> WalIndexWatch::Current() {
  const volatile unsigned char* shm = header_.load(std::memory_order_acquire);
  if (shm == nullptr) {
    std::lock_guard lock(open_mutex_);
    shm = header_.load(std::memory_order_acquire);
    if (shm == nullptr) {
      if (!Open()) return std::nullopt;  // tried again on the next call
      shm = header_.load(std::memory_order_acquire);
    }
  }
  // Copy 0, then copy 1, as SQLite's readers do (a writer stores copy 1 first, then copy 0):
  // equal copies are a consistent state. The fences keep the two reads in that order.
  // 8-byte loads: the mapping is page-aligned and each copy is 48 bytes.
  const auto* words = reinterpret_cast<const volatile std::uint64_t*>(shm);
  constexpr std::size_t kWords = kHeaderSize / 8;
  std::uint64_t h[2 * kWords];
  for (std::size_t i = 0; i < kWords; ++i) h[i] = words[i];
  std::atomic_thread_fence(std::memory_order_acquire);
  for (std::size_t i = kWords; i < 2 * kWords; ++i) h[i] = words[i];
  std::atomic_thread_fence(std::memory_order_acquire);
  return DecodeWalIndexHeader(reinterpret_cast<const unsigned char*>(h));
}

CachedResource::CachedResource(std::int64_t v, std::int64_t last_updated, bool is_deleted,
                               std::string_view json)
    : version(v), last_updated_us(last_updated), deleted(is_deleted) {
  const std::string etag = FormatETag(v);
  const std::string date = FormatHttpDate(last_updated);
  constexpr std::string_view kType = "Content-Type: ";
  constexpr std::string_view kETag = "\r\nETag: ";
  constexpr std::string_view kDate = "\r\nLast-Modified: ";
  bytes_.reserve(kType.size() + kFhirJson.size() + kETag.size() + etag.size() + kDate.size() +
                 date.size() + 2 + json.size());
  bytes_ += kType;
  bytes_ += kFhirJson;
  bytes_ += kETag;
  etag_at_ = static_cast<std::uint32_t>(bytes_.size());
  etag_size_ = static_cast<std::uint32_t>(etag.size());
  bytes_ += etag;
  bytes_ += kDate;
  date_at_ = static_cast<std::uint32_t>(bytes_.size());
  date_size_ = static_cast<std::uint32_t>(date.size());
  bytes_ += date;
  bytes_ += "\r\n";
  json_at_ = static_cast<std::uint32_t>(bytes_.size());
  bytes_ += json;
}

std::string_view CachedResource::json() const {
  return std::string_view(bytes_).substr(json_at_);
}

std::string_view CachedResource::etag() const {
  return std::string_view(bytes_).substr(etag_at_, etag_size_);
}

std::string_view CachedResource::last_modified() const {
  return std::string_view(bytes_).substr(date_at_, date_size_);
}

std::string_view CachedResource::Fields200() const {
  return std::string_view(bytes_).substr(0, json_at_);
}

std::shared_ptr<const std::string> CachedResource::Gzip() const {
  std::lock_guard lock(gzip_mutex_);
  if (!gzip_) {
    auto out = std::make_shared<std::string>();
    if (!GzipCompress(json(), *out)) return nullptr;
    gzip_ = std::move(out);
  }
  return gzip_;
}

std::shared_ptr<CachedResource> MakeCachedResource(store::ResourceRow&& row) {
  return std::make_shared<CachedResource>(row.version, row.last_updated_us, row.deleted, row.json);
}

std::size_t EntryTable::IndexOf(std::string_view key, std::uint64_t hash) const {
  if (slots_.empty()) return std::string_view::npos;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.hash == 0) return std::string_view::npos;
    if (slot.hash == hash && slot.key == key) return i;
  }
}

EntryTable::Value* EntryTable::Find(std::string_view key, std::uint64_t hash) {
  const std::size_t i = IndexOf(key, hash);
  return i == std::string_view::npos ? nullptr : &slots_[i].value;
}

std::pair<EntryTable::Value*, bool> EntryTable::TryEmplace(std::string_view key,
                                                           std::uint64_t hash) {
  if (const std::size_t i = IndexOf(key, hash); i != std::string_view::npos) {
    return {&slots_[i].value, false};
  }
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].hash != 0) i = (i + 1) & mask;
  slots_[i].hash = hash;
  slots_[i].key.assign(key);
  ++size_;
  return {&slots_[i].value, true};
}

bool EntryTable::Erase(std::string_view key, std::uint64_t hash) {
  std::size_t hole = IndexOf(key, hash);
  if (hole == std::string_view::npos) return false;
  // Backward shift: each later slot of the run moves into the hole unless its home position
  // lies cyclically in (hole, j], where a lookup still reaches it.
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t j = (hole + 1) & mask; slots_[j].hash != 0; j = (j + 1) & mask) {
    const std::size_t home = slots_[j].hash & mask;
    const bool reachable = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (reachable) continue;
    slots_[hole] = std::move(slots_[j]);
    hole = j;
  }
  slots_[hole] = Slot{};
  --size_;
  return true;
}

void EntryTable::Grow() {
  std::vector<Slot> old =
      std::exchange(slots_, std::vector<Slot>(std::max<std::size_t>(16, slots_.size() * 2)));
  const std::size_t mask = slots_.size() - 1;
  for (Slot& slot : old) {
    if (slot.hash == 0) continue;
    std::size_t i = slot.hash & mask;
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    slots_[i] = std::move(slot);
  }
}

ReadCache::ReadCache(std::size_t budget_bytes) : shard_budget_(budget_bytes / kShards) {}

std::shared_ptr<const CachedResource> ReadCache::Find(std::string_view type, std::string_view id,
                                                      const DbEpoch& now) {
  std::string_view key = Key(type, id);
  const std::uint64_t hash = HashOf(key);
  Shard& s = shards_[ShardIndex(hash)];
  std::unique_lock lock(s.mutex, std::try_to_lock);
  if (!lock.owns_lock()) {
    busy_misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  EntryTable::Value* found = s.TableOf(hash).Find(key, hash);
  if (found == nullptr || !((*found)->epoch == now)) return nullptr;
  return *found;
}

void ReadCache::Insert(std::string_view type, std::string_view id,
                       std::shared_ptr<const CachedResource> entry, bool wait) {
  std::string_view key = Key(type, id);
  const std::size_t size = EntryBytes(key, *entry);
  if (size > shard_budget_) return;
  const std::uint64_t hash = HashOf(key);
  Shard& s = shards_[ShardIndex(hash)];
  std::vector<std::shared_ptr<const CachedResource>> evicted;  // freed outside the lock
  std::unique_lock lock(s.mutex, std::defer_lock);
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    busy_misses_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto [slot, inserted] = s.TableOf(hash).TryEmplace(key, hash);
  if (!inserted) {  // a refill of a stale entry (or a concurrent fill): keep the newer read
    if ((*slot)->epoch == entry->epoch && (*slot)->version >= entry->version) return;
    const std::size_t old = EntryBytes(key, **slot);
    s.bytes -= old;
    bytes_.fetch_sub(old, std::memory_order_relaxed);
    evicted.push_back(std::move(*slot));
    *slot = std::move(entry);
  } else {
    *slot = std::move(entry);
    s.order.emplace_back(key);
  }
  s.bytes += size;
  bytes_.fetch_add(size, std::memory_order_relaxed);
  // Every key of the shard has one entry in `order`: evict from the front, skipping the key
  // just inserted.
  while (s.bytes > shard_budget_ && s.order.size() > 1) {
    std::string front = std::move(s.order.front());
    s.order.pop_front();
    if (front == key) {
      s.order.push_back(std::move(front));
      continue;
    }
    const std::uint64_t front_hash = HashOf(front);
    EntryTable& table = s.TableOf(front_hash);
    EntryTable::Value* victim = table.Find(front, front_hash);
    if (victim == nullptr) continue;
    const std::size_t n = EntryBytes(front, **victim);
    s.bytes -= n;
    bytes_.fetch_sub(n, std::memory_order_relaxed);
    evicted.push_back(std::move(*victim));
    table.Erase(front, front_hash);
  }
}

}  // namespace kakehashi::gateway::detail
