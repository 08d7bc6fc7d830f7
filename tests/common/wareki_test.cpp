#include "kakehashi/common/wareki.hpp"

#include <catch2/catch.hpp>

namespace {

namespace common = kakehashi::common;
using common::WarekiError;

std::string Iso(std::string_view text) {
  WarekiError error{};
  const auto d = common::ParseWareki(text, &error);
  if (!d) return "error:" + std::to_string(static_cast<int>(error));
  return d->ToIso();
}

WarekiError ErrorOf(std::string_view text) {
  WarekiError error{};
  const auto d = common::ParseWareki(text, &error);
  REQUIRE_FALSE(d);
  return error;
}

}  // namespace

TEST_CASE("wareki: kanji eras keep precision", "[wareki]") {
  CHECK(Iso("昭和55年1月2日") == "1980-01-02");
  CHECK(Iso("昭和５５年０１月０２日") == "1980-01-02");
  CHECK(Iso("平成元年5月") == "1989-05");
  CHECK(Iso("令和2年") == "2020");
  CHECK(Iso("明治45年7月29日") == "1912-07-29");
  CHECK(Iso("大正元年8月1日") == "1912-08-01");
  CHECK(Iso("令和元年5月1日") == "2019-05-01");
  CHECK(Iso("平成31年4月30日") == "2019-04-30");
  CHECK(Iso("昭和64年1月7日") == "1989-01-07");
  CHECK(Iso(" 昭和 55 年 1 月 2 日 ") == "1980-01-02");
}

TEST_CASE("wareki: letter eras", "[wareki]") {
  CHECK(Iso("S55.1.2") == "1980-01-02");
  CHECK(Iso("S55/01/02") == "1980-01-02");
  CHECK(Iso("H1-05-01") == "1989-05-01");
  CHECK(Iso("R02.04") == "2020-04");
  CHECK(Iso("h31") == "2019");
  CHECK(Iso("R元.5.1") == "2019-05-01");
  CHECK(Iso("Ｈ３０．１２．３１") == "2018-12-31");
  CHECK(Iso("T15年12月24日") == "1926-12-24");
}

TEST_CASE("wareki: JAHIS GYYMMDD codes", "[wareki]") {
  CHECK(Iso("4230110") == "2011-01-10");  // eprescription.md: 平成23年1月10日
  CHECK(Iso("35501") == "1980-01");
  CHECK(Iso("501") == "2019");
  CHECK(ErrorOf("9230110") == WarekiError::kUnknownEra);
  CHECK(ErrorOf("423011") == WarekiError::kSyntax);
}

TEST_CASE("wareki: invalid dates and dates outside their era", "[wareki]") {
  CHECK(ErrorOf("平成31年5月1日") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("平成31年5月") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("昭和64年1月8日") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("昭和65年") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("令和元年4月30日") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("平成元年1月7日") == WarekiError::kOutsideEra);
  CHECK(ErrorOf("平成2年2月30日") == WarekiError::kInvalidDate);
  CHECK(ErrorOf("平成2年13月") == WarekiError::kInvalidDate);
  CHECK(ErrorOf("平成0年") == WarekiError::kInvalidDate);
  CHECK(ErrorOf("X55.1.2") == WarekiError::kUnknownEra);
  CHECK(ErrorOf("1980-01-02") == WarekiError::kSyntax);
  CHECK(ErrorOf("昭和") == WarekiError::kSyntax);
  CHECK(ErrorOf("昭和55年1月2日頃") == WarekiError::kSyntax);
  CHECK(ErrorOf("") == WarekiError::kSyntax);
  // Leap years: 平成4年 = 1992.
  CHECK(Iso("平成4年2月29日") == "1992-02-29");
  CHECK(ErrorOf("平成5年2月29日") == WarekiError::kInvalidDate);
}

TEST_CASE("wareki: allow_outside_era for pre-printed forms", "[wareki]") {
  common::WarekiOptions options;
  options.allow_outside_era = true;
  const auto d = common::ParseWareki("平成31年5月1日", nullptr, options);
  REQUIRE(d);
  CHECK(d->ToIso() == "2019-05-01");
  CHECK(d->precision == common::DatePrecision::kDay);
}
