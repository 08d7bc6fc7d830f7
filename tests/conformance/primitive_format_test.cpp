#include "kakehashi/conformance/primitive_format.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace kakehashi::conformance;

TEST_CASE("date: year, year-month, full date; real calendar days", "[primitive]") {
  CHECK(IsDate("1980"));
  CHECK(IsDate("1980-04"));
  CHECK(IsDate("1980-04-01"));
  CHECK(IsDate("2024-02-29"));  // leap year
  CHECK(IsDate("2000-02-29"));  // divisible by 400
  CHECK_FALSE(IsDate("1900-02-29"));
  CHECK_FALSE(IsDate("2023-02-29"));
  CHECK_FALSE(IsDate("2023-04-31"));
  CHECK_FALSE(IsDate("0000"));  // the regex excludes year 0
  CHECK_FALSE(IsDate("1980-13"));
  CHECK_FALSE(IsDate("1980-00"));
  CHECK_FALSE(IsDate("1980-4-1"));
  CHECK_FALSE(IsDate("19800401"));
  CHECK_FALSE(IsDate("1980-04-01T10:00:00Z"));
  CHECK_FALSE(IsDate("1980-04-01 "));  // anchored: nothing may follow
  CHECK_FALSE(IsDate(""));
}

TEST_CASE("dateTime: a time needs seconds and a time zone", "[primitive]") {
  CHECK(IsDateTime("2026"));
  CHECK(IsDateTime("2026-11"));
  CHECK(IsDateTime("2026-11-30"));
  CHECK(IsDateTime("2026-11-30T09:00:00Z"));
  CHECK(IsDateTime("2026-11-30T09:00:00+09:00"));
  CHECK(IsDateTime("2026-11-30T09:00:00.123456-05:00"));
  CHECK(IsDateTime("2026-11-30T23:59:60+14:00"));  // leap second, +14:00 allowed
  CHECK_FALSE(IsDateTime("2026-11-30T09:00:00"));  // no zone
  CHECK_FALSE(IsDateTime("2026-11-30T09:00Z"));    // no seconds
  CHECK_FALSE(IsDateTime("2026-11-30T24:00:00Z"));
  CHECK_FALSE(IsDateTime("2026-11-30T09:00:00+14:30"));
  CHECK_FALSE(IsDateTime("2026-11-30T09:00:00.Z"));
  CHECK_FALSE(IsDateTime("2026-11T09:00:00Z"));
}

TEST_CASE("instant: full precision with zone", "[primitive]") {
  CHECK(IsInstant("2026-11-30T09:00:00Z"));
  CHECK(IsInstant("2026-11-30T09:00:00.000+09:00"));
  CHECK_FALSE(IsInstant("2026-11-30"));
  CHECK_FALSE(IsInstant("2026-11-30T09:00:00"));
}

TEST_CASE("time: hh:mm:ss with optional fraction, no zone", "[primitive]") {
  CHECK(IsTime("00:00:00"));
  CHECK(IsTime("23:59:59.5"));
  CHECK_FALSE(IsTime("24:00:00"));
  CHECK_FALSE(IsTime("09:00"));
  CHECK_FALSE(IsTime("09:00:00Z"));
}

TEST_CASE("id: 1-64 of [A-Za-z0-9-.]", "[primitive]") {
  CHECK(IsId("a"));
  CHECK(IsId("Patient-1.2"));
  CHECK(IsId(std::string(64, 'x')));
  CHECK_FALSE(IsId(std::string(65, 'x')));
  CHECK_FALSE(IsId(""));
  CHECK_FALSE(IsId("a_b"));
  CHECK_FALSE(IsId("a b"));
  CHECK_FALSE(IsId("患者"));
}

TEST_CASE("code: no leading, trailing or double whitespace", "[primitive]") {
  CHECK(IsCode("final"));
  CHECK(IsCode("ja JP"));
  CHECK_FALSE(IsCode(" final"));
  CHECK_FALSE(IsCode("final "));
  CHECK_FALSE(IsCode("ja  JP"));
  CHECK_FALSE(IsCode(""));
}

TEST_CASE("uri, oid, uuid", "[primitive]") {
  CHECK(IsUri("http://example.org/fhir"));
  CHECK(IsUri("urn:oid:1.2.392"));
  CHECK_FALSE(IsUri("http://example.org/a b"));
  CHECK(IsOid("urn:oid:1.2.392.100495.20.3.51"));
  CHECK(IsOid("urn:oid:2.16.840.1.113883"));
  CHECK_FALSE(IsOid("urn:oid:3.1"));
  CHECK_FALSE(IsOid("urn:oid:1.02"));
  CHECK_FALSE(IsOid("urn:oid:1"));
  CHECK_FALSE(IsOid("1.2.3"));
  CHECK(IsUuid("urn:uuid:8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"));
  CHECK_FALSE(IsUuid("urn:uuid:8F0D3A4E-1C2B-4B6A-9E55-3A1F0C2D4E5F"));  // regex: lowercase
  CHECK_FALSE(IsUuid("urn:uuid:8f0d3a4e1c2b4b6a9e553a1f0c2d4e5f"));
  CHECK_FALSE(IsUuid("8f0d3a4e-1c2b-4b6a-9e55-3a1f0c2d4e5f"));
}

