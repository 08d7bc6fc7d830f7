#include "kakehashi/common/issue.hpp"

namespace kakehashi {

std::string_view ToString(Severity severity) noexcept {
  switch (severity) {
    case Severity::kFatal: return "fatal";
    case Severity::kError: return "error";
    case Severity::kWarning: return "warning";
    case Severity::kInformation: return "information";
  }
  return "error";
}

std::optional<Severity> SeverityFromString(std::string_view text) noexcept {
  if (text == "fatal") return Severity::kFatal;
  if (text == "error") return Severity::kError;
  if (text == "warning") return Severity::kWarning;
  if (text == "information") return Severity::kInformation;
  return std::nullopt;
}

std::string Location::ToString() const {
  std::string out;
  auto add = [&out](std::string_view prefix, std::string_view part) {
    if (part.empty()) return;
    if (!out.empty()) out += ' ';
    out += prefix;
    out += part;
  };
  add("", source);
  add("record ", record);
  add("", field);
  if (line >= 0) add("line ", std::to_string(line));
  if (byte >= 0) add("byte ", std::to_string(byte));
  add("-> ", fhir_path);
  if (out.empty()) out = "(unknown location)";
  return out;
}

std::string Issue::ToString() const {
  std::string out;
  out += kakehashi::ToString(severity);
  out += ' ';
  out += code;
  out += " at ";
  out += where.ToString();
  out += ": ";
  out += message;
  return out;
}

}  // namespace kakehashi
