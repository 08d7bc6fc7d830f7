// `kakehashi serve`: the FHIR REST gateway (docs/gateway.md).
#include "args.hpp"
#include "commands.hpp"

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/health.hpp"
#include "kakehashi/gateway/loader.hpp"
#include "kakehashi/gateway/server.hpp"
#include "kakehashi/gateway/store/background_reindex.hpp"
#include "kakehashi/gateway/store/store.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/node.hpp"
#endif
#ifdef KAKEHASHI_HAVE_IMPORT
#include "conversion_settings.hpp"
#include "importer.hpp"
#include "kakehashi/adapters/ssmix2/file_name.hpp"
#endif
#include "kakehashi/gateway/terminology_ops.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/store.hpp"

#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

namespace kakehashi::app {

namespace {

constexpr const char* kHelp =
    "Usage: kakehashi serve [options]\n\n"
    "Serves FHIR R4 over HTTP at http://HOST:PORT/fhir (read, vread, create, update, patch,\n"
    "delete, history, search, batch/transaction, Patient/$everything, /metadata) and the\n"
    "terminology operations CodeSystem/$lookup, ValueSet/$validate-code, ValueSet/$expand and\n"
    "ConceptMap/$translate.\n\n"
    "Options:\n"
    "  --port N          TCP port (default 8080; 0 picks a free port)\n"
    "  --host ADDR       address to listen on (default 127.0.0.1)\n"
    "  --db URL          sqlite:PATH (default sqlite:kakehashi.sqlite) or postgresql://...\n"
    "  --load PATH       load data before serving; repeatable. PATH is an SS-MIX2 storage root\n"
    "                    or an HL7 v2 file (converted to JP Core as `kakehashi import` does:\n"
    "                    resumable, already imported patients are skipped), or FHIR JSON /\n"
    "                    Bundles / NDJSON (a file or a directory of them). Resources with an id\n"
    "                    are PUT, so reloading is idempotent.\n"
    "  --facility CODE   10-digit 医療機関コード for SS-MIX2 / HL7 v2 --load (as for convert)\n"
    "  --terminology URL terminology database for the $lookup/$validate-code/$expand/$translate\n"
    "                    operations (sqlite:PATH, as written by `kakehashi terminology load`;\n"
    "                    default $KAKEHASHI_TERMINOLOGY_DB, else the built-in tables only);\n"
    "                    SS-MIX2 / HL7 v2 --load binds codings to it as convert --terminology\n"
    "  --threads N       io threads (default: number of cores)\n"
    "  --read-threads N  threads that run the requests reading the store (searches,\n"
    "                    history, vread, $everything, operations, reads by id the read\n"
    "                    cache cannot answer), so that no io thread waits for the store\n"
    "                    (default: number of cores, at least 2)\n"
    "  --commit-queue N  group commit: writes are prepared on the io threads and committed\n"
    "                    several per transaction by one commit thread, each in a savepoint;\n"
    "                    at most N wait (more get 503; default 1024). A request that hits a\n"
    "                    transient store error (busy, deadlock, lost connection) is run again\n"
    "                    alone (at most 4 runs) and never applied twice (decision 0016).\n"
    "                    0: each write commits alone on its io thread (no retries).\n"
    "  --read-cache MIB  memory for the read-by-id cache on SQLite (default 128; 0 turns it\n"
    "                    off). Exact across processes: an entry is served only while the\n"
    "                    database has seen no commit since it was read. Never on PostgreSQL.\n"
    "  --io-thread-reads on|off  a read-cache miss is read on the io thread when its pages\n"
    "                    are in memory and no lock is held elsewhere, else on a read thread\n"
    "                    (default off: fewer system calls per miss, but a\n"
    "                    longer p99 under load; SQLite only; decision 0051)\n"
    "  --max-connections N  open connections at most; at the cap new ones wait in the\n"
    "                    listen backlog until one closes (default: the open-file limit\n"
    "                    less 128, between 16 and 4096)\n"
    "  --base-url URL    external base for links (default http://HOST:PORT/fhir)\n"
    "  --drain-seconds N on SIGTERM/SIGINT, answer /health/ready with 503 and keep serving\n"
    "                    for N seconds before the graceful stop, so that a load balancer\n"
    "                    takes this gateway out first (default 0; a second signal stops now)\n"
    "  --auth off        serve without access control. Access control is not implemented yet,\n"
    "                    so the server is currently always open; a later release makes\n"
    "                    authentication the default and then requires --auth off for this.\n"
    "  --help            this help\n\n"
    "A database whose search index rows were made by another kakehashi is re-indexed while\n"
    "the server already serves: searches answer 503 until it is done, reads, history and\n"
    "writes are served (with --load it is re-indexed before loading).\n"
    "Health (outside /fhir, not FHIR): GET /health/live (200 while the process answers) and\n"
    "GET /health/ready (200 when the database answers, no re-index runs and no shutdown\n"
    "drains; else 503), with counts and the re-index progress as application/health+json.\n"
    "Stops gracefully on SIGINT/SIGTERM (in-flight requests finish, up to 10 s).\n"
    "Exit codes: 0 stopped normally, 1 --load had rejected input, 2 usage or environment error.\n";

bool ParseInt(const std::string& text, int& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

#ifdef KAKEHASHI_HAVE_IMPORT
enum class LoadKind { kFhir, kSsmix2Root, kHl7v2File };

// What a --load PATH holds, decided cheaply: a directory with a 3-character folder (the SS-MIX2
// ID[0:3] level) and no FHIR JSON at its top is a store; a file with an SS-MIX2 name or starting
// with MSH is HL7 v2; everything else goes to the FHIR JSON loader (which reports what it is not).
LoadKind LoadKindOf(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    bool prefix_folder = false;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const auto ext = entry.path().extension();
      if (ext == ".json" || ext == ".ndjson") return LoadKind::kFhir;
      if (entry.is_directory(ec) && entry.path().filename().string().size() == 3) {
        prefix_folder = true;
      }
    }
    return prefix_folder ? LoadKind::kSsmix2Root : LoadKind::kFhir;
  }
  const fs::path p(path);
  if (p.extension() == ".json" || p.extension() == ".ndjson") return LoadKind::kFhir;
  if (adapters::ssmix2::ParseFileName(p.filename().string()).has_value()) {
    return LoadKind::kHl7v2File;
  }
  std::ifstream in(p, std::ios::binary);
  char head[8] = {};
  in.read(head, sizeof head);
  std::string_view start(head, static_cast<std::size_t>(in.gcount()));
  while (!start.empty() &&
         (start.front() == '\x0b' || static_cast<unsigned char>(start.front()) >= 0xBB)) {
    start.remove_prefix(1);  // MLLP start block, UTF-8 BOM
  }
  return start.starts_with("MSH") ? LoadKind::kHl7v2File : LoadKind::kFhir;
}
#endif

class PrintingSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    std::fprintf(stderr, "kakehashi serve: %s\n", issue.ToString().c_str());
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors;
  }
  std::size_t errors = 0;
};

