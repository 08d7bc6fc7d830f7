// The server's fast-path building blocks: the request-head parser (every split of a head) and
// the read cache (fills, invalidation, the fill/write race, eviction). Private headers.
#include "http_head.hpp"
#include "read_cache.hpp"
#include "store/backends.hpp"
#include "store/sqlite_nowait.hpp"

#include "test_support.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kakehashi::gateway {
namespace detail {
struct ReadCacheTestAccess {
  static std::vector<std::mutex*> ShardMutexes(ReadCache& cache) {
    std::vector<std::mutex*> out;
    for (auto& shard : cache.shards_) out.push_back(&shard.mutex);
    return out;
  }
};
}  // namespace detail
namespace {

using detail::HeadStatus;
using detail::ParseRequestHead;
using detail::RequestHead;

TEST_CASE("http head: a complete head, and every prefix of it needs more", "[http_head]") {
  const std::string head =
      "GET /fhir/Patient/p1 HTTP/1.1\r\nHost: x\r\nIf-None-Match:  W/\"2\" \r\n"
      "Accept-Encoding: gzip\r\n\r\nGET /next";
  const std::size_t size = head.find("GET /next");
  RequestHead h;
  for (std::size_t cut = 0; cut < size; ++cut) {
    INFO("cut at " << cut);
    CHECK(ParseRequestHead(std::string_view(head).substr(0, cut), 16384, h) ==
          HeadStatus::kNeedMore);
  }
  REQUIRE(ParseRequestHead(head, 16384, h) == HeadStatus::kDone);
  CHECK(h.size == size);  // the pipelined request after it is not consumed
  CHECK(h.method == "GET");
  CHECK(h.target == "/fhir/Patient/p1");
  CHECK(h.minor_version == 1);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.has_body);
  CHECK(h.Header("if-none-match") == "W/\"2\"");  // OWS trimmed, name case-insensitive
  CHECK(h.Header("ACCEPT-ENCODING") == "gzip");
  CHECK(h.Header("Content-Type").empty());
}

TEST_CASE("http head: a target with raw UTF-8 bytes is read; controls and DEL are not",
          "[http_head]") {
  RequestHead h;
  REQUIRE(ParseRequestHead("GET /fhir/Patient?name=\xE5\xB1\xB1\xE6\x9C\xAC HTTP/1.1\r\n\r\n", 100,
                           h) == HeadStatus::kDone);
  CHECK(h.target == "/fhir/Patient?name=\xE5\xB1\xB1\xE6\x9C\xAC");
  CHECK(ParseRequestHead("GET /fhir/Patient?name=a\x7f HTTP/1.1\r\n\r\n", 100, h) ==
        HeadStatus::kBad);
  CHECK(ParseRequestHead("GET /fhir/Patient?name=a\x01 HTTP/1.1\r\n\r\n", 100, h) ==
        HeadStatus::kBad);
}

