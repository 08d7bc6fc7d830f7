// The reader threads of the server (decision 0027; hand-offs made cheaper by decision 0029): an
// io thread's coroutine hands a store job (a read-cache miss, a search, ...) to a few threads
// and is resumed on its own io thread with the result, so no io thread waits for the store.
//
// Each job costs two cross-thread hand-offs, and on the 2-core VM of docs/performance.md the
// sleeping and waking on both sides (a futex wake-up of a reader, an epoll interrupt of the io
// thread) cost more than the queue. So:
// - a reader that wakes drains the queue before it sleeps;
// - Post wakes a sleeping reader only for a job beyond those the readers already woken (and
//   not yet back at the queue) will take: jobs queued while the readers are busy or on their
//   way cost no system call;
// - a reader collects the resumptions of the jobs it ran and posts them as one handler per io
//   thread when the queue is empty (one scheduler wake-up per batch instead of one per job). A
//   resumption waits at most for kMaxBatch - 1 brief jobs (reads by id on SQLite); before a job
//   that is not brief (a search may take long, a read on PostgreSQL waits for the server's
//   answer) the collected ones are posted first, so no answer waits behind it.
// - reads by id that wait for a database server (PostgreSQL) are not brief, but the ones queued
//   behind each other for one store are run as one batch (decision 0040): the store sends them
//   in one round trip (libpq pipeline) and the reader posts the answers that arrived together
//   before it waits for the next ones, so no answer waits for another read's round trip and
//   a batch costs a few resumption posts rather than one per read.
// A short spin before a reader sleeps was measured and left out: on the shared 2-core VM it
// saved wake-ups but not server CPU per request (docs/performance.md, "Cheaper read-cache
// misses").
//
// Thread-safety: Post and stats from any thread; Start and Stop from one thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace kakehashi::gateway::detail {

class ReaderJob;

// What ReadBatch::Run tells the reader pool while it runs a batch of jobs.
class BatchProgress {
 public:
  // jobs[i] of the batch is done (its Run is not called): its resumption may be posted, and
  // the runner must not touch the job again.
  virtual void Finished(std::size_t i) = 0;
  // The runner is about to wait (for a database server's answer): the finished jobs'
  // resumptions are posted now.
  virtual void Waiting() = 0;

 protected:
  ~BatchProgress() = default;
};

// Runs several queued jobs of one kind together (decision 0040: reads by id on one PostgreSQL
// store, one round trip for all). Its jobs are told apart from others by their batch().
class ReadBatch {
 public:
  virtual ~ReadBatch() = default;
  // `jobs` (2 or more, each with batch() == this, in queue order): calls progress.Finished(i)
  // once for each, and progress.Waiting() before it waits. Must not throw.
  virtual void Run(std::span<ReaderJob* const> jobs, BatchProgress& progress) noexcept = 0;
};

// A store job and the coroutine waiting for it. Run on a reader thread, then Resume on `home`
// (the coroutine's io thread).
class ReaderJob {
 public:
  ReaderJob(boost::asio::any_io_executor home, bool brief, ReadBatch* batch = nullptr)
      : home_(std::move(home)), brief_(brief), batch_(batch) {}
  virtual ~ReaderJob() = default;
  ReaderJob(const ReaderJob&) = delete;
  ReaderJob& operator=(const ReaderJob&) = delete;

  virtual void Run() noexcept = 0;
  // On the home executor; `self` is this job, destroyed before the coroutine runs on. A job
  // destroyed without Resume (its io_context stopped) destroys the waiting coroutine with it.
  virtual void Resume(std::unique_ptr<ReaderJob> self) = 0;

  const boost::asio::any_io_executor& home() const { return home_; }
  // Known to be short (one read by id from a store read in this process, SQLite): its
  // resumption may wait for the next jobs of the batch. A job that waits for a database server
  // (a read by id on PostgreSQL) is not brief (decision 0034).
  bool brief() const { return brief_; }
  // Non-null: a reader that takes this job also takes the jobs of the same batch() queued right
  // behind it (up to kMaxReadBatch in all) and runs them with batch()->Run (decision 0040).
  ReadBatch* batch() const { return batch_; }

  std::unique_ptr<ReaderJob> next;  // ReaderPool's chain of finished jobs for one io thread

 private:
  boost::asio::any_io_executor home_;
  bool brief_;
  ReadBatch* batch_;
};

class ReaderPool {
 public:
  // At most this many finished jobs wait for their resumption: the first waits for at most
  // kMaxBatch - 1 reads by id (~100 µs), against a p99 target of 5 ms.
  static constexpr std::size_t kMaxBatch = 8;
  // At most this many jobs of one ReadBatch run together (one pipeline of reads by id; its
  // answers are posted as they arrive, so the size costs no latency but a reader's share).
  static constexpr std::size_t kMaxReadBatch = 16;