#ifdef KAKEHASHI_HAVE_IMPORT
// Issues of SS-MIX2 / HL7 v2 --load: errors as one line each without their location (SS-MIX2
// paths contain patient IDs), the rest counted (`kakehashi import --issues` writes them all).
class ImportSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) {
      ++errors;
      if (errors <= 20) {
        std::fprintf(stderr, "kakehashi serve: %s %.*s: %s\n",
                     std::string(ToString(issue.severity)).c_str(),
                     static_cast<int>(issue.code.size()), issue.code.data(), issue.message.c_str());
      }
    } else {
      ++others;
    }
  }
  std::size_t errors = 0;
  std::size_t others = 0;
};
#endif

}  // namespace

int RunServe(const std::vector<std::string>& argv) {
  Args args({"port", "host", "db", "load", "threads", "read-threads", "read-cache", "base-url",
             "auth", "facility", "terminology", "commit-queue", "max-connections",
             "io-thread-reads", "drain-seconds"},
            {"help"});
  if (!args.Parse(argv)) {
    std::fprintf(stderr, "kakehashi serve: %s\n%s", args.Error().c_str(), kHelp);
    return kExitUsage;
  }
  if (args.Help()) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (!args.Positionals().empty()) {
    std::fprintf(stderr, "kakehashi serve: unexpected argument (see --help)\n");
    return kExitUsage;
  }
  gateway::ServerOptions server_options;
  server_options.host = args.GetOr("host", "127.0.0.1");
  int port = 8080;
  if (auto p = args.Get("port"); p && (!ParseInt(*p, port) || port < 0 || port > 65535)) {
    std::fprintf(stderr, "kakehashi serve: --port must be 0..65535\n");
    return kExitUsage;
  }
  server_options.port = static_cast<unsigned short>(port);
  if (auto t = args.Get("threads");
      t && (!ParseInt(*t, server_options.threads) || server_options.threads < 1)) {
    std::fprintf(stderr, "kakehashi serve: --threads must be a positive integer\n");
    return kExitUsage;
  }
  if (auto t = args.Get("read-threads");
      t && (!ParseInt(*t, server_options.read_threads) || server_options.read_threads < 1)) {
    std::fprintf(stderr, "kakehashi serve: --read-threads must be a positive integer\n");
    return kExitUsage;
  }
  int commit_queue = static_cast<int>(server_options.commit_queue);
  if (auto q = args.Get("commit-queue"); q && (!ParseInt(*q, commit_queue) || commit_queue < 0)) {
    std::fprintf(stderr, "kakehashi serve: --commit-queue must be a number of requests (0: off)\n");
    return kExitUsage;
  }
  server_options.commit_queue = static_cast<std::size_t>(commit_queue);
  if (auto m = args.Get("max-connections");
      m && (!ParseInt(*m, server_options.max_connections) || server_options.max_connections < 1)) {
    std::fprintf(stderr, "kakehashi serve: --max-connections must be a positive integer\n");
    return kExitUsage;
  }
  int read_cache_mib = 128;
  if (auto c = args.Get("read-cache");
      c && (!ParseInt(*c, read_cache_mib) || read_cache_mib < 0 || read_cache_mib > 1024 * 1024)) {
    std::fprintf(stderr,
                 "kakehashi serve: --read-cache must be a number of MiB (0 turns it off)\n");
    return kExitUsage;
  }
  if (auto r = args.Get("io-thread-reads")) {
    if (*r != "on" && *r != "off") {
      std::fprintf(stderr, "kakehashi serve: --io-thread-reads must be on or off\n");
      return kExitUsage;
    }
    server_options.io_thread_reads = *r == "on";
  }
  int drain_seconds = 0;
  if (auto d = args.Get("drain-seconds");
      d && (!ParseInt(*d, drain_seconds) || drain_seconds < 0 || drain_seconds > 3600)) {
    std::fprintf(stderr, "kakehashi serve: --drain-seconds must be 0..3600\n");
    return kExitUsage;
  }
  server_options.drain_delay = std::chrono::seconds(drain_seconds);
  if (auto auth = args.Get("auth"); auth && *auth != "off") {
    std::fprintf(
        stderr,
        "kakehashi serve: --auth accepts only 'off' (access control is not implemented yet)\n");
    return kExitUsage;
  }
  server_options.handle_signals = true;

  const std::string db = args.GetOr("db", "sqlite:kakehashi.sqlite");
  gateway::store::StoreOptions store_options;
  // Pooled sessions are taken by the reader threads and the commit thread (io threads do not
  // use the store), plus spares.
  const int threads =
      server_options.threads > 0 ? server_options.threads : gateway::DefaultIoThreads();
  const int read_threads =
      server_options.read_threads > 0 ? server_options.read_threads : gateway::DefaultReadThreads();
  store_options.max_connections = read_threads + 3;
  if (db.starts_with("sqlite:")) {
    std::filesystem::path file(db.substr(db.starts_with("sqlite://") ? 9 : 7));
    if (file.has_parent_path() && file.string() != ":memory:") {
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);
    }
  }
  // Decision 0055: without --load, a store whose index rows are of another definition (an
  // upgrade) is re-indexed while the server already serves (searches get 503 until it is
  // done); --load re-indexes first, as before, since loading may search.
  const bool background_reindex = args.GetAll("load").empty();
  store_options.reindex_on_open = !background_reindex;
  auto store = gateway::store::OpenStore(db, store_options);
  if (!store) {
    std::fprintf(stderr, "kakehashi serve: cannot open --db: %s\n",
                 store.error().message().c_str());
    return kExitUsage;
  }
  std::unique_ptr<gateway::store::BackgroundReindex> reindex;
  if (background_reindex) {
    gateway::store::ReindexOptions reindex_options;
    const auto start = std::chrono::steady_clock::now();
    auto last = std::make_shared<std::chrono::steady_clock::time_point>(start);
    reindex_options.progress = [start, last](std::int64_t done, std::int64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - *last < std::chrono::seconds(5)) return;
      *last = now;
      std::fprintf(stderr, "kakehashi serve: %s\n",
                   gateway::store::ReindexProgressText(done, total, now - start).c_str());
    };
    auto started = gateway::store::BackgroundReindex::Start(
        **store, gateway::store::DefaultIndexDefinition(), std::move(reindex_options));
    if (!started) {
      std::fprintf(stderr, "kakehashi serve: cannot re-index --db: %s\n",
                   started.error().message().c_str());
      return kExitUsage;
    }
    reindex = std::move(*started);
    if (const auto status = reindex->Status(); status.running) {
      std::fprintf(stderr,
                   "kakehashi serve: the index definition changed (decision 0037): re-indexing "
                   "%lld resources while serving; searches answer 503 until it is done "
                   "(decision 0055)\n",
                   static_cast<long long>(status.total));
    }
  }
  gateway::store::Store& serving = reindex ? reindex->Store() : **store;

  gateway::Server server(server_options);
  if (auto l = server.Listen(); !l) {
    std::fprintf(stderr, "kakehashi serve: cannot listen on %s:%d: %s\n",
                 server_options.host.c_str(), port, l.error().message().c_str());
    return kExitUsage;
  }
  const unsigned short bound = server.Port();
  gateway::HandlerOptions handler_options;
  const std::string host_for_url =
      server_options.host == "0.0.0.0" ? std::string("127.0.0.1") : server_options.host;
  handler_options.base_url =
      args.GetOr("base-url", "http://" + host_for_url + ":" + std::to_string(bound) + "/fhir");
  while (handler_options.base_url.ends_with('/')) handler_options.base_url.pop_back();
  // Read-by-id cache on SQLite: valid while the file's WAL index shows no commit (docs/gateway.md).
  if (db.starts_with("sqlite:")) {
    std::string file = db.substr(db.starts_with("sqlite://") ? 9 : 7);
    if (file != ":memory:") handler_options.read_cache_sqlite_file = std::move(file);
  }
  handler_options.read_cache_bytes = static_cast<std::size_t>(read_cache_mib) * 1024 * 1024;
