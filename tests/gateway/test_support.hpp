// Shared fixtures for tests/gateway: stores on both backends and request helpers.
#pragma once

#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

// Catch prints results as "ok" or the error message (boost's operator<< needs printable T).
namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, boost::system::error_code>> {
  static std::string convert(const boost::system::result<T, boost::system::error_code>& r) {
    return r ? std::string("ok") : "error: " + r.error().message();
  }
};
}  // namespace Catch

namespace kakehashi::gateway::testing {

enum class Backend { kSqlite, kPostgres };

inline std::string RandomSuffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  for (int i = 0; i < 12; ++i) s += static_cast<char>('a' + rng() % 26);
  return s;
}

// KAKEHASHI_TEST_PG_URL, else the URL written by tools/pg_test_server.sh under the build dir.
inline std::string PostgresUrl() {
  if (const char* env = std::getenv("KAKEHASHI_TEST_PG_URL"); env != nullptr && *env != 0) {
    return env;
  }
  std::ifstream in(std::string(KAKEHASHI_BINARY_DIR) + "/tests/gateway/pg/url");
  std::string url;
  std::getline(in, url);
  return url;
}

struct TestStore {
  std::unique_ptr<store::Store> store;
  std::string url;
  store::StoreOptions options;
  std::filesystem::path file;
  ~TestStore() {
    store.reset();
    if (!file.empty()) {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(file.string() + suffix, ec);
      }
    }
  }
  // A second Store on the same database (another "gateway process").
  std::unique_ptr<store::Store> OpenAnother() const {
    auto s = store::OpenStore(url, options);
    REQUIRE(s);
    return std::move(*s);
  }
};

inline std::unique_ptr<TestStore> MakeStore(Backend backend) {
  auto t = std::make_unique<TestStore>();
  if (backend == Backend::kSqlite) {
    t->file =
        std::filesystem::temp_directory_path() / ("kakehashi-gw-" + RandomSuffix() + ".sqlite");
    t->url = "sqlite:" + t->file.string();
  } else {
    t->url = PostgresUrl();
    if (t->url.empty()) FAIL("no PostgreSQL: set KAKEHASHI_TEST_PG_URL or run via ctest");
    t->options.postgres_schema = "t_" + RandomSuffix();
  }
  auto s = store::OpenStore(t->url, t->options);
  INFO(t->url);
  REQUIRE(s);
  t->store = std::move(*s);
  return t;
}

// Runs `body(backend)` once per backend: SQLite always, PostgreSQL in the [.postgres] twin.
#define KAKEHASHI_BACKEND_TEST(name, tags, fn)             \
  TEST_CASE(name " [sqlite]", tags) {                      \
    fn(::kakehashi::gateway::testing::Backend::kSqlite);   \
  }                                                        \
  TEST_CASE(name " [postgresql]", tags "[.postgres]") {    \
    fn(::kakehashi::gateway::testing::Backend::kPostgres); \
  }

inline Request Req(std::string method, std::string target, std::string body = {},
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  r.headers = std::move(headers);
  if (!r.body.empty() && r.Header("Content-Type").empty()) {
    r.headers.emplace_back("Content-Type", "application/fhir+json");
  }
  return r;
}

}  // namespace kakehashi::gateway::testing
