// Hand-written equivalents of the R4 primitive regexes (datatypes.html, profiles-types.json
// "http://hl7.org/fhir/StructureDefinition/regex"). std::regex is slow and allocates; these run
// on every primitive of every resource, so they are plain scanners.
#include "kakehashi/conformance/primitive_format.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>

namespace kakehashi::conformance {
namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly `n` digits at text[pos] into *value.
bool Digits(std::string_view text, std::size_t pos, std::size_t n, int* value) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *value = v;
  return true;
}

bool IsLeapYear(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Parses the date part at the start of text; *end receives the index after it and *precision the
// number of components (1 year, 2 month, 3 day). The year regex excludes 0000.
bool ParseDatePart(std::string_view text, std::size_t* end, int* precision) {
  int year = 0;
  if (!Digits(text, 0, 4, &year) || year == 0) return false;
  *precision = 1;
  *end = 4;
  if (text.size() == 4 || text[4] != '-') return true;
  int month = 0;
  if (!Digits(text, 5, 2, &month) || month < 1 || month > 12) return false;
  *precision = 2;
  *end = 7;
  if (text.size() == 7 || text[7] != '-') return true;
  int day = 0;
  // The regex allows 01-31; "Dates SHALL be valid dates" (datatypes.html#date) adds the month.
  if (!Digits(text, 8, 2, &day) || day < 1 || day > DaysInMonth(year, month)) return false;
  *precision = 3;
  *end = 10;
  return true;
}

// hh:mm:ss(.s+)? at text[pos]; *end receives the index after it.
bool ParseTimePart(std::string_view text, std::size_t pos, std::size_t* end) {
  int hh = 0, mm = 0, ss = 0;
  if (!Digits(text, pos, 2, &hh) || hh > 23) return false;
  if (pos + 2 >= text.size() || text[pos + 2] != ':') return false;
  if (!Digits(text, pos + 3, 2, &mm) || mm > 59) return false;
  if (pos + 5 >= text.size() || text[pos + 5] != ':') return false;
  if (!Digits(text, pos + 6, 2, &ss) || ss > 60) return false;  // 60: leap second, as the regex
  std::size_t i = pos + 8;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const std::size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == start) return false;
  }
  *end = i;
  return true;
}

// (Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)) filling the rest of text.
bool IsZone(std::string_view zone) {
  if (zone == "Z") return true;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return false;
  int hh = 0, mm = 0;
  if (!Digits(zone, 1, 2, &hh) || !Digits(zone, 4, 2, &mm)) return false;
  if (hh == 14) return mm == 0;
  return hh <= 13 && mm <= 59;
}

bool IsSpace(char c) {
  // \s of the spec's regexes (ASCII whitespace).
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

// The length of the prefix of `text`, in whole 8-byte words, whose bytes are all >= `floor`
// (floor <= 0x80). Every byte that \s or a control test looks for is below 0x21, so the scalar
// checks below can start after it; values are mostly codes, URIs and names without any.
// SWAR: (w - floor * ones) & ~w & high is non-zero exactly when some byte of w is < floor.
std::size_t PlainWords(std::string_view text, unsigned char floor) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t sub = kOnes * floor;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (((word - sub) & ~word & kHigh) != 0) break;
  }
  return i;
}

// Unsigned decimal digits without leading zeros, value <= limit.
bool UnsignedWithin(std::string_view digits, std::uint64_t limit) {
  if (digits.empty() || digits.size() > 10) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  std::uint64_t v = 0;
  for (char c : digits) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v <= limit;
}

bool IsLowerHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f');
}

// Regexes for primitives without a hand-written checker, compiled once per distinct pattern.
bool RegexFullMatch(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return true;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<std::regex>, std::less<>> cache;
  const std::regex* compiled = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(pattern);
    if (it == cache.end()) {
      std::unique_ptr<std::regex> re;
      try {
        re = std::make_unique<std::regex>(std::string(pattern), std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        re = nullptr;  // a pattern std::regex cannot compile: accept rather than guess
      }
      it = cache.emplace(std::string(pattern), std::move(re)).first;
    }
    compiled = it->second.get();
  }
  if (compiled == nullptr) return true;
  // regex_match: the spec's patterns apply to the whole value.
  return std::regex_match(text.begin(), text.end(), *compiled);
}

}  // namespace

bool IsDate(std::string_view text) {
  std::size_t end = 0;
  int precision = 0;
  return ParseDatePart(text, &end, &precision) && end == text.size();
}

bool IsDateTime(std::string_view text) {
  std::size_t end = 0;
  int precision = 0;
  if (!ParseDatePart(text, &end, &precision)) return false;
  if (end == text.size()) return true;
  if (precision != 3 || text[end] != 'T') return false;
  std::size_t after_time = 0;
  if (!ParseTimePart(text, end + 1, &after_time)) return false;
  return IsZone(text.substr(after_time));
}

