// bench_terminology: warm-cache lookups, translations and master load time (issue #5).
//
//   build/bench/bench_terminology [--rows N] [--seconds S] [--db sqlite:PATH]
//
// 1. Generates a synthetic HOT master of N rows (default 100,000) in the real distribution format:
//    24 quoted columns, CP932 (Windows-31J), CRLF (digest terminology.md §5).
// 2. Load: ParseMaster (decode + CSV split + concepts/mappings) and TerminologyStore::Put (one
// SQLite
//    transaction + cache), timed separately, into sqlite::memory: and into a file database.
// 3. Lookups (warm cache, random codes): store Find by canonical URI; TerminologyService::Find by a
//    v2 name ("HOT9", normalised per call); the full $lookup operation (result struct with
//    strings).
// 4. Translate: HOT9 -> YJ via $translate and via TranslateCoding (mapping layer entry point).
// No peer: no terminology server runs on this machine.
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/terminology/loaders.hpp"
#include "kakehashi/terminology/operations.hpp"
#include "kakehashi/terminology/store.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace kt = kakehashi::terminology;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string Hot13(std::size_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "1%08zu0101", i);
  return buf;
}

std::string SyntheticHotUtf8(std::size_t rows) {
  std::string out;
  out.reserve(rows * 260);
  char yj[80];
  char receipt[48];
  for (std::size_t i = 0; i < rows; ++i) {
    std::snprintf(yj, sizeof yj, "%07zuF%03zu%zu", 2000000 + i % 7000000, i % 1000, i % 10);
    std::snprintf(receipt, sizeof receipt, "6%08zu", i);
    std::string h13 = Hot13(i);
    const std::string fields[24] = {h13,
                                    h13.substr(0, 7),
                                    "01",
                                    "01",
                                    "01",
                                    "4987123456789",
                                    yj,
                                    yj,
                                    receipt,
                                    "",
                                    "テスト薬品錠１０ｍｇ",
                                    "テスト錠１０ｍｇ「カケハシ」",
                                    "テスト錠１０ｍｇ",
                                    "10mg 1錠",
                                    "ＰＴＰ",
                                    "100",
                                    "錠",
                                    "100",
                                    "錠",
                                    "内",
                                    "架橋製薬株式会社",
                                    "架橋販売株式会社",
                                    "1",
                                    "20261101"};
    for (int f = 0; f < 24; ++f) {
      if (f != 0) out += ',';
      out += '"';
      out += fields[f];
      out += '"';
    }
    out += "\r\n";
  }
  return out;
}

// Thread CPU time: the machine is shared, so wall time overstates the cost when other processes
// run; both are printed.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Rate {
  double ns_per_op;  // wall
  double ops_per_s;  // wall
  double cpu_ns_per_op;
};

