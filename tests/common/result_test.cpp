#include "kakehashi/common/result.hpp"

#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using kakehashi::Result;
namespace common = kakehashi::common;

Result<int> Half(int v) {
  if (v % 2 != 0) return common::make_error_code(common::errc::kInvalidArgument);
  return v / 2;
}

Result<int> Quarter(int v) {
  KAKEHASHI_TRY(int half, Half(v));
  KAKEHASHI_TRY(int quarter, Half(half));
  return quarter;
}

}  // namespace

TEST_CASE("KAKEHASHI_TRY propagates the first error and binds values", "[common][result]") {
  REQUIRE(Quarter(8).value() == 2);
  const auto odd = Quarter(6);  // 6 -> 3 -> error
  REQUIRE_FALSE(odd);
  REQUIRE(odd.error() == common::errc::kInvalidArgument);
}

TEST_CASE("every common errc has a message and the category name", "[common][errc]") {
  for (int v = 1; v <= 7; ++v) {
    const auto ec = common::make_error_code(static_cast<common::errc>(v));
    CHECK(std::string(ec.category().name()) == "kakehashi.common");
    CHECK(ec.message().find("unknown") == std::string::npos);
  }
  CHECK(common::make_error_code(common::errc::kEncoding).message() ==
        "bytes invalid for the declared character encoding");
}
