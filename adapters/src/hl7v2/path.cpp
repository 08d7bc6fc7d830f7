#include "kakehashi/adapters/hl7v2/path.hpp"

namespace kakehashi::adapters::hl7v2 {
namespace {

// Positive decimal integer (no sign, no leading '+'); advances `i`. 0 when absent or too big.
int Number(std::string_view s, std::size_t& i) {
  int v = 0;
  const std::size_t start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (v > 99999) return 0;
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  return i == start ? 0 : v;
}

// "[" (n | "*") "]" -> value; returns false on a malformed index.
bool Index(std::string_view s, std::size_t& i, int& out) {
  if (i >= s.size() || s[i] != '[') return true;  // optional: keep default
  ++i;
  if (i < s.size() && s[i] == '*') {
    out = Path::kAll;
    ++i;
  } else {
    out = Number(s, i);
    if (out <= 0) return false;
  }
  if (i >= s.size() || s[i] != ']') return false;
  ++i;
  return true;
}

}  // namespace

std::string Path::ToString() const {
  std::string s(SegmentName());
  auto index = [&](int v) {
    if (v == kAll) {
      s += "[*]";
    } else if (v != 1) {
      s += '[' + std::to_string(v) + ']';
    }
  };
  index(occurrence);
  s += '-' + std::to_string(field);
  index(repetition);
  if (component > 0) s += '.' + std::to_string(component);
  if (subcomponent > 0) s += '.' + std::to_string(subcomponent);
  return s;
}

std::optional<Path> ParsePath(std::string_view text) noexcept {
  if (text.size() < 5) return std::nullopt;
  Path p;
  for (int k = 0; k < 3; ++k) {
    const char c = text[k];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return std::nullopt;
    p.segment[k] = c;
  }
  std::size_t i = 3;
  if (!Index(text, i, p.occurrence)) return std::nullopt;
  if (i >= text.size() || text[i] != '-') return std::nullopt;
  ++i;
  p.field = Number(text, i);
  if (p.field <= 0) return std::nullopt;
  if (!Index(text, i, p.repetition)) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    p.component = Number(text, i);
    if (p.component <= 0) return std::nullopt;
    if (i < text.size() && text[i] == '.') {
      ++i;
      p.subcomponent = Number(text, i);
      if (p.subcomponent <= 0) return std::nullopt;
    }
  }
  if (i != text.size()) return std::nullopt;
  return p;
}

}  // namespace kakehashi::adapters::hl7v2