TEST_CASE("http head: framing, keep-alive and body detection", "[http_head]") {
  RequestHead h;
  SECTION("leading empty lines are skipped") {
    REQUIRE(ParseRequestHead("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 100, h) == HeadStatus::kDone);
    CHECK(h.target == "/");
    CHECK(h.size == 22);
  }
  SECTION("HTTP/1.0 keeps alive only when asked") {
    REQUIRE(ParseRequestHead("GET / HTTP/1.0\r\n\r\n", 100, h) == HeadStatus::kDone);
    CHECK_FALSE(h.keep_alive);
    REQUIRE(ParseRequestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 100, h) ==
            HeadStatus::kDone);
    CHECK(h.minor_version == 0);
    CHECK(h.keep_alive);
  }
  SECTION("Connection: close in a list") {
    REQUIRE(ParseRequestHead("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n", 100, h) ==
            HeadStatus::kDone);
    CHECK_FALSE(h.keep_alive);
  }
  SECTION("bodies") {
    REQUIRE(ParseRequestHead("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 100, h) ==
            HeadStatus::kDone);
    CHECK_FALSE(h.has_body);
    REQUIRE(ParseRequestHead("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", 100, h) ==
            HeadStatus::kDone);
    CHECK(h.has_body);
    REQUIRE(ParseRequestHead("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 100, h) ==
            HeadStatus::kDone);
    CHECK(h.has_body);
    REQUIRE(ParseRequestHead("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                             100, h) == HeadStatus::kDone);
    CHECK(h.has_body);
  }
}

TEST_CASE("http head: malformed heads are rejected", "[http_head]") {
  RequestHead h;
  for (std::string_view bad : {
           "GARBAGE\r\n\r\n",                               // no target/version
           "GET / HTTP/1.1\n\n",                            // bare LF
           "GET / HTTP/2.0\r\n\r\n",                        // version
           "GET /a b HTTP/1.1\r\n\r\n",                     // space in the target
           "G@T / HTTP/1.1\r\n\r\n",                        // method not a token
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",            // space before the colon
           "GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",   // obs-fold
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n",             // no colon
           "GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n",         // control character
           "GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n",  // length not digits
           "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",  // length not digits
           "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  // conflict
       }) {
    INFO(bad);
    CHECK(ParseRequestHead(bad, 1000, h) == HeadStatus::kBad);
  }
}

TEST_CASE("http head: the header limit", "[http_head]") {
  RequestHead h;
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(3000, 'a') + "\r\n\r\n";
  CHECK(ParseRequestHead(big, 2000, h) == HeadStatus::kTooLarge);
  // Incomplete but already over the limit: no need to wait for the rest.
  CHECK(ParseRequestHead(std::string_view(big).substr(0, 2500), 2000, h) == HeadStatus::kTooLarge);
  CHECK(ParseRequestHead(std::string_view(big).substr(0, 1500), 2000, h) == HeadStatus::kNeedMore);
  CHECK(ParseRequestHead(big, 4000, h) == HeadStatus::kDone);
}

store::ResourceRow Row(std::string id, std::int64_t version, std::string json) {
  store::ResourceRow r;
  r.type = "Patient";
  r.id = std::move(id);
  r.version = version;
  r.last_updated_us = 1'764'547'200'000'000;  // 2025-12-01T00:00:00Z
  r.json = std::move(json);
  return r;
}

TEST_CASE("read cache: an entry is served only at the epoch it was read at", "[read_cache]") {
  detail::ReadCache cache(1 << 20);
  const detail::DbEpoch e1{(7ULL << 32) | 100, 42};
  const detail::DbEpoch e2{(8ULL << 32) | 103, 42};
  CHECK(cache.Find("Patient", "a", e1) == nullptr);
  auto entry = detail::MakeCachedResource(Row("a", 3, "{\"id\":\"a\"}"));
  entry->epoch = e1;
  cache.Insert("Patient", "a", entry);
  auto hit = cache.Find("Patient", "a", e1);
  REQUIRE(hit != nullptr);
  CHECK(hit->version == 3);
  CHECK(hit->etag() == "W/\"3\"");
  CHECK(hit->last_modified() == "Mon, 01 Dec 2025 00:00:00 GMT");
  CHECK(hit->json() == "{\"id\":\"a\"}");
  CHECK(hit->Fields200() ==
        "Content-Type: application/fhir+json; charset=utf-8\r\nETag: W/\"3\"\r\n"
        "Last-Modified: Mon, 01 Dec 2025 00:00:00 GMT\r\n");
  CHECK(cache.Find("Observation", "a", e1) == nullptr);  // the type is part of the key
  CHECK(cache.Find("Patient", "a", e2) == nullptr);      // a commit since: stale
  auto refill = detail::MakeCachedResource(Row("a", 4, "{}"));
  refill->epoch = e2;
  cache.Insert("Patient", "a", refill);
  CHECK(cache.Find("Patient", "a", e2)->version == 4);
  CHECK(cache.Find("Patient", "a", e1) == nullptr);
}

// A lookup while another thread holds the key's shard (a reader thread's Insert) is a miss, not
// a wait: the io thread that asked reads the store instead of blocking behind a thread that may
// have been preempted holding the lock. Before session 15 the Find below blocked until the
// shards were released (the 10 s bound only ends the test then).
TEST_CASE("read cache: a lookup does not wait for a shard held elsewhere", "[read_cache]") {
  detail::ReadCache cache(1 << 20);
  const detail::DbEpoch e1{(7ULL << 32) | 100, 42};
  auto entry = detail::MakeCachedResource(Row("a", 3, "{\"id\":\"a\"}"));
  entry->epoch = e1;
  cache.Insert("Patient", "a", entry);
  auto shards = detail::ReadCacheTestAccess::ShardMutexes(cache);
  for (auto* m : shards) m->lock();
  auto busy = std::async(std::launch::async, [&] { return cache.Find("Patient", "a", e1); });
  const bool returned = busy.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  for (auto* m : shards) m->unlock();
  CHECK(returned);
  CHECK(busy.get() == nullptr);
  CHECK(cache.BusyMisses() == 1);
  auto hit = cache.Find("Patient", "a", e1);
  REQUIRE(hit != nullptr);
  CHECK(hit->version == 3);
  CHECK(cache.BusyMisses() == 1);
  // An io thread's fill (Insert without wait) is skipped the same way; a reader's waits.
  auto b = detail::MakeCachedResource(Row("b", 1, "{\"id\":\"b\"}"));
  b->epoch = e1;
  for (auto* m : shards) m->lock();
  auto skipped = std::async(std::launch::async, [&] { cache.Insert("Patient", "b", b, false); });
  const bool fill_returned =
      skipped.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  for (auto* m : shards) m->unlock();
  skipped.get();
  CHECK(fill_returned);
  CHECK(cache.BusyMisses() == 2);
  CHECK(cache.Find("Patient", "b", e1) == nullptr);
  cache.Insert("Patient", "b", b);
  REQUIRE(cache.Find("Patient", "b", e1) != nullptr);
  CHECK(cache.Find("Patient", "b", e1)->version == 1);
}

// The cache's open-addressing index with hashes chosen to collide: long probe runs, runs that
// wrap around the end of the slot array, and deletions from the middle of a run (backward shift)
// must leave every other key findable.
TEST_CASE("read cache: the entry table finds every key through collisions and deletions",
          "[read_cache]") {
  detail::EntryTable table;
  auto value_of = [](int i) {
    std::string id = "k";  // appended, not "k" + ...: GCC 12's -Wrestrict misfires on that
    id += std::to_string(i);
    return detail::MakeCachedResource(Row(std::move(id), i + 1, "{}"));
  };
  // 16 slots after the first growth, 32 after the second: hashes 15 and 31 sit at the end of
  // the array, so their runs wrap to slot 0; 7 keys share the home slot 3.
  const std::vector<std::uint64_t> hashes = {3, 3, 3, 15, 15, 31, 3, 4, 3, 31, 63, 3, 5, 1, 2, 3};
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    keys.push_back("key" + std::to_string(i));
    auto [slot, added] = table.TryEmplace(keys[i], hashes[i]);
    REQUIRE(added);
    *slot = value_of(static_cast<int>(i));
  }
  CHECK(table.size() == hashes.size());
  auto check_all = [&](const std::vector<bool>& gone) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto* found = table.Find(keys[i], hashes[i]);
      if (gone[i]) {
        CHECK(found == nullptr);
      } else {
        REQUIRE(found != nullptr);
        CHECK((*found)->version == static_cast<std::int64_t>(i) + 1);
      }
    }
  };
  std::vector<bool> gone(keys.size(), false);
  check_all(gone);
  // Same key again: the existing slot, not a second one.
  auto [again, added_again] = table.TryEmplace(keys[2], hashes[2]);
  CHECK_FALSE(added_again);
  CHECK((*again)->version == 3);
  // A key with a colliding hash but other bytes is not found.
  CHECK(table.Find("other", hashes[0]) == nullptr);
  for (std::size_t i : {1u, 3u, 0u, 9u, 11u, 6u}) {  // from runs' middles, starts and wraps
    CHECK(table.Erase(keys[i], hashes[i]));
    CHECK_FALSE(table.Erase(keys[i], hashes[i]));
    gone[i] = true;
    check_all(gone);
  }
  CHECK(table.size() == keys.size() - 6);
  // Re-added after deletion: found again, the others still there.
  auto [back, added_back] = table.TryEmplace(keys[3], hashes[3]);
  REQUIRE(added_back);
  *back = value_of(3);
  gone[3] = false;
  check_all(gone);
}

TEST_CASE("read cache: gzip computed once; the byte budget evicts the oldest", "[read_cache]") {
  detail::ReadCache cache(16 * 4096);  // 4 KiB per shard
  const std::string json = "{\"text\":\"" + std::string(1500, 'x') + "\"}";
  auto e = detail::MakeCachedResource(Row("z", 1, json));
  auto z1 = e->Gzip();
  REQUIRE(z1 != nullptr);
  CHECK(z1 == e->Gzip());
  CHECK(z1->size() < json.size());
  const detail::DbEpoch epoch{1, 1};
  auto id_of = [](int i) {
    std::string id = "p";  // not "p" + …: GCC 12 -Wrestrict false positive
    id += std::to_string(i);
    return id;
  };
  for (int i = 0; i < 400; ++i) {
    auto entry = detail::MakeCachedResource(Row(id_of(i), 1, json));
    entry->epoch = epoch;
    cache.Insert("Patient", id_of(i), entry);
  }
  CHECK(cache.Bytes() <= 16 * 4096);
  CHECK(cache.Find("Patient", "p399", epoch) != nullptr);  // the newest stays
  int kept = 0;
  for (int i = 0; i < 400; ++i) kept += cache.Find("Patient", id_of(i), epoch) ? 1 : 0;
  CHECK(kept < 400);
  CHECK(kept >= 16);
}

TEST_CASE("read cache: the WAL-index epoch moves with every commit", "[read_cache]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  auto write = [&](const std::string& id) {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->LockAndRead("Basic", id));
    REQUIRE((*session)->Write(Row(id, 1, "{\"resourceType\":\"Basic\"}"), {}));
    REQUIRE((*session)->Commit());
  };
  write("w0");
  auto a = watch.Current();
  REQUIRE(a.has_value());
  CHECK(watch.Current() == a);  // nothing committed: same epoch
  write("w1");
  auto b = watch.Current();
  REQUIRE(b.has_value());
  CHECK_FALSE(b == a);
  // A commit through another Store (another gateway process) moves it as well.
  auto other = t->OpenAnother();
  {
    auto session = other->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->LockAndRead("Basic", "w2"));
    REQUIRE((*session)->Write(Row("w2", 1, "{\"resourceType\":\"Basic\"}"), {}));
    REQUIRE((*session)->Commit());
  }
  auto c = watch.Current();
  REQUIRE(c.has_value());
  CHECK_FALSE(c == b);
  detail::WalIndexWatch missing(t->file.string() + ".absent");
  CHECK_FALSE(missing.Current().has_value());
}