  // Counts since construction, for tests and benchmarks.
  struct Stats {
    std::uint64_t jobs = 0;          // jobs run
    std::uint64_t wakeups = 0;       // sleeping readers woken by Post
    std::uint64_t resume_posts = 0;  // handlers posted to io threads (each resumes >= 1 job)
    std::uint64_t read_batches = 0;  // ReadBatch::Run calls (their jobs are counted in jobs)
    int sleeping = 0;                // readers asleep now
  };

  explicit ReaderPool(int threads);
  ~ReaderPool();
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  void Start();
  void Post(std::unique_ptr<ReaderJob> job);
  // Runs what is still queued, posts its resumptions, then joins the threads.
  void Stop();
  Stats stats() const;

 private:
  void Loop();
  // Posts `done`'s resumptions, one handler per home executor, and empties it.
  void Flush(std::vector<std::unique_ptr<ReaderJob>>& done);
  // Runs `batch` (the jobs of one ReadBatch) with ReadBatch::Run; finished jobs go to `done`.
  void RunBatch(std::vector<std::unique_ptr<ReaderJob>>& batch,
                std::vector<std::unique_ptr<ReaderJob>>& done);

  const int size_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<ReaderJob>> jobs_;  // guarded by mutex_
  bool stopping_ = false;                        // guarded by mutex_
  // Guarded by mutex_: readers asleep, and signalled (woken by Post, not yet back at the queue).
  int sleeping_ = 0;
  int signalled_ = 0;
  std::atomic<std::uint64_t> jobs_run_{0};
  std::atomic<std::uint64_t> wakeups_{0};
  std::atomic<std::uint64_t> resume_posts_{0};
  std::atomic<std::uint64_t> read_batches_{0};
  std::vector<std::thread> threads_;
};

template <class Fn, class Handler>
class FnReaderJob final : public ReaderJob {
 public:
  using Result = std::invoke_result_t<Fn&>;
  FnReaderJob(boost::asio::any_io_executor home, bool brief, Fn& fn, std::optional<Result>& result,
              Handler handler)
      : ReaderJob(std::move(home), brief), fn_(fn), result_(result), handler_(std::move(handler)) {}

  void Run() noexcept override {
    try {
      result_.emplace(fn_());
    } catch (const std::exception&) {
      // left empty: the caller answers 500
    }
  }
  void Resume(std::unique_ptr<ReaderJob> self) override {
    Handler h = std::move(handler_);
    self.reset();
    std::move(h)();
  }

 private:
  Fn& fn_;
  std::optional<Result>& result_;
  Handler handler_;
};

// A job of class Job (a ReaderJob constructed from (home, args...) that implements Run) which
// resumes a coroutine with `handler`.
template <class Job, class Handler>
class ResumingJob final : public Job {
 public:
  template <class... Args>
  ResumingJob(Handler handler, boost::asio::any_io_executor home, Args&&... args)
      : Job(std::move(home), std::forward<Args>(args)...), handler_(std::move(handler)) {}
  void Resume(std::unique_ptr<ReaderJob> self) override {
    Handler h = std::move(handler_);
    self.reset();
    std::move(h)();
  }

 private:
  Handler handler_;
};

// Runs a Job (see ResumingJob; what its arguments refer to must stay put while the caller
// waits) on a reader thread; the calling coroutine is resumed on its own executor (posted,
// never inline) once it has run, alone or in a batch.
template <class Job, class... Args>
auto RunJobOnReader(ReaderPool& pool, Args... args) -> boost::asio::awaitable<void> {
  co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [&](auto resume) {
        auto home = boost::asio::get_associated_executor(resume);
        pool.Post(std::make_unique<ResumingJob<Job, decltype(resume)>>(std::move(resume),
                                                                       std::move(home), args...));
      },
      boost::asio::use_awaitable);
}

// Runs `fn` on a reader thread; the calling coroutine is resumed on its own executor (posted,
// never inline) with fn's result, nullopt if it threw. `fn` is kept in this coroutine's frame,
// and what it refers to must stay put while the caller waits. `brief`: see ReaderJob::brief.
template <class Fn>
auto RunOnReader(ReaderPool& pool, Fn fn, bool brief)
    -> boost::asio::awaitable<std::optional<std::invoke_result_t<Fn&>>> {
  std::optional<std::invoke_result_t<Fn&>> result;
  co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [&](auto resume) {
        auto home = boost::asio::get_associated_executor(resume);
        pool.Post(std::make_unique<FnReaderJob<Fn, decltype(resume)>>(std::move(home), brief, fn,
                                                                      result, std::move(resume)));
      },
      boost::asio::use_awaitable);
  co_return result;
}

}  // namespace kakehashi::gateway::detail
