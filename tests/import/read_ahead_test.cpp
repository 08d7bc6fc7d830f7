// ReadAhead (gateway/app/read_ahead.hpp), the read stage of `kakehashi convert --io-threads`:
// units come out in production order however the reads finish, reads run on several threads at
// once, no more than `depth` units are produced ahead of Take(), and a failed read calls the
// failure callback once, under the producer lock, before the unit is handed out.
#include "read_ahead.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace kakehashi::app {
namespace {

struct Item {
  int seq = -1;
  int read_by = 0;  // how many times read() saw it
  bool failed = false;
};

// Counters shared with the callbacks (which run on the I/O threads, so they record and the test
// thread checks: Catch2 assertions are not thread-safe), and a way to wait for them.
struct Probe {
  std::mutex mutex;
  std::condition_variable changed;
  int produced = 0;
  int read = 0;
  int reading = 0;
  int max_reading = 0;

  template <class Pred>
  bool WaitFor(Pred pred) {  // a generous bound, so that a broken ReadAhead fails, not hangs
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(30), pred);
  }
};

TEST_CASE("read ahead: units come out in production order even when reads finish out of order",
          "[read_ahead]") {
  Probe probe;
  constexpr int kUnits = 200;
  ReadAhead<Item> ahead(
      4, 8,
      [&](Item& item) {
        std::lock_guard lock(probe.mutex);
        if (probe.produced == kUnits) return false;
        item.seq = probe.produced++;
        return true;
      },
      [&](Item& item) {
        std::unique_lock lock(probe.mutex);
        ++item.read_by;
        // Every 10th unit finishes only after the three produced after it have been read.
        if (item.seq % 10 == 0 && item.seq + 3 < kUnits) {
          const int until = item.seq + 3;
          probe.changed.wait_for(lock, std::chrono::seconds(30),
                                 [&] { return probe.read >= until; });
        }
        ++probe.read;
        probe.changed.notify_all();
        return true;
      });
  std::vector<int> seen;
  Item item;
  while (ahead.Take(item)) {
    CHECK(item.read_by == 1);
    seen.push_back(item.seq);
  }
  REQUIRE(seen.size() == kUnits);
  for (int i = 0; i < kUnits; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i);
  CHECK_FALSE(ahead.Take(item));  // stays at the end
}

TEST_CASE("read ahead: reads run on the I/O threads at once", "[read_ahead]") {
  Probe probe;
  ReadAhead<Item> ahead(
      3, 6,
      [&](Item& item) {
        std::lock_guard lock(probe.mutex);
        if (probe.produced == 9) return false;
        item.seq = probe.produced++;
        return true;
      },
      [&](Item&) {
        std::unique_lock lock(probe.mutex);
        ++probe.reading;
        if (probe.reading > probe.max_reading) probe.max_reading = probe.reading;
        probe.changed.notify_all();
        // The first three reads wait for each other: they can only all finish if they overlap.
        if (probe.read < 3) {
          probe.changed.wait_for(lock, std::chrono::seconds(30),
                                 [&] { return probe.max_reading >= 3; });
        }
        --probe.reading;
        ++probe.read;
        return true;
      });
  Item item;
  int taken = 0;
  while (ahead.Take(item)) CHECK(item.seq == taken++);
  CHECK(taken == 9);
  CHECK(probe.max_reading == 3);  // never more than the number of threads
}

TEST_CASE("read ahead: at most depth units are produced ahead of Take", "[read_ahead]") {
  Probe probe;
  ReadAhead<Item> ahead(
      3, 4,
      [&](Item& item) {
        std::lock_guard lock(probe.mutex);
        if (probe.produced == 20) return false;
        item.seq = probe.produced++;
        return true;
      },
      [&](Item&) {
        std::lock_guard lock(probe.mutex);
        ++probe.read;
        probe.changed.notify_all();
        return true;
      });
  // Nothing taken: the threads stop after `depth` units (a pause lets a broken bound show).
  REQUIRE(probe.WaitFor([&] { return probe.read == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(probe.mutex);
    CHECK(probe.produced == 4);
  }
  Item item;
  REQUIRE(ahead.Take(item));
  CHECK(item.seq == 0);
  REQUIRE(probe.WaitFor([&] { return probe.read == 5; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(probe.mutex);
    CHECK(probe.produced == 5);  // one taken, one more produced
  }
  int next = 1;
  while (ahead.Take(item)) CHECK(item.seq == next++);
  CHECK(next == 20);
}

TEST_CASE("read ahead: a failed read stops the producer under its lock, units stay in order",
          "[read_ahead]") {
  Probe probe;
  bool stopped = false;  // producer state, guarded by the producer lock
  std::vector<int> failed;
  bool failed_marked = true;  // failed() saw the item as read() left it
  ReadAhead<Item> ahead(
      4, 8,
      [&](Item& item) {
        if (stopped) return false;
        std::lock_guard lock(probe.mutex);
        if (probe.produced == 100) return false;
        item.seq = probe.produced++;
        return true;
      },
      [&](Item& item) {
        if (item.seq == 5) {
          item.failed = true;
          return false;
        }
        return true;
      },
      [&](Item& item) {
        failed.push_back(item.seq);  // no lock of its own: the producer lock is held
        failed_marked = failed_marked && item.failed;
        stopped = true;
      });
  std::vector<int> seen;
  Item item;
  while (ahead.Take(item)) {
    seen.push_back(item.seq);
    CHECK(item.failed == (item.seq == 5));
  }
  CHECK(failed == std::vector<int>{5});
  CHECK(failed_marked);
  // Units named before the failure was known still come out, in order; the consumer drops them
  // (kakehashi convert does, for the input whose walk stopped). At most depth units were ahead.
  REQUIRE(seen.size() >= 6);
  CHECK(seen.size() <= 6 + 8);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<int>(i));
  ahead.WithProducer([&] { CHECK(stopped); });
}

TEST_CASE("read ahead: no units, and units left when it is destroyed", "[read_ahead]") {
  {
    ReadAhead<Item> empty(
        2, 4, [](Item&) { return false; }, [](Item&) { return true; });
    Item item;
    CHECK_FALSE(empty.Take(item));
    CHECK_FALSE(empty.Take(item));
  }
  Probe probe;
  {
    ReadAhead<Item> ahead(
        2, 4,
        [&](Item& item) {
          std::lock_guard lock(probe.mutex);
          item.seq = probe.produced++;  // never ends
          return true;
        },
        [&](Item&) {
          std::lock_guard lock(probe.mutex);
          ++probe.read;
          probe.changed.notify_all();
          return true;
        });
    Item item;
    REQUIRE(ahead.Take(item));
    CHECK(item.seq == 0);
    REQUIRE(probe.WaitFor([&] { return probe.read == 5; }));
  }  // the destructor stops the producer and joins the threads
  std::lock_guard lock(probe.mutex);
  CHECK(probe.produced == 5);
}

}  // namespace
}  // namespace kakehashi::app