// The two copies of the WAL-index header (walformat.html §2.1) as SQLite lays them out: iChange at
// byte 8, isInit at 12, mxFrame at 16, aSalt at 32, native byte order.
TEST_CASE("read cache: the WAL-index header is decoded only when both copies agree",
          "[read_cache]") {
  unsigned char h[96] = {};
  auto put = [&](std::size_t at, std::uint32_t v) {
    std::memcpy(h + at, &v, 4);
    std::memcpy(h + 48 + at, &v, 4);
  };
  put(8, 7);               // iChange
  h[12] = h[48 + 12] = 1;  // isInit
  put(16, 42);             // mxFrame
  put(32, 0x01020304);     // aSalt[0]
  put(36, 0x0a0b0c0d);     // aSalt[1]
  auto e = detail::DecodeWalIndexHeader(h);
  REQUIRE(e.has_value());
  CHECK(e->change_and_frame == ((std::uint64_t{7} << 32) | 42));
  CHECK(e->salts == 0x010203040a0b0c0dULL);
  // A writer between the copies (it stores copy 1, then copy 0): not a state to trust.
  h[48 + 16] = 43;
  CHECK_FALSE(detail::DecodeWalIndexHeader(h).has_value());
  h[48 + 16] = 42;
  CHECK(detail::DecodeWalIndexHeader(h).has_value());
  // Not initialised (a database being recovered): not a state either.
  h[12] = h[48 + 12] = 0;
  CHECK_FALSE(detail::DecodeWalIndexHeader(h).has_value());
}

