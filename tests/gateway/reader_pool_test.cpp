// The reader pool (reader_pool.hpp, decision 0029): jobs queued while a reader is busy are
// resumed with one post per io thread and cost no wake-up, a job that is not brief does not
// hold back finished answers, and many jobs from several io threads all complete on their own
// io thread. No timing: the tests wait on conditions only.
#include "reader_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace kakehashi::gateway::detail {
namespace {

namespace asio = boost::asio;

// Holds the reader thread that runs Wait() until Release().
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  void Wait() {
    std::unique_lock lock(mutex);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [this] { return released; });
  }
  void WaitEntered() {
    std::unique_lock lock(mutex);
    cv.wait(lock, [this] { return entered; });
  }
  void Release() {
    std::lock_guard lock(mutex);
    released = true;
    cv.notify_all();
  }
};

// Spawns a coroutine on `ioc` that runs `fn` on the pool and counts its resumption in `resumed`
// (right after the hand-off, in the handler that resumes it), storing the result in `out`.
template <class Fn>
void Spawn(asio::io_context& ioc, ReaderPool& pool, Fn fn, bool brief, int& out, int& resumed) {
  asio::co_spawn(
      ioc,
      [&pool, fn, brief, &out, &resumed]() mutable -> asio::awaitable<void> {
        auto r = co_await RunOnReader(pool, fn, brief);
        out = r ? *r : -1;
        ++resumed;
      },
      asio::detached);
}

