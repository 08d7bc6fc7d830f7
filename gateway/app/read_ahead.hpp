// Reads units of work ahead of the threads that convert them (`kakehashi convert --io-threads`;
// docs/decisions/0018-convert-read-ahead.md). A serial producer names the units one at a time, in
// order (for a store: the next patient folder of the walk); `threads` I/O threads each take the
// next unit from it and read it (for a store: list the folders, open and read the files), so up
// to `threads` reads are waiting on the disk at once instead of one per converting worker; Take()
// hands the read units out strictly in production order. At most `depth` units are between
// Take() and the producer (named, being read or read and waiting), which bounds memory.
//
// Callbacks:
//   produce(item)  fills the next unit; false when there are no more. Called by one thread at a
//                  time (under the producer lock), so it may walk state that is not thread-safe.
//   read(item)     reads the unit; called concurrently on different units, never twice on one.
//                  false: the read failed, and failed(item) (optional) is called under the
//                  producer lock before the unit is handed out, e.g. to stop the walk. (convert
//                  keeps walking past an unreadable folder: its read() always returns true.)
// WithProducer(f) runs f under the producer lock (for changes to the producer's state from
// other threads).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace kakehashi::app {

template <class Item>
class ReadAhead {
 public:
  ReadAhead(std::size_t threads, std::size_t depth, std::function<bool(Item&)> produce,
            std::function<bool(Item&)> read, std::function<void(Item&)> failed = {})
      : depth_(depth < 1 ? 1 : depth),
        slots_(depth_),
        produce_(std::move(produce)),
        read_(std::move(read)),
        failed_(std::move(failed)) {
    if (threads < 1) threads = 1;
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  // Stops producing and joins the I/O threads (each finishes the unit it is reading); units not
  // taken are dropped.
  ~ReadAhead() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // The next unit in production order, once read; false when every unit has been taken.
  bool Take(Item& out) {
    std::unique_lock lock(mutex_);
    while (true) {
      auto& slot = slots_[taken_ % depth_];
      if (slot) {
        out = std::move(*slot);
        slot.reset();
        ++taken_;
        space_.notify_one();
        return true;
      }
      if (ended_ && taken_ == produced_) return false;
      ready_.wait(lock);
    }
  }

  template <class F>
  void WithProducer(F&& f) {
    std::lock_guard producer(producer_mutex_);
    f();
  }

 private:
  void Run() {
    while (true) {
      {
        // A place among the `depth` units, reserved before producing: production happens in
        // order under the producer lock, and no lock is held while waiting here.
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] { return stop_ || ended_ || reserved_ < taken_ + depth_; });
        if (stop_ || ended_) return;
        ++reserved_;
      }
      Item item;
      std::size_t seq = 0;
      {
        std::lock_guard producer(producer_mutex_);
        const bool more = !exhausted_ && produce_(item);
        std::lock_guard lock(mutex_);
        if (!more) {
          exhausted_ = true;
          ended_ = true;
          --reserved_;
          ready_.notify_all();
          space_.notify_all();
          return;
        }
        seq = produced_++;
      }
      if (!read_(item) && failed_) {
        std::lock_guard producer(producer_mutex_);
        failed_(item);
      }
      std::lock_guard lock(mutex_);
      slots_[seq % depth_] = std::move(item);  // free: seq < reserved_ <= taken_ + depth_
      if (seq == taken_) ready_.notify_all();
    }
  }

  const std::size_t depth_;
  std::vector<std::optional<Item>> slots_;  // unit n at n % depth_ once read
  std::function<bool(Item&)> produce_;
  std::function<bool(Item&)> read_;
  std::function<void(Item&)> failed_;
  std::mutex producer_mutex_;  // produce_, failed_, exhausted_
  bool exhausted_ = false;
  std::mutex mutex_;  // everything below
  std::condition_variable space_, ready_;
  std::size_t produced_ = 0;  // units named so far (unit numbers 0 .. produced_-1)
  std::size_t taken_ = 0;     // units handed out by Take()
  std::size_t reserved_ = 0;  // units produced, plus places held by threads about to produce
  bool ended_ = false;        // the producer has no more units
  bool stop_ = false;
  std::vector<std::thread> threads_;  // last: started once everything above is set up
};

}  // namespace kakehashi::app
