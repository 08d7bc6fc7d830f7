// Why the WAL-index header and not per-key invalidation on write: several Stores (tests, tools)
// and several processes (`kakehashi import` into the served file) may write one SQLite
// database, and a cache that only hears this handler's writes would serve their old versions.
// The header is read with pread (not mmap): a -shm file truncated by another process can then
// only yield a short read, never a SIGBUS.
#include "read_cache.hpp"

#include "detail/values.hpp"
#include "gzip.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
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

std::size_t EntryBytes(std::string_view key, const CachedResource& e) {
  // Map node, control block and strings: a rough constant for the fixed parts.
  return key.size() + e.json.size() + e.etag.size() + e.last_modified.size() + 192;
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

WalIndexWatch::WalIndexWatch(std::string db_file) : shm_file_(std::move(db_file) + "-shm") {}

WalIndexWatch::~WalIndexWatch() {
  if (int fd = fd_.load(); fd >= 0) ::close(fd);
}

std::optional<DbEpoch> WalIndexWatch::Current() {
  int fd = fd_.load(std::memory_order_acquire);
  if (fd < 0) {
    std::lock_guard lock(open_mutex_);
    fd = fd_.load();
    if (fd < 0) {
      fd = ::open(shm_file_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return std::nullopt;  // not created yet: try again next time
      fd_.store(fd, std::memory_order_release);
    }
  }
  unsigned char h[2 * kHeaderSize];
  if (::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return std::nullopt;
  // A writer updates the first copy, then the second: equal copies are a consistent state.
  if (std::memcmp(h, h + kHeaderSize, kHeaderSize) != 0 || h[kInitAt] == 0) return std::nullopt;
  DbEpoch e;
  e.change_and_frame = (std::uint64_t{U32(h + kChangeAt)} << 32) | U32(h + kFrameAt);
  e.salts = (std::uint64_t{U32(h + kSaltAt)} << 32) | U32(h + kSaltAt + 4);
  return e;
}

std::shared_ptr<const std::string> CachedResource::Gzip() const {
  std::lock_guard lock(gzip_mutex_);
  if (!gzip_) {
    auto out = std::make_shared<std::string>();
    if (!GzipCompress(json, *out)) return nullptr;
    gzip_ = std::move(out);
  }
  return gzip_;
}

std::shared_ptr<CachedResource> MakeCachedResource(store::ResourceRow&& row) {
  auto e = std::make_shared<CachedResource>();
  e->version = row.version;
  e->last_updated_us = row.last_updated_us;
  e->deleted = row.deleted;
  e->json = std::move(row.json);
  e->etag = FormatETag(row.version);
  e->last_modified = FormatHttpDate(row.last_updated_us);
  return e;
}

ReadCache::ReadCache(std::size_t budget_bytes) : shard_budget_(budget_bytes / kShards) {}

ReadCache::Shard& ReadCache::ShardOf(std::string_view key) {
  return shards_[Hash{}(key) % kShards];
}

std::shared_ptr<const CachedResource> ReadCache::Find(std::string_view type, std::string_view id,
                                                      const DbEpoch& now) {
  std::string_view key = Key(type, id);
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mutex);
  auto it = s.map.find(key);
  if (it == s.map.end() || !(it->second->epoch == now)) return nullptr;
  return it->second;
}

void ReadCache::Insert(std::string_view type, std::string_view id,
                       std::shared_ptr<const CachedResource> entry) {
  std::string_view key = Key(type, id);
  const std::size_t size = EntryBytes(key, *entry);
  if (size > shard_budget_) return;
  Shard& s = ShardOf(key);
  std::vector<std::shared_ptr<const CachedResource>> evicted;  // freed outside the lock
  std::lock_guard lock(s.mutex);
  auto [it, inserted] = s.map.try_emplace(std::string(key), entry);
  if (!inserted) {  // a refill of a stale entry (or a concurrent fill): keep the newer read
    if (it->second->epoch == entry->epoch && it->second->version >= entry->version) return;
    const std::size_t old = EntryBytes(key, *it->second);
    s.bytes -= old;
    bytes_.fetch_sub(old, std::memory_order_relaxed);
    evicted.push_back(std::move(it->second));
    it->second = std::move(entry);
  } else {
    s.order.emplace_back(key);
  }
  s.bytes += size;
  bytes_.fetch_add(size, std::memory_order_relaxed);
  // Every key of the map has one entry in `order`: evict from the front, skipping the key just
  // inserted.
  while (s.bytes > shard_budget_ && s.map.size() > 1 && !s.order.empty()) {
    std::string front = std::move(s.order.front());
    s.order.pop_front();
    if (front == key) {
      s.order.push_back(std::move(front));
      continue;
    }
    auto victim = s.map.find(front);
    if (victim == s.map.end()) continue;
    const std::size_t n = EntryBytes(victim->first, *victim->second);
    s.bytes -= n;
    bytes_.fetch_sub(n, std::memory_order_relaxed);
    evicted.push_back(std::move(victim->second));
    s.map.erase(victim);
  }
}

}  // namespace kakehashi::gateway::detail