// The watch reads the header from SQLite's own mapping of the -shm: the same bytes as in the
// file, and it never creates a database nor changes a non-WAL one.
TEST_CASE("read cache: the watch reads the header SQLite maps, and leaves other files alone",
          "[read_cache]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->Write(Row("m1", 1, "{}"), {}));
    REQUIRE((*session)->Commit());
  }
  auto mapped = watch.Current();
  REQUIRE(mapped.has_value());
  std::FILE* f = std::fopen((t->file.string() + "-shm").c_str(), "rb");
  REQUIRE(f != nullptr);
  unsigned char h[96];
  const std::size_t got = std::fread(h, 1, sizeof h, f);
  std::fclose(f);
  REQUIRE(got == sizeof h);
  auto from_file = detail::DecodeWalIndexHeader(h);
  REQUIRE(from_file.has_value());
  CHECK(*from_file == *mapped);

  const std::string absent = t->file.string() + ".absent";
  detail::WalIndexWatch missing(absent);
  CHECK_FALSE(missing.Current().has_value());
  CHECK_FALSE(std::filesystem::exists(absent));

  // A database in rollback-journal mode has no WAL index: no epoch, and it stays in that mode.
  const std::string plain = t->file.string() + ".plain";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(plain.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  {
    detail::WalIndexWatch watch_plain(plain);
    CHECK_FALSE(watch_plain.Current().has_value());
  }
  CHECK_FALSE(std::filesystem::exists(plain + "-shm"));
  CHECK_FALSE(std::filesystem::exists(plain + "-wal"));
  // Switched to WAL later: the same watch starts answering.
  detail::WalIndexWatch watch_later(plain);
  CHECK_FALSE(watch_later.Current().has_value());
  REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL; INSERT INTO t VALUES (2)", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  auto later = watch_later.Current();
  REQUIRE(later.has_value());
  REQUIRE(sqlite3_exec(db, "INSERT INTO t VALUES (3)", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto moved = watch_later.Current();
  REQUIRE(moved.has_value());
  CHECK_FALSE(*moved == *later);
  sqlite3_close(db);
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(plain + suffix, ec);
  }
}

// Store::ReadCurrent on SQLite keeps a read transaction open while the caller's DbState is the
// one it began under: a commit anywhere moves the state, and the next read sees it.
TEST_CASE("store ReadCurrent: a kept read transaction never hides a commit", "[read_cache]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  auto other = t->OpenAnother();
  auto write = [](store::Store& s, const std::string& id, std::int64_t version) {
    auto session = s.OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->LockAndRead("Patient", id));
    REQUIRE((*session)->Write(Row(id, version, "{\"v\":" + std::to_string(version) + "}"), {}));
    REQUIRE((*session)->Commit());
  };
  auto version_at = [&](const std::optional<detail::DbEpoch>& seen) -> std::int64_t {
    auto row = t->store->ReadCurrent("Patient", "k1", seen);
    REQUIRE(row);
    return *row ? (*row)->version : 0;
  };
  CHECK(version_at(watch.Current()) == 0);  // unknown id, in a transaction at this state
  write(*t->store, "k1", 1);
  CHECK(version_at(watch.Current()) == 1);
  CHECK(version_at(watch.Current()) == 1);  // same state: the same transaction answers
  write(*other, "k1", 2);                   // another Store (another process) commits
  const auto after = watch.Current();
  REQUIRE(after.has_value());
  CHECK(version_at(after) == 2);
  auto row = t->store->ReadCurrent("Patient", "k1", after);
  REQUIRE((row && *row));
  CHECK((*row)->json == "{\"v\":2}");
  CHECK((*row)->type == "Patient");
  CHECK((*row)->id == "k1");
  write(*t->store, "k1", 3);
  CHECK(version_at(std::nullopt) == 3);  // no state given: a fresh read
  // Several threads, each with its own reader, see the same.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto r = t->store->ReadCurrent("Patient", "k1", watch.Current());
      if (r && *r && (*r)->version == 3) ++good;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(good == 4);
}

