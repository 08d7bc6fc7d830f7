#include "reader_pool.hpp"

#include <boost/asio/post.hpp>

#include <functional>

namespace kakehashi::gateway::detail {

namespace asio = boost::asio;

namespace {

// One io thread's share of a reader's finished jobs (a chain through ReaderJob::next), resumed
// in completion order. Jobs left when a resumption throws are posted again (the exception
// still leaves io_context::run, as a single resumption's would); a batch destroyed unrun (its
// io_context stopped) destroys them, and with them their waiting coroutines.
struct ResumeBatch {
  std::unique_ptr<ReaderJob> head;
  void operator()() {
    while (head) {
      std::unique_ptr<ReaderJob> job = std::move(head);
      head = std::move(job->next);
      try {
        job->Resume(std::move(job));
      } catch (...) {
        if (head) {
          asio::any_io_executor home = head->home();
          asio::post(home, ResumeBatch{std::move(head)});
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
  s.read_batches = read_batches_.load(std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  s.sleeping = sleeping_;
  return s;
}

void ReaderPool::Flush(std::vector<std::unique_ptr<ReaderJob>>& done) {
  // Usually all for one or two io threads: a batch per distinct home, in completion order.
  std::size_t left = done.size();
  std::size_t first = 0;
  while (left > 0) {
    while (!done[first]) ++first;
    asio::any_io_executor home = done[first]->home();
    ResumeBatch batch{std::move(done[first])};
    --left;
    ReaderJob* tail = batch.head.get();
    for (std::size_t i = first + 1; i < done.size() && left > 0; ++i) {
      if (done[i] && done[i]->home() == home) {
        tail->next = std::move(done[i]);
        tail = tail->next.get();
        --left;
      }
    }
    resume_posts_.fetch_add(1, std::memory_order_relaxed);
    asio::post(home, std::move(batch));
  }
  done.clear();  // keeps its capacity
}

namespace {

// A reader's view of one ReadBatch::Run: finished jobs join the reader's `done` (posted when
// kMaxBatch are there, and whenever the runner is about to wait).
class Progress final : public BatchProgress {
 public:
  Progress(std::vector<std::unique_ptr<ReaderJob>>& batch,
           std::vector<std::unique_ptr<ReaderJob>>& done, const std::function<void()>& flush)
      : batch_(batch), done_(done), flush_(flush) {}
  void Finished(std::size_t i) override {
    if (i >= batch_.size() || !batch_[i]) return;  // not one of the batch, or told twice
    done_.push_back(std::move(batch_[i]));
    if (done_.size() >= ReaderPool::kMaxBatch) flush_();
  }
  void Waiting() override {
    if (!done_.empty()) flush_();
  }

 private:
  std::vector<std::unique_ptr<ReaderJob>>& batch_;
  std::vector<std::unique_ptr<ReaderJob>>& done_;
  const std::function<void()>& flush_;
};

}  // namespace

void ReaderPool::RunBatch(std::vector<std::unique_ptr<ReaderJob>>& batch,
                          std::vector<std::unique_ptr<ReaderJob>>& done) {
  std::vector<ReaderJob*> jobs;
  jobs.reserve(batch.size());
  for (const auto& job : batch) jobs.push_back(job.get());
  const std::function<void()> flush = [&] { Flush(done); };
  Progress progress(batch, done, flush);
  jobs.front()->batch()->Run(jobs, progress);
  read_batches_.fetch_add(1, std::memory_order_relaxed);
  jobs_run_.fetch_add(jobs.size(), std::memory_order_relaxed);
  // A job the runner did not report (a bug) is run alone rather than lost.
  for (auto& job : batch) {
    if (!job) continue;
    job->Run();
    done.push_back(std::move(job));
    if (done.size() >= kMaxBatch) Flush(done);
  }
  batch.clear();
}

void ReaderPool::Loop() {
  std::vector<std::unique_ptr<ReaderJob>> done;  // run, resumption not yet posted
  done.reserve(kMaxBatch);
  std::vector<std::unique_ptr<ReaderJob>> batch;  // jobs of one ReadBatch taken together
  batch.reserve(kMaxReadBatch);
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
    if (ReadBatch* kind = job->batch();
        kind != nullptr && !jobs_.empty() && jobs_.front()->batch() == kind) {
      // The jobs of the same batch queued right behind it run with it (decision 0040).
      batch.push_back(std::move(job));
      while (!jobs_.empty() && batch.size() < kMaxReadBatch && jobs_.front()->batch() == kind) {
        batch.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
    }
    lock.unlock();
    if (!batch.empty()) {
      // Not brief: the answers already done are posted before the batch waits for its first.
      if (!done.empty()) Flush(done);
      RunBatch(batch, done);
      if (done.size() >= kMaxBatch) Flush(done);
      lock.lock();
      continue;
    }
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