#ifdef KAKEHASHI_HAVE_CONFORMANCE
  // Every write is validated against the R4 base definitions before it is stored (422 with the
  // issues otherwise). References are not resolved here: their targets live in the store, not in
  // the resource (the handler resolves transaction-internal ones itself).
  conformance::ValidatorOptions validator_options;
  validator_options.check_references = false;
  auto validator = std::make_shared<conformance::Validator>(validator_options);
  // The handler hands over the tree it prepared (decision 0052): nothing is parsed twice.
  handler_options.node_validator = [validator](const fhir::Node& resource, IssueSink& issues) {
    validator->Validate(resource, issues);
  };
#endif
  // Terminology operations over the built-in tables, plus a loaded terminology database.
  // The same database the --load conversion binds to (ConversionSettings::terminology).
  const std::string terminology_db = TerminologyDbOption(args);
  terminology::TerminologyStore::Options terminology_options;
  if (!terminology_db.empty()) terminology_options.db = terminology_db;
  PrintingSink terminology_sink;
  auto terminology_store = terminology::TerminologyStore::Open(
      terminology_options, terminology::CodeSystemRegistry::Builtin(), terminology_sink);
  if (!terminology_store) {
    std::fprintf(stderr, "kakehashi serve: cannot open --terminology: %s\n",
                 terminology_store.error().message().c_str());
    return kExitUsage;
  }
  handler_options.type_operations = gateway::TerminologyOperations(**terminology_store);
  handler_options.value_set_codes = gateway::TerminologyValueSetCodes(**terminology_store);
  // /health/live and /health/ready (decision 0054): the served store, the re-index progress.
  handler_options.health = std::make_shared<gateway::Health>(serving, reindex.get());
  auto handler = std::make_unique<gateway::Handler>(serving, handler_options);

  PrintingSink sink;
