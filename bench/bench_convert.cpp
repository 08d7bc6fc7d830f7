// bench_convert — full SS-MIX2 conversion throughput: walk + read + decode + parse + map, with a
// streaming output sink (resources are serialised to a counting sink, not kept), so the figure
// is what `kakehashi convert --format ndjson` costs per message; peak RSS shows the store is
// streamed, not held in memory.
//
//   bench_convert [--store DIR] [--messages N] [--terminology]
// --terminology: convert with a terminology store (a synthetic 100,000-drug HOT master in memory)
// bound to every Coding. Without it, codings are still bound (canonical system, spelling,
// master_not_loaded warnings) but no store is consulted. Every run then prints the CodingBinder
// figures over that synthetic master: bind/s (display from the master) and translate/s
// (YJ -> HOT9 added next to the original).
// Without --store, a synthetic store of N messages (default 20000) is generated next to the
// binary with gen_ssmix2_store (mixed encodings, flags 1/2/0) into a temporary directory.
// There is no peer converter to compare with in this run (no SS-MIX2 -> FHIR peer is installed).
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/mapping/bundle.hpp"
#include "kakehashi/mapping/coding_binder.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"
#include "kakehashi/terminology/store.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

namespace term = kakehashi::terminology;
constexpr const char* kHot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
constexpr const char* kYj = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";

// A synthetic HOT master of `n` drugs: HOT9 and YJ concepts and the HOT9 -> YJ mappings, as the
// hot loader writes them (terminology/src/loaders.cpp).
std::unique_ptr<term::TerminologyStore> SyntheticStore(std::size_t n) {
  NullSink sink;
  term::TerminologyStore::Options options;
  auto store = term::TerminologyStore::Open(options, term::CodeSystemRegistry::Builtin(), sink);
  if (!store) return nullptr;
  term::TerminologyContent content;
  for (std::size_t i = 0; i < n; ++i) {
    char hot9[16], yj[16];
    std::snprintf(hot9, sizeof hot9, "1%06zu01", i);
    std::snprintf(yj, sizeof yj, "%07zuF1%03zu", 1000000 + i, i % 1000);
    const std::string name = "合成薬品" + std::to_string(i);
    content.concepts.push_back({kHot9, hot9, name, true, "", "hot", {}});
    content.concepts.push_back({kYj, yj, name, true, "", "hot", {}});
    term::Mapping m;
    m.map = term::ConceptMapUrl("hot");
    m.source_system = kHot9;
    m.source_code = hot9;
    m.target_system = kYj;
    m.target_code = yj;
    m.target_display = name;
    m.source = "hot";
    content.mappings.push_back(std::move(m));
  }
  term::LoadRecord record;
  record.kind = "hot";
  record.source = "hot";
  record.file = "synthetic";
  if (!(*store)->Put(std::move(content), record)) return nullptr;
  return std::move(*store);
}

fhir::Node Resource(const char* system, const std::string& code) {
  fhir::Node coding = fhir::Node::Object();
  coding.Set("system", fhir::Node::String(system));
  coding.Set("code", fhir::Node::String(code));
  coding.Set("display", fhir::Node::String("処方時の名称"));
  fhir::Node list = fhir::Node::Array();
  list.Push(std::move(coding));
  fhir::Node cc = fhir::Node::Object();
  cc.Set("coding", std::move(list));
  cc.Set("text", fhir::Node::String("処方時の名称"));
  fhir::Node r = fhir::Node::Object();
  r.Set("resourceType", fhir::Node::String("MedicationRequest"));
  r.Set("medicationCodeableConcept", std::move(cc));
  return r;
}

// Binds `n` copies of a one-coding resource; returns codings per second (copy included).
double BindRate(const mapping::CodingBinder& binder, const char* system, bool yj, std::size_t n) {
  std::vector<fhir::Node> resources;
  resources.reserve(1000);
  for (std::size_t i = 0; i < 1000; ++i) {
    char code[16];
    if (yj) {
      std::snprintf(code, sizeof code, "%07zuF1%03zu", 1000000 + i * 37, (i * 37) % 1000);
    } else {
      std::snprintf(code, sizeof code, "1%06zu01", i * 37);
    }
    resources.push_back(Resource(system, code));
  }
  NullSink issues;
  Location base;
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    fhir::Node r = resources[i % resources.size()];
    mapping::CodingBinder::MessageState state;
    binder.Bind(r, base, issues, state);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return secs > 0 ? static_cast<double>(n) / secs : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string store;
  long messages = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--store") store = argv[i + 1];
    if (a == "--messages") messages = std::atol(argv[i + 1]);
  }
  bool with_terminology = false;
  for (int i = 1; i < argc; ++i)
    with_terminology = with_terminology || std::string(argv[i]) == "--terminology";
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
  std::unique_ptr<term::TerminologyStore> terminology;
  if (with_terminology) {
    auto load_start = std::chrono::steady_clock::now();
    terminology = SyntheticStore(100000);
    if (terminology == nullptr) {
      std::fprintf(stderr, "bench_convert: synthetic terminology store failed\n");
      return 2;
    }
    std::printf(
        "bench_convert: synthetic HOT master (100,000 drugs) in memory in %.2f s\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
    options.terminology = terminology.get();
  }
  mapping::Converter converter(*rules, options);
  CountingOutput out;
  CollectingSink issues(0);  // count only
  adapters::ssmix2::StorageReader reader(store, issues);
  auto start = std::chrono::steady_clock::now();
  const double cpu_start = ThreadCpuSeconds();
  while (true) {
    auto next = reader.Next();
    if (!next || !*next) break;
    converter.ConvertRecord(**next, out, issues);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = ThreadCpuSeconds() - cpu_start;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto& stats = converter.Stats();
  std::printf("bench_convert: %zu files, %zu messages, %zu resources PUT, %zu DELETE in %.2f s\n",
              stats.files, stats.messages, out.puts, out.deletes, secs);
  std::printf("bench_convert: %.0f messages/s (1 thread), peak RSS %.1f MB, %zu issues\n",
              secs > 0 ? static_cast<double>(stats.messages) / secs : 0.0,
              static_cast<double>(usage.ru_maxrss) / 1024.0, issues.Counts().Total());
  // CPU time of this thread: the figure to compare on a shared, loaded machine.
  std::printf("bench_convert: %.0f messages per CPU second (%.2f s CPU)\n",
              cpu > 0 ? static_cast<double>(stats.messages) / cpu : 0.0, cpu);
  // The CodingBinder lines are printed on every run (make bench); the store is built here when
  // the conversion ran without one.
  if (terminology == nullptr) terminology = SyntheticStore(100000);
  if (terminology != nullptr) {
    const mapping::CodingBinder binder(term::CodeSystemRegistry::Builtin(), terminology.get(),
                                       term::ProfileSet::kJpCore112);
    const mapping::CodingBinder no_store(term::CodeSystemRegistry::Builtin(), nullptr,
                                         term::ProfileSet::kJpCore112);
    constexpr std::size_t kN = 1000000;
    std::printf("bench_convert: CodingBinder bind/s (HOT9, display from master): %.0f\n",
                BindRate(binder, kHot9, false, kN));
    std::printf("bench_convert: CodingBinder translate/s (YJ -> HOT9 added): %.0f\n",
                BindRate(binder, kYj, true, kN));
    std::printf("bench_convert: CodingBinder bind/s without a store (spelling only): %.0f\n",
                BindRate(no_store, kHot9, false, kN));
  }
  if (generated) fs::remove_all(store);
  return 0;
}