// The kept read transaction ends by itself (~100 ms) when no read comes: a TRUNCATE checkpoint,
// which needs every reader off the WAL, then completes.
TEST_CASE("store ReadCurrent: an idle read transaction does not hold checkpoints back",
          "[read_cache]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->Write(Row("k1", 1, "{}"), {}));
    REQUIRE((*session)->Commit());
  }
  auto row = t->store->ReadCurrent("Patient", "k1", watch.Current());
  REQUIRE((row && *row));
  auto other = t->OpenAnother();  // a later commit elsewhere: the kept snapshot is now old
  {
    auto session = other->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->Write(Row("k2", 1, "{}"), {}));
    REQUIRE((*session)->Commit());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(t->file.string().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) ==
          SQLITE_OK);  // opens the WAL
  int rc = SQLITE_BUSY;
  int log = -1;
  for (int i = 0; i < 400 && rc != SQLITE_OK; ++i) {  // up to 20 s on a loaded machine
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int done = -1;
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
  }
  CHECK(rc == SQLITE_OK);
  CHECK(log == 0);  // the WAL was emptied
  sqlite3_close(db);
  // And reads go on after it.
  auto again = t->store->ReadCurrent("Patient", "k2", watch.Current());
  REQUIRE((again && *again));
  CHECK((*again)->version == 1);
}