bool IsInstant(std::string_view text) {
  std::size_t end = 0;
  int precision = 0;
  if (!ParseDatePart(text, &end, &precision) || precision != 3) return false;
  if (end >= text.size() || text[end] != 'T') return false;
  std::size_t after_time = 0;
  if (!ParseTimePart(text, end + 1, &after_time)) return false;
  return IsZone(text.substr(after_time));
}

bool IsTime(std::string_view text) {
  std::size_t end = 0;
  return ParseTimePart(text, 0, &end) && end == text.size();
}

bool IsId(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool IsCode(std::string_view text) {
  if (text.empty() || IsSpace(text.front()) || IsSpace(text.back())) return false;
  // A pair of spaces needs a space; none in the plain prefix, nor at its last byte.
  for (std::size_t i = std::max<std::size_t>(1, PlainWords(text, 0x21)); i < text.size(); ++i) {
    if (IsSpace(text[i]) && IsSpace(text[i - 1])) return false;
  }
  return true;
}

bool IsUri(std::string_view text) {
  for (std::size_t i = PlainWords(text, 0x21); i < text.size(); ++i) {
    if (IsSpace(text[i])) return false;
  }
  return true;
}

bool IsOid(std::string_view text) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (text.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = text.substr(kPrefix.size());
  if (rest.size() < 3 || rest[0] < '0' || rest[0] > '2' || rest[1] != '.') return false;
  rest.remove_prefix(1);
  // (\.(0|[1-9][0-9]*))+
  while (!rest.empty()) {
    if (rest[0] != '.') return false;
    rest.remove_prefix(1);
    std::size_t n = 0;
    while (n < rest.size() && IsDigit(rest[n])) ++n;
    if (n == 0 || (n > 1 && rest[0] == '0')) return false;
    rest.remove_prefix(n);
  }
  return true;
}

bool IsUuid(std::string_view text) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (text.size() != kPrefix.size() + 36 || text.substr(0, kPrefix.size()) != kPrefix) return false;
  const std::string_view u = text.substr(kPrefix.size());
  for (std::size_t i = 0; i < u.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? u[i] != '-' : !IsLowerHex(u[i])) return false;
  }
  return true;
}

bool IsBase64Binary(std::string_view text) {
  // (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : groups of four alphabet characters, whitespace between.
  std::size_t count = 0;
  for (char c : text) {
    if (IsSpace(c)) continue;
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '+' ||
                    c == '/' || c == '=';
    if (!ok) return false;
    ++count;
  }
  return count > 0 && count % 4 == 0;
}

bool IsDecimal(std::string_view text) {
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  const std::size_t int_start = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  const std::size_t int_len = i - int_start;
  if (int_len == 0 || (int_len > 1 && text[int_start] == '0')) return false;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const std::size_t frac = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == frac) return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    const std::size_t exp = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == exp) return false;
  }
  return i == text.size();
}

bool IsInteger(std::string_view text) {
  if (!text.empty() && text[0] == '-') {
    return text != "-0" && UnsignedWithin(text.substr(1), 2147483648ULL);
  }
  return UnsignedWithin(text, 2147483647ULL);
}

bool IsPositiveInt(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  return UnsignedWithin(text, 2147483647ULL) && text != "0";
}

bool IsUnsignedInt(std::string_view text) {
  return UnsignedWithin(text, 2147483647ULL);
}

bool IsFhirString(std::string_view text) {
  // datatypes.html#string: "strings SHALL NOT exceed 1MB (1024*1024 characters) in size".
  constexpr std::size_t kMaxChars = std::size_t{1024} * 1024;
  if (text.empty()) return false;
  if (text.size() > kMaxChars) {  // only long texts need counting: UTF-8 lead bytes = characters
    std::size_t chars = 0;
    for (char c : text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    if (chars > kMaxChars) return false;
  }
  for (std::size_t i = PlainWords(text, 0x20); i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

bool MatchesPrimitive(std::string_view type, std::string_view text, std::string_view spec_regex) {
  if (type == "string" || type == "markdown") return IsFhirString(text);
  if (type == "code") return IsCode(text);
  if (type == "dateTime") return IsDateTime(text);
  if (type == "uri" || type == "url" || type == "canonical") return IsUri(text);
  if (type == "date") return IsDate(text);
  if (type == "id") return IsId(text);
  if (type == "decimal") return IsDecimal(text);
  if (type == "instant") return IsInstant(text);
  if (type == "integer") return IsInteger(text);
  if (type == "positiveInt") return IsPositiveInt(text);
  if (type == "unsignedInt") return IsUnsignedInt(text);
  if (type == "time") return IsTime(text);
  if (type == "oid") return IsOid(text);
  if (type == "uuid") return IsUuid(text);
  if (type == "base64Binary") return IsBase64Binary(text);
  if (type == "boolean") return text == "true" || text == "false";
  if (type == "xhtml") return !text.empty();
  return RegexFullMatch(spec_regex, text);
}

}  // namespace kakehashi::conformance
