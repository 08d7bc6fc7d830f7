// The progress line of long CLI runs (`kakehashi convert`, `import`, `serve --load`) on stderr:
// "\r<label>: <counts>, <rate> msg/s, <percent>%, ETA <s>", at most four times a second,
// erased before other output and at the end.
//
// Not thread-safe: one thread updates it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace kakehashi::app {

class ProgressLine {
 public:
  // `label` starts the line ("kakehashi convert"). A disabled line prints nothing but still
  // measures time (Seconds()).
  ProgressLine(bool enabled, std::string label);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // True when a new line is due (enabled, and 250 ms since the last one). Cheap: call it before
  // building the counts text.
  bool Due();
  // Prints the line: `counts` ("12 files, 340 messages"), the message rate since construction,
  // the fraction done (0..1) and the remaining time it implies (ETA "?" below 1 %).
  void Show(std::string_view counts, std::size_t messages, double fraction);
  // Erases the line (before another line goes to stderr, and at the end).
  void Clear();
  // Seconds since construction.
  double Seconds() const;

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::string label_;
  std::size_t shown_ = 0;  // width of the line on screen, 0 when none
  Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace kakehashi::app
