// BackgroundReindex (background_reindex.hpp, decision 0055).
#include "kakehashi/gateway/store/background_reindex.hpp"

#include "kakehashi/gateway/store/forwarding_session.hpp"

#include <algorithm>
#include <utility>

namespace kakehashi::gateway::store {

namespace {

// A session whose searches fail with errc::kIndexing while `running` is set; every other call
// goes to the backend's session.
class GatedSession final : public ForwardingSession {
 public:
  GatedSession(std::unique_ptr<Session> inner, const std::atomic<bool>& running)
      : ForwardingSession(std::move(inner)), running_(running) {}

  Result<std::vector<ResourceRow>> Search(const SearchQuery& query) override {
    if (Refused()) return make_error_code(errc::kIndexing);
    return Inner().Search(query);
  }
  Result<std::int64_t> Count(const SearchQuery& query) override {
    if (Refused()) return make_error_code(errc::kIndexing);
    return Inner().Count(query);
  }
  Result<std::vector<ResourceRow>> Referenced(const ReferencedQuery& query) override {
    if (Refused()) return make_error_code(errc::kIndexing);
    return Inner().Referenced(query);
  }
  Result<std::int64_t> CountReferenced(const ReferencedQuery& query) override {
    if (Refused()) return make_error_code(errc::kIndexing);
    return Inner().CountReferenced(query);
  }

 private:
  bool Refused() const { return running_.load(std::memory_order_acquire); }
  const std::atomic<bool>& running_;
};

// The backend's store with GatedSession sessions; reads by id pass through unchanged.
class GatedStore final : public Store {
 public:
  GatedStore(Store& inner, const std::atomic<bool>& running) : inner_(inner), running_(running) {}
  Result<std::unique_ptr<Session>> OpenSession() override {
    KAKEHASHI_TRY(auto session, inner_.OpenSession());
    return std::unique_ptr<Session>(std::make_unique<GatedSession>(std::move(session), running_));
  }
  std::string_view Backend() const override { return inner_.Backend(); }
  Result<std::optional<ResourceRow>> ReadCurrent(std::string_view type, std::string_view id,
                                                 const std::optional<DbState>& seen) override {
    return inner_.ReadCurrent(type, id, seen);
  }
  std::optional<ResourceRow> TryReadCurrent(std::string_view type, std::string_view id,
                                            const DbState& seen) override {
    return inner_.TryReadCurrent(type, id, seen);
  }
  bool ReadsInProcess() const override { return inner_.ReadsInProcess(); }
  void ReadCurrentMany(std::span<const ReadKey> keys, ReadSink& sink) override {
    inner_.ReadCurrentMany(keys, sink);
  }

 private:
  Store& inner_;
  const std::atomic<bool>& running_;
};

}  // namespace

Result<std::unique_ptr<BackgroundReindex>> BackgroundReindex::Start(store::Store& store,
                                                                    IndexDefinition def,
                                                                    ReindexOptions options) {
  std::unique_ptr<BackgroundReindex> bg(new BackgroundReindex());
  bg->gated_ = std::make_unique<GatedStore>(store, bg->running_);
  // The first step here: an up-to-date store (every start but the first after an upgrade)
  // is known before anything is served, so its searches are never refused.
  KAKEHASHI_TRY(auto session, store.OpenSession());
  ReindexRequest request;
  request.limit = std::max<std::size_t>(1, options.batch);
  request.restart = options.restart;
  request.count = true;
  request.workers = 0;
  KAKEHASHI_TRY(auto first, ReindexStepRetrying(*session, def, request));
  session.reset();
  if (first.done) {
    bg->outcome_.emplace(ReindexReport{});
    return bg;
  }
  bg->running_.store(true, std::memory_order_release);
  bg->first_ = first;
  bg->done_.store(first.resources);
  bg->total_.store(first.resources + std::max<std::int64_t>(0, first.remaining));
  options.restart = false;  // the first step began it; the rest continues from its progress
  bg->thread_ = std::thread(
      [raw = bg.get(), &store, def = std::move(def), options = std::move(options)]() mutable {
        raw->Run(store, std::move(def), std::move(options));
      });
  return bg;
}

void BackgroundReindex::Run(store::Store& store, IndexDefinition def, ReindexOptions options) {
  const std::int64_t before = done_.load();
  auto progress = std::move(options.progress);
  options.stop = [this] { return stop_.load(); };
  options.progress = [this, before, &progress](std::int64_t done, std::int64_t total) {
    done_.store(before + done);
    total_.store(before + total);
    if (progress) progress(before + done, before + total);
  };
  auto report = Reindex(store, def, options);
  if (report) {
    report->ran = true;
    report->resources += first_.resources;
    report->unreadable += first_.unreadable;
    report->changed += first_.changed;
  }
  {
    std::lock_guard lock(mutex_);
    outcome_.emplace(report);
  }
  if (stop_.load()) return;  // stopped early: searches stay refused until the end
  if (report) {
    running_.store(false, std::memory_order_release);
  } else {
    failed_.store(true);
  }
}

BackgroundReindex::Progress BackgroundReindex::Status() const {
  Progress p;
  p.running = running_.load(std::memory_order_acquire);
  p.failed = failed_.load();
  p.done = done_.load();
  p.total = total_.load();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (p.running && p.done > 0 && seconds > 0) {
    p.rate = static_cast<double>(p.done) / seconds;
    p.seconds_left = static_cast<double>(std::max<std::int64_t>(0, p.total - p.done)) / p.rate;
  }
  return p;
}

Result<ReindexReport> BackgroundReindex::Wait() {
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return outcome_ ? *outcome_ : Result<ReindexReport>(make_error_code(errc::kQueryFailed));
}

BackgroundReindex::~BackgroundReindex() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace kakehashi::gateway::store