void WaitFor(const ReaderPool& pool, std::uint64_t jobs, std::uint64_t posts) {
  while (pool.stats().jobs < jobs || pool.stats().resume_posts < posts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

TEST_CASE("reader pool: jobs queued behind a busy reader are resumed by one post",
          "[readers][reader_pool]") {
  ReaderPool pool(1);
  pool.Start();
  asio::io_context ioc(1);
  Gate gate;
  int resumed = 0;
  int held = 0;
  Spawn(
      ioc, pool,
      [&gate] {
        gate.Wait();
        return 7;
      },
      /*brief=*/false, held, resumed);
  ioc.poll();  // the coroutine starts and hands its job over
  gate.WaitEntered();
  constexpr int kMisses = 7;  // with the held job, one batch (a pool posting per job fails)
  static_assert(kMisses + 1 <= ReaderPool::kMaxBatch);
  std::vector<int> out(kMisses, 0);
  for (int i = 0; i < kMisses; ++i) {
    Spawn(
        ioc, pool, [i] { return i * i; }, /*brief=*/true, out[i], resumed);
  }
  ioc.poll();  // all queued while the only reader is held
  CHECK(resumed == 0);
  gate.Release();
  WaitFor(pool, 1 + kMisses, 1);
  // The reader ran the held job and the queued misses in one go, and posted their resumptions
  // as one handler: a single handler run resumes all the coroutines.
  CHECK(ioc.poll_one() == 1);
  CHECK(resumed == 1 + kMisses);
  CHECK(held == 7);
  for (int i = 0; i < kMisses; ++i) CHECK(out[i] == i * i);
  const auto s = pool.stats();
  CHECK(s.jobs == 1 + kMisses);
  CHECK(s.resume_posts == 1);
  CHECK(s.wakeups <= 1);  // the held job's, if the reader slept before it; none for the rest
  pool.Stop();
  ioc.run();  // the coroutines' own completions
}

TEST_CASE("reader pool: a job that is not brief does not hold back finished answers",
          "[readers][reader_pool]") {
  ReaderPool pool(1);
  pool.Start();
  asio::io_context ioc(1);
  Gate first;
  Gate search;
  int resumed = 0;
  int a = 0;
  int b = 0;
  int c = 0;
  Spawn(
      ioc, pool,
      [&first] {
        first.Wait();
        return 1;
      },
      false, a, resumed);
  ioc.poll();
  first.WaitEntered();
  Spawn(
      ioc, pool, [] { return 2; }, /*brief=*/true, b, resumed);
  Spawn(
      ioc, pool,
      [&search] {
        search.Wait();
        return 3;
      },
      /*brief=*/false, c, resumed);
  ioc.poll();
  first.Release();
  search.WaitEntered();  // the reader runs the "search": the two before it must be posted
  WaitFor(pool, 2, 1);
  while (resumed < 2) ioc.run_one();
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(c == 0);  // still held
  search.Release();
  while (resumed < 3) ioc.run_one();
  CHECK(c == 3);
  pool.Stop();
  ioc.run();
}

TEST_CASE("reader pool: a job for a sleeping pool wakes one reader", "[readers][reader_pool]") {
  ReaderPool pool(2);
  pool.Start();
  while (pool.stats().sleeping < 2) std::this_thread::yield();
  asio::io_context ioc(1);
  int resumed = 0;
  int out = 0;
  Spawn(
      ioc, pool, [] { return 6; }, true, out, resumed);
  while (resumed == 0) ioc.run_one();
  CHECK(out == 6);
  CHECK(pool.stats().wakeups == 1);
  CHECK(pool.stats().resume_posts == 1);
  pool.Stop();
  ioc.run();
}

TEST_CASE("reader pool: many jobs from several io threads all complete on their io thread",
          "[readers][reader_pool]") {
  constexpr int kIoThreads = 3;
  constexpr int kCoroutines = 60;
  constexpr int kJobsEach = 40;
  for (int readers : {1, 2}) {
    INFO(readers << " reader threads");
    ReaderPool pool(readers);
    pool.Start();
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int t = 0; t < kIoThreads; ++t) contexts.push_back(std::make_unique<asio::io_context>(1));
    std::atomic<int> wrong_thread{0};
    std::atomic<int> wrong_value{0};
    std::atomic<int> finished{0};
    for (int t = 0; t < kIoThreads; ++t) {
      for (int c = 0; c < kCoroutines; ++c) {
        asio::co_spawn(
            *contexts[t],
            [&, t, c]() -> asio::awaitable<void> {
              const auto io_thread = std::this_thread::get_id();
              for (int k = 0; k < kJobsEach; ++k) {
                auto fn = [&, io_thread] {
                  if (std::this_thread::get_id() == io_thread) ++wrong_thread;
                  return (t * kCoroutines + c) * kJobsEach + k;
                };
                auto r = co_await RunOnReader(pool, fn, /*brief=*/k % 3 != 0);
                if (std::this_thread::get_id() != io_thread) ++wrong_thread;
                if (!r || *r != (t * kCoroutines + c) * kJobsEach + k) ++wrong_value;
              }
              ++finished;
            },
            asio::detached);
      }
    }
    std::vector<std::thread> threads;
    for (auto& ctx : contexts) threads.emplace_back([&ioc = *ctx] { ioc.run(); });
    for (auto& t : threads) t.join();  // run() returns once every coroutine has finished
    CHECK(finished == kIoThreads * kCoroutines);
    CHECK(wrong_thread == 0);
    CHECK(wrong_value == 0);
    const auto s = pool.stats();
    CHECK(s.jobs == std::uint64_t{kIoThreads * kCoroutines * kJobsEach});
    CHECK(s.resume_posts <= s.jobs);
    pool.Stop();
  }
}

TEST_CASE("reader pool: Stop runs what is queued and posts its resumptions",
          "[readers][reader_pool]") {
  ReaderPool pool(2);
  asio::io_context ioc(1);
  int resumed = 0;
  std::vector<int> out(5, 0);
  for (int i = 0; i < 5; ++i) {
    Spawn(
        ioc, pool, [i] { return i + 100; }, i % 2 == 0, out[i], resumed);
  }
  ioc.poll();  // queued before any reader runs
  pool.Start();
  pool.Stop();
  CHECK(pool.stats().jobs == 5);
  ioc.run();
  CHECK(resumed == 5);
  for (int i = 0; i < 5; ++i) CHECK(out[i] == i + 100);
}

// A job of a test ReadBatch: its value is what the batch (or Run, alone) gives it.
class ValueJob : public ReaderJob {
 public:
  ValueJob(asio::any_io_executor home, ReadBatch* batch, int key, int* out)
      : ReaderJob(std::move(home), /*brief=*/false, batch), key_(key), out_(out) {}
  void Run() noexcept override { *out_ = -key_; }  // run alone: the negated key
  int key() const { return key_; }
  void Set(int v) { *out_ = v; }

 private:
  int key_;
  int* out_;
};

// Finishes its jobs in two parts with a wait between them; records each call's keys and the
// pool's resumption posts seen after its Waiting().
struct TestBatch final : ReadBatch {
  ReaderPool* pool = nullptr;
  std::vector<std::vector<int>> calls;
  std::vector<std::uint64_t> posts_after_waiting;
  void Run(std::span<ReaderJob* const> jobs, BatchProgress& progress) noexcept override {
    std::vector<int> keys;
    for (ReaderJob* j : jobs) keys.push_back(static_cast<ValueJob*>(j)->key());
    calls.push_back(keys);
    const std::size_t half = jobs.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
      static_cast<ValueJob*>(jobs[i])->Set(keys[i] * 10);
      progress.Finished(i);
    }
    progress.Waiting();  // e.g. the next answers are not here yet
    posts_after_waiting.push_back(pool->stats().resume_posts);
    for (std::size_t i = half; i < jobs.size(); ++i) {
      static_cast<ValueJob*>(jobs[i])->Set(keys[i] * 10);
      progress.Finished(i);
    }
  }
};

