#include "progress.hpp"

#include <algorithm>
#include <cstdio>

namespace kakehashi::app {

ProgressLine::ProgressLine(bool enabled, std::string label)
    : enabled_(enabled), label_(std::move(label)), start_(Clock::now()), last_(start_) {}

ProgressLine::~ProgressLine() {
  Clear();
}

bool ProgressLine::Due() {
  if (!enabled_) return false;
  const auto now = Clock::now();
  if (now - last_ < std::chrono::milliseconds(250)) return false;
  last_ = now;
  return true;
}

void ProgressLine::Show(std::string_view counts, std::size_t messages, double fraction) {
  if (!enabled_) return;
  const double secs = Seconds();
  const double rate = secs > 0 ? static_cast<double>(messages) / secs : 0.0;
  std::string eta = "?";
  if (fraction > 0.01) eta = std::to_string(static_cast<long>(secs / fraction - secs)) + " s";
  char line[512];
  const int n = std::snprintf(line, sizeof line, "%s: %.*s, %.0f msg/s, %3.0f%%, ETA %s",
                              label_.c_str(), static_cast<int>(counts.size()), counts.data(), rate,
                              fraction * 100.0, eta.c_str());
  const std::size_t width = n < 0 ? 0 : std::min(static_cast<std::size_t>(n), sizeof line - 1);
  // Pad over a longer previous line instead of erasing first (no flicker).
  const int pad = shown_ > width ? static_cast<int>(shown_ - width) : 0;
  std::fprintf(stderr, "\r%s%*s", line, pad, "");
  shown_ = width;
}

void ProgressLine::Clear() {
  if (shown_ > 0) std::fprintf(stderr, "\r%*s\r", static_cast<int>(shown_), "");
  shown_ = 0;
}

double ProgressLine::Seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

}  // namespace kakehashi::app
