#include "kakehashi/common/log.hpp"

#include <string>

namespace kakehashi {
namespace {

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

void AppendValue(std::string& line, const LogField::Value& value, bool json) {
  if (const auto* i = std::get_if<std::int64_t>(&value)) {
    line += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", *d);
    line += buf;
  } else {
    // SafeText is program text; JSON-quote it without escaping (no quotes or backslashes in codes).
    const auto text = std::get<SafeText>(value).View();
    if (json) line += '"';
    line += text;
    if (json) line += '"';
  }
}

}  // namespace

void Logger::Log(LogLevel level, SafeText event, std::initializer_list<LogField> fields) {
  if (!Enabled(level)) return;
  std::string line;
  if (json_) {
    line += "{\"level\":\"";
    line += LevelName(level);
    line += "\",\"event\":\"";
    line += event.View();
    line += '"';
    for (const LogField& f : fields) {
      line += ",\"";
      line += f.key.View();
      line += "\":";
      AppendValue(line, f.value, true);
    }
    line += "}\n";
  } else {
    line += LevelName(level);
    line += ' ';
    line += event.View();
    for (const LogField& f : fields) {
      line += ' ';
      line += f.key.View();
      line += '=';
      AppendValue(line, f.value, false);
    }
    line += '\n';
  }
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace kakehashi
