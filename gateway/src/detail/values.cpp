// ICU is private to the gateway until the common text layer lands (kakehashi/common/text.hpp);
// then NormalizeForSearch should call it instead.
#include "detail/values.hpp"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace kakehashi::gateway::detail {

std::string NormalizeForSearch(std::string_view text) {
  // ASCII only (codes, dates, most identifiers: the bulk of `_content`, decision 0048): NFKC
  // case folding maps A-Z to a-z and leaves the other 118 ASCII code points as they are (none
  // has a compatibility decomposition or is a default ignorable), so ICU is not needed; the
  // gateway's detail tests compare all 128 with the ICU path.
  bool ascii = true;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0x80) != 0) {
      ascii = false;
      break;
    }
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc_cf =
      ascii ? nullptr : icu::Normalizer2::getNFKCCasefoldInstance(status);
  std::string out;
  if (ascii) {
    out.assign(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  } else if (U_SUCCESS(status)) {
    icu::UnicodeString source = icu::UnicodeString::fromUTF8(
        icu::StringPiece(text.data(), static_cast<std::int32_t>(text.size())));
    icu::UnicodeString folded = nfkc_cf->normalize(source, status);
    if (U_SUCCESS(status)) folded.toUTF8String(out);
  }
  if (!ascii && !U_SUCCESS(status)) {
    out.assign(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  // Collapse whitespace runs (NFKC maps the ideographic space U+3000 to ' ').
  std::string collapsed;
  collapsed.reserve(out.size());
  bool space = false;
  for (char c : out) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !collapsed.empty()) collapsed += ' ';
    space = false;
    collapsed += c;
  }
  return collapsed;
}

namespace {

bool Digits(std::string_view s, std::size_t pos, std::size_t n, int& value) {
  if (pos + n > s.size()) return false;
  value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

std::int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_days(year_month_day(year(y), month(m), day(d))).time_since_epoch().count();
}

constexpr std::int64_t kUsPerSec = 1000000;
constexpr std::int64_t kUsPerDay = 86400 * kUsPerSec;

}  // namespace

std::optional<TimeRange> ParseFhirDateRange(std::string_view s) {
  int year = 0;
  int month = 1;
  int day = 1;
  if (!Digits(s, 0, 4, year)) return std::nullopt;
  auto month_end = [](int y, int m) {
    using namespace std::chrono;
    return static_cast<int>(static_cast<unsigned>(
        year_month_day_last(std::chrono::year(y),
                            month_day_last(std::chrono::month(static_cast<unsigned>(m))))
            .day()));
  };
  if (s.size() == 4) {
    std::int64_t lo = DaysFromCivil(year, 1, 1) * kUsPerDay;
    std::int64_t hi = DaysFromCivil(year + 1, 1, 1) * kUsPerDay - 1;
    return TimeRange{lo, hi};
  }
  if (s.size() < 7 || s[4] != '-' || !Digits(s, 5, 2, month) || month < 1 || month > 12) {
    return std::nullopt;
  }
  if (s.size() == 7) {
    std::int64_t lo = DaysFromCivil(year, static_cast<unsigned>(month), 1) * kUsPerDay;
    std::int64_t hi = lo + month_end(year, month) * kUsPerDay - 1;
    return TimeRange{lo, hi};
  }
  if (s.size() < 10 || s[7] != '-' || !Digits(s, 8, 2, day) || day < 1 ||
      day > month_end(year, month)) {
    return std::nullopt;
  }
  std::int64_t day_start =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * kUsPerDay;
  if (s.size() == 10) return TimeRange{day_start, day_start + kUsPerDay - 1};
  if (s[10] != 'T') return std::nullopt;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!Digits(s, 11, 2, hour) || s.size() < 16 || s[13] != ':' || !Digits(s, 14, 2, minute) ||
      hour > 23 || minute > 59) {
    return std::nullopt;
  }
  std::size_t pos = 16;
  std::int64_t precision = 60 * kUsPerSec;
  std::int64_t fraction = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, second) || second > 60) return std::nullopt;
    pos += 3;
    precision = kUsPerSec;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      std::int64_t scale = kUsPerSec;
      std::size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 1) {
          scale /= 10;
          fraction += (s[pos] - '0') * scale;
          precision = scale;
        }
        ++pos;
      }
      if (pos == start) return std::nullopt;
    }
  }
  std::int64_t offset_us = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh = 0;
      int om = 0;
      if (!Digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
          !Digits(s, pos + 4, 2, om)) {
        return std::nullopt;
      }
      offset_us = (oh * 3600 + om * 60) * kUsPerSec * (s[pos] == '+' ? 1 : -1);
      pos += 6;
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  std::int64_t lo =
      day_start + (hour * 3600 + minute * 60 + second) * kUsPerSec + fraction - offset_us;
  return TimeRange{lo, lo + precision - 1};
}

