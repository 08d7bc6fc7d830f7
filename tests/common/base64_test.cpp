#include "kakehashi/common/base64.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace kakehashi {
namespace {

// RFC 4648 §10 test vectors, plus bytes above 0x7F (base64Binary carries raw bytes).
TEST_CASE("Base64Encode matches the RFC 4648 test vectors", "[common][base64]") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("foob") == "Zm9vYg==");
  CHECK(Base64Encode("fooba") == "Zm9vYmE=");
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
  CHECK(Base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
  CHECK(Base64Encode("\xe6\x9e\xb6") == "5p62");  // 架 in UTF-8
}

}  // namespace
}  // namespace kakehashi