#ifdef KAKEHASHI_HAVE_IMPORT
  // SS-MIX2 roots and HL7 v2 files go through the importer (importer.hpp).
  // --facility and --terminology (with $KAKEHASHI_TERMINOLOGY_DB) as convert and import read
  // them (conversion_settings.hpp); serve accepts no other conversion option.
  const auto settings = ConversionSettings::Read(args, "serve");
  if (!settings) return kExitUsage;
  std::optional<mapping::RuleSet> rules;
  ImportSink import_sink;
  std::unique_ptr<Importer> importer;
  // Several SS-MIX2 roots: issue locations name the root as given, as import's and convert's do.
  std::size_t roots = 0;
  for (const std::string& path : args.GetAll("load")) {
    if (LoadKindOf(path) == LoadKind::kSsmix2Root) ++roots;
  }
  auto import_one = [&](const std::string& path, bool directory) -> int {
    if (!importer) {
      rules = settings->LoadRules("serve");
      if (!rules) return kExitUsage;
      ImportOptions options;
      // The terminology database of the operations also binds the converted codings (display
      // from the masters, site ConceptMap translations), as `convert --terminology` does.
      options.map =
          settings->MapOptions(settings->terminology.empty() ? nullptr : terminology_store->get());
      options.settings = settings->Fingerprint();
      options.chunk_resources = DefaultImportChunk(db);
      // Read-ahead as `kakehashi import` (decision 0018): a cold store's reads wait on the disk
      // together; the threads end with the load, before serving starts.
      options.io_threads = kDefaultImportIoThreads;
      options.label = "serve --load";
      options.progress = isatty(fileno(stderr)) != 0;
      if (db.starts_with("sqlite:")) {
        options.reject_dir = db.substr(db.starts_with("sqlite://") ? 9 : 7) + ".rejected";
      } else {
        options.reject_dir = "kakehashi-import.rejected";
      }
      importer = std::make_unique<Importer>(*handler, **store, *rules, options, import_sink);
    }
    auto r = directory ? importer->ImportStore(path, roots > 1 ? RootLabel(path) : std::string())
                       : importer->ImportFile(path);
    if (!r) {
      std::fprintf(stderr, "kakehashi serve: cannot load %s: %s\n", path.c_str(),
                   r.error().message().c_str());
      return kExitUsage;
    }
    const ImportStats& stats = importer->Stats();
    std::size_t written = 0;
    for (const auto& [type, n] : stats.put_by_type) written += n;
    std::fprintf(stderr,
                 "kakehashi serve: imported so far: %zu units (%zu already done), %zu messages, "
                 "%zu resources written, %zu refused; %zu errors, %zu other issues (see "
                 "`kakehashi import --issues`)\n",
                 stats.units, stats.skipped_units, stats.messages, written, stats.rejected,
                 import_sink.errors, import_sink.others);
    return kExitOk;
  };
