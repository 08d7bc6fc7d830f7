// The commit thread of group commit (commit_queue.hpp).
#include "kakehashi/gateway/commit_queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <random>
#include <vector>

namespace kakehashi::gateway {

namespace {

// The savepoint of one request inside a group (a batch Bundle nests its entries' inside).
constexpr std::string_view kRequestSavepoint = "group_request";

ErrorCode Thrown() {
  return make_error_code(store::errc::kQueryFailed);
}

// Store errors worth another run: a concurrent writer won (deadlock, serialization failure,
// SQLite busy, a unique key), the connection broke, or no connection could be opened.
bool Transient(const ErrorCode& ec) {
  return ec == store::errc::kConflict || ec == store::errc::kUnavailable ||
         ec == store::errc::kOpenFailed || ec == store::errc::kDuplicateKey;
}

// Runs alone allowed for a request whose last run ended with `ec`. A unique key taken
// (errc::kDuplicateKey) gets one more run only (decision 0023): PostgreSQL reports it only
// once the transaction that wrote the key has committed, so the second run already reads that
// row and decides anew; a second violation means the key is taken for good.
int Attempts(const ErrorCode& ec) {
  return ec == store::errc::kDuplicateKey ? 2 : kCommitAttempts;
}

// Before run `attempt` + 1: about 2, 8, 32 ms (±50 %, so that two gateways that collided do not
// collide again in step). The commit thread waits; the io threads go on queueing.
void Backoff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int base = 2 << (2 * (attempt - 1));
  std::uniform_int_distribution<int> jitter(base / 2, base + base / 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
}

}  // namespace

CommitJob::CommitJob(std::unique_ptr<PreparedRequest> request) : request_(std::move(request)) {}
CommitJob::~CommitJob() = default;

CommitQueue::CommitQueue(const Handler& handler, CommitQueueOptions options)
    : handler_(handler), options_(options) {
  options_.max_group = std::max<std::size_t>(1, options_.max_group);
  options_.max_queued = std::max<std::size_t>(1, options_.max_queued);
  whole_group_first_ = options_.whole_group_first.value_or(handler_.ReadsInProcess());
}

CommitQueue::~CommitQueue() {
  Stop();
}

void CommitQueue::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kk-commit");  // for top -H, perf, /proc/PID/task
    Loop();
  });
}

bool CommitQueue::Submit(std::shared_ptr<CommitJob> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void CommitQueue::Stop() {
  bool started = false;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    started = thread_.joinable();
  }
  cv_.notify_all();
  if (started) {
    thread_.join();
  } else {
    Loop();  // drains what was queued without a thread (returns at once when empty)
  }
}

CommitQueue::Counters CommitQueue::Stats() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void CommitQueue::Loop() {
  std::vector<std::shared_ptr<CommitJob>> group;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything is done
      // What is queued now forms the group (no waiting for more: while a group commits, the
      // io threads prepare the next one).
      std::size_t weight = 0;
      while (!queue_.empty() && group.size() < options_.max_group) {
        const std::size_t w = queue_.front()->request_->Weight();
        if (!group.empty() && weight + w > options_.max_group_weight) break;
        weight += w;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ++counters_.groups;
      counters_.requests += group.size();
      counters_.largest = std::max<std::uint64_t>(counters_.largest, group.size());
    }
    RunGroup(group);
    for (auto& job : group) job->Done();
    group.clear();
  }
}

// A group: one transaction, each request in a savepoint (TryGroup). When the transaction cannot
// start, the whole group is tried again (nothing of it was applied; the failure is nobody's);
// requests set aside by TryGroup, or all of them when its transaction was lost, then run alone
// in queue order.
void CommitQueue::RunGroup(std::vector<std::shared_ptr<CommitJob>>& group) {
  if (group.size() == 1) return RunAlone(*group[0]);
  if (whole_group_first_) {
    if (savepoint_groups_ > 0) {
      --savepoint_groups_;
    } else {
      if (TryWholeGroup(group)) return;
      savepoint_groups_ = kSavepointGroupsAfterMiss;
    }
  }
  std::vector<CommitJob*> again;
  GroupEnd end = GroupEnd::kDone;
  for (int attempt = 1;; ++attempt) {
    ErrorCode error;
    again.clear();
    end = TryGroup(group, again, error);
    if (end != GroupEnd::kNotStarted) break;
    if (!Transient(error) || attempt == kCommitAttempts) {
      for (auto& job : group) job->lost_ = error;
      return;
    }
    Backoff(attempt);
  }
  if (end == GroupEnd::kLost) {
    again.clear();
    for (auto& job : group) {
      if (!job->thrown_) again.push_back(job.get());
    }
  }
  for (CommitJob* job : again) {
    CountRetry();
    RunAlone(*job);
  }
}

