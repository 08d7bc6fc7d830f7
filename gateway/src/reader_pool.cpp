#include "reader_pool.hpp"

#include <boost/asio/post.hpp>

namespace kakehashi::gateway::detail {

namespace asio = boost::asio;

namespace {

// One io thread's share of a reader's finished jobs, resumed in completion order. Jobs left
// when a resumption throws are posted again (the exception still leaves io_context::run, as a
// single resumption's would); a batch destroyed unrun (its io_context stopped) destroys them,
// and with them their waiting coroutines.
struct ResumeBatch {
  std::vector<std::unique_ptr<ReaderJob>> jobs;
  void operator()() {
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      try {
        jobs[i]->Resume(std::move(jobs[i]));
      } catch (...) {
        if (i + 1 < jobs.size()) {
          ResumeBatch rest;
          for (std::size_t j = i + 1; j < jobs.size(); ++j) rest.jobs.push_back(std::move(jobs[j]));
          asio::any_io_executor home = rest.jobs.front()->home();
          asio::post(home, std::move(rest));
        }
        throw;
      }
    }
  }
};

}  // namespace

ReaderPool::ReaderPool(int threads) : size_(threads) {}

ReaderPool::~ReaderPool() {
  Stop();
}

void ReaderPool::Start() {
  for (int i = 0; i < size_; ++i) threads_.emplace_back([this] { Loop(); });
}

void ReaderPool::Post(std::unique_ptr<ReaderJob> job) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    // Readers awake and about to look at the queue take the first jobs; wake one more only
    // for a job beyond them.
    const auto ready = static_cast<std::size_t>(signalled_);
    if (sleeping_ > signalled_ && jobs_.size() > ready) {
      ++signalled_;
      wake = true;
    }
  }
  if (wake) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    ready_.notify_one();
  }
}

void ReaderPool::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

ReaderPool::Stats ReaderPool::stats() const {
  Stats s;
  s.jobs = jobs_run_.load(std::memory_order_relaxed);
  s.wakeups = wakeups_.load(std::memory_order_relaxed);
  s.resume_posts = resume_posts_.load(std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  s.sleeping = sleeping_;
  return s;
}

void ReaderPool::Flush(std::vector<std::unique_ptr<ReaderJob>>& done) {
  // Usually all for one or two io threads: a batch per distinct home, in completion order.
  if (done.size() == 1) {
    asio::any_io_executor home = done.front()->home();
    ResumeBatch batch;
    batch.jobs = std::move(done);
    resume_posts_.fetch_add(1, std::memory_order_relaxed);
    asio::post(home, std::move(batch));
    done.clear();
    done.reserve(kMaxBatch);
    return;
  }
  std::size_t left = done.size();
  std::size_t first = 0;
  while (left > 0) {
    while (!done[first]) ++first;
    ResumeBatch batch;
    asio::any_io_executor home = done[first]->home();
    for (std::size_t i = first; i < done.size(); ++i) {
      if (done[i] && done[i]->home() == home) {
        batch.jobs.push_back(std::move(done[i]));
        --left;
      }
    }
    resume_posts_.fetch_add(1, std::memory_order_relaxed);
    asio::post(home, std::move(batch));
  }
  done.clear();
}

void ReaderPool::Loop() {
  std::vector<std::unique_ptr<ReaderJob>> done;  // run, resumption not yet posted
  done.reserve(kMaxBatch);
  std::unique_lock lock(mutex_);
  while (true) {
    if (jobs_.empty()) {
      if (!done.empty()) {  // the queue is drained: resume the batch before waiting
        lock.unlock();
        Flush(done);
        lock.lock();
        continue;
      }
      if (stopping_) return;  // everything queued has run
      // One wait, then the loop looks again: a signalled reader that finds the queue empty
      // (another reader took the job) must count itself back as unsignalled, or Post would
      // take it for a reader on its way and wake nobody for the next job.
      ++sleeping_;
      ready_.wait(lock);
      --sleeping_;
      if (signalled_ > 0) --signalled_;
      continue;
    }
    std::unique_ptr<ReaderJob> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    // A job that may take long must not hold back answers already done.
    if (!job->brief() && !done.empty()) Flush(done);
    job->Run();
    jobs_run_.fetch_add(1, std::memory_order_relaxed);
    done.push_back(std::move(job));
    if (done.size() >= kMaxBatch) Flush(done);
    lock.lock();
  }
}

}  // namespace kakehashi::gateway::detail