TEST_CASE("base64Binary: groups of four", "[primitive]") {
  CHECK(IsBase64Binary("aGVsbG8="));
  CHECK(IsBase64Binary("aGVs bG8="));  // whitespace allowed between groups
  CHECK_FALSE(IsBase64Binary("aGVsbG8"));
  CHECK_FALSE(IsBase64Binary("aGVs*G8="));
  CHECK_FALSE(IsBase64Binary(""));
}

TEST_CASE("numbers: decimal, integer, positiveInt, unsignedInt", "[primitive]") {
  CHECK(IsDecimal("1.50"));
  CHECK(IsDecimal("-0.5"));
  CHECK(IsDecimal("1e10"));
  CHECK_FALSE(IsDecimal("01.5"));
  CHECK_FALSE(IsDecimal("1."));
  CHECK_FALSE(IsDecimal(".5"));
  CHECK(IsInteger("0"));
  CHECK(IsInteger("-2147483648"));
  CHECK(IsInteger("2147483647"));
  CHECK_FALSE(IsInteger("2147483648"));
  CHECK_FALSE(IsInteger("1.0"));
  CHECK_FALSE(IsInteger("1e2"));
  CHECK_FALSE(IsInteger("-0"));
  CHECK_FALSE(IsInteger("007"));
  CHECK(IsPositiveInt("1"));
  CHECK_FALSE(IsPositiveInt("0"));
  CHECK_FALSE(IsPositiveInt("-1"));
  CHECK(IsUnsignedInt("0"));
  CHECK_FALSE(IsUnsignedInt("-1"));
}

TEST_CASE("string: non-empty, no control characters; Japanese spaces allowed", "[primitive]") {
  CHECK(IsFhirString("山田　太郎"));  // U+3000 ideographic space
  CHECK(IsFhirString("line1\nline2\ttab"));
  CHECK_FALSE(IsFhirString(""));
  CHECK_FALSE(
      IsFhirString(std::string("a\x01"
                               "b")));
  CHECK(IsFhirString(std::string(1024 * 1024, 'a')));
  CHECK_FALSE(IsFhirString(std::string(1024 * 1024 + 1, 'a')));
  std::string kanji;  // 3 bytes each: 3 MiB of bytes but only 1M characters
  for (int i = 0; i < 1024 * 1024; ++i) kanji += "\xE5\xB1\xB1";
  CHECK(IsFhirString(kanji));
  CHECK_FALSE(IsFhirString(kanji + "x"));
}

TEST_CASE("MatchesPrimitive dispatches and anchors regexes", "[primitive]") {
  CHECK(MatchesPrimitive("date", "2026-11-30", ""));
  CHECK_FALSE(MatchesPrimitive("date", "2026-11-31", ""));
  CHECK(MatchesPrimitive("boolean", "true", ""));
  // A type without a hand-written checker uses the regex, matched against the whole value.
  CHECK(MatchesPrimitive("customType", "abc", "[a-z]+"));
  CHECK_FALSE(MatchesPrimitive("customType", "abc1", "[a-z]+"));
  CHECK_FALSE(MatchesPrimitive("customType", "1abc", "[a-z]+"));
  CHECK(MatchesPrimitive("customType", "anything", ""));
}

// uri, code and string skip plain bytes 8 at a time: every byte value at every position of
// values longer than two words must give what a byte-by-byte reading of the rules gives.
TEST_CASE("uri, code, string: every byte at every position", "[primitive]") {
  const auto space = [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
  };
  const auto uri = [&](const std::string& t) {
    for (char c : t) {
      if (space(static_cast<unsigned char>(c))) return false;
    }
    return true;
  };
  const auto code = [&](const std::string& t) {
    if (t.empty() || space(static_cast<unsigned char>(t.front())) ||
        space(static_cast<unsigned char>(t.back())))
      return false;
    for (std::size_t i = 1; i < t.size(); ++i) {
      if (space(static_cast<unsigned char>(t[i])) && space(static_cast<unsigned char>(t[i - 1])))
        return false;
    }
    return true;
  };
  const auto string = [](const std::string& t) {
    for (char c : t) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 && c != '\t' && c != '\r' && c != '\n') return false;
    }
    return !t.empty();
  };
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t pos = 0; pos < 19; ++pos) {
      std::string text(19, 'a');
      text[pos] = static_cast<char>(byte);
      INFO("byte " << byte << " at " << pos);
      REQUIRE(IsUri(text) == uri(text));
      REQUIRE(IsCode(text) == code(text));
      REQUIRE(IsFhirString(text) == string(text));
      if (pos + 1 < 19) text[pos + 1] = static_cast<char>(byte);  // a pair (double space)
      REQUIRE(IsUri(text) == uri(text));
      REQUIRE(IsCode(text) == code(text));
      REQUIRE(IsFhirString(text) == string(text));
    }
  }
  // A double space straddling the 8-byte word boundary.
  CHECK_FALSE(IsCode("abcdefg  hijklmnop"));
  CHECK(IsCode("abcdefg h ijklmnop"));
}
