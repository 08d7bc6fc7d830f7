#include "kakehashi/fhir/errc.hpp"

#include <catch2/catch.hpp>

using kakehashi::fhir::errc;

TEST_CASE("fhir errc messages and category", "[errc]") {
  const std::pair<errc, const char*> cases[] = {
      {errc::kJsonSyntax, "JSON syntax error"},
      {errc::kJsonEncoding, "JSON text is not valid UTF-8"},
      {errc::kJsonTooDeep, "JSON nesting too deep"},
      {errc::kJsonTooLarge, "JSON text too large"},
      {errc::kNotResource, "not a FHIR resource"},
      {errc::kInvalid, "resource does not fit the FHIR R4 model"},
  };
  for (const auto& [e, message] : cases) {
    const boost::system::error_code ec = e;
    CHECK(ec.message() == message);
    CHECK(std::string(ec.category().name()) == "kakehashi.fhir");
    CHECK(ec.value() >= 1);
  }
  CHECK(kakehashi::fhir::make_error_code(static_cast<errc>(99)).message() ==
        "unknown kakehashi.fhir error");
}