#endif
  for (const std::string& path : args.GetAll("load")) {
    std::fprintf(stderr, "kakehashi serve: loading %s ...\n", path.c_str());
#ifdef KAKEHASHI_HAVE_IMPORT
    if (auto kind = LoadKindOf(path); kind != LoadKind::kFhir) {
      if (int rc = import_one(path, kind == LoadKind::kSsmix2Root); rc != kExitOk) return rc;
      continue;
    }
#endif
    auto stats = gateway::LoadPath(*handler, path, sink);
    if (!stats) {
      std::fprintf(stderr, "kakehashi serve: cannot load %s: %s\n", path.c_str(),
                   stats.error().message().c_str());
      return kExitUsage;
    }
    std::fprintf(stderr, "kakehashi serve: loaded %zu resources from %zu files (%zu rejected)\n",
                 stats->resources, stats->files, stats->rejected);
  }

  if (!args.Has("auth")) {
    std::fprintf(
        stderr,
        "kakehashi serve: note: access control is not implemented yet; this server is open "
        "to anyone who can reach %s:%u. Pass --auth off to acknowledge.\n",
        server_options.host.c_str(), bound);
  }
  std::printf("kakehashi serve: %s (%s), %d io threads, %d reader threads\n",
              handler_options.base_url.c_str(), (*store)->Backend().data(), threads, read_threads);
  std::printf("  try: curl %s/metadata\n", handler_options.base_url.c_str());
  std::printf("       curl http://%s:%u/health/ready\n", host_for_url.c_str(), bound);
  std::printf("       curl '%s/Patient?_count=5'\n", handler_options.base_url.c_str());
  std::printf("       curl '%s/Observation?_count=5&_sort=-_lastUpdated'\n",
              handler_options.base_url.c_str());
  std::printf("       curl '%s/CodeSystem/$lookup?system=HL70001&code=F'\n",
              handler_options.base_url.c_str());
  std::printf("  Ctrl-C stops.\n");
  std::fflush(stdout);
  server.Run(*handler);
  std::fprintf(stderr, "kakehashi serve: stopped\n");
  std::size_t load_errors = sink.errors;
#ifdef KAKEHASHI_HAVE_IMPORT
  load_errors += import_sink.errors;
#endif
  return load_errors > 0 ? kExitInputErrors : kExitOk;
}

}  // namespace kakehashi::app