// The group in one transaction without savepoints (decision 0053): each savepoint copies every
// page its request changes that existed before it into the statement journal and ends the
// queued multi-row INSERTs early (FlushPending), ~6 % of the commit thread on SQLite. True: the
// group is done (committed, or its commit's outcome unknown: never run again). False: nothing
// of it was applied (rolled back, or not begun); RunGroup runs it again with savepoints.
bool CommitQueue::TryWholeGroup(std::vector<std::shared_ptr<CommitJob>>& group) {
  auto session = handler_.OpenSession();
  if (!session) return false;
  store::Session& s = **session;
  if (!s.Begin()) return false;
  for (std::size_t i = 0; i < group.size(); ++i) {
    CommitJob& job = *group[i];
    const bool ok = Apply(job, s);
    if (options_.after_apply) options_.after_apply(i);
    if (!ok || job.thrown_ || job.request_->StoreError() != nullptr) {
      s.Rollback();
      job.thrown_ = false;  // its run with savepoints decides
      std::lock_guard lock(mutex_);
      ++counters_.reruns;
      return false;
    }
  }
  if (auto c = s.Commit(); !c) {
    if (c.error() != store::errc::kCommitUnknown) {
      s.Rollback();
      std::lock_guard lock(mutex_);
      ++counters_.reruns;
      return false;
    }
    for (auto& job : group) job->lost_ = c.error();  // maybe committed: never run again
  }
  std::lock_guard lock(mutex_);
  ++counters_.whole;
  return true;
}

// Applies a job, turning an exception into a 500 for it alone.
bool CommitQueue::Apply(CommitJob& job, store::Session& session) {
  job.lost_.reset();
  try {
    return job.request_->Apply(session);
  } catch (const std::exception&) {
    job.lost_ = Thrown();  // a bug or bad_alloc: this request is undone, the server goes on
    job.thrown_ = true;
    return false;
  }
}

// One transaction for the group. A request's Apply runs in its savepoint. When it fails on its
// own terms (its Finish answers it) it is rolled back to that savepoint; when a store call of
// it failed, or the release of its savepoint did (a conflict of its queued rows), it is rolled
// back too and put in `again`. kLost: a savepoint statement or the commit failed, the whole
// transaction is rolled back. kNotStarted: no session or no Begin (`error`).
CommitQueue::GroupEnd CommitQueue::TryGroup(std::vector<std::shared_ptr<CommitJob>>& group,
                                            std::vector<CommitJob*>& again, ErrorCode& error) {
  auto session = handler_.OpenSession();
  if (!session) {
    error = session.error();
    return GroupEnd::kNotStarted;
  }
  store::Session& s = **session;
  if (auto b = s.Begin(); !b) {
    error = b.error();
    return GroupEnd::kNotStarted;
  }
  std::vector<CommitJob*> applied;
  applied.reserve(group.size());
  for (std::size_t i = 0; i < group.size(); ++i) {
    CommitJob& job = *group[i];
    if (auto sp = s.Savepoint(kRequestSavepoint); !sp) {
      s.Rollback();
      return GroupEnd::kLost;
    }
    const bool ok = Apply(job, s);
    const bool store_failed = !job.thrown_ && job.request_->StoreError() != nullptr;
    if (options_.after_apply) options_.after_apply(i);
    if (ok && !store_failed) {
      if (s.ReleaseSavepoint(kRequestSavepoint)) {
        applied.push_back(&job);
        continue;
      }
      again.push_back(&job);
    } else if (store_failed) {
      again.push_back(&job);
    }
    if (auto r = s.RollbackToSavepoint(kRequestSavepoint); !r) {
      s.Rollback();
      return GroupEnd::kLost;
    }
  }
  if (applied.empty()) {
    s.Rollback();
    return GroupEnd::kDone;
  }
  if (auto c = s.Commit(); !c) {
    if (c.error() != store::errc::kCommitUnknown) return GroupEnd::kLost;
    // Maybe committed: running the requests again could apply them twice.
    for (CommitJob* job : applied) job->lost_ = c.error();
  }
  return GroupEnd::kDone;
}

// A request in transactions of its own until its outcome is not a transient store error, at
// most kCommitAttempts runs, with a backoff between them.
void CommitQueue::RunAlone(CommitJob& job) {
  for (int attempt = 1;; ++attempt) {
    const auto error = TryAlone(job, attempt);
    if (!error || !Transient(*error) || attempt >= Attempts(*error)) return;
    CountRetry();
    Backoff(attempt);
  }
}

// One run alone (run `attempt`). Returns the store error that ended it (of its Apply, or of the
// transaction: then Lost() says it), nullopt when its outcome is its own. On the last run its
// error allows, a batch whose entries met transient store errors is committed as it is (those
// entries answer 409/503).
std::optional<ErrorCode> CommitQueue::TryAlone(CommitJob& job, int attempt) {
  job.lost_.reset();
  auto session = handler_.OpenSession();
  if (!session) {
    job.lost_ = session.error();
    return session.error();
  }
  store::Session& s = **session;
  if (auto b = s.Begin(); !b) {
    job.lost_ = b.error();
    return b.error();
  }
  const bool ok = Apply(job, s);
  if (options_.after_apply) options_.after_apply(0);
  if (job.thrown_) {
    s.Rollback();
    return std::nullopt;
  }
  const ErrorCode* failed = job.request_->StoreError();
  const bool last = failed != nullptr && attempt >= Attempts(*failed);
  if (!ok || (failed != nullptr && Transient(*failed) && !last)) {
    s.Rollback();
    if (failed != nullptr) return *failed;
    return std::nullopt;
  }
  if (auto c = s.Commit(); !c) {
    // kCommitUnknown is not transient: never run again. kUnavailable from a COMMIT whose
    // answer was lost is one the store found rolled back (decision 0023): run again.
    job.lost_ = c.error();
    return c.error();
  }
  return std::nullopt;
}

void CommitQueue::CountRetry() {
  std::lock_guard lock(mutex_);
  ++counters_.retries;
}

}  // namespace kakehashi::gateway
