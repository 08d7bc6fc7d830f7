// Serving while the search index is rebuilt (decision 0055): `kakehashi serve` listens at once
// and re-indexes (Reindex, decision 0037/0050) on a thread of its own. Until that re-index is
// done, the store it serves from (BackgroundReindex::Store) answers every search (Session::Search,
// Count, Referenced, CountReferenced: type and system searches, _has, chains, $everything,
// conditional creates, updates, deletes and references) with errc::kIndexing, which the handler
// turns into 503 + Retry-After; reads by id, vread, history and writes are served as usual (a
// write stores rows of the new definition; the re-index step that reaches it later finds them
// unchanged and rewrites nothing, decision 0050). Other gateways on the same database re-index
// with it (the steps continue each other's progress) and gate their own searches the same way.
#pragma once

#include "kakehashi/gateway/store/store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace kakehashi::gateway::store {

class BackgroundReindex {
 public:
  struct Progress {
    bool running = false;    // searches are refused until it is done
    bool failed = false;     // the re-index stopped on an error (searches stay refused)
    std::int64_t done = 0;   // resources re-indexed so far (by this process's steps)
    std::int64_t total = 0;  // to re-index (an estimate while running)
    // While running: resources per second since Start, and the seconds left at that rate
    // (-1: not known yet).
    double rate = 0;
    double seconds_left = -1;
  };

  // Runs the first re-index step of `store` (whose rows may be of another definition than
  // `def`) on the calling thread: when the rows are of `def` already, nothing else happens and
  // Store() answers searches at once. Otherwise the remaining steps run on a thread of its own
  // (Reindex with `options`; its progress callback is called too). `store` must outlive this.
  static Result<std::unique_ptr<BackgroundReindex>> Start(store::Store& store, IndexDefinition def,
                                                          ReindexOptions options = {});
  ~BackgroundReindex();  // stops the re-index after its current step (it resumes next time)
  BackgroundReindex(const BackgroundReindex&) = delete;
  BackgroundReindex& operator=(const BackgroundReindex&) = delete;

  // The store to serve from: `store` itself, with searches refused while the re-index runs.
  store::Store& Store() { return *gated_; }
  Progress Status() const;
  // Blocks until the re-index has finished; its outcome.
  Result<ReindexReport> Wait();

 private:
  BackgroundReindex() = default;
  void Run(store::Store& store, IndexDefinition def, ReindexOptions options);

  std::unique_ptr<store::Store> gated_;
  std::atomic<bool> running_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> done_{0};
  std::atomic<std::int64_t> total_{0};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  mutable std::mutex mutex_;
  std::optional<Result<ReindexReport>> outcome_;
  ReindexResult first_;  // the step Start ran
  std::thread thread_;
};

}  // namespace kakehashi::gateway::store