void SpawnValue(asio::io_context& ioc, ReaderPool& pool, ReadBatch* batch, int key, int& out,
                int& resumed) {
  asio::co_spawn(
      ioc,
      [&pool, batch, key, &out, &resumed]() -> asio::awaitable<void> {
        co_await RunJobOnReader<ValueJob>(pool, batch, key, &out);
        ++resumed;
      },
      asio::detached);
}

TEST_CASE("reader pool: queued jobs of one ReadBatch run together, answers posted before a wait",
          "[readers][reader_pool]") {
  // Decision 0040: the jobs of one batch queued right behind each other are given to one
  // ReadBatch::Run (at most kMaxReadBatch); what it finished is posted when it says it waits;
  // a job of another kind, or one alone, runs by itself.
  ReaderPool pool(1);
  pool.Start();
  asio::io_context ioc(1);
  TestBatch batch;
  batch.pool = &pool;
  TestBatch other;
  other.pool = &pool;
  Gate gate;
  int resumed = 0;
  int held = 0;
  Spawn(
      ioc, pool,
      [&gate] {
        gate.Wait();
        return 1;
      },
      /*brief=*/false, held, resumed);
  ioc.poll();
  gate.WaitEntered();
  // Queued while the only reader is held: 4 of `batch`, 1 of `other`, 1 plain, 20 of `batch`
  // (16 and 4), then 1 of `other` again.
  std::vector<int> out(4 + 1 + 1 + 20 + 1, 0);
  for (int k = 0; k < 4; ++k) SpawnValue(ioc, pool, &batch, k + 1, out[k], resumed);
  SpawnValue(ioc, pool, &other, 50, out[4], resumed);
  Spawn(
      ioc, pool, [] { return 60; }, /*brief=*/false, out[5], resumed);
  for (int k = 0; k < 20; ++k) SpawnValue(ioc, pool, &batch, 100 + k, out[6 + k], resumed);
  ioc.poll();
  SpawnValue(ioc, pool, &other, 70, out[26], resumed);
  ioc.poll();
  CHECK(resumed == 0);
  gate.Release();
  while (resumed < 1 + static_cast<int>(out.size())) ioc.run_one();
  REQUIRE(batch.calls.size() == 3);
  CHECK(batch.calls[0] == std::vector<int>{1, 2, 3, 4});
  CHECK(batch.calls[1].size() == ReaderPool::kMaxReadBatch);
  CHECK(batch.calls[1].front() == 100);
  CHECK(batch.calls[1].back() == 115);
  CHECK(batch.calls[2] == std::vector<int>{116, 117, 118, 119});
  CHECK(other.calls.empty());  // its two jobs were never queued next to each other
  for (int k = 0; k < 4; ++k) CHECK(out[k] == (k + 1) * 10);
  CHECK(out[4] == -50);  // alone: Run
  CHECK(out[5] == 60);
  for (int k = 0; k < 20; ++k) CHECK(out[6 + k] == (100 + k) * 10);
  CHECK(out[26] == -70);
  // Before each batch's first wait, the answers done before it and its first half were posted.
  REQUIRE(batch.posts_after_waiting.size() == 3);
  CHECK(batch.posts_after_waiting[0] >= 1);
  CHECK(batch.posts_after_waiting[1] > batch.posts_after_waiting[0]);
  CHECK(batch.posts_after_waiting[2] > batch.posts_after_waiting[1]);
  const auto s = pool.stats();
  CHECK(s.jobs == 1 + out.size());
  CHECK(s.read_batches == 3);
  pool.Stop();
  ioc.run();
}

}  // namespace
}  // namespace kakehashi::gateway::detail
