// Japanese era (和暦) dates -> Gregorian dates with their precision kept.
//
// Accepted forms (digits may be full-width; separators may be surrounded by spaces):
//   kanji era:   "昭和55年1月2日", "平成元年5月", "令和2年", "昭和５５年０１月０２日"
//   letter era:  "S55.1.2", "S55/01/02", "H1-05-01", "R02.04", "h31"  (M 明治, T 大正, S 昭和,
//                H 平成, R 令和; case-insensitive; "元" accepted for year 1)
//   JAHIS code:  "GYYMMDD" / "GYYMM" / "GYY" with G 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和
//                ("4230110" = 平成23年1月10日; eprescription.md 別表2)
// Era first years (year 1): 明治 1868, 大正 1912-07-30, 昭和 1926-12-25, 平成 1989-01-08,
// 令和 2019-05-01. A date before its era's first day or on/after the next era's first day is
// kOutsideEra (平成31年5月1日 does not exist), unless allow_outside_era is set (some forms are
// pre-printed with the old era); with month or year precision the check uses the whole period.
// Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::common {

enum class DatePrecision : std::uint8_t { kYear, kMonth, kDay };

struct PartialDate {
  int year = 0;
  int month = 0;  // 0 when precision is kYear
  int day = 0;    // 0 unless precision is kDay
  DatePrecision precision = DatePrecision::kYear;

  // "1980", "1980-01", "1980-01-02" (FHIR date keeps the given precision).
  std::string ToIso() const;
  friend bool operator==(const PartialDate&, const PartialDate&) = default;
};

enum class WarekiError : std::uint8_t {
  kSyntax,       // not a wareki date in one of the accepted forms
  kUnknownEra,   // era name, letter or code not recognised
  kInvalidDate,  // month/day out of range (2月30日, 13月)
  kOutsideEra,   // the date does not belong to the named era
};

struct WarekiOptions {
  bool allow_outside_era = false;
};

// The Gregorian date of `text`, or nullopt with *error (if given) saying why.
std::optional<PartialDate> ParseWareki(std::string_view text, WarekiError* error = nullptr,
                                       const WarekiOptions& options = {});

}  // namespace kakehashi::common