// Store::TryReadCurrent on SQLite (decision 0051): the io thread's read that never waits. It
// answers from pages in memory at the caller's state or newer (a commit here or in another Store
// on the file is seen at once, as ReadCurrent's), and gives up, without waiting, when a page
// would have to come from the disk or a WAL-index lock is held elsewhere (both injected through
// the nowait VFS); ReadCurrent then reads what it could not.
TEST_CASE("store TryReadCurrent: reads what is in memory, gives up on a wait, hides no commit",
          "[read_cache][nowait]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  auto other = t->OpenAnother();
  auto write = [](store::Store& s, const std::string& id, std::int64_t version, bool deleted) {
    auto session = s.OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->LockAndRead("Patient", id));
    auto row = Row(id, version, deleted ? "" : "{\"v\":" + std::to_string(version) + "}");
    row.deleted = deleted;
    REQUIRE((*session)->Write(row, {}));
    REQUIRE((*session)->Commit());
  };
  auto try_read = [&](const std::string& id) -> std::optional<store::ResourceRow> {
    const auto seen = watch.Current();
    REQUIRE(seen.has_value());
    return t->store->TryReadCurrent("Patient", id, *seen);
  };
  write(*t->store, "k1", 1, false);
  auto first = try_read("k1");
  REQUIRE(first.has_value());
  CHECK(first->version == 1);
  CHECK(first->json == "{\"v\":1}");
  CHECK(first->type == "Patient");
  CHECK(first->id == "k1");
  CHECK_FALSE(try_read("nobody").has_value());  // no row: the caller asks ReadCurrent
  CHECK(try_read("k1")->version == 1);          // the kept transaction answers again
  // Written by this store and by another Store on the file (another process): seen at once.
  write(*t->store, "k1", 2, false);
  CHECK(try_read("k1")->version == 2);
  write(*other, "k1", 3, false);
  CHECK(try_read("k1")->json == "{\"v\":3}");
  write(*other, "k1", 4, true);
  auto gone = try_read("k1");
  REQUIRE(gone.has_value());
  CHECK(gone->deleted);
  CHECK(gone->version == 4);
  // A page that is not in memory: after a commit the connection's page cache is dropped, so
  // the read needs the file, and every read of it "would wait".
  write(*other, "k1", 5, false);
  store::detail::FailNowaitReadsForTesting(1000000);
  CHECK_FALSE(try_read("k1").has_value());
  CHECK_FALSE(try_read("k1").has_value());
  store::detail::FailNowaitReadsForTesting(0);
  auto blocking = t->store->ReadCurrent("Patient", "k1", watch.Current());
  REQUIRE((blocking && *blocking));
  CHECK((*blocking)->version == 5);
  CHECK(try_read("k1")->version == 5);  // in memory again: answered
  // A WAL-index lock held elsewhere: the new read transaction cannot start, and no busy
  // handler waits for it.
  write(*t->store, "k1", 6, false);
  store::detail::FailNowaitShmLocksForTesting(1000000);
  CHECK_FALSE(try_read("k1").has_value());
  store::detail::FailNowaitShmLocksForTesting(0);
  CHECK(try_read("k1")->version == 6);
  // Other threads (other io threads) have readers of their own and read the same.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      for (int attempt = 0; attempt < 100; ++attempt) {  // a first open may find a page missing
        auto seen = watch.Current();
        if (!seen) continue;
        if (auto row = t->store->TryReadCurrent("Patient", "k1", *seen)) {
          if (row->version == 6) ++good;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(good == 3);
}

