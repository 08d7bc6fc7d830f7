// A bounded, ordered hand-off between one producer, N workers and one consumer, used by the
// importer (importer.cpp; `kakehashi convert` has its own, whose workers claim units walked and
// read ahead by I/O threads, see cmd_convert.cpp and read_ahead.hpp): the producer numbers
// units, workers take them in any order, the consumer receives results strictly in number order
// (so the output does not depend on the number of workers). At most `capacity` units are between
// the producer and the consumer, which bounds memory.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

namespace kakehashi::app {

template <class Unit, class Done>
class OrderedPipeline {
 public:
  explicit OrderedPipeline(std::size_t capacity) : capacity_(capacity) {}

  // Producer. Blocks while `capacity` units are in flight; false when the pipeline was cancelled.
  bool Push(Unit unit) {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return in_flight_ < capacity_ || cancelled_; });
    if (cancelled_) return false;
    ++in_flight_;
    todo_.emplace_back(next_in_++, std::move(unit));
    work_.notify_one();
    return true;
  }
  // Producer: no more units.
  void Close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    work_.notify_all();
    done_cv_.notify_all();
  }
  // Consumer: stops the producer and the workers; units not yet taken are dropped.
  void Cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    in_flight_ -= todo_.size();
    next_in_ -= todo_.size();  // never handed out: Next() must not wait for them
    todo_.clear();
    space_.notify_all();
    work_.notify_all();
    done_cv_.notify_all();
  }
  // Worker. False when there is no more work.
  bool Take(std::size_t& seq, Unit& unit) {
    std::unique_lock lock(mutex_);
    work_.wait(lock, [&] { return !todo_.empty() || closed_ || cancelled_; });
    if (todo_.empty()) return false;
    seq = todo_.front().first;
    unit = std::move(todo_.front().second);
    todo_.pop_front();
    return true;
  }
  void Finish(std::size_t seq, Done done) {
    std::lock_guard lock(mutex_);
    done_.emplace(seq, std::move(done));
    done_cv_.notify_all();
  }
  // Consumer: the next result in order; nullopt once everything handed out has come back and
  // the producer is done (closed or cancelled).
  std::optional<Done> Next() {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] {
      return done_.count(next_out_) != 0 || ((closed_ || cancelled_) && next_out_ == next_in_);
    });
    auto it = done_.find(next_out_);
    if (it == done_.end()) return std::nullopt;
    Done done = std::move(it->second);
    done_.erase(it);
    ++next_out_;
    --in_flight_;
    space_.notify_one();
    return done;
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable space_, work_, done_cv_;
  std::deque<std::pair<std::size_t, Unit>> todo_;
  std::map<std::size_t, Done> done_;
  std::size_t next_in_ = 0, next_out_ = 0, in_flight_ = 0;
  bool closed_ = false;
  bool cancelled_ = false;
};

}  // namespace kakehashi::app
