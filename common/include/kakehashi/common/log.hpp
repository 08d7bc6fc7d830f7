// A logger that cannot print field values.
//
// A log line is an event name plus key=value fields, where a value is a number, a duration or a
// SafeText. SafeText can only be built from a string literal (consteval) or from an Issue code, so
// text read from input (a name, an ID, a free-text field) cannot reach the log by accident.
// Output: one line per event on stderr (or a given stream), "level event key=value ...", or JSON
// lines with SetJson(true).
//
// Thread-safety: Log() may be called from several threads; lines are written whole.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <variant>

namespace kakehashi {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarn, kError, kOff };

class SafeText {
 public:
  template <std::size_t N>
  consteval SafeText(const char (&literal)[N])
      : text_(literal, N - 1) {}  // NOLINT: implicit by design
  // Issue codes and enum names are static program text, never input.
  static SafeText FromCode(std::string_view static_code) { return SafeText(static_code, 0); }
  std::string_view View() const { return text_; }

 private:
  constexpr SafeText(std::string_view text, int) : text_(text) {}
  std::string_view text_;
};

struct LogField {
  using Value = std::variant<std::int64_t, double, SafeText>;
  SafeText key;
  Value value;
  LogField(SafeText k, std::int64_t v) : key(k), value(v) {}
  LogField(SafeText k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(SafeText k, std::size_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(SafeText k, double v) : key(k), value(v) {}
  LogField(SafeText k, SafeText v) : key(k), value(v) {}
  LogField(SafeText k, std::chrono::nanoseconds d)
      : key(k), value(std::chrono::duration<double, std::milli>(d).count()) {}
};

class Logger {
 public:
  explicit Logger(std::FILE* out = stderr, LogLevel level = LogLevel::kInfo)
      : out_(out), level_(level) {}
  void SetLevel(LogLevel level) { level_ = level; }
  void SetJson(bool json) { json_ = json; }
  bool Enabled(LogLevel level) const { return level >= level_ && level_ != LogLevel::kOff; }
  void Log(LogLevel level, SafeText event, std::initializer_list<LogField> fields = {});

 private:
  std::FILE* out_;
  LogLevel level_;
  bool json_ = false;
  std::mutex mutex_;
};

}  // namespace kakehashi