// SQLite's memory statistics are off in a process that opened a SQLite store (before SQLite
// initialised): with them on, every sqlite3_malloc takes one process-wide mutex, which the io
// threads' reads (decision 0051) waited for behind preempted threads. sqlite3_memory_used()
// counts only while they are on.
TEST_CASE("store: SQLite's memory statistics are off", "[read_cache][nowait]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  auto session = t->store->OpenSession();
  REQUIRE(session);
  REQUIRE((*session)->Begin());
  REQUIRE((*session)->LockAndRead("Patient", "m1"));
  REQUIRE((*session)->Write(Row("m1", 1, "{\"v\":1}"), {}));
  REQUIRE((*session)->Commit());
  auto row = t->store->ReadCurrent("Patient", "m1", watch.Current());
  REQUIRE((row && *row));
  CHECK((*row)->version == 1);
  CHECK(sqlite3_memory_used() == 0);
}

// The reaper (which ends read transactions older than 100 ms) never holds up a TryReadCurrent:
// an io thread that begins a read transaction while the reaper is ending another reader's must
// not wait for it (the reaper once held the readers' registry lock through its whole pass,
// COMMITs included, and an io thread's first miss after its own transaction was ended waited
// for that lock: decision 0051; docs/performance.md "io-thread reads: where the p99 went"). The
// reaper is held inside a transaction's end by a hook; the read on another thread must finish
// meanwhile. The 20 s wait only turns a hang into a failure.
struct ReaperHold {
  static inline std::mutex mutex;
  static inline std::condition_variable cv;
  static inline bool entered = false;
  static inline bool released = false;
  static void Hook() {
    std::unique_lock lock(mutex);
    if (entered) return;  // only the first end is held
    entered = true;
    cv.notify_all();
    cv.wait(lock, [] { return released; });
  }
};

TEST_CASE("store TryReadCurrent: does not wait while the reaper ends a transaction",
          "[read_cache][nowait]") {
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  detail::WalIndexWatch watch(t->file.string());
  {
    auto session = t->store->OpenSession();
    REQUIRE(session);
    REQUIRE((*session)->Begin());
    REQUIRE((*session)->LockAndRead("Patient", "r1"));
    REQUIRE((*session)->Write(Row("r1", 1, "{\"v\":1}"), {}));
    REQUIRE((*session)->Commit());
  }
  store::detail::SetReaperEndingHookForTesting(&ReaperHold::Hook);
  // This thread's reader keeps a read transaction; the reaper ends it after 100 ms and is held
  // right before.
  auto kept = t->store->ReadCurrent("Patient", "r1", watch.Current());
  REQUIRE((kept && *kept));
  {
    std::unique_lock lock(ReaperHold::mutex);
    ReaperHold::cv.wait(lock, [] { return ReaperHold::entered; });
  }
  // Another thread's first io-thread read begins a transaction (and wakes the reaper).
  auto read = std::async(std::launch::async, [&]() -> std::int64_t {
    for (int attempt = 0; attempt < 100; ++attempt) {  // a first open may find a page missing
      auto seen = watch.Current();
      if (!seen) continue;
      if (auto row = t->store->TryReadCurrent("Patient", "r1", *seen)) return row->version;
    }
    return 0;
  });
  const bool finished = read.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  {
    std::lock_guard lock(ReaperHold::mutex);
    ReaperHold::released = true;
  }
  ReaperHold::cv.notify_all();
  CHECK(finished);
  CHECK(read.get() == 1);
  store::detail::SetReaperEndingHookForTesting(nullptr);
}

