// bench_read_cache_fill [N] [JSON_BYTES]
//
// The read cache's fill path alone (gateway/src/read_cache.hpp): N entries (default 100,000, the
// bench_gateway.sh patients) of JSON_BYTES bytes (default 1,100) inserted into a cache of the
// default budget (128 MiB), as the first read of every id does in a cold `serve`. Prints the
// thread CPU time of each Insert as a distribution: a long one is a stall of the io thread that
// fills (and of every connection waiting on it), so the count of Inserts over 1 ms and the
// maximum are the figures for the read tail (docs/performance.md, "Read tail latency (session
// 7)"); thread CPU time, not wall time, so that preemption by other processes is not counted.
#include "read_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

double ThreadCpuUs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kakehashi::gateway;
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const std::size_t json_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1100;
  if (n <= 0) {
    std::fprintf(stderr, "usage: bench_read_cache_fill [N] [JSON_BYTES]\n");
    return 2;
  }
  detail::ReadCache cache(std::size_t{128} << 20);
  const std::string json = "{\"resourceType\":\"Patient\",\"text\":\"" +
                           std::string(json_bytes > 40 ? json_bytes - 40 : 0, 'x') + "\"}";
  const detail::DbEpoch epoch{1, 1};
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::string id = "p";
    id += std::to_string(i);
    kakehashi::gateway::store::ResourceRow row;
    row.type = "Patient";
    row.id = id;
    row.version = 1;
    row.last_updated_us = 1'764'547'200'000'000;
    row.json = json;
    auto entry = detail::MakeCachedResource(std::move(row));
    entry->epoch = epoch;
    const double t0 = ThreadCpuUs();
    cache.Insert("Patient", id, std::move(entry));
    us.push_back(ThreadCpuUs() - t0);
  }
  double total = 0;
  int over_100us = 0;
  int over_1ms = 0;
  for (double u : us) {
    total += u;
    over_100us += u > 100 ? 1 : 0;
    over_1ms += u > 1000 ? 1 : 0;
  }
  std::vector<double> sorted = us;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "read cache fill: %d inserts of %zu-byte JSON, thread CPU: total %.1f ms, p99.9 %.0f us, "
      "max %.0f us, inserts > 100 us: %d, > 1 ms: %d\n",
      n, json.size(), total / 1000, sorted[sorted.size() * 999 / 1000], sorted.back(), over_100us,
      over_1ms);
  return 0;
}
