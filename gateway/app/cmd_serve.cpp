// `kakehashi serve`: the FHIR REST gateway (docs/gateway.md).
#include "args.hpp"
#include "commands.hpp"

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/loader.hpp"
#include "kakehashi/gateway/server.hpp"
#include "kakehashi/gateway/store/store.hpp"

#ifdef KAKEHASHI_HAVE_CONFORMANCE
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"
#endif

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <thread>

namespace kakehashi::app {

namespace {

constexpr const char* kHelp =
    "Usage: kakehashi serve [options]\n\n"
    "Serves FHIR R4 over HTTP at http://HOST:PORT/fhir (read, vread, create, update, delete,\n"
    "history, search, batch/transaction, Patient/$everything, /metadata).\n\n"
    "Options:\n"
    "  --port N          TCP port (default 8080; 0 picks a free port)\n"
    "  --host ADDR       address to listen on (default 127.0.0.1)\n"
    "  --db URL          sqlite:PATH (default sqlite:kakehashi.sqlite) or postgresql://...\n"
    "  --load PATH       load FHIR JSON / Bundles / NDJSON (file or directory) before serving;\n"
    "                    repeatable. Resources with an id are PUT, so reloading is idempotent.\n"
    "  --threads N       io threads (default: number of cores)\n"
    "  --base-url URL    external base for links (default http://HOST:PORT/fhir)\n"
    "  --auth off        serve without access control. Access control is not implemented yet,\n"
    "                    so the server is currently always open; a later release makes\n"
    "                    authentication the default and then requires --auth off for this.\n"
    "  --help            this help\n\n"
    "Stops gracefully on SIGINT/SIGTERM (in-flight requests finish, up to 10 s).\n"
    "Exit codes: 0 stopped normally, 1 --load had rejected input, 2 usage or environment error.\n";

bool ParseInt(const std::string& text, int& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

class PrintingSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    std::fprintf(stderr, "kakehashi serve: %s\n", issue.ToString().c_str());
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors;
  }
  std::size_t errors = 0;
};

}  // namespace

int RunServe(const std::vector<std::string>& argv) {
  Args args({"port", "host", "db", "load", "threads", "base-url", "auth"}, {"help"});
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
  if (auto auth = args.Get("auth"); auth && *auth != "off") {
    std::fprintf(
        stderr,
        "kakehashi serve: --auth accepts only 'off' (access control is not implemented yet)\n");
    return kExitUsage;
  }
  server_options.handle_signals = true;

  const std::string db = args.GetOr("db", "sqlite:kakehashi.sqlite");
  gateway::store::StoreOptions store_options;
  const int threads = server_options.threads > 0
                          ? server_options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  store_options.max_connections = threads + 2;
  if (db.starts_with("sqlite:")) {
    std::filesystem::path file(db.substr(db.starts_with("sqlite://") ? 9 : 7));
    if (file.has_parent_path() && file.string() != ":memory:") {
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);
    }
  }
  auto store = gateway::store::OpenStore(db, store_options);
  if (!store) {
    std::fprintf(stderr, "kakehashi serve: cannot open --db: %s\n",
                 store.error().message().c_str());
    return kExitUsage;
  }

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
#ifdef KAKEHASHI_HAVE_CONFORMANCE
  // Every write is validated against the R4 base definitions before it is stored (422 with the
  // issues otherwise). References are not resolved here: their targets live in the store, not in
  // the resource (the handler resolves transaction-internal ones itself).
  conformance::ValidatorOptions validator_options;
  validator_options.check_references = false;
  auto validator = std::make_shared<conformance::Validator>(validator_options);
  handler_options.validator = [validator](std::string_view json, IssueSink& issues) {
    auto node = fhir::ParseJson(json);
    if (!node) {
      issues.Error("gateway.validate.unreadable", {}, "the resource could not be re-read");
      return;
    }
    validator->Validate(*node, issues);
  };
#endif
  auto handler = std::make_unique<gateway::Handler>(**store, handler_options);

  PrintingSink sink;
  for (const std::string& path : args.GetAll("load")) {
    std::fprintf(stderr, "kakehashi serve: loading %s ...\n", path.c_str());
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
  std::printf("kakehashi serve: %s (%s), %d io threads\n", handler_options.base_url.c_str(),
              (*store)->Backend().data(), threads);
  std::printf("  try: curl %s/metadata\n", handler_options.base_url.c_str());
  std::printf("       curl '%s/Patient?_count=5'\n", handler_options.base_url.c_str());
  std::printf("  Ctrl-C stops.\n");
  std::fflush(stdout);
  server.Run(*handler);
  std::fprintf(stderr, "kakehashi serve: stopped\n");
  return sink.errors > 0 ? kExitInputErrors : kExitOk;
}

}  // namespace kakehashi::app