std::string FormatInstant(std::int64_t us) {
  using namespace std::chrono;
  std::int64_t days = us >= 0 ? us / kUsPerDay : (us - kUsPerDay + 1) / kUsPerDay;
  std::int64_t rem = us - days * kUsPerDay;
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  std::int64_t secs = rem / kUsPerSec;
  std::int64_t micros = rem % kUsPerSec;
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {  // not a FHIR instant (R4 §2.24.0.1: four-digit years)
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", year,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                  static_cast<int>(secs % 60), static_cast<int>(micros));
    return buf;
  }
  // "2026-12-02T05:10:00.000000Z", digits written directly: a transaction formats three per
  // resource (meta.lastUpdated, the stored text, the response entry) and snprintf was ~6 % of a
  // Bundle of 100's instructions (docs/performance.md, session 12).
  std::string out = "0000-00-00T00:00:00.000000Z";
  auto digits = [&out](std::size_t at, std::size_t n, std::uint32_t v) {
    for (std::size_t i = n; i-- > 0; v /= 10) out[at + i] = static_cast<char>('0' + v % 10);
  };
  digits(0, 4, static_cast<std::uint32_t>(year));
  digits(5, 2, static_cast<unsigned>(ymd.month()));
  digits(8, 2, static_cast<unsigned>(ymd.day()));
  digits(11, 2, static_cast<std::uint32_t>(secs / 3600));
  digits(14, 2, static_cast<std::uint32_t>(secs / 60 % 60));
  digits(17, 2, static_cast<std::uint32_t>(secs % 60));
  digits(20, 6, static_cast<std::uint32_t>(micros));
  return out;
}

std::string FormatETag(std::int64_t version) {
  return "W/\"" + std::to_string(version) + "\"";
}

std::string FormatHttpDate(std::int64_t us) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::int64_t days = us >= 0 ? us / kUsPerDay : (us - kUsPerDay + 1) / kUsPerDay;
  std::int64_t secs = (us - days * kUsPerDay) / kUsPerSec;
  sys_days sd{std::chrono::days{days}};
  year_month_day ymd{sd};
  weekday wd{sd};
  // IMF-fixdate (RFC 7231 §7.1.1.1), "Sun, 06 Nov 1994 08:49:37 GMT"; digits written directly
  // (every read answers Last-Modified, snprintf showed in its profile).
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return "Thu, 01 Jan 1970 00:00:00 GMT";
  std::string out = "Sun, 00 Jan 0000 00:00:00 GMT";
  auto two = [&out](std::size_t at, unsigned v) {
    out[at] = static_cast<char>('0' + v / 10);
    out[at + 1] = static_cast<char>('0' + v % 10);
  };
  out.replace(0, 3, kDays[wd.c_encoding()]);
  two(5, static_cast<unsigned>(ymd.day()));
  out.replace(8, 3, kMonths[static_cast<unsigned>(ymd.month()) - 1]);
  two(12, static_cast<unsigned>(year / 100));
  two(14, static_cast<unsigned>(year % 100));
  two(17, static_cast<unsigned>(secs / 3600));
  two(20, static_cast<unsigned>(secs / 60 % 60));
  two(23, static_cast<unsigned>(secs % 60));
  return out;
}

}  // namespace kakehashi::gateway::detail
