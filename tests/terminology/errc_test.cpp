#include "kakehashi/terminology/errc.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

namespace kt = kakehashi::terminology;

TEST_CASE("terminology errc: category name and a distinct message per value", "[terminology]") {
  std::set<std::string> messages;
  for (int v = 1; v <= 7; ++v) {
    auto ec = kt::make_error_code(static_cast<kt::errc>(v));
    CHECK(std::string(ec.category().name()) == "kakehashi.terminology");
    CHECK(ec.message() != "unknown terminology error");
    messages.insert(ec.message());
  }
  CHECK(messages.size() == 7);
  CHECK(kt::make_error_code(static_cast<kt::errc>(99)).message() == "unknown terminology error");
  boost::system::error_code ec = kt::errc::kDatabase;
  CHECK(ec == kt::errc::kDatabase);
}
