// `kakehashi reindex`: rebuilds the search index rows of a gateway database (decision 0037).
#include "args.hpp"
#include "commands.hpp"

#include "kakehashi/gateway/store/store.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

namespace kakehashi::app {

namespace {

constexpr const char* kHelp =
    "Usage: kakehashi reindex [--db URL] [--force] [--batch N]\n\n"
    "Extracts the search index rows of every current resource of the gateway database again\n"
    "from its stored JSON, with this kakehashi's index definition (docs/gateway.md \"Store\").\n"
    "kakehashi serve and import do this themselves, before serving or importing, when they open\n"
    "a database whose rows were made by another definition (an older kakehashi); run it first\n"
    "to keep that wait out of a restart, or with --force after an older kakehashi wrote to the\n"
    "database again. Resumable: an interrupted run continues where it stopped; several runs\n"
    "(or gateways) on one database share the work instead of repeating it. Searches of other\n"
    "processes meanwhile find each resource by its old or by its new rows. Only the rows that\n"
    "the definition changed are written (decision 0050).\n\n"
    "Options:\n"
    "  --db URL     sqlite:PATH (default sqlite:kakehashi.sqlite) or postgresql://...\n"
    "  --force      re-index every resource even when the database is up to date\n"
    "  --batch N    resources per transaction (default 500)\n"
    "  --help       this help\n\n"
    "Progress (count, rate, time left) goes to stderr every 5 s, the summary to stdout.\n"
    "Exit codes: 0 done, 1 some stored resources could not be read as JSON (they have no index\n"
    "rows; counted in the summary), 2 usage or environment error.\n";

}  // namespace

int RunReindex(const std::vector<std::string>& argv) {
  Args args({"db", "batch"}, {"help", "force"});
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi reindex: %s (see kakehashi reindex --help)\n",
                 args.Error().c_str());
    return kExitUsage;
  }
  if (args.Help()) {
    std::printf("%s", kHelp);
    return kExitOk;
  }
  if (!args.Positionals().empty()) {
    std::fprintf(stderr, "kakehashi reindex: takes no arguments (see --help)\n");
    return kExitUsage;
  }
  gateway::store::ReindexOptions reindex;
  reindex.restart = args.Has("force");
  if (auto text = args.Get("batch")) {
    std::size_t batch = 0;
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), batch);
    if (ec != std::errc() || ptr != text->data() + text->size() || batch == 0 || batch > 100000) {
      std::fprintf(stderr, "kakehashi reindex: --batch must be 1..100000\n");
      return kExitUsage;
    }
    reindex.batch = batch;
  }
  const std::string db = args.GetOr("db", "sqlite:kakehashi.sqlite");
  if (db.starts_with("sqlite:")) {
    // Re-indexing creates nothing: a missing file is a mistyped path, not an empty database.
    const std::string file = db.substr(db.starts_with("sqlite://") ? 9 : 7);
    std::error_code ec;
    if (file != ":memory:" && !std::filesystem::exists(file, ec)) {
      std::fprintf(stderr, "kakehashi reindex: no database at %s\n", file.c_str());
      return kExitUsage;
    }
  }
  gateway::store::StoreOptions options;
  options.max_connections = 2;
  options.reindex_on_open = false;
  auto store = gateway::store::OpenStore(db, options);
  if (!store) {
    std::fprintf(stderr, "kakehashi reindex: cannot open --db: %s\n",
                 store.error().message().c_str());
    return kExitUsage;
  }
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  reindex.progress = [&last, start](std::int64_t done, std::int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last < std::chrono::seconds(5)) return;
    last = now;
    std::fprintf(stderr, "kakehashi reindex: %s\n",
                 gateway::store::ReindexProgressText(done, total, now - start).c_str());
  };
  const auto definition = gateway::store::DefaultIndexDefinition();
  auto report = gateway::store::Reindex(**store, definition, reindex);
  if (!report) {
    std::fprintf(stderr, "kakehashi reindex: %s (run it again to resume)\n",
                 report.error().message().c_str());
    return kExitUsage;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!report->ran) {
    std::printf("kakehashi reindex: up to date (index definition %s)\n",
                definition.fingerprint.c_str());
    return kExitOk;
  }
  std::printf(
      "kakehashi reindex: %lld resources re-indexed in %.1f s (index definition %s), rows of %lld "
      "changed",
      static_cast<long long>(report->resources), seconds, definition.fingerprint.c_str(),
      static_cast<long long>(report->changed));
  if (report->unreadable > 0) {
    std::printf("; %lld could not be read as JSON and have no index rows\n",
                static_cast<long long>(report->unreadable));
    return kExitInputErrors;
  }
  std::printf("\n");
  return kExitOk;
}

}  // namespace kakehashi::app
