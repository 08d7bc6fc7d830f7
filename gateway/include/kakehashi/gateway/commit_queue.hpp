// Group commit of write requests (docs/gateway.md "Write path"; decision 0015). The server
// prepares a write on its io thread (Handler::PrepareRequest: parse, checks, validation,
// serialisation, index rows; no store) and queues it here; one commit thread takes what is
// queued (up to a bound) and applies it in ONE store transaction, each request in a savepoint
// of its own, then commits once. A request that fails inside on its own terms (412, 422, a
// conditional create matching several) is rolled back to its savepoint alone and the others
// commit; a transaction Bundle stays atomic (it is one request). Jobs are completed after their
// transaction has ended, so no response announces a write that is not committed; durability is
// the store's (SQLite: WAL, synchronous=NORMAL). Requests are applied in the order they were
// queued.
//
// A group whose requests all succeed is first run without the savepoints (decision 0053): its
// transaction applies them one after the other and commits. Only when one of them fails (on
// its own terms, a store error, an exception) or the commit fails (not kCommitUnknown) is that
// transaction rolled back and the group run again as above, each request in its savepoint; the
// next groups then take the savepoints straight away for a while (kSavepointGroupsAfterMiss).
// On by default where the store's writers are serialised in this process (SQLite: one writer
// holds the write lock for the whole transaction, so a failure inside a group is the request's
// own, and rare); on PostgreSQL a cross-gateway conflict inside a group is ordinary, so it is
// off there unless CommitQueueOptions::whole_group_first says otherwise.
//
// Retries (decision 0016): a store error is never answered for a neighbour. A request whose own
// store call fails in a group (a deadlock, a key conflict, a lost connection: its
// PreparedRequest::StoreError) is rolled back to its savepoint and run again alone after the
// group; when the group's transaction itself is lost (a savepoint statement or the commit
// fails), it is rolled back and every request of it runs again alone, in queue order. A request
// run alone is retried up to kCommitAttempts times with a short backoff while its error is
// transient (errc::kConflict, kUnavailable, kOpenFailed; errc::kDuplicateKey twice only,
// decision 0023), then answered with its own last error (409, 503, 500). A run is repeated only
// after a rollback, so no request is applied twice; a commit whose outcome stays unknown
// (errc::kCommitUnknown: on PostgreSQL the store first asks the server, decision 0023) is not
// repeated.
//
// Groups form within one process only: on PostgreSQL several gateways on one database stay
// safe through the store's per-resource advisory locks, which a group holds until its commit; a
// deadlock between two groups fails one request of one group, which is then retried alone.
//
// Thread-safety: Submit, Stop and Counters from any thread; Done() runs on the commit thread.
#pragma once

#include "kakehashi/common/result.hpp"
#include "kakehashi/gateway/handler.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace kakehashi::gateway {

struct CommitQueueOptions {
  std::size_t max_queued = 1024;  // requests waiting; Submit refuses more (backpressure)
  std::size_t max_group = 64;     // requests per transaction
  // Resources per transaction (PreparedRequest::Weight); a heavier request goes alone.
  std::size_t max_group_weight = 4096;
  // Tests only: called on the commit thread after every Apply of a request, before its
  // savepoint is released or the next request is applied. `index`: the request's place in its
  // group; 0 for a request run alone (a group of one, or a retry after a store error).
  std::function<void(std::size_t index)> after_apply;
  // A group is first run whole, without savepoints (decision 0053); nullopt: when the store
  // serialises writers in this process (Handler::ReadsInProcess: SQLite).
  std::optional<bool> whole_group_first;
};

// Groups run with savepoints straight away after one that had to be run again with them.
inline constexpr int kSavepointGroupsAfterMiss = 16;

// Runs of one request alone (the first included) while its store error is transient.
inline constexpr int kCommitAttempts = 4;

// A queued request and its completion.
class CommitJob {
 public:
  explicit CommitJob(std::unique_ptr<PreparedRequest> request);
  virtual ~CommitJob();
  CommitJob(const CommitJob&) = delete;
  CommitJob& operator=(const CommitJob&) = delete;

  PreparedRequest& Request() { return *request_; }
  // After Done(): why the request's applied writes were not committed, for
  // PreparedRequest::Finish (nullptr: committed, or its Apply failed).
  const ErrorCode* Lost() const { return lost_ ? &*lost_ : nullptr; }
  // Called once on the commit thread when the job's transaction has ended. Must not block or
  // throw; the response is rendered by whoever waits (Request().Finish(Lost())).
  virtual void Done() noexcept = 0;

 private:
  friend class CommitQueue;
  std::unique_ptr<PreparedRequest> request_;
  std::optional<ErrorCode> lost_;
  bool thrown_ = false;  // its Apply threw (a bug, bad_alloc): answered 500, never run again
};

class CommitQueue {
 public:
  CommitQueue(const Handler& handler, CommitQueueOptions options = {});
  ~CommitQueue();  // Stop()
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Starts the commit thread. Jobs submitted before wait for it (tests use this to form a
  // known group).
  void Start();
  // Queues `job`. False: the queue is full or stopped; the job was not taken (Done is not called).
  bool Submit(std::shared_ptr<CommitJob> job);
  // Takes no more jobs, applies and completes every queued one, then joins the commit thread
  // (graceful shutdown). Without Start(), the queued jobs are applied on the calling thread.
  void Stop();

  struct Counters {
    std::uint64_t groups = 0;    // transactions run
    std::uint64_t requests = 0;  // requests applied
    std::uint64_t largest = 0;   // requests in the largest group
    std::uint64_t retries = 0;   // extra runs of a request alone after a store error
    std::uint64_t whole = 0;     // groups committed whole, without savepoints (decision 0053)
    std::uint64_t reruns = 0;    // groups run whole, rolled back and run again with savepoints
  };
  Counters Stats() const;

 private:
  enum class GroupEnd { kDone, kNotStarted, kLost };
  bool TryWholeGroup(std::vector<std::shared_ptr<CommitJob>>& group);
  void Loop();
  void RunGroup(std::vector<std::shared_ptr<CommitJob>>& group);
  GroupEnd TryGroup(std::vector<std::shared_ptr<CommitJob>>& group, std::vector<CommitJob*>& again,
                    ErrorCode& error);
  void RunAlone(CommitJob& job);
  std::optional<ErrorCode> TryAlone(CommitJob& job, int attempt);
  bool Apply(CommitJob& job, store::Session& session);
  void CountRetry();

  const Handler& handler_;
  CommitQueueOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<CommitJob>> queue_;
  bool stopping_ = false;
  Counters counters_;
  std::thread thread_;
  bool whole_group_first_ = false;
  int savepoint_groups_ = 0;  // groups left to run with savepoints straight away (commit thread)
};

}  // namespace kakehashi::gateway