// Through handlers (cache on, and off where only the kept read transaction is left): reads see
// every write, the handler's own (PUT, DELETE, transaction, a rolled-back transaction) and
// another Store's on the same file.
TEST_CASE("read cache: handler reads see every write", "[read_cache]") {
  const bool with_cache = GENERATE(true, false);
  CAPTURE(with_cache);
  auto t = testing::MakeStore(testing::Backend::kSqlite);
  HandlerOptions options;
  options.read_cache_sqlite_file = t->file.string();
  if (!with_cache) options.read_cache_bytes = 0;
  Handler h(*t->store, options);
  auto other_store = t->OpenAnother();
  Handler other(*other_store, options);
  auto send = [](const Handler& to, std::string method, std::string target, std::string body = {}) {
    Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    if (!r.body.empty()) r.headers.emplace_back("Content-Type", "application/fhir+json");
    return to.Handle(r);
  };
  auto version_of = [&](std::string_view id) {
    auto cur = h.ReadCurrent("Patient", id);
    REQUIRE(cur);
    return *cur ? (*cur)->version : 0;
  };
  REQUIRE(send(h, "PUT", "/fhir/Patient/c1", R"({"resourceType":"Patient","id":"c1"})").status ==
          201);
  CHECK(send(h, "GET", "/fhir/Patient/c1").Header("ETag") == "W/\"1\"");
  auto first = h.ReadCurrent("Patient", "c1");
  auto second = h.ReadCurrent("Patient", "c1");
  REQUIRE((first && second && *first && *second));
  if (with_cache) CHECK(first->get() == second->get());  // the same cached entry, no store read
  REQUIRE(
      send(h, "PUT", "/fhir/Patient/c1", R"({"resourceType":"Patient","id":"c1","active":true})")
          .status == 200);
  auto read = send(h, "GET", "/fhir/Patient/c1");
  CHECK(read.Header("ETag") == "W/\"2\"");
  CHECK(read.body.find("\"active\":true") != std::string::npos);
  // A transaction whose second entry fails rolls back the first: version 2 stays.
  auto failed = send(h, "POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Patient","id":"c1","active":false},
       "request":{"method":"PUT","url":"Patient/c1"}},
      {"resource":{"resourceType":"Patient","id":"c2"},
       "request":{"method":"PUT","url":"Patient/c2","ifMatch":"W/\"9\""}}]})");
  CHECK(failed.status >= 400);
  CHECK(version_of("c1") == 2);
  auto ok = send(h, "POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Patient","id":"c1","active":false},
       "request":{"method":"PUT","url":"Patient/c1"}}]})");
  REQUIRE(ok.status == 200);
  CHECK(version_of("c1") == 3);
  // The other "gateway" reads version 3 (and caches it), then h writes version 4 and other
  // deletes: each sees the other's write at once.
  CHECK(send(other, "GET", "/fhir/Patient/c1").Header("ETag") == "W/\"3\"");
  REQUIRE(send(h, "PUT", "/fhir/Patient/c1", R"({"resourceType":"Patient","id":"c1"})").status ==
          200);
  CHECK(send(other, "GET", "/fhir/Patient/c1").Header("ETag") == "W/\"4\"");
  CHECK(send(other, "DELETE", "/fhir/Patient/c1").status == 204);
  CHECK(send(h, "GET", "/fhir/Patient/c1").status == 410);
  CHECK(send(h, "GET", "/fhir/Patient/c1").status == 410);
  REQUIRE(
      send(other, "PUT", "/fhir/Patient/c1", R"({"resourceType":"Patient","id":"c1"})").status ==
      201);
  CHECK(send(h, "GET", "/fhir/Patient/c1").Header("ETag") == "W/\"6\"");
}

}  // namespace
}  // namespace kakehashi::gateway
