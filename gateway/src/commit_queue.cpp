// The commit thread of group commit (commit_queue.hpp).
#include "kakehashi/gateway/commit_queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <vector>

namespace kakehashi::gateway {

namespace {

// The savepoint of one request inside a group (a batch Bundle nests its entries' inside).
constexpr std::string_view kRequestSavepoint = "group_request";

ErrorCode Thrown() {
  return make_error_code(store::errc::kQueryFailed);
}

}  // namespace

CommitJob::CommitJob(std::unique_ptr<PreparedRequest> request) : request_(std::move(request)) {}
CommitJob::~CommitJob() = default;

CommitQueue::CommitQueue(const Handler& handler, CommitQueueOptions options)
    : handler_(handler), options_(options) {
  options_.max_group = std::max<std::size_t>(1, options_.max_group);
  options_.max_queued = std::max<std::size_t>(1, options_.max_queued);
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

// One transaction for the group. A request's Apply runs in its savepoint; its failure (its own
// Finish answers it) or the failed release of its savepoint (a conflict of its queued rows:
// Lost) rolls back to that savepoint only. When the transaction itself is lost (Begin, a
// savepoint statement or the commit fails), every request not yet failed on its own is Lost.
void CommitQueue::RunGroup(std::vector<std::shared_ptr<CommitJob>>& group) {
  auto lose_all = [&](const ErrorCode& ec) {
    for (auto& job : group) {
      if (!job->lost_) job->lost_ = ec;
    }
  };
  auto session = handler_.OpenSession();
  if (!session) return lose_all(session.error());
  store::Session& s = **session;
  if (auto b = s.Begin(); !b) return lose_all(b.error());
  auto apply = [&](CommitJob& job) {
    try {
      return job.request_->Apply(s);
    } catch (const std::exception&) {
      job.lost_ = Thrown();  // a bug or bad_alloc: this request is undone, the server goes on
      return false;
    }
  };
  if (group.size() == 1) {  // as Handler::Handle: no savepoint needed
    CommitJob& job = *group[0];
    if (!apply(job)) {
      s.Rollback();
      return;
    }
    if (auto c = s.Commit(); !c) job.lost_ = c.error();
    return;
  }
  std::vector<CommitJob*> applied;
  applied.reserve(group.size());
  std::optional<ErrorCode> broken;
  for (auto& job : group) {
    if (auto sp = s.Savepoint(kRequestSavepoint); !sp) {
      broken = sp.error();
      break;
    }
    if (apply(*job)) {
      auto released = s.ReleaseSavepoint(kRequestSavepoint);
      if (released) {
        applied.push_back(job.get());
        continue;
      }
      job->lost_ = released.error();
    }
    if (auto r = s.RollbackToSavepoint(kRequestSavepoint); !r) {
      broken = r.error();
      break;
    }
  }
  if (broken) {
    s.Rollback();
    return lose_all(*broken);
  }
  if (applied.empty()) {
    s.Rollback();
    return;
  }
  if (auto c = s.Commit(); !c) {
    for (CommitJob* job : applied) job->lost_ = c.error();
  }
}

}  // namespace kakehashi::gateway
