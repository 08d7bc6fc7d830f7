// bench_gateway_tx DB BUNDLE [N] [THREADS] [novalidate] [textvalidate] [group[=K]]
//
// The transaction write path without HTTP: posts the transaction Bundle in file BUNDLE N times
// (default 200) through gateway::Handler on THREADS threads (default 2, as `serve` has one io
// thread per core) against the SQLite database DB (written to: pass a copy; a postgresql:// URL
// runs it on PostgreSQL instead, e.g. the commit outcome A/B of decision 0023), with every resource
// validated by conformance/ as `kakehashi serve` does. Prints transactions/s, resources/s and the
// process CPU time (user + sys, checkpoint thread included) per transaction: the figure for A/B
// comparisons on a shared machine (docs/performance.md, "Gateway"). `novalidate` leaves the
// validator out (an A/B of the store and handler alone, independent of conformance/ changes);
// `textvalidate` validates through the text hook (HandlerOptions::validator: every resource
// parsed again from its JSON) instead of the tree hook `serve` uses (decision 0052).
// `group` sends the Bundles through the server's group commit instead (commit_queue.hpp): the
// THREADS threads prepare them (Handler::PrepareRequest) and queue them, with at most K (default
// 50, wrk's connections) in flight, and one commit thread applies what is queued in one
// transaction per group; the group count and mean size are printed. `nopipeline` (PostgreSQL):
// one round trip per statement (StoreOptions::postgres_pipeline false, decision 0028).
// bench/bench_gateway_pg.sh runs the PostgreSQL settings side by side.
// bench/bench_gateway.sh measures the same Bundle over HTTP with wrk.
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/commit_queue.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kakehashi;
  if (argc < 3) {
    std::fprintf(
        stderr,
        "usage: bench_gateway_tx DB BUNDLE [N] [THREADS] [novalidate] [textvalidate] [nopipeline] "
        "[group[=K]]\n");
    return 2;
  }
  const std::string db = argv[1];
  const int n = argc > 3 ? std::atoi(argv[3]) : 200;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  bool validate = true;
  bool text_validate = false;  // the text hook (the handler's JSON re-parsed), as before 0052
  gateway::store::StoreOptions store_options;
  int group = 0;  // requests in flight through the commit queue; 0: Handler::Handle
  for (int i = 5; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "novalidate") {
      validate = false;
    } else if (a == "textvalidate") {
      text_validate = true;
    } else if (a == "nopipeline") {
      store_options.postgres_pipeline = false;
    } else if (a == "group") {
      group = 50;
    } else if (a.starts_with("group=")) {
      group = std::atoi(argv[i] + 6);
    } else {
      std::fprintf(stderr, "bench_gateway_tx: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string body = buffer.str();
  if (body.empty() || n <= 0 || threads <= 0) {
    std::fprintf(stderr, "bench_gateway_tx: empty Bundle or bad N/THREADS\n");
    return 2;
  }
  auto store = gateway::store::OpenStore(
      db.starts_with("postgresql://") || db.starts_with("postgres://") ? db : "sqlite:" + db,
      store_options);
  if (!store) {
    std::fprintf(stderr, "bench_gateway_tx: cannot open %s\n", db.c_str());
    return 2;
  }
  gateway::HandlerOptions options;
  conformance::ValidatorOptions validator_options;
  validator_options.check_references = false;
  auto validator = std::make_shared<conformance::Validator>(validator_options);
  if (validate && text_validate) {
    options.validator = [validator](std::string_view json, IssueSink& issues) {
      auto node = fhir::ParseJson(json);
      if (!node) {
        issues.Error("gateway.validate.unreadable", {}, "the resource could not be re-read");
        return;
      }
      validator->Validate(*node, issues);
    };
  } else if (validate) {
    options.node_validator = [validator](const fhir::Node& resource, IssueSink& issues) {
      validator->Validate(resource, issues);
    };
  }
  gateway::Handler handler(**store, options);
  gateway::Request request;
  request.method = "POST";
  request.target = "/fhir";
  request.headers = {{"Content-Type", "application/fhir+json"}};
  request.body = body;
  // Resources per Bundle, counted from the first answer.
  auto first = handler.Handle(request);
  if (first.status != 200) {
    std::fprintf(stderr, "bench_gateway_tx: status %d: %s\n", first.status, first.body.c_str());
    return 1;
  }
  std::size_t resources = 0;
  for (std::size_t at = 0; (at = first.body.find("\"response\":", at)) != std::string::npos; ++at) {
    ++resources;
  }
  std::atomic<int> next{1};
  std::atomic<int> failed{0};
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  // Group commit: a finished job is handed back to the preparing threads, which render its
  // response (as the io threads do) before they prepare the next Bundle. A thread with K jobs
  // in flight sleeps until one finishes (as an io thread waits in epoll; a spinning wait here
  // took the cores the commit thread and a PostgreSQL server need).
  struct Job final : gateway::CommitJob {
    Job(std::unique_ptr<gateway::PreparedRequest> r, std::mutex& m, std::condition_variable& c,
        std::vector<std::shared_ptr<Job>>& done)
        : CommitJob(std::move(r)), mutex(m), cv(c), finished(done) {}
    std::mutex& mutex;
    std::condition_variable& cv;
    std::vector<std::shared_ptr<Job>>& finished;
    std::shared_ptr<Job> self;  // kept until Done
    void Done() noexcept override {
      {
        std::lock_guard lock(mutex);
        finished.push_back(std::move(self));
      }
      cv.notify_all();
    }
  };
  std::mutex finished_mutex;
  std::condition_variable finished_cv;
  std::vector<std::shared_ptr<Job>> finished;
  int in_flight = 0;  // under finished_mutex
  std::unique_ptr<gateway::CommitQueue> queue;
  if (group > 0) {
    queue = std::make_unique<gateway::CommitQueue>(handler);
    queue->Start();
  }
  // Renders the finished jobs; with `wait`, first sleeps while K jobs are in flight and none
  // has finished.
  auto render_finished = [&](bool wait) {
    std::vector<std::shared_ptr<Job>> mine;
    {
      std::unique_lock lock(finished_mutex);
      if (wait) finished_cv.wait(lock, [&] { return !finished.empty() || in_flight < group; });
      mine.swap(finished);
      in_flight -= static_cast<int>(mine.size());
    }
    for (auto& j : mine) {
      if (j->Request().Finish(j->Lost()).status != 200) failed.fetch_add(1);
    }
  };
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (next.fetch_add(1) < n) {
        if (!queue) {
          if (handler.Handle(request).status != 200) failed.fetch_add(1);
          continue;
        }
        auto split = handler.PrepareRequest(request);
        auto* prepared = std::get_if<std::unique_ptr<gateway::PreparedRequest>>(&split);
        if (prepared == nullptr) {
          failed.fetch_add(1);
          continue;
        }
        while (true) {
          render_finished(true);
          std::lock_guard lock(finished_mutex);
          if (in_flight < group) {
            ++in_flight;
            break;
          }
        }
        auto job =
            std::make_shared<Job>(std::move(*prepared), finished_mutex, finished_cv, finished);
        job->self = job;
        if (!queue->Submit(job)) {
          failed.fetch_add(1);
          job->self.reset();
          std::lock_guard lock(finished_mutex);
          --in_flight;
        }
        render_finished(false);
      }
    });
  }
  for (auto& t : pool) t.join();
  if (queue) {
    queue->Stop();
    render_finished(false);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  const int done = n - 1;
  std::printf(
      "bench_gateway_tx: %d transactions of %zu resources, %d threads%s: %.1f tx/s, %.0f "
      "resources/s, CPU %.2f ms per transaction (wall %.2f s, %d failed)\n",
      done, resources, threads, validate ? "" : ", no validator", done / wall,
      done * static_cast<double>(resources) / wall, cpu * 1000 / done, wall, failed.load());
  if (queue) {
    const auto stats = queue->Stats();
    std::printf(
        "bench_gateway_tx: group commit, %d in flight: %llu groups, %.1f Bundles per group "
        "(largest %llu)\n",
        group, static_cast<unsigned long long>(stats.groups),
        stats.groups > 0 ? static_cast<double>(stats.requests) / stats.groups : 0.0,
        static_cast<unsigned long long>(stats.largest));
  }
  // BENCH_KEEP_WAL: leave without closing the store, so its WAL (the frames of the last
  // commits) stays on disk for inspection.
  if (std::getenv("BENCH_KEEP_WAL") != nullptr) std::_Exit(failed.load() == 0 ? 0 : 1);
  return failed.load() == 0 ? 0 : 1;
}