template <class Fn>
Rate Measure(double seconds, Fn&& fn) {
  std::size_t ops = 0;
  double cpu0 = CpuSeconds();
  auto start = Clock::now();
  auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  Clock::time_point now;
  do {
    for (int i = 0; i < 1000; ++i) fn(ops++);
    now = Clock::now();
  } while (now < end);
  double s = Seconds(start, now);
  double cpu = CpuSeconds() - cpu0;
  return {s * 1e9 / static_cast<double>(ops), static_cast<double>(ops) / s,
          cpu * 1e9 / static_cast<double>(ops)};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 100000;
  double seconds = 2.0;
  std::string file_db =
      "sqlite:" +
      (std::filesystem::temp_directory_path() / "kakehashi_bench_terminology.sqlite").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rows")
      rows = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--seconds")
      seconds = std::strtod(argv[i + 1], nullptr);
    else if (a == "--db")
      file_db = argv[i + 1];
  }
  const auto& registry = kt::CodeSystemRegistry::Builtin();
  kakehashi::NullSink sink;

  auto g0 = Clock::now();
  auto bytes =
      kakehashi::common::Encode(SyntheticHotUtf8(rows), kakehashi::common::Charset::kCp932);
  if (!bytes) {
    std::fprintf(stderr, "bench_terminology: CP932 encoding failed\n");
    return 1;
  }
  auto g1 = Clock::now();
  std::printf("synthetic HOT master: %zu rows, %.1f MB CP932/CRLF/quoted (generated in %.2f s)\n",
              rows, static_cast<double>(bytes->size()) / 1e6, Seconds(g0, g1));

  // ---- load
  double pc0 = CpuSeconds();
  auto p0 = Clock::now();
  auto parsed = kt::ParseMaster(kt::MasterKind::kHot, *bytes, "synthetic_hot.csv", registry, sink);
  auto p1 = Clock::now();
  double parse_cpu = CpuSeconds() - pc0;
  if (!parsed) {
    std::fprintf(stderr, "bench_terminology: parse failed: %s\n", parsed.error().message().c_str());
    return 1;
  }
  std::printf(
      "parse (decode + CSV + content): %.3f s wall, %.3f s CPU (%.0f rows/s CPU; %zu concepts, "
      "%zu mappings)\n",
      Seconds(p0, p1), parse_cpu, static_cast<double>(rows) / parse_cpu,
      parsed->content.concepts.size(), parsed->content.mappings.size());

  std::unique_ptr<kt::TerminologyStore> store;
  for (const std::string& db : {std::string("sqlite::memory:"), file_db}) {
    if (db != "sqlite::memory:") {
      store.reset();
      for (const char* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(db.substr(7) + suffix);
    }
    kt::TerminologyStore::Options options;
    options.db = db;
    auto s = kt::TerminologyStore::Open(options, registry, sink);
    if (!s) {
      std::fprintf(stderr, "bench_terminology: cannot open %s\n", db.c_str());
      return 1;
    }
    kt::LoadRecord record;
    record.kind = "hot";
    record.source = "hot";
    kt::TerminologyContent content = parsed->content;  // both databases get the same content
    double wc0 = CpuSeconds();
    auto w0 = Clock::now();
    auto put = (*s)->Put(std::move(content), record);
    auto w1 = Clock::now();
    double put_cpu = CpuSeconds() - wc0;
    if (!put) {
      std::fprintf(stderr, "bench_terminology: Put failed\n");
      return 1;
    }
    std::printf(
        "store Put into %-16s %.3f s wall, %.3f s CPU; total load (parse + Put) %.3f s wall, "
        "%.3f s CPU\n",
        db == file_db ? "file db:" : "sqlite::memory:", Seconds(w0, w1), put_cpu,
        Seconds(p0, p1) + Seconds(w0, w1), parse_cpu + put_cpu);
    if (db == file_db) {
      double rc0 = CpuSeconds();
      auto r0 = Clock::now();
      auto reopened = kt::TerminologyStore::Open(options, registry, sink);
      auto r1 = Clock::now();
      std::printf("reopen file db (schema + warm cache from SQLite): %.3f s wall, %.3f s CPU\n",
                  Seconds(r0, r1), CpuSeconds() - rc0);
      store = std::move(*reopened);
    }
  }

  // ---- lookups (random codes over the whole master)
  std::mt19937_64 rng(42);
  std::vector<std::string> codes;
  for (int i = 0; i < 4096; ++i) codes.push_back(Hot13(rng() % rows).substr(0, 9));
  const std::string hot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
  kt::TerminologyService service(*store);
  std::size_t hits = 0;
  auto find = Measure(
      seconds, [&](std::size_t i) { hits += store->Find(hot9, codes[i & 4095]) != nullptr; });
  auto find_v2 = Measure(
      seconds, [&](std::size_t i) { hits += service.Find("HOT9", codes[i & 4095]) != nullptr; });
  auto lookup = Measure(seconds, [&](std::size_t i) {
    kt::LookupRequest req{"urn:oid:1.2.392.200119.4.403.1", codes[i & 4095], "", {}};
    hits += service.Lookup(req).found;
  });
  auto translate = Measure(seconds, [&](std::size_t i) {
    kt::TranslateRequest req{"", "HOT9", codes[i & 4095], "YJ", false};
    hits += service.Translate(req).result;
  });
  auto translate_coding = Measure(seconds, [&](std::size_t i) {
    hits += service.TranslateCoding({"HOT9", codes[i & 4095], "", ""}, "YJ", sink)
                .translated.has_value();
  });
  auto print = [](const char* what, const Rate& r) {
    std::printf("%-42s %8.1f ns wall %10.0f /s  %8.1f ns CPU %10.0f /s\n", what, r.ns_per_op,
                r.ops_per_s, r.cpu_ns_per_op, 1e9 / r.cpu_ns_per_op);
  };
  print("lookup    store.Find(canonical URI)", find);
  print("lookup    service.Find(\"HOT9\")", find_v2);
  print("lookup    $lookup (urn:oid, result struct)", lookup);
  print("translate $translate HOT9 -> YJ", translate);
  print("translate TranslateCoding HOT9 -> YJ", translate_coding);
  std::printf("(hits %zu; issue #5 goal: lookup < 2 us warm (CPU time): %s)\n", hits,
              lookup.cpu_ns_per_op < 2000 && find_v2.cpu_ns_per_op < 2000 ? "met" : "NOT met");
  if (file_db.rfind("sqlite:", 0) == 0) {
    store.reset();  // close first, then remove the database and its WAL/SHM files
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(file_db.substr(7) + suffix);
    }
  }
  return 0;
}
