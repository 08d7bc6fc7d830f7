#include "kakehashi/common/wareki.hpp"

#include "kakehashi/common/jp_text.hpp"

#include <array>
#include <cstdio>

namespace kakehashi::common {
namespace {

struct Era {
  std::string_view kanji;
  char letter;
  char code;  // JAHIS 別表2 年号 (eprescription.md)
  int start_year, start_month, start_day;
};

// First day of each era (the day the era name took effect). 明治 is applied from 1868-01-01
// (慶応4年 was renamed retroactively), so its lower bound is the year.
constexpr std::array<Era, 5> kEras = {{
    {"明治", 'M', '1', 1868, 1, 1},
    {"大正", 'T', '2', 1912, 7, 30},
    {"昭和", 'S', '3', 1926, 12, 25},
    {"平成", 'H', '4', 1989, 1, 8},
    {"令和", 'R', '5', 2019, 5, 1},
}};

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}
int Key(int y, int m, int d) {
  return y * 10000 + m * 100 + d;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool AtEnd() {
    SkipSpaces();
    return i_ >= s_.size();
  }
  void SkipSpaces() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Consume(std::string_view token) {
    SkipSpaces();
    if (s_.substr(i_, token.size()) == token) {
      i_ += token.size();
      return true;
    }
    return false;
  }
  // Up to max_digits ASCII digits; -1 when none.
  int Number(int max_digits = 4) {
    SkipSpaces();
    int v = 0, k = 0;
    while (i_ < s_.size() && k < max_digits && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + (s_[i_] - '0');
      ++i_;
      ++k;
    }
    return k == 0 ? -1 : v;
  }
  char Peek() {
    SkipSpaces();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  void Advance() { ++i_; }
  std::string_view Rest() const { return s_.substr(i_); }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

std::optional<PartialDate> Fail(WarekiError* error, WarekiError e) {
  if (error != nullptr) *error = e;
  return std::nullopt;
}

}  // namespace

std::string PartialDate::ToIso() const {
  char buf[16];
  switch (precision) {
    case DatePrecision::kYear: std::snprintf(buf, sizeof buf, "%04d", year); break;
    case DatePrecision::kMonth: std::snprintf(buf, sizeof buf, "%04d-%02d", year, month); break;
    case DatePrecision::kDay:
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
      break;
  }
  return buf;
}

std::optional<PartialDate> ParseWareki(std::string_view text, WarekiError* error,
                                       const WarekiOptions& options) {
  // Full-width digits, letters and separators -> ASCII first (ＳＨ５５．１．２, ５５年).
  const std::string ascii = FullwidthToAscii(text);
  Scanner sc(ascii);
  const Era* era = nullptr;
  int year = -1, month = 0, day = 0;
  DatePrecision precision = DatePrecision::kYear;

  const char first = sc.Peek();
  if (first >= '1' && first <= '9') {
    // JAHIS GYYMMDD / GYYMM / GYY (all digits, no separators).
    const std::string_view rest = sc.Rest();
    std::size_t n = 0;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n != rest.size() || (n != 3 && n != 5 && n != 7)) return Fail(error, WarekiError::kSyntax);
    for (const auto& e : kEras) {
      if (e.code == rest[0]) era = &e;
    }
    if (era == nullptr) return Fail(error, WarekiError::kUnknownEra);
    auto two = [&](std::size_t at) { return (rest[at] - '0') * 10 + (rest[at + 1] - '0'); };
    year = two(1);
    if (n >= 5) {
      month = two(3);
      precision = DatePrecision::kMonth;
    }
    if (n == 7) {
      day = two(5);
      precision = DatePrecision::kDay;
    }
  } else {
    for (const auto& e : kEras) {
      if (sc.Consume(e.kanji)) {
        era = &e;
        break;
      }
    }
    if (era == nullptr) {
      char c = sc.Peek();
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      for (const auto& e : kEras) {
        if (e.letter == c) era = &e;
      }
      if (era == nullptr) {
        const bool letter = (c >= 'A' && c <= 'Z');
        return Fail(error, letter ? WarekiError::kUnknownEra : WarekiError::kSyntax);
      }
      sc.Advance();
    }
    if (sc.Consume("元")) {
      year = 1;
    } else {
      year = sc.Number(2);
      if (year < 0) return Fail(error, WarekiError::kSyntax);
    }
    // Kanji style: 年 [月 [日]]; letter style: separators . / -; either accepted with either era.
    const bool kanji_year = sc.Consume("年");
    auto separator = [&]() {
      return sc.Consume(".") || sc.Consume("/") || sc.Consume("-") || sc.Consume("・");
    };
    if (!sc.AtEnd()) {
      if (!kanji_year && !separator()) return Fail(error, WarekiError::kSyntax);
      month = sc.Number(2);
      if (month < 0) return Fail(error, WarekiError::kSyntax);
      precision = DatePrecision::kMonth;
      const bool kanji_month = sc.Consume("月");
      if (!sc.AtEnd()) {
        if (!kanji_month && !separator()) return Fail(error, WarekiError::kSyntax);
        day = sc.Number(2);
        if (day < 0) return Fail(error, WarekiError::kSyntax);
        precision = DatePrecision::kDay;
        sc.Consume("日");
        if (!sc.AtEnd()) return Fail(error, WarekiError::kSyntax);
      }
    }
  }
  if (year < 1) return Fail(error, WarekiError::kInvalidDate);
  const int greg = era->start_year + year - 1;
  if (precision != DatePrecision::kYear && (month < 1 || month > 12)) {
    return Fail(error, WarekiError::kInvalidDate);
  }
  if (precision == DatePrecision::kDay && (day < 1 || day > DaysInMonth(greg, month))) {
    return Fail(error, WarekiError::kInvalidDate);
  }
  if (!options.allow_outside_era) {
    // The period [lo, hi] the value denotes must overlap the era [start, next start).
    const int lo = Key(greg, precision == DatePrecision::kYear ? 1 : month,
                       precision == DatePrecision::kDay ? day : 1);
    const int hi = Key(greg, precision == DatePrecision::kYear ? 12 : month,
                       precision == DatePrecision::kDay ? day : 31);
    const int start = Key(era->start_year, era->start_month, era->start_day);
    if (hi < start) return Fail(error, WarekiError::kOutsideEra);
    const Era* next = era + 1 < kEras.data() + kEras.size() ? era + 1 : nullptr;
    if (next != nullptr && lo >= Key(next->start_year, next->start_month, next->start_day)) {
      return Fail(error, WarekiError::kOutsideEra);
    }
  }
  PartialDate date;
  date.year = greg;
  date.month = precision == DatePrecision::kYear ? 0 : month;
  date.day = precision == DatePrecision::kDay ? day : 0;
  date.precision = precision;
  return date;
}

}  // namespace kakehashi::common
